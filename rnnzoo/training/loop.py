"""The epoch loop every recipe shares: `model.fit` per epoch, evaluation, checkpoints, resume.

One epoch is one `model.fit` call over that epoch's batches, in order
(`shuffle=False`), with Keras's progress bar and any Keras callbacks the
recipe adds (TensorBoard views, ...). Around it the `Trainer`

- zeroes the carried states of stateful recurrent layers when an epoch
  starts (truncated BPTT carries state *within* an epoch);
- saves `checkpoints/last.ckpt` every `checkpoint_every` steps and at the end
  of each epoch: weights, optimizer variables, random-generator states, the
  carried states and the trainer state (epoch, step in epoch, best score, ...);
- evaluates at the end of each epoch with the recipe's `evaluate(model)`, and
  keeps `checkpoints/best.ckpt` at the lowest validation loss (or the figure
  named by `monitor`);
- stops with `NonFiniteLossError` on a NaN or infinite loss, keeping the last
  good checkpoint; stops early when the wall-clock budget is spent;
- on SIGTERM or a first Ctrl-C, finishes the step in progress, saves
  `last.ckpt` there and stops with `StoppedBySignal` (on one machine; a
  multi-worker job's workers keep the signals' default, and `--resume` of
  every worker continues from the last periodic checkpoint);
- resumes exactly: restoring a checkpoint and continuing gives the weights an
  uninterrupted run reaches (same data order, same carried states, same
  dropout masks);
- under a `tf.distribute` strategy (`replicas`, `rnnzoo.training.distribute`)
  runs `fit` in the strategy's scope on the batches cut per replica, gathers
  every replica's carried states into its checkpoints and gives them back on
  resume, and writes (checkpoints, reports to TensorBoard, `on_epoch_end`)
  only where its run directory `writes` (the chief).
"""

import contextlib
import dataclasses

import keras

from rnnzoo.training import checkpoints
from rnnzoo.training.callbacks import (
    EpochProgress,
    StopOnNonFiniteLoss,
    StopOnSignal,
    WallClockBudget,
    is_finite,
    non_finite_loss_error,
)
from rnnzoo.training.distribute import Replicas
from rnnzoo.training.errors import RecipeError, StoppedBySignal


@dataclasses.dataclass
class TrainerState:
    """Where a run stands; saved in every checkpoint as state.json."""

    epoch: int = 0  # the epoch in progress, counted from 0
    step: int = 0  # steps done within `epoch`
    global_step: int = 0  # steps done in the whole run
    epoch_loss_sum: float = 0.0  # sum of the batch losses of `epoch` so far
    monitor: str = "loss"  # the validation figure that picks best.ckpt (lower is better)
    best_score: float = None  # its best value so far, or None before the first evaluation
    best_epoch: int = None  # the epoch (from 1) that reached it
    seconds: float = 0.0  # training time spent, across resumes
    finished: bool = False
    budget_exhausted: bool = False
    history: list = dataclasses.field(default_factory=list)  # one dict per evaluation
    fingerprint: str = ""  # identifies the data; a resume on other data is refused
    config: dict = dataclasses.field(default_factory=dict)  # config.toml's values at the start
    vocabulary_checksum: str = ""  # of vocabulary.json's content ("" where there is none)

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value, source="state.json"):
        """The state in `value` (a checkpoint's state.json), every field checked: a missing,
        unknown or mistyped one is a `RecipeError` naming `source`."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        problem = None
        if not isinstance(value, dict):
            problem = f"holds {type(value).__name__}, not an object"
        elif sorted(value) != sorted(fields):
            missing, unknown = sorted(set(fields) - set(value)), sorted(set(value) - set(fields))
            problem = f"lacks {missing}" if missing else f"has unknown keys {unknown}"
        else:
            for name, field in fields.items():
                if not _has_type(value[name], field):
                    problem = (
                        f"`{name}` must be {field.type.__name__}, received {value[name]!r:.60}"
                    )
                    break
            else:
                if not all(isinstance(record, dict) for record in value["history"]):
                    problem = "`history` must be a list of objects"
        if problem is not None:
            raise RecipeError(
                f"{source}: state.json {problem}; the checkpoint is damaged or was not written "
                "by this rnnzoo: use the run's other checkpoint (--checkpoint best or last)."
            )
        return cls(**value)


def _has_type(item, field):
    if item is None:
        return field.default is None
    if isinstance(item, bool) != (field.type is bool):
        return False
    return isinstance(item, (int, float) if field.type is float else field.type)


class Trainer:
    """Train `model` (already compiled) for `epochs` epochs of `steps_per_epoch` batches.

    Args:
        model: A compiled Keras model (its `optimizer` is checkpointed).
        epoch_arrays: `epoch_arrays(epoch, start, stop) -> (x, y)`, the batches
            `start .. stop - 1` of `epoch` stacked in order (see
            `rnnzoo.data.TextStreams.arrays`).
        steps_per_epoch: Batches per epoch.
        batch_size: Rows per batch.
        run_directory: A `rnnzoo.training.rundir.RunDirectory`.
        epochs: Total epochs of the run.
        evaluate: `evaluate(model) -> {"loss": ..., ...}` on the validation
            data.
        monitor: The figure of `evaluate`'s dict that picks the best
            checkpoint, lower being better (default "loss").
        checkpoint_every: Save `last.ckpt` every this many steps within an
            epoch (0: only at epoch ends).
        learning_rate: Optional `rnnzoo.training.optimizers.Schedule`, set at
            each epoch start, and at each step of its warm-up.
        max_minutes: Wall-clock budget of the training (0: none).
        derived: Optional `derived(loss) -> {name: value}`, extra figures
            reported beside every loss (bits per character, ...).
        callbacks: More Keras callbacks for `fit`.
        summaries: Optional `rnnzoo.training.summaries.Summaries`.
        log_every: Write the batch loss to TensorBoard every this many steps.
        on_epoch_end: Optional `on_epoch_end(trainer, record)` after each
            evaluation (a recipe logs a sample there); the chief's only.
        verbose: Keras's `verbose` for `fit` (1: progress bar).
        log: Where the one-line epoch reports go (default `print`).
        replicas: The `rnnzoo.training.distribute.Replicas` the model was built
            for (default one device).
    """

    def __init__(
        self,
        model,
        epoch_arrays,
        steps_per_epoch,
        batch_size,
        run_directory,
        *,
        epochs,
        evaluate,
        checkpoint_every=0,
        learning_rate=None,
        max_minutes=0.0,
        derived=None,
        callbacks=(),
        summaries=None,
        log_every=0,
        on_epoch_end=None,
        verbose=1,
        log=print,
        monitor="loss",
        replicas=None,
    ):
        self.model = model
        self.replicas = replicas or Replicas()
        self.monitor = monitor
        self.epoch_arrays = epoch_arrays
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.run_directory = run_directory
        self.epochs = epochs
        self.evaluate = evaluate
        self.checkpoint_every = checkpoint_every
        self.learning_rate = learning_rate
        self.max_minutes = max_minutes
        self.derived = derived or (lambda loss: {})
        self.callbacks = list(callbacks)
        self.summaries = summaries
        self.log_every = log_every
        self.on_epoch_end = on_epoch_end
        self.verbose = verbose
        self.log = log
        self.state = TrainerState(monitor=monitor)

    # ------------------------------------------------------------ checkpoints
    @property
    def last_path(self):
        return self.run_directory.checkpoint_path("last")

    @property
    def best_path(self):
        return self.run_directory.checkpoint_path("best")

    def checkpoint(self):
        """A `Checkpoint` of the model, optimizer, carried states and trainer state now (every
        worker of a multi-worker job takes it: it gathers their carried states)."""
        return checkpoints.capture(
            self.model,
            self.state.to_json(),
            optimizer=self.model.optimizer,
            replicas=self.replicas,
        )

    def save(self, best=False):
        """Write `last.ckpt` (and first `best.ckpt` when `best`), each atomically. Killed
        between the two, the run has a best.ckpt newer than its last.ckpt, which `--resume`
        then continues from; the other order would leave a last.ckpt naming a best epoch
        whose weights best.ckpt does not hold."""
        snapshot = self.checkpoint()
        if not self.run_directory.writes:
            return
        if best:
            checkpoints.save(snapshot, self.best_path)
        checkpoints.save(snapshot, self.last_path)

    def resume(self, checkpoint):
        """Continue from `checkpoint`: restore model, optimizer, carried states and state."""
        state = TrainerState.from_json(checkpoint.state, source=checkpoint.path or "checkpoint")
        checkpoints.restore(
            checkpoint, self.model, optimizer=self.model.optimizer, replicas=self.replicas
        )
        self.state = state

    # ------------------------------------------------------------------ loop
    def run(self):
        """Train until `epochs` are done (or the budget is spent); return the `TrainerState`.
        SIGTERM or Ctrl-C stops it at a step's end, saved: `StoppedBySignal`."""
        state = self.state
        state.finished = False  # until the loop ends (a finished run resumed with more epochs)
        budget = WallClockBudget(
            self.max_minutes, already_spent=state.seconds, agree=self.replicas.stop_agreed
        )
        progress = EpochProgress(self.epochs)
        signals = StopOnSignal()
        # A multi-worker job's workers must stop at the same step; they keep the defaults.
        with contextlib.nullcontext() if self.replicas.multi_worker else signals:
            self._run_epochs(budget, progress, signals)
            state.finished = True
            self.save()
            if self.summaries is not None:
                self.summaries.flush()
            self._stop_if_signalled(signals)
        return state

    def _run_epochs(self, budget, progress, signals):
        state = self.state
        while state.epoch < self.epochs and not state.budget_exhausted:
            epoch = state.epoch
            if state.step == 0:
                checkpoints.reset_carried_states(self.model)
                state.epoch_loss_sum = 0.0
            if self.learning_rate is not None:
                self.model.optimizer.learning_rate = self.learning_rate(epoch, state.global_step)
            inputs, targets = self.epoch_arrays(epoch, state.step, self.steps_per_epoch)
            guard = StopOnNonFiniteLoss(
                describe=lambda batch, start=state.step, epoch=epoch: (
                    f"epoch {epoch + 1}, step {start + batch + 1}/{self.steps_per_epoch}"
                ),
                keep=self.last_path,
            )
            bookkeeping = _BatchBookkeeping(self, budget)
            with self.replicas.scope():
                self.model.fit(
                    **self.replicas.fit_data(inputs, targets, self.batch_size),
                    epochs=epoch + 1,
                    initial_epoch=epoch,
                    shuffle=False,
                    verbose=self.verbose,
                    callbacks=[guard, bookkeeping, budget, signals, progress, *self.callbacks],
                )
            state.seconds = budget.spent()
            if state.step < self.steps_per_epoch:
                self._stop_if_signalled(signals, save=True)
            if budget.exhausted or state.step < self.steps_per_epoch:
                # The budget ran out, or another callback set `model.stop_training`.
                state.budget_exhausted = True
                reason = (
                    f"the {self.max_minutes:g}-minute budget is spent"
                    if budget.exhausted
                    else "a callback stopped training"
                )
                self.log(f"stopping at epoch {epoch + 1}, step {state.step}: {reason}.")
            self._end_epoch()  # which saves
            self._stop_if_signalled(signals)

    def _stop_if_signalled(self, signals, save=False):
        """Raise `StoppedBySignal` if a signal came (saving the checkpoint first if `save`)."""
        if signals.received is None:
            return
        if save:
            self.save()
        state, run_dir = self.state, self.run_directory.path
        then = f"continue with --resume --run-dir {run_dir}"
        if state.finished:
            where, then = "after its last epoch", f"--resume --run-dir {run_dir} writes its results"
        elif state.step == 0:
            where = f"at the end of epoch {state.epoch}"
        else:
            where = f"at epoch {state.epoch + 1}, step {state.step}/{self.steps_per_epoch}"
        raise StoppedBySignal(
            f"stopped by {signals.name} {where}; saved {self.last_path}: {then}.",
            signals.received,
        )

    def _end_epoch(self):
        state = self.state
        epoch, steps = state.epoch, state.step
        train_loss = state.epoch_loss_sum / max(steps, 1)
        validation = dict(self.evaluate(self.model))
        where = f"the end of epoch {epoch + 1}"
        for name, value in (("training", train_loss), ("validation", validation["loss"])):
            if not is_finite(value):
                raise non_finite_loss_error(name, value, where, self.last_path)
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        record = {
            "epoch": epoch + 1,
            "steps": steps,
            "global_step": state.global_step,
            "learning_rate": learning_rate,
            "seconds": round(state.seconds, 3),
            "train_loss": train_loss,
            **{f"train_{k}": v for k, v in self.derived(train_loss).items()},
            **{f"validation_{k}": v for k, v in validation.items()},
            **{f"validation_{k}": v for k, v in self.derived(validation["loss"]).items()},
        }
        score = validation[self.monitor]
        improved = state.best_score is None or score < state.best_score
        if improved:
            state.best_score, state.best_epoch = float(score), epoch + 1
        state.history.append(record)
        if steps >= self.steps_per_epoch:
            state.epoch, state.step, state.epoch_loss_sum = epoch + 1, 0, 0.0
        self.save(best=improved)
        self.log(self.report(record, improved))
        if self.summaries is not None:
            train = {"loss": train_loss, "learning_rate": learning_rate}
            train.update(self.derived(train_loss))
            valid = {**validation, **self.derived(validation["loss"])}
            self.summaries.scalars("train", state.global_step, train)
            self.summaries.scalars("validation", state.global_step, valid)
        if self.on_epoch_end is not None and self.run_directory.writes:
            self.on_epoch_end(self, record)

    def report(self, record, improved):
        """One line per epoch: losses in the recipe's units, marked when best so far."""

        def figures(prefix):
            names = [k for k in record if k.startswith(prefix)]
            return ", ".join(f"{k[len(prefix) :]} {record[k]:.4f}" for k in names)

        partial = cut_short(record, self.steps_per_epoch)
        mark = "  [best]" if improved else ""
        return (
            f"epoch {record['epoch']}/{self.epochs}{partial}: train {figures('train_')} | "
            f"validation {figures('validation_')} | lr {record['learning_rate']:.3g}{mark}"
        )


def cut_short(record, steps_per_epoch):
    """The mark of an epoch a budget or a signal cut short, e.g. " (195 of 255 steps)", or ""."""
    steps = record["steps"]
    return "" if steps >= steps_per_epoch else f" ({steps} of {steps_per_epoch} steps)"


class _BatchBookkeeping(keras.callbacks.Callback):
    """Per-batch work of one `fit` call: count steps, sum losses, save checkpoints, log, and
    the learning rate of each warm-up step.

    Keras reports the running mean of the loss over the batches of this `fit`
    call, so the sum of its batch losses is that mean times the batch count.
    """

    def __init__(self, trainer, budget):
        super().__init__()
        self.trainer = trainer
        self.budget = budget
        state = trainer.state
        self.start_step = state.step
        self.start_global = state.global_step
        self.start_sum = state.epoch_loss_sum
        self.previous_sum = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        schedule, iteration = self.trainer.learning_rate, self.start_global + batch
        if schedule is not None and iteration <= schedule.warmup_steps:  # and the step after
            rate = schedule(self.trainer.state.epoch, iteration)
            self.trainer.model.optimizer.learning_rate = rate

    def on_train_batch_end(self, batch, logs=None):
        trainer, state = self.trainer, self.trainer.state
        done = batch + 1
        running_sum = float(logs["loss"]) * done
        batch_loss = running_sum - self.previous_sum
        self.previous_sum = running_sum
        state.step = self.start_step + done
        state.global_step = self.start_global + done
        state.epoch_loss_sum = self.start_sum + running_sum
        if (
            trainer.summaries is not None
            and trainer.log_every
            and state.global_step % trainer.log_every == 0
        ):
            trainer.summaries.scalars("train", state.global_step, {"batch_loss": batch_loss})
        if (
            trainer.checkpoint_every
            and state.step % trainer.checkpoint_every == 0
            and state.step < trainer.steps_per_epoch
        ):
            state.seconds = self.budget.spent()
            trainer.save()
