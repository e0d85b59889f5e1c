r"""The three mutated GRUs MUT1, MUT2, MUT3 (Jozefowicz, Zaremba & Sutskever 2015).

The best three of the ten thousand architectures their evolutionary search
evaluated (Section 3 of "An Empirical Exploration of Recurrent Network
Architectures", ICML 2015). Their equations, written here with h_{t-1} for
the paper's h_t and h_t for its h_{t+1}, row vectors times matrices as
Keras does, and the candidate named n_t as in `GRUCell`:

    MUT1  z_t = sigmoid(x_t W_xz + b_z)
          r_t = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)
          n_t = tanh((r_t * h_{t-1}) W_hh + tanh(x~_t) + b_h)
    MUT2  z_t = sigmoid(x_t W_xz + h_{t-1} W_hz + b_z)
          r_t = sigmoid(x~_t + h_{t-1} W_hr + b_r)
          n_t = tanh((r_t * h_{t-1}) W_hh + x_t W_xh + b_h)
    MUT3  z_t = sigmoid(x_t W_xz + tanh(h_{t-1}) W_hz + b_z)
          r_t = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)
          n_t = tanh((r_t * h_{t-1}) W_hh + x_t W_xh + b_h)
    all   h_t = n_t * z_t + h_{t-1} * (1 - z_t)

x~_t: MUT1 and MUT2 add the input itself to a vector of `units` (tanh(x_t)
and x_t in the paper), which needs input_dim == units. Where it is, x~_t =
x_t, the paper's equations exactly. Where it is not, x~_t = x_t P with a
learned `input_projection` P (input_dim, units), an input weight like W (the
`kernel_*` initializer, regularizer and constraint apply); the cell then has
one weight more, and its other equations are unchanged.

The reset gate scales h_{t-1} before its matmul, as in Cho et al.'s GRU, so
the step is not a projection then pointwise: these cells run on Keras's loop.

Weights (W_* and b_* as in the equations, only those the cell has):

    cell   kernel (input_dim, k units)  recurrent_kernel (units, k units)  bias (3 units,)
    MUT1   [W_xz, W_xr]                 [W_hr, W_hh]                       [b_z, b_r, b_h]
    MUT2   [W_xz, W_xh]                 [W_hz, W_hr, W_hh]                 [b_z, b_r, b_h]
    MUT3   [W_xz, W_xr, W_xh]           [W_hz, W_hr, W_hh]                 [b_z, b_r, b_h]

Recurrent dropout drops what enters each recurrent matmul: h_{t-1} (in W_hr,
W_hz, and in r_t * h_{t-1} before W_hh) and, in MUT3, tanh(h_{t-1}) before
W_hz, all with the one mask of the sequence; the carried h_{t-1} in the last
line is left whole (Gal & Ghahramani 2016).
"""

import keras
from keras import activations, ops

from rnnzoo.cells.base import RecurrentCell


class MutatedCell(RecurrentCell):
    """What MUT1, MUT2 and MUT3 share: their arguments, weights and dropout.

    A subclass sets `input_blocks` and `recurrent_blocks` (the blocks of W
    and U in `kernel` and `recurrent_kernel`, by the subscript of the gate
    they feed), `adds_inputs` (an equation adds x~_t), and writes `step`.

    Args:
        units: Positive int, size of the hidden state.
        activation: Activation of the candidate n_t (default tanh; the
            paper's inner tanh(x_t) and tanh(h_{t-1}) stay tanh).
        recurrent_activation: Activation of the gates z_t and r_t (default
            sigmoid).
        See `rnnzoo.cells.base.RecurrentCell` for the other arguments.
    """

    gate_names = ("z", "r", "n")
    num_gates = 3
    state_names = ("h",)
    input_blocks = ()
    recurrent_blocks = ()
    adds_inputs = False

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def build(self, input_shape):
        input_dim = self._input_features(input_shape)
        units = self.units
        self.kernel = self._kernel_weight((input_dim, len(self.input_blocks) * units))
        self.recurrent_kernel = self._recurrent_weight((units, len(self.recurrent_blocks) * units))
        self.bias = self._bias_weight((3 * units,)) if self.use_bias else None
        self.input_projection = None
        if self.adds_inputs and input_dim != units:
            self.input_projection = self._kernel_weight((input_dim, units), name="input_projection")

    def pointwise_step_reason(self):
        return (
            f"{type(self).__name__}'s reset gate scales h_{{t-1}} before its matmul W_hh, "
            "so the step is not a projection then pointwise"
        )

    # ------------------------------------------------------------ step helpers
    def inputs_and_states(self, inputs, states, training):
        """-> (x_t dropped, h_{t-1}, the recurrent dropout mask or None)."""
        (h_prev,) = self.check_states(states)
        x, _ = self.dropped(inputs, h_prev, training=training)
        mask = None
        if training and self.recurrent_dropout > 0:
            mask = self.get_recurrent_dropout_mask(h_prev)
        return x, h_prev, mask

    def input_parts(self, x):
        """x_t W + b split by `input_blocks`: {gate: x_t W_x<gate>}, and b_z, b_r, b_h."""
        xw = ops.split(ops.matmul(x, self.kernel), len(self.input_blocks), axis=-1)
        if self.use_bias:
            biases = ops.split(self.bias, 3, axis=-1)
        else:
            biases = [0.0, 0.0, 0.0]
        return dict(zip(self.input_blocks, xw)), biases

    def recurrent_part(self, gate, h):
        """h W_h<gate>, the block of `recurrent_kernel` that feeds `gate`."""
        index = self.recurrent_blocks.index(gate)
        block = self.recurrent_kernel[:, index * self.units : (index + 1) * self.units]
        return ops.matmul(h, block)

    def fitted(self, x):
        """x~_t: x_t, or x_t P where the input is not `units` wide."""
        return x if self.input_projection is None else ops.matmul(x, self.input_projection)

    @staticmethod
    def masked(value, mask):
        return value if mask is None else value * mask

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return config


@keras.saving.register_keras_serializable(package="rnnzoo")
class MUT1Cell(MutatedCell):
    r"""MUT1 (Jozefowicz et al. 2015): the update gate sees only x_t; tanh(x_t) enters n_t.

        z_t = sigmoid(x_t W_xz + b_z)
        r_t = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)
        n_t = tanh((r_t * h_{t-1}) W_hh + tanh(x~_t) + b_h)
        h_t = n_t * z_t + h_{t-1} * (1 - z_t)

    x~_t = x_t where input_dim == units, else x_t P (`input_projection`).
    Weights: `kernel` [W_xz, W_xr], `recurrent_kernel` [W_hr, W_hh], `bias`
    [b_z, b_r, b_h] (see the module docstring).

    Args: as `MutatedCell`.
    """

    names = ("mut1",)
    input_blocks = ("z", "r")
    recurrent_blocks = ("r", "h")
    adds_inputs = True

    def step(self, inputs, states, training=False):
        x, h_prev, mask = self.inputs_and_states(inputs, states, training)
        h_dropped = self.masked(h_prev, mask)
        xw, (b_z, b_r, b_h) = self.input_parts(x)
        z = self.recurrent_activation(xw["z"] + b_z)
        r = self.recurrent_activation(xw["r"] + self.recurrent_part("r", h_dropped) + b_r)
        n = self.activation(
            self.recurrent_part("h", r * h_dropped) + ops.tanh(self.fitted(x)) + b_h
        )
        h = n * z + h_prev * (1.0 - z)
        return h, [h], {"z": z, "r": r, "n": n}


@keras.saving.register_keras_serializable(package="rnnzoo")
class MUT2Cell(MutatedCell):
    r"""MUT2 (Jozefowicz et al. 2015): the reset gate adds x_t itself instead of x_t W_xr.

        z_t = sigmoid(x_t W_xz + h_{t-1} W_hz + b_z)
        r_t = sigmoid(x~_t + h_{t-1} W_hr + b_r)
        n_t = tanh((r_t * h_{t-1}) W_hh + x_t W_xh + b_h)
        h_t = n_t * z_t + h_{t-1} * (1 - z_t)

    x~_t = x_t where input_dim == units, else x_t P (`input_projection`).
    Weights: `kernel` [W_xz, W_xh], `recurrent_kernel` [W_hz, W_hr, W_hh],
    `bias` [b_z, b_r, b_h] (see the module docstring).

    Args: as `MutatedCell`.
    """

    names = ("mut2",)
    input_blocks = ("z", "h")
    recurrent_blocks = ("z", "r", "h")
    adds_inputs = True

    def step(self, inputs, states, training=False):
        x, h_prev, mask = self.inputs_and_states(inputs, states, training)
        h_dropped = self.masked(h_prev, mask)
        xw, (b_z, b_r, b_h) = self.input_parts(x)
        z = self.recurrent_activation(xw["z"] + self.recurrent_part("z", h_dropped) + b_z)
        r = self.recurrent_activation(self.fitted(x) + self.recurrent_part("r", h_dropped) + b_r)
        n = self.activation(self.recurrent_part("h", r * h_dropped) + xw["h"] + b_h)
        h = n * z + h_prev * (1.0 - z)
        return h, [h], {"z": z, "r": r, "n": n}


@keras.saving.register_keras_serializable(package="rnnzoo")
class MUT3Cell(MutatedCell):
    r"""MUT3 (Jozefowicz et al. 2015): the update gate reads tanh(h_{t-1}).

        z_t = sigmoid(x_t W_xz + tanh(h_{t-1}) W_hz + b_z)
        r_t = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)
        n_t = tanh((r_t * h_{t-1}) W_hh + x_t W_xh + b_h)
        h_t = n_t * z_t + h_{t-1} * (1 - z_t)

    No equation adds x_t itself, so any input width works with the paper's
    weights: `kernel` [W_xz, W_xr, W_xh], `recurrent_kernel` [W_hz, W_hr,
    W_hh], `bias` [b_z, b_r, b_h]. Recurrent dropout drops tanh(h_{t-1})
    where it enters W_hz, with the mask that drops h_{t-1} elsewhere.

    Args: as `MutatedCell`.
    """

    names = ("mut3",)
    input_blocks = ("z", "r", "h")
    recurrent_blocks = ("z", "r", "h")

    def step(self, inputs, states, training=False):
        x, h_prev, mask = self.inputs_and_states(inputs, states, training)
        h_dropped = self.masked(h_prev, mask)
        xw, (b_z, b_r, b_h) = self.input_parts(x)
        tanh_h = self.masked(ops.tanh(h_prev), mask)
        z = self.recurrent_activation(xw["z"] + self.recurrent_part("z", tanh_h) + b_z)
        r = self.recurrent_activation(xw["r"] + self.recurrent_part("r", h_dropped) + b_r)
        n = self.activation(self.recurrent_part("h", r * h_dropped) + xw["h"] + b_h)
        h = n * z + h_prev * (1.0 - z)
        return h, [h], {"z": z, "r": r, "n": n}
