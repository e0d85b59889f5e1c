"""The layer-normalised cells against a float64 numpy transcription of tensorflow-addons' equations.

The references below are written from tensorflow-addons 0.23's
`LayerNormLSTMCell.call` and `LayerNormSimpleRNNCell.call` (a Keras
`LayerNormalization` on x W and on h U, each over the fused width, the bias
added after them, and one on the new cell, whose normalised value is
carried; for the simple RNN one gain-only norm of the summed projections,
then the bias), and for the GRU the same recipe on Keras's reset-after GRU.
They know nothing of rnnzoo's code; `tfa_weights` maps a cell's weights to
tensorflow-addons' names.
"""

import cell_cases
import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo
from rnnzoo.layers import fast_loop

TIME = 6


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def layer_normalization(v, gamma, beta, epsilon):
    """keras.layers.LayerNormalization(axis=-1) as its docstring states it."""
    mean = v.mean(axis=-1, keepdims=True)
    variance = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(variance + epsilon) * gamma + beta


def tfa_lstm(x, w, epsilon):
    h = np.zeros((x.shape[0], w["recurrent_kernel"].shape[0]))
    c = np.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        z = layer_normalization(x[:, t] @ w["kernel"], *w["kernel_norm"], epsilon)
        z = z + layer_normalization(h @ w["recurrent_kernel"], *w["recurrent_norm"], epsilon)
        z = z + w["bias"]
        z0, z1, z2, z3 = np.split(z, 4, axis=-1)
        i, f, o = sigmoid(z0), sigmoid(z1), sigmoid(z3)
        c = f * c + i * np.tanh(z2)
        c = layer_normalization(c, *w["state_norm"], epsilon)
        h = o * np.tanh(c)
        outputs.append(h)
    return [np.stack(outputs, axis=1), h, c]


def layer_norm_gru(x, w, epsilon):
    h = np.zeros((x.shape[0], w["recurrent_kernel"].shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        xw = layer_normalization(x[:, t] @ w["kernel"], *w["kernel_norm"], epsilon) + w["bias"][0]
        hu = layer_normalization(h @ w["recurrent_kernel"], *w["recurrent_norm"], epsilon)
        hu = hu + w["bias"][1]
        x_z, x_r, x_h = np.split(xw, 3, axis=-1)
        h_z, h_r, h_h = np.split(hu, 3, axis=-1)
        z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
        h = z * h + (1 - z) * np.tanh(x_h + r * h_h)
        outputs.append(h)
    return [np.stack(outputs, axis=1), h]


def tfa_simple_rnn(x, w, epsilon):
    h = np.zeros((x.shape[0], w["recurrent_kernel"].shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        net = x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"]
        h = np.tanh(layer_normalization(net, w["layernorm/gamma"], 0.0, epsilon) + w["bias"])
        outputs.append(h)
    return [np.stack(outputs, axis=1), h]


REFERENCES = {"layernorm_lstm": tfa_lstm, "layernorm_gru": layer_norm_gru}
REFERENCES["layernorm_rnn"] = tfa_simple_rnn


def tfa_weights(cell):
    """The cell's weights under tensorflow-addons' names, in float64 (zeros for no bias)."""
    weights = {w.path.split("/")[-1]: w.numpy().astype("float64") for w in cell.weights}
    named = {"kernel": weights["kernel"], "recurrent_kernel": weights["recurrent_kernel"]}
    width = weights["kernel"].shape[-1]
    named["bias"] = weights.get("bias", np.zeros((2, width) if "gru" in cell.names[0] else width))
    for norm in ("kernel_norm", "recurrent_norm", "state_norm"):
        if f"{norm}_gamma" in weights:
            named[norm] = (weights[f"{norm}_gamma"], weights[f"{norm}_beta"])
    if "norm_gamma" in weights:
        named["layernorm/gamma"] = weights["norm_gamma"]
    return named


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_cell_equals_tensorflow_addons_equations(name, use_bias, rng):
    cell = rnnzoo.cells.get(name)(UNITS, use_bias=use_bias, dtype="float64")
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    expected = REFERENCES[name](inputs, tfa_weights(cell), cell.norm_epsilon)
    numerics.assert_outputs_close(layer(inputs), expected, atol=1e-12, what=name)


@pytest.mark.parametrize("name", list(REFERENCES))
@cell_cases.requires_tensorflow
def test_layer_on_the_fast_loop_equals_the_equations(name, rng, monkeypatch):
    calls = []
    run = fast_loop.run
    monkeypatch.setattr(fast_loop, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    layer = rnnzoo.layers.get(name)(UNITS, return_sequences=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    calls.clear()
    expected = REFERENCES[name](inputs, tfa_weights(layer.cell), layer.cell.norm_epsilon)[0]
    numerics.assert_outputs_close(layer(inputs), expected, atol=1e-12, what=name)
    assert calls, "the fast loop did not run"


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("layernorm_lstm", {"use_bias": False}),
        ("layernorm_lstm", {"activation": "relu"}),
        ("layernorm_gru", {"use_bias": False}),
        ("layernorm_rnn", {"use_bias": False}),
        ("layernorm_rnn", {"activation": "relu"}),
    ],
    ids=["lstm-no_bias", "lstm-relu", "gru-no_bias", "rnn-no_bias", "rnn-relu"],
)
@cell_cases.requires_tensorflow
def test_hand_written_derivative_in_other_forms(name, kwargs, rng):
    """The cells' hand-written step derivatives, beyond the shared tests' default forms: the
    fast layer's outputs and gradients equal `keras.layers.RNN` over the same cell."""
    import tensorflow as tf

    layer = rnnzoo.layers.get(name)(
        UNITS, return_sequences=True, fast=True, dtype="float64", **kwargs
    )
    assert type(layer.cell.derivative()) is type(layer.cell).step_derivative
    reference = keras.layers.RNN(
        rnnzoo.cells.get(name)(UNITS, dtype="float64", **kwargs),
        return_sequences=True,
        dtype="float64",
    )
    inputs = tf.constant(random_inputs(rng, time=TIME, dtype="float64"))
    layer(inputs), reference(inputs)
    numerics.randomize_weights(layer, rng)
    reference.set_weights(layer.get_weights())
    read_out = tf.constant(rng.normal(size=(*inputs.shape[:2], UNITS)))
    results = []
    for model in (layer, reference):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = model(inputs)
            loss = tf.reduce_sum(outputs * read_out)
        results.append([outputs, *tape.gradient(loss, [inputs, *model.trainable_weights])])
    numerics.assert_outputs_close(results[0], results[1], atol=1e-10, what=name)


def test_defaults_are_tensorflow_addons_ones():
    assert rnnzoo.cells.LayerNormLSTMCell(UNITS).norm_epsilon == 1e-3
    assert rnnzoo.cells.LayerNormRNNCell(UNITS).norm_epsilon == 1e-5
    layer = keras.layers.RNN(rnnzoo.cells.LayerNormLSTMCell(UNITS))
    layer(np.zeros((1, 2, FEATURES), "float32"))
    weights = {w.path.split("/")[-1]: w.numpy() for w in layer.weights}
    for norm in ("kernel_norm", "recurrent_norm", "state_norm"):
        np.testing.assert_array_equal(weights[f"{norm}_gamma"], 1.0)
        np.testing.assert_array_equal(weights[f"{norm}_beta"], 0.0)
    np.testing.assert_array_equal(weights["bias"][UNITS : 2 * UNITS], 1.0)  # unit forget bias
    assert {"kernel_norm_gamma", "state_norm_beta"} <= set(weights)


def test_normalised_cell_state_is_carried(rng):
    """tensorflow-addons carries LN(c_t): with gamma 2 and beta 0.5 on the state norm, the
    carried c of every sample has mean 0.5 and standard deviation 2 (up to epsilon)."""
    layer = keras.layers.RNN(
        rnnzoo.cells.LayerNormLSTMCell(8, norm_epsilon=1e-9), return_state=True
    )
    inputs = random_inputs(rng, time=TIME)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    layer.cell.state_norm[0].assign(np.full(8, 2.0))
    layer.cell.state_norm[1].assign(np.full(8, 0.5))
    _, _, c = numerics.as_list(layer(inputs))
    np.testing.assert_allclose(c.mean(axis=-1), 0.5, atol=1e-5)
    np.testing.assert_allclose(c.std(axis=-1), 2.0, atol=1e-4)


def test_gru_takes_no_reset_after():
    with pytest.raises(ValueError, match=r"reset_after=True form\) and takes no `reset_after`"):
        rnnzoo.cells.LayerNormGRUCell(UNITS, reset_after=False)
    assert "reset_after" not in rnnzoo.cells.LayerNormGRUCell(UNITS).get_config()


def test_norm_epsilon_must_be_positive():
    with pytest.raises(ValueError, match=r"`norm_epsilon` to be a positive number"):
        rnnzoo.cells.LayerNormRNNCell(UNITS, norm_epsilon=0.0)


@cell_cases.requires_tensorflow
def test_leading_zero_steps_amplify_the_gradient_by_one_over_sqrt_epsilon():
    """The docstring's warning: from the zero state, zero inputs keep the state at LN's
    singular point, where its derivative is 1 / sqrt(norm_epsilon); epsilon 1 tames it."""
    import tensorflow as tf

    inputs = np.zeros((2, 15, 1), "float32")
    inputs[:, 10:, 0] = np.linspace(0.1, 1.0, 10).reshape(2, 5)

    def gradient_norm(epsilon):
        cell = rnnzoo.cells.LayerNormLSTMCell(8, norm_epsilon=epsilon, seed=0)
        layer = keras.layers.RNN(cell)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(inputs))
        return float(tf.linalg.global_norm(tape.gradient(loss, layer.trainable_variables)))

    assert not gradient_norm(1e-3) < 1e8  # ten zero steps: huge, or overflowed to inf / nan
    assert gradient_norm(1.0) < 100


@pytest.mark.parametrize("fast", [True, False], ids=["fast_loop", "keras_loop"])
@pytest.mark.parametrize("name", list(REFERENCES))
@cell_cases.requires_tensorflow
def test_norms_take_float32_statistics_under_mixed_float16(name, fast, rng):
    """Inputs in the hundreds (raw pixel values, say) put squares past float16's 65,504 in a
    variance taken in float16 (infinite, so every output collapses to the shift). The norms take
    their statistics in float32, as Keras's `LayerNormalization`: outputs and gradients stay
    those of the float32 layer to float16's precision."""
    import tensorflow as tf

    inputs = tf.constant(300 * random_inputs(rng, time=TIME))
    read_out = tf.constant(rng.normal(size=(*inputs.shape[:2], UNITS)).astype("float32"))
    layers = []
    for policy in ("float32", "mixed_float16"):
        keras.config.set_dtype_policy(policy)  # conftest restores the policy
        layers.append(rnnzoo.layers.get(name)(UNITS, return_sequences=True, fast=fast))
        layers[-1](inputs)
    numerics.copy_weights(*layers)
    results = []
    for layer in layers:
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = tf.cast(layer(inputs), "float32")
            loss = tf.reduce_sum(outputs * read_out)
        gradients = tape.gradient(loss, [inputs, *layer.trainable_weights])
        results.append([outputs.numpy()] + [np.asarray(g, "float32") for g in gradients])
    assert keras.backend.standardize_dtype(layer(inputs).dtype) == "float16"
    for full, half in zip(*results):
        scale = np.max(np.abs(full))
        np.testing.assert_allclose(half, full, atol=2e-2 * scale, err_msg=name)
