"""Every cell inside keras.layers.RNN: masking, dropout, stateful, go_backwards, unroll,
Bidirectional, stacked cells and mixed precision."""

import keras
import layer_checks
import numerics
import numpy as np
import pytest
from cell_cases import CELL_IDS, UNITS, make_cell, num_states, random_inputs, takes


def built_rnn(case_id, inputs, rng, **rnn_kwargs):
    layer = keras.layers.RNN(make_cell(case_id), **rnn_kwargs)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    return layer


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_masked_steps_carry_output_and_state(case_id, rng):
    inputs = random_inputs(rng)
    layer = built_rnn(case_id, inputs, rng, return_sequences=True, return_state=True)
    layer_checks.assert_masked_steps_carry_state(layer, inputs)


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_dropout_is_off_at_inference_on_in_training_one_mask_per_sequence(case_id, rng):
    def make_layer(units, **rates):
        cell = make_cell(case_id, units=units, seed=11, **rates)
        return keras.layers.RNN(cell, return_sequences=True)

    recurrent_dropout = 0.5 if takes(case_id, "recurrent_dropout") else 0.0
    layer_checks.assert_one_dropout_mask_per_sequence(
        make_layer, rng, recurrent_dropout=recurrent_dropout
    )


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_stateful_rnn_carries_state_between_calls_and_resets(case_id, rng):
    layer_checks.assert_stateful_carries_state(
        lambda **rnn_kwargs: keras.layers.RNN(make_cell(case_id), **rnn_kwargs),
        random_inputs(rng),
    )


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_go_backwards_and_unroll(case_id, rng):
    inputs = random_inputs(rng)
    forward = built_rnn(case_id, inputs, rng, return_sequences=True, return_state=True)
    backward = built_rnn(
        case_id, inputs, rng, return_sequences=True, return_state=True, go_backwards=True
    )
    unrolled = built_rnn(
        case_id, inputs, rng, return_sequences=True, return_state=True, unroll=True
    )
    numerics.copy_weights(forward, backward)
    numerics.copy_weights(forward, unrolled)
    expected = forward(inputs)
    assert numerics.max_abs_diff(backward(inputs), forward(inputs[:, ::-1])) <= 1e-6
    assert numerics.max_abs_diff(backward(inputs), expected) > 1e-3
    assert numerics.max_abs_diff(unrolled(inputs), expected) <= 1e-6


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_bidirectional_runs_a_copy_of_the_cell_backwards(case_id, rng):
    inputs = random_inputs(rng)
    bidirectional = keras.layers.Bidirectional(keras.layers.RNN(make_cell(case_id)))
    outputs = bidirectional(inputs)
    assert tuple(outputs.shape) == (inputs.shape[0], 2 * UNITS)
    numerics.randomize_weights(bidirectional, rng)
    forward = built_rnn(case_id, inputs, rng)
    backward = built_rnn(case_id, inputs, rng, go_backwards=True)
    numerics.copy_weights(bidirectional.forward_layer, forward)
    numerics.copy_weights(bidirectional.backward_layer, backward)
    assert type(bidirectional.backward_layer.cell) is type(forward.cell)
    expected = np.concatenate(
        numerics.as_list(forward(inputs)) + numerics.as_list(backward(inputs)), -1
    )
    assert numerics.max_abs_diff(bidirectional(inputs), expected) <= 1e-6


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_stacked_cells_equal_two_layers(case_id, rng):
    inputs = random_inputs(rng)
    stacked = keras.layers.RNN(
        [make_cell(case_id), make_cell(case_id, units=UNITS + 1)], return_state=True
    )
    stacked(inputs)
    numerics.randomize_weights(stacked, rng)
    first = built_rnn(case_id, inputs, rng, return_sequences=True)
    second = keras.layers.RNN(make_cell(case_id, units=UNITS + 1), return_state=True)
    second(first(inputs))
    weights = stacked.get_weights()
    half = len(first.get_weights())
    first.set_weights(weights[:half])
    second.set_weights(weights[half:])
    outputs = numerics.as_list(keras.tree.flatten(stacked(inputs)))
    expected = numerics.as_list(second(first(inputs)))
    # Stacked states: those of the first cell, then those of the second.
    assert len(outputs) == 1 + 2 * num_states(case_id)
    assert numerics.max_abs_diff(outputs[0], expected[0]) <= 1e-6
    assert numerics.max_abs_diff(outputs[-num_states(case_id) :], expected[1:]) <= 1e-6


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_mixed_float16_runs_in_half_precision_close_to_float32(case_id, rng):
    inputs = random_inputs(rng)
    full = built_rnn(case_id, inputs, rng, return_sequences=True, return_state=True)
    expected = full(inputs)
    keras.mixed_precision.set_dtype_policy("mixed_float16")  # conftest restores the policy
    half = keras.layers.RNN(make_cell(case_id), return_sequences=True, return_state=True)
    half(inputs)
    assert all(w.dtype == "float32" for w in half.weights), "weights must stay float32"
    numerics.copy_weights(full, half)
    outputs = half(inputs)
    assert [keras.backend.standardize_dtype(o.dtype) for o in outputs] == ["float16"] * len(outputs)
    for output, reference in zip(numerics.as_list(outputs), numerics.as_list(expected)):
        np.testing.assert_allclose(output.astype("float32"), reference, rtol=1e-2, atol=1e-2)
