"""The LSTM cell and the variants built on it.

The lecture's two (peephole connections, coupled gates) and the eight of
Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber, "LSTM: A Search Space
Odyssey" (IEEE TNNLS 2017, arXiv 1503.04069). Greff's baseline, the "vanilla"
LSTM of their paper, is `PeepholeLSTMCell`; each of their variants changes
only what its name says:

    name      class                           what changes from the baseline
    nig       NoInputGateLSTMCell             i_t = 1
    nfg       NoForgetGateLSTMCell            f_t = 1
    nog       NoOutputGateLSTMCell            o_t = 1
    niaf      NoInputActivationLSTMCell       g_t = z_g (no tanh)
    noaf      NoOutputActivationLSTMCell      h_t = o_t c_t (no tanh)
    np        LSTMCell                        no peepholes (rnnzoo's "lstm")
    cifg      CoupledPeepholeLSTMCell         i_t = 1 - f_t
    fgr       FullGateRecurrenceLSTMCell      the gates also read the last step's gates

A variant without a gate has no weights for it (no columns in `kernel`,
`recurrent_kernel` and `bias`, no peephole). Every variant runs on the
layers' fast loop with the hand-written `LSTMDerivative`, which reads the
variant's description from the attributes below (`gate_names`,
`peephole_gates`, `coupled`, `candidate_activation`, `output_activation`);
the full gate recurrence runs on automatic differentiation of its step.
"""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from rnnzoo.cells.base import RecurrentCell
from rnnzoo.cells.derivatives import LSTMDerivative, StepDerivative, activation_vjp, concatenate


@keras.saving.register_keras_serializable(package="rnnzoo")
class LSTMCell(RecurrentCell):
    r"""The long short-term memory cell (Hochreiter & Schmidhuber 1997, with forget gate).

    Equations, for input x_t, previous hidden state h_{t-1} and cell c_{t-1}:

        [z_i, z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i)                 input gate
        f_t = sigmoid(z_f)                 forget gate
        g_t = tanh(z_g)                    candidate
        o_t = sigmoid(z_o)                 output gate
        c_t = f_t * c_{t-1} + i_t * g_t    the additive cell path
        h_t = o_t * tanh(c_t)

    Weights are laid out exactly as in `keras.layers.LSTMCell`: `kernel`
    (input_dim, 4*units), `recurrent_kernel` (units, 4*units), `bias`
    (4*units,), gate blocks in the order i, f, g (Keras calls it "c"), o, so
    weights copied from a Keras LSTM give the same outputs. The forget-gate
    bias starts at 1 (`unit_forget_bias`, Jozefowicz et al. 2015), so the
    cell remembers by default.

    Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural
    networks warp time?") sets the gate biases instead, for dependencies of
    up to T = `chrono_timescale` steps: each unit's forget-gate bias is drawn
    as b_f = log(u) with u ~ Uniform(1, T - 1), and its input-gate bias is
    b_i = -b_f (a cell without an input gate, or with i_t = 1 - f_t, sets
    b_f only). A unit then forgets at its own time scale 1 / (1 - f_t),
    about u steps, spread over 1 to T - 1.

    Args:
        units: Positive int, size of h and c.
        activation: Activation of g_t and of c_t in h_t (default tanh).
        recurrent_activation: Activation of the gates (default sigmoid).
        unit_forget_bias: Start the forget-gate bias at 1 (default True).
        chrono_timescale: None (default), or T >= 2: chrono initialisation of
            b_f and b_i for dependencies up to T steps (replaces
            `unit_forget_bias`; drawn from `seed`).
        See `rnnzoo.cells.base.RecurrentCell` for the other arguments.

    Example:

    >>> import keras, rnnzoo
    >>> layer = keras.layers.RNN(rnnzoo.cells.LSTMCell(4), return_state=True)
    >>> output, h, c = layer(keras.ops.ones((2, 5, 3)))
    >>> tuple(c.shape)
    (2, 4)
    """

    names = ("lstm", "np")  # "np": Greff et al.'s "no peepholes" variant is this cell
    gate_names = ("i", "f", "g", "o")
    num_gates = 4
    state_names = ("h", "c")
    step_derivative = LSTMDerivative
    cudnn = "lstm"
    # How the LSTM family's variants differ (read by `LSTMDerivative`): the
    # gates that see the cell state through a peephole, and whether the input
    # gate is 1 - f_t.
    peephole_gates = ()
    coupled = False

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        chrono_timescale=None,
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.chrono_timescale = self._check_chrono_timescale(chrono_timescale)

    def _check_chrono_timescale(self, timescale):
        if timescale is None:
            return None
        if "f" not in self.gate_names:
            raise ValueError(
                f"{type(self).__name__} has no forget gate, so `chrono_timescale` has no bias "
                f"to set; received chrono_timescale={timescale!r}. Leave it None."
            )
        if isinstance(timescale, bool) or not isinstance(timescale, (int, float)) or timescale < 2:
            raise ValueError(
                "Expected `chrono_timescale` to be None or a number of steps >= 2 (the longest "
                f"dependency to remember); received chrono_timescale={timescale!r}."
            )
        return timescale

    def candidate_activation(self):
        """act_g in g_t = act_g(z_g)."""
        return self.activation

    def output_activation(self):
        """act_h in h_t = o_t act_h(c_t)."""
        return self.activation

    def _bias_initializer_for_build(self):
        if self.chrono_timescale is not None:
            return self.chrono_bias_initializer
        if self.unit_forget_bias and "f" in self.gate_names:
            return self.forget_bias_initializer(self.gate_names.index("f"))
        return self.bias_initializer

    def chrono_bias_initializer(self, shape, dtype=None):
        """The bias with b_f = log(u), u ~ Uniform(1, T - 1), and b_i = -b_f (chrono)."""
        b_f = ops.log(
            keras.random.uniform(
                (self.units,), 1.0, self.chrono_timescale - 1.0, dtype=dtype, seed=self.seed
            )
        )
        blocks = {"f": b_f}
        if "i" in self.gate_names:
            blocks["i"] = -b_f
        return ops.concatenate(
            [
                blocks[name]
                if name in blocks
                else self.bias_initializer((self.units,), dtype=dtype)
                for name in self.gate_names
            ]
        )

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        c = f * c_prev + i * g
        h = o * self.activation(c)
        return [h, c], {"i": i, "f": f, "g": g, "o": o}

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["unit_forget_bias"] = self.unit_forget_bias
        config["chrono_timescale"] = self.chrono_timescale
        return config


@keras.saving.register_keras_serializable(package="rnnzoo")
class PeepholeLSTMCell(LSTMCell):
    r"""LSTM with peephole connections (Gers & Schmidhuber 2000; the lecture's variant #1).

    The gates also look at the cell state through diagonal weights p:

        [z_i, z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i + p_i * c_{t-1})
        f_t = sigmoid(z_f + p_f * c_{t-1})
        g_t = tanh(z_g)
        c_t = f_t * c_{t-1} + i_t * g_t
        o_t = sigmoid(z_o + p_o * c_t)     the output gate sees the *new* cell
        h_t = o_t * tanh(c_t)

    The weights are the LSTM's (`kernel`, `recurrent_kernel`, `bias`, same
    layout) plus `peephole_i`, `peephole_f`, `peephole_o`, each (units,).
    With zero peepholes the cell equals `LSTMCell`.

    Args:
        peephole_initializer: Initializer of the three peephole vectors
            (default glorot_uniform, as TensorFlow's former PeepholeLSTMCell).
        peephole_regularizer, peephole_constraint: For the peephole vectors.
        See `LSTMCell` for the other arguments.
    """

    names = ("peephole",)
    step_derivative = LSTMDerivative
    seeded_initializers = LSTMCell.seeded_initializers + ("peephole_initializer",)
    peephole_gates = ("i", "f", "o")

    def __init__(
        self,
        units,
        peephole_initializer="glorot_uniform",
        peephole_regularizer=None,
        peephole_constraint=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.peephole_regularizer = regularizers.get(peephole_regularizer)
        self.peephole_constraint = constraints.get(peephole_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        for gate in self.peephole_gates:
            weight = self.add_weight(
                shape=(self.units,),
                name=f"peephole_{gate}",
                initializer=self.peephole_initializer,
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
            setattr(self, f"peephole_{gate}", weight)

    def pointwise_parameters(self):
        return [getattr(self, f"peephole_{gate}") for gate in self.peephole_gates]

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_i, p_f, p_o = parameters
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_prev)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        g = self.activation(z_g)
        c = f * c_prev + i * g
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        return [h, c], {"i": i, "f": f, "g": g, "o": o}

    def get_config(self):
        config = super().get_config()
        config["peephole_initializer"] = initializers.serialize(self.peephole_initializer)
        config["peephole_regularizer"] = regularizers.serialize(self.peephole_regularizer)
        config["peephole_constraint"] = constraints.serialize(self.peephole_constraint)
        return config


@keras.saving.register_keras_serializable(package="rnnzoo")
class CoupledLSTMCell(LSTMCell):
    r"""LSTM with coupled input and forget gates (CIFG; the lecture's variant #2).

    The cell forgets exactly as much as it writes, so the input gate is 1 - f:

        [z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        f_t = sigmoid(z_f)
        g_t = tanh(z_g)
        o_t = sigmoid(z_o)
        c_t = f_t * c_{t-1} + (1 - f_t) * g_t
        h_t = o_t * tanh(c_t)

    Weights: `kernel` (input_dim, 3*units), `recurrent_kernel` (units,
    3*units), `bias` (3*units,), gate blocks in the order f, g, o; the forget
    bias starts at 1. A quarter fewer weights and matmul work than the LSTM.

    Args: as `LSTMCell`.
    """

    names = ("coupled",)
    gate_names = ("f", "g", "o")
    num_gates = 3
    coupled = True
    step_derivative = LSTMDerivative

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        z_f, z_g, z_o = ops.split(z, 3, axis=-1)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        c = f * c_prev + (1.0 - f) * g
        h = o * self.activation(c)
        return [h, c], {"f": f, "g": g, "o": o}


# ------------------------------------------------- Greff et al.'s variants
@keras.saving.register_keras_serializable(package="rnnzoo")
class NoInputGateLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s NIG: the peephole LSTM without an input gate.

        [z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        f_t = sigmoid(z_f + p_f * c_{t-1})
        g_t = tanh(z_g)
        c_t = f_t * c_{t-1} + g_t          i_t = 1
        o_t = sigmoid(z_o + p_o * c_t)
        h_t = o_t * tanh(c_t)

    Weights: `kernel` (input_dim, 3*units), `recurrent_kernel` (units,
    3*units), `bias` (3*units,), blocks f, g, o; `peephole_f`, `peephole_o`.

    Args: as `PeepholeLSTMCell`.
    """

    names = ("nig",)
    gate_names = ("f", "g", "o")
    num_gates = 3
    peephole_gates = ("f", "o")
    step_derivative = LSTMDerivative

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_f, p_o = parameters
        z_f, z_g, z_o = ops.split(z, 3, axis=-1)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        g = self.activation(z_g)
        c = f * c_prev + g
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        return [h, c], {"f": f, "g": g, "o": o}


@keras.saving.register_keras_serializable(package="rnnzoo")
class NoForgetGateLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s NFG: the peephole LSTM without a forget gate (the 1997 LSTM's cell).

        [z_i, z_g, z_o] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i + p_i * c_{t-1})
        g_t = tanh(z_g)
        c_t = c_{t-1} + i_t * g_t          f_t = 1: the cell only accumulates
        o_t = sigmoid(z_o + p_o * c_t)
        h_t = o_t * tanh(c_t)

    Weights: `kernel` (input_dim, 3*units), `recurrent_kernel` (units,
    3*units), `bias` (3*units,), blocks i, g, o; `peephole_i`, `peephole_o`.
    `unit_forget_bias` has no gate to act on.

    Args: as `PeepholeLSTMCell`.
    """

    names = ("nfg",)
    gate_names = ("i", "g", "o")
    num_gates = 3
    peephole_gates = ("i", "o")
    step_derivative = LSTMDerivative

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_i, p_o = parameters
        z_i, z_g, z_o = ops.split(z, 3, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_prev)
        g = self.activation(z_g)
        c = c_prev + i * g
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        return [h, c], {"i": i, "g": g, "o": o}


@keras.saving.register_keras_serializable(package="rnnzoo")
class NoOutputGateLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s NOG: the peephole LSTM without an output gate.

        [z_i, z_f, z_g] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i + p_i * c_{t-1})
        f_t = sigmoid(z_f + p_f * c_{t-1})
        g_t = tanh(z_g)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = tanh(c_t)                    o_t = 1

    Weights: `kernel` (input_dim, 3*units), `recurrent_kernel` (units,
    3*units), `bias` (3*units,), blocks i, f, g; `peephole_i`, `peephole_f`.

    Args: as `PeepholeLSTMCell`.
    """

    names = ("nog",)
    gate_names = ("i", "f", "g")
    num_gates = 3
    peephole_gates = ("i", "f")
    step_derivative = LSTMDerivative

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_i, p_f = parameters
        z_i, z_f, z_g = ops.split(z, 3, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_prev)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        g = self.activation(z_g)
        c = f * c_prev + i * g
        h = self.activation(c)
        return [h, c], {"i": i, "f": f, "g": g}


@keras.saving.register_keras_serializable(package="rnnzoo")
class NoInputActivationLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s NIAF: the peephole LSTM without the input (candidate) activation.

        [z_i, z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i + p_i * c_{t-1})
        f_t = sigmoid(z_f + p_f * c_{t-1})
        g_t = z_g                          no tanh
        c_t = f_t * c_{t-1} + i_t * g_t
        o_t = sigmoid(z_o + p_o * c_t)
        h_t = o_t * tanh(c_t)

    The baseline's weights; `activation` is only the output's.

    Args: as `PeepholeLSTMCell`.
    """

    names = ("niaf",)
    step_derivative = LSTMDerivative

    def candidate_activation(self):
        return activations.linear

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_i, p_f, p_o = parameters
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_prev)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        g = z_g
        c = f * c_prev + i * g
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        return [h, c], {"i": i, "f": f, "g": g, "o": o}


@keras.saving.register_keras_serializable(package="rnnzoo")
class NoOutputActivationLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s NOAF: the peephole LSTM without the output activation.

        [z_i, z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i + p_i * c_{t-1})
        f_t = sigmoid(z_f + p_f * c_{t-1})
        g_t = tanh(z_g)
        c_t = f_t * c_{t-1} + i_t * g_t
        o_t = sigmoid(z_o + p_o * c_t)
        h_t = o_t * c_t                    no tanh: h is unbounded, as c is

    The baseline's weights; `activation` is only the candidate's.

    Args: as `PeepholeLSTMCell`.
    """

    names = ("noaf",)
    step_derivative = LSTMDerivative

    def output_activation(self):
        return activations.linear

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_i, p_f, p_o = parameters
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_prev)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        g = self.activation(z_g)
        c = f * c_prev + i * g
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * c
        return [h, c], {"i": i, "f": f, "g": g, "o": o}


@keras.saving.register_keras_serializable(package="rnnzoo")
class CoupledPeepholeLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s CIFG: the peephole LSTM with coupled input and forget gates.

        [z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        f_t = sigmoid(z_f + p_f * c_{t-1})
        g_t = tanh(z_g)
        c_t = f_t * c_{t-1} + (1 - f_t) * g_t       i_t = 1 - f_t
        o_t = sigmoid(z_o + p_o * c_t)
        h_t = o_t * tanh(c_t)

    Greff et al. write the coupling the other way round (f_t = 1 - i_t, the
    input gate learned); here the forget gate is learned, as in
    `CoupledLSTMCell`, so its bias starts at 1 and the two cells share a
    layout: with zero peepholes this cell equals `CoupledLSTMCell`.

    Weights: `kernel` (input_dim, 3*units), `recurrent_kernel` (units,
    3*units), `bias` (3*units,), blocks f, g, o; `peephole_f`, `peephole_o`.

    Args: as `PeepholeLSTMCell`.
    """

    names = ("cifg",)
    gate_names = ("f", "g", "o")
    num_gates = 3
    peephole_gates = ("f", "o")
    coupled = True
    step_derivative = LSTMDerivative

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        p_f, p_o = parameters
        z_f, z_g, z_o = ops.split(z, 3, axis=-1)
        f = self.recurrent_activation(z_f + p_f * c_prev)
        g = self.activation(z_g)
        c = f * c_prev + (1.0 - f) * g
        o = self.recurrent_activation(z_o + p_o * c)
        h = o * self.activation(c)
        return [h, c], {"f": f, "g": g, "o": o}


class FullGateRecurrenceDerivative(StepDerivative):
    """`FullGateRecurrenceLSTMCell`'s step (its equations there), written out backwards, with
    da_t = [da_i, da_f, da_o] the gradient reaching the gates through the next step's a_t R:

        do = dh act(c) + da_o,  dz_o = do sig'(z_o')
        dc = dc_t + dh o act'(c) + dz_o p_o
        dz_i = (dc g + da_i) sig'(z_i'),  dz_f = (dc c_{t-1} + da_f) sig'(z_f')
        dz_g = dc i act'(z_g),  dc_{t-1} = dc f + dz_i p_i + dz_f p_f
        da_{t-1} = [dz_i, dz_f, dz_o] R^T,  dR = a_{t-1}^T [dz_i, dz_f, dz_o]
        dp_i = dz_i c_{t-1},  dp_f = dz_f c_{t-1},  dp_o = dz_o c

    (z' the pre-activations with the gate recurrence and peepholes added). It saves the gates,
    c_{t-1}, c_t, act(c_t) and a_{t-1}.
    """

    saved_names = ("i", "f", "g", "o", "c_prev", "c", "act_c", "a_prev")
    per_row_parameter_gradients = False  # R's gradient is a matrix: summed over the batch

    @property
    def supported(self):
        return self.activations_known("activation", "recurrent_activation")

    def saved_widths(self):
        return [self.cell.units] * 7 + [3 * self.cell.units]

    def save(self, z, states, new_states, gates, parameters):
        _, c_prev, a_prev = states
        c = new_states[1]
        gates = [gates[name] for name in ("i", "f", "g", "o")]
        return [*gates, c_prev, c, self.cell.activation(c), a_prev]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        i, f, g, o, c_prev, c, act_c, a_prev = saved
        p_i, p_f, p_o, gate_recurrent_kernel = parameters
        d_h, d_c, d_a = d_states
        d_a_i, d_a_f, d_a_o = ops.split(d_a, 3, axis=-1)
        act_vjp = activation_vjp(self.cell.activation)
        d_z_o = self.gate_gradient(o, d_h * act_c + d_a_o)
        d_c = d_c + act_vjp(act_c, d_h * o) + d_z_o * p_o
        d_z_i = self.gate_gradient(i, d_c * g + d_a_i)
        d_z_f = self.gate_gradient(f, d_c * c_prev + d_a_f)
        d_z_g = act_vjp(g, d_c * i)
        join = side_by_side or concatenate
        d_r = ops.concatenate([d_z_i, d_z_f, d_z_o], axis=-1)
        d_c_prev = d_c * f + d_z_i * p_i + d_z_f * p_f
        d_a_prev = ops.matmul(d_r, ops.transpose(gate_recurrent_kernel))
        d_parameters = [
            ops.sum(d_z_i * c_prev, axis=0),
            ops.sum(d_z_f * c_prev, axis=0),
            ops.sum(d_z_o * c, axis=0),
            ops.matmul(ops.transpose(a_prev), d_r),
        ]
        return join([d_z_i, d_z_f, d_z_g, d_z_o]), [None, d_c_prev, d_a_prev], d_parameters


@keras.saving.register_keras_serializable(package="rnnzoo")
class FullGateRecurrenceLSTMCell(PeepholeLSTMCell):
    r"""Greff et al.'s FGR: the peephole LSTM whose gates also read the last step's gates.

    With a_{t-1} = [i_{t-1}, f_{t-1}, o_{t-1}] (zeros at the start) and R the
    nine recurrent matrices between the gates, stacked (3 units, 3 units):

        [z_i, z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        [r_i, r_f, r_o] = a_{t-1} R
        i_t = sigmoid(z_i + r_i + p_i * c_{t-1})
        f_t = sigmoid(z_f + r_f + p_f * c_{t-1})
        g_t = tanh(z_g)
        c_t = f_t * c_{t-1} + i_t * g_t
        o_t = sigmoid(z_o + r_o + p_o * c_t)
        h_t = o_t * tanh(c_t)

    The states are h, c and a (3 units wide). Weights: the baseline's and
    `gate_recurrent_kernel` R (3*units, 3*units), rows i, f, o of the last
    step, columns the i, f, o pre-activations. With R = 0 the cell equals
    `PeepholeLSTMCell`. The gate recurrence is a matmul inside the step; its
    derivative is written out in `FullGateRecurrenceDerivative`.

    Args:
        gate_recurrent_initializer: Initializer of R (default orthogonal).
        gate_recurrent_regularizer, gate_recurrent_constraint: For R.
        See `PeepholeLSTMCell` for the other arguments.
    """

    names = ("fgr",)
    state_names = ("h", "c", "a")
    step_derivative = FullGateRecurrenceDerivative
    seeded_initializers = PeepholeLSTMCell.seeded_initializers + ("gate_recurrent_initializer",)

    def __init__(
        self,
        units,
        gate_recurrent_initializer="orthogonal",
        gate_recurrent_regularizer=None,
        gate_recurrent_constraint=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.gate_recurrent_initializer = initializers.get(gate_recurrent_initializer)
        self.gate_recurrent_regularizer = regularizers.get(gate_recurrent_regularizer)
        self.gate_recurrent_constraint = constraints.get(gate_recurrent_constraint)

    def state_widths(self):
        return [self.units, self.units, 3 * self.units]

    def build(self, input_shape):
        super().build(input_shape)
        self.gate_recurrent_kernel = self.add_weight(
            shape=(3 * self.units, 3 * self.units),
            name="gate_recurrent_kernel",
            initializer=self.gate_recurrent_initializer,
            regularizer=self.gate_recurrent_regularizer,
            constraint=self.gate_recurrent_constraint,
        )

    def pointwise_parameters(self):
        return [*super().pointwise_parameters(), self.gate_recurrent_kernel]

    def pointwise(self, z, states, parameters):
        _, c_prev, a_prev = states
        p_i, p_f, p_o, gate_recurrent_kernel = parameters
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        r_i, r_f, r_o = ops.split(ops.matmul(a_prev, gate_recurrent_kernel), 3, axis=-1)
        i = self.recurrent_activation(z_i + r_i + p_i * c_prev)
        f = self.recurrent_activation(z_f + r_f + p_f * c_prev)
        g = self.activation(z_g)
        c = f * c_prev + i * g
        o = self.recurrent_activation(z_o + r_o + p_o * c)
        h = o * self.activation(c)
        a = ops.concatenate([i, f, o], axis=-1)
        return [h, c, a], {"i": i, "f": f, "g": g, "o": o}

    def get_config(self):
        config = super().get_config()
        config["gate_recurrent_initializer"] = initializers.serialize(
            self.gate_recurrent_initializer
        )
        config["gate_recurrent_regularizer"] = regularizers.serialize(
            self.gate_recurrent_regularizer
        )
        config["gate_recurrent_constraint"] = constraints.serialize(self.gate_recurrent_constraint)
        return config
