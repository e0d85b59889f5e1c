"""Comparing outputs and setting weights: the numeric tools of the cell and layer tests."""

import keras
import numpy as np
import tensorflow as tf


def randomize_weights(layer, rng, scale=0.5):
    """Give every weight of a built layer N(0, scale^2) values (stronger tests than inits)."""
    layer.set_weights(
        [(scale * rng.normal(size=w.shape)).astype(w.dtype) for w in layer.get_weights()]
    )


def copy_weights(source, target):
    target.set_weights(source.get_weights())


def as_list(outputs):
    """A layer's outputs as a list of numpy arrays (one entry unless return_state)."""
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return [keras.ops.convert_to_numpy(outputs)]


def max_abs_diff(actual, expected):
    """Largest absolute difference over matching lists of outputs."""
    actual, expected = as_list(actual), as_list(expected)
    assert len(actual) == len(expected), f"{len(actual)} outputs != {len(expected)}"
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    return max(
        float(np.max(np.abs(a.astype("float64") - e.astype("float64"))))
        for a, e in zip(actual, expected)
    )


def assert_outputs_close(actual, expected, atol=1e-5, rtol=0.0, what="outputs"):
    """Max abs difference <= atol + rtol * (largest |expected| value)."""
    diff = max_abs_diff(actual, expected)
    scale = max(float(np.max(np.abs(e))) for e in as_list(expected))
    limit = atol + rtol * scale
    assert diff <= limit, (
        f"{what}: max abs diff {diff:.3g} > {limit:.3g} (largest |value| {scale:.3g})"
    )


def assert_same_up_to_rounding(actual, expected, what="outputs"):
    """Equal up to float32 rounding: two loops that sum in another order (1e-5, relative)."""
    assert_outputs_close(actual, expected, atol=1e-5, rtol=1e-5, what=what)


def outputs_and_gradients(layer, inputs, states, read_outs, training=False, mask=None):
    """The layer's outputs, and d(sum of outputs * read_outs) w.r.t. inputs, states, weights."""
    with tf.GradientTape() as tape:
        tape.watch([inputs, *states])
        outputs = layer(inputs, initial_state=states, training=training, mask=mask)
        loss = sum(tf.reduce_sum(o * r) for o, r in zip(outputs, read_outs))
    return outputs, tape.gradient(loss, [inputs, *states, *layer.trainable_weights])
