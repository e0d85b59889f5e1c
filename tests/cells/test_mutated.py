"""MUT1, MUT2, MUT3 against a float64 numpy transcription of Jozefowicz et al. (2015), Section 3.

The reference uses the paper's notation (h_t in, h_{t+1} out, W_xz, W_hr, ...,
column vectors written as rows here) and knows nothing of rnnzoo's fused
layout: `paper_weights` maps the cell's weights to the paper's names. Where
the input is `units` wide the paper's equations hold as printed (x_t added
as it is); elsewhere x_t goes through the cell's `input_projection` first.
"""

import keras
import numerics
import numpy as np
import pytest
from cell_cases import random_inputs

import rnnzoo

TIME = 6


def sigm(x):
    return 1.0 / (1.0 + np.exp(-x))


def paper_step(variant, x_t, h_t, w):
    """One step of the paper's MUT1/2/3 -> h_{t+1}; w["x~"] maps x_t to the state's width."""
    x_fit = w["x~"](x_t)
    if variant == "mut1":
        z = sigm(x_t @ w["W_xz"] + w["b_z"])
        r = sigm(x_t @ w["W_xr"] + h_t @ w["W_hr"] + w["b_r"])
        candidate = np.tanh((r * h_t) @ w["W_hh"] + np.tanh(x_fit) + w["b_h"])
    elif variant == "mut2":
        z = sigm(x_t @ w["W_xz"] + h_t @ w["W_hz"] + w["b_z"])
        r = sigm(x_fit + h_t @ w["W_hr"] + w["b_r"])
        candidate = np.tanh((r * h_t) @ w["W_hh"] + x_t @ w["W_xh"] + w["b_h"])
    else:
        z = sigm(x_t @ w["W_xz"] + np.tanh(h_t) @ w["W_hz"] + w["b_z"])
        r = sigm(x_t @ w["W_xr"] + h_t @ w["W_hr"] + w["b_r"])
        candidate = np.tanh((r * h_t) @ w["W_hh"] + x_t @ w["W_xh"] + w["b_h"])
    return candidate * z + h_t * (1 - z)


def paper_weights(cell):
    units = cell.units
    kernel = cell.kernel.numpy().astype("float64")
    recurrent = cell.recurrent_kernel.numpy().astype("float64")
    bias = cell.bias.numpy().astype("float64") if cell.use_bias else np.zeros(3 * units)
    weights = {}
    for index, gate in enumerate(cell.input_blocks):
        weights[f"W_x{gate}"] = kernel[:, index * units : (index + 1) * units]
    for index, gate in enumerate(cell.recurrent_blocks):
        weights[f"W_h{gate}"] = recurrent[:, index * units : (index + 1) * units]
    weights["b_z"], weights["b_r"], weights["b_h"] = np.split(bias, 3)
    projection = cell.input_projection
    if projection is None:
        weights["x~"] = lambda x: x
    else:
        matrix = projection.numpy().astype("float64")
        weights["x~"] = lambda x: x @ matrix
    return weights


def paper_run(variant, inputs, weights, units):
    h = np.zeros((inputs.shape[0], units))
    outputs = []
    for t in range(inputs.shape[1]):
        h = paper_step(variant, inputs[:, t], h, weights)
        outputs.append(h)
    return [np.stack(outputs, axis=1), h]


@pytest.mark.parametrize("features", [4, 3], ids=["input_is_units_wide", "narrower_input"])
@pytest.mark.parametrize("variant", ["mut1", "mut2", "mut3"])
def test_cell_equals_the_papers_equations(variant, features, rng):
    units = 4
    cell = rnnzoo.cells.get(variant)(units, dtype="float64")
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, features=features, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    expected = paper_run(variant, inputs, paper_weights(cell), units)
    numerics.assert_outputs_close(layer(inputs), expected, atol=1e-12, what=variant)


@pytest.mark.parametrize("features", [4, 3], ids=["input_is_units_wide", "narrower_input"])
@pytest.mark.parametrize("variant", ["mut1", "mut2", "mut3"])
def test_parameter_count_and_input_projection(variant, features):
    """The paper's weights, and the (input, units) projection only where x_t is added itself
    to a vector of `units` and is not that wide."""
    units = 4
    layer = rnnzoo.layers.get(variant)(units)
    layer(np.zeros((1, 2, features), "float32"))
    matrices = {"mut1": (2, 2), "mut2": (2, 3), "mut3": (3, 3)}[variant]
    projected = variant != "mut3" and features != units
    expected = matrices[0] * features * units + matrices[1] * units * units + 3 * units
    expected += features * units if projected else 0
    assert layer.count_params() == expected
    assert (layer.cell.input_projection is not None) == projected
