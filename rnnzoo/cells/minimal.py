r"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
Needed?"), in their log-space versions.

Their gates read x_t only, so h_t = a_t * h_{t-1} + b_t with a_t, b_t known
for every step before any h is: the recurrence is linear in h, and a layer
can compute all of a sequence's h_t at once (`scan`, which
`rnnzoo.layers.parallel_scan` runs; see `rnnzoo.cells.linear_scan`). The
cell's `step` is the same recurrence one step at a time, for sampling and
for a state carried between calls.

"Log-space versions" (the paper's Appendix B.3): the candidate goes through
g(v) = v + 0.5 for v >= 0, sigmoid(v) below (continuous, always > 0, so
h_t > 0 from a positive start), not through tanh, and every coefficient is
computed from logarithms of sigmoids, log sigmoid(k) = -softplus(-k),
which stay finite where the sigmoids underflow.

Neither cell has recurrent weights: no `recurrent_kernel`, so no
`recurrent_initializer`, `recurrent_regularizer`, `recurrent_constraint`
or `recurrent_dropout` (h_{t-1} enters no matmul; it is only carried), and
no `activation` (g is part of the cell). Passing one raises a ValueError.
"""

import keras
from keras import ops

from rnnzoo.cells.base import RecurrentCell, at_least_float32
from rnnzoo.cells.linear_scan import gated_recurrence


def g(v):
    """Feng et al.'s g: v + 0.5 for v >= 0, sigmoid(v) below (continuous, positive)."""
    return ops.where(v >= 0, v + 0.5, ops.sigmoid(v))


def g_derivative(v, g_of_v):
    """g'(v) from v and g(v): 1 for v >= 0, sigmoid'(v) = g(v) (1 - g(v)) below."""
    return ops.where(v >= 0, ops.ones_like(v), g_of_v * (1.0 - g_of_v))


class MinimalCell(RecurrentCell):
    """What minGRU and minLSTM share: input weights only, and h_t = a_t * h_{t-1} + b_t.

    A subclass writes `coefficients(k)`: from the fused input projection
    k = x_t W + b, the a_t and b_t of the recurrence and the gates by name.
    `pointwise` (one step) and `scan` (every step at once) both use it.

    Args:
        units: Positive int, size of the hidden state.
        See `rnnzoo.cells.base.RecurrentCell` for the kernel's and bias's
        initializer, regularizer and constraint, `use_bias`, `dropout`
        (of x_t, one mask per sequence) and `seed`.
    """

    state_names = ("h",)
    fixed_arguments = (
        "activation",
        "recurrent_initializer",
        "recurrent_regularizer",
        "recurrent_constraint",
        "recurrent_dropout",
    )
    seeded_initializers = ("kernel_initializer",)

    def __init__(self, units, **kwargs):
        given = [
            name
            for name in self.fixed_arguments
            if name in kwargs
            and kwargs[name] is not None
            and not (name == "recurrent_dropout" and kwargs[name] == 0)
        ]
        if given:
            raise ValueError(
                f"{type(self).__name__} has no recurrent weights and no choice of activation "
                f"(its candidate goes through g); received {', '.join(given)}. Drop them, or use "
                "a cell with a recurrent matrix (gru, lstm, ...)."
            )
        kwargs = {k: v for k, v in kwargs.items() if k not in self.fixed_arguments}
        super().__init__(units, **kwargs)

    def build(self, input_shape):
        input_dim = self._input_features(input_shape)
        self.kernel = self._kernel_weight((input_dim, self.num_gates * self.units))
        self.bias = self._bias_weight((self.num_gates * self.units,)) if self.use_bias else None

    def project(self, inputs, h_prev):
        """k = x_t W + b: h_{t-1} enters no matmul."""
        k = ops.matmul(inputs, self.kernel)
        return k if self.bias is None else ops.add(k, self.bias)

    def pointwise(self, z, states, parameters):
        (h_prev,) = states
        a, b, gates = self.coefficients(z)
        h = a * h_prev + b
        return [h], gates

    def coefficients(self, k):
        """-> (a_t, b_t, gates) of h_t = a_t * h_{t-1} + b_t, from k = x_t W + b."""
        raise NotImplementedError

    def coefficients_gradient(self, k, a, gates, d_a, d_b):
        """d_k from the gradients with respect to a_t and b_t: `coefficients`' derivative,
        written out for the layer's scan (tested against autodiff)."""
        raise NotImplementedError

    def pointwise_step_reason(self):
        return (
            f"{type(self).__name__} has no recurrent matrix (h_{{t-1}} enters no matmul); "
            "its layer's fast path is the parallel scan"
        )

    def scan(self, sequences, initial_states, mask=None):
        """Every step at once: sequences (batch, time, features), [h_0] -> (h_1..h_T, [h_T]).

        The same equations as `step`, run as `rnnzoo.cells.linear_scan`'s
        parallel scan. `mask` (batch, time), where given, marks the steps
        to run; a masked step keeps h (a_t = 1, b_t = 0). Half-precision
        inputs are scanned in float32 (a long product of a_t in float16
        would lose too much), the results cast back.
        """
        dtype = keras.backend.standardize_dtype(self.compute_dtype)
        scan_dtype = at_least_float32(dtype)
        k = ops.matmul(ops.cast(sequences, scan_dtype), ops.cast(self.kernel, scan_dtype))
        if self.bias is not None:
            k = ops.add(k, ops.cast(self.bias, scan_dtype))
        h0 = ops.cast(initial_states[0], scan_dtype)
        h = gated_recurrence(k, h0, self.coefficients, self.coefficients_gradient, mask=mask)
        h = ops.cast(h, dtype)
        return h, [h[:, -1]]

    def get_config(self):
        config = super().get_config()
        for name in self.fixed_arguments:
            config.pop(name)
        return config


@keras.saving.register_keras_serializable(package="rnnzoo")
class MinGRUCell(MinimalCell):
    r"""minGRU: the GRU with gates that read only x_t (Feng et al. 2024, log-space version).

    Equations:

        [k_z, k_h] = x_t W + b
        z_t = sigmoid(k_z)                       update gate
        h~_t = g(k_h)                            candidate (g: v + 0.5 or sigmoid(v), > 0)
        h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

    1 - z_t is computed as sigmoid(-k_z) = exp(-softplus(k_z)) (the paper's
    log-space coefficient), which keeps its digits where z_t is near 1. The
    layer computes every h_t at once with a parallel scan (see the module
    docstring); this cell steps one at a time, with the same numbers.

    Weights: `kernel` W (input_dim, 2 units), `bias` b (2 units,), blocks z, h~.
    Gates: "z" and "h_tilde".

    Args: as `MinimalCell`.
    """

    names = ("mingru",)
    gate_names = ("z", "h_tilde")
    num_gates = 2

    def coefficients(self, k):
        k_z, k_h = ops.split(k, 2, axis=-1)
        z = ops.sigmoid(k_z)
        h_tilde = g(k_h)
        return ops.sigmoid(-k_z), z * h_tilde, {"z": z, "h_tilde": h_tilde}

    def coefficients_gradient(self, k, a, gates, d_a, d_b):
        z, h_tilde = gates["z"], gates["h_tilde"]
        k_h = ops.split(k, 2, axis=-1)[1]
        d_k_z = a * z * (d_b * h_tilde - d_a)  # d(1 - z)/dk_z = -z (1 - z) = -dz/dk_z
        d_k_h = d_b * z * g_derivative(k_h, h_tilde)
        return ops.concatenate([d_k_z, d_k_h], axis=-1)


@keras.saving.register_keras_serializable(package="rnnzoo")
class MinLSTMCell(MinimalCell):
    r"""minLSTM: the LSTM with gates that read only x_t, normalised (Feng et al. 2024, log space).

    Equations:

        [k_f, k_i, k_h] = x_t W + b
        f_t = sigmoid(k_f),  i_t = sigmoid(k_i)         forget and input gates
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)   normalised: f'_t + i'_t = 1
        h~_t = g(k_h)                                    candidate (g: v + 0.5 or sigmoid(v))
        h_t = f'_t * h_{t-1} + i'_t * h~_t

    The normalised gates are computed as the paper's log-space version does,
    f'_t = sigmoid(log f_t - log i_t) with log f_t = -softplus(-k_f) (and i'_t
    likewise): the same numbers, finite where f_t + i_t underflows. There is
    no separate cell state: h_t is the minLSTM's cell (its output gate is gone).

    Weights: `kernel` W (input_dim, 3 units), `bias` b (3 units,), blocks f, i, h~.
    Gates: "f" and "i" are the normalised f'_t and i'_t (those act on h), and
    "h_tilde".

    Args: as `MinimalCell`.
    """

    names = ("minlstm",)
    gate_names = ("f", "i", "h_tilde")
    num_gates = 3

    def coefficients(self, k):
        k_f, k_i, k_h = ops.split(k, 3, axis=-1)
        log_f_over_i = ops.softplus(-k_i) - ops.softplus(-k_f)  # log f_t - log i_t
        f = ops.sigmoid(log_f_over_i)
        i = ops.sigmoid(-log_f_over_i)
        h_tilde = g(k_h)
        return f, i * h_tilde, {"f": f, "i": i, "h_tilde": h_tilde}

    def coefficients_gradient(self, k, a, gates, d_a, d_b):
        i, h_tilde = gates["i"], gates["h_tilde"]
        k_f, k_i, k_h = ops.split(k, 3, axis=-1)
        # f' = sigmoid(l), i' = 1 - f', l = softplus(-k_i) - softplus(-k_f).
        d_l = a * i * (d_a - d_b * h_tilde)
        d_k_f = d_l * ops.sigmoid(-k_f)
        d_k_i = -d_l * ops.sigmoid(-k_i)
        d_k_h = d_b * i * g_derivative(k_h, h_tilde)
        return ops.concatenate([d_k_f, d_k_i, d_k_h], axis=-1)
