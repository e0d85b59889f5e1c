r"""Derivatives of a cell's pointwise step, for the layers' fast sequence loop.

Every zoo cell's step splits in two (see `rnnzoo.cells.base`):

    z_t = x_t W + h_{t-1} U + b                  the projection (matmuls)
    new states, gates = cell.pointwise(z_t, states, parameters)

The fast loop (`rnnzoo.layers.fast_loop`) does the matmuls itself, a chunk of
steps at a time, and needs the derivative of the pointwise part: given the
loss's gradients with respect to a step's new states, those with respect to
z_t, the previous states and the pointwise parameters (peepholes, ...). A
`StepDerivative` provides it in two halves:

- `forward(z, states, parameters)` runs `cell.pointwise` and returns the new
  states and `saved`: tensors kept for the way back (mostly the step's local
  derivatives, dc_t/dz_i, ..., which feed no later step, so the executor
  computes them off the recurrent path);
- `backward(saved, d_states, parameters)` turns them into the gradients, a
  few products per step.

`AutomaticDerivative` works for any cell: it saves z_t and the previous
states and differentiates `pointwise` again on the way back (a tape over
one step). A cell may declare a hand-written one, `step_derivative`, next to
itself (the LSTMs, the GRU, the vanilla RNN do): fewer ops per step. The
tests check every derivative against automatic differentiation of the cell.
"""

import keras
from keras import activations, ops


def _backend_is_tensorflow():
    return keras.backend.backend() == "tensorflow"


def tanh_vjp(y, dy):
    """dy * tanh'(z) from y = tanh(z)."""
    if _backend_is_tensorflow():
        import tensorflow as tf

        return tf.raw_ops.TanhGrad(y=y, dy=dy)
    return dy * (1.0 - y * y)


def sigmoid_vjp(y, dy):
    """dy * sigmoid'(z) from y = sigmoid(z)."""
    if _backend_is_tensorflow():
        import tensorflow as tf

        return tf.raw_ops.SigmoidGrad(y=y, dy=dy)
    return dy * y * (1.0 - y)


def relu_vjp(y, dy):
    """dy * relu'(z) from y = relu(z): relu(z) > 0 exactly where z > 0."""
    if _backend_is_tensorflow():
        import tensorflow as tf

        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    return ops.where(y > 0, dy, ops.zeros_like(dy))


def linear_vjp(y, dy):
    return dy


_ACTIVATION_VJPS = {
    activations.tanh: tanh_vjp,
    activations.sigmoid: sigmoid_vjp,
    activations.relu: relu_vjp,
    activations.linear: linear_vjp,
}


def activation_vjp(activation):
    """`vjp(y, dy) = dy * activation'(z)` where y = activation(z), or None if unknown."""
    return _ACTIVATION_VJPS.get(activation)


def concatenate(tensors):
    """(batch, units) tensors side by side: the default `side_by_side` of `backward`."""
    return ops.concatenate(tensors, axis=-1)


class StepDerivative:
    """The derivative of one cell's `pointwise`; subclasses write `save` and `backward`.

    Attributes:
        saved_names: The names of the tensors `save` returns, each
            (batch, units) unless `saved_widths` says otherwise.
        per_row_parameter_gradients: Whether `backward` returns the
            parameters' gradients per row of the batch, (batch, *shape), for
            the loop to sum over the steps and then once over the batch
            (cheaper than a sum per step), or already summed, (*shape).
    """

    saved_names = ()
    per_row_parameter_gradients = True

    def __init__(self, cell):
        self.cell = cell

    @property
    def supported(self):
        """Whether this derivative is exact for the cell's configuration (its activations)."""
        return True

    def saved_widths(self):
        """The last dimension of each saved tensor (default: the cell's units)."""
        return [self.cell.units] * len(self.saved_names)

    def forward(self, z, states, parameters):
        """One step -> `(new_states, saved)`."""
        new_states, gates = self.cell.pointwise(z, states, parameters)
        return list(new_states), self.save(z, states, new_states, gates, parameters)

    def save(self, z, states, new_states, gates, parameters):
        """What `backward` needs of this step (see `saved_names`)."""
        raise NotImplementedError

    def backward(self, saved, d_states, parameters, side_by_side=None):
        """One step backwards -> `(d_z, d_states_prev, d_parameters)`.

        `d_states` are the loss's gradients with respect to the step's new
        states; `d_z` has the structure of z (a tensor, or the pair of a
        "pair" projection); `d_states_prev` are the gradients with respect to
        the previous states *without* the path through h_{t-1} U (the loop
        adds it; None stands for zero); `d_parameters`: see
        `per_row_parameter_gradients`. `side_by_side(tensors)` joins
        (batch, units) tensors along their last axis as `concatenate` does;
        the TensorFlow loop passes a faster one.
        """
        raise NotImplementedError

    # Shared by the subclasses: the activation derivatives of the cell.
    def activation_gradient(self, y, dy):
        return activation_vjp(self.cell.activation)(y, dy)

    def gate_gradient(self, y, dy):
        return activation_vjp(self.cell.recurrent_activation)(y, dy)

    def activations_known(self, *names):
        """Whether each named activation of the cell has a known derivative."""
        return all(activation_vjp(getattr(self.cell, name)) is not None for name in names)


class AutomaticDerivative(StepDerivative):
    """Any cell's derivative: save z_t and the previous states, differentiate `pointwise` again.

    The way back re-runs the step's pointwise part under a gradient tape: one
    more forward pass of the (cheap) elementwise maths per step, no
    hand-written derivative needed.
    """

    per_row_parameter_gradients = False

    def __init__(self, cell):
        super().__init__(cell)
        self.pair = cell.projection == "pair"
        z_names = ("xw", "hu") if self.pair else ("z",)
        self.z_count = len(z_names)
        self.saved_names = z_names + tuple(f"{name}_prev" for name in cell.state_names)

    def saved_widths(self):
        width = self.cell.kernel.shape[-1]
        return [width] * self.z_count + [self.cell.units] * len(self.cell.state_names)

    def save(self, z, states, new_states, gates, parameters):
        return [*(z if self.pair else [z]), *states]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        z, states = saved[: self.z_count], list(saved[self.z_count :])
        inputs = [*z, *states, *parameters]
        gradients = _vjp(
            lambda *values: self.cell.pointwise(
                tuple(values[: self.z_count]) if self.pair else values[0],
                list(values[self.z_count : self.z_count + len(states)]),
                list(values[self.z_count + len(states) :]),
            )[0],
            inputs,
            d_states,
        )
        d_z = gradients[: self.z_count]
        d_states_prev = gradients[self.z_count : self.z_count + len(states)]
        d_parameters = gradients[self.z_count + len(states) :]
        return (tuple(d_z) if self.pair else d_z[0]), d_states_prev, d_parameters


def _vjp(function, inputs, cotangents):
    """The gradients of sum(cotangent * function(*inputs)) with respect to each input."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = function(*inputs)
        gradients = tape.gradient(
            outputs,
            inputs,
            output_gradients=[
                ops.zeros_like(o) if c is None else c for o, c in zip(outputs, cotangents)
            ],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return list(gradients)
    if backend == "jax":
        import jax

        outputs, pullback = jax.vjp(lambda *values: list(function(*values)), *inputs)
        return list(
            pullback([ops.zeros_like(o) if c is None else c for o, c in zip(outputs, cotangents)])
        )
    raise NotImplementedError(f"No automatic step derivative on the {backend!r} backend.")


# ------------------------------------------------------------------ hand-written
class VanillaDerivative(StepDerivative):
    """h_t = activation(z_t): dz_t = dh_t * activation'(z_t)."""

    saved_names = ("h",)

    @property
    def supported(self):
        return self.activations_known("activation")

    def save(self, z, states, new_states, gates, parameters):
        return [new_states[0]]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        return self.activation_gradient(saved[0], d_states[0]), [None], []


class LSTMDerivative(StepDerivative):
    """[i, f, g, o] = acts(z_t); c_t = f c_{t-1} + i g; h_t = o tanh(c_t)."""

    saved_names = ("dc_dc_prev", "dh_dc", "dc_dzi", "dc_dzf", "dc_dzg", "dh_dzo")

    @property
    def supported(self):
        return self.activations_known("activation", "recurrent_activation")

    def save(self, z, states, new_states, gates, parameters):
        c_prev, c = states[1], new_states[1]
        i, f, g, o = (gates[name] for name in ("i", "f", "g", "o"))
        tanh_c = self.cell.activation(c)
        return [
            f,
            self.activation_gradient(tanh_c, o),
            self.gate_gradient(i, g),
            self.gate_gradient(f, c_prev),
            self.activation_gradient(g, i),
            self.gate_gradient(o, tanh_c),
        ]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        d_gates, d_c_prev = self.gate_gradients(saved, d_states)
        return (side_by_side or concatenate)(d_gates), [None, d_c_prev], []

    def gate_gradients(self, saved, d_states):
        """-> ([dz_i, dz_f, dz_g, dz_o], d c_{t-1}) of one step."""
        dc_dc_prev, dh_dc, dc_dzi, dc_dzf, dc_dzg, dh_dzo = saved[:6]
        d_h, d_c = d_states
        d_c = d_c + d_h * dh_dc
        return [d_c * dc_dzi, d_c * dc_dzf, d_c * dc_dzg, d_h * dh_dzo], d_c * dc_dc_prev


class PeepholeLSTMDerivative(LSTMDerivative):
    """The LSTM's, with the gates also reading c: see `PeepholeLSTMCell`.

    Through the peepholes c_{t-1} also reaches i and f, and c_t reaches o.
    The peepholes' gradients are summed step by step from (batch, units)
    products, dz_i * c_{t-1}, ..., and over the batch once at the end (taking
    them from the chunk's stacked d_z instead, a split and three row sums per
    chunk, was measured ~7% slower on the benchmark).
    """

    # The LSTM's, and the cell states for the peepholes' gradients.
    saved_names = LSTMDerivative.saved_names + ("c_prev", "c")

    def save(self, z, states, new_states, gates, parameters):
        c_prev, c = states[1], new_states[1]
        p_i, p_f, p_o = parameters
        i, f, g, o = (gates[name] for name in ("i", "f", "g", "o"))
        tanh_c = self.cell.activation(c)
        dc_dzi = self.gate_gradient(i, g)
        dc_dzf = self.gate_gradient(f, c_prev)
        dh_dzo = self.gate_gradient(o, tanh_c)
        return [
            f + dc_dzi * p_i + dc_dzf * p_f,
            self.activation_gradient(tanh_c, o) + dh_dzo * p_o,
            dc_dzi,
            dc_dzf,
            self.activation_gradient(g, i),
            dh_dzo,
            c_prev,
            c,
        ]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        d_gates, d_c_prev = self.gate_gradients(saved, d_states)
        d_z_i, d_z_f, _, d_z_o = d_gates
        c_prev, c = saved[6:]
        d_parameters = [d_z_i * c_prev, d_z_f * c_prev, d_z_o * c]
        return (side_by_side or concatenate)(d_gates), [None, d_c_prev], d_parameters


class CoupledLSTMDerivative(StepDerivative):
    """[f, g, o] = acts(z_t); c_t = f c_{t-1} + (1 - f) g; h_t = o tanh(c_t)."""

    saved_names = ("dc_dc_prev", "dh_dc", "dc_dzf", "dc_dzg", "dh_dzo")

    @property
    def supported(self):
        return self.activations_known("activation", "recurrent_activation")

    def save(self, z, states, new_states, gates, parameters):
        c_prev, c = states[1], new_states[1]
        f, g, o = (gates[name] for name in ("f", "g", "o"))
        tanh_c = self.cell.activation(c)
        return [
            f,
            self.activation_gradient(tanh_c, o),
            self.gate_gradient(f, c_prev - g),
            self.activation_gradient(g, 1.0 - f),
            self.gate_gradient(o, tanh_c),
        ]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        dc_dc_prev, dh_dc, dc_dzf, dc_dzg, dh_dzo = saved
        d_h, d_c = d_states
        d_c = d_c + d_h * dh_dc
        d_z = concatenate([d_c * dc_dzf, d_c * dc_dzg, d_h * dh_dzo])
        return d_z, [None, d_c * dc_dc_prev], []


class GRUDerivative(StepDerivative):
    """The GRU's step with `reset_after=True`: see `GRUCell`.

    The reset gate scales h_{t-1} U + b_h apart from x_t W + b_x, so the step
    reads the two projections separately, and so does its derivative.
    """

    saved_names = ("update", "r", "dh_dzz", "dh_dnz", "dn_drz")

    @property
    def supported(self):
        return self.activations_known("activation", "recurrent_activation")

    def save(self, z, states, new_states, gates, parameters):
        _, hu = z
        (h_prev,) = states
        u_h = ops.split(hu, 3, axis=-1)[2]
        update, r, n = gates["z"], gates["r"], gates["n"]
        return [
            update,
            r,
            self.gate_gradient(update, h_prev - n),
            self.activation_gradient(n, 1.0 - update),
            self.gate_gradient(r, u_h),
        ]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        update, r, dh_dzz, dh_dnz, dn_drz = saved
        (d_h,) = d_states
        d_z_z, d_n_z = d_h * dh_dzz, d_h * dh_dnz
        d_z_r = d_n_z * dn_drz
        d_xw = concatenate([d_z_z, d_z_r, d_n_z])
        d_hu = concatenate([d_z_z, d_z_r, d_n_z * r])
        return (d_xw, d_hu), [d_h * update], []
