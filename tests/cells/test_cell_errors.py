"""Bad arguments and bad inputs raise a ValueError that says what was expected and received."""

import re

import keras
import numpy as np
import pytest
from cell_cases import CELL_IDS, UNITS, make_cell, random_inputs, state_widths

import rnnzoo


@pytest.mark.parametrize("units", [0, -3, 2.5, True, "4", None])
@pytest.mark.parametrize("case_id", CELL_IDS)
def test_units_must_be_a_positive_integer(case_id, units):
    with pytest.raises(
        ValueError, match=r"Expected `units` to be a positive integer, received units="
    ):
        make_cell(case_id, units=units)


@pytest.mark.parametrize("argument", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, None, "half", float("nan")])
def test_dropout_rates_must_lie_in_zero_one(argument, rate):
    expected = re.escape(
        f"Expected `{argument}` to be a fraction in [0, 1), received {argument}={rate!r}."
    )
    with pytest.raises(ValueError, match=expected):
        rnnzoo.cells.LSTMCell(UNITS, **{argument: rate})


def test_unknown_cell_name_lists_the_known_names():
    with pytest.raises(ValueError) as error:
        rnnzoo.cells.get("nope")
    message = str(error.value)
    assert "'nope'" in message
    for name in ["vanilla", "irnn", "lstm", "peephole", "coupled", "gru"]:
        assert name in message
    # The lecture's cells, Greff et al.'s variants ("np" is the LSTM), the GRU.
    greff = ["nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]
    # Issue 12's: layer-normalised, projected, minimal, mutated, independent, parallel-scan.
    beyond = ["layernorm_lstm", "layernorm_gru", "layernorm_rnn", "lstmp", "mgu"]
    beyond += ["mut1", "mut2", "mut3", "indrnn", "mingru", "minlstm"]
    assert rnnzoo.cells.names() == [
        *["vanilla", "irnn", "lstm", "np", "peephole", "coupled"],
        *greff,
        "gru",
        *beyond,
    ]
    assert rnnzoo.cells.get("np") is rnnzoo.cells.get("lstm")


@pytest.mark.parametrize("name", ["vanilla", "irnn", "lstm", "peephole", "coupled", "gru"])
def test_cell_names_resolve_case_insensitively(name):
    cell_class = rnnzoo.cells.get(name.upper())
    assert cell_class is rnnzoo.cells.get(name)
    assert issubclass(cell_class, rnnzoo.cells.RecurrentCell)


def test_irnn_refuses_a_recurrent_initializer():
    with pytest.raises(ValueError, match="identity_scale"):
        rnnzoo.cells.IRNNCell(UNITS, recurrent_initializer="orthogonal")


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_initial_state_of_the_wrong_width_is_refused(case_id, rng):
    inputs = random_inputs(rng)
    states = [np.zeros((inputs.shape[0], width), "float32") for width in state_widths(case_id)]
    states[0] = np.zeros((inputs.shape[0], UNITS + 1), "float32")
    with pytest.raises(
        ValueError,
        match=rf"expects state `h` of shape \(batch_size, {UNITS}\), "
        rf"received shape \(2, {UNITS + 1}\)",
    ):
        keras.layers.RNN(make_cell(case_id))(inputs, initial_state=states)


@pytest.mark.parametrize("case_id", ["lstm", "peephole", "coupled"])
def test_initial_state_with_too_few_tensors_is_refused(case_id, rng):
    inputs = random_inputs(rng)
    with pytest.raises(ValueError, match=r"expects 2 state tensor\(s\) \['h', 'c'\], received 1"):
        keras.layers.RNN(make_cell(case_id))(
            inputs, initial_state=[np.zeros((inputs.shape[0], UNITS), "float32")]
        )


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_inputs_that_are_not_batch_time_features_are_refused(case_id, rng):
    inputs = random_inputs(rng)
    with pytest.raises(
        ValueError,
        match=r"\(batch_size, time, features\).*received steps of shape .*sequences of rank",
    ):
        keras.layers.RNN(make_cell(case_id))(inputs[:, 0])
    with pytest.raises(
        ValueError,
        match=r"\(batch_size, time, features\).*received steps of shape .*sequences of rank",
    ):
        keras.layers.RNN(make_cell(case_id))(inputs[..., None])


def test_inputs_with_an_unknown_number_of_features_are_refused():
    with pytest.raises(ValueError, match=r"needs the last dimension .* received None"):
        keras.layers.RNN(rnnzoo.cells.GRUCell(UNITS))(keras.Input(shape=(None, None)))


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_numpy_integer_units_are_accepted_as_int(case_id):
    cell = make_cell(case_id, units=np.int64(UNITS))
    assert cell.units == UNITS and type(cell.units) is int
    assert type(cell.get_config()["units"]) is int
