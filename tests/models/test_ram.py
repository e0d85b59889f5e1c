"""The recurrent attention model: its REINFORCE gradient, soft attention, evaluation, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from processes import assert_loads_in_fresh_process

from rnnzoo.models.ram import RecurrentAttentionModel

SMALL = dict(num_classes=2, patch_size=4, units=16, glimpse_units=8, location_units=8, seed=3)


def small_model(**overrides):
    return RecurrentAttentionModel(**{**SMALL, "glimpses": 2, **overrides})


def side_images(count, rng, side=16):
    """Class 1 has a bright left half, class 0 a dark one; both have the same kind of noise
    in the right half, so only a glimpse on the left tells them apart."""
    images = np.zeros((count, side, side), np.uint8)
    images[:, :, side // 2 :] = rng.integers(0, 256, (count, side, side // 2))
    labels = np.arange(count) % 2
    images[labels == 1, :, : side // 2] = 255
    return images, labels.astype(np.int32)


def test_reinforce_gradient_is_the_score_function_estimate():
    """The REINFORCE term's gradient is the score-function estimate.

    d loss / d mu_t = -mean_i (R_i - b_i)(l_i - mu_i) / sigma^2 / batch.
    """
    model = small_model(glimpses=3, location_std=0.2)
    rng = np.random.default_rng(0)
    batch, steps = 6, 3
    means = tf.Variable(rng.uniform(-0.5, 0.5, (batch, steps, 2)).astype(np.float32))
    samples = (means.numpy() + 0.2 * rng.normal(size=(batch, steps, 2))).astype(np.float32)
    baselines = rng.uniform(0, 1, (batch, steps)).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 1, 0])
    logits = np.where(rng.uniform(size=(batch, 1)) < 0.5, [[2.0, -2.0]], [[-2.0, 2.0]])
    with tf.GradientTape() as tape:
        result = {
            "logits": tf.constant(logits, tf.float32),
            "means": means,
            "samples": tf.constant(samples),
            "baselines": tf.constant(baselines),
        }
        loss, figures = model.hybrid_loss(result, labels)
    gradient = tape.gradient(loss, means).numpy()
    reward = (np.argmax(logits, -1) == labels).astype(np.float32)
    expected = (
        -((reward[:, None] - baselines)[..., None] * (samples - means.numpy()) / 0.04) / batch
    )
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-6)
    assert float(figures["reward"]) == pytest.approx(reward.mean())
    # The baseline lowers the variance of the per-episode policy gradient when it is near R.
    assert float(figures["pg_variance"]) >= 0.0


def test_reinforce_moves_a_toy_policy_toward_the_rewarded_side():
    """One glimpse, at l_0 ~ N(tanh(b), sigma^2): only a glimpse on the left half can tell the
    classes apart and earn the reward, so training must move the mean column to the left."""
    images, labels = side_images(1024, np.random.default_rng(0))
    model = small_model(glimpses=1, location_std=0.3, eval_samples=4)
    model(images[:1])

    def mean_location():
        return keras.ops.convert_to_numpy(model.locator(np.zeros((1, 16), np.float32)))[0]

    start = mean_location()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(images, labels, batch_size=64, epochs=4, verbose=0, shuffle=False)
    end = mean_location()
    assert end[1] < start[1] - 0.3, (start, end)  # the column moved left
    accuracy = model.evaluate(images, labels, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.9


def test_hard_attention_trains_the_location_network_only_by_reinforce():
    model = small_model()
    images, labels = side_images(8, np.random.default_rng(1))
    with tf.GradientTape(persistent=True) as tape:
        result = model.episodes(model.prepare(images), training=True)
        cross_entropy = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(labels, result["logits"], from_logits=True)
        )
        loss, _ = model.hybrid_loss(result, labels)
    locator = model.locator.trainable_variables
    assert all(g is None for g in tape.gradient(cross_entropy, locator))
    assert all(float(tf.norm(g)) > 0 for g in tape.gradient(loss, locator))
    # The classifier's loss reaches the glimpse and core networks.
    assert all(g is not None for g in tape.gradient(cross_entropy, model.core.trainable_variables))


def test_soft_attention_backpropagates_into_the_locations_and_has_no_baseline():
    model = small_model(attention="soft", num_scales=2)
    images, labels = side_images(8, np.random.default_rng(1))
    with tf.GradientTape() as tape:
        result = model.episodes(model.prepare(images), training=True)
        loss, figures = model.hybrid_loss(result, labels)
    gradients = tape.gradient(loss, model.locator.trainable_variables)
    assert all(float(tf.norm(g)) > 0 for g in gradients)
    assert model.baseline_layer is None and "baseline" not in figures
    np.testing.assert_array_equal(result["samples"], result["means"])  # nothing sampled
    once, again = model(images), model(images)
    np.testing.assert_array_equal(once, again)  # deterministic


def test_evaluation_averages_the_probabilities_of_its_episodes():
    model = small_model(eval_samples=5)
    images, _ = side_images(4, np.random.default_rng(2))
    probabilities = np.exp(keras.ops.convert_to_numpy(model(images)))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    # The same noise drawn again, one episode at a time, gives the same average.
    generator = model.noise.state
    saved = generator.numpy()
    averaged = keras.ops.convert_to_numpy(model.averaged_log_probs(model.prepare(images), 5))
    generator.assign(saved)
    repeated = np.repeat(images, 5, axis=0)
    logits = model.episodes(model.prepare(repeated))["logits"]
    per_episode = keras.ops.convert_to_numpy(keras.ops.softmax(logits)).reshape(4, 5, 2)
    np.testing.assert_allclose(np.exp(averaged), per_episode.mean(1), rtol=1e-5, atol=1e-6)


def test_mean_episodes_draw_no_noise():
    model = small_model()
    images, _ = side_images(4, np.random.default_rng(3))
    before = model.noise.state.numpy()
    first = model.episodes(model.prepare(images), sample=False)
    second = model.episodes(model.prepare(images), sample=False)
    np.testing.assert_array_equal(model.noise.state.numpy(), before)
    np.testing.assert_array_equal(first["locations"], second["locations"])
    np.testing.assert_array_equal(first["locations"], np.clip(first["means"], -1, 1))


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"attention": "glance"}, "`attention` to be one of hard, soft"),
        ({"attention": "soft", "samples": 3}, "`samples=1` with `attention='soft'`"),
        ({"location_std": 0.0}, "`location_std` to be a number > 0"),
        ({"glimpses": 0}, "`glimpses` to be an integer >= 1"),
        ({"cell": "elman"}, "Unknown cell name 'elman'"),
        ({"patch_size": 20}, "fit"),
    ],
)
def test_bad_arguments_are_clear_errors(overrides, fragment):
    with pytest.raises(ValueError) as error:
        model = small_model(**overrides)
        model(np.zeros((1, 16, 16), np.uint8))
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_saves_and_loads_in_a_fresh_process(tmp_path):
    images, _ = side_images(3, np.random.default_rng(4))
    soft = small_model(attention="soft", cell="lstm", num_scales=2)
    soft(images)
    assert_loads_in_fresh_process({"ram_soft": (soft, images)}, tmp_path, atol=1e-6)
    hard = small_model(cell="gru")
    hard(images)
    config = hard.get_config()
    clone = RecurrentAttentionModel.from_config(config)
    clone(images)
    clone.set_weights(hard.get_weights())
    np.testing.assert_allclose(
        clone.episodes(clone.prepare(images), sample=False)["logits"],
        hard.episodes(hard.prepare(images), sample=False)["logits"],
        rtol=1e-6,
    )


def test_cell_args_reach_the_core_and_its_config():
    """`cell_args` go to the core cell (an initializer among them replaces the seeded one)
    and into `get_config`, so a clone (and model.keras) has them too."""
    images, _ = side_images(2, np.random.default_rng(5))
    model = small_model(cell="irnn", cell_args={"identity_scale": 0.5})
    model(images)
    recurrent = model.core.recurrent_kernel.numpy()
    np.testing.assert_array_equal(recurrent, 0.5 * np.eye(recurrent.shape[0]))
    clone = RecurrentAttentionModel.from_config(model.get_config())
    clone(images)
    assert clone.core.identity_scale == 0.5 and clone.cell_args == {"identity_scale": 0.5}
    ones = small_model(cell="lstm", cell_args={"kernel_initializer": "ones"})
    ones(images)
    np.testing.assert_array_equal(ones.core.kernel.numpy(), 1.0)
    plain = small_model(cell="lstm")
    plain(images)
    np.testing.assert_array_equal(
        ones.core.recurrent_kernel.numpy(), plain.core.recurrent_kernel.numpy()
    )


def test_a_mixed_dtype_policy_reaches_every_layer_and_keeps_the_outputs_float32():
    """`dtype="mixed_bfloat16"` (or the global policy when the model is made) reaches every
    layer, clones included: the glimpse and core networks compute in bfloat16, the class
    logits, location means and baselines in float32; every weight is float32."""
    images, labels = side_images(4, np.random.default_rng(6))
    assert keras.config.dtype_policy().name == "float32"
    model = small_model(dtype="mixed_bfloat16", cell="lstm")
    model(images)
    clone = RecurrentAttentionModel.from_config(model.get_config())
    clone(images)
    for ram in (model, clone):
        policies = {layer.name: layer.dtype_policy.name for layer in ram.layers}
        outputs = {"locator", "baseline", "classifier"}
        assert {policies.pop(name) for name in outputs} == {"float32"}
        assert set(policies.values()) == {"mixed_bfloat16"}, policies
        assert {v.dtype for v in ram.weights if "seed" not in v.path} == {"float32"}
    result = model.episodes(model.prepare(images), training=True)
    assert {keras.backend.standardize_dtype(t.dtype) for t in result.values()} == {"float32"}
    model.compile(optimizer="adam")
    assert np.isfinite(model.train_on_batch(images, labels, return_dict=True)["loss"])


def test_mixed_float16_scales_the_loss_in_the_models_own_train_step():
    """Under mixed_float16 Keras's compile wraps the optimizer in a LossScaleOptimizer, which
    unscales the gradients it applies: the model's train_step must scale the loss first, so
    one SGD step moves every weight as the float32 model's step does (the same noise drawn)."""
    images, labels = side_images(8, np.random.default_rng(6))
    steps = {}
    for policy in ("float32", "mixed_float16"):
        model = small_model(dtype=policy, cell="lstm")
        model(images)
        if policy == "float32":
            start = model.get_weights()
        model.set_weights(start)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.train_on_batch(images, labels)
        steps[policy] = [after - before for after, before in zip(model.get_weights(), start)]
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    for exact, mixed in zip(steps["float32"], steps["mixed_float16"], strict=True):
        assert np.abs(exact).max() > 0
        np.testing.assert_allclose(np.abs(mixed).max(), np.abs(exact).max(), rtol=0.02)
