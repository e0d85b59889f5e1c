"""The MGU against a float64 numpy transcription of Flax's `MGUCell.__call__`.

Flax's parameters are Dense layers named "if", "hf", "in", "hn" (kernel
(in, out) as Keras lays them, a bias on "if" and "in", and on "hn" only
with `reset_gate`); `flax_params` maps the cell's fused weights to them.
"""

import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo

TIME = 6


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def flax_mgu(x, params, reset_gate):
    h = np.zeros((x.shape[0], params["hf"]["kernel"].shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        inputs = x[:, t]
        f = sigmoid(
            inputs @ params["if"]["kernel"] + params["if"]["bias"] + h @ params["hf"]["kernel"]
        )
        hidden = h @ params["hn"]["kernel"]
        if reset_gate:
            hidden = (hidden + params["hn"]["bias"]) * f
        n = np.tanh(inputs @ params["in"]["kernel"] + params["in"]["bias"] + hidden)
        h = (1.0 - f) * n + f * h
        outputs.append(h)
    return [np.stack(outputs, axis=1), h]


def flax_params(cell):
    kernel, recurrent_kernel = (w.numpy().astype("float64") for w in cell.weights[:2])
    width = kernel.shape[-1]
    bias = cell.bias.numpy() if cell.use_bias else np.zeros(width)
    w_if, w_in = np.split(kernel, 2, axis=-1)
    w_hf, w_hn = np.split(recurrent_kernel, 2, axis=-1)
    b_if, b_in = np.split(bias.astype("float64"), 2)
    hn = {"kernel": w_hn}
    if cell.reset_gate:
        b_hn = cell.candidate_recurrent_bias
        hn["bias"] = np.zeros(width // 2) if b_hn is None else b_hn.numpy().astype("float64")
    return {
        "if": {"kernel": w_if, "bias": b_if},
        "hf": {"kernel": w_hf},
        "in": {"kernel": w_in, "bias": b_in},
        "hn": hn,
    }


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("reset_gate", [True, False], ids=["reset_gate", "no_reset_gate"])
def test_mgu_equals_flax_equations(reset_gate, use_bias, rng):
    cell = rnnzoo.cells.MGUCell(UNITS, reset_gate=reset_gate, use_bias=use_bias, dtype="float64")
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    expected = flax_mgu(inputs, flax_params(cell), reset_gate)
    numerics.assert_outputs_close(layer(inputs), expected, atol=1e-12)
    # The layer (on the fast loop) gives the same numbers.
    fast = rnnzoo.layers.MGU(UNITS, reset_gate=reset_gate, use_bias=use_bias, dtype="float64")
    fast(inputs)
    fast.set_weights(layer.get_weights())
    numerics.assert_outputs_close(fast(inputs), expected[1], atol=1e-12)


def test_mgu_has_flax_parameter_count_and_forget_bias_one():
    layer = rnnzoo.layers.MGU(UNITS)
    layer(np.zeros((1, 2, FEATURES), "float32"))
    # if, in: kernel and bias; hf, hn: kernel; hn's bias.
    assert layer.count_params() == 2 * (FEATURES * UNITS + UNITS) + 2 * UNITS * UNITS + UNITS
    bias = layer.cell.bias.numpy()
    np.testing.assert_array_equal(bias[:UNITS], 1.0)
    np.testing.assert_array_equal(bias[UNITS:], 0.0)
    np.testing.assert_array_equal(layer.cell.candidate_recurrent_bias.numpy(), 0.0)
