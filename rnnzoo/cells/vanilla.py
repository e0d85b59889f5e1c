"""The vanilla (Elman) RNN cell and the identity-initialised ReLU RNN (IRNN)."""

import keras
from keras import initializers

from rnnzoo.cells.base import RecurrentCell
from rnnzoo.cells.derivatives import VanillaDerivative


@keras.saving.register_keras_serializable(package="rnnzoo")
class VanillaRNNCell(RecurrentCell):
    r"""The vanilla RNN cell.

    Equations, for input x_t and previous hidden state h_{t-1}:

        h_t = tanh(x_t W + h_{t-1} U + b)

    (the activation is configurable). Weights are laid out exactly as in
    `keras.layers.SimpleRNNCell`: `kernel` W (input_dim, units),
    `recurrent_kernel` U (units, units), `bias` b (units,), so weights copied
    from a Keras SimpleRNN give the same outputs.

    Args:
        units: Positive int, size of the hidden state.
        activation: Activation of h_t (default tanh).
        See `rnnzoo.cells.base.RecurrentCell` for the initializer, regularizer,
        constraint, dropout and seed arguments.

    Example:

    >>> import keras, rnnzoo
    >>> layer = keras.layers.RNN(rnnzoo.cells.VanillaRNNCell(4))
    >>> layer(keras.ops.ones((2, 5, 3))).shape
    (2, 4)
    """

    names = ("vanilla",)
    gate_names = ()
    num_gates = 1
    state_names = ("h",)
    step_derivative = VanillaDerivative

    def pointwise(self, z, states, parameters):
        return [self.activation(z)], {}


@keras.saving.register_keras_serializable(package="rnnzoo")
class IRNNCell(VanillaRNNCell):
    r"""The IRNN cell (Le, Jaitly, Hinton 2015): a ReLU RNN started at the identity.

    Equations:

        h_t = relu(x_t W + h_{t-1} U + b),   U initialised to identity_scale * I, b to 0

    At initialisation the state is copied forward unchanged (for non-negative
    states), so gradients neither vanish nor explode through time at first.
    The paper draws the input weights W from N(0, 0.001^2); that is the
    default here too. Same weight layout as `VanillaRNNCell`.

    Args:
        units: Positive int, size of the hidden state.
        identity_scale: Scale of the identity that initialises U (the paper
            also tries 0.01 for "np-RNN"-style damping). Default 1.0.
        activation: Default "relu"; kept configurable for experiments.
        See `rnnzoo.cells.base.RecurrentCell` for the other arguments (all but
        `recurrent_initializer`, which `identity_scale` sets).
    """

    names = ("irnn",)
    fixed_arguments = ("recurrent_initializer",)  # identity_scale * I
    # U is the identity; W is N(0, 0.001^2) seeded from `seed` (see __init__).
    seeded_initializers = ()

    def __init__(
        self,
        units,
        identity_scale=1.0,
        activation="relu",
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ):
        if "recurrent_initializer" in kwargs:
            raise ValueError(
                "IRNNCell sets its recurrent initializer to identity_scale * I; "
                "pass `identity_scale` instead of `recurrent_initializer`, or use "
                "VanillaRNNCell for another initializer."
            )
        if kernel_initializer is None:
            kernel_initializer = initializers.RandomNormal(stddev=0.001, seed=kwargs.get("seed"))
        super().__init__(
            units,
            activation=activation,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=initializers.Identity(gain=identity_scale),
            bias_initializer=bias_initializer,
            **kwargs,
        )
        self.identity_scale = float(identity_scale)

    def get_config(self):
        config = super().get_config()
        del config["recurrent_initializer"]
        config["identity_scale"] = self.identity_scale
        return config
