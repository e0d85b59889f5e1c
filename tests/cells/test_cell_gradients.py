"""Finite-difference gradient checks, in float64, for every cell through the whole sequence.

tf.GradientTape's gradient of a random linear read-out of all outputs and
final states is compared with central differences on random entries of every
weight and of the inputs.
"""

import cell_cases
import keras
import numerics
import numpy as np
import pytest
import tensorflow as tf
from cell_cases import CELL_IDS, make_cell, random_inputs

pytestmark = cell_cases.requires_tensorflow

EPSILON = 1e-6
ENTRIES_PER_TENSOR = 3


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_cell_gradients_match_central_differences_in_float64(case_id, rng):
    inputs = tf.Variable(random_inputs(rng, dtype="float64"))
    layer = keras.layers.RNN(
        make_cell(case_id, dtype="float64"),
        return_sequences=True,
        return_state=True,
        dtype="float64",
    )
    outputs = layer(inputs)
    numerics.randomize_weights(layer, rng)
    read_outs = [rng.normal(size=o.shape) for o in outputs]

    def loss():
        return sum(tf.reduce_sum(o * r) for o, r in zip(layer(inputs), read_outs))

    tensors = list(layer.trainable_weights) + [inputs]
    assert all(t.dtype == "float64" for t in tensors)
    with tf.GradientTape() as tape:
        value = loss()
    assert value.dtype == tf.float64
    gradients = tape.gradient(value, tensors)

    for tensor, gradient in zip(tensors, gradients):
        name = getattr(tensor, "path", "inputs")
        assert gradient is not None, f"no gradient reaches {name}"
        gradient = tf.convert_to_tensor(gradient).numpy()
        for flat_index in rng.choice(
            gradient.size, size=min(ENTRIES_PER_TENSOR, gradient.size), replace=False
        ):
            index = np.unravel_index(flat_index, gradient.shape)
            original = tensor.numpy()
            bumped = original.copy()
            bumped[index] += EPSILON
            tensor.assign(bumped)
            up = loss().numpy()
            bumped[index] -= 2 * EPSILON
            tensor.assign(bumped)
            down = loss().numpy()
            tensor.assign(original)
            numeric = (up - down) / (2 * EPSILON)
            np.testing.assert_allclose(
                gradient[index], numeric, rtol=1e-5, atol=1e-7, err_msg=f"{name}{index}"
            )
