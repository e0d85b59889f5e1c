"""The LSTM equals Keras's LSTMCell; peephole and coupled LSTMs match their equations."""

import inspect

import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_in_numpy(inputs, kernel, recurrent_kernel, bias, peepholes=None, coupled=False):
    """The docstring equations of LSTMCell / PeepholeLSTMCell / CoupledLSTMCell, step by step.

    Returns (h for every step, last h, last c).
    """
    batch, time, _ = inputs.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(time):
        z = inputs[:, t] @ kernel + h @ recurrent_kernel + bias
        if coupled:
            z_f, z_g, z_o = np.split(z, 3, axis=-1)
            f = sigmoid(z_f)
            c = f * c + (1 - f) * np.tanh(z_g)
            o = sigmoid(z_o)
        else:
            z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
            p_i, p_f, p_o = peepholes if peepholes is not None else (0.0, 0.0, 0.0)
            i = sigmoid(z_i + p_i * c)
            f = sigmoid(z_f + p_f * c)
            c = f * c + i * np.tanh(z_g)
            o = sigmoid(z_o + p_o * c)  # the new cell
        h = o * np.tanh(c)
        outputs.append(h)
    return [np.stack(outputs, axis=1), h, c]


def built_layer(cell, inputs, rng):
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    return layer


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"use_bias": False}, {"unit_forget_bias": False}],
    ids=["default", "no_bias", "no_unit_forget_bias"],
)
def test_lstm_cell_equals_keras_lstm_cell(kwargs, rng):
    inputs = random_inputs(rng)
    zoo = keras.layers.RNN(
        rnnzoo.cells.LSTMCell(UNITS, **kwargs), return_sequences=True, return_state=True
    )
    reference = keras.layers.RNN(
        keras.layers.LSTMCell(UNITS, **kwargs), return_sequences=True, return_state=True
    )
    zoo(inputs)
    reference(inputs)
    # Same initial bias (unit forget bias or not), then the same outputs with random weights.
    if kwargs.get("use_bias", True):
        np.testing.assert_array_equal(zoo.cell.bias.numpy(), reference.cell.bias.numpy())
    numerics.randomize_weights(zoo, rng)
    numerics.copy_weights(zoo, reference)
    numerics.assert_outputs_close(zoo(inputs), reference(inputs), atol=1e-5)


@pytest.mark.parametrize(
    "cell_class, forget_block",
    [
        (rnnzoo.cells.LSTMCell, 1),
        (rnnzoo.cells.PeepholeLSTMCell, 1),
        (rnnzoo.cells.CoupledLSTMCell, 0),
    ],
    ids=["lstm", "peephole", "coupled"],
)
def test_forget_gate_bias_starts_at_one(cell_class, forget_block):
    cell = cell_class(UNITS)
    cell.build((None, FEATURES))
    blocks = cell.bias.numpy().reshape(cell.num_gates, UNITS)
    expected = np.zeros_like(blocks)
    expected[forget_block] = 1.0
    np.testing.assert_array_equal(blocks, expected)
    assert cell.gate_names[forget_block] == "f"


def test_lstm_cell_matches_its_equations_in_numpy(rng):
    inputs = random_inputs(rng)
    layer = built_layer(rnnzoo.cells.LSTMCell(UNITS), inputs, rng)
    numerics.assert_outputs_close(layer(inputs), lstm_in_numpy(inputs, *layer.get_weights()))


def test_peephole_cell_matches_its_equations_in_numpy(rng):
    inputs = random_inputs(rng)
    layer = built_layer(rnnzoo.cells.PeepholeLSTMCell(UNITS), inputs, rng)
    kernel, recurrent_kernel, bias, p_i, p_f, p_o = layer.get_weights()
    expected = lstm_in_numpy(inputs, kernel, recurrent_kernel, bias, peepholes=(p_i, p_f, p_o))
    numerics.assert_outputs_close(layer(inputs), expected)
    # The peepholes matter: without them the numbers differ.
    without = lstm_in_numpy(inputs, kernel, recurrent_kernel, bias)
    assert numerics.max_abs_diff(layer(inputs), without) > 1e-3


def test_peephole_cell_pinned_first_step_with_constant_weights():
    """One step from zero state, worked by hand: every pre-activation is the same number."""
    cell = rnnzoo.cells.PeepholeLSTMCell(
        2,
        kernel_initializer=keras.initializers.Constant(0.1),
        recurrent_initializer=keras.initializers.Constant(0.2),
        bias_initializer="zeros",
        unit_forget_bias=False,
        peephole_initializer=keras.initializers.Constant(0.5),
    )
    x = np.full((1, 3), 1.0, dtype="float32")  # x W = 3 * 0.1 = 0.3 in every gate
    h, (h_state, c_state) = cell(x, [np.zeros((1, 2), "float32")] * 2)
    i = f = sigmoid(0.3)  # c_{t-1} = 0, so the i and f peepholes add nothing
    c = i * np.tanh(0.3)
    o = sigmoid(0.3 + 0.5 * c)  # the output peephole sees the new cell
    np.testing.assert_allclose(keras.ops.convert_to_numpy(c_state), np.full((1, 2), c), rtol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(h), np.full((1, 2), o * np.tanh(c)), rtol=1e-6
    )
    assert f == i


def test_peephole_cell_with_zero_peepholes_equals_lstm_cell(rng):
    inputs = random_inputs(rng)
    peephole = built_layer(rnnzoo.cells.PeepholeLSTMCell(UNITS), inputs, rng)
    lstm = built_layer(rnnzoo.cells.LSTMCell(UNITS), inputs, rng)
    kernel, recurrent_kernel, bias = lstm.get_weights()
    zeros = np.zeros(UNITS, dtype="float32")
    peephole.set_weights([kernel, recurrent_kernel, bias, zeros, zeros, zeros])
    assert numerics.max_abs_diff(peephole(inputs), lstm(inputs)) <= 1e-6


def test_coupled_cell_matches_its_equations_in_numpy(rng):
    inputs = random_inputs(rng)
    layer = built_layer(rnnzoo.cells.CoupledLSTMCell(UNITS), inputs, rng)
    assert layer.cell.kernel.shape == (FEATURES, 3 * UNITS)
    numerics.assert_outputs_close(
        layer(inputs), lstm_in_numpy(inputs, *layer.get_weights(), coupled=True)
    )


def test_coupled_cell_equals_lstm_whose_input_gate_is_tied_to_one_minus_forget(rng):
    """sigmoid(-z) = 1 - sigmoid(z): an LSTM with i-weights = -(f-weights) is the coupled cell."""
    inputs = random_inputs(rng)
    coupled = built_layer(rnnzoo.cells.CoupledLSTMCell(UNITS), inputs, rng)
    lstm = built_layer(rnnzoo.cells.LSTMCell(UNITS), inputs, rng)

    def tied(weight):
        f, g, o = np.split(weight, 3, axis=-1)
        return np.concatenate([-f, f, g, o], axis=-1)

    lstm.set_weights([tied(w) for w in coupled.get_weights()])
    numerics.assert_outputs_close(coupled(inputs), lstm(inputs), atol=1e-6)


# --------------------------------------------------------------------- chrono initialisation
CHRONO_CELLS = ["lstm", "peephole", "coupled", "nig", "cifg", "fgr", "lstmp", "layernorm_lstm"]


def chrono_bias(name, timescale, units, seed):
    """The built cell's bias, one row per gate, and the cell (its kernels zeros: cheap)."""
    zeros = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
    if name == "fgr":
        zeros["gate_recurrent_initializer"] = "zeros"
    cell = rnnzoo.cells.get(name)(units, chrono_timescale=timescale, seed=seed, **zeros)
    cell.build((None, FEATURES))
    bias = keras.ops.convert_to_numpy(cell.bias)
    return bias.reshape(len(cell.gate_names), units), cell


@pytest.mark.parametrize("name", CHRONO_CELLS)
def test_chrono_biases_follow_tallec_and_ollivier(name):
    """b_f = log(u) with u ~ Uniform(1, T - 1); b_i = -b_f where there is an input gate; the
    other gates keep bias_initializer (zeros)."""
    timescale, units = 785, 2000
    bias, cell = chrono_bias(name, timescale, units, seed=7)
    gates = dict(zip(cell.gate_names, bias))
    u = np.exp(gates.pop("f"))
    assert u.min() >= 1 - 1e-4 and u.max() <= timescale - 1 + 1e-2
    # u's deciles are Uniform(1, T - 1)'s (2,000 draws: each within about 1.1% of the range).
    deciles = np.quantile(u, np.linspace(0.1, 0.9, 9))
    expected = 1 + np.linspace(0.1, 0.9, 9) * (timescale - 2)
    np.testing.assert_allclose(deciles, expected, atol=0.04 * (timescale - 2))
    if "i" in cell.gate_names:
        np.testing.assert_allclose(gates.pop("i"), -np.log(u), rtol=1e-5)
    for rest in gates.values():
        np.testing.assert_array_equal(rest, 0.0)


def test_chrono_draws_from_the_seed():
    first = chrono_bias("lstm", 100, 8, seed=1)[0]
    np.testing.assert_array_equal(first, chrono_bias("lstm", 100, 8, seed=1)[0])
    assert not np.array_equal(first, chrono_bias("lstm", 100, 8, seed=2)[0])


def test_chrono_passes_through_the_layer():
    layer = rnnzoo.layers.LSTM(
        8, chrono_timescale=30, seed=3, kernel_initializer="zeros", recurrent_initializer="zeros"
    )
    layer(np.zeros((1, 2, FEATURES), "float32"))
    expected = chrono_bias("lstm", 30, 8, seed=3)[0]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.cell.bias).reshape(4, 8), expected
    )
    assert "chrono_timescale" in inspect.signature(rnnzoo.layers.LSTM).parameters


@pytest.mark.parametrize(
    "name, timescale, message",
    [
        ("nfg", 100, "has no forget gate"),
        ("lstm", 1, "number of steps >= 2"),
        ("lstm", True, "number of steps >= 2"),
        ("lstm", "784", "number of steps >= 2"),
    ],
)
def test_chrono_refuses_what_it_cannot_set(name, timescale, message):
    with pytest.raises(ValueError, match=message):
        rnnzoo.cells.get(name)(4, chrono_timescale=timescale)
