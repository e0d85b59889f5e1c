"""`RecurrentTensorBoard`: the Keras callback that writes every rnnzoo view during `fit`.

Design. A Keras 3 callback sees the logs, the model and its weights, but not
the gradients of the training step. So the views get their numbers from two
places:

- Training gradients (scalars of gradient norms, gradient histograms): a
  `GradientRecorder` wraps the optimizer's `apply` from the first `fit` on
  (until `remove_hook()` or `close()`) and stores, inside the compiled train
  step and only on due steps, the norms before and after clipping, per-layer
  norms and a copy of the gradients (see `rnnzoo.tensorboard.gradients`).
  Nothing in the model changes; checkpoints hold the same variables.
- Inside the recurrent layers (∂L/∂h_t over time, gates, activations): every
  so often the callback runs `rnnzoo.tensorboard.probe.probe` on a fixed
  probe batch, unrolling each rnnzoo layer with `cell.step` and taking
  gradients with `tf.GradientTape` with respect to zero probes added to h_t.
  Those tags say "Computed on the fixed probe batch" in their descriptions.

Each view has its own frequency in training steps (0 turns it off); a view is
due at step 1 and at every multiple of its frequency. All tags use the
optimizer's step count (`optimizer.iterations`) as their step, and all go to
one event file in `log_dir` (one writer per directory, so a live TensorBoard
keeps seeing them). Works with `model.fit` on any compiled `keras.Model`
(Sequential, functional or subclassed) with a single loss that contains rnnzoo
recurrent layers, including inside `keras.layers.Bidirectional`.
"""

import keras
import numpy as np
import tensorflow as tf

from rnnzoo.tensorboard import summaries
from rnnzoo.tensorboard.gradients import (
    GradientRecorder,
    became_due,
    check_every,
    training_step,
)
from rnnzoo.tensorboard.probe import LOSS_AT, probe

# Default frequencies, in training steps. Scalars are nearly free; the probe
# views run the probe batch once more, recording every step of every layer
# (and its gradient), so they run rarely (see benchmarks/tensorboard_overhead.py).
DEFAULT_EVERY = {
    "scalars_every": 10,
    "histograms_every": 100,
    "gradient_over_time_every": 200,
    "gates_every": 200,
    "activations_every": 200,
}


class RecurrentTensorBoard(keras.callbacks.Callback):
    """Writes loss, learning rate, gradient norms and histograms, ∂L/∂h_t, gates and activations.

    Args:
        log_dir: Directory for the event file (the run's TensorBoard directory).
        probe_data: `(inputs, targets)` of the fixed probe batch used by the
            gradient-over-time, gates and activations views (or a
            `tf.data.Dataset`, whose first batch is taken). `targets` may be
            None when the gradient-over-time view is off.
        scalars_every: Loss, metrics, learning rate and gradient norms.
        histograms_every: Histograms of weights and training gradients.
        gradient_over_time_every: ‖∂L/∂h_t‖ per time step, per recurrent layer.
        gates_every: Gate histograms and saturation fractions.
        activations_every: Images of each unit's state over time.
        loss_at: "last" (default): ∂L/∂h_t of the loss at the last time step
            only; "every": of the model's loss over all steps.
        loss_fn: Loss for the probe; default the model's compiled loss.
        probe_examples: Use at most this many sequences of the probe batch.
        history_rows: Rows (logged steps) kept in the gradient-over-time
            history image; the oldest are dropped beyond it.
    """

    def __init__(
        self,
        log_dir,
        probe_data=None,
        scalars_every=DEFAULT_EVERY["scalars_every"],
        histograms_every=DEFAULT_EVERY["histograms_every"],
        gradient_over_time_every=DEFAULT_EVERY["gradient_over_time_every"],
        gates_every=DEFAULT_EVERY["gates_every"],
        activations_every=DEFAULT_EVERY["activations_every"],
        loss_at="last",
        loss_fn=None,
        probe_examples=16,
        history_rows=200,
    ):
        super().__init__()
        self.log_dir = str(log_dir)
        self.every = {
            "scalars": check_every("scalars_every", scalars_every),
            "histograms": check_every("histograms_every", histograms_every),
            "gradient_over_time": check_every("gradient_over_time_every", gradient_over_time_every),
            "gates": check_every("gates_every", gates_every),
            "activations": check_every("activations_every", activations_every),
        }
        if loss_at not in LOSS_AT:
            raise ValueError(f"Expected loss_at to be one of {LOSS_AT}, received {loss_at!r}.")
        self.loss_at = loss_at
        self.loss_fn = loss_fn
        self.history_rows = int(history_rows)
        self.probe_inputs, self.probe_targets = _probe_batch(probe_data, probe_examples)
        probe_views = [v for v in ("gradient_over_time", "gates", "activations") if self.every[v]]
        if probe_views and self.probe_inputs is None:
            raise ValueError(
                f"The views {probe_views} need a probe batch; received probe_data=None. "
                "Pass probe_data=(inputs, targets), or set "
                + ", ".join(f"{v}_every=0" for v in probe_views)
                + "."
            )
        if self.every["gradient_over_time"] and self.probe_targets is None:
            raise ValueError(
                "The gradient-over-time view needs the probe batch's targets; received "
                "probe_data without targets. Pass probe_data=(inputs, targets) or set "
                "gradient_over_time_every=0."
            )
        self.writer = None
        self.recorder = None
        self.history = {}
        self.reference = {}
        self._describe = summaries.Descriptions()

    # ------------------------------------------------------------- lifecycle
    def on_train_begin(self, logs=None):
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.log_dir)
        self._step = self._current_step()
        self._logged = {"norms": self._step, "values": self._step}
        wants_gradients = self.every["scalars"] or self.every["histograms"]
        stale = self.recorder is None or self.recorder.optimizer is not self.model.optimizer
        if wants_gradients and (stale or self.recorder.model is not self.model):
            self.remove_hook()
            self.recorder = GradientRecorder(
                self.model,
                norms_every=self.every["scalars"],
                values_every=self.every["histograms"],
            )
            self.recorder.install()
            # A train step traced before must be traced again to go through the
            # wrapped `apply`. The hook then stays, so later `fit` calls (one per
            # epoch in rnnzoo's Trainer) reuse the traced step.
            self.model.make_train_function(force=True)

    def on_train_end(self, logs=None):
        self.writer.flush()

    def remove_hook(self):
        """Take the gradient hook out of the optimizer; the next `fit` traces a plain step."""
        if self.recorder is not None:
            self.recorder.uninstall()
            self.recorder.model.train_function = None
            self.recorder = None

    def close(self):
        """Remove the hook and close the event file."""
        self.remove_hook()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def on_train_batch_end(self, batch, logs=None):
        previous, step = self._step, self._current_step()
        self._step = step
        with self.writer.as_default():
            if became_due(previous, step, self.every["scalars"]):
                summaries.write_logs("batch", logs, step, self._describe)
                summaries.write_learning_rate(
                    _to_float(self.model.optimizer.learning_rate), step, self._describe
                )
            self._write_training_gradients(step)
            due = {
                view: became_due(previous, step, self.every[view])
                for view in ("gradient_over_time", "gates", "activations")
            }
            if any(due.values()):
                self.write_probe_views(step, **due)

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default():
            summaries.write_logs("epoch", logs, self._current_step(), self._describe)
        self.writer.flush()

    # ----------------------------------------------------------------- views
    def _write_training_gradients(self, step):
        if self.recorder is None:
            return
        if self.every["scalars"]:
            norms_step, global_norm, clipped, layer_norms = self.recorder.read_norms()
            if norms_step > self._logged["norms"]:
                self._logged["norms"] = norms_step
                summaries.write_gradient_norms(
                    global_norm, clipped, layer_norms, norms_step, self._describe
                )
        if self.every["histograms"]:
            values_step = int(self.recorder.values_step.numpy())
            if values_step > self._logged["values"]:
                self._logged["values"] = values_step
                _, gradients = self.recorder.read_values()
                summaries.write_variable_histograms(
                    "gradients",
                    gradients,
                    values_step,
                    self._describe,
                    (
                        "Training gradient of this step's batch, before clipping, "
                        "recorded inside the optimizer."
                    ),
                )
                weights = {v.path: v.numpy() for v in self.model.trainable_variables}
                summaries.write_variable_histograms(
                    "weights",
                    weights,
                    values_step,
                    self._describe,
                    "Weights after this step's update.",
                )

    def write_probe_views(self, step, gradient_over_time=True, gates=True, activations=True):
        """Run the probe batch and write the chosen probe views at `step`."""
        targets = self.probe_targets if gradient_over_time else None
        traces, _ = probe(
            self.model, self.probe_inputs, targets, loss_fn=self.loss_fn, loss_at=self.loss_at
        )
        for trace in traces:
            if gradient_over_time:
                history = self.history.setdefault(trace.name, [])
                history.append(trace.gradient_norms)
                del history[: -self.history_rows]
                reference = self.reference.setdefault(trace.name, trace.gradient_norms)
                summaries.write_gradient_over_time(
                    trace, np.stack(history), reference, step, self.loss_at, self._describe
                )
            if gates:
                summaries.write_gates(trace, step, self._describe)
            if activations:
                summaries.write_activations(trace, step, self._describe)

    def _current_step(self):
        return training_step(self.model)


def default_callbacks(log_dir, probe_batch, **options):
    """The callbacks every rnnzoo recipe passes to `fit`: all views at default frequencies.

    Args:
        log_dir: The run's TensorBoard directory.
        probe_batch: `(inputs, targets)` of a fixed batch (e.g. the first
            validation batch); its first 16 sequences are probed.
        **options: Any `RecurrentTensorBoard` argument, e.g. `gates_every=0`.

    >>> callbacks = default_callbacks("runs/x/tensorboard", (inputs, targets))  # doctest: +SKIP
    >>> model.fit(dataset, callbacks=callbacks)                                # doctest: +SKIP
    """
    return [RecurrentTensorBoard(log_dir, probe_data=probe_batch, **options)]


def _probe_batch(probe_data, examples):
    """(inputs, targets) of at most `examples` sequences, from a tuple or a dataset."""
    if probe_data is None:
        return None, None
    if isinstance(probe_data, tf.data.Dataset):
        probe_data = next(iter(probe_data))
    if not isinstance(probe_data, (tuple, list)) or len(probe_data) not in (1, 2, 3):
        raise ValueError(
            "Expected probe_data=(inputs, targets) (or a tf.data.Dataset of such "
            f"batches), received {type(probe_data).__name__}."
        )
    inputs, targets = probe_data[0], probe_data[1] if len(probe_data) > 1 else None

    def head(value):
        return tf.nest.map_structure(lambda array: np.asarray(array)[:examples], value)

    return head(inputs), (None if targets is None else head(targets))


def _to_float(value):
    return float(keras.ops.convert_to_numpy(value))
