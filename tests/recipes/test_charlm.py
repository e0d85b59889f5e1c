"""The charlm recipe end to end: CLI runs on texts the tests write, resume, sampling, errors."""

import csv
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from cli_checks import (
    assert_every_cell_trained,
    assert_mixed_float16_resumes_exactly,
    assert_one_line_error,
    damage_checkpoint,
    error_lines,
    main_runner,
    no_temporaries,
    one_cell_of_each_kind,
    tags_in,
)
from processes import (
    HAS_ONNX,
    REPO_ROOT,
    keras_file_outputs,
    needs_onnx,
    run_benchmark,
    served_differences,
    subprocess_env,
)

from rnnzoo.recipes import charlm
from rnnzoo.training import checkpoints
from rnnzoo.training import config as config_io

SHARED_TFDS = REPO_ROOT / ".." / "shared" / "tensorflow_datasets"
RECIPES = REPO_ROOT / "recipes"
# A tiny model and a few steps: seconds, not minutes.
TINY = [
    "--cell",
    "lstm",
    "--layers",
    "1",
    "--units",
    "16",
    "--embedding-dim",
    "8",
    "--seq-length",
    "8",
    "--batch-size",
    "4",
    "--epochs",
    "2",
    "--steps-per-epoch",
    "10",
    "--checkpoint-every",
    "5",
    "--sample-length",
    "40",
    "--quiet",
]


# Tiny Shakespeare-sized corpora: wide batches keep their evaluation to a few steps.
SHORT_RUN = [
    "--units",
    "8",
    "--layers",
    "1",
    "--seq-length",
    "50",
    "--batch-size",
    "256",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--sample-length",
    "20",
    "--quiet",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, small_text, run_cli):
    """One CLI training run of the tiny model, shared by the sampling and error tests."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli(*TINY, "--data", small_text, "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


run_main = main_runner(charlm.main)


# ------------------------------------------------------------------------- config files
def test_defaults_file_equals_the_config_dataclass_and_gives_every_reason():
    assert charlm.RECIPE.resolve_config() == charlm.CharLMConfig()
    lines = (RECIPES / "charlm.toml").read_text(encoding="utf-8").splitlines()
    keys = [
        line.split("=")[0].strip() for line in lines if "=" in line and not line.startswith("#")
    ]
    assert keys == [field.name for field in dataclasses.fields(charlm.CharLMConfig)]
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[index - 1].startswith("# "), f"no one-line reason above {line!r}"


def test_min_char_rnn_file_has_the_seeds_settings():
    config = charlm.RECIPE.resolve_config("min_char_rnn")  # a shipped config, by name
    assert (config.cell, config.layers, config.units, config.embedding_dim) == (
        "vanilla",
        1,
        100,
        0,
    )
    assert (
        config.seq_length,
        config.optimizer,
        config.lr,
        config.clip_value,
        config.clip_norm,
    ) == (25, "adagrad", 0.1, 5.0, 0.0)
    large = charlm.RECIPE.resolve_config(RECIPES / "charlm_large.toml")
    assert large.units > charlm.CharLMConfig().units


def test_every_charlm_config_file_gives_a_reason_for_each_value_and_resolves():
    """The files `--config` loads by name (charlm_large, min_char_rnn, the paper corpora's): known
    keys only, a one-line reason above each value, and a config that validates."""
    names = {field.name for field in dataclasses.fields(charlm.CharLMConfig)}
    files = sorted({*RECIPES.glob("charlm_*.toml"), RECIPES / "min_char_rnn.toml"})
    assert len(files) >= 4
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        keys = [line.split("=")[0].strip() for line in lines if "=" in line and line[0] != "#"]
        assert keys and set(keys) <= names, path.name
        for index, line in enumerate(lines):
            if "=" in line and line[0] != "#":
                assert lines[index - 1].startswith("# "), f"{path.name}: no reason above {line!r}"
        charlm.RECIPE.resolve_config(path.stem)  # validates


@pytest.mark.parametrize(
    "name, corpus",
    [
        ("charlm_war_and_peace", "war_and_peace/warpeace_input.txt"),
        ("charlm_linux_kernel", "linux_kernel/linux-1.0_input.txt"),
    ],
)
def test_the_papers_corpora_split_80_10_10_as_karpathy_et_al(name, corpus):
    config = charlm.RECIPE.resolve_config(name)
    assert config.split_fractions() == pytest.approx((0.8, 0.1, 0.1))
    assert config.data == f"../shared/data/{corpus}"  # from the repository root
    assert (config.optimizer, config.lr, config.clip_value, config.clip_norm) == (
        "rmsprop",
        0.002,
        5.0,
        0.0,
    )  # char-rnn's train.lua defaults
    assert (config.embedding_dim, config.seq_length, config.max_minutes) == (0, 100, 0.0)


def test_split_fractions_apply_to_a_data_file_and_bad_ones_are_one_line_errors(
    tmp_path, capsys, small_text
):
    config = dataclasses.replace(
        charlm.CharLMConfig(), data=str(small_text), train_fraction=0.8, validation_fraction=0.1
    )
    lines = []
    charlm.prepare_data(config, log=lines.append)
    assert "24,000 / 3,000 / 3,000 characters" in lines[0]  # 30,000 characters split 80/10/10
    flags = ["--data", small_text, "--train-fraction", "0.95", "--validation-fraction", "0.1"]
    status, _, err = run_main([*TINY, *flags, "--run-dir", tmp_path / "run"], capsys)
    assert_one_line_error(status, err, "train_fraction and validation_fraction", "0.95", "0.1")
    assert not (tmp_path / "run").exists()


def test_cell_args_reach_the_trained_and_the_exported_layers(tmp_path, capsys, small_text):
    """--cell-args: each recurrent layer of the stateful training model and of model.keras
    gets it; a wrong name, a key the recipe sets and a value the layer can't take are one-line
    errors (the first two before any run directory exists)."""
    run_dir = tmp_path / "run"
    args = ["--cell", "layernorm_lstm", "--layers", "2", "--cell-args", "norm_epsilon = 0.5"]
    status, _, err = run_main([*TINY, "--data", small_text, *args, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert 'cell_args = "norm_epsilon = 0.5"' in (run_dir / "config.toml").read_text()
    trained = checkpoints.load(run_dir / "checkpoints" / "last.ckpt")
    assert trained.state["config"]["cell_args"] == "norm_epsilon = 0.5"
    exported = keras.saving.load_model(run_dir / "model.keras", safe_mode=False)
    assert [exported.get_layer(f"rnn_{i}").cell.norm_epsilon for i in (1, 2)] == [0.5, 0.5]
    for cell_args, fragments in (
        ("norm_epsilon = 1.0", ["does not fit cell 'lstm'", "LSTM has no argument norm_epsilon"]),
        ("stateful = false", ["`cell_args` may not set 'stateful': the recipe sets it"]),
    ):
        flags = ["--cell-args", cell_args, "--run-dir", tmp_path / "refused"]
        status, _, err = run_main([*TINY, "--data", small_text, *flags], capsys)
        assert_one_line_error(status, err, *fragments)
        assert not (tmp_path / "refused").exists()
    flags = ["--cell", "layernorm_lstm", "--cell-args", "norm_epsilon = 'x'"]
    status, _, err = run_main(
        [*TINY, "--data", small_text, *flags, "--run-dir", tmp_path / "x"], capsys
    )
    assert_one_line_error(status, err, "does not fit cell 'layernorm_lstm'", "could not convert")


# ------------------------------------------------------------------------------- train
def test_cli_trains_reports_and_fills_the_run_directory(trained_run):
    run_dir, result = trained_run
    out = result.stdout
    assert "vocabulary: " in out and "4 streams" in out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "validation loss" in out
    assert "bits_per_char" in out and "test " in out
    sample = out.split("--- sample (temperature 0.8, best checkpoint) ---\n", 1)[1]
    assert len(sample.rstrip("\n")) >= 40
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "config.toml",
        "vocabulary.json",
        "checkpoints",
        "train",
        "validation",
        "test",
        "recurrent",
        "model.keras",
        "results.json",
        "run.lock",
    } == names
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"last.ckpt", "best.ckpt"}
    # The resolved config is the run's own: flags included, loadable as is.
    resolved = config_io.load(charlm.CharLMConfig, run_dir / "config.toml")
    assert (resolved.units, resolved.seq_length, resolved.data) == (16, 8, str(resolved.data))
    assert resolved.steps_per_epoch == 10
    last = checkpoints.load(run_dir / "checkpoints" / "last.ckpt")
    assert last.state["global_step"] == 20 and last.state["finished"]
    assert len(last.state["history"]) == 2
    assert {"loss", "bits_per_char", "learning_rate", "batch_loss", "sample"} <= tags_in(
        run_dir / "train"
    )
    assert {"loss", "bits_per_char"} <= tags_in(run_dir / "validation")
    assert no_temporaries(run_dir)


def test_kill_9_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, small_text, run_cli):
    args = [
        "--data",
        small_text,
        "--layers",
        "2",
        "--units",
        "16",
        "--embedding-dim",
        "8",
        "--dropout",
        "0.2",
        "--seq-length",
        "8",
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "60",
        "--checkpoint-every",
        "10",
        "--sample-length",
        "10",
        "--epoch-sample-length",
        "0",
        "--quiet",
    ]

    def start(run_dir, output=subprocess.DEVNULL):
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rnnzoo.recipes.charlm",
                *map(str, args),
                "--run-dir",
                str(run_dir),
            ],
            env=subprocess_env(),
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )

    # The uninterrupted run and the one to kill run side by side (two cores).
    whole = start(tmp_path / "whole", output=subprocess.PIPE)
    killed_dir = tmp_path / "killed"
    process = start(killed_dir)
    last = killed_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    whole_output, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, whole_output[-3000:]
    state = checkpoints.load(last).state
    assert state["step"] > 0 and not state["finished"], state  # killed mid-epoch

    resumed = run_cli("--resume", "--run-dir", killed_dir, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at epoch {state['epoch'] + 1}, step {state['step']}/60" in resumed.stdout
    expected = checkpoints.load(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    actual = checkpoints.load(last)
    assert len(actual.weights) == len(expected.weights) == 9
    for e, a in zip(expected.weights + expected.optimizer, actual.weights + actual.optimizer):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-6)
    assert actual.state["best_score"] == pytest.approx(expected.state["best_score"], abs=1e-6)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_ctrl_c_stops_at_a_steps_end_saved_and_resume_continues_there(
    number, tmp_path, small_text, run_cli
):
    """A scheduler's SIGTERM or one Ctrl-C: the step in progress ends, its checkpoint is
    saved, one error line, exit status 128 + the signal; --resume continues from that step
    (bit-exactly: tests/training/test_loop.py)."""
    run_dir = tmp_path / "run"
    args = [*TINY, "--epochs", "1", "--steps-per-epoch", "800", "--checkpoint-every", "5"]
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnzoo.recipes.charlm", "--data", small_text, *args]
        + ["--run-dir", str(run_dir)],
        env=subprocess_env(),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run in the background hands its children SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, number)
    _, stderr = process.communicate(timeout=120)
    name = signal.Signals(number).name
    assert process.returncode == 128 + number, stderr[-3000:]
    assert "Traceback" not in stderr
    assert f"{name}: stopping at the end of this step to save a checkpoint" in stderr
    state = checkpoints.load(last).state
    assert state["step"] >= 5 and not state["finished"], state
    assert error_lines(stderr) == [
        f"error: stopped by {name} at epoch 1, step {state['step']}/800; saved {last}: "
        f"continue with --resume --run-dir {run_dir}."
    ]
    assert no_temporaries(run_dir)
    if number == signal.SIGINT:
        return
    resumed = run_cli("--resume", "--run-dir", run_dir, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at epoch 1, step {state['step']}/800" in resumed.stdout
    assert checkpoints.load(last).state["global_step"] == 800


def test_without_tfds_data_it_falls_back_to_python_sources(tmp_path, run_cli):
    env = subprocess_env(HOME=str(tmp_path), TFDS_DATA_DIR=str(tmp_path / "empty_tfds"))
    result = run_cli(*SHORT_RUN, "--run-dir", tmp_path / "run", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    if "data: tiny_shakespeare" in result.stdout:
        pytest.skip("tensorflow-datasets downloaded tiny_shakespeare (this machine has a network)")
    notes = [line for line in result.stdout.splitlines() if "could not provide" in line]
    assert len(notes) == 1
    assert "data: python-stdlib" in result.stdout and "--- sample" in result.stdout


@pytest.mark.skipif(
    not (SHARED_TFDS / "tiny_shakespeare").exists(), reason="../shared/tensorflow_datasets absent"
)
def test_with_tfds_data_dir_it_trains_on_tiny_shakespeare(tmp_path, run_cli):
    env = subprocess_env(TFDS_DATA_DIR=str(SHARED_TFDS.resolve()))
    result = run_cli(*SHORT_RUN, "--run-dir", tmp_path / "run", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data: tiny_shakespeare: 1,003,854 / 55,770 / 55,770" in result.stdout
    assert "vocabulary: 65 characters" in result.stdout


# ------------------------------------------------------------------------------ sample
def test_sampling_with_a_seed_is_reproducible_across_processes(trained_run, capsys, run_cli):
    run_dir, _ = trained_run
    args = [
        "sample",
        "--run-dir",
        run_dir,
        "--length",
        "60",
        "--prime",
        "the ",
        "--num-samples",
        "2",
    ]
    status, first, _ = run_main(args + ["--seed", "7"], capsys)
    assert status == 0
    assert first.count("--- sample") == 2 and first.count("the ") >= 2
    assert run_main(args + ["--seed", "7"], capsys)[1] == first
    assert run_main(args + ["--seed", "8"], capsys)[1] != first
    fresh = run_cli(*args, "--seed", "7")
    assert fresh.returncode == 0 and fresh.stdout == first


def test_greedy_top_k_and_beam_search(trained_run, capsys):
    run_dir, _ = trained_run
    base = ["sample", "--run-dir", run_dir, "--length", "30", "--prime", "king"]
    greedy = [run_main(base + ["--temperature", "0", "--seed", str(s)], capsys)[1] for s in (1, 2)]
    assert greedy[0] == greedy[1] and greedy[0].startswith("king")
    status, top1, _ = run_main(base + ["--top-k", "1", "--seed", "5"], capsys)
    assert status == 0 and top1 == greedy[0]  # top-1 sampling is greedy decoding
    status, beams, _ = run_main(base + ["--beam-width", "3", "--num-samples", "3"], capsys)
    assert status == 0 and beams.count("--- beam") == 3 and "log p = " in beams


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\x00\x01\x02binary\xff\xfe", "not UTF-8"),
        (b"too short\n", "fewer than one batch of streams"),
    ],
    ids=["missing", "empty", "binary", "short"],
)
def test_bad_data_files_are_one_line_errors_and_create_no_run(tmp_path, capsys, content, fragment):
    data = tmp_path / "data.txt"
    if content is not None:
        data.write_bytes(content)
    status, _, err = run_main([*TINY, "--data", data, "--run-dir", tmp_path / "run"], capsys)
    assert_one_line_error(status, err, fragment)
    assert not (tmp_path / "run").exists()


def test_unknown_cell_and_config_key_are_one_line_errors(tmp_path, capsys, small_text, run_cli):
    result = run_cli("--cell", "transformer", "--data", small_text, "--run-dir", tmp_path / "a")
    assert_one_line_error(result.returncode, result.stderr, "unknown cell 'transformer'", "lstm")
    status, _, err = run_main(["--cell", "peephole_lstm", "--run-dir", tmp_path / "a"], capsys)
    assert_one_line_error(status, err, "unknown cell 'peephole_lstm' (did you mean 'peephole'?)")
    config = tmp_path / "bad.toml"
    config.write_text('cell = "gru"\nhidden_units = 3\n', encoding="utf-8")
    status, _, err = run_main(
        ["--config", config, "--data", small_text, "--run-dir", tmp_path / "b"], capsys
    )
    assert_one_line_error(status, err, "unknown config key(s) 'hidden_units'")
    config.write_text('units = "many"\n', encoding="utf-8")
    status, _, err = run_main(["--config", config, "--run-dir", tmp_path / "c"], capsys)
    assert_one_line_error(status, err, "`units` must be int")
    assert not any((tmp_path / name).exists() for name in "abc")


def test_sample_errors(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    status, _, err = run_main(["sample", "--run-dir", run_dir, "--prime", "KING\u00a7"], capsys)
    assert_one_line_error(status, err, "--prime text", "outside the vocabulary")

    empty_run = tmp_path / "no_checkpoint"
    shutil.copytree(run_dir, empty_run)
    shutil.rmtree(empty_run / "checkpoints")
    status, _, err = run_main(["sample", "--run-dir", empty_run], capsys)
    assert_one_line_error(status, err, "no best.ckpt or last.ckpt checkpoint")
    for command in ("sample", "inspect"):  # each error names the command that needs the run
        status, _, err = run_main([command, "--run-dir", tmp_path / "nowhere"], capsys)
        assert_one_line_error(status, err, "is not a run directory", f"{command} needs")


def test_corrupt_checkpoint_is_an_error_and_is_left_as_it_was(trained_run, tmp_path, capsys):
    run_dir = tmp_path / "corrupt"
    shutil.copytree(trained_run[0], run_dir)
    for name in ("best.ckpt", "last.ckpt"):
        damage_checkpoint(run_dir / "checkpoints" / name)
    before = {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()}
    status, _, err = run_main(["sample", "--run-dir", run_dir], capsys)
    assert_one_line_error(status, err, "best.ckpt", "is corrupt")
    status, _, err = run_main(["--resume", "--run-dir", run_dir, "--epochs", "3"], capsys)
    assert_one_line_error(status, err, "last.ckpt", "is corrupt")
    assert {p.name: p.read_bytes() for p in (run_dir / "checkpoints").iterdir()} == before


def test_resume_refuses_config_changes_and_finished_runs(trained_run, capsys):
    run_dir, _ = trained_run
    status, _, err = run_main(["--resume", "--run-dir", run_dir, "--units", "32"], capsys)
    assert_one_line_error(status, err, "--units cannot change")
    status, _, err = run_main(["--resume", "--run-dir", run_dir], capsys)
    assert_one_line_error(status, err, "already finished (after epoch 2, ", "--epochs")


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, small_text
):
    run_dir = tmp_path / "nan"
    argv = [
        *TINY,
        "--data",
        small_text,
        "--run-dir",
        run_dir,
        "--lr",
        "1e38",
        "--checkpoint-every",
        "1",
    ]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "loss became nan", "last good checkpoint", "is kept")
    kept = checkpoints.load(run_dir / "checkpoints" / "last.ckpt")
    assert kept.all_finite() and kept.state["step"] >= 1
    assert no_temporaries(run_dir)


# --------------------------------------------------------------------------- inspect
def test_inspect_ranks_cells_and_writes_the_page(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    text = tmp_path / "quotes.txt"
    source = Path(run_dir / "config.toml")
    data = config_io.load(charlm.CharLMConfig, source).data
    text.write_text(Path(data).read_text(encoding="utf-8")[:400], encoding="utf-8")
    status, out, err = run_main(["inspect", "--run-dir", run_dir, "--text", text], capsys)
    assert status == 0, err
    for name in ("position_in_line", "line_ramp"):
        assert f"{name}: rnn_1 cell " in out
    # The text has no quotation and no bracket: nothing to rank cells by, and no picture.
    for name in ("inside_quotes", "bracket_depth"):
        assert f"{name}: the same at every character of this text, so no cell to rank" in out
        assert not (run_dir / f"cells_{name}.png").exists()
    page = (run_dir / "cells.html").read_text(encoding="utf-8")
    assert "<html" in page.lower()
    assert tags_in(run_dir / "cells")
    assert (run_dir / "cells_position_in_line.png").stat().st_size > 0
    assert no_temporaries(run_dir)
    # Without --text: the validation split, from its first paragraph (this text has none).
    status, out, err = run_main(["inspect", "--run-dir", run_dir, "--max-chars", "200"], capsys)
    assert status == 0, err
    assert "inspecting the validation split from its first paragraph, character 0" in out


def test_inspect_refuses_text_outside_the_vocabulary(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    text = tmp_path / "foreign.txt"
    text.write_text("\u00e9\u00e8\u00ea\n", encoding="utf-8")
    status, _, err = run_main(["inspect", "--run-dir", run_dir, "--text", text], capsys)
    # Vocabulary.encode refuses it, as for --prime.
    assert_one_line_error(status, err, "outside the vocabulary")
    # A --text file that is not there is named by its flag (read_text checks --data's too).
    missing = ["inspect", "--run-dir", run_dir, "--text", tmp_path / "missing.txt"]
    status, _, err = run_main(missing, capsys)
    assert_one_line_error(status, err, "--text file", "missing.txt' does not exist")


# ---------------------------------------------------------------------------- export
def test_smoke_run_exports_a_stateless_model_that_loads_in_a_fresh_process(
    tmp_path, capsys, small_text
):
    run_dir = tmp_path / "smoke"
    status, out, err = run_main(["--smoke", "--data", small_text, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert charlm.SMOKE["steps_per_epoch"] == 5 and "5/5" in out
    config = config_io.load(charlm.CharLMConfig, run_dir / "config.toml")
    assert (config.units, config.epochs) == (charlm.SMOKE["units"], 1)
    vocabulary = json.loads((run_dir / "vocabulary.json").read_text(encoding="utf-8"))
    model = charlm.build_model(config, vocabulary, inference=True)
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    checkpoints.restore(best, model, carry=False, rng=False)
    ids = np.random.default_rng(0).integers(0, len(vocabulary["chars"]), (3, 17))  # any shape
    outputs, loaded = keras_file_outputs(run_dir / "model.keras", ids, tmp_path)
    assert loaded == "Sequential not compiled"  # no optimizer in it: an inference model
    np.testing.assert_allclose(outputs, model(ids), rtol=0, atol=1e-6)

    # `export` writes one on demand, from either checkpoint.
    output = tmp_path / "last.keras"
    argv = ["export", "--run-dir", run_dir, "--checkpoint", "last", "--output", output]
    status, out, err = run_main(argv, capsys)
    assert status == 0 and f"wrote {output} (last checkpoint)" in out, err
    last = checkpoints.load(run_dir / "checkpoints" / "last.ckpt")
    checkpoints.restore(last, model, carry=False, rng=False)
    exported = keras.saving.load_model(output)
    np.testing.assert_allclose(exported(ids), model(ids), rtol=0, atol=1e-6)
    status, _, err = run_main(["export", "--run-dir", run_dir, "--output", "m.h5"], capsys)
    assert_one_line_error(status, err, "must end in .keras")


def test_export_writes_a_savedmodel_that_tensorflow_alone_serves(tmp_path, capsys, small_text):
    """`export --format tf_saved_model` writes <run-dir>/saved_model (`model.export`'s
    SavedModel, for TensorFlow Serving): served without Keras or rnnzoo it gives the logits of
    the checkpoint's model; a second export replaces it whole; a folder a killed export left
    aside is put back; a .keras name for it is a one-line error."""
    run_dir = tmp_path / "run"
    status, _, err = run_main([*TINY, "--data", small_text, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    config = config_io.load(charlm.CharLMConfig, run_dir / "config.toml")
    vocabulary = json.loads((run_dir / "vocabulary.json").read_text(encoding="utf-8"))
    model = charlm.build_model(config, vocabulary, inference=True)
    ids = np.random.default_rng(0).integers(0, len(vocabulary["chars"]), (3, 17), np.int32)
    expected = {"inputs": ids}
    for which in ("best", "last"):
        argv = ["export", "--run-dir", run_dir, "--checkpoint", which, "--format", "tf_saved_model"]
        status, out, err = run_main(argv, capsys)
        assert status == 0 and f"wrote {run_dir / 'saved_model'} ({which} checkpoint" in out, err
        checkpoint = checkpoints.load(run_dir / "checkpoints" / f"{which}.ckpt")
        checkpoints.restore(checkpoint, model, carry=False, rng=False)
        expected["saved_model_0"] = np.asarray(model(ids))
        np.savez(run_dir / "io.npz", **expected)
        assert served_differences(run_dir) == {"saved_model": pytest.approx(0, abs=1e-6)}
        assert no_temporaries(run_dir)
    # Killed between putting the old folder aside and the new one in place: the next
    # command that opens the run puts the old one back.
    (run_dir / "saved_model").rename(run_dir / ".saved_model.tmp-4242-old")
    output = run_dir / "again.keras"  # inside the run: the export opens it
    status, out, err = run_main(["export", "--run-dir", run_dir, "--output", output], capsys)
    assert status == 0 and f"put back {run_dir / 'saved_model'}" in out, err
    assert served_differences(run_dir) == {"saved_model": pytest.approx(0, abs=1e-6)}
    argv = ["export", "--run-dir", run_dir, "--format", "tf_saved_model", "--output", output]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "a SavedModel is a folder")


@needs_onnx
def test_export_writes_an_onnx_file_that_onnx_runtime_runs(tmp_path, capsys, small_text):
    """`export --format onnx` writes <run-dir>/model.onnx (Keras's ONNX export, through
    tf2onnx): ONNX Runtime gives the logits of the checkpoint's model on ids of any length
    (17: a chunk of 10 and 7 single steps); another name than .onnx is a one-line error, and
    so is a missing tf2onnx."""
    import onnxruntime

    run_dir = tmp_path / "run"
    status, _, err = run_main([*TINY, "--data", small_text, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    status, out, err = run_main(["export", "--run-dir", run_dir, "--format", "onnx"], capsys)
    assert status == 0 and f"wrote {run_dir / 'model.onnx'} (best checkpoint" in out, err
    assert no_temporaries(run_dir)
    config = config_io.load(charlm.CharLMConfig, run_dir / "config.toml")
    vocabulary = json.loads((run_dir / "vocabulary.json").read_text(encoding="utf-8"))
    model = charlm.build_model(config, vocabulary, inference=True)
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    checkpoints.restore(best, model, carry=False, rng=False)
    ids = np.random.default_rng(0).integers(0, len(vocabulary["chars"]), (3, 17), np.int32)
    session = onnxruntime.InferenceSession(str(run_dir / "model.onnx"))
    (logits,) = session.run(None, {session.get_inputs()[0].name: ids})
    np.testing.assert_allclose(logits, np.asarray(model(ids)), rtol=0, atol=1e-5)

    argv = ["export", "--run-dir", run_dir, "--format", "onnx", "--output", tmp_path / "m.keras"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "must end in .onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "tf2onnx", None)  # as where it is not installed
        status, _, err = run_main(["export", "--run-dir", run_dir, "--format", "onnx"], capsys)
    assert_one_line_error(status, err, "--format onnx needs the tf2onnx package: pip install")


def test_mixed_bfloat16_run_computes_in_bfloat16_and_exports_it(tmp_path, capsys, small_text):
    """--dtype-policy mixed_bfloat16: the recurrent layers compute in bfloat16 on float32
    weights, the logits stay float32, and model.keras keeps it all in a fresh process; the
    global policy is float32 again after each build. An unknown policy is a one-line error."""
    run_dir = tmp_path / "mixed"
    flags = ["--dtype-policy", "mixed_bfloat16", "--run-dir", run_dir]
    status, out, err = run_main([*TINY, "--data", small_text, *flags], capsys)
    assert status == 0, err[-3000:]
    config = config_io.load(charlm.CharLMConfig, run_dir / "config.toml")
    assert config.dtype_policy == "mixed_bfloat16"
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    assert {np.asarray(w).dtype for w in best.weights} == {np.dtype("float32")}
    vocabulary = json.loads((run_dir / "vocabulary.json").read_text(encoding="utf-8"))
    model = charlm.build_model(config, vocabulary, inference=True)
    assert keras.config.dtype_policy().name == "float32"
    checkpoints.restore(best, model, carry=False, rng=False)
    rnn, logits = model.get_layer("rnn_1"), model.get_layer("logits")
    assert (rnn.compute_dtype, rnn.variable_dtype) == ("bfloat16", "float32")
    assert logits.compute_dtype == "float32"
    ids = np.random.default_rng(0).integers(0, len(vocabulary["chars"]), (3, 17))
    mixed = np.asarray(model(ids))
    assert mixed.dtype == np.float32
    # The same weights in float32 give other logits, by bfloat16's rounding (8 bits).
    exact = charlm.build_model(
        dataclasses.replace(config, dtype_policy="float32"), vocabulary, True
    )
    exact.set_weights(model.get_weights())
    difference = np.abs(mixed - np.asarray(exact(ids))).max()
    assert 1e-4 < difference < 0.1, difference
    outputs, _ = keras_file_outputs(run_dir / "model.keras", ids, tmp_path)
    np.testing.assert_array_equal(outputs, mixed)
    status, out, err = run_main(["sample", "--run-dir", run_dir, "--length", "30"], capsys)
    assert status == 0 and len(out.strip()) >= 10, err[-2000:]
    # inspect reads the cells of a bfloat16 model too (the Linux 2x512 runs of issue 15).
    status, out, err = run_main(["inspect", "--run-dir", run_dir, "--max-chars", "300"], capsys)
    assert status == 0, err[-2000:]
    assert "position_in_line: rnn_1 cell " in out
    assert (run_dir / "cells_position_in_line.png").stat().st_size > 0
    if HAS_ONNX:
        import onnxruntime

        # ONNX is written in float32 (ONNX Runtime runs no bfloat16 loop): the exact logits.
        status, out, err = run_main(["export", "--run-dir", run_dir, "--format", "onnx"], capsys)
        assert status == 0, err[-2000:]
        session = onnxruntime.InferenceSession(str(run_dir / "model.onnx"))
        (onnx_logits,) = session.run(None, {session.get_inputs()[0].name: ids.astype(np.int32)})
        np.testing.assert_allclose(onnx_logits, np.asarray(exact(ids)), rtol=0, atol=1e-5)

    # mixed_float16 scales the loss (Keras's LossScaleOptimizer): its scale is in the
    # checkpoints, so a run stopped after its first epoch resumes to the same weights.
    argv = [*TINY, "--data", small_text]
    optimizer = assert_mixed_float16_resumes_exactly(run_main, capsys, argv, tmp_path, steps=20)
    assert len(optimizer) > len(best.optimizer)  # the loss scale's variables

    refused = ["--dtype-policy", "float16", "--run-dir", tmp_path / "refused"]
    status, _, err = run_main([*TINY, "--data", small_text, *refused], capsys)
    assert_one_line_error(status, err, "unknown dtype_policy 'float16'", "mixed_bfloat16")
    assert not (tmp_path / "refused").exists()


def test_a_closed_output_pipe_ends_quietly(trained_run, tmp_path):
    run_dir, _ = trained_run
    errors = tmp_path / "stderr.txt"
    # 40 samples of 2,000 characters: more than a pipe holds, so the writer meets the closed end.
    sample = (
        f"{shlex.quote(sys.executable)} -m rnnzoo.recipes.charlm sample --run-dir "
        f"{shlex.quote(str(run_dir))} --length 2000 --num-samples 40 --seed 1"
    )
    script = f'{sample} 2> {shlex.quote(str(errors))} | head -c 10; echo "$?,${{PIPESTATUS[0]}}"'
    result = subprocess.run(
        ["bash", "-c", script],
        env=subprocess_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # head's 10 bytes, head's status, then the sampler's: 128 + SIGPIPE, as a shell has it.
    assert len(result.stdout) == 10 + len("0,141\n") and result.stdout.endswith("0,141\n")
    stderr = errors.read_text()
    assert not error_lines(stderr), stderr[-2000:]
    for noise in ("Traceback", "Exception ignored", "BrokenPipe"):
        assert noise not in stderr, stderr[-2000:]


# ---------------------------------------------------------------------------- compare
def test_compare_trains_each_variant_on_the_same_text_and_writes_its_table(
    tmp_path, capsys, small_text
):
    """charlm --compare shares seqclass's machinery: one run per cell, results.md/.csv."""
    run_dir = tmp_path / "odyssey"
    argv = ["--smoke", "--data", small_text, "--run-dir", run_dir, "--compare", "peephole,nfg"]
    status, out, err = run_main(argv, capsys)
    assert status == 0, err[-3000:]
    with (run_dir / "results.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["cell"] for row in rows] == ["peephole", "nfg"]
    # Greff et al.'s NFG drops the forget gate's weights and its peephole.
    peephole, nfg = (int(row["parameters"]) for row in rows)
    units, inputs = charlm.SMOKE["units"], charlm.SMOKE["embedding_dim"]
    assert peephole - nfg == inputs * units + units * units + 2 * units
    for name in ("peephole", "nfg"):
        config = config_io.load(charlm.CharLMConfig, run_dir / name / "config.toml")
        assert config.cell == name and config.compare == ""
        assert (run_dir / name / "model.keras").exists()
    assert "| peephole |" in (run_dir / "results.md").read_text(encoding="utf-8")
    status, _, err = run_main(["--data", small_text, "--compare", "lstm,nope"], capsys)
    assert_one_line_error(status, err, "unknown cell(s) nope")


# ------------------------------------------------------------------ every cell of the zoo
@pytest.mark.slow
def test_each_kind_of_cell_trains_a_few_steps(tmp_path, capsys, small_text):
    """`--cell <any name>` works: one --compare over a cell of each kind (the data made once;
    see `one_cell_of_each_kind`: all 24 cells took 4.5 minutes of CI, 11 s each)."""
    names = one_cell_of_each_kind()
    run_dir = tmp_path / "every_cell"
    argv = ["--smoke", "--data", small_text, "--run-dir", run_dir, "--compare", ",".join(names)]
    status, _, err = run_main(argv, capsys)
    assert status == 0, err[-3000:]
    assert_every_cell_trained(run_dir, names)


def run_reproduction(run_dir):
    """`benchmarks/reproduction.py --run-dir run_dir` in a process of its own."""
    return run_benchmark("reproduction.py", "--run-dir", run_dir)


def test_the_grid_benchmark_lays_out_finished_runs_as_karpathy_et_al(tmp_path, capsys, small_text):
    """`benchmarks/charlm_grid.py` puts each finished run's test loss in its cell, depth and
    width's place (a mixed-precision run on a row of its own), names a run without results,
    and refuses a folder that is not a run; `benchmarks/reproduction.py` names the policy."""
    run_dirs = []
    for cell, layers, policy in (
        ("lstm", 1, "float32"),
        ("gru", 2, "float32"),
        ("lstm", 1, "mixed_bfloat16"),
    ):
        run_dir = tmp_path / f"{cell}_{layers}_{policy}"
        argv = [*SHORT_RUN, "--cell", cell, "--layers", layers, "--data", small_text]
        argv += ["--dtype-policy", policy]
        status, _, err = run_main([*argv, "--run-dir", run_dir], capsys)
        assert status == 0, err[-3000:]
        run_dirs.append(run_dir)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dirs[0], unfinished)
    (unfinished / "results.json").unlink()

    result = run_benchmark("charlm_grid.py", *run_dirs, unfinished)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert f"{unfinished}: not finished (no results.json), left out" in lines
    lstm, gru, bf16 = (json.loads((d / "results.json").read_text()) for d in run_dirs)
    # One column (8 units); the LSTM rows first, each entry the test loss (epochs trained).
    assert "| cell, layers | 8 units |" in lines
    rows = [line for line in lines if line.startswith(("| LSTM, ", "| GRU, "))]
    assert rows == [
        f"| LSTM, 1 | {lstm['test_loss']:.4f} (1) |",
        f"| LSTM, 1, mixed_bfloat16 | {bf16['test_loss']:.4f} (1) |",
        f"| GRU, 2 | {gru['test_loss']:.4f} (1) |",
    ]
    assert f"| GRU 2×8 | {gru['parameters']:,} | –, –, – |" in result.stdout
    assert f"| LSTM 1×8, mixed_bfloat16 | {bf16['parameters']:,} |" in result.stdout

    for run_dir, what, results in (
        (run_dirs[0], "1x8 lstm)", lstm),
        (run_dirs[2], "1x8 lstm, mixed_bfloat16)", bf16),
    ):
        result = run_reproduction(run_dir)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.splitlines()[0] == f"run: {run_dir} (small, {what}; 1 evaluations"
        assert f"test loss {results['test_loss']:.4f} nats/char" in result.stdout

    result = run_benchmark("charlm_grid.py", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path} is not a run directory (no config.toml); give charlm runs"
    )


def test_reproduction_reads_the_best_of_an_epoch_cut_and_resumed(tmp_path, capsys, small_text):
    """A budget that cuts an epoch leaves an evaluation of it, and the resume that finishes it
    a second one of the same epoch: `benchmarks/reproduction.py` gives the evaluation of the
    checkpoint the test scored (the later, better one here), not the first of that epoch; a
    folder that is not a run, a run with no checkpoint yet and damaged files get one error line."""
    run_dir = tmp_path / "cut"
    argv = [*SHORT_RUN, "--data", small_text, "--run-dir", run_dir]
    status, out, err = run_main([*argv, "--max-minutes", "1e-9"], capsys)
    assert status == 0, err[-3000:]
    assert "epoch 1/1 (1 of 2 steps): train loss" in out + err
    status, _, err = run_main(["--resume", "--run-dir", run_dir, "--max-minutes", "60"], capsys)
    assert status == 0, err[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    cut, finished = results["history"]
    assert (cut["epoch"], cut["steps"], finished["epoch"], finished["steps"]) == (1, 1, 1, 2)
    assert finished["validation_loss"] < cut["validation_loss"]
    assert results["best_validation_loss"] == finished["validation_loss"]

    result = run_reproduction(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    reached = (
        f"reached: the best checkpoint's validation loss {finished['validation_loss']:.4f} "
        f"nats/char at epoch 1; test loss {results['test_loss']:.4f} nats/char"
    )
    assert reached in result.stdout, result.stdout
    # The table marks the cut epoch as the training log does; the curve has one point an epoch.
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 1")]
    assert [row.split(" | ")[0] for row in rows] == ["| 1 (1 of 2 steps)", "| 1"], rows
    row = result.stdout.splitlines()[-1]
    curve = row.split(" | ")[-3]
    assert curve == f"{finished['validation_loss']:.4f} nats/char", row

    # Not a run, a run with no checkpoint yet, damaged files: one error line each, exit 2.
    (tmp_path / "empty").mkdir()
    result = run_reproduction(tmp_path / "empty")
    assert_one_line_error(result.returncode, result.stderr, "is not a run directory")
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(run_dir / "config.toml", early)
    result = run_reproduction(early)
    assert_one_line_error(result.returncode, result.stderr, "has no checkpoint yet")
    (run_dir / "results.json").write_text('{"recipe": "charlm", "hist')
    result = run_reproduction(run_dir)
    assert_one_line_error(result.returncode, result.stderr, "results.json is damaged", "delete")
    (run_dir / "results.json").unlink()
    result = run_reproduction(run_dir)  # read as unfinished, as the message says
    assert result.returncode == 0, result.stderr[-3000:]
    best = f"reached: best validation loss {finished['validation_loss']:.4f} nats/char at epoch 1"
    assert best in result.stdout, result.stdout
    damage_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    result = run_reproduction(run_dir)
    assert_one_line_error(result.returncode, result.stderr, "last.ckpt", "corrupt")
