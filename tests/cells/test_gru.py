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


def test_reset_before_gru_drops_h_where_it_enters_each_matmul(rng):
    """With recurrent dropout in training, Cho et al.'s form reads the dropped h_{t-1} in
    h_{t-1} [U_z, U_r] and in (r_t * h_{t-1}) U_h, and carries it whole into h_t (numpy, the
    sequence's one mask)."""
    cell = rnnzoo.cells.GRUCell(UNITS, reset_after=False, recurrent_dropout=0.5, seed=3)
    inputs = random_inputs(rng)
    cell.build(inputs.shape[:1] + inputs.shape[2:])
    numerics.randomize_weights(cell, rng)
    kernel, recurrent_kernel, bias = cell.get_weights()
    u_z, u_r, u_h = np.split(recurrent_kernel, 3, axis=-1)
    h = np.zeros((inputs.shape[0], UNITS), np.float32)
    state = [keras.ops.convert_to_tensor(h)]
    outputs = []
    for t in range(inputs.shape[1]):
        output, state = cell(inputs[:, t], state, training=True)
        outputs.append(output)
    mask = keras.ops.convert_to_numpy(cell.get_recurrent_dropout_mask(state[0]))
    assert 0 < np.mean(mask == 0) < 1  # some units dropped, some kept (scaled by 2)
    expected = []
    for t in range(inputs.shape[1]):
        x_z, x_r, x_h = np.split(inputs[:, t] @ kernel + bias, 3, axis=-1)
        dropped = h * mask
        z = sigmoid(x_z + dropped @ u_z)
        r = sigmoid(x_r + dropped @ u_r)
        n = np.tanh(x_h + (r * dropped) @ u_h)
        h = z * h + (1 - z) * n
        expected.append(h)
    numerics.assert_outputs_close(np.stack(outputs, 1), np.stack(expected, 1), atol=1e-5)
