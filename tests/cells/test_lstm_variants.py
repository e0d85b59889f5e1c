"""Greff et al.'s LSTM variants against a float64 numpy transcription of the paper's equations.

The reference below is written from Greff, Srivastava, Koutnik, Steunebrink &
Schmidhuber, "LSTM: A Search Space Odyssey" (arXiv 1503.04069), Section 2
(the "vanilla" LSTM, with peepholes) and Section 3 (the eight variants), in
the paper's own notation: block input z, gates i, f, o, cell c, output y,
input weights W_*, recurrent weights R_*, biases b_*, peepholes p_*, and for
FGR the nine matrices R_{ab} from gate a's last activation to gate b. It
knows nothing of rnnzoo's fused layout; `paper_weights` maps a cell's weights
into the paper's names. Two departures, both from the issue that asked for
these cells, are stated where they apply: CIFG learns the forget gate
(i = 1 - f; the paper writes f = 1 - i), and NP is rnnzoo's `LSTMCell`.
"""

import keras
import numerics
import numpy as np
import pytest
from cell_cases import FEATURES, UNITS, random_inputs

import rnnzoo

VARIANTS = ["peephole", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr"]
TIME = 6


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def greff_lstm(x, weights, variant):
    """The paper's forward pass over x (batch, time, inputs): (y at every step, last y, c)."""
    w = weights
    batch, time, _ = x.shape
    units = w["R_z"].shape[0]
    y = np.zeros((batch, units))
    c = np.zeros((batch, units))
    previous = {gate: np.zeros((batch, units)) for gate in "ifo"}  # FGR: the last step's gates
    outputs = []

    def pre_activation(gate, x_t, cell):
        value = x_t @ w[f"W_{gate}"] + y @ w[f"R_{gate}"] + w[f"b_{gate}"]
        if variant != "np":
            value = value + w[f"p_{gate}"] * cell
        if variant == "fgr":
            value = value + sum(previous[a] @ w[f"R_{a}{gate}"] for a in "ifo")
        return value

    for t in range(time):
        x_t = x[:, t]
        z_bar = x_t @ w["W_z"] + y @ w["R_z"] + w["b_z"]
        z = z_bar if variant == "niaf" else np.tanh(z_bar)
        f = 1.0 if variant == "nfg" else sigmoid(pre_activation("f", x_t, c))
        if variant == "nig":
            i = 1.0
        elif variant == "cifg":
            i = 1.0 - f
        else:
            i = sigmoid(pre_activation("i", x_t, c))
        c = z * i + c * f
        o = 1.0 if variant == "nog" else sigmoid(pre_activation("o", x_t, c))
        y = (c if variant == "noaf" else np.tanh(c)) * o
        previous = {"i": i, "f": f, "o": o}
        outputs.append(y)
    return np.stack(outputs, axis=1), y, c


def paper_weights(cell):
    """The cell's weights under the paper's names (W_z, R_i, b_f, p_o, R_io, ...)."""
    units = cell.units
    blocks = {"g": "z", "i": "i", "f": "f", "o": "o"}  # rnnzoo's candidate g is the paper's z
    kernel = cell.kernel.numpy().astype("float64")
    recurrent = cell.recurrent_kernel.numpy().astype("float64")
    bias = cell.bias.numpy().astype("float64")
    weights = {}
    for index, gate in enumerate(cell.gate_names):
        columns = slice(index * units, (index + 1) * units)
        name = blocks[gate]
        weights[f"W_{name}"] = kernel[:, columns]
        weights[f"R_{name}"] = recurrent[:, columns]
        weights[f"b_{name}"] = bias[columns]
    for gate in cell.peephole_gates:
        weights[f"p_{gate}"] = getattr(cell, f"peephole_{gate}").numpy().astype("float64")
    if hasattr(cell, "gate_recurrent_kernel"):
        matrix = cell.gate_recurrent_kernel.numpy().astype("float64")
        for row, a in enumerate("ifo"):
            for column, b in enumerate("ifo"):
                weights[f"R_{a}{b}"] = matrix[
                    row * units : (row + 1) * units, column * units : (column + 1) * units
                ]
    return weights


def run_variant(name, rng, **kwargs):
    """(rnnzoo's outputs, the paper's) on random weights, in float64."""
    cell = rnnzoo.cells.get(name)(UNITS, dtype="float64", **kwargs)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    inputs = random_inputs(rng, time=TIME, dtype="float64")
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    ours = numerics.as_list(layer(inputs))[:3]  # sequence, h, c
    return ours, greff_lstm(inputs, paper_weights(cell), name)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_equals_the_papers_equations(name, rng):
    ours, paper = run_variant(name, rng)
    numerics.assert_outputs_close(ours, list(paper), atol=1e-12, what=name)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_has_the_papers_parameter_count(name):
    """Greff et al.'s counts: a dropped gate drops its weights and its peephole."""
    inputs, units = FEATURES, UNITS
    block = inputs * units + units * units + units  # W, R and b of one gate (or of z)
    expected = {
        "peephole": 4 * block + 3 * units,
        "nig": 3 * block + 2 * units,
        "nfg": 3 * block + 2 * units,
        "nog": 3 * block + 2 * units,
        "niaf": 4 * block + 3 * units,
        "noaf": 4 * block + 3 * units,
        "np": 4 * block,
        "cifg": 3 * block + 2 * units,
        "fgr": 4 * block + 3 * units + 9 * units * units,
    }[name]
    layer = rnnzoo.layers.get(name)(units)
    layer(np.zeros((1, 2, inputs), "float32"))
    assert layer.count_params() == expected


def test_np_is_the_lstm():
    assert rnnzoo.cells.get("np") is rnnzoo.cells.LSTMCell
    assert rnnzoo.layers.get("np") is rnnzoo.layers.LSTM


def _zeroed(layer, *names):
    for weight in layer.weights:
        if weight.path.split("/")[-1].startswith(names):
            weight.assign(np.zeros(weight.shape))


def _reduction(rng, name, reduced_to, zero, dtype="float64"):
    """`name` with the weights `zero` set to 0 must equal `reduced_to` with the same others."""
    inputs = random_inputs(rng, time=TIME, dtype=dtype)
    full = rnnzoo.layers.get(name)(UNITS, return_sequences=True, dtype=dtype)
    reduced = rnnzoo.layers.get(reduced_to)(UNITS, return_sequences=True, dtype=dtype)
    full(inputs)
    reduced(inputs)
    numerics.randomize_weights(full, rng)
    _zeroed(full, *zero)
    by_name = {w.path.split("/")[-1]: w for w in full.weights}
    reduced.set_weights([by_name[w.path.split("/")[-1]].numpy() for w in reduced.weights])
    numerics.assert_outputs_close(full(inputs), reduced(inputs), atol=1e-12, what=name)


def test_full_gate_recurrence_with_zero_gate_weights_is_the_peephole_lstm(rng):
    _reduction(rng, "fgr", "peephole", zero=["gate_recurrent_kernel"])


def test_cifg_with_zero_peepholes_is_the_coupled_lstm(rng):
    _reduction(rng, "cifg", "coupled", zero=["peephole"])


def test_peephole_lstm_with_zero_peepholes_is_the_lstm(rng):
    _reduction(rng, "peephole", "lstm", zero=["peephole"])


@pytest.mark.parametrize("name", ["nig", "nfg", "nog", "cifg"])
def test_a_dropped_gate_has_no_bias_block_and_no_peephole(name):
    cell = rnnzoo.cells.get(name)(UNITS)
    keras.layers.RNN(cell)(np.zeros((1, 2, FEATURES), "float32"))
    assert cell.bias.shape == (3 * UNITS,)
    names = [w.path.split("/")[-1] for w in cell.weights]
    peepholes = sorted(name for name in names if name.startswith("peephole"))
    assert peepholes == sorted(f"peephole_{gate}" for gate in cell.peephole_gates)
    dropped = {"nig": "i", "nfg": "f", "nog": "o", "cifg": "i"}[name]
    assert dropped not in cell.gate_names and f"peephole_{dropped}" not in peepholes


def test_variants_with_a_forget_gate_start_its_bias_at_one():
    for name in ["peephole", "nig", "nog", "niaf", "noaf", "cifg", "fgr"]:
        cell = rnnzoo.cells.get(name)(UNITS)
        keras.layers.RNN(cell)(np.zeros((1, 2, FEATURES), "float32"))
        index = cell.gate_names.index("f")
        bias = cell.bias.numpy().reshape(len(cell.gate_names), UNITS)
        np.testing.assert_array_equal(bias[index], 1.0, err_msg=name)
        assert not np.delete(bias, index, axis=0).any(), name
    nfg = rnnzoo.cells.get("nfg")(UNITS)
    keras.layers.RNN(nfg)(np.zeros((1, 2, FEATURES), "float32"))
    assert not nfg.bias.numpy().any()  # no forget gate: nothing starts at one
