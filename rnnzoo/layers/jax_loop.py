r"""The fast sequence loop on Keras's JAX backend: `jax.lax.scan` with its own backward pass.

The same maths as the TensorFlow loop (`rnnzoo.layers.fast_loop`), in JAX's
terms. Keras's JAX loop calls the cell once per step inside a `lax.scan` and
lets JAX differentiate the whole scan, saving whatever the cell's ops need.
Here the backward pass is written out (`jax.custom_vjp`):

- forward, each step of the scan does x_t W + b, h_{t-1} U and the cell's
  `pointwise` part, which also returns the step's `saved` tensors (its step
  derivative's local derivatives, see `rnnzoo.cells.derivatives`);
- backward, a reverse scan turns them into dz_t with a few products, then
  dh_{t-1} = dz_t U^T and dx_t = dz_t W^T, and adds the step's shares of
  dW = sum x_t^T dz_t, dU = sum h_{t-1}^T dz_t and db into the carry.

The backward reads h_{t-1} from the outputs' sequence by the step's index, and
a saved tensor that is h_t itself (the vanilla RNN saves it) is not stored a
second time. Neither copy is then in the training step's temporaries, which
XLA's CPU code takes as one block a step: the vanilla RNN's at the benchmark's
shape (64 x 100 x 256) fell from 35.2 to 28.9 MiB, under the 32 MiB above which
glibc's malloc maps the block afresh at every step and the kernel faults it in
(1.23x Keras's SimpleRNN before, 1.58x after, with glibc's malloc; README, "Page
faults on Keras's JAX backend").

Measured on the benchmark's LSTM (2 CPU cores, batch 64, 100 steps, 256
units, `benchmarks/layer_speed.py --backend jax`, contenders alternating):
with the input projections hoisted out of the scan as one matmul, and the
weights' gradients as single matmuls after it, the loop ran 1.03x Keras's
LSTM; with both kept inside the steps (as here) 1.12-1.18x: XLA's CPU code
gains less from the bigger matmuls than it loses moving the (time, batch,
4 units) tensors through memory (the TensorFlow loop found the same, and
works in chunks of 10 steps). Measured again for the GRU and the vanilla
RNN on a second CPU (AMD EPYC, 2026-12-04), hoisting lost for the GRU
(1.06x Keras's GRU, against 1.31x as here) and for the vanilla RNN at
short sequences (0.92-0.95x Keras's SimpleRNN at 28 steps and batch 128,
against 1.01-1.03x). Unrolling the scans (2, 4) and one fused
[x_t, h_{t-1}] [W; U] matmul per step were within the noise; chunks of 4 to
20 steps with the chunk's projection and weight gradients as one matmul
each (the TensorFlow loop's layout), the weights' gradients alone taken
out of the backward scan, and the saved tensors written as one
(batch, 6 units) array per step, were no faster, nor were the peephole
weights' gradients kept per row and summed over the batch once after the
scan, as the TensorFlow loop does (the peephole LSTM's speed-up over the
per-step sums: 0.98x and 1.04x in two runs, AMD EPYC, 2026-12-04); nor was a
backward that recomputes the gates from the saved z_t (the cell's
`AutomaticDerivative`: fewer kernels forward, more backward). See the
README, "How far the LSTM could go". Those ratios include page faults: XLA's
CPU code maps each training step's temporaries afresh where they pass 32 MiB
(glibc's limit for reuse), a fifth to a quarter of Keras's LSTM step there
and less of this loop's (its saved tensors take less than Keras's automatic
derivative's). With a malloc that reuses the block, this loop's LSTM is
0.98-1.01x Keras's, and Keras's loop with free gates 1.21-1.26x (README,
"Page faults on Keras's JAX backend").

Masks follow Keras's JAX loop: a masked step keeps the states and outputs
the previous h (Keras's TensorFlow loop outputs the previous output, zeros
before the first one; the two differ only where a sequence starts masked
from a non-zero initial state), or zeros with `zero_output_for_mask`.
Recurrent dropout (one mask of h_{t-1} per sequence) is as in the
TensorFlow loop. Outputs and gradients equal the cell in `keras.layers.RNN`
on JAX (tests/layers/test_jax_loop.py).
"""

import functools

import jax
import jax.numpy as jnp
from keras import ops

from rnnzoo.layers import sequence_inputs


def run(layer, sequences, initial_state, mask=None, training=False):
    """`keras.layers.RNN.inner_loop` on JAX, fast: -> (last_output, outputs, states)."""
    spec, x, arrays = sequence_inputs.prepare(layer, sequences, initial_state, mask, training)
    first, final_states = _sequence(layer.cell.derivative(), spec, x, *arrays)
    return sequence_inputs.finish(spec, first, final_states)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _sequence(derivative, spec, x, *arrays):
    """(the outputs (T, B, units), or the last output; the final states) of the sequence."""
    first, final_states, _ = _forward(derivative, spec, x, arrays)
    return first, final_states


def _forward(derivative, spec, x, arrays):
    """-> (first output, final states, residuals for the backward pass)."""
    kernel, recurrent_kernel, bias, recurrent_bias, states0, parameters, mask, recurrent_mask = (
        sequence_inputs.unpack(spec, arrays)
    )

    def dropped(h):
        return h if recurrent_mask is None else h * recurrent_mask

    def step(states, inputs):
        x_t, mask_t = inputs
        xw_t = x_t @ kernel if bias is None else x_t @ kernel + bias
        hu = dropped(states[0]) @ recurrent_kernel
        if spec.additive:
            z = xw_t + hu
        else:
            z = (xw_t, hu if recurrent_bias is None else hu + recurrent_bias)
        new_states, saved = derivative.forward(z, list(states), parameters)
        # A saved h_t is h_seq's: None here, read back from h_seq on the way back.
        saved = [None if tensor is new_states[0] else tensor for tensor in saved]
        out = ()
        if mask_t is not None:
            keep = mask_t > 0
            fill = jnp.zeros_like(states[0]) if spec.zero_output_for_mask else states[0]
            out = (jnp.where(keep, new_states[0], fill),)
            new_states = [jnp.where(keep, new, old) for new, old in zip(new_states, states)]
        return tuple(new_states), (new_states[0], out, tuple(saved))

    final_states, (h_seq, out_seq, saved) = jax.lax.scan(step, tuple(states0), (x, mask))
    outputs = out_seq[0] if mask is not None else h_seq  # without a mask, the outputs are h
    first = outputs if spec.return_sequences else outputs[-1]
    residuals = (x, arrays, h_seq, saved)
    return first, final_states, residuals


def _sequence_forward(derivative, spec, x, *arrays):
    first, final_states, residuals = _forward(derivative, spec, x, arrays)
    return (first, final_states), residuals


def _sequence_backward(derivative, spec, residuals, cotangents):
    x, arrays, h_seq, saved = residuals
    kernel, recurrent_kernel, bias, recurrent_bias, states0, parameters, mask, recurrent_mask = (
        sequence_inputs.unpack(spec, arrays)
    )
    d_first, d_final = cotangents
    d_final = [jnp.zeros_like(s) if d is None else d for s, d in zip(states0, d_final)]
    masked = mask is not None
    steps = h_seq.shape[0]
    # Without return_sequences the gradient enters at the last step alone (the step picks
    # it by its index: no (T, B, units) tensor of zeros).
    d_outputs = d_first if spec.return_sequences else None
    recurrent_kernel_t = recurrent_kernel.T
    per_row = derivative.per_row_parameter_gradients

    def dropped(h):
        return h if recurrent_mask is None else h * recurrent_mask

    kernel_t = kernel.T
    zeros = [jnp.zeros_like(kernel), jnp.zeros_like(recurrent_kernel)]
    zeros += [
        jnp.zeros(w.shape[-1], w.dtype)
        for w, b in ((kernel, bias), (recurrent_kernel, recurrent_bias))
        if b is not None
    ]

    def step(carry, inputs):
        d_states, d_parameters, d_weights = carry
        saved_t, d_output_t, mask_t, x_t, h_t, t = inputs
        # Where a mask kept the states, h_seq holds h_{t-1} in place of the step's own h_t:
        # harmless, as the step's gradients there are d_new = 0 times it.
        saved_t = [h_t if tensor is None else tensor for tensor in saved_t]
        h_prev_t = jax.lax.dynamic_index_in_dim(h_seq, jnp.maximum(t - 1, 0), keepdims=False)
        h_prev_t = dropped(jnp.where(t > 0, h_prev_t, states0[0]))
        if d_output_t is None:
            d_output_t = jnp.where(t == steps - 1, d_first, jnp.zeros_like(d_first))
        d_states = list(d_states)
        if masked:
            # out_t = keep ? h_new : (zeros or h_{t-1});  s_t = keep ? s_new : s_{t-1}
            keep = mask_t > 0
            d_new = [jnp.where(keep, d, 0.0) for d in d_states]
            passed = [jnp.where(keep, 0.0, d) for d in d_states]
            d_new[0] = d_new[0] + jnp.where(keep, d_output_t, 0.0)
            if not spec.zero_output_for_mask:
                passed[0] = passed[0] + jnp.where(keep, 0.0, d_output_t)
        else:
            d_new, passed = d_states, None
            d_new[0] = d_new[0] + d_output_t
        d_z, d_prev, d_shares = derivative.backward(list(saved_t), d_new, parameters)
        if per_row:
            d_shares = [ops.sum(share, axis=0) for share in d_shares]
        d_parameters = tuple(total + share for total, share in zip(d_parameters, d_shares))
        d_xw, d_hu = (d_z, d_z) if spec.additive else d_z
        d_prev = list(d_prev)
        d_h = dropped(d_hu @ recurrent_kernel_t)
        d_prev[0] = d_h if d_prev[0] is None else d_prev[0] + d_h
        if passed is not None:
            d_prev = [p if d is None else d + p for d, p in zip(d_prev, passed)]
        d_prev = [jnp.zeros_like(s) if d is None else d for d, s in zip(d_prev, d_new)]
        # This step's shares of dW, dU, db, db_h.
        shares = [x_t.T @ d_xw, h_prev_t.T @ d_hu]
        if bias is not None:
            shares.append(d_xw.sum(axis=0))
        if recurrent_bias is not None:
            shares.append(d_hu.sum(axis=0))
        d_weights = tuple(total + share for total, share in zip(d_weights, shares))
        return (tuple(d_prev), d_parameters, d_weights), d_xw @ kernel_t

    carry = (tuple(d_final), tuple(jnp.zeros_like(p) for p in parameters), tuple(zeros))
    (d_states0, d_parameters, d_weights), d_x = jax.lax.scan(
        step, carry, (saved, d_outputs, mask, x, h_seq, jnp.arange(steps)), reverse=True
    )
    d_extras = [jnp.zeros_like(e) for e in (mask, recurrent_mask) if e is not None]
    return (d_x, *d_weights, *d_states0, *d_parameters, *d_extras)


_sequence.defvjp(_sequence_forward, _sequence_backward)
