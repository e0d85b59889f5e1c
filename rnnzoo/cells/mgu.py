"""The minimal gated unit (MGU; Zhou, Wu, Zhang & Zhou 2016), with Flax's equations."""

import keras
from keras import activations, ops

from rnnzoo.cells.base import RecurrentCell, _add_bias


@keras.saving.register_keras_serializable(package="rnnzoo")
class MGUCell(RecurrentCell):
    r"""The minimal gated unit: a GRU with one gate, as Flax's `MGUCell`.

    Equations (the forget gate f does the work of both of the GRU's gates):

        [x_f, x_n] = x_t W + b
        [u_f, u_n] = h_{t-1} U
        f_t = sigmoid(x_f + u_f)                      forget gate
        n_t = tanh(x_n + f_t * (u_n + b_hn))          candidate
        h_t = (1 - f_t) * n_t + f_t * h_{t-1}

    With `reset_gate=False` (Flax's option) the candidate does not see f:
    n_t = tanh(x_n + u_n), and there is no b_hn.

    Weights, Flax's parameters fused as Keras fuses the GRU's: `kernel` W
    (input_dim, 2 units) = [W_if, W_in], `recurrent_kernel` U (units, 2
    units) = [W_hf, W_hn], `bias` b (2 units,) = [b_if, b_in], and
    `candidate_recurrent_bias` b_hn (units,) (Flax's "hn" bias; with
    `reset_gate`). As in Flax, b_if starts at 1 (`unit_forget_bias`).

    Args:
        units: Positive int, size of the hidden state.
        activation: Activation of the candidate (default tanh).
        recurrent_activation: Activation of the forget gate (default sigmoid).
        unit_forget_bias: Start b_if at 1 (default True, as Flax).
        reset_gate: The forget gate also scales u_n + b_hn in the candidate
            (default True, as Flax).
        See `rnnzoo.cells.base.RecurrentCell` for the other arguments; the
        bias arguments also apply to b_hn.
    """

    names = ("mgu",)
    gate_names = ("f", "n")
    num_gates = 2
    state_names = ("h",)
    projection = "pair"  # the forget gate scales the candidate's recurrent part alone
    forms = {"no_reset_gate": {"reset_gate": False}}

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        reset_gate=True,
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.reset_gate = bool(reset_gate)

    def build(self, input_shape):
        super().build(input_shape)
        self.candidate_recurrent_bias = None
        if self.use_bias and self.reset_gate:
            self.candidate_recurrent_bias = self._bias_weight(
                (self.units,), name="candidate_recurrent_bias", initializer=self.bias_initializer
            )

    def _bias_initializer_for_build(self):
        if self.unit_forget_bias:
            return self.forget_bias_initializer(self.gate_names.index("f"))
        return self.bias_initializer

    def pointwise_parameters(self):
        bias = self.candidate_recurrent_bias
        return [] if bias is None else [bias]

    def pointwise(self, projections, states, parameters):
        xw, hu = projections
        (h_prev,) = states
        x_f, x_n = ops.split(xw, 2, axis=-1)
        u_f, u_n = ops.split(hu, 2, axis=-1)
        f = self.recurrent_activation(x_f + u_f)
        if self.reset_gate:
            b_hn = parameters[0] if parameters else None  # none without a bias
            n = self.activation(x_n + f * _add_bias(u_n, b_hn))
        else:
            n = self.activation(x_n + u_n)
        h = (1.0 - f) * n + f * h_prev
        return [h], {"f": f, "n": n}

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["unit_forget_bias"] = self.unit_forget_bias
        config["reset_gate"] = self.reset_gate
        return config
