r"""Layer-normalised cells (Ba, Kiros & Hinton 2016), with tensorflow-addons' equations.

    LN(v; gamma, beta) = (v - mean(v)) / sqrt(var(v) + epsilon) * gamma + beta

over the last axis of v, one mean and variance per sample (the whole fused
width of a projection: all of a cell's gates together, as tensorflow-addons
and Ba et al. do). Each norm has a gain gamma (ones at first) and, where the
cell says so, a shift beta (zeros at first). For half-precision inputs (float16,
bfloat16) the mean and variance are taken in float32, as Keras's
`LayerNormalization` takes them.

The three cells and what each normalises:

    layernorm_lstm  LayerNormLSTMCell  x_t W and h_{t-1} U, each on its own; and the new cell c_t
    layernorm_gru   LayerNormGRUCell   x_t W and h_{t-1} U, each on its own
    layernorm_rnn   LayerNormRNNCell   the sum x_t W + h_{t-1} U (a gain only; b is its shift)

The LSTM and RNN are tensorflow-addons' `LayerNormLSTMCell` and
`LayerNormSimpleRNNCell` (tfa 0.23, archived); tensorflow-addons had no
layer-normalised GRU, so the GRU is the LSTM's recipe applied to Keras's GRU.
Each keeps its base cell's weights (`kernel`, `recurrent_kernel`, `bias`,
same layouts) and adds the norms' gains and shifts.
"""

import keras
from keras import constraints, initializers, ops, regularizers

from rnnzoo.cells.base import _add_bias, at_least_float32
from rnnzoo.cells.derivatives import GRUDerivative, StepDerivative, activation_vjp, concatenate
from rnnzoo.cells.gru import GRUCell
from rnnzoo.cells.lstm import LSTMCell
from rnnzoo.cells.vanilla import VanillaRNNCell


def in_float32(*tensors):
    """The tensors in float32 where they are half precision (float16, bfloat16), else as they
    are: a norm's statistics are taken in at least float32, as Keras's `LayerNormalization`
    takes them, since a half-precision variance over a few units loses the digits that
    1 / sqrt(var) then multiplies."""
    dtype = at_least_float32(tensors[0].dtype)
    if dtype == keras.backend.standardize_dtype(tensors[0].dtype):
        return tensors
    return tuple(ops.cast(tensor, dtype) for tensor in tensors)


def standardise(v, epsilon):
    """-> (v_hat, r): v_hat = (v - mean(v)) * r with r = 1 / sqrt(var(v) + epsilon), over
    the last axis (r is (batch, 1)); computed in float32 for half-precision v, returned in
    v's dtype."""
    (v32,) = in_float32(v)
    mean = ops.mean(v32, axis=-1, keepdims=True)
    centred = v32 - mean
    variance = ops.mean(ops.square(centred), axis=-1, keepdims=True)
    rstd = ops.rsqrt(variance + epsilon)
    return ops.cast(centred * rstd, v.dtype), ops.cast(rstd, v.dtype)


def standardise_vjp(v_hat, rstd, d_v_hat):
    """The gradient with respect to v of sum(d_v_hat * v_hat), from `standardise`'s outputs:

    dv = r (d - mean(d) - v_hat mean(d v_hat))   (exact with epsilon; means over the last axis)

    in float32 for half-precision inputs, as `standardise`.
    """
    v_hat32, rstd32, d32 = in_float32(v_hat, rstd, d_v_hat)
    mean_d = ops.mean(d32, axis=-1, keepdims=True)
    mean_d_v_hat = ops.mean(d32 * v_hat32, axis=-1, keepdims=True)
    return ops.cast(rstd32 * (d32 - mean_d - v_hat32 * mean_d_v_hat), d_v_hat.dtype)


def layer_norm(v, gamma, beta, epsilon):
    """LN(v; gamma, beta) over the last axis; no shift where `beta` is None."""
    normalised = standardise(v, epsilon)[0] * gamma
    return normalised if beta is None else normalised + beta


class LayerNormRNNDerivative(StepDerivative):
    """`LayerNormRNNCell`'s step, h_t = act(a_t) with a_t = LN(z_t; gamma) + b:

        da = dh act'(a),  db = da,  dgamma = da z_hat,  dz = standardise_vjp(da gamma)

    It saves h_t, z_hat (z_t standardised) and r (its 1 / sqrt(var + epsilon), one per row).
    """

    saved_names = ("h", "z_hat", "rstd")

    @property
    def supported(self):
        return self.activations_known("activation")

    def saved_widths(self):
        return [self.cell.units, self.cell.units, 1]

    def forward(self, z, states, parameters):
        # The cell's `pointwise`, op for op, keeping z_hat and r.
        gamma = parameters[0]
        bias = parameters[1] if self.cell.use_bias else None
        z_hat, rstd = standardise(z, self.cell.norm_epsilon)
        h = self.cell.activation(_add_bias(z_hat * gamma, bias))
        return [h], [h, z_hat, rstd]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        h, z_hat, rstd = saved
        d_a = self.activation_gradient(h, d_states[0])
        d_z = standardise_vjp(z_hat, rstd, d_a * parameters[0])
        d_parameters = [d_a * z_hat] + ([d_a] if self.cell.use_bias else [])
        return d_z, [None], d_parameters


class LayerNormLSTMDerivative(StepDerivative):
    """`LayerNormLSTMCell`'s step (its equations there), written out backwards:

        dc = dc_t + dh o act'(c),  do = dh act(c)
        du = standardise_vjp(dc gamma_s)               u = f c_{t-1} + i g, c = LN_s(u)
        di, df, dg, dc_{t-1} = du g, du c_{t-1}, du i, du f
        dz = [di sig'(z_i), df sig'(z_f), dg act'(z_g), do sig'(z_o)],  db = dz
        d(x W) = standardise_vjp(dz gamma_k),  d(h U) = standardise_vjp(dz gamma_r)

    and each norm's dgamma = (its input's gradient) * (the standardised input), dbeta = the
    gradient itself. It saves the gates, c_{t-1}, act(c_t) and each norm's standardised
    input with its 1 / sqrt(var + epsilon).
    """

    # On JAX, recomputing the step (the automatic derivative, which saves z and the states) ran
    # faster than saving these twelve tensors: 36.6k against 33.7k chars/s in
    # benchmarks/layer_speed.py --backend jax (README, "Core layers").
    backends = ("tensorflow",)
    saved_names = (
        *("i", "f", "g", "o", "c_prev", "act_c"),
        *("u_hat", "u_rstd", "xw_hat", "xw_rstd", "hu_hat", "hu_rstd"),
    )

    @property
    def supported(self):
        return self.activations_known("activation", "recurrent_activation")

    def saved_widths(self):
        units, width = self.cell.units, self.cell.num_gates * self.cell.units
        return [units] * 7 + [1, width, 1, width, 1]

    def forward(self, z, states, parameters):
        # The cell's `pointwise`, op for op, keeping what the norms' derivatives need.
        cell, epsilon = self.cell, self.cell.norm_epsilon
        (xw, hu), (_, c_prev) = z, states
        (gamma_k, beta_k, gamma_r, beta_r, gamma_s, beta_s), bias = (
            parameters[:6],
            parameters[6] if cell.use_bias else None,
        )
        xw_hat, xw_rstd = standardise(xw, epsilon)
        hu_hat, hu_rstd = standardise(hu, epsilon)
        z = _add_bias((xw_hat * gamma_k + beta_k) + (hu_hat * gamma_r + beta_r), bias)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = cell.recurrent_activation(z_i)
        f = cell.recurrent_activation(z_f)
        g = cell.activation(z_g)
        o = cell.recurrent_activation(z_o)
        u_hat, u_rstd = standardise(f * c_prev + i * g, epsilon)
        c = u_hat * gamma_s + beta_s
        act_c = cell.activation(c)
        h = o * act_c
        saved = [i, f, g, o, c_prev, act_c, u_hat, u_rstd, xw_hat, xw_rstd, hu_hat, hu_rstd]
        return [h, c], saved

    def backward(self, saved, d_states, parameters, side_by_side=None):
        cell = self.cell
        i, f, g, o, c_prev, act_c, u_hat, u_rstd, xw_hat, xw_rstd, hu_hat, hu_rstd = saved
        gamma_k, _, gamma_r, _, gamma_s, _ = parameters[:6]
        d_h, d_c = d_states
        act_vjp = activation_vjp(cell.activation)
        d_c = d_c + act_vjp(act_c, d_h * o)
        d_u = standardise_vjp(u_hat, u_rstd, d_c * gamma_s)
        d_z = (side_by_side or concatenate)(
            [
                self.gate_gradient(i, d_u * g),
                self.gate_gradient(f, d_u * c_prev),
                act_vjp(g, d_u * i),
                self.gate_gradient(o, d_h * act_c),
            ]
        )
        d_xw = standardise_vjp(xw_hat, xw_rstd, d_z * gamma_k)
        d_hu = standardise_vjp(hu_hat, hu_rstd, d_z * gamma_r)
        d_parameters = [d_z * xw_hat, d_z, d_z * hu_hat, d_z, d_c * u_hat, d_c]
        if cell.use_bias:
            d_parameters.append(d_z)
        return (d_xw, d_hu), [None, d_u * f], d_parameters


class LayerNormGRUDerivative(StepDerivative):
    """`LayerNormGRUCell`'s step: the GRU's derivative (`GRUDerivative`) on the normalised
    projections, then each norm's, d(x W) = standardise_vjp(d(x_hat W) gamma_k) and the same
    for h U. It saves the GRU's tensors and each norm's standardised input with its
    1 / sqrt(var + epsilon).
    """

    def __init__(self, cell):
        super().__init__(cell)
        self.gru = GRUDerivative(cell)
        self.saved_names = (*self.gru.saved_names, "xw_hat", "xw_rstd", "hu_hat", "hu_rstd")

    @property
    def supported(self):
        return self.gru.supported

    def saved_widths(self):
        width = self.cell.num_gates * self.cell.units
        return [*self.gru.saved_widths(), width, 1, width, 1]

    def forward(self, z, states, parameters):
        # The cell's `pointwise`, op for op.
        cell, epsilon = self.cell, self.cell.norm_epsilon
        xw, hu = z
        gamma_k, beta_k, gamma_r, beta_r = parameters[:4]
        bias = parameters[4] if cell.use_bias else None
        xw_hat, xw_rstd = standardise(xw, epsilon)
        hu_hat, hu_rstd = standardise(hu, epsilon)
        xw = _add_bias(xw_hat * gamma_k + beta_k, None if bias is None else bias[0])
        hu = _add_bias(hu_hat * gamma_r + beta_r, None if bias is None else bias[1])
        new_states, gates = GRUCell.pointwise(cell, (xw, hu), states, [])
        saved = self.gru.save((xw, hu), states, new_states, gates, [])
        return list(new_states), [*saved, xw_hat, xw_rstd, hu_hat, hu_rstd]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        count = len(self.gru.saved_names)
        xw_hat, xw_rstd, hu_hat, hu_rstd = saved[count:]
        (d_xw, d_hu), d_prev, _ = self.gru.backward(saved[:count], d_states, [])
        gamma_k, _, gamma_r, _ = parameters[:4]
        d_parameters = [d_xw * xw_hat, d_xw, d_hu * hu_hat, d_hu]
        if self.cell.use_bias:
            d_parameters.append(ops.stack([d_xw, d_hu], axis=1))  # (batch, 2, 3 units)
        d_xw = standardise_vjp(xw_hat, xw_rstd, d_xw * gamma_k)
        d_hu = standardise_vjp(hu_hat, hu_rstd, d_hu * gamma_r)
        return (d_xw, d_hu), d_prev, d_parameters


class LayerNormWeights:
    """The norm arguments and weights the three cells share (a mixin of `RecurrentCell`).

    Arguments (stored by `set_norm_arguments`, saved by `norm_config`):
        norm_gamma_initializer, norm_beta_initializer: Initializers of every
            norm's gain (default "ones") and shift (default "zeros").
        norm_gamma_regularizer, norm_beta_regularizer: Their regularizers.
        norm_gamma_constraint, norm_beta_constraint: Their constraints.
        norm_epsilon: Added to the variance (tensorflow-addons' defaults:
            1e-3 in the LSTM, 1e-5 in the simple RNN).
    """

    # Whether the norms have a shift beta (the simple RNN's bias b plays it).
    norm_has_beta = True

    def set_norm_arguments(
        self,
        norm_gamma_initializer,
        norm_beta_initializer,
        norm_gamma_regularizer,
        norm_beta_regularizer,
        norm_gamma_constraint,
        norm_beta_constraint,
        norm_epsilon,
    ):
        self.norm_gamma_initializer = initializers.get(norm_gamma_initializer)
        self.norm_gamma_regularizer = regularizers.get(norm_gamma_regularizer)
        self.norm_gamma_constraint = constraints.get(norm_gamma_constraint)
        if self.norm_has_beta:
            self.norm_beta_initializer = initializers.get(norm_beta_initializer)
            self.norm_beta_regularizer = regularizers.get(norm_beta_regularizer)
            self.norm_beta_constraint = constraints.get(norm_beta_constraint)
        epsilon = float(norm_epsilon)
        if not epsilon > 0:
            raise ValueError(
                f"Expected `norm_epsilon` to be a positive number, received {norm_epsilon!r}."
            )
        self.norm_epsilon = epsilon

    def add_norm(self, name, width):
        """The weights of norm `name`: [`{name}_gamma`, `{name}_beta`] (gamma only without beta)."""
        weights = [
            self.add_weight(
                shape=(width,),
                name=f"{name}_gamma",
                initializer=self.norm_gamma_initializer,
                regularizer=self.norm_gamma_regularizer,
                constraint=self.norm_gamma_constraint,
            )
        ]
        if self.norm_has_beta:
            weights.append(
                self.add_weight(
                    shape=(width,),
                    name=f"{name}_beta",
                    initializer=self.norm_beta_initializer,
                    regularizer=self.norm_beta_regularizer,
                    constraint=self.norm_beta_constraint,
                )
            )
        return weights

    def norm(self, v, gamma, beta=None):
        return layer_norm(v, gamma, beta, self.norm_epsilon)

    def norm_config(self):
        config = {
            "norm_gamma_initializer": initializers.serialize(self.norm_gamma_initializer),
            "norm_gamma_regularizer": regularizers.serialize(self.norm_gamma_regularizer),
            "norm_gamma_constraint": constraints.serialize(self.norm_gamma_constraint),
            "norm_epsilon": self.norm_epsilon,
        }
        if self.norm_has_beta:
            config["norm_beta_initializer"] = initializers.serialize(self.norm_beta_initializer)
            config["norm_beta_regularizer"] = regularizers.serialize(self.norm_beta_regularizer)
            config["norm_beta_constraint"] = constraints.serialize(self.norm_beta_constraint)
        return config


@keras.saving.register_keras_serializable(package="rnnzoo")
class LayerNormLSTMCell(LayerNormWeights, LSTMCell):
    r"""The LSTM with layer normalisation, as tensorflow-addons' `LayerNormLSTMCell`.

    Equations (LN as in the module docstring; each LN_* has its own gamma and beta):

        [z_i, z_f, z_g, z_o] = LN_kernel(x_t W) + LN_recurrent(h_{t-1} U) + b
        i_t = sigmoid(z_i),  f_t = sigmoid(z_f),  g_t = tanh(z_g),  o_t = sigmoid(z_o)
        c_t = LN_state(f_t * c_{t-1} + i_t * g_t)
        h_t = o_t * tanh(c_t)

    What is normalised: the input projection x_t W and the recurrent
    projection h_{t-1} U, each over its whole 4 units (all four gates'
    pre-activations together), before they are summed and b is added; and
    the new cell, over its units. The normalised cell is the state carried to
    the next step (tensorflow-addons' choice: Ba et al.'s LN-LSTM carries the
    unnormalised c_t and normalises it only inside h_t).

    Weights: the LSTM's (`kernel` (input_dim, 4 units), `recurrent_kernel`
    (units, 4 units), `bias` (4 units,), blocks i, f, g, o, forget bias 1)
    and `kernel_norm_gamma`, `kernel_norm_beta`, `recurrent_norm_gamma`,
    `recurrent_norm_beta` (4 units,) and `state_norm_gamma`,
    `state_norm_beta` (units,): tensorflow-addons' weights under the same
    names. The step is projection then pointwise (the norms act on the
    projections), so the layer runs it on the fast loop.

    Beware leading zero inputs. From the zero state, a step whose input is
    zero keeps the state exactly zero (every pre-activation is its gate's
    bias, the same in every unit, so the new cell has no variance), and there
    LN's derivative is 1 / sqrt(norm_epsilon), about 32: the gradient grows
    by that much per such step. Five zero steps gave a gradient norm of 1e9,
    twenty overflowed float32 (2026-12-01); pixel-by-pixel MNIST, whose first
    rows are blank, gives nan at the first batch. `norm_epsilon=1.0` kept
    100 zero steps finite, as does a first input that is not zero.

    Args:
        norm_gamma_initializer, norm_beta_initializer, norm_gamma_regularizer,
        norm_beta_regularizer, norm_gamma_constraint, norm_beta_constraint:
            The norms' gains and shifts (default ones and zeros).
        norm_epsilon: Added to each variance (default 1e-3, as tensorflow-addons).
        See `LSTMCell` for the other arguments.
    """

    names = ("layernorm_lstm",)
    step_derivative = LayerNormLSTMDerivative
    projection = "pair"  # the two projections are normalised apart, then summed

    def __init__(
        self,
        units,
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_gamma_regularizer=None,
        norm_beta_regularizer=None,
        norm_gamma_constraint=None,
        norm_beta_constraint=None,
        norm_epsilon=1e-3,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.set_norm_arguments(
            norm_gamma_initializer,
            norm_beta_initializer,
            norm_gamma_regularizer,
            norm_beta_regularizer,
            norm_gamma_constraint,
            norm_beta_constraint,
            norm_epsilon,
        )

    def build(self, input_shape):
        super().build(input_shape)
        width = self.num_gates * self.units
        self.kernel_norm = self.add_norm("kernel_norm", width)
        self.recurrent_norm = self.add_norm("recurrent_norm", width)
        self.state_norm = self.add_norm("state_norm", self.units)

    def input_bias(self):
        return None  # b is added after the norms, in `pointwise`

    def pointwise_parameters(self):
        bias = [self.bias] if self.use_bias else []
        return [*self.kernel_norm, *self.recurrent_norm, *self.state_norm, *bias]

    def pointwise(self, z, states, parameters):
        xw, hu = z
        _, c_prev = states
        kernel_norm, recurrent_norm, state_norm = parameters[0:2], parameters[2:4], parameters[4:6]
        bias = parameters[6] if self.use_bias else None
        z = _add_bias(self.norm(xw, *kernel_norm) + self.norm(hu, *recurrent_norm), bias)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        c = self.norm(f * c_prev + i * g, *state_norm)
        h = o * self.activation(c)
        return [h, c], {"i": i, "f": f, "g": g, "o": o}

    def get_config(self):
        return {**super().get_config(), **self.norm_config()}


@keras.saving.register_keras_serializable(package="rnnzoo")
class LayerNormGRUCell(LayerNormWeights, GRUCell):
    r"""The GRU with layer normalisation: tensorflow-addons' LSTM recipe, on Keras's GRU.

    Equations (Keras's `reset_after=True` GRU; LN as in the module docstring):

        [x_z, x_r, x_h] = LN_kernel(x_t W) + b_x
        [u_z, u_r, u_h] = LN_recurrent(h_{t-1} U) + b_h
        z_t = sigmoid(x_z + u_z)                update gate
        r_t = sigmoid(x_r + u_r)                reset gate
        n_t = tanh(x_h + r_t * u_h)             candidate
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t

    What is normalised: the input projection x_t W and the recurrent
    projection h_{t-1} U, each over its whole 3 units, before its bias. A GRU
    has no cell apart from h, and h is not normalised (it is a gated mix of
    h_{t-1} and n_t, both bounded).

    Weights: the GRU's (`kernel` (input_dim, 3 units), `recurrent_kernel`
    (units, 3 units), `bias` (2, 3 units): row 0 b_x, row 1 b_h) and
    `kernel_norm_gamma`, `kernel_norm_beta`, `recurrent_norm_gamma`,
    `recurrent_norm_beta` (3 units,). Only the reset-after form: the reset
    gate multiplies the normalised projection, so it must come after it.

    Args:
        norm_*: As `LayerNormLSTMCell` (norm_epsilon default 1e-3).
        See `GRUCell` for the other arguments (all but `reset_after`).
    """

    names = ("layernorm_gru",)
    step_derivative = LayerNormGRUDerivative
    forms = {}  # no reset-before form
    fixed_arguments = ("reset_after",)

    def __init__(
        self,
        units,
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_gamma_regularizer=None,
        norm_beta_regularizer=None,
        norm_gamma_constraint=None,
        norm_beta_constraint=None,
        norm_epsilon=1e-3,
        **kwargs,
    ):
        if "reset_after" in kwargs:
            raise ValueError(
                "LayerNormGRUCell applies the reset gate after its recurrent norm (Keras's "
                "reset_after=True form) and takes no `reset_after`; received "
                f"reset_after={kwargs['reset_after']!r}. Use GRUCell for the reset-before form."
            )
        super().__init__(units, reset_after=True, **kwargs)
        self.set_norm_arguments(
            norm_gamma_initializer,
            norm_beta_initializer,
            norm_gamma_regularizer,
            norm_beta_regularizer,
            norm_gamma_constraint,
            norm_beta_constraint,
            norm_epsilon,
        )

    def build(self, input_shape):
        super().build(input_shape)
        width = self.num_gates * self.units
        self.kernel_norm = self.add_norm("kernel_norm", width)
        self.recurrent_norm = self.add_norm("recurrent_norm", width)

    def input_bias(self):
        return None  # b_x and b_h are added after the norms, in `pointwise`

    def recurrent_bias(self):
        return None

    def pointwise_parameters(self):
        bias = [self.bias] if self.use_bias else []
        return [*self.kernel_norm, *self.recurrent_norm, *bias]

    def pointwise(self, projections, states, parameters):
        xw, hu = projections
        kernel_norm, recurrent_norm = parameters[0:2], parameters[2:4]
        bias = parameters[4] if self.use_bias else None
        xw = _add_bias(self.norm(xw, *kernel_norm), None if bias is None else bias[0])
        hu = _add_bias(self.norm(hu, *recurrent_norm), None if bias is None else bias[1])
        return super().pointwise((xw, hu), states, [])  # the GRU's step on them

    def get_config(self):
        config = {**super().get_config(), **self.norm_config()}
        del config["reset_after"]
        return config


@keras.saving.register_keras_serializable(package="rnnzoo")
class LayerNormRNNCell(LayerNormWeights, VanillaRNNCell):
    r"""The vanilla RNN with layer normalisation, as tensorflow-addons' `LayerNormSimpleRNNCell`.

    Equations (LN with a gain only; b is the shift):

        h_t = tanh(LN(x_t W + h_{t-1} U; gamma) + b)

    What is normalised: the sum of the two projections, over its units,
    before b; the norm has a gain and no shift of its own (tensorflow-addons'
    `center=False`: its b is the shift). h is not normalised.

    Weights: the vanilla RNN's (`kernel` (input_dim, units),
    `recurrent_kernel` (units, units), `bias` (units,)) and `norm_gamma`
    (units,), tensorflow-addons' `layernorm/gamma`.

    Args:
        norm_gamma_initializer, norm_gamma_regularizer, norm_gamma_constraint:
            The gain's (default ones).
        norm_epsilon: Added to the variance (default 1e-5, as tensorflow-addons).
        See `VanillaRNNCell` for the other arguments.
    """

    names = ("layernorm_rnn",)
    step_derivative = LayerNormRNNDerivative
    norm_has_beta = False

    def __init__(
        self,
        units,
        norm_gamma_initializer="ones",
        norm_gamma_regularizer=None,
        norm_gamma_constraint=None,
        norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.set_norm_arguments(
            norm_gamma_initializer,
            None,
            norm_gamma_regularizer,
            None,
            norm_gamma_constraint,
            None,
            norm_epsilon,
        )

    def build(self, input_shape):
        super().build(input_shape)
        (self.norm_gamma,) = self.add_norm("norm", self.units)

    def input_bias(self):
        return None  # b is added after the norm, in `pointwise`

    def pointwise_parameters(self):
        return [self.norm_gamma, *([self.bias] if self.use_bias else [])]

    def pointwise(self, z, states, parameters):
        gamma = parameters[0]
        bias = parameters[1] if self.use_bias else None
        return super().pointwise(_add_bias(self.norm(z, gamma), bias), states, [])  # h = tanh(.)

    def get_config(self):
        return {**super().get_config(), **self.norm_config()}
