"""The independently recurrent neural network (IndRNN; Li, Li, Cook, Zhu & Gao 2018)."""

import keras
from keras import initializers, ops

from rnnzoo.cells.base import RecurrentCell


@keras.saving.register_keras_serializable(package="rnnzoo")
class IndRNNCell(RecurrentCell):
    r"""IndRNN: each unit sees only its own last value, through one recurrent weight.

    Equations, with u a vector (units,) and * elementwise:

        h_t = relu(x_t W + u * h_{t-1} + b)

    Unit n's gradient through k steps is the product of u_n relu'(.) over
    them, so bounding |u_n| bounds it (Li et al., Section 3.1): for a
    sequence of T steps, |u_n| <= gamma^(1/T) keeps it from growing past
    gamma (gamma = 2 in their experiments; for very long sequences they
    suggest |u_n| <= 1). `recurrent_max_abs` applies such a bound after
    every training step: pass 2 ** (1 / T), say. The default initialiser of u
    is uniform in [0, 1), theirs for relu.

    Weights: `kernel` W (input_dim, units), `recurrent_kernel` u (units,),
    `bias` b (units,).

    The recurrence is elementwise, u * h_{t-1}, with no recurrent matrix, so
    the step is not x_t W + h_{t-1} U + b then pointwise and the layer runs
    Keras's loop (see `pointwise_step_reason`).

    Args:
        units: Positive int, size of the hidden state.
        activation: Default "relu" (the paper's).
        recurrent_initializer: Initializer of u (default None: uniform in
            [0, 1), seeded with `seed`).
        recurrent_max_abs: None (default), or a positive bound on |u_n|,
            kept by clipping after every update (after `recurrent_constraint`
            if there is one too).
        See `rnnzoo.cells.base.RecurrentCell` for the other arguments.
    """

    names = ("indrnn",)
    gate_names = ()
    state_names = ("h",)
    # u is uniform in [0, 1) seeded with `seed` (see __init__), as IRNN's W.
    seeded_initializers = ("kernel_initializer",)

    def __init__(
        self,
        units,
        activation="relu",
        recurrent_initializer=None,
        recurrent_max_abs=None,
        **kwargs,
    ):
        if recurrent_initializer is None:
            recurrent_initializer = initializers.RandomUniform(0.0, 1.0, seed=kwargs.get("seed"))
        super().__init__(
            units, activation=activation, recurrent_initializer=recurrent_initializer, **kwargs
        )
        if recurrent_max_abs is not None:
            bound = float(recurrent_max_abs)
            if not bound > 0:
                raise ValueError(
                    "Expected `recurrent_max_abs` to be None or a positive number, received "
                    f"recurrent_max_abs={recurrent_max_abs!r}; Li et al.'s bound for T steps "
                    "is 2 ** (1 / T)."
                )
            recurrent_max_abs = bound
        self.recurrent_max_abs = recurrent_max_abs

    def build(self, input_shape):
        input_dim = self._input_features(input_shape)
        self.kernel = self._kernel_weight((input_dim, self.units))
        constraint = None
        if self.recurrent_max_abs is not None:
            constraint = _BoundedAbs(self.recurrent_max_abs, self.recurrent_constraint)
        self.recurrent_kernel = self._recurrent_weight((self.units,), constraint=constraint)
        self.bias = self._bias_weight((self.units,)) if self.use_bias else None

    def project(self, inputs, h_prev):
        """x_t W + u * h_{t-1} + b: the recurrent part is elementwise."""
        z = ops.matmul(inputs, self.kernel) + self.recurrent_kernel * h_prev
        return z if self.bias is None else ops.add(z, self.bias)

    def pointwise(self, z, states, parameters):
        return [self.activation(z)], {}

    def pointwise_step_reason(self):
        return (
            "IndRNN's recurrence u * h_{t-1} is elementwise, and the fast loop's step "
            "multiplies h_{t-1} by a recurrent matrix"
        )

    def get_config(self):
        config = super().get_config()
        config["recurrent_max_abs"] = self.recurrent_max_abs
        return config


class _BoundedAbs(keras.constraints.Constraint):
    """`then` (a constraint, or None), then clip every entry to [-bound, bound]."""

    def __init__(self, bound, then=None):
        self.bound = bound
        self.then = then

    def __call__(self, w):
        if self.then is not None:
            w = self.then(w)
        return ops.clip(w, -self.bound, self.bound)
