"""The vanilla RNN cell equals Keras's SimpleRNNCell; the IRNN starts at the identity."""

import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo


def run_both(zoo_cell, keras_cell, inputs, rng, **rnn_kwargs):
    """Outputs of RNN(zoo_cell) and RNN(keras_cell) with the zoo's random weights copied."""
    zoo = keras.layers.RNN(zoo_cell, return_sequences=True, return_state=True, **rnn_kwargs)
    reference = keras.layers.RNN(keras_cell, return_sequences=True, return_state=True, **rnn_kwargs)
    zoo(inputs)
    reference(inputs)
    numerics.randomize_weights(zoo, rng)
    numerics.copy_weights(zoo, reference)
    return zoo(inputs), reference(inputs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"activation": "relu"}, {"use_bias": False}],
    ids=["tanh", "relu", "no_bias"],
)
def test_vanilla_cell_equals_keras_simple_rnn_cell(kwargs, rng):
    zoo, reference = run_both(
        rnnzoo.cells.VanillaRNNCell(UNITS, **kwargs),
        keras.layers.SimpleRNNCell(UNITS, **kwargs),
        random_inputs(rng),
        rng,
    )
    numerics.assert_outputs_close(zoo, reference, atol=1e-5)


def test_vanilla_cell_matches_its_equation_in_numpy(rng):
    inputs = random_inputs(rng)
    layer = keras.layers.RNN(rnnzoo.cells.VanillaRNNCell(UNITS), return_sequences=True)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    kernel, recurrent_kernel, bias = layer.get_weights()
    h = np.zeros((inputs.shape[0], UNITS))
    expected = []
    for t in range(inputs.shape[1]):
        h = np.tanh(inputs[:, t] @ kernel + h @ recurrent_kernel + bias)
        expected.append(h)
    numerics.assert_outputs_close(layer(inputs), np.stack(expected, axis=1), atol=1e-5)


@pytest.mark.parametrize("identity_scale", [1.0, 0.01])
def test_irnn_starts_at_scaled_identity_with_zero_bias(identity_scale):
    cell = rnnzoo.cells.IRNNCell(UNITS, identity_scale=identity_scale, seed=0)
    cell.build((None, FEATURES))
    np.testing.assert_array_equal(
        cell.recurrent_kernel.numpy(), identity_scale * np.eye(UNITS, dtype="float32")
    )
    np.testing.assert_array_equal(cell.bias.numpy(), np.zeros(UNITS, dtype="float32"))
    kernel = cell.kernel.numpy()
    # The paper's N(0, 0.001^2) input weights: tiny, and not all zero.
    assert 0.0 < np.abs(kernel).max() < 0.01
    assert cell.activation is keras.activations.relu


def test_irnn_carries_a_non_negative_state_unchanged_at_initialization():
    """With identity U and zero inputs, h_t = relu(h_{t-1}) = h_{t-1} for h >= 0."""
    layer = keras.layers.RNN(rnnzoo.cells.IRNNCell(UNITS), return_sequences=True)
    state = np.abs(np.random.default_rng(0).normal(size=(2, UNITS))).astype("float32")
    outputs = layer(np.zeros((2, 6, FEATURES), dtype="float32"), initial_state=[state])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs), np.repeat(state[:, None], 6, 1))


def test_irnn_equals_vanilla_relu_cell_with_the_same_weights(rng):
    irnn = keras.layers.RNN(rnnzoo.cells.IRNNCell(UNITS), return_sequences=True, return_state=True)
    vanilla = keras.layers.RNN(
        rnnzoo.cells.VanillaRNNCell(UNITS, activation="relu"),
        return_sequences=True,
        return_state=True,
    )
    inputs = random_inputs(rng)
    irnn(inputs)
    vanilla(inputs)
    numerics.randomize_weights(irnn, rng)
    numerics.copy_weights(irnn, vanilla)
    assert numerics.max_abs_diff(irnn(inputs), vanilla(inputs)) == 0.0
    assert np.abs(numerics.as_list(irnn(inputs))[0]).max() > 0.1  # the relu is not all dead
