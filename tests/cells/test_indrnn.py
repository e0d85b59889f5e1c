"""IndRNN against Li et al.'s equation in numpy, and its recurrent-weight bound."""

import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo

TIME = 6


def indrnn(x, w, u, b):
    """h_t = relu(W x_t + u (.) h_{t-1} + b) (Li et al. 2018, eq. 2), rows for column vectors."""
    h = np.zeros((x.shape[0], u.shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        h = np.maximum(x[:, t] @ w + u * h + b, 0.0)
        outputs.append(h)
    return [np.stack(outputs, axis=1), h]


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_indrnn_equals_the_papers_equation(use_bias, rng):
    cell = rnnzoo.cells.IndRNNCell(UNITS, use_bias=use_bias, dtype="float64")
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    assert tuple(cell.recurrent_kernel.shape) == (UNITS,)  # u: one weight per unit
    bias = cell.bias.numpy() if use_bias else np.zeros(UNITS)
    expected = indrnn(inputs, cell.kernel.numpy(), cell.recurrent_kernel.numpy(), bias)
    numerics.assert_outputs_close(layer(inputs), expected, atol=1e-12)


def test_recurrent_weights_start_uniform_in_zero_one_and_seeded():
    first, second = (keras.layers.RNN(rnnzoo.cells.IndRNNCell(64, seed=3)) for _ in range(2))
    for layer in (first, second):
        layer(np.zeros((1, 2, FEATURES), "float32"))
    u = first.cell.recurrent_kernel.numpy()
    assert u.min() >= 0.0 and u.max() < 1.0 and u.std() > 0.2
    np.testing.assert_array_equal(u, second.cell.recurrent_kernel.numpy())


def test_recurrent_max_abs_bounds_u_after_every_update(rng):
    """Li et al.'s |u_n| <= gamma^(1/T): an update that pushes u past the bound is clipped."""
    bound = 2.0 ** (1.0 / TIME)
    # Weights of ones and positive inputs: every unit is alive (relu > 0) and the loss pulls
    # each u_n up, whatever the random state (random kernels could leave every unit dead, no
    # gradient reaching u: seen once in CI).
    model = keras.Sequential(
        [
            keras.Input((TIME, FEATURES)),
            rnnzoo.layers.IndRNN(
                UNITS,
                recurrent_max_abs=bound,
                kernel_initializer="ones",
                recurrent_initializer="ones",
            ),
            keras.layers.Dense(1, kernel_initializer="ones"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=100.0), loss="mse")
    inputs = np.abs(random_inputs(rng, time=TIME))
    model.train_on_batch(inputs, np.full((inputs.shape[0], 1), 1e3, "float32"))
    u = model.layers[0].cell.recurrent_kernel.numpy()
    assert np.abs(u).max() <= bound + 1e-6
    np.testing.assert_allclose(np.abs(u), bound, err_msg="each update should hit the bound")


def test_recurrent_max_abs_must_be_positive():
    with pytest.raises(ValueError, match=r"positive number.*2 \*\* \(1 / T\)"):
        rnnzoo.cells.IndRNNCell(UNITS, recurrent_max_abs=0)
    config = rnnzoo.cells.IndRNNCell(UNITS, recurrent_max_abs=1.5).get_config()
    assert config["recurrent_max_abs"] == 1.5
