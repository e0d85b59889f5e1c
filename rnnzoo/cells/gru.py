"""The gated recurrent unit (Cho et al. 2014), in both of its published forms."""

import keras
from keras import activations, ops

from rnnzoo.cells.base import RecurrentCell
from rnnzoo.cells.derivatives import GRUDerivative


@keras.saving.register_keras_serializable(package="rnnzoo")
class GRUCell(RecurrentCell):
    r"""The GRU cell.

    Equations, with gate blocks in Keras's order z, r, h (gates z and r, and
    the candidate n, as the LSTM's g):

        [x_z, x_r, x_h] = x_t W + b_x
        z_t = sigmoid(x_z + h_{t-1} U_z + b_z)          update gate
        r_t = sigmoid(x_r + h_{t-1} U_r + b_r)          reset gate
        reset_after=True  (Keras and cuDNN default):
            n_t = tanh(x_h + r_t * (h_{t-1} U_h + b_h))
        reset_after=False (Cho et al. 2014):
            n_t = tanh(x_h + (r_t * h_{t-1}) U_h)
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t

    With `recurrent_dropout`, the mask applies to h_{t-1} where it enters the
    matmuls only; the carried h_{t-1} in the last line is left whole (Gal &
    Ghahramani 2016). Keras's GRUCell also drops it there.

    With `reset_after=False` the step's projection is x_t W + b and h_{t-1} [U_z, U_r],
    and (r_t * h_{t-1}) U_h is part of its `pointwise` maths (a matmul there, which
    reads the recurrent dropout mask as a parameter in training), so both forms run
    on the layers' fast loop.

    Weights are laid out exactly as in `keras.layers.GRUCell`: `kernel`
    (input_dim, 3*units), `recurrent_kernel` (units, 3*units), and `bias`
    (3*units,) when `reset_after=False`, or (2, 3*units) when
    `reset_after=True` (row 0 the input bias b_x, row 1 the recurrent bias).

    Args:
        units: Positive int, size of the hidden state.
        activation: Activation of the candidate n_t (default tanh).
        recurrent_activation: Activation of the gates (default sigmoid).
        reset_after: Apply the reset gate after the recurrent matmul
            (default True, as Keras and cuDNN).
        See `rnnzoo.cells.base.RecurrentCell` for the other arguments.

    Example:

    >>> import keras, rnnzoo
    >>> keras.layers.RNN(rnnzoo.cells.GRUCell(4))(keras.ops.ones((2, 5, 3))).shape
    (2, 4)
    """

    names = ("gru",)
    gate_names = ("z", "r", "n")
    num_gates = 3
    state_names = ("h",)
    projection = "pair"
    step_derivative = GRUDerivative
    cudnn = "gru"
    forms = {"reset_before": {"reset_after": False}}

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        reset_after=True,
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after

    def build(self, input_shape):
        width = self.num_gates * self.units
        bias_shape = (2, width) if self.reset_after else (width,)
        self._build_fused_weights(self._input_features(input_shape), bias_shape=bias_shape)

    def input_bias(self):
        if not self.use_bias:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_bias(self):
        return self.bias[1] if self.use_bias and self.reset_after else None

    def recurrent_projection_kernel(self):
        if self.reset_after:
            return self.recurrent_kernel
        return self.recurrent_kernel[:, : 2 * self.units]  # U_z, U_r: U_h comes after r

    def pointwise_parameters(self):
        return [] if self.reset_after else [self.recurrent_kernel[:, 2 * self.units :]]

    def pointwise(self, projections, states, parameters):
        xw, hu = projections
        (h_prev,) = states
        x_z, x_r, x_h = ops.split(xw, 3, axis=-1)
        if self.reset_after:
            u_z, u_r, u_h = ops.split(hu, 3, axis=-1)
        else:
            u_h_kernel, *dropout = parameters  # the recurrent dropout mask, in training
            u_z, u_r = ops.split(hu, 2, axis=-1)
        z = self.recurrent_activation(x_z + u_z)
        r = self.recurrent_activation(x_r + u_r)
        if self.reset_after:
            n = self.activation(x_h + r * u_h)
        else:
            h_in = h_prev * dropout[0] if dropout else h_prev
            n = self.activation(x_h + ops.matmul(r * h_in, u_h_kernel))
        h = z * h_prev + (1.0 - z) * n
        return [h], {"z": z, "r": r, "n": n}

    def recurrent_dropout_parameters(self, mask):
        # Cho et al.'s form: (r * h_{t-1}) U_h reads the dropped h_{t-1} too.
        return [] if self.reset_after else [mask]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["reset_after"] = self.reset_after
        return config
