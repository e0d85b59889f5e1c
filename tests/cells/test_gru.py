"""The GRU cell equals Keras's GRUCell in both forms, and matches its equations in numpy."""

import keras
import numerics
import numpy as np
import pytest
from cell_cases import UNITS, random_inputs

import rnnzoo


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_gru_cell_equals_keras_gru_cell(reset_after, use_bias, rng):
    kwargs = {"reset_after": reset_after, "use_bias": use_bias}
    zoo = keras.layers.RNN(
        rnnzoo.cells.GRUCell(UNITS, **kwargs), return_sequences=True, return_state=True
    )
    reference = keras.layers.RNN(
        keras.layers.GRUCell(UNITS, **kwargs), return_sequences=True, return_state=True
    )
    inputs = random_inputs(rng)
    zoo(inputs)
    reference(inputs)
    assert [w.shape for w in zoo.weights] == [w.shape for w in reference.weights]
    numerics.randomize_weights(zoo, rng)
    numerics.copy_weights(zoo, reference)
    numerics.assert_outputs_close(zoo(inputs), reference(inputs), atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_gru_cell_matches_its_equations_in_numpy(reset_after, rng):
    layer = keras.layers.RNN(
        rnnzoo.cells.GRUCell(UNITS, reset_after=reset_after), return_sequences=True
    )
    inputs = random_inputs(rng)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    kernel, recurrent_kernel, bias = layer.get_weights()
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    u_z, u_r, u_h = np.split(recurrent_kernel, 3, axis=-1)
    b_z, b_r, b_h = np.split(recurrent_bias, 3)
    h = np.zeros((inputs.shape[0], UNITS))
    expected = []
    for t in range(inputs.shape[1]):
        x_z, x_r, x_h = np.split(inputs[:, t] @ kernel + input_bias, 3, axis=-1)
        z = sigmoid(x_z + h @ u_z + b_z)
        r = sigmoid(x_r + h @ u_r + b_r)
        if reset_after:
            n = np.tanh(x_h + r * (h @ u_h + b_h))
        else:
            n = np.tanh(x_h + (r * h) @ u_h)
        h = z * h + (1 - z) * n
        expected.append(h)
    numerics.assert_outputs_close(layer(inputs), np.stack(expected, axis=1), atol=1e-5)
