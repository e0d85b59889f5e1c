"""minGRU and minLSTM against float64 numpy transcriptions of Feng et al. (2024).

Two references, both written from the paper and knowing nothing of rnnzoo's
code: its sequential equations (Section 3, with Appendix B.3's g for the
candidate) and its log-space parallel form (Appendix B.3: log-coefficients
from softplus, Heinsen's scan with a cumulative sum and logcumsumexp, h_0 > 0
entering as log h_0). The cell (stepped by keras.layers.RNN) must equal the
first; the first equals the second, which checks the transcription.
"""

import cell_cases
import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo

TIME = 7


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)


def g(x):
    return np.where(x >= 0, x + 0.5, sigmoid(x))


def log_g(x):
    return np.where(x >= 0, np.log(np.maximum(x, 0.0) + 0.5), -softplus(-x))


def linears(x, kernel, bias, count):
    """The paper's Linear_dh(x_t) for each gate, from the fused (in, count units) kernel."""
    return np.split(x @ kernel + bias, count, axis=-1)


def sequential(name, x, kernel, bias, h0):
    """Section 3's sequential minGRU / minLSTM, step by step."""
    h, outputs = h0, []
    for t in range(x.shape[1]):
        if name == "mingru":
            k_z, k_h = linears(x[:, t], kernel, bias, 2)
            z = sigmoid(k_z)
            h = (1 - z) * h + z * g(k_h)
        else:
            k_f, k_i, k_h = linears(x[:, t], kernel, bias, 3)
            f, i = sigmoid(k_f), sigmoid(k_i)
            f_prime, i_prime = f / (f + i), i / (f + i)
            h = f_prime * h + i_prime * g(k_h)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def log_space_parallel(name, x, kernel, bias, h0):
    """Appendix B.3's log-space version: parallel_scan_log(log_coeffs, log_values)."""
    log_tilde_h = log_g(linears(x, kernel, bias, 2 if name == "mingru" else 3)[-1])
    if name == "mingru":
        k = linears(x, kernel, bias, 2)[0]
        log_coeffs, log_values = -softplus(k), -softplus(-k) + log_tilde_h
    else:
        k_f, k_i, _ = linears(x, kernel, bias, 3)
        diff = softplus(-k_f) - softplus(-k_i)
        log_coeffs, log_values = -softplus(diff), -softplus(-diff) + log_tilde_h
    log_values = np.concatenate([np.log(h0)[:, None], log_values], axis=1)
    a_star = np.pad(np.cumsum(log_coeffs, axis=1), ((0, 0), (1, 0), (0, 0)))
    log_h0_plus_b_star = np.logaddexp.accumulate(log_values - a_star, axis=1)
    return np.exp(a_star + log_h0_plus_b_star)[:, 1:]


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_cell_equals_the_papers_sequential_and_log_space_forms(name, use_bias, rng):
    cell = rnnzoo.cells.get(name)(UNITS, use_bias=use_bias, dtype="float64")
    layer = keras.layers.RNN(cell, return_sequences=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng, scale=1.0)
    kernel = cell.kernel.numpy()
    bias = cell.bias.numpy() if use_bias else 0.0
    h0 = rng.uniform(0.1, 1.0, size=(inputs.shape[0], UNITS))  # log space needs h_0 > 0
    paper = sequential(name, inputs, kernel, bias, h0)
    numerics.assert_outputs_close(
        log_space_parallel(name, inputs, kernel, bias, h0), paper, atol=1e-12, what="paper"
    )
    numerics.assert_outputs_close(layer(inputs, initial_state=[h0]), paper, atol=1e-12)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_saturated_gates_stay_finite(name):
    """Where both of minLSTM's gates underflow (f_t + i_t = 0 in float32), the log-space
    normalisation still gives f'_t + i'_t = 1; minGRU's 1 - z_t keeps its digits near z = 1."""
    cell = rnnzoo.cells.get(name)(2)
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer(np.zeros((1, 3, 1), "float32"))
    count = cell.num_gates
    cell.kernel.assign(np.full((1, count * 2), -200.0, "float32"))
    outputs = keras.ops.convert_to_numpy(layer(np.ones((1, 3, 1), "float32")))
    assert np.isfinite(outputs).all()
    _, _, gates = cell.step(np.ones((1, 1), "float32"), [np.zeros((1, 2), "float32")])
    if name == "minlstm":
        total = keras.ops.convert_to_numpy(gates["f"] + gates["i"])
        np.testing.assert_allclose(total, 1.0, rtol=1e-6)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_no_recurrent_weights_and_their_arguments_are_refused(name):
    cell_class = rnnzoo.cells.get(name)
    layer = keras.layers.RNN(cell_class(UNITS))
    layer(np.zeros((1, 2, FEATURES), "float32"))
    assert [w.path.split("/")[-1] for w in layer.weights] == ["kernel", "bias"]
    assert layer.count_params() == cell_class.num_gates * UNITS * (FEATURES + 1)
    for argument, value in [
        ("recurrent_dropout", 0.5),
        ("recurrent_initializer", "orthogonal"),
        ("recurrent_regularizer", "l2"),
        ("recurrent_constraint", "non_neg"),
        ("activation", "relu"),
    ]:
        with pytest.raises(ValueError, match=rf"no recurrent weights.*received {argument}"):
            cell_class(UNITS, **{argument: value})
        with pytest.raises(ValueError, match=rf"received {argument}"):
            rnnzoo.layers.get(name)(UNITS, **{argument: value})
    assert cell_class(UNITS, recurrent_dropout=0.0).recurrent_dropout == 0.0
    config = cell_class(UNITS).get_config()
    assert not set(cell_class.fixed_arguments) & set(config)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
@cell_cases.requires_tensorflow
def test_coefficients_gradient_is_the_derivative_of_coefficients(name, rng):
    """The hand-written derivative the layer's scan uses equals autodiff of `coefficients`."""
    import tensorflow as tf

    cell = rnnzoo.cells.get(name)(UNITS, dtype="float64")
    k = tf.constant(3.0 * rng.normal(size=(2, TIME, cell.num_gates * UNITS)))
    d_a, d_b = (tf.constant(rng.normal(size=(2, TIME, UNITS))) for _ in range(2))
    with tf.GradientTape() as tape:
        tape.watch(k)
        a, b, gates = cell.coefficients(k)
        loss = tf.reduce_sum(a * d_a + b * d_b)
    expected = tape.gradient(loss, k)
    actual = cell.coefficients_gradient(k, a, gates, d_a, d_b)
    numerics.assert_outputs_close(actual, expected, atol=1e-12)
