"""`RecurrentTensorBoard` during `fit`: the event files hold the right tags, steps and numbers.

One tiny model (Embedding -> LSTM -> GRU -> Dense) trains 8 steps in two
`fit` calls with every view on; the event file is read back with
TensorBoard's own loader and compared with numbers computed independently:
`tf.GradientTape` gradients at the weights before the step, the weights the
optimizer actually produced, and the probe run on the final weights.
"""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard_events import Events, tiny_char_data, tiny_char_model

import rnnzoo
from rnnzoo.tensorboard import RecurrentTensorBoard, default_callbacks, summaries
from rnnzoo.tensorboard.gradients import became_due
from rnnzoo.tensorboard.probe import probe

LEARNING_RATE = 0.5
CLIP = 0.05  # small, so the global-norm clipping really clips
BATCH = 4
HISTOGRAM_STEPS = [1, 2, 4, 6, 8]  # histograms_every=2 over 8 steps
ACTIVATION_STEPS = [1, 3, 6]  # activations_every=3


class WeightsAround(keras.callbacks.Callback):
    """Keeps the trainable weights before and after every training step."""

    def __init__(self):
        super().__init__()
        self.before, self.after = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append([v.numpy() for v in self.model.trainable_variables])

    def on_train_batch_end(self, batch, logs=None):
        self.after.append([v.numpy() for v in self.model.trainable_variables])


def loss_fn():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def tape_gradients(model, weights, x, y):
    """Loss and gradients of `model` at `weights` on one batch, with a plain GradientTape."""
    for variable, value in zip(model.trainable_variables, weights):
        variable.assign(value)
    with tf.GradientTape() as tape:
        loss = loss_fn()(y, model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    return float(loss), [tf.convert_to_tensor(g).numpy() for g in gradients]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("views")
    model = tiny_char_model()
    model.compile(keras.optimizers.SGD(LEARNING_RATE, global_clipnorm=CLIP), loss_fn())
    x, y = tiny_char_data(16)
    probe_batch = (x[:BATCH], y[:BATCH])
    callback = RecurrentTensorBoard(
        log_dir,
        probe_data=probe_batch,
        scalars_every=1,
        histograms_every=2,
        gradient_over_time_every=2,
        gates_every=2,
        activations_every=3,
    )
    weights = WeightsAround()
    fit = dict(batch_size=BATCH, shuffle=False, callbacks=[weights, callback], verbose=0)
    model.fit(x, y, epochs=1, **fit)
    first_train_function = model.train_function
    hooked = "apply" in model.optimizer.__dict__
    model.fit(x, y, epochs=2, initial_epoch=1, **fit)
    reused_train_function = model.train_function is first_train_function
    final = [v.numpy() for v in model.trainable_variables]
    recorded_step, recorded = callback.recorder.read_values()
    final_traces, _ = probe(model, *probe_batch)
    history = {name: np.stack(rows) for name, rows in callback.history.items()}

    def batch_of(step):
        start = (step - 1) % 4 * BATCH
        return x[start : start + BATCH], y[start : start + BATCH]

    references = {
        step: tape_gradients(model, weights.before[step - 1], *batch_of(step)) for step in (1, 8)
    }
    for variable, value in zip(model.trainable_variables, final):
        variable.assign(value)
    callback.close()
    return types.SimpleNamespace(
        events=Events(log_dir),
        model=model,
        paths=[v.path for v in model.trainable_variables],
        weights=weights,
        references=references,
        recorded_step=recorded_step,
        recorded=recorded,
        final_traces={trace.name: trace for trace in final_traces},
        history=history,
        hooked=hooked,
        reused_train_function=reused_train_function,
        tmp=tmp_path_factory.mktemp("reference"),
    )


def test_every_view_writes_its_tags(run):
    layers = ("embedding", "lstm", "gru", "dense")
    gates = {"lstm": "ifgo", "gru": "zrn"}
    assert run.events.tags("scalars") == {
        "batch/loss",
        "epoch/loss",
        "optimizer/learning_rate",
        "gradient_norm/global",
        "gradient_norm/global_clipped",
        *(f"gradient_norm/{layer}" for layer in layers),
        "gradient_over_time/lstm/log10_first_over_last",
        "gradient_over_time/gru/log10_first_over_last",
        *(
            f"gate_saturation/{layer}/{gate}_{side}"
            for layer, names in gates.items()
            for gate in names
            for side in ("left", "right")
        ),
    }
    assert run.events.tags("histograms") == {
        *(f"{kind}/{path}" for kind in ("weights", "gradients") for path in run.paths),
        *(f"gates/{layer}/{gate}" for layer, names in gates.items() for gate in names),
    }
    assert run.events.tags("images") == {
        "gradient_over_time/lstm/curve",
        "gradient_over_time/lstm/history",
        "gradient_over_time/gru/curve",
        "gradient_over_time/gru/history",
        "activations/lstm/h",
        "activations/lstm/c",
        "activations/gru/h",
    }
    assert len(run.paths) == 1 + 3 + 3 + 2  # embedding, lstm, gru, dense
    description = run.events.description("gradient_over_time/lstm/curve")
    assert "last time step" in description and "probe batch" in description
    assert "Training gradient" in run.events.description(f"gradients/{run.paths[0]}")


def test_each_view_runs_at_its_frequency_across_fit_calls(run):
    def steps(tag, kind="scalars"):
        return [step for step, _ in getattr(run.events, kind)(tag)]

    assert steps("batch/loss") == list(range(1, 9))
    assert steps("gradient_norm/global") == list(range(1, 9))
    assert steps("epoch/loss") == [4, 8]
    assert steps(f"gradients/{run.paths[0]}", "histograms") == HISTOGRAM_STEPS
    assert steps("gates/lstm/f", "histograms") == HISTOGRAM_STEPS
    assert steps("gradient_over_time/lstm/history", "images") == HISTOGRAM_STEPS
    assert steps("activations/lstm/c", "images") == ACTIVATION_STEPS
    # The hook went in once: the second fit call reused the traced train step.
    assert run.hooked and run.reused_train_function
    assert "apply" not in run.model.optimizer.__dict__  # close() took it out


def test_all_values_are_finite(run):
    for tag in run.events.tags("scalars"):
        assert all(np.isfinite(value) for _, value in run.events.scalars(tag)), tag
    for tag in run.events.tags("histograms"):
        for _, buckets in run.events.histograms(tag):
            assert buckets.shape[1] == 3 and np.all(np.isfinite(buckets)), tag
            assert buckets[:, 2].sum() > 0, tag


def test_gradient_histograms_match_gradient_tape(run):
    """The logged gradients of step 8 are the GradientTape gradients at the weights before it."""
    _, reference = run.references[8]
    assert run.recorded_step == 8
    for path, expected in zip(run.paths, reference):
        np.testing.assert_allclose(run.recorded[path], expected, rtol=2e-4, atol=1e-7, err_msg=path)
    # The event file's histogram is the one tf.summary.histogram makes of the tape's gradients.
    writer = tf.summary.create_file_writer(str(run.tmp))
    with writer.as_default():
        for path, expected in zip(run.paths, reference):
            tf.summary.histogram(f"gradients/{path}", expected, step=8)
    writer.close()
    expected_events = Events(run.tmp)
    for path, gradient in zip(run.paths, reference):
        ((step, logged),) = [
            item for item in run.events.histograms(f"gradients/{path}") if item[0] == 8
        ]
        ((_, wanted),) = expected_events.histograms(f"gradients/{path}")
        assert logged[:, 2].sum() == gradient.size
        np.testing.assert_allclose(logged[:, :2], wanted[:, :2], rtol=2e-4, atol=1e-7, err_msg=path)
        assert np.abs(logged[:, 2] - wanted[:, 2]).sum() <= 2, (
            path
        )  # a value on a bucket edge may move


def test_weight_histograms_hold_the_weights_after_the_step(run):
    weights_after_8 = run.weights.after[7]
    for path, value in zip(run.paths, weights_after_8):
        ((_, logged),) = [item for item in run.events.histograms(f"weights/{path}") if item[0] == 8]
        assert logged[:, 2].sum() == value.size
        np.testing.assert_allclose(
            [logged[0, 0], logged[-1, 1]], [value.min(), value.max()], rtol=1e-6
        )


@pytest.mark.parametrize("step", [1, 8])
def test_gradient_norms_before_and_after_clipping(run, step):
    loss, reference = run.references[step]
    norms = {
        tag.split("/")[1]: dict(run.events.scalars(tag))[step]
        for tag in run.events.tags("scalars")
        if tag.startswith("gradient_norm/")
    }
    global_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in reference))
    assert norms["global"] == pytest.approx(global_norm, rel=1e-4)
    assert global_norm > 2 * CLIP  # so clipping was active
    # The optimizer's own update: plain SGD moves the weights by -lr * clipped gradient.
    update = [
        after - before
        for before, after in zip(run.weights.before[step - 1], run.weights.after[step - 1])
    ]
    moved = np.sqrt(sum(np.sum(u.astype(np.float64) ** 2) for u in update)) / LEARNING_RATE
    assert norms["global_clipped"] == pytest.approx(moved, rel=1e-4)
    # Not exactly CLIP: Keras measures the Embedding's sparse gradient before merging repeated ids.
    assert norms["global_clipped"] == pytest.approx(CLIP, rel=0.02)
    for layer in ("embedding", "lstm", "gru", "dense"):
        expected = np.sqrt(
            sum(
                np.sum(g.astype(np.float64) ** 2)
                for p, g in zip(run.paths, reference)
                if f"/{layer}/" in p
            )
        )
        assert norms[layer] == pytest.approx(expected, rel=1e-4), layer


def test_loss_and_learning_rate_scalars(run):
    loss_step_1, _ = run.references[1]
    assert dict(run.events.scalars("batch/loss"))[1] == pytest.approx(loss_step_1, rel=1e-5)
    assert {value for _, value in run.events.scalars("optimizer/learning_rate")} == {LEARNING_RATE}


def test_probe_views_hold_the_probe_numbers(run):
    """At step 8 (the final weights) the probe views equal a fresh probe run."""
    for name, trace in run.final_traces.items():
        norms = trace.gradient_norms
        logged = dict(run.events.scalars(f"gradient_over_time/{name}/log10_first_over_last"))[8]
        assert logged == pytest.approx(np.log10(norms[0] / norms[-1]), rel=1e-4, abs=1e-5)
        np.testing.assert_allclose(run.history[name][-1], norms, rtol=1e-5)
        assert run.history[name].shape == (len(HISTOGRAM_STEPS), 12)
        ((_, history_image),) = [
            item for item in run.events.images(f"gradient_over_time/{name}/history") if item[0] == 8
        ]
        _, expected_image = summaries.gradient_over_time_images(
            norms, run.history[name], run.history[name][0]
        )
        np.testing.assert_array_equal(history_image, expected_image)
        for gate, values in trace.gates.items():
            left, right = summaries.saturation(values)
            assert dict(run.events.scalars(f"gate_saturation/{name}/{gate}_left"))[
                8
            ] == pytest.approx(left)
            assert dict(run.events.scalars(f"gate_saturation/{name}/{gate}_right"))[
                8
            ] == pytest.approx(right)
            ((_, buckets),) = [
                item for item in run.events.histograms(f"gates/{name}/{gate}") if item[0] == 8
            ]
            assert buckets[:, 2].sum() == values.size == BATCH * 12 * 8
            np.testing.assert_allclose(
                [buckets[0, 0], buckets[-1, 1]], [values.min(), values.max()], rtol=1e-5
            )
    # Activation images: units down, time across, one per state.
    ((_, image),) = [item for item in run.events.images("activations/lstm/c") if item[0] == 6]
    assert image.shape == summaries.activation_image(run.final_traces["lstm"].states["c"][0]).shape
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10


@pytest.mark.parametrize(
    "clipping",
    [{"clipnorm": 0.01}, {"clipvalue": 0.001}, {}],
    ids=["clipnorm", "clipvalue", "none"],
)
def test_clipped_norm_is_what_the_optimizer_applied(tmp_path, clipping):
    keras.utils.set_random_seed(3)
    # The Embedding's gradient is sparse, with repeated ids: Keras measures it unmerged.
    model = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(3, 2),
            rnnzoo.layers.VanillaRNN(3),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1, **clipping), "mse")
    x = np.random.default_rng(0).integers(0, 3, (4, 5)).astype("int32")
    y = np.ones((4, 1), "float32")
    before = [v.numpy() for v in model.trainable_variables]
    callback = RecurrentTensorBoard(
        tmp_path,
        scalars_every=1,
        histograms_every=0,
        gradient_over_time_every=0,
        gates_every=0,
        activations_every=0,
    )
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[callback], verbose=0)
    callback.close()
    events = Events(tmp_path)
    moved = (
        np.sqrt(
            sum(np.sum((v.numpy() - b) ** 2) for v, b in zip(model.trainable_variables, before))
        )
        / 0.1
    )
    clipped = dict(events.scalars("gradient_norm/global_clipped"))[1]
    unclipped = dict(events.scalars("gradient_norm/global"))[1]
    assert clipped == pytest.approx(moved, rel=1e-3)
    if clipping:
        assert clipped < unclipped * 0.9  # the setting did clip
    else:
        assert clipped == unclipped


def test_views_are_due_at_step_one_and_each_multiple_even_several_steps_at_once():
    def due_steps(every, stride):
        steps, previous = [], 0
        for current in range(stride, 21, stride):
            if became_due(previous, current, every):
                steps.append(current)
            previous = current
        return steps

    assert due_steps(5, 1) == [1, 5, 10, 15, 20]
    assert due_steps(5, 3) == [3, 6, 12, 15]  # 1 in (0, 3], 5 in (3, 6], 10 in (9, 12], 15
    assert due_steps(0, 1) == []


def test_bad_arguments_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="probe_data=None"):
        RecurrentTensorBoard(tmp_path)
    with pytest.raises(ValueError, match="gradient_over_time_every=0"):
        RecurrentTensorBoard(tmp_path, probe_data=(np.zeros((2, 3)),))
    with pytest.raises(ValueError, match="scalars_every"):
        RecurrentTensorBoard(tmp_path, probe_data=(1, 2), scalars_every=-1)
    with pytest.raises(ValueError, match="loss_at"):
        default_callbacks(tmp_path, (np.zeros((2, 3)), np.zeros((2,))), loss_at="first")
