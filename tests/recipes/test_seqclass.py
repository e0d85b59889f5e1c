"""The seqclass recipe end to end, on data the tests make.

Every task, compare, resume, bad inputs.
"""

import csv
import dataclasses
import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from cli_checks import (
    assert_every_cell_trained,
    assert_one_line_error,
    main_runner,
    one_cell_of_each_kind,
    results_of,
    tags_in,
)
from processes import REPO_ROOT, keras_file_outputs, subprocess_env

from rnnzoo.data.labelled_text import TokenVocabulary
from rnnzoo.recipes import seqclass
from rnnzoo.training import checkpoints, cli, runner
from rnnzoo.training import config as config_io

RECIPES = REPO_ROOT / "recipes"
DEFAULTS_FILE = RECIPES / "seqclass.toml"
# A tiny model, a few steps, no histograms: seconds per run.
TINY = [
    "--units",
    "4",
    "--batch-size",
    "4",
    "--epochs",
    "1",
    "--histograms-every",
    "0",
    "--probe-every",
    "0",
    "--quiet",
]
TINY_ADDING = [
    "--task",
    "adding",
    "--length",
    "10",
    "--adding-train-size",
    "32",
    "--adding-eval-size",
    "8",
]
HAM_WORDS = [
    "ok",
    "see",
    "you",
    "at",
    "home",
    "later",
    "call",
    "me",
    "when",
    "free",
    "thanks",
    "lunch",
    "today",
]
SPAM_WORDS = [
    "win",
    "free",
    "prize",
    "cash",
    "claim",
    "now",
    "txt",
    "award",
    "urgent",
    "reply",
    "stop",
]


run_main = main_runner(seqclass.main)


@pytest.fixture(scope="module")
def sms_tsv(tmp_path_factory):
    """30 lines of `label<TAB>text`: ham and spam messages from two word lists."""
    rng = np.random.default_rng(0)
    lines = []
    for index in range(30):
        label, words = ("spam", SPAM_WORDS) if index % 3 == 0 else ("ham", HAM_WORDS)
        lines.append(f"{label}\t{' '.join(rng.choice(words, size=rng.integers(2, 9)))}")
    path = tmp_path_factory.mktemp("text") / "sms.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------- config files
def test_defaults_file_equals_the_dataclass_and_every_value_has_a_reason():
    defaults = config_io.load(seqclass.SeqClassConfig, DEFAULTS_FILE)
    assert defaults == seqclass.SeqClassConfig()
    names = [field.name for field in dataclasses.fields(seqclass.SeqClassConfig)]
    files = sorted(RECIPES.glob("seqclass*.toml"))
    assert set(seqclass.TASK_FILES) == set(seqclass.TASKS)  # every task declares its file
    tasks = {RECIPES / name for name in seqclass.TASK_FILES.values()}
    assert tasks | {DEFAULTS_FILE} <= set(files)
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        keys = [line.split("=")[0].strip() for line in lines if "=" in line and line[0] != "#"]
        assert set(keys) <= set(names), path
        if path == DEFAULTS_FILE:
            assert keys == names  # every key, in the dataclass's order
        elif path in tasks:
            assert seqclass.TASK_FILES[config_io.read_toml(path)["task"]] == path.name
        else:  # a config loaded by name (--config seqclass_pixel_mnist_lstm_long): its task's
            task = config_io.read_toml(path)["task"]  # file applies below it
            config = seqclass.RECIPE.resolve_config(path.stem)
            assert config.task == task and config.validate() is None
        for index, line in enumerate(lines):
            if "=" in line and line[0] != "#":
                assert lines[index - 1].startswith("# "), f"{path.name}: no reason above {line!r}"


def test_the_long_pixel_mnist_runs_stop_after_passes_not_minutes():
    for task in ("pixel_mnist", "permuted_pixel_mnist"):
        for cell in ("irnn", "lstm"):
            config = seqclass.RECIPE.resolve_config(f"seqclass_{task}_{cell}_long")
            assert (config.task, config.cell) == (task.replace("_", "-"), cell)
            assert (config.max_minutes, config.steps_per_epoch) == (0.0, 0)
            assert config.epochs >= 40
            if (task, cell) != ("pixel_mnist", "lstm"):
                assert config.batch_size == 128  # the task file's batch


def test_the_long_pixel_mnist_lstm_takes_small_batches_and_chrono_forget_biases():
    """At batch 128 the unpermuted LSTM never left its plateau; batch 32 with chrono
    initialisation over the sequence's 784 steps did (the config's reasons)."""
    config = seqclass.RECIPE.resolve_config("seqclass_pixel_mnist_lstm_long")
    task_batch = config_io.read_toml(RECIPES / "seqclass_pixel_mnist.toml")["batch_size"]
    assert (config.batch_size, task_batch, config.chrono_timescale) == (32, 128, 784.0)
    permuted = seqclass.RECIPE.resolve_config("seqclass_permuted_pixel_mnist_lstm_long")
    assert (permuted.batch_size, permuted.chrono_timescale) == (128, 0.0)


def test_the_long_pixel_mnist_lstm_steps_at_half_the_short_runs_rate():
    """At the short runs' Adam 1e-3 the long pixel-MNIST LSTM diverged in its second pass;
    its config halves the rate (the permuted task's LSTM learned at 1e-3 and keeps it)."""
    short = seqclass.RECIPE.resolve_config(overrides={"task": "pixel-mnist", "cell": "lstm"})
    long = seqclass.RECIPE.resolve_config("seqclass_pixel_mnist_lstm_long")
    permuted = seqclass.RECIPE.resolve_config("seqclass_permuted_pixel_mnist_lstm_long")
    assert (short.lr, long.lr, permuted.lr) == (1e-3, 5e-4, 1e-3)


def test_the_long_pixel_mnist_lstm_decays_its_rate_after_18_passes():
    """At the constant rate the batch-32 run flattened near 88% in passes 15-18; decaying
    the rate by 0.9 a pass from then on took it past 93% (the config's reason)."""
    config = seqclass.RECIPE.resolve_config("seqclass_pixel_mnist_lstm_long")
    default = seqclass.SeqClassConfig()
    assert (default.lr_decay, config.lr_decay, config.lr_decay_after) == (1.0, 0.9, 18)
    permuted = seqclass.RECIPE.resolve_config("seqclass_permuted_pixel_mnist_lstm_long")
    assert permuted.lr_decay == 1.0


def test_the_task_picks_its_defaults_file_below_config_files_and_flags(tmp_path):
    resolve = seqclass.RECIPE.resolve_config
    row = resolve(overrides={"task": "row-mnist"})
    file_values = config_io.read_toml(RECIPES / "seqclass_row_mnist.toml")
    assert all(getattr(row, key) == value for key, value in file_values.items())
    assert row.batch_size != seqclass.SeqClassConfig().batch_size
    assert resolve(overrides={"task": "row-mnist", "batch_size": 7}).batch_size == 7
    mine = tmp_path / "mine.toml"
    mine.write_text('task = "text"\ndata = "x.tsv"\nunits = 5\n', encoding="utf-8")
    config = resolve(mine)
    assert (config.task, config.units) == ("text", 5)  # the file beats the task's defaults...
    text_defaults = config_io.read_toml(RECIPES / "seqclass_text.toml")
    assert config.dropout == text_defaults["dropout"]  # ...which apply


# ----------------------------------------------------------------------------- tasks
def test_adding_run_reports_and_fills_the_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "adding"
    flags = ["--epochs", "2", "--probe-every", "3", "--cell", "gru", "--run-dir", run_dir]
    status, out, err = run_main([*TINY_ADDING, *TINY, *flags], capsys)
    assert status == 0, err[-3000:]
    assert (
        "data: adding(T=10): 32 / 8 / 8 sequences (train / validation / test) of shape 10x2, "
        "regression"
    ) in out
    assert "baseline: predicting 1.0 scores test MSE" in out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "test mse" in out
    expected = {
        "config.toml",
        "checkpoints",
        "train",
        "validation",
        "test",
        "recurrent",
        "model.keras",
        "results.json",
        "run.lock",
    }
    assert expected == {p.name for p in run_dir.iterdir()}
    results = results_of(run_dir)
    assert (results["recipe"], results["metric"], results["steps"]) == ("seqclass", "mse", 16)
    assert results["test_mse"] == pytest.approx(results["test_loss"]) and results["test_mse"] > 0
    # The test figure comes from the best checkpoint's weights.
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    assert best.state["best_epoch"] == results["best_epoch"]
    views = {"gradient_over_time/rnn_1/curve", "gradient_norm/global", "gates/rnn_1/z"}
    assert views <= tags_in(run_dir / "recurrent")
    assert "loss" in tags_in(run_dir / "test")
    assert config_io.load(seqclass.SeqClassConfig, run_dir / "config.toml").cell == "gru"


@pytest.mark.parametrize(
    "task, shape",
    [("row-mnist", "28x28"), ("pixel-mnist", "784x1"), ("permuted-pixel-mnist", "784x1")],
)
def test_mnist_views_train_from_idx_files(task, shape, mnist_dir, tmp_path, capsys):
    flags = ["--task", task, "--mnist-dir", mnist_dir, "--mnist-validation", "4"]
    status, out, err = run_main([*flags, *TINY, "--run-dir", tmp_path / task], capsys)
    assert status == 0, err[-3000:]
    assert (
        f"data: {task}: 20 / 4 / 8 sequences (train / validation / test) of shape {shape}, "
        "10 classes"
    ) in out
    results = results_of(tmp_path / task)
    assert results["metric"] == "accuracy" and 0.0 <= results["test_accuracy"] <= 1.0
    assert results["steps"] == 5


def test_mnist_views_differ_only_by_the_seeded_permutation(mnist_dir):
    base = seqclass.SeqClassConfig(mnist_dir=str(mnist_dir), mnist_validation=4)

    def prepared(**changes):
        return seqclass.prepare_data(dataclasses.replace(base, **changes), log=lambda line: None)

    pixel = prepared(task="pixel-mnist")
    permuted = [prepared(task="permuted-pixel-mnist", seed=seed) for seed in (1, 1, 2)]
    x, permuted_x = pixel.splits["test"][0], permuted[0].splits["test"][0]
    order = np.random.default_rng(1).permutation(784)
    np.testing.assert_array_equal(permuted_x[:, :, 0], x[:, order, 0])
    assert permuted[0].fingerprint == permuted[1].fingerprint != permuted[2].fingerprint


def test_text_run_saves_its_vocabulary_and_classes(sms_tsv, tmp_path, capsys):
    run_dir = tmp_path / "text"
    status, out, err = run_main(
        ["--task", "text", "--data", sms_tsv, *TINY, "--bidirectional", "--run-dir", run_dir],
        capsys,
    )
    assert status == 0, err[-3000:]
    assert "data: sms.tsv [words," in out and "24 / 3 / 3 sequences" in out and "2 classes" in out
    saved = json.loads((run_dir / "vocabulary.json").read_text())
    assert saved["classes"] == ["ham", "spam"]
    vocabulary = TokenVocabulary.from_json(saved)
    assert set(vocabulary.tokens) <= set(HAM_WORDS) | set(SPAM_WORDS) and vocabulary.level == "word"
    results = results_of(run_dir)
    assert results["metric"] == "accuracy" and results["steps"] == 6


def test_char_level_text_pads_and_masks(sms_tsv):
    config = seqclass.SeqClassConfig(task="text", data=str(sms_tsv), level="char", max_length=12)
    data = seqclass.prepare_data(config, log=lambda line: None)
    inputs, labels = data.splits["train"]
    assert inputs.shape[1] == 12 and inputs.dtype == np.int32 and set(labels.tolist()) <= {0, 1}
    assert (inputs == 0).any()  # short messages are padded with the masked id 0
    model = seqclass.build_model(dataclasses.replace(config, units=3), data.vocabulary)
    assert model.get_layer("embedding").mask_zero


def test_imdb_unavailable_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not_a_folder"  # tensorflow-datasets fails there before any download
    blocker.write_text("x")
    monkeypatch.setenv("TFDS_DATA_DIR", str(blocker))
    status, _, err = run_main(["--task", "imdb", *TINY, "--run-dir", tmp_path / "imdb"], capsys)
    assert_one_line_error(status, err, "could not provide imdb_reviews", "TFDS_DATA_DIR")
    assert not (tmp_path / "imdb").exists()


# ---------------------------------------------------------------------------- compare
def test_compare_writes_the_table_and_resumes_every_cell(tmp_path, capsys):
    run_dir = tmp_path / "compare"
    args = [*TINY_ADDING, *TINY, "--probe-every", "8"]
    status, out, err = run_main([*args, "--compare", "vanilla,lstm", "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    table = (run_dir / "results.md").read_text().splitlines()
    header = "| cell | parameters | steps | best validation mse | test mse | wall time (s) | note |"
    assert table[0] == header
    assert [row.split(" | ")[0] for row in table[2:]] == ["| vanilla", "| lstm"]
    rows = (run_dir / "results.csv").read_text().splitlines()
    assert rows[0] == "cell,parameters,steps,best validation mse,test mse,wall time (s),note"
    vanilla, lstm = (row.split(",") for row in rows[1:])
    assert (vanilla[0], int(vanilla[1]), int(vanilla[2])) == ("vanilla", 4 * (2 + 4 + 1) + 5, 8)
    assert (lstm[0], int(lstm[1])) == ("lstm", 4 * 4 * (2 + 4 + 1) + 5)
    for cell in ("vanilla", "lstm"):  # one TensorBoard run each, with the gradient-over-time view
        assert "gradient_over_time/rnn_1/history" in tags_in(run_dir / cell / "recurrent")
        assert config_io.load(seqclass.SeqClassConfig, run_dir / cell / "config.toml").cell == cell
    assert "results (" in out and "| vanilla |" in out

    # A longer budget on resume, at another rate: both cells continue from their checkpoints,
    # and the comparison's config.toml and each cell's hold the new rate.
    status, out, err = run_main(
        ["--resume", "--run-dir", run_dir, "--epochs", "2", "--lr", "0.0123", "--quiet"], capsys
    )
    assert status == 0, err[-3000:]
    assert out.count("resuming at epoch 2, step 0/8") == 2
    for folder in (run_dir, run_dir / "vanilla", run_dir / "lstm"):
        assert config_io.load(seqclass.SeqClassConfig, folder / "config.toml").lr == 0.0123
    for cell in ("vanilla", "lstm"):
        history = checkpoints.load(run_dir / cell / "checkpoints" / "last.ckpt").state["history"]
        assert history[-1]["learning_rate"] == pytest.approx(0.0123)
    steps = [row.split(",")[2] for row in (run_dir / "results.csv").read_text().splitlines()[1:]]
    assert steps == ["16", "16"]
    # Nothing left to do: the results are kept, nothing trains.
    status, out, err = run_main(["--resume", "--run-dir", run_dir, "--epochs", "2"], capsys)
    assert status == 0, err[-3000:]
    assert out.count("finished before; its results are kept") == 2 and "Epoch" not in out


def test_an_exploding_cell_gets_a_note_in_the_table_and_stops_a_single_run(tmp_path, capsys):
    exploding = [*TINY_ADDING, *TINY, "--cell", "irnn", "--lr", "1e8", "--clip-norm", "0"]
    compared = ["--compare", "irnn,vanilla", "--run-dir", tmp_path / "c"]
    status, out, err = run_main([*exploding, *compared], capsys)
    assert status == 0, err[-3000:]
    rows = list(csv.DictReader((tmp_path / "c" / "results.csv").open(encoding="utf-8")))
    assert [row["cell"] for row in rows] == ["irnn", "vanilla"]
    assert rows[0]["note"].startswith("the training loss became") and rows[0]["test mse"] == ""
    assert results_of(tmp_path / "c" / "irnn")["diverged"] is True
    assert rows[1]["note"] == "" and float(rows[1]["test mse"]) > 0  # the next cell still trained
    status, _, err = run_main([*exploding, "--run-dir", tmp_path / "single"], capsys)
    assert_one_line_error(status, err, "the training loss became", "--clip-norm")


# ----------------------------------------------------------------------------- resume
class Interrupt(keras.callbacks.Callback):
    """Stops training with an exception once the optimizer has done `steps` steps."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) >= self.steps:
            raise InterruptedError("stopped by the test")


def test_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, capsys):
    args = [
        *TINY_ADDING,
        "--units",
        "4",
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--dropout",
        "0.3",
        "--checkpoint-every",
        "3",
        "--histograms-every",
        "0",
        "--probe-every",
        "0",
        "--log-every",
        "0",
    ]
    assert run_main([*args, "--quiet", "--run-dir", tmp_path / "whole"], capsys)[0] == 0

    config = cli.parse_config(seqclass.RECIPE, args)
    with pytest.raises(InterruptedError):
        runner.train(
            seqclass.RECIPE,
            config,
            tmp_path / "cut",
            callbacks=[Interrupt(steps=13)],
            log=lambda line: None,
            verbose=0,
        )
    state = checkpoints.load(tmp_path / "cut" / "checkpoints" / "last.ckpt").state
    # Saved at step 3 of epoch 2 (checkpoint_every 3); steps 4 and 5 were lost.
    where = (state["epoch"], state["step"], state["global_step"], state["finished"])
    assert where == (1, 3, 11, False)

    status, out, err = run_main(
        ["--resume", "--run-dir", tmp_path / "cut", "--quiet", "--max-minutes", "60"], capsys
    )
    assert status == 0, err[-3000:]
    # The line says how much of the run's whole budget is left (its trained seconds count).
    resumed = re.search(r"resuming at epoch 2, step 3/8 \((\d+\.\d) of the run's 60 minutes", out)
    assert resumed, out
    assert resumed.group(1) == f"{60 - state['seconds'] / 60:.1f}"
    expected = checkpoints.load(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    actual = checkpoints.load(tmp_path / "cut" / "checkpoints" / "last.ckpt")
    for a, b in zip(actual.weights + actual.optimizer, expected.weights + expected.optimizer):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert actual.state["global_step"] == expected.state["global_step"] == 16

    status, _, err = run_main(["--resume", "--run-dir", tmp_path / "cut"], capsys)
    assert_one_line_error(status, err, "already finished", "--epochs")
    # More epochs, but the run's whole budget is spent (it trained past a smaller
    # --max-minutes): refused before a step is taken, its checkpoints and results untouched.
    before = {p: p.read_bytes() for p in (tmp_path / "cut").rglob("*") if p.is_file()}
    more = ["--resume", "--run-dir", tmp_path / "cut", "--epochs", "3", "--max-minutes", "1e-4"]
    status, _, err = run_main(more, capsys)
    assert_one_line_error(status, err, "has trained", "pass --max-minutes above")
    after = {p: p.read_bytes() for p in (tmp_path / "cut").rglob("*") if p.is_file()}
    assert after == before
    status, _, err = run_main(["--resume", "--run-dir", tmp_path / "cut", "--units", "8"], capsys)
    assert_one_line_error(status, err, "--units cannot change mid-run")


# ------------------------------------------------------------------------- bad inputs
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def text(name, content):
    return lambda folder: ["--task", "text", "--data", write(folder / name, content)]


def test_the_learning_rate_decays_after_lr_decay_after_epochs(tmp_path, capsys):
    run_dir = tmp_path / "run"
    schedule = ["--epochs", "4", "--lr", "0.01", "--lr-decay", "0.5", "--lr-decay-after", "2"]
    status, out, err = run_main([*TINY_ADDING, *TINY, *schedule, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    history = checkpoints.load(run_dir / "checkpoints" / "last.ckpt").state["history"]
    assert [record["learning_rate"] for record in history] == pytest.approx(
        [0.01, 0.01, 0.005, 0.0025]
    )
    assert "lr 0.0025" in out


def test_chrono_timescale_sets_the_trained_lstms_gate_biases(tmp_path, capsys):
    """--chrono-timescale T: the run's model starts with b_f = log(u), u in [1, T - 1], and
    b_i = -b_f (Tallec & Ollivier 2018), drawn from the run's seed; 0 keeps b_f = 1."""
    config = seqclass.SeqClassConfig(task="adding", units=64, chrono_timescale=200.0)
    bias = seqclass.build_model(config).get_layer("rnn_1").cell.bias.numpy().reshape(4, 64)
    b_i, b_f = bias[:2]
    assert b_f.min() >= 0 and b_f.max() <= np.log(199) and b_f.std() > 0.5
    np.testing.assert_array_equal(b_i, -b_f)
    np.testing.assert_array_equal(bias[2:], 0.0)
    again = seqclass.build_model(config).get_layer("rnn_1").cell.bias.numpy()
    np.testing.assert_array_equal(again, bias.reshape(-1))
    plain = dataclasses.replace(config, chrono_timescale=0.0)
    plain_bias = seqclass.build_model(plain).get_layer("rnn_1").cell.bias.numpy().reshape(4, 64)
    np.testing.assert_array_equal(plain_bias[1], 1.0)
    # And a run trains with it and records it.
    run_dir = tmp_path / "run"
    chrono = ["--cell", "peephole", "--chrono-timescale", "10"]
    status, _, err = run_main([*TINY_ADDING, *TINY, *chrono, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert "chrono_timescale = 10.0" in (run_dir / "config.toml").read_text()


def test_cell_args_reach_every_recurrent_layer(tmp_path, capsys):
    """--cell-args 'norm_epsilon = 1.0': each layer's cell gets it (and the others keep the
    recipe's values); an initializer given there replaces the seeded one; a run records it."""
    config = seqclass.SeqClassConfig(
        task="adding", cell="layernorm_lstm", units=8, layers=2, cell_args="norm_epsilon = 1.0"
    )
    config.validate()
    model = seqclass.build_model(config)
    for name in ("rnn_1", "rnn_2"):
        assert model.get_layer(name).cell.norm_epsilon == 1.0
    assert (
        model.get_layer("rnn_1").return_sequences and not model.get_layer("rnn_2").return_sequences
    )
    plain = seqclass.build_model(dataclasses.replace(config, cell_args=""))
    assert plain.get_layer("rnn_1").cell.norm_epsilon == 1e-3
    ones = dataclasses.replace(
        config, cell="lstm", layers=1, cell_args='kernel_initializer = "ones"'
    )
    kernel = seqclass.build_model(ones).get_layer("rnn_1").cell.kernel.numpy()
    np.testing.assert_array_equal(kernel, 1.0)
    # The recurrent kernel keeps its seeded default: equal to the plain model's.
    seeded = dataclasses.replace(ones, cell_args="")
    np.testing.assert_array_equal(
        seqclass.build_model(ones).get_layer("rnn_1").cell.recurrent_kernel.numpy(),
        seqclass.build_model(seeded).get_layer("rnn_1").cell.recurrent_kernel.numpy(),
    )
    run_dir = tmp_path / "run"
    args = ["--cell", "layernorm_lstm", "--cell-args", "norm_epsilon = 0.5", "--run-dir", run_dir]
    status, _, err = run_main([*TINY_ADDING, *TINY, *args], capsys)
    assert status == 0, err[-3000:]
    assert 'cell_args = "norm_epsilon = 0.5"' in (run_dir / "config.toml").read_text()
    saved = keras.saving.load_model(run_dir / "model.keras", safe_mode=False)
    assert saved.get_layer("rnn_1").cell.norm_epsilon == 0.5


def test_a_resume_may_change_the_schedule_and_later_resumes_keep_it(tmp_path, capsys):
    """--resume --lr-decay 0.5 --lr-decay-after 3: epochs from the third on decay; the new
    schedule goes into config.toml (comments kept), so a resume without the flags keeps it."""
    run_dir = tmp_path / "run"
    start = ["--epochs", "2", "--lr", "0.01", "--run-dir", run_dir]
    assert run_main([*TINY_ADDING, *TINY, *start], capsys)[0] == 0
    before = (run_dir / "config.toml").read_text()
    again = ["--resume", "--run-dir", run_dir, "--quiet"]
    status, out, err = run_main([*again, "--epochs", "3", "--lr-decay", "0.5"], capsys)
    assert status == 0, err[-3000:]
    assert "the learning-rate schedule differs from the run's start (lr_decay 1.0 -> 0.5)" in out
    after = (run_dir / "config.toml").read_text()
    assert after == before.replace("lr_decay = 1.0", "lr_decay = 0.5")
    status, out, err = run_main([*again, "--epochs", "4", "--lr-decay-after", "3"], capsys)
    assert status == 0, err[-3000:]
    assert "(lr_decay 1.0 -> 0.5, lr_decay_after 20 -> 3)" in out
    status, out, err = run_main([*again, "--epochs", "5"], capsys)
    assert status == 0, err[-3000:]
    history = checkpoints.load(run_dir / "checkpoints" / "last.ckpt").state["history"]
    # Epochs 1-3 (decay after 20, then 0.5 after 20), then 0.5 after 3: epochs 4 and 5 decay.
    assert [record["learning_rate"] for record in history] == pytest.approx(
        [0.01, 0.01, 0.01, 0.005, 0.0025]
    )
    # Other keys are still refused, and a hand edit of one is still caught.
    status, _, err = run_main([*again, "--epochs", "6", "--batch-size", "8"], capsys)
    assert_one_line_error(status, err, "--batch-size cannot change mid-run", "--lr-decay-after")
    config_file = run_dir / "config.toml"
    config_file.write_text(after.replace("units = 4", "units = 5"))
    status, _, err = run_main([*again, "--epochs", "6"], capsys)
    assert_one_line_error(status, err, "was edited after the run started (units 4 -> 5)")


@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda d: ["--task", "sorting"], ["unknown task 'sorting'", "adding, row-mnist"]),
        (lambda d: ["--cell", "elman"], ["unknown cell 'elman'", "vanilla, irnn, lstm"]),
        (lambda d: ["--compare", "lstm,elman"], ["--compare: unknown cell(s) elman"]),
        (lambda d: ["--task", "row-mnist", "--mnist-dir", d], ["lacks train-images-idx3-ubyte.gz"]),
        (lambda d: ["--task", "text"], ["--task text needs --data FILE"]),
        (
            text("plain.txt", "no labels\nhere either\n"),
            ["has no labels: none of its 2 lines holds a tab"],
        ),
        (
            text("rows.tsv", "ham\thi\nspam\twin\nbroken row\n"),
            ["line 3: expected `label<TAB>text`"],
        ),
        (
            text("one.tsv", "ham\thi\nham\tyo\n"),
            ["all 2 examples have label 'ham'", "at least two"],
        ),
        (text("cols.csv", "body,kind\nhi,ham\n"), ["has no labels", "--label-column"]),
        (
            lambda d: [*TINY_ADDING, "--batch-size", "64"],
            ["32 examples, fewer than one batch of 64"],
        ),
        (lambda d: ["--lr-decay", "0"], ["`lr_decay` must lie in (0, 1]", "0"]),
        (
            lambda d: ["--cell", "gru", "--chrono-timescale", "784"],
            ["`chrono_timescale` sets an LSTM cell's forget-gate bias", "cell 'gru'"],
        ),
        (
            lambda d: ["--compare", "lstm,nfg", "--chrono-timescale", "784"],
            ["that have a forget gate", "cell 'nfg'"],
        ),
        (
            lambda d: ["--cell-args", "norm_epsilon ="],
            ["`cell_args` must be TOML `key = value` pairs", "received 'norm_epsilon ='"],
        ),
        (
            lambda d: ["--cell-args", "units = 8"],
            ["`cell_args` may not set 'units': the recipe sets it"],
        ),
        (
            lambda d: ["--compare", "lstm,layernorm_lstm", "--cell-args", "norm_epsilon = 1.0"],
            [
                "`cell_args` 'norm_epsilon = 1.0' does not fit cell 'lstm'",
                "no argument norm_epsilon",
            ],
        ),
        (
            lambda d: ["--cell", "layernorm_lstm", "--cell-args", "norm_epsilon = 'x'"],
            ["does not fit cell 'layernorm_lstm'", "could not convert string to float"],
        ),
    ],
    ids=[
        "task",
        "cell",
        "compare",
        "mnist-files",
        "no-data",
        "no-labels",
        "bad-row",
        "one-class",
        "csv-columns",
        "batch",
        "lr-decay",
        "chrono-gru",
        "chrono-compare",
        "cell-args-toml",
        "cell-args-recipe-key",
        "cell-args-compare",
        "cell-args-value",
    ],
)
def test_bad_inputs_are_one_line_errors(make_args, fragments, tmp_path, capsys):
    status, _, err = run_main([*make_args(tmp_path), "--run-dir", tmp_path / "run"], capsys)
    assert_one_line_error(status, err, *fragments)


def test_the_command_line_exits_2_with_one_line():
    command = [sys.executable, "-m", "rnnzoo.recipes.seqclass", "--task", "sorting"]
    result = subprocess.run(
        command, env=subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert_one_line_error(result.returncode, result.stderr, "unknown task 'sorting'")


# ----------------------------------------------------------------------------- export
def test_smoke_run_exports_the_classifier_that_loads_in_a_fresh_process(tmp_path, capsys):
    run_dir = tmp_path / "smoke"
    status, out, err = run_main(["--smoke", "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert "data: adding(T=20): 256 / 64 / 64 sequences" in out and "4/4" in out
    config = config_io.load(seqclass.SeqClassConfig, run_dir / "config.toml")
    model = seqclass.build_model(config, inference=True)
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    checkpoints.restore(best, model, carry=False, rng=False)
    test_inputs, test_targets = seqclass.prepare_data(config, log=lambda line: None).splits["test"]
    inputs = test_inputs[:5]
    outputs, loaded = keras_file_outputs(run_dir / "model.keras", inputs, tmp_path)
    assert loaded == "Functional not compiled"
    np.testing.assert_allclose(outputs, model(inputs), rtol=0, atol=1e-6)
    # The test figure in results.json is the best checkpoint's.
    model.compile(loss="mse", metrics=["mse"])
    mse = model.evaluate(test_inputs, test_targets, verbose=0)[1]
    assert results_of(run_dir)["test_mse"] == pytest.approx(mse, rel=1e-5)


# ------------------------------------------------------------------ every cell of the zoo
@pytest.mark.slow
def test_each_kind_of_cell_trains_a_few_steps(tmp_path, capsys):
    """`--cell <any name>` works: one --compare over a cell of each kind (the data made once;
    see `one_cell_of_each_kind`: all 24 cells took 112 s of CI)."""
    names = one_cell_of_each_kind()
    run_dir = tmp_path / "every_cell"
    argv = ["--smoke", "--run-dir", run_dir, "--compare", ",".join(names)]
    status, _, err = run_main(argv, capsys)
    assert status == 0, err[-3000:]
    assert_every_cell_trained(run_dir, names)
