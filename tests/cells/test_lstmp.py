"""The LSTM with a recurrent projection equals torch.nn.LSTM(proj_size=...) and keeps the
Keras contract with h narrower than c.

torch is a test-only dependency (the `test` extra); without it the torch
comparison is skipped. The shared tests (tests/cell_cases.py) build the
cell with its default, a square projection; here projection_units differs
from units, so a mix-up of the two widths shows.
"""

import importlib.util

import cell_cases
import keras
import layer_checks
import numerics
import numpy as np
import pytest
import tensorflow as tf
from cell_cases import FEATURES, random_inputs

import rnnzoo
from rnnzoo.layers import fast_loop

UNITS, PROJECTION, TIME = 5, 3, 13

requires_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed (pip install 'rnnzoo[test]')",
)


def torch_lstm_of(cell, input_size):
    """A torch.nn.LSTM(proj_size=...) holding the cell's weights (each matrix transposed)."""
    import torch

    kernel, recurrent_kernel, bias, projection = (w.numpy().astype("float64") for w in cell.weights)
    lstm = torch.nn.LSTM(
        input_size, cell.units, proj_size=cell.projection_units, batch_first=True
    ).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias))  # bias_ih + bias_hh = b
        lstm.bias_hh_l0.zero_()
        lstm.weight_hr_l0.copy_(torch.from_numpy(projection.T))
    return lstm


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_equals_torch_lstm_with_proj_size(dtype, rng):
    import torch

    layer = keras.layers.RNN(
        rnnzoo.cells.LSTMPCell(UNITS, projection_units=PROJECTION, dtype=dtype),
        return_sequences=True,
        return_state=True,
        dtype=dtype,
    )
    inputs = random_inputs(rng, time=TIME, dtype=dtype)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    assert [tuple(w.shape) for w in layer.weights] == [
        (FEATURES, 4 * UNITS),
        (PROJECTION, 4 * UNITS),
        (4 * UNITS,),
        (UNITS, PROJECTION),
    ]
    lstm = torch_lstm_of(layer.cell, FEATURES)
    h0 = 0.5 * rng.normal(size=(1, inputs.shape[0], PROJECTION))
    c0 = 0.5 * rng.normal(size=(1, inputs.shape[0], UNITS))
    with torch.no_grad():
        outputs, (h, c) = lstm(
            torch.from_numpy(inputs.astype("float64")),
            (torch.from_numpy(h0), torch.from_numpy(c0)),
        )
    theirs = [outputs.numpy(), h[0].numpy(), c[0].numpy()]
    ours = layer(inputs, initial_state=[h0[0].astype(dtype), c0[0].astype(dtype)])
    numerics.assert_outputs_close(ours, theirs, atol=1e-5 if dtype == "float32" else 1e-12)


def make_layer(**kwargs):
    return rnnzoo.layers.LSTMP(UNITS, projection_units=PROJECTION, **kwargs)


def test_layer_contract_with_a_narrow_projection(rng, tmp_path):
    """Shapes (output and h of projection_units, c of units), weights, regularizers, config,
    save/load and a training step, as every layer's (tests/layer_checks.py)."""
    regularizers = cell_cases.regularizer_arguments("lstmp")
    assert "projection_regularizer" in regularizers
    layer_checks.run_layer_test(
        make_layer,
        random_inputs(rng),
        units=PROJECTION,
        state_widths=[PROJECTION, UNITS],
        rng=rng,
        num_weights=4,
        regularizers=regularizers,
        tmp_path=tmp_path,
    )


def test_masks_stateful_and_dropout_with_a_narrow_projection(rng):
    inputs = random_inputs(rng)
    layer = make_layer(return_sequences=True, return_state=True)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    layer_checks.assert_masked_steps_carry_state(layer, inputs)
    layer_checks.assert_stateful_carries_state(make_layer, inputs)
    # The recurrent mask drops h (projection_units wide) where it enters U.
    layer_checks.assert_one_dropout_mask_per_sequence(
        lambda units, **rates: rnnzoo.layers.LSTMP(
            units + 2, projection_units=units, seed=5, return_sequences=True, **rates
        ),
        rng,
    )


@cell_cases.requires_tensorflow
def test_fast_loop_equals_the_cell_in_keras_rnn_outputs_and_gradients(rng, monkeypatch):
    calls = []
    run = fast_loop.run
    monkeypatch.setattr(fast_loop, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    layer = make_layer(return_sequences=True, return_state=True, go_backwards=True)
    reference = keras.layers.RNN(
        rnnzoo.cells.LSTMPCell(UNITS, projection_units=PROJECTION),
        return_sequences=True,
        return_state=True,
        go_backwards=True,
    )
    inputs = tf.constant(random_inputs(rng, time=TIME))
    layer(inputs)
    reference(inputs)
    numerics.randomize_weights(layer, rng, scale=0.3)
    numerics.copy_weights(layer, reference)
    states = [tf.constant(rng.normal(size=(inputs.shape[0], w)).astype("float32")) for w in (3, 5)]
    read_outs = [rng.normal(size=o.shape).astype("float32") for o in reference(inputs)]
    results = []
    calls.clear()
    for candidate in (layer, reference):
        with tf.GradientTape() as tape:
            tape.watch([inputs, *states])
            outputs = candidate(inputs, initial_state=states, training=True)
            loss = sum(tf.reduce_sum(o * r) for o, r in zip(outputs, read_outs))
        results.append(
            (outputs, tape.gradient(loss, [inputs, *states, *candidate.trainable_weights]))
        )
    assert calls, "the fast loop did not run"
    (ours, our_gradients), (theirs, their_gradients) = results
    numerics.assert_outputs_close(ours, theirs, atol=1e-5)
    for our_gradient, their_gradient in zip(our_gradients, their_gradients):
        numerics.assert_outputs_close(our_gradient, their_gradient, atol=1e-5, what="gradient")


def test_parameter_count_is_sak_et_al():
    layer = make_layer()
    layer(np.zeros((1, 2, FEATURES), "float32"))
    expected = 4 * UNITS * (FEATURES + PROJECTION + 1) + UNITS * PROJECTION
    assert layer.count_params() == expected
    assert layer.cell.output_size == PROJECTION and layer.cell.state_size == [PROJECTION, UNITS]


def test_default_projection_is_square_and_width_is_checked():
    assert rnnzoo.cells.LSTMPCell(UNITS).projection_units == UNITS
    with pytest.raises(ValueError, match=r"`projection_units` to be a positive integer"):
        rnnzoo.cells.LSTMPCell(UNITS, projection_units=0)
