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
the TensorArray (no measurable gain).

The GRU's reset gate scales h_{t-1} U + b_h apart from x_t W + b_x, so its
kernel reads the two projections separately, not their sum.

The results equal `keras.layers.RNN(cell)` up to float rounding, gradients
included (tests/layers/test_fast_loop.py). A `PointwiseKernel` holds one cell
family's pointwise part and its derivative; `kernel_for(cell)` finds it, and
`RecurrentLayer.inner_loop` falls back to Keras's loop wherever none applies.
"""

import keras
import tensorflow as tf
from keras import activations

from rnnzoo.cells.gru import GRUCell
from rnnzoo.cells.lstm import CoupledLSTMCell, LSTMCell, PeepholeLSTMCell
from rnnzoo.cells.vanilla import IRNNCell, VanillaRNNCell

# Steps per loop iteration (see `_chunked_loop`), whose input-side matmuls
# run as one (see `_Projection`). Measured on the benchmark's LSTM and vanilla
# RNN: chunks of 10 were as fast as or faster than chunks of 5 or 20.
_FORWARD_CHUNK = 10
_BACKWARD_CHUNK = 10

# The vector-Jacobian product of an activation, from its output y and the
# gradient dy w.r.t. y: returns dy * activation'(z) where y = activation(z).
_ACTIVATION_GRADIENTS = {
    activations.tanh: lambda y, dy: tf.raw_ops.TanhGrad(y=y, dy=dy),
    activations.sigmoid: lambda y, dy: tf.raw_ops.SigmoidGrad(y=y, dy=dy),
    # relu(z) > 0 exactly where z > 0, so the output can stand for the input.
    activations.relu: lambda y, dy: tf.raw_ops.ReluGrad(gradients=dy, features=y),
    activations.linear: lambda y, dy: dy,
}


def _activation_gradient(activation):
    """The VJP of `activation` from its output, or None if it is not in the table."""
    return _ACTIVATION_GRADIENTS.get(activation)


def _concat(tensors):
    """(batch, units) tensors side by side: the default `side_by_side` of `backward`."""
    return tf.concat(tensors, axis=-1)


class PointwiseKernel:
    """One cell family's step after its matmuls, and the step's explicit VJP.

    The step reads the projections `z`: for an `additive` kernel their sum
    z_t = x_t W + b + h_{t-1} U (batch, width), otherwise the pair
    (x_t W + b, h_{t-1} U + b_h). States are (batch, units) each, h first.

    `forward` also returns `saved`, (batch, units) tensors named by
    `saved_names`: mostly the step's local derivatives (dc_dzi = dc_t/dz_i,
    ...). They do not feed the next step, so the executor computes them off
    the recurrent path, and `backward` is then a few products per step.
    """

    saved_names = ()
    # Whether the step reads the two projections only through their sum (then
    # both get the same gradient, dz_t).
    additive = True

    def __init__(self, cell):
        self.cell = cell
        self.activation_gradient = _activation_gradient(cell.activation)
        self.gate_gradient = _activation_gradient(
            getattr(cell, "recurrent_activation", cell.activation)
        )

    @property
    def supported(self):
        """Whether this kernel computes exactly what `cell.call` does."""
        return self.activation_gradient is not None and self.gate_gradient is not None

    def input_bias(self, dtype):
        """The bias added to x_t W, or None."""
        return None if self.cell.bias is None else tf.cast(self.cell.bias, dtype)

    def recurrent_bias(self, dtype):
        """A bias added to h_{t-1} U (not additive kernels), or None."""
        return None

    def parameters(self, dtype):
        """Extra pointwise parameters (tensors), passed to `forward` and `backward`."""
        return []

    def forward(self, z, states, parameters):
        """One step -> (new_states, saved)."""
        raise NotImplementedError

    def backward(self, saved, d_states, parameters, side_by_side=None):
        """One step backwards -> (d_z, d_states_prev, d_parameters).

        `d_states` are the loss's gradients w.r.t. the step's new states;
        `d_z` has the structure of `z`; `d_states_prev` are the gradients
        w.r.t. the previous states *without* the path through h_{t-1} U (the
        loop adds it; None stands for zero); `d_parameters` are the step's
        shares in the gradients of `parameters`, not yet summed over the
        batch: (batch, *parameter shape) each (the loop sums them over the
        steps, and over the batch once at the end). `side_by_side(tensors)`
        joins (batch, units) tensors along their last axis as `tf.concat`
        does (the default); the loop passes a faster one (`_SideBySide`),
        which the LSTM kernels use for d_z.
        """
        raise NotImplementedError


class VanillaKernel(PointwiseKernel):
    """h_t = activation(z_t)."""

    saved_names = ("h",)

    def forward(self, z, states, parameters):
        h = self.cell.activation(z)
        return [h], [h]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        return self.activation_gradient(saved[0], d_states[0]), [None], []


class LSTMKernel(PointwiseKernel):
    """[i, f, g, o] = acts(z_t); c_t = f c_{t-1} + i g; h_t = o tanh(c_t)."""

    saved_names = ("dc_dc_prev", "dh_dc", "dc_dzi", "dc_dzf", "dc_dzg", "dh_dzo")

    def forward(self, z, states, parameters):
        _, c_prev = states
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        i = self.cell.recurrent_activation(z_i)
        f = self.cell.recurrent_activation(z_f)
        g = self.cell.activation(z_g)
        o = self.cell.recurrent_activation(z_o)
        c = f * c_prev + i * g
        tanh_c = self.cell.activation(c)
        h = o * tanh_c
        saved = [
            f,
            self.activation_gradient(tanh_c, o),
            self.gate_gradient(i, g),
            self.gate_gradient(f, c_prev),
            self.activation_gradient(g, i),
            self.gate_gradient(o, tanh_c),
        ]
        return [h, c], saved

    def backward(self, saved, d_states, parameters, side_by_side=None):
        d_gates, d_c_prev = self.gate_gradients(saved, d_states)
        return (side_by_side or _concat)(d_gates), [None, d_c_prev], []

    def gate_gradients(self, saved, d_states):
        """-> ([dz_i, dz_f, dz_g, dz_o], d c_{t-1}) of one step."""
        dc_dc_prev, dh_dc, dc_dzi, dc_dzf, dc_dzg, dh_dzo = saved[:6]
        d_h, d_c = d_states
        d_c = d_c + d_h * dh_dc
        return [d_c * dc_dzi, d_c * dc_dzf, d_c * dc_dzg, d_h * dh_dzo], d_c * dc_dc_prev


class PeepholeLSTMKernel(PointwiseKernel):
    """The LSTM's step with the gates also reading c: see `PeepholeLSTMCell`.

    Through the peepholes c_{t-1} also reaches i and f, and c_t reaches o.
    The peepholes' gradients are summed step by step from (batch, units)
    products, dz_i * c_{t-1}, ..., and over the batch once at the end (taking
    them from the chunk's stacked d_z instead, a split and three row sums per
    chunk, was measured ~7% slower on the benchmark).
    """

    # The LSTM's, and the cell states for the peepholes' gradients.
    saved_names = LSTMKernel.saved_names + ("c_prev", "c")

    def parameters(self, dtype):
        cell = self.cell
        return [tf.cast(p, dtype) for p in (cell.peephole_i, cell.peephole_f, cell.peephole_o)]

    def forward(self, z, states, parameters):
        _, c_prev = states
        p_i, p_f, p_o = parameters
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        i = self.cell.recurrent_activation(z_i + p_i * c_prev)
        f = self.cell.recurrent_activation(z_f + p_f * c_prev)
        g = self.cell.activation(z_g)
        c = f * c_prev + i * g
        o = self.cell.recurrent_activation(z_o + p_o * c)
        tanh_c = self.cell.activation(c)
        h = o * tanh_c
        dc_dzi = self.gate_gradient(i, g)
        dc_dzf = self.gate_gradient(f, c_prev)
        dh_dzo = self.gate_gradient(o, tanh_c)
        saved = [
            tf.add_n([f, dc_dzi * p_i, dc_dzf * p_f]),
            self.activation_gradient(tanh_c, o) + dh_dzo * p_o,
            dc_dzi,
            dc_dzf,
            self.activation_gradient(g, i),
            dh_dzo,
            c_prev,
            c,
        ]
        return [h, c], saved

    def backward(self, saved, d_states, parameters, side_by_side=None):
        # The LSTM's steps backwards, with the peepholes inside `saved`.
        d_gates, d_c_prev = LSTMKernel.gate_gradients(self, saved, d_states)
        d_z_i, d_z_f, _, d_z_o = d_gates
        c_prev, c = saved[6:]
        d_parameters = [d_z_i * c_prev, d_z_f * c_prev, d_z_o * c]
        return (side_by_side or _concat)(d_gates), [None, d_c_prev], d_parameters


class CoupledLSTMKernel(PointwiseKernel):
    """[f, g, o] = acts(z_t); c_t = f c_{t-1} + (1 - f) g; h_t = o tanh(c_t)."""

    saved_names = ("dc_dc_prev", "dh_dc", "dc_dzf", "dc_dzg", "dh_dzo")

    def forward(self, z, states, parameters):
        _, c_prev = states
        z_f, z_g, z_o = tf.split(z, 3, axis=-1)
        f = self.cell.recurrent_activation(z_f)
        g = self.cell.activation(z_g)
        o = self.cell.recurrent_activation(z_o)
        c = f * c_prev + (1.0 - f) * g
        tanh_c = self.cell.activation(c)
        h = o * tanh_c
        saved = [
            f,
            self.activation_gradient(tanh_c, o),
            self.gate_gradient(f, c_prev - g),
            self.activation_gradient(g, 1.0 - f),
            self.gate_gradient(o, tanh_c),
        ]
        return [h, c], saved

    def backward(self, saved, d_states, parameters, side_by_side=None):
        dc_dc_prev, dh_dc, dc_dzf, dc_dzg, dh_dzo = saved
        d_h, d_c = d_states
        d_c = d_c + d_h * dh_dc
        d_z = tf.concat([d_c * dc_dzf, d_c * dc_dzg, d_h * dh_dzo], axis=-1)
        return d_z, [None, d_c * dc_dc_prev], []


class GRUKernel(PointwiseKernel):
    """The GRU's step with `reset_after=True`: see `GRUCell`.

    The reset gate scales h_{t-1} U + b_h apart from x_t W + b_x, so the step
    reads the two projections separately (not `additive`).
    """

    saved_names = ("update", "r", "dh_dzz", "dh_dnz", "dn_drz")
    additive = False

    @property
    def supported(self):
        # reset_after=False puts a matmul after the reset gate: not pointwise.
        return super().supported and self.cell.reset_after

    def input_bias(self, dtype):
        return None if self.cell.bias is None else tf.cast(self.cell.bias[0], dtype)

    def recurrent_bias(self, dtype):
        return None if self.cell.bias is None else tf.cast(self.cell.bias[1], dtype)

    def forward(self, z, states, parameters):
        xw, hu = z
        (h_prev,) = states
        x_z, x_r, x_h = tf.split(xw, 3, axis=-1)
        u_z, u_r, u_h = tf.split(hu, 3, axis=-1)
        update = self.cell.recurrent_activation(x_z + u_z)
        r = self.cell.recurrent_activation(x_r + u_r)
        n = self.cell.activation(x_h + r * u_h)
        h = update * h_prev + (1.0 - update) * n
        saved = [
            update,
            r,
            self.gate_gradient(update, h_prev - n),
            self.activation_gradient(n, 1.0 - update),
            self.gate_gradient(r, u_h),
        ]
        return [h], saved

    def backward(self, saved, d_states, parameters, side_by_side=None):
        update, r, dh_dzz, dh_dnz, dn_drz = saved
        (d_h,) = d_states
        d_z_z, d_n_z = d_h * dh_dzz, d_h * dh_dnz
        d_z_r = d_n_z * dn_drz
        d_xw = tf.concat([d_z_z, d_z_r, d_n_z], axis=-1)
        d_hu = tf.concat([d_z_z, d_z_r, d_n_z * r], axis=-1)
        return (d_xw, d_hu), [d_h * update], []


KERNELS = {
    VanillaRNNCell: VanillaKernel,
    IRNNCell: VanillaKernel,
    LSTMCell: LSTMKernel,
    PeepholeLSTMCell: PeepholeLSTMKernel,
    CoupledLSTMCell: CoupledLSTMKernel,
    GRUCell: GRUKernel,
}


def kernel_for(cell):
    """The `PointwiseKernel` for `cell`, or None where the fast loop does not apply.

    Only exact classes match: a subclass may change the step's equations.
    """
    kernel_class = KERNELS.get(type(cell))
    if kernel_class is None:
        return None
    kernel = kernel_class(cell)
    return kernel if kernel.supported else None


def applies(layer, mask, training):
    """Whether `run` can stand in for `keras.layers.RNN.inner_loop` on this call."""
    return (
        keras.backend.backend() == "tensorflow"
        and mask is None
        and not layer.unroll
        and not (training and layer.cell.recurrent_dropout > 0)
        and kernel_for(layer.cell) is not None
    )


def run(layer, sequences, initial_state, training=False):
    """`keras.layers.RNN.inner_loop`, fast: -> (last_output, outputs, states).

    `outputs` is (batch, time, units) in the order of processing (reversed
    time for `go_backwards`), or (batch, 1, units) without `return_sequences`,
    as Keras's loop returns them.
    """
    cell = layer.cell
    kernel = kernel_for(cell)
    dtype = cell.compute_dtype
    x = tf.cast(sequences, dtype)
    if training and cell.dropout > 0:
        # One mask per sequence, the one the cell would use at every step.
        x = x * tf.expand_dims(tf.cast(cell.get_dropout_mask(sequences[:, 0, :]), dtype), 1)
    x = tf.transpose(x, [1, 0, 2])
    if layer.go_backwards:
        x = tf.reverse(x, [0])
    biases = [kernel.input_bias(dtype), kernel.recurrent_bias(dtype)]
    weights = [tf.cast(cell.kernel, dtype), tf.cast(cell.recurrent_kernel, dtype)]
    weights += [b for b in biases if b is not None]
    states = [tf.cast(state, dtype) for state in initial_state]
    sequence = _sequence_function(
        kernel, layer.return_sequences, len(states), [b is not None for b in biases]
    )
    results = sequence(x, *weights, *states, *kernel.parameters(dtype))
    if layer.return_sequences:
        outputs, states = tf.transpose(results[0], [1, 0, 2]), list(results[1:])
    else:
        states = list(results)
        outputs = tf.expand_dims(states[0], 1)
    return states[0], outputs, states


def _sequence_function(kernel, return_sequences, state_count, has_biases):
    """The whole sequence as one op with a custom gradient.

    Inputs: x (T, B, features), W, U, then b and b_h where `has_biases` says
    so, the initial states, the kernel's parameters. Outputs: H (T, B, units)
    if `return_sequences`, then the final states.
    """

    @tf.custom_gradient
    def sequence(x, kernel_weights, recurrent_kernel, *rest):
        rest = list(rest)
        bias, recurrent_bias = [rest.pop(0) if has else None for has in has_biases]
        states0, parameters = rest[:state_count], rest[state_count:]
        projection = _Projection(
            kernel_weights, recurrent_kernel, bias, recurrent_bias, kernel.additive
        )
        x_rows = projection.with_bias_feature(x)
        h_seq, final_states, saved_arrays = _forward_loop(
            kernel, projection, x_rows, states0, parameters
        )
        outputs = ([h_seq[1:]] if return_sequences else []) + final_states

        def gradient(*upstream):
            upstream = list(upstream)
            d_outputs = upstream.pop(0) if return_sequences else None
            d_final = [tf.zeros_like(s) if d is None else d for s, d in zip(final_states, upstream)]
            d_x, d_weights, d_states0, d_parameters = _backward_loop(
                kernel,
                projection,
                x_rows,
                h_seq,
                d_outputs,
                d_final,
                saved_arrays,
                parameters,
            )
            d_x, d_weights = projection.without_bias_feature(d_x, d_weights)
            return [d_x, *d_weights, *d_states0, *d_parameters]

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

    def __init__(self, kernel_weights, recurrent_kernel, bias, recurrent_bias, additive):
        self.input_size = kernel_weights.shape[0]
        if bias is not None:
            kernel_weights = tf.concat([kernel_weights, bias[None, :]], axis=0)
        self.kernel_weights, self.recurrent_kernel = kernel_weights, recurrent_kernel
        self.bias, self.recurrent_bias = bias, recurrent_bias
        self.additive = additive

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
        hu = tf.matmul(h_prev, self.recurrent_kernel)
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
        return tf.matmul(self.split(d_z)[1], self.recurrent_kernel_t)

    def rows(self, d_zs):
        """(dXW, dHU) of a chunk, its steps' gradients (`d_zs`, in time order) stacked as rows."""
        d_xw, d_hu = zip(*[self.split(d_z) for d_z in d_zs])
        d_xw = _rows(d_xw)
        return d_xw, (d_xw if self.additive else _rows(d_hu))

    def chunk_backward(self, d_weights, d_xw, d_hu, x_rows, h_prev_rows):
        """-> (dX_chunk (steps * batch, features), d_weights plus the chunk's shares)."""
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


def _chunked_loop(chunk_body, length, carry, chunk, backwards=False):
    """Runs `carry = chunk_body(start, size, carry)` over the chunks of time steps.

    A chunk is `size` consecutive steps from `start` (`chunk` of them, and
    then single steps for the rest); forward the chunks run from time 0,
    backwards from the end. Several steps per loop iteration also cut the
    loop's own per-iteration ops.
    """

    def run(size, t, carry):
        # t: the next step forward, the first step after the next chunk backwards.
        def body(t, carry):
            start = t - size if backwards else t
            return (start if backwards else t + size), chunk_body(start, size, carry)

        return tf.while_loop(
            lambda t, carry: (t >= size) if backwards else (t + size <= length),
            body,
            (t, carry),
            maximum_iterations=(t if backwards else length - t) // size,
        )

    t = length if backwards else tf.constant(0)
    if chunk > 1:
        t, carry = run(chunk, t, carry)
    return run(1, t, carry)[1]


def _forward_loop(kernel, projection, x, states0, parameters):
    """-> (h sequence, final states, arrays of the kernel's saved tensors).

    The h sequence is (T+1, B, units), the initial state first.
    """
    length = tf.shape(x)[0]
    dtype = states0[0].dtype
    state_arrays = [_array(dtype, length + 1, states0[0].shape).write(0, states0[0])]
    saved_arrays = [_array(dtype, length, states0[0].shape) for _ in kernel.saved_names]

    def chunk_body(start, size, carry):
        states, state_arrays, saved_arrays = carry
        xw = projection.input_projection(x[start : start + size])
        times = _times(start, size + 1)
        for k, xw_t in enumerate(tf.split(xw, size, axis=0) if size > 1 else [xw]):
            # The reshape to rows loses a static batch size (a stateful layer
            # has one); the loop's states must keep their shapes. No op.
            xw_t.set_shape([x.shape[1], xw.shape[-1]])
            z = projection.step(xw_t, states[0])
            states, saved = kernel.forward(z, states, parameters)
            state_arrays = [a.write(times[k + 1], s) for a, s in zip(state_arrays, states)]
            saved_arrays = [a.write(times[k], s) for a, s in zip(saved_arrays, saved)]
        return states, state_arrays, saved_arrays

    final_states, state_arrays, saved_arrays = _chunked_loop(
        chunk_body, length, (states0, state_arrays, saved_arrays), _FORWARD_CHUNK
    )
    return state_arrays[0].stack(), final_states, saved_arrays


def _backward_loop(kernel, projection, x, h_seq, d_outputs, d_final, saved_arrays, parameters):
    """-> (d x (T, B, features), d [W, U, b, b_h], d initial states, d parameters)."""
    length = tf.shape(x)[0]
    side_by_side = _SideBySide(tf.shape(x)[1], counts=(kernel.cell.num_gates,))

    def chunk_body(start, size, carry):
        d_states, d_weights, d_parameters, d_x_array = carry
        d_zs = []
        if d_outputs is not None:
            d_outputs_chunk = tf.unstack(d_outputs[start : start + size], num=size)
        for k, t in reversed(list(enumerate(_times(start, size)))):
            d_states = list(d_states)
            if d_outputs is not None:
                d_states[0] = d_states[0] + d_outputs_chunk[k]
            saved = [a.read(t) for a in saved_arrays]
            d_z, d_prev, d_shares = kernel.backward(saved, d_states, parameters, side_by_side)
            d_parameters = [total + share for total, share in zip(d_parameters, d_shares)]
            d_h = projection.step_backward(d_z)
            d_prev[0] = d_h if d_prev[0] is None else d_prev[0] + d_h
            d_states = d_prev
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
        return d_states, d_weights, d_parameters, d_x_array

    carry = (
        d_final,
        projection.zero_gradients(),
        [_zeros_per_row(x[0], p) for p in parameters],
        _array(x.dtype, length, x.shape[1:]),
    )
    d_states0, d_weights, d_parameters, d_x_array = _chunked_loop(
        chunk_body, length, carry, _BACKWARD_CHUNK, backwards=True
    )
    # Summed over the batch once: BiasAdd's gradient kernel sums over rows
    # (reduce_sum over axis 0 is several times slower on TensorFlow's CPU).
    d_parameters = [tf.raw_ops.BiasAddGrad(out_backprop=d) for d in d_parameters]
    return d_x_array.stack(), d_weights, d_states0, d_parameters
