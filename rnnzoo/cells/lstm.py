"""The LSTM cell and the variants built on it: peephole connections and coupled gates."""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from rnnzoo.cells.base import RecurrentCell
from rnnzoo.cells.derivatives import (
    CoupledLSTMDerivative,
    LSTMDerivative,
    PeepholeLSTMDerivative,
)


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

    Args:
        units: Positive int, size of h and c.
        activation: Activation of g_t and of c_t in h_t (default tanh).
        recurrent_activation: Activation of the gates (default sigmoid).
        unit_forget_bias: Start the forget-gate bias at 1 (default True).
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
    forget_gate_index = 1
    step_derivative = LSTMDerivative

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    def _bias_initializer_for_build(self):
        if self.unit_forget_bias:
            return self.forget_bias_initializer(self.forget_gate_index)
        return self.bias_initializer

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
    step_derivative = PeepholeLSTMDerivative
    seeded_initializers = LSTMCell.seeded_initializers + ("peephole_initializer",)
    # The gates whose pre-activations read the cell state through a peephole.
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
    forget_gate_index = 0
    step_derivative = CoupledLSTMDerivative

    def pointwise(self, z, states, parameters):
        _, c_prev = states
        z_f, z_g, z_o = ops.split(z, 3, axis=-1)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        c = f * c_prev + (1.0 - f) * g
        h = o * self.activation(c)
        return [h, c], {"f": f, "g": g, "o": o}
