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
itself (the LSTMs, the GRU, the vanilla RNN and the layer-normalised cells do):
fewer ops per step. The tests check every derivative against automatic
differentiation of the cell.
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
        backends: The Keras backends it is used on (None: every one); on the others the
            cell's step is differentiated automatically.
        saved_names: The names of the tensors `save` returns, each
            (batch, units) unless `saved_widths` says otherwise.
        per_row_parameter_gradients: Whether `backward` returns the
            parameters' gradients per row of the batch, (batch, *shape), for
            the loop to sum over the steps and then once over the batch
            (cheaper than a sum per step), or already summed, (*shape).
    """

    saved_names = ()
    per_row_parameter_gradients = True
    # The Keras backends this derivative is used on (None: all); elsewhere the cell's step is
    # differentiated automatically, where that measured faster.
    backends = None

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
        self._widths = None
        if cell.built:  # read the shapes now, not inside a custom gradient (a variable read)
            self.saved_widths()

    def saved_widths(self):
        if self._widths is None:
            widths = [self.cell.kernel.shape[-1]]
            if self.pair:
                widths.append(self.cell.recurrent_projection_kernel().shape[-1])
            self._widths = widths + list(self.cell.state_widths())
        return self._widths

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
    """The LSTM family's step: the LSTM, and each variant the cell's attributes describe.

    In its most general form (`PeepholeLSTMCell`, Greff et al.'s baseline):

        i_t = sigmoid(z_i + p_i c_{t-1}),  f_t = sigmoid(z_f + p_f c_{t-1}),  g_t = act_g(z_g)
        c_t = f_t c_{t-1} + i_t g_t,  o_t = sigmoid(z_o + p_o c_t),  h_t = o_t act_h(c_t)

    A variant's cell says how it differs: a gate missing from `gate_names`
    is 1 (or, with `coupled`, the input gate is 1 - f_t), `peephole_gates`
    lists the peepholes it has (its `pointwise_parameters`, in that order),
    `candidate_activation()` is act_g and `output_activation()` is act_h.

    The step saves dc_t/dc_{t-1}, dh_t/dc_t (both with the peepholes' paths)
    and the derivative of c_t (h_t for o) with respect to each block of z_t;
    backwards, each block's gradient is then one product, and the peepholes'
    gradients are dz_i c_{t-1}, dz_f c_{t-1}, dz_o c_t per batch row (summed
    over the batch once by the loop: a split and three row sums per chunk
    instead was measured ~7% slower on the benchmark).
    """

    @property
    def supported(self):
        cell = self.cell
        return self.activations_known("recurrent_activation") and all(
            activation_vjp(a) is not None
            for a in (cell.candidate_activation(), cell.output_activation())
        )

    @property
    def saved_names(self):
        cell = self.cell
        names = ["dc_dc_prev", "dh_dc"]
        names += [("dh_dz" if gate == "o" else "dc_dz") + gate for gate in cell.gate_names]
        if {"i", "f"} & set(cell.peephole_gates):
            names.append("c_prev")
        if "o" in cell.peephole_gates:
            names.append("c")
        return tuple(names)

    def save(self, z, states, new_states, gates, parameters):
        cell = self.cell
        c_prev, c = states[1], new_states[1]
        peephole = dict(zip(cell.peephole_gates, parameters))
        g = gates["g"]
        f = gates.get("f")
        i = gates.get("i", 1.0 - f if cell.coupled else None)
        o = gates.get("o")
        h_activation = cell.output_activation()
        act_h_c = h_activation(c)
        blocks = {}
        if "i" in gates:
            blocks["i"] = self.gate_gradient(i, g)
        if "f" in gates:
            blocks["f"] = self.gate_gradient(f, c_prev - g if cell.coupled else c_prev)
        # dc_t/dz_g = i_t act_g'(z_g), from act_g's output g_t.
        blocks["g"] = activation_vjp(cell.candidate_activation())(
            g, ops.ones_like(g) if i is None else i
        )
        if "o" in gates:
            blocks["o"] = self.gate_gradient(o, act_h_c)
        dh_dc = activation_vjp(h_activation)(act_h_c, ops.ones_like(c) if o is None else o)
        if "o" in peephole:
            dh_dc = dh_dc + blocks["o"] * peephole["o"]
        dc_dc_prev = ops.ones_like(c) if f is None else f
        for gate in ("i", "f"):
            if gate in peephole:
                dc_dc_prev = dc_dc_prev + blocks[gate] * peephole[gate]
        saved = [dc_dc_prev, dh_dc, *(blocks[gate] for gate in cell.gate_names)]
        if {"i", "f"} & set(peephole):
            saved.append(c_prev)
        if "o" in peephole:
            saved.append(c)
        return saved

    def backward(self, saved, d_states, parameters, side_by_side=None):
        cell = self.cell
        count = len(cell.gate_names)
        dc_dc_prev, dh_dc = saved[:2]
        local = dict(zip(cell.gate_names, saved[2 : 2 + count]))
        rest = list(saved[2 + count :])
        d_h, d_c = d_states
        d_c = d_c + d_h * dh_dc
        d_z = {gate: (d_h if gate == "o" else d_c) * local[gate] for gate in cell.gate_names}
        c_prev = rest.pop(0) if {"i", "f"} & set(cell.peephole_gates) else None
        c = rest.pop(0) if "o" in cell.peephole_gates else None
        d_parameters = [d_z[gate] * (c if gate == "o" else c_prev) for gate in cell.peephole_gates]
        blocks = [d_z[gate] for gate in cell.gate_names]
        return (side_by_side or concatenate)(blocks), [None, d_c * dc_dc_prev], d_parameters


class GRUDerivative(StepDerivative):
    """The GRU's step with `reset_after=True`: see `GRUCell`.

    The reset gate scales h_{t-1} U + b_h apart from x_t W + b_x, so the step
    reads the two projections separately, and so does its derivative.
    """

    saved_names = ("update", "r", "dh_dzz", "dh_dnz", "dn_drz")

    @property
    def supported(self):
        # reset_after=False has a matmul after the reset gate: differentiated automatically.
        return self.cell.reset_after and self.activations_known(
            "activation", "recurrent_activation"
        )

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
