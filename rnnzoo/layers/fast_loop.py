r"""A fast sequence loop for rnnzoo's layers (TensorFlow backend only).

`keras.layers.RNN` calls the cell once per time step, and autodiff then walks
back through every op of every step: on TensorFlow's CPU executor each op
costs microseconds, and the gradient machinery adds its own (stacks of saved
values, `AddN` accumulations of every weight gradient at every step). Every
zoo cell's step splits in two,

    z_t = x_t W + h_{t-1} U + b                 the projections (matmuls)
    new states = pointwise(z_t, states)         elementwise (gates, cell)

and this loop runs the same maths with fewer ops and bigger matmuls:

- time runs in chunks of steps (10 here), several steps per iteration of a
  `tf.while_loop`. Only h_{t-1} U depends on the previous step; the input's
  matmuls are done once per chunk, its steps stacked as rows: X_chunk W + b
  forward; dX_chunk = dZ_chunk W^T, dW += X_chunk^T dZ_chunk, db += sum dZ
  and dU += H_prev,chunk^T dZ_chunk backward (Keras's loop does these
  matmuls step by step and adds dW, dU and db into their sums at every step);
- forward, each step does h_{t-1} U and the pointwise part, which also
  returns the step's local derivatives (dc_t/dz_i, ...): they feed no later
  step, so the executor computes them off the recurrent path;
- backward (`tf.custom_gradient` over the whole sequence), each step is then
  a few products giving dz_t, and dh_{t-1} = dz_t U^T; sequences are read
  and written through TensorArrays (no slicing op per step). The LSTMs join
  their four gates' dz_t with one DynamicStitch (`_SideBySide`): TensorFlow's
  CPU concat shards even a 256 kB copy over its threads (the stitch made the
  benchmark's LSTM training step 2-5% faster).

What was measured and dropped: projecting the whole input sequence in one
matmul before the loop and taking dW, dU as single matmuls after it (the
(time, batch, 4 units) tensors, 26 MB for the benchmark's LSTM, cost more
memory traffic than the bigger matmuls save; a chunk stays in cache); one
matmul [x_t, h_{t-1}] [W; U] per step (no faster); XLA-compiled loops (its
CPU code for the gates was slower than TensorFlow's kernels here); chunks of
20 or 25 steps (slower); the peepholes into i and f as one product of c_{t-1} tiled
to 4 units, added to z_t or to x_t W + b (the wide ops cost more than the
small ones they replace); a DynamicStitch for the chunk's rows or for the
GRU's and coupled LSTM's 3 blocks, and gathering the outputs batch-major from
the TensorArray (no measurable gain); the layer-normalised cells' norm of x_t W
(it reads no state) run on a chunk's rows at once before its steps, forward and
backward, its saved tensors written and read a chunk at a time (LayerNormLSTM
and LayerNormGRU 3-4% slower than with the norm inside each step in two runs
of `layer_speed.py` on an otherwise idle machine, 2-3% faster in one beside a
training run, 2026-12-01: no gain; the per-step norm already runs off the
recurrent path).

The loop runs the cell's own `pointwise` (see `rnnzoo.cells.base`) and its
`StepDerivative` (`rnnzoo.cells.derivatives`): the hand-written derivative the
cell declares, or else automatic differentiation of `pointwise`, one step at
a time. The loop machinery here knows no cell: a cell whose step is a
projection then `pointwise` runs here as soon as it is declared.

Masks (any pattern, as Keras's loop: a masked step keeps the states and
outputs the previous output, or zeros with `zero_output_for_mask`) and
recurrent dropout in training (one mask of h_{t-1} per sequence, where it
enters h_{t-1} U) run here too.

A call where no gradient tape watches and `training` is off (`predict`,
`evaluate`, sampling, the `serve` function `model.export` traces) runs a
forward loop of its own (`_inference`) without the custom gradient and
without saving anything for a backward pass: a SavedModel cannot hold a
custom gradient that reads TensorArrays, and TensorFlow still differentiates
that loop exactly if a gradient is asked of it later. Its TensorArrays are
read and written one element per loop iteration, the form ONNX converters
know, so `model.export(path, format="onnx")` works too, and TFLite's converter
lowers them to its own ops (with a fixed batch, as for Keras's LSTM). (Not for speed:
TensorFlow's graph optimiser already prunes the saved tensors of a call no
gradient reads; `benchmarks/inference_speed.py`.) Nor do its TensorArrays
compile with XLA: in code compiled so (`xla_reason`), the layer runs Keras's
loop.

The results equal `keras.layers.RNN(cell)` up to float rounding, gradients
included (tests/layers/test_fast_loop.py); `RecurrentLayer.inner_loop` falls
back to Keras's loop wherever `RecurrentLayer.loop_choice` gives a reason.
"""

import tensorflow as tf

from rnnzoo.layers import sequence_inputs

try:  # whether a gradient tape is recording: TensorFlow's own test, not public API
    from tensorflow.python.eager.record import could_possibly_record
except ImportError:  # then every call keeps its custom gradient, as in training

    def could_possibly_record():
        return True


try:  # whether the graph being built compiles with XLA: TensorFlow's own test, not public API
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
except ImportError:  # then a call under XLA fails to compile, as before this check

    def GraphOrParentsInXlaContext(graph):  # noqa: N802 (TensorFlow's name)
        return False


def xla_reason():
    """Why the loop can't run here (the graph compiles with XLA, `jit_compile=True`), or None."""
    if GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
        return "XLA compilation (jit_compile=True): the fast loop's TensorArrays don't compile"
    return None


# Steps per loop iteration (see `_chunked_loop`), whose input-side matmuls
# run as one (see `_Projection`). Measured on the benchmark's LSTM and vanilla
# RNN: chunks of 10 were as fast as or faster than chunks of 5 or 20.
_FORWARD_CHUNK = 10
_BACKWARD_CHUNK = 10


def run(layer, sequences, initial_state, mask=None, training=False):
    """`keras.layers.RNN.inner_loop`, fast: -> (last_output, outputs, states).

    `outputs` is (batch, time, units) in the order of processing (reversed
    time for `go_backwards`), or (batch, 1, units) without `return_sequences`,
    as Keras's loop returns them.
    """
    spec, x, arrays = sequence_inputs.prepare(layer, sequences, initial_state, mask, training)
    if training or could_possibly_record():
        results = _sequence_function(layer.cell.derivative(), spec)(x, *arrays)
    else:
        # Inference with no tape watching: no custom gradient, so `model.export` can save it.
        results = _inference(layer.cell, spec, x, arrays)
    return sequence_inputs.finish(spec, results[0], results[1:])


def _inference(cell, spec, x, arrays):
    """The sequence forward alone -> [outputs or the last output, *final states].

    The forward loop's chunks of `_FORWARD_CHUNK` steps (one matmul projects a
    chunk's inputs), written so that ONNX converters (tf2onnx) turn it into
    ONNX Loops: each iteration of a `tf.while_loop` reads its chunk from a
    TensorArray at the iteration's index and writes the chunk's outputs,
    stacked, as one element of another; the steps left over (length mod
    chunk) run after it as one chunk where the length is known when traced
    (a sequence of one step runs no loop at all), else in a second loop, one
    at a time. Nothing is written outside the
    loops (the training forward, `_forward_loop`, writes h_0 and its last chunk
    there). About as fast as that forward (0.93x to 1.12x of it in
    `benchmarks/inference_speed.py`, 2026-12-04).
    """
    kernel_weights, recurrent_kernel, bias, recurrent_bias, states0, parameters, *masks = (
        sequence_inputs.unpack(spec, arrays)
    )
    mask = masks[0]
    projection = _Projection(kernel_weights, recurrent_kernel, bias, recurrent_bias, spec.additive)
    x = projection.with_bias_feature(x)
    batch, dtype = x.shape[1], states0[0].dtype
    length = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    full = length // _FORWARD_CHUNK
    middle = full * _FORWARD_CHUNK

    def run_steps(xw_rows, mask_steps, states, out_prev):
        """The steps of one iteration: -> (their outputs, states, last output)."""
        size, outputs = len(mask_steps), []
        for k, xw_t in enumerate(tf.split(xw_rows, size) if size > 1 else [xw_rows]):
            xw_t.set_shape([batch, xw_rows.shape[-1]])
            new_states = list(
                cell.pointwise(projection.step(xw_t, states[0]), states, parameters)[0]
            )
            out_t = new_states[0]
            if mask_steps[k] is not None:
                out_t, new_states = _masked(mask_steps[k], new_states, states, out_prev, spec)
            states, out_prev = new_states, out_t
            outputs.append(out_t)
        return outputs, states, out_prev

    def loop(start, steps, size, states, out_prev):
        """`steps` iterations of `size` steps from time `start`: -> (outputs, states, last)."""
        span = x[start : start + steps * size]
        shape = tf.concat([[steps, size * tf.shape(x)[1]], tf.shape(x)[2:]], axis=0)
        x_array = _unstacked(tf.reshape(span, shape), [None, x.shape[-1]])
        mask_array = None
        if mask is not None:
            mask_span = mask[start : start + steps * size]
            mask_shape = tf.concat([[steps, size], tf.shape(mask)[1:]], axis=0)
            mask_array = _unstacked(tf.reshape(mask_span, mask_shape), [size, *mask.shape[1:]])
        # The outputs' TensorArray, with return_sequences (a loop carries no None).
        out_arrays = []
        if spec.return_sequences:
            element_shape = [size, *states0[0].shape]
            out_arrays = [tf.TensorArray(dtype, size=steps, element_shape=element_shape)]

        def body(i, states, out_prev, out_arrays):
            xw_rows = projection.input_projection(x_array.read(i))
            mask_steps = [None] * size
            if mask_array is not None:
                mask_steps = tf.unstack(mask_array.read(i), num=size)
            outputs, states, out_prev = run_steps(xw_rows, mask_steps, states, out_prev)
            out_arrays = [array.write(i, tf.stack(outputs)) for array in out_arrays]
            return i + 1, states, out_prev, out_arrays

        carry = (tf.constant(0), states, out_prev, out_arrays)
        _, states, out_prev, out_arrays = tf.while_loop(
            lambda i, *_: i < steps, body, carry, maximum_iterations=steps
        )
        if not out_arrays:
            return None, states, out_prev
        units = states0[0].shape[-1]
        if tf.executing_eagerly():  # every shape is known
            outputs = out_arrays[0].stack()
        else:  # stacked with the element shape known at run time: the list may be empty
            # (fewer steps than a chunk) and the batch unknown when traced
            outputs = tf.raw_ops.TensorListStack(
                input_handle=out_arrays[0].flow,
                element_shape=tf.stack([size, tf.shape(x)[1], units]),
                element_dtype=dtype,
            )
        return tf.reshape(outputs, [-1, batch or tf.shape(x)[1], units]), states, out_prev

    states, out_prev = list(states0), tf.zeros_like(states0[0])
    pieces = []  # the outputs of the chunks' loop, then of the rest
    if not isinstance(full, int) or full > 0:
        outputs, states, out_prev = loop(0, full, _FORWARD_CHUNK, states, out_prev)
        pieces.append(outputs)
    if isinstance(length, int):  # a known length: the rest as one chunk, no loop
        if length > middle:
            xw_rows = projection.input_projection(x[middle:])
            mask_steps = [None] * (length - middle) if mask is None else tf.unstack(mask[middle:])
            outputs, states, out_prev = run_steps(xw_rows, mask_steps, states, out_prev)
            pieces.append(tf.stack(outputs))
    else:
        outputs, states, out_prev = loop(middle, length - middle, 1, states, out_prev)
        pieces.append(outputs)
    if not spec.return_sequences:
        return [out_prev, *states]
    return [pieces[0] if len(pieces) == 1 else tf.concat(pieces, axis=0), *states]


def _masked(mask_t, new_states, states, out_prev, spec):
    """A step under a mask -> (its output, its states): a masked step keeps the states and
    outputs the last output (or zeros, with `zero_output_for_mask`), as Keras's loop does."""
    keep = tf.cast(mask_t, tf.bool)
    fill = tf.zeros_like(out_prev) if spec.zero_output_for_mask else out_prev
    kept = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
    return tf.where(keep, new_states[0], fill), kept


def _unstacked(tensor, element_shape):
    """A TensorArray of `tensor`'s first axis."""
    return tf.TensorArray(
        tensor.dtype, size=tf.shape(tensor)[0], element_shape=element_shape
    ).unstack(tensor)


def _forward(derivative, spec, x, arrays):
    """The whole sequence forward -> (outputs, what the backward pass reads).

    The outputs are the outputs (T, B, units) if `return_sequences`, else the
    last output (B, units); then the final states."""
    kernel_weights, recurrent_kernel, bias, recurrent_bias, states0, parameters, *masks = (
        sequence_inputs.unpack(spec, arrays)
    )
    mask, recurrent_mask = masks
    projection = _Projection(
        kernel_weights,
        recurrent_kernel,
        bias,
        recurrent_bias,
        spec.additive,
        recurrent_mask,
    )
    x_rows = projection.with_bias_feature(x)
    h_seq, out_seq, final_states, saved_arrays = _forward_loop(
        derivative, projection, x_rows, states0, parameters, mask, spec
    )
    if spec.return_sequences:
        first = h_seq[1:] if out_seq is None else out_seq
    else:
        first = final_states[0] if out_seq is None else out_seq
    forward = (projection, x_rows, h_seq, final_states, saved_arrays, parameters, masks)
    return [first, *final_states], forward


def _sequence_function(derivative, spec):
    """The whole sequence as one op with a custom gradient.

    Inputs: x (T, B, features), then `sequence_inputs.prepare`'s arrays: W, U,
    b and b_h where `spec.has_biases` says so, the initial states, the
    pointwise parameters, the mask (T, B, 1) and the recurrent dropout mask
    (B, units) where `spec` says so.
    Outputs: the outputs (T, B, units) if `return_sequences`, else the last
    output (B, units); then the final states.
    """

    @tf.custom_gradient
    def sequence(x, *arrays):
        outputs, forward = _forward(derivative, spec, x, arrays)
        first = outputs[0]
        projection, x_rows, h_seq, final_states, saved_arrays, parameters, masks = forward
        mask, recurrent_mask = masks

        def gradient(*upstream):
            upstream = list(upstream)
            d_first = upstream.pop(0)
            d_final = [tf.zeros_like(s) if d is None else d for s, d in zip(final_states, upstream)]
            if d_first is None:
                d_first = tf.zeros_like(first)
            d_x, d_weights, d_states0, d_parameters = _backward_loop(
                derivative,
                projection,
                x_rows,
                h_seq,
                d_first,
                d_final,
                saved_arrays,
                parameters,
                mask,
                spec,
            )
            d_x, d_weights = projection.without_bias_feature(d_x, d_weights)
            d_extras = [tf.zeros_like(e) for e in [mask, recurrent_mask] if e is not None]
            return [d_x, *d_weights, *d_states0, *d_parameters, *d_extras]

        return outputs, gradient

    return sequence


class _Projection:
    """The matmuls of a step, x_t W + b and h_{t-1} U, forward and backward.

    Only h_{t-1} U depends on the previous step. The input's matmuls are
    done for a chunk of steps at once, the chunk's steps stacked as rows:
    forward X_chunk W + b, backward dX_chunk = dZ_chunk W^T, and the weights'
    gradients dW += X_chunk^T dZ_chunk, db += sum dZ_chunk and
    dU += H_prev,chunk^T dZ_chunk. Per step remain h_{t-1} U and
    dh_{t-1} = dz_t U^T.

    The input bias rides in the matmuls as one more weight row, [W; b], for
    a feature of ones appended to x: no separate bias op in either pass.
    """

    def __init__(
        self, kernel_weights, recurrent_kernel, bias, recurrent_bias, additive, recurrent_mask=None
    ):
        self.input_size = kernel_weights.shape[0]
        if bias is not None:
            kernel_weights = tf.concat([kernel_weights, bias[None, :]], axis=0)
        self.kernel_weights, self.recurrent_kernel = kernel_weights, recurrent_kernel
        self.bias, self.recurrent_bias = bias, recurrent_bias
        self.additive = additive
        # Recurrent dropout: h_{t-1} enters its matmul times this (B, units) mask.
        self.recurrent_mask = recurrent_mask

    def dropped(self, h_prev):
        """h_{t-1} as it enters h_{t-1} U (times the recurrent dropout mask, if any)."""
        return h_prev if self.recurrent_mask is None else h_prev * self.recurrent_mask

    def with_bias_feature(self, x):
        """x (T, B, features), with a feature of ones if there is an input bias."""
        return x if self.bias is None else tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)

    def without_bias_feature(self, d_x, d_weights):
        """The gradients w.r.t. x and [W, U, b, b_h].

        Computed from those w.r.t. [x, 1] and [[W; b], U, b_h].
        """
        if self.bias is None:
            return d_x, d_weights
        d_kernel, d_bias = tf.split(d_weights[0], [self.input_size, 1], axis=0)
        return d_x[..., : self.input_size], [d_kernel, d_weights[1], d_bias[0], *d_weights[2:]]

    def input_projection(self, x_chunk):
        """X_chunk W + b, (steps * batch, width), for the chunk's time-major inputs."""
        x_rows = tf.reshape(x_chunk, [-1, self.kernel_weights.shape[0]])
        return tf.matmul(x_rows, self.kernel_weights)

    def step(self, xw, h_prev):
        """z_t: x_t W + b + h_{t-1} U if additive, else (x_t W + b, h_{t-1} U + b_h)."""
        hu = tf.matmul(self.dropped(h_prev), self.recurrent_kernel)
        if self.additive:
            return xw + hu
        return xw, hu if self.recurrent_bias is None else tf.nn.bias_add(hu, self.recurrent_bias)

    def split(self, d_z):
        """(d(x_t W + b), d(h_{t-1} U)) from the gradient w.r.t. z_t."""
        return (d_z, d_z) if self.additive else d_z

    def zero_gradients(self):
        """Zero gradients of [W, U, b]; also readies the transposed weights."""
        self.kernel_weights_t = tf.transpose(self.kernel_weights)
        self.recurrent_kernel_t = tf.transpose(self.recurrent_kernel)
        weights = [self.kernel_weights, self.recurrent_kernel, self.recurrent_bias]
        return [tf.zeros_like(w) for w in weights if w is not None]

    def step_backward(self, d_z):
        """dh_{t-1} through h_{t-1} U."""
        return self.dropped(tf.matmul(self.split(d_z)[1], self.recurrent_kernel_t))

    def rows(self, d_zs):
        """(dXW, dHU) of a chunk, its steps' gradients (`d_zs`, in time order) stacked as rows."""
        d_xw, d_hu = zip(*[self.split(d_z) for d_z in d_zs])
        d_xw = _rows(d_xw)
        return d_xw, (d_xw if self.additive else _rows(d_hu))

    def chunk_backward(self, d_weights, d_xw, d_hu, x_rows, h_prev_rows):
        """-> (dX_chunk (steps * batch, features), d_weights plus the chunk's shares)."""
        if self.recurrent_mask is not None:
            steps = tf.shape(h_prev_rows)[0] // tf.shape(self.recurrent_mask)[0]
            h_prev_rows = h_prev_rows * tf.tile(self.recurrent_mask, [steps, 1])
        shares = [
            tf.matmul(x_rows, d_xw, transpose_a=True),
            tf.matmul(h_prev_rows, d_hu, transpose_a=True),
        ]
        if self.recurrent_bias is not None:
            # The sum over rows, as BiasAdd's gradient kernel (reduce_sum over
            # axis 0 is several times slower on TensorFlow's CPU).
            shares.append(tf.raw_ops.BiasAddGrad(out_backprop=d_hu))
        d_x = tf.matmul(d_xw, self.kernel_weights_t)
        return d_x, [total + share for total, share in zip(d_weights, shares)]


class _SideBySide:
    """`tf.concat(tensors, axis=-1)` for (batch, units) tensors, as one DynamicStitch.

    TensorFlow's CPU concat along the last axis shards its copy over the
    intra-op threads; for the few hundred kilobytes of one step's gradient
    that costs several times the copy itself (measured: ~70 us against ~9 us
    per step's d_z on the benchmark's LSTM). Seen as rows of width units,
    the result (batch, k units) is (k batch, units) with row k b + j from
    the j-th tensor, which DynamicStitch assembles with one serial copy per
    row. The row indices are made once, outside the loops.
    """

    def __init__(self, batch_size, counts):
        rows = tf.range(batch_size)
        self.indices = {k: [rows * k + j for j in range(k)] for k in counts}

    def __call__(self, tensors):
        k, units = len(tensors), tensors[0].shape[-1]
        stitched = tf.reshape(tf.dynamic_stitch(self.indices[k], tensors), [-1, k * units])
        # The reshape loses a static batch size, which the loop's states keep.
        stitched.set_shape([tensors[0].shape[0], k * units])
        return stitched


def _zeros_per_row(rows, parameter):
    """Zeros (batch, *parameter's shape), the batch being the rows of `rows`."""
    shape = tf.concat([tf.shape(rows)[:1], tf.shape(parameter)], axis=0)
    zeros = tf.zeros(shape, parameter.dtype)
    zeros.set_shape([rows.shape[0], *parameter.shape])
    return zeros


def _rows(tensors):
    """Tensors (batch, width), one per step, stacked as rows (steps * batch, width)."""
    return tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=0)


def _as_rows(sequence):
    """A (steps, batch, width) slice of a sequence as rows (steps * batch, width)."""
    return tf.reshape(sequence, [-1, sequence.shape[-1]])


def _times(start, count):
    """The time indices start, start + 1, ..., start + count - 1 (one op each but the first)."""
    return [start] + [start + k for k in range(1, count)]


def _array(dtype, size, element_shape):
    """A TensorArray of `size` steps whose elements can be read more than once."""
    return tf.TensorArray(dtype, size=size, element_shape=element_shape, clear_after_read=False)


def _chunked_loop(chunk_body, length, carry, chunk, backwards=False, static_length=None):
    """Runs `carry = chunk_body(start, size, carry)` over the chunks of time steps.

    A chunk is `size` consecutive steps from `start`: `chunk` of them per
    iteration of a `tf.while_loop`, forward from time 0, backwards from the
    end. The steps left over (length mod chunk) run as one shorter chunk
    outside the loop when `static_length` is known (28 steps: two chunks of 10
    and one of 8), else one by one in a second loop. Several steps per loop
    iteration also cut the loop's own per-iteration ops.
    """

    def run(size, t, carry, stop):
        # t: the next step forward, the first step after the next chunk backwards.
        def body(t, carry):
            start = t - size if backwards else t
            return (start if backwards else t + size), chunk_body(start, size, carry)

        return tf.while_loop(
            lambda t, carry: (t >= stop + size) if backwards else (t + size <= stop),
            body,
            (t, carry),
            maximum_iterations=(t - stop if backwards else stop - t) // size,
        )

    if static_length is not None and chunk > 1:
        full, rest = divmod(static_length, chunk)
        middle = full * chunk
        if backwards:
            if rest:
                carry = chunk_body(middle, rest, carry)
            return run(chunk, tf.constant(middle), carry, 0)[1] if full else carry
        if full:
            carry = run(chunk, tf.constant(0), carry, middle)[1]
        return chunk_body(middle, rest, carry) if rest else carry
    t = length if backwards else tf.constant(0)
    if chunk > 1:
        t, carry = run(chunk, t, carry, 0 if backwards else length)
    return run(1, t, carry, 0 if backwards else length)[1]


def _forward_loop(derivative, projection, x, states0, parameters, mask, spec):
    """-> (h sequence, output sequence or last output, final states, saved arrays).

    The h sequence is (T+1, B, units), the initial state first: the states'
    h at each step, what h_{t-1} U reads. Without a mask the outputs are
    those h, and the second result is None; with one, it is the outputs
    (T, B, units) with `return_sequences`, else the last output (B, units).
    """
    length = tf.shape(x)[0]
    dtype = states0[0].dtype
    batch = states0[0].shape[0]
    state_arrays = [_array(dtype, length + 1, states0[0].shape).write(0, states0[0])]
    saved_arrays = [_array(dtype, length, [batch, width]) for width in derivative.saved_widths()]
    masked = mask is not None
    out_array = (
        _array(dtype, length, states0[0].shape) if masked and spec.return_sequences else None
    )

    def chunk_body(start, size, carry):
        states, state_arrays, saved_arrays, outs = carry
        out_prev, out_array = (list(outs) + [None, None])[:2]
        xw = projection.input_projection(x[start : start + size])
        times = _times(start, size + 1)
        for k, xw_t in enumerate(tf.split(xw, size, axis=0) if size > 1 else [xw]):
            # The reshape to rows loses a static batch size (a stateful layer
            # has one); the loop's states must keep their shapes. No op.
            xw_t.set_shape([x.shape[1], xw.shape[-1]])
            z = projection.step(xw_t, states[0])
            new_states, saved = derivative.forward(z, states, parameters)
            if masked:
                out_prev, new_states = _masked(mask[times[k]], new_states, states, out_prev, spec)
                if out_array is not None:
                    out_array = out_array.write(times[k], out_prev)
            states = new_states
            state_arrays = [a.write(times[k + 1], s) for a, s in zip(state_arrays, states)]
            saved_arrays = [a.write(times[k], s) for a, s in zip(saved_arrays, saved)]
        outs = [o for o in (out_prev, out_array) if o is not None] if masked else []
        return states, state_arrays, saved_arrays, outs

    # With a mask, the loop also carries the last output (and the outputs' array).
    outs = [tf.zeros_like(states0[0])] + ([out_array] if out_array is not None else [])
    carry = (states0, state_arrays, saved_arrays, outs if masked else [])
    final_states, state_arrays, saved_arrays, outs = _chunked_loop(
        chunk_body, length, carry, _FORWARD_CHUNK, static_length=x.shape[0]
    )
    outputs = None
    if masked:
        outputs = outs[1].stack() if spec.return_sequences else outs[0]
    for array in saved_arrays:  # read by the backward pass only, if there is one
        getattr(array, "mark_used", lambda: None)()
    return state_arrays[0].stack(), outputs, final_states, saved_arrays


def _backward_loop(
    derivative, projection, x, h_seq, d_first, d_final, saved_arrays, parameters, mask, spec
):
    """-> (d x (T, B, features), d [W, U, b, b_h], d initial states, d parameters).

    `d_first` is the gradient of the first output: of the outputs (T, B,
    units) with `return_sequences`, else of the last output (B, units).
    """
    length = tf.shape(x)[0]
    side_by_side = _SideBySide(tf.shape(x)[1], counts=(derivative.cell.num_gates,))
    masked = mask is not None
    d_outputs = d_first if spec.return_sequences else None
    d_final = list(d_final)
    if masked:
        # The last output is its own output: its gradient enters at the last step.
        d_out_next = tf.zeros_like(d_final[0]) if spec.return_sequences else d_first
    else:
        d_out_next = tf.zeros_like(d_final[0])  # unused
        if not spec.return_sequences:
            d_final[0] = d_final[0] + d_first  # the last output is the final h

    def chunk_body(start, size, carry):
        d_states, d_out, d_weights, d_parameters, d_x_array = carry
        d_zs = []
        if d_outputs is not None:
            d_outputs_chunk = tf.unstack(d_outputs[start : start + size], num=size)
        for k, t in reversed(list(enumerate(_times(start, size)))):
            d_states = list(d_states)
            if masked:
                keep = tf.cast(mask[t], tf.bool)
                if d_outputs is not None:
                    d_out = d_out + d_outputs_chunk[k]
                # out_t = keep ? h_new : (zeros or out_{t-1});  s_t = keep ? s_new : s_{t-1}
                d_new = [tf.where(keep, d, tf.zeros_like(d)) for d in d_states]
                passed = [tf.where(keep, tf.zeros_like(d), d) for d in d_states]
                d_new[0] = d_new[0] + tf.where(keep, d_out, tf.zeros_like(d_out))
                d_out = (
                    tf.zeros_like(d_out)
                    if spec.zero_output_for_mask
                    else tf.where(keep, tf.zeros_like(d_out), d_out)
                )
            else:
                d_new, passed = d_states, None
                if d_outputs is not None:
                    d_new[0] = d_new[0] + d_outputs_chunk[k]
            saved = [a.read(t) for a in saved_arrays]
            d_z, d_prev, d_shares = derivative.backward(saved, d_new, parameters, side_by_side)
            d_parameters = [total + share for total, share in zip(d_parameters, d_shares)]
            d_h = projection.step_backward(d_z)
            d_prev = list(d_prev)
            d_prev[0] = d_h if d_prev[0] is None else d_prev[0] + d_h
            if passed is not None:
                d_prev = [p if d is None else d + p for d, p in zip(d_prev, passed)]
            d_states = [tf.zeros_like(s) if d is None else d for d, s in zip(d_prev, d_new)]
            d_zs.insert(0, d_z)
        d_xw, d_hu = projection.rows(d_zs)
        d_x, d_weights = projection.chunk_backward(
            d_weights,
            d_xw,
            d_hu,
            _as_rows(x[start : start + size]),
            _as_rows(h_seq[start : start + size]),
        )
        d_x = tf.reshape(d_x, [size, -1, x.shape[-1]])
        d_x_array = d_x_array.scatter(tf.range(start, start + size), d_x)
        return d_states, d_out, d_weights, d_parameters, d_x_array

    per_row = derivative.per_row_parameter_gradients
    carry = (
        d_final,
        d_out_next,
        projection.zero_gradients(),
        [_zeros_per_row(x[0], p) if per_row else tf.zeros_like(p) for p in parameters],
        _array(x.dtype, length, x.shape[1:]),
    )
    d_states0, _, d_weights, d_parameters, d_x_array = _chunked_loop(
        chunk_body, length, carry, _BACKWARD_CHUNK, backwards=True, static_length=x.shape[0]
    )
    if per_row:
        # Summed over the batch once: BiasAdd's gradient kernel sums over rows
        # (reduce_sum over axis 0 is several times slower on TensorFlow's CPU).
        # A parameter of more than one axis (LayerNormGRU's (2, 3 units) bias) sums over
        # axis 0 alone: BiasAddGrad would sum over every axis but the last.
        d_parameters = [
            tf.raw_ops.BiasAddGrad(out_backprop=d) if d.shape.rank == 2 else tf.reduce_sum(d, 0)
            for d in d_parameters
        ]
    return d_x_array.stack(), d_weights, d_states0, d_parameters
