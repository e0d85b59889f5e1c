"""The shared epoch loop: exact resume mid-epoch, best checkpoints, NaN stop, time budget,
a stop on SIGTERM or Ctrl-C, the learning-rate warm-up."""

import os
import signal
import types

import keras
import numpy as np
import pytest

from rnnzoo.data import TextStreams
from rnnzoo.models import build_char_lm
from rnnzoo.training import checkpoints
from rnnzoo.training.distribute import Replicas
from rnnzoo.training.errors import NonFiniteLossError, RecipeError, StoppedBySignal
from rnnzoo.training.loop import Trainer, TrainerState
from rnnzoo.training.optimizers import Schedule
from rnnzoo.training.rundir import RunDirectory

VOCAB, BATCH, TIME, STEPS, EPOCHS = 13, 2, 5, 6, 2
IDS = np.random.default_rng(0).integers(0, VOCAB, 400)


def compiled(seed, lr=0.01):
    model = build_char_lm(
        VOCAB,
        units=6,
        num_layers=2,
        embedding_dim=4,
        dropout=0.2,
        batch_size=BATCH,
        stateful=True,
        seed=seed,
    )
    model.compile(
        keras.optimizers.Adam(lr, global_clipnorm=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    return model


def weight_loss(model):
    """A deterministic stand-in for a validation loss: any function of the weights will do."""
    return {"loss": float(sum(np.sum(w.astype(np.float64) ** 2) for w in model.get_weights()))}


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, trainer, global_step):
        super().__init__()
        self.trainer, self.global_step = trainer, global_step

    def on_train_batch_end(self, batch, logs=None):
        if self.trainer.state.global_step == self.global_step:
            raise Interrupt


def make_trainer(model, path, callbacks=(), **kwargs):
    streams = TextStreams(IDS, BATCH, TIME)
    run = RunDirectory(path)
    run.path.joinpath("checkpoints").mkdir(parents=True, exist_ok=True)
    options = dict(
        epochs=EPOCHS, evaluate=weight_loss, checkpoint_every=2, verbose=0, log=lambda line: None
    )
    options.update(kwargs)
    return Trainer(
        model,
        lambda epoch, start, stop: streams.arrays(start, stop),
        STEPS,
        BATCH,
        run,
        callbacks=callbacks,
        **options,
    )


def test_resumed_mid_epoch_equals_uninterrupted(tmp_path):
    keras.utils.set_random_seed(0)
    uninterrupted = make_trainer(compiled(seed=3), tmp_path / "a")
    state = uninterrupted.run()
    assert (state.epoch, state.step, state.global_step, len(state.history)) == (
        EPOCHS,
        0,
        EPOCHS * STEPS,
        2,
    )

    keras.utils.set_random_seed(0)
    interrupted = make_trainer(compiled(seed=3), tmp_path / "b")
    interrupted.callbacks.append(InterruptAt(interrupted, global_step=STEPS + 3))
    with pytest.raises(Interrupt):
        interrupted.run()
    last = checkpoints.load(interrupted.last_path)
    assert (last.state["epoch"], last.state["step"]) == (1, 2)  # mid-epoch: epoch 2, step 2 of 6

    assert_resumes_to(uninterrupted, last, tmp_path / "b")


def assert_resumes_to(uninterrupted, last, path, **kwargs):
    """A trainer resumed from checkpoint `last` in `path` reaches `uninterrupted`'s weights,
    losses and best epoch."""
    resumed = make_trainer(compiled(seed=99), path, **kwargs)  # other weights: all restored
    resumed.resume(last)
    resumed.run()
    for expected, actual in zip(uninterrupted.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    a, b = checkpoints.load(uninterrupted.last_path), checkpoints.load(resumed.last_path)
    assert [h["train_loss"] for h in a.state["history"]] == pytest.approx(
        [h["train_loss"] for h in b.state["history"]], abs=1e-6
    )
    assert a.state["best_epoch"] == b.state["best_epoch"]


class RecordRates(keras.callbacks.Callback):
    """The learning rate each training step ran at."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        rate = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        self.rates.append(float(rate))


def test_the_warm_up_sets_each_steps_rate_and_a_resume_continues_it(tmp_path):
    # 10 warm-up steps, longer than an epoch of 6: its last 4 ramp to epoch 2's decayed rate.
    config = types.SimpleNamespace(lr=0.01, lr_decay=0.5, lr_decay_after=1, lr_warmup_steps=10)
    schedule = Schedule(config)
    expected = [0.01 * (step + 1) / 10 for step in range(6)]
    expected += [0.005 * (step + 1) / 10 for step in range(6, 10)] + [0.005, 0.005]
    keras.utils.set_random_seed(0)
    whole = RecordRates()
    uninterrupted = make_trainer(compiled(seed=3), tmp_path / "a", [whole], learning_rate=schedule)
    uninterrupted.run()
    assert whole.rates == pytest.approx(expected, rel=1e-6)
    # Without a warm-up: the decay alone, one rate an epoch.
    plain = RecordRates()
    config_without = types.SimpleNamespace(**{**vars(config), "lr_warmup_steps": 0})
    make_trainer(
        compiled(seed=3), tmp_path / "c", [plain], learning_rate=Schedule(config_without)
    ).run()
    assert plain.rates == pytest.approx([0.01] * 6 + [0.005] * 6, rel=1e-6)

    keras.utils.set_random_seed(0)
    interrupted = make_trainer(compiled(seed=3), tmp_path / "b", learning_rate=schedule)
    interrupted.callbacks.append(InterruptAt(interrupted, global_step=5))
    with pytest.raises(Interrupt):
        interrupted.run()
    last = checkpoints.load(interrupted.last_path)
    assert last.state["global_step"] == 4  # mid-warm-up
    resumed = RecordRates()
    assert_resumes_to(
        uninterrupted, last, tmp_path / "b", callbacks=[resumed], learning_rate=schedule
    )
    assert resumed.rates == pytest.approx(expected[4:], rel=1e-6)


@pytest.mark.parametrize("prepared, traces", [(True, 1), (False, 2)])
def test_a_prepared_model_traces_its_train_step_once(prepared, traces, tmp_path):
    """`Replicas.prepare_model` makes the optimizer's variables before `fit`: Keras's `fit`
    on one device would make them while tracing the train step, then trace it again."""
    model = compiled(seed=3)
    if prepared:
        Replicas().prepare_model(model)
    calls = []
    train_step = model.train_step

    def counting_train_step(data):
        calls.append(1)  # runs once per trace, not per step
        return train_step(data)

    model.train_step = counting_train_step
    make_trainer(model, tmp_path, epochs=1).run()
    assert len(calls) == traces


def test_best_checkpoint_follows_the_lowest_validation_loss(tmp_path):
    losses = iter([3.0, 2.0, 2.5])
    trainer = make_trainer(
        compiled(seed=1), tmp_path, epochs=3, evaluate=lambda m: {"loss": next(losses)}
    )
    state = trainer.run()
    assert (state.best_score, state.best_epoch) == (2.0, 2)
    best = checkpoints.load(trainer.best_path)
    assert best.state["history"][-1]["epoch"] == 2
    assert [h["validation_loss"] for h in state.history] == [3.0, 2.0, 2.5]


def test_best_checkpoint_can_follow_another_figure(tmp_path):
    figures = iter(
        [{"loss": 3.0, "error": 0.5}, {"loss": 2.0, "error": 0.4}, {"loss": 2.5, "error": 0.3}]
    )
    trainer = make_trainer(
        compiled(seed=1), tmp_path, epochs=3, evaluate=lambda m: next(figures), monitor="error"
    )
    state = trainer.run()
    assert (state.monitor, state.best_score, state.best_epoch) == ("error", 0.3, 3)  # not 2


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    lines = []
    trainer = make_trainer(
        compiled(seed=1, lr=1e38), tmp_path, checkpoint_every=1, log=lines.append
    )
    with pytest.raises(
        NonFiniteLossError, match=r"loss became nan at epoch 1, step \d/6.*last good checkpoint"
    ):
        trainer.run()
    kept = checkpoints.load(trainer.last_path)
    assert kept.all_finite() and kept.state["step"] >= 1
    assert not trainer.best_path.exists()


def test_wall_clock_budget_stops_mid_epoch_and_saves(tmp_path):
    trainer = make_trainer(compiled(seed=1), tmp_path, max_minutes=1e-9)
    state = trainer.run()
    assert state.budget_exhausted and state.finished
    assert (state.epoch, state.step) == (0, 1)
    assert len(state.history) == 1 and state.history[0]["steps"] == 1
    assert checkpoints.load(trainer.last_path).state["step"] == 1


class SignalAt(keras.callbacks.Callback):
    """Send this process `signals` at the end of its `global_step`, as a scheduler or a
    Ctrl-C would (Python runs the handler right after `os.kill` returns)."""

    def __init__(self, trainer, global_step, *signals):
        super().__init__()
        self.trainer, self.global_step, self.signals = trainer, global_step, signals

    def on_train_batch_end(self, batch, logs=None):
        if self.trainer.state.global_step == self.global_step:
            for number in self.signals:
                os.kill(os.getpid(), number)


@pytest.fixture
def handlers():
    """The process's SIGTERM and SIGINT handlers, checked unchanged after the test: Python's
    own for SIGINT (KeyboardInterrupt), as in a terminal; a test run in the background
    (nohup, `&` in a script) would inherit SIGINT ignored, which the trainer leaves alone."""
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT)}
    yield before
    after = {n: signal.getsignal(n) for n in before}
    for number, handler in before.items():
        signal.signal(number, handler)
    signal.signal(signal.SIGINT, outside)
    assert after == before, "the trainer did not put the signal handlers back"


def test_sigterm_stops_at_the_steps_end_saved_and_resume_equals_uninterrupted(
    tmp_path, handlers, capfd
):
    keras.utils.set_random_seed(0)
    uninterrupted = make_trainer(compiled(seed=3), tmp_path / "a", checkpoint_every=0)
    uninterrupted.run()

    keras.utils.set_random_seed(0)
    stopped = make_trainer(compiled(seed=3), tmp_path / "b", checkpoint_every=0)
    stopped.callbacks.append(SignalAt(stopped, STEPS + 2, signal.SIGTERM))
    with pytest.raises(StoppedBySignal) as raised:
        stopped.run()
    # The signal came during step 2's callbacks; step 3 of epoch 2 ran to its end, then the
    # trainer saved there (no periodic checkpoints: checkpoint_every=0).
    assert raised.value.status == 128 + signal.SIGTERM
    assert str(raised.value) == (
        f"stopped by SIGTERM at epoch 2, step 3/{STEPS}; saved {stopped.last_path}: "
        f"continue with --resume --run-dir {tmp_path / 'b'}."
    )
    assert (
        "SIGTERM: stopping at the end of this step to save a checkpoint" in capfd.readouterr().err
    )
    last = checkpoints.load(stopped.last_path)
    assert (last.state["epoch"], last.state["step"], last.state["finished"]) == (1, 3, False)
    assert len(last.state["history"]) == 1  # no evaluation of the part-epoch

    assert_resumes_to(uninterrupted, last, tmp_path / "b", checkpoint_every=0)


def test_a_finished_run_given_more_epochs_and_stopped_says_where_it_stopped(tmp_path, handlers):
    # A run that finished its epochs, resumed with more (`--resume --epochs N`), then stopped
    # by SIGTERM mid-epoch: it stopped inside the new epochs, not "after its last epoch".
    finished = make_trainer(compiled(seed=1), tmp_path, checkpoint_every=0)
    finished.run()
    longer = make_trainer(compiled(seed=2), tmp_path, checkpoint_every=0, epochs=EPOCHS + 1)
    longer.resume(checkpoints.load(finished.last_path))
    longer.callbacks.append(SignalAt(longer, EPOCHS * STEPS + 2, signal.SIGTERM))
    with pytest.raises(StoppedBySignal) as raised:
        longer.run()
    assert str(raised.value) == (
        f"stopped by SIGTERM at epoch {EPOCHS + 1}, step 3/{STEPS}; saved {longer.last_path}: "
        f"continue with --resume --run-dir {tmp_path}."
    )
    last = checkpoints.load(longer.last_path)
    assert (last.state["epoch"], last.state["step"], last.state["finished"]) == (EPOCHS, 3, False)


def test_a_signal_during_evaluation_stops_after_the_epochs_checkpoint(tmp_path, handlers):
    def evaluate(model):
        os.kill(os.getpid(), signal.SIGINT)  # one Ctrl-C
        return weight_loss(model)

    trainer = make_trainer(compiled(seed=1), tmp_path, evaluate=evaluate)
    with pytest.raises(StoppedBySignal, match=r"^stopped by SIGINT at the end of epoch 1; saved"):
        trainer.run()
    last = checkpoints.load(trainer.last_path)
    assert (last.state["epoch"], last.state["step"], len(last.state["history"])) == (1, 0, 1)


def test_a_second_signal_stops_at_once(tmp_path, handlers):
    trainer = make_trainer(compiled(seed=1), tmp_path, checkpoint_every=2)
    trainer.callbacks.append(SignalAt(trainer, 2, signal.SIGINT, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert checkpoints.load(trainer.last_path).state["step"] == 2  # the periodic one, kept


def test_an_ignored_sigint_stays_ignored(tmp_path, handlers):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a script's background job
    try:
        trainer = make_trainer(compiled(seed=1), tmp_path)
        trainer.callbacks.append(SignalAt(trainer, 2, signal.SIGINT))
        state = trainer.run()
        assert state.finished and state.global_step == EPOCHS * STEPS
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, handlers[signal.SIGINT])


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"epoch": "3"}, "`epoch` must be int, received '3'"),
        ({"finished": 1}, "`finished` must be bool, received 1"),
        ({"step": True}, "`step` must be int, received True"),
        ({"history": [1, 2]}, "`history` must be a list of objects"),
        ({"best_loss": 2.0}, "has unknown keys ['best_loss']"),
    ],
)
def test_a_checkpoint_state_of_the_wrong_structure_is_an_error_naming_the_file(change, fragment):
    value = {**TrainerState().to_json(), **change}
    with pytest.raises(RecipeError, match="last.ckpt: state.json") as caught:
        TrainerState.from_json(value, source="runs/x/checkpoints/last.ckpt")
    assert fragment in str(caught.value)
    without_epoch = {k: v for k, v in TrainerState().to_json().items() if k != "epoch"}
    with pytest.raises(RecipeError, match=r"lacks \['epoch'\]"):
        TrainerState.from_json(without_epoch)
    good = TrainerState(best_score=1, best_epoch=2).to_json()  # an int where a float goes: fine
    assert TrainerState.from_json(good).best_score == 1
