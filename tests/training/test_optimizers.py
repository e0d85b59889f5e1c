"""Optimizers by name and the lecture's two clippings, checked against Adagrad's formula."""

import keras
import numpy as np
import pytest

from rnnzoo.training.errors import RecipeError
from rnnzoo.training.optimizers import make_optimizer, names, step_decay, warmed_up


def two_adagrad_steps(gradients, **clip):
    """Variable after two Adagrad steps with `gradients` (lr 1, accumulators from 0)."""
    optimizer = make_optimizer("adagrad", 1.0, **clip)
    variable = keras.Variable(np.zeros(len(gradients[0]), "float32"))
    for gradient in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.float32(gradient)), variable)])
    return np.array(variable.numpy(), dtype=np.float64)


def adagrad_reference(gradients):
    """min-char-rnn's update: mem += g**2; w -= lr * g / sqrt(mem + 1e-8)."""
    w, mem = 0.0, 0.0
    for g in np.asarray(gradients, np.float64):
        mem = mem + g * g
        w = w - g / np.sqrt(mem + 1e-8)
    return w


def test_clip_value_clips_each_element():
    gradients = [[10.0, -0.5], [1.0, 1.0]]
    clipped = [[5.0, -0.5], [1.0, 1.0]]
    np.testing.assert_allclose(
        two_adagrad_steps(gradients, clip_value=5.0), adagrad_reference(clipped), rtol=1e-5
    )
    np.testing.assert_allclose(
        two_adagrad_steps(gradients), adagrad_reference(gradients), rtol=1e-5
    )


def test_clip_norm_rescales_the_global_norm():
    gradients = [[30.0, 40.0], [3.0, 4.0]]  # norms 50 and 5
    clipped = [[3.0, 4.0], [3.0, 4.0]]
    np.testing.assert_allclose(
        two_adagrad_steps(gradients, clip_norm=5.0), adagrad_reference(clipped), rtol=1e-5
    )


def test_names_and_errors():
    assert names() == ["adam", "rmsprop", "adagrad"]
    assert make_optimizer("rmsprop", 0.01).rho == pytest.approx(0.95)
    with pytest.raises(RecipeError, match="unknown optimizer 'sgd'; expected one of: adam"):
        make_optimizer("sgd", 0.1)


def test_step_decay_holds_then_decays():
    assert [step_decay(1.0, 0.5, 3, e) for e in range(5)] == [1.0, 1.0, 1.0, 0.5, 0.25]
    assert step_decay(0.1, 1.0, 0, 100) == 0.1


def test_warm_up_rises_linearly_to_the_rate_then_holds():
    assert [warmed_up(1.0, 4, step) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [warmed_up(0.1, 0, step) for step in range(2)] == [0.1, 0.1]  # 0: no warm-up


def test_a_warm_up_keeps_rmsprops_first_steps_from_blowing_up_a_recurrent_matrix():
    # RMSProp's first step moves each weight by about lr / sqrt(1 - rho) whatever its
    # gradient: on a 512x512 orthogonal matrix with a rank-one gradient (h^T dz, as a
    # recurrent kernel gets) that is a step of spectral norm about 512 * 4.5 lr.
    rng = np.random.default_rng(0)
    orthogonal = np.linalg.qr(rng.normal(size=(512, 512)))[0].astype("float32")
    gradient = np.outer(rng.normal(size=512), rng.normal(size=512)).astype("float32")

    def spectral_norm_after_first_step(warmup_steps):
        optimizer = make_optimizer("rmsprop", warmed_up(1e-3, warmup_steps, 0))
        variable = keras.Variable(orthogonal)
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        return np.linalg.norm(np.asarray(variable.numpy(), np.float64), 2)

    assert spectral_norm_after_first_step(0) > 2.5  # from 1
    assert spectral_norm_after_first_step(100) < 1.05
