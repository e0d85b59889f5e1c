"""Keras callbacks every recipe's training loop uses."""

import math
import signal
import sys
import threading
import time
from pathlib import Path

import keras

from rnnzoo.training.errors import NonFiniteLossError


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, headed "Epoch e/E" with E the run's total epochs.

    The trainers call `fit` once per epoch (`initial_epoch=e, epochs=e+1`), so
    Keras alone would print "Epoch e+1/e+1".
    """

    def __init__(self, total_epochs):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.total_epochs})


def is_finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise `NonFiniteLossError` as soon as the training loss is NaN or infinite.

    Put it before any callback that saves checkpoints, so nothing is written
    after the loss diverged. `describe(batch)` says where the run stands
    (epoch, step) and `keep` is the path of the checkpoint that is kept.
    """

    def __init__(self, describe=lambda batch: f"batch {batch + 1}", keep=None):
        super().__init__()
        self.describe = describe
        self.keep = keep

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not is_finite(loss):
            # Within the first two updates it may be the gradient itself that is not finite.
            first = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) <= 2
            raise non_finite_loss_error(
                "training", loss, self.describe(batch), self.keep, first_updates=first
            )


def non_finite_loss_error(name, value, where, checkpoint=None, first_updates=False):
    """The `NonFiniteLossError` for a `name` loss that became `value` at `where`
    (`first_updates`: within the run's first two updates)."""
    kept = (
        f"the last good checkpoint {checkpoint} is kept"
        if checkpoint is not None and Path(checkpoint).exists()
        else "no checkpoint was written"
    )
    advice = "Lower --lr or clip gradients (--clip-norm, --clip-value)."
    if first_updates:
        advice += (
            " If it stops this early at any rate, the first gradients themselves overflow on "
            "this data, which neither fixes (e.g. layernorm_lstm over a long run of zero "
            "inputs): try another --cell or, for a layer-normalised cell, a larger epsilon "
            "(--cell-args 'norm_epsilon = 1.0')."
        )
    return NonFiniteLossError(
        f"the {name} loss became {float(value)} at {where}; training stopped and {kept}. {advice}"
    )


class WallClockBudget(keras.callbacks.Callback):
    """Stop training (`model.stop_training`) once `minutes` have passed; 0 means no limit.

    `already_spent` seconds (from before a resume) count against the budget. `agree(stop)`
    turns this process's wish into the job's decision (the workers of a multi-worker job
    must stop at the same step: `rnnzoo.training.distribute.Replicas.stop_agreed`).
    """

    def __init__(self, minutes, already_spent=0.0, agree=None):
        super().__init__()
        self.minutes = minutes
        self.already_spent = already_spent
        self.agree = agree
        self.started = time.monotonic()
        self.exhausted = False

    def spent(self):
        return self.already_spent + time.monotonic() - self.started

    def on_train_batch_end(self, batch, logs=None):
        if self.minutes <= 0:
            return
        stop = self.spent() >= 60.0 * self.minutes
        if self.agree is not None:
            stop = self.agree(stop)
        if stop:
            self.exhausted = True
            self.model.stop_training = True


class StopOnSignal(keras.callbacks.Callback):
    """Stop training at the end of the step in progress when SIGTERM or SIGINT (Ctrl-C)
    arrives, so that the trainer saves a checkpoint there; a second signal stops at once
    (KeyboardInterrupt).

    A scheduler's SIGTERM (preemption, `kill`, `timeout`) and a first Ctrl-C thus lose no
    steps: `--resume` continues from the step they stopped at. As a context manager it sets
    its handlers for the `with` block and puts the previous ones back. It leaves a signal
    alone that the process ignores (a background job of a script ignores SIGINT), and does
    nothing outside the main thread, where Python can't set handlers.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        super().__init__()
        self.received = None  # the first signal's number
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                if signal.getsignal(number) is not signal.SIG_IGN:
                    self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        for number, handler in self.previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self.previous = {}

    @property
    def name(self):
        """The received signal's name ("SIGTERM"), or None."""
        return None if self.received is None else signal.Signals(self.received).name

    def _handle(self, number, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = number
        again = "Ctrl-C again" if number == signal.SIGINT else f"{self.name} again"
        if sys.stdout.isatty():
            print(flush=True)  # end a progress bar's line first
        print(
            f"{self.name}: stopping at the end of this step to save a checkpoint ({again} "
            "stops at once)",
            file=sys.stderr,
            flush=True,
        )

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.model.stop_training = True
