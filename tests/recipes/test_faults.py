"""Faults made for real: each ends in one `error:` line (exit 2) or a quiet recovery, never a
traceback, never silently wrong, and nothing already saved is lost.

Shared by every recipe (they run through one runner), so most faults are made on a tiny
seqclass run (the adding problem: no data files, seconds). The closed output pipe is in
test_charlm.py (it needs the sampler). Mounting a tmpfs needs root; those tests skip without.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
from cli_checks import (
    assert_one_line_error,
    damage_checkpoint,
    error_lines,
    main_runner,
    no_temporaries,
)
from processes import REPO_ROOT, needs_onnx, subprocess_env

from rnnzoo.data.mnist import write_mnist_dir
from rnnzoo.recipes import seqclass
from rnnzoo.training import checkpoints, cli, runner

TINY_MODEL = [
    *("--units", "4", "--batch-size", "4", "--epochs", "1"),
    *("--histograms-every", "0", "--probe-every", "0", "--quiet"),
]
TINY = [
    *("--task", "adding", "--length", "10", "--adding-train-size", "32"),
    *("--adding-eval-size", "8", *TINY_MODEL),
]


run_main = main_runner(seqclass.main)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run (1 epoch of 8 steps); tests work on copies of it."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert seqclass.main([*TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(size)`: a fresh tmpfs of `size` (e.g. "256k") mounted under tmp_path."""
    mounts = []

    def mount(size):
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)])
        if made.returncode != 0:
            pytest.skip("this machine can't mount a tmpfs")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


# ------------------------------------------------------------------ gradients that overflow
def test_gradients_that_overflow_at_the_start_get_their_own_advice(tmp_path, capsys):
    """layernorm_lstm over images whose first 6 rows are blank (168 zero steps, as real MNIST
    starts): nan at the second step at any rate, and the error says what that means and what
    to try (its advice, norm_epsilon 1, trains)."""
    rng = np.random.default_rng(0)

    def images(count):
        pixels = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        pixels[:, :6] = 0
        return pixels

    labels = rng.integers(0, 10, 32, dtype=np.uint8)
    folder = write_mnist_dir(tmp_path / "mnist", images(24), labels[:24], images(8), labels[24:])
    argv = [
        *("--task", "pixel-mnist", "--mnist-dir", folder, "--mnist-validation", "4"),
        *("--cell", "layernorm_lstm", *TINY_MODEL),
    ]
    for rate in ("1e-3", "1e-7"):
        status, _, err = run_main([*argv, "--lr", rate, "--run-dir", tmp_path / rate], capsys)
        assert_one_line_error(
            status,
            err,
            "loss became nan at epoch 1, step 2/5",
            "no checkpoint was written",
            "the first gradients themselves overflow",
            "try another --cell",
            "--cell-args 'norm_epsilon = 1.0'",
        )
    # The same images train with the plain LSTM, and with the advice's larger epsilon.
    status, _, err = run_main([*argv, "--cell", "lstm", "--run-dir", tmp_path / "lstm"], capsys)
    assert status == 0, err[-2000:]
    epsilon = ["--cell-args", "norm_epsilon = 1.0", "--run-dir", tmp_path / "epsilon"]
    status, _, err = run_main([*argv, *epsilon], capsys)
    assert status == 0, err[-2000:]


# ----------------------------------------------------------------------- (a) damaged data
@pytest.mark.parametrize("where", [3, 0.5, -6], ids=["header", "middle", "checksum"])
def test_a_damaged_compressed_data_file_is_one_line(where, tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = write_mnist_dir(
        tmp_path / "mnist",
        rng.integers(0, 256, (24, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 24, dtype=np.uint8),
        rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 8, dtype=np.uint8),
    )
    damaged = folder / "train-images-idx3-ubyte.gz"
    data = bytearray(damaged.read_bytes())
    data[where if isinstance(where, int) else int(len(data) * where)] ^= 0xFF
    damaged.write_bytes(bytes(data))
    argv = ["--task", "row-mnist", "--mnist-dir", folder, "--run-dir", tmp_path / "run"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, str(damaged), "is damaged: download it again")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- (b) OS errors writing
FILL_UP = [*TINY, "--histograms-every", "1", "--log-every", "1"]  # events every step
FULL_DISK = {
    # Checkpoints every step over many epochs: a checkpoint write meets the full disk.
    "checkpoint": ([*FILL_UP, "--epochs", "1000", "--checkpoint-every", "1"], "/checkpoints/"),
    # One long epoch, no checkpoint in it: a TensorBoard writer meets it (TensorFlow's error).
    "tensorboard": (
        [*FILL_UP, "--adding-train-size", "4000", "--checkpoint-every", "0"],
        "tfevents",
    ),
    # A finished run's missing results, 8 KiB left: model.keras meets it.
    "model.keras": (["--resume"], "/model.keras'"),
}


@pytest.mark.parametrize("writer", FULL_DISK)
def test_a_full_disk_is_one_line_naming_the_file_and_the_last_checkpoint_is_intact(
    writer, tmpfs, finished_run, capsys
):
    disk = tmpfs("320k")
    run_dir = disk / "run"
    argv, fragment = FULL_DISK[writer]
    if writer == "model.keras":
        shutil.copytree(finished_run, run_dir)
        (run_dir / "results.json").unlink()
        (run_dir / "model.keras").unlink()
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(bytes(free - 8192))
    status, _, err = run_main([*argv, "--run-dir", run_dir], capsys)
    assert_one_line_error(status, err, "No space left on device (ENOSPC)", "--resume")
    line = error_lines(err)[0]
    assert f"'{run_dir}/" in line and fragment in line, line
    last = run_dir / "checkpoints" / "last.ckpt"
    if writer != "tensorboard":  # (that one fills the disk before the first checkpoint)
        assert checkpoints.load(last).all_finite()  # intact, loadable
    assert no_temporaries(run_dir)


def test_an_export_that_meets_a_full_disk_keeps_the_old_savedmodel(tmpfs, finished_run, capsys):
    """A SavedModel export that fills the disk is one line with an export's advice; the
    folder exported before is still there, whole, and serves; no temporary is left. A path
    through a file is one line too (TensorFlow's own error, once a traceback)."""
    disk = tmpfs("4m")
    run_dir = disk / "run"
    shutil.copytree(finished_run, run_dir)
    export = ["export", "--run-dir", run_dir, "--format", "tf_saved_model"]
    assert run_main(export, capsys)[0] == 0
    before = {
        p.relative_to(run_dir): p.read_bytes()
        for p in run_dir.rglob("saved_model/**/*")
        if p.is_file()
    }
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(bytes(free - 16384))
    status, _, err = run_main([*export, "--checkpoint", "last"], capsys)
    assert_one_line_error(status, err, f"'{run_dir / 'saved_model'}'", "(ENOSPC)", "export again")
    after = {
        p.relative_to(run_dir): p.read_bytes()
        for p in run_dir.rglob("saved_model/**/*")
        if p.is_file()
    }
    assert after == before
    import tensorflow as tf

    served = tf.saved_model.load(str(run_dir / "saved_model"))
    assert served.serve(np.zeros((2, 10, 2), np.float32)).shape == (2, 1)
    assert no_temporaries(run_dir)
    (disk / "filler").unlink()
    status, _, err = run_main([*export, "--output", run_dir / "config.toml" / "sm"], capsys)
    assert_one_line_error(status, err, "(ENOTDIR)", "pass another --output")


@needs_onnx
def test_an_onnx_export_that_meets_a_full_disk_keeps_the_old_file(tmpfs, finished_run, capsys):
    """An ONNX export that fills the disk is one line with an export's advice; the file
    exported before is still there, byte for byte; no temporary is left."""
    disk = tmpfs("4m")
    run_dir = disk / "run"
    shutil.copytree(finished_run, run_dir)
    export = ["export", "--run-dir", run_dir, "--format", "onnx"]
    assert run_main(export, capsys)[0] == 0
    before = (run_dir / "model.onnx").read_bytes()
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(bytes(free - 16384))
    status, _, err = run_main([*export, "--checkpoint", "last"], capsys)
    assert_one_line_error(status, err, f"'{run_dir / 'model.onnx'}'", "(ENOSPC)", "export again")
    assert (run_dir / "model.onnx").read_bytes() == before
    assert no_temporaries(run_dir)


def test_a_read_only_file_system_is_one_line_and_changes_nothing(tmpfs, capsys):
    disk = tmpfs("4m")
    run_dir = disk / "run"
    assert run_main([*TINY, "--run-dir", run_dir], capsys)[0] == 0
    before = contents(run_dir / "checkpoints")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    status, _, err = run_main(["--resume", "--run-dir", run_dir, "--epochs", "2"], capsys)
    assert_one_line_error(status, err, str(run_dir / "run.lock"), "Read-only file system (EROFS)")
    status, _, err = run_main([*TINY, "--run-dir", disk / "another"], capsys)
    assert_one_line_error(status, err, str(disk / "another"), "(EROFS)", "--run-dir")
    status, _, err = run_main(["export", "--run-dir", run_dir], capsys)
    assert_one_line_error(status, err, "(EROFS)")
    assert contents(run_dir / "checkpoints") == before


def test_a_run_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    """A --run-dir that names a file, or a path through one, gets one line saying so, before
    the run prepares its data."""
    path = tmp_path / "notes.txt"
    path.write_text("mine\n")
    status, out, err = run_main([*TINY, "--run-dir", path], capsys)
    assert_one_line_error(status, err, str(path), "(EEXIST)", "a file is there", "--run-dir")
    assert "data:" not in out
    status, out, err = run_main([*TINY, "--run-dir", path / "run" / "deeper"], capsys)
    assert_one_line_error(status, err, "(ENOTDIR)", "is a file, not a folder", "--run-dir")
    assert "data:" not in out
    assert path.read_text() == "mine\n"


# ------------------------------------------------------ (d) checkpoint JSON of wrong shape
def rewrite_state(path, edit):
    """Rewrite the checkpoint at `path` with `edit(state)` applied to its state.json."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    state = json.loads(members["state.json"])
    edit(state)
    members["state.json"] = json.dumps(state).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_checkpoint_whose_state_has_the_wrong_structure_is_one_line(run_copy, capsys):
    path = run_copy / "checkpoints" / "last.ckpt"
    # Valid JSON, valid zip: only the structure is wrong.
    rewrite_state(path, lambda state: state.update(epoch=str(state["epoch"])))
    status, _, err = run_main(["--resume", "--run-dir", run_copy, "--epochs", "2"], capsys)
    assert_one_line_error(status, err, str(path), "state.json `epoch` must be int, received '1'")


# -------------------------------------------------- (e) config.toml / vocabulary.json edits
def test_a_hand_edited_config_is_refused_on_resume_saying_what_changed(run_copy, capsys):
    config = run_copy / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text("# my notes: only comments changed\n" + text, encoding="utf-8")
    status, out, err = run_main(["--resume", "--run-dir", run_copy, "--epochs", "2"], capsys)
    assert status == 0 and "resuming at epoch 2, step 0/8" in out, err[-2000:]
    edited = text.replace("units = 4\n", "units = 8\n").replace("lr = 0.003\n", "lr = 0.01\n")
    config.write_text(edited, encoding="utf-8")
    before = contents(run_copy / "checkpoints")
    status, _, err = run_main(["--resume", "--run-dir", run_copy, "--epochs", "3"], capsys)
    assert_one_line_error(
        status, err, str(config), "was edited after the run started (units 4 -> 8)"
    )
    assert "lr 0.003" not in err  # the learning-rate schedule may change (see below)
    assert contents(run_copy / "checkpoints") == before


def test_a_run_from_before_an_option_existed_resumes_with_its_default(run_copy, capsys):
    # seqclass's lr_decay and lr_decay_after came after runs that are still resumed: neither
    # their config.toml nor their checkpoints hold them.
    config = run_copy / "config.toml"
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    config.write_text("".join(line for line in lines if not line.startswith("lr_decay")), "utf-8")
    for name in ("last.ckpt", "best.ckpt"):
        rewrite_state(
            run_copy / "checkpoints" / name,
            lambda state: [state["config"].pop(key) for key in ("lr_decay", "lr_decay_after")],
        )
    status, out, err = run_main(["--resume", "--run-dir", run_copy, "--epochs", "2"], capsys)
    assert status == 0 and "resuming at epoch 2, step 0/8" in out, err[-2000:]
    (epoch_line,) = [line for line in out.splitlines() if line.startswith("epoch 2/2:")]
    assert epoch_line.split("| lr ")[1].split()[0] == "0.003"  # the run's rate: no decay
    # A value that differs from the default is a change: the schedule's may change (a flag
    # adds the missing line to config.toml; a hand edit is taken too), and the resume says so;
    # another key's is refused.
    resume = ["--resume", "--run-dir", run_copy]
    status, out, err = run_main([*resume, "--epochs", "3", "--lr-decay", "0.5"], capsys)
    assert status == 0, err[-2000:]
    assert "differs from the run's start (lr_decay 1.0 -> 0.5)" in out
    assert config.read_text(encoding="utf-8").endswith("\nlr_decay = 0.5\n")
    edited = config.read_text(encoding="utf-8").replace("lr_decay = 0.5", "lr_decay = 0.25")
    config.write_text(edited, encoding="utf-8")
    status, out, err = run_main([*resume, "--epochs", "4"], capsys)
    assert status == 0, err[-2000:]
    assert "differs from the run's start (lr_decay 1.0 -> 0.25)" in out
    config.write_text(config.read_text(encoding="utf-8").replace("seed = 1\n", "seed = 2\n"))
    status, _, err = run_main([*resume, "--epochs", "5"], capsys)
    assert_one_line_error(status, err, "was edited after the run started (seed 1 -> 2)")


def test_a_hand_edited_vocabulary_is_refused_on_resume(tmp_path, capsys):
    data = tmp_path / "sms.tsv"
    data.write_text("".join(f"{'spam' if i % 3 else 'ham'}\tw{i % 7} x{i}\n" for i in range(30)))
    run_dir = tmp_path / "text"
    flags = ["--task", "text", "--data", data, *TINY_MODEL, "--run-dir", run_dir]
    assert run_main(flags, capsys)[0] == 0
    path = run_dir / "vocabulary.json"
    vocabulary = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(vocabulary, indent=4), encoding="utf-8")  # layout only: fine
    status, _, err = run_main(["--resume", "--run-dir", run_dir, "--epochs", "2"], capsys)
    assert status == 0, err[-2000:]
    tokens = vocabulary["tokens"]
    tokens[0], tokens[1] = tokens[1], tokens[0]  # two ids swapped: the model would misread
    path.write_text(json.dumps(vocabulary), encoding="utf-8")
    status, _, err = run_main(["--resume", "--run-dir", run_dir, "--epochs", "3"], capsys)
    assert_one_line_error(status, err, str(path), "was edited after the run started")


# ---------------------------------------------------------------- (f) a live run's lock
def test_a_directory_held_by_a_live_run_is_refused_and_a_killed_runs_is_taken_over(
    tmp_path, capsys
):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "rnnzoo.recipes.seqclass", *TINY, "--epochs", "100000"]
    command += ["--checkpoint-every", "2", "--run-dir", str(run_dir)]
    first = subprocess.Popen(
        command,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        last = run_dir / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 240
        while not last.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None and last.exists(), first.stderr.read()[-3000:]
        in_use = f"is in use by process {first.pid}"
        status, _, err = run_main(["--resume", "--run-dir", run_dir, "--epochs", "5"], capsys)
        assert_one_line_error(status, err, in_use, "wait for it to end, or pass another --run-dir")
        status, _, err = run_main([*TINY, "--run-dir", run_dir], capsys)  # a new run there
        assert_one_line_error(status, err, in_use)
        status, _, err = run_main(["export", "--run-dir", run_dir, "--checkpoint", "last"], capsys)
        assert_one_line_error(status, err, in_use)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    epoch = checkpoints.load(last).state["epoch"]
    argv = ["--resume", "--run-dir", run_dir, "--epochs", str(epoch + 1)]
    status, out, err = run_main(argv, capsys)  # the kernel dropped the dead process's lock
    assert status == 0, err[-2000:]
    assert (run_dir / "run.lock").read_text() == f"{os.getpid()}\n"


# --------------------------------------------------- (g) a run stopped before a checkpoint
class StopAtStep(Exception):
    pass


class StopAtStep2(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise StopAtStep


def test_a_run_stopped_before_its_first_checkpoint_blocks_nothing(tmp_path, capsys):
    config = cli.parse_config(seqclass.RECIPE, [*TINY, "--checkpoint-every", "0"])
    for name in ("resumed", "rerun"):
        with pytest.raises(StopAtStep):
            runner.train(
                seqclass.RECIPE,
                config,
                tmp_path / name,
                callbacks=[StopAtStep2()],
                log=lambda line: None,
                verbose=0,
            )
        assert (tmp_path / name / "config.toml").exists()
        assert not (tmp_path / name / "checkpoints" / "last.ckpt").exists()
    for which in ("last", "best"):  # nothing to export: no other checkpoint to point to
        argv = ["export", "--run-dir", tmp_path / "resumed", "--checkpoint", which]
        status, _, err = run_main(argv, capsys)
        assert_one_line_error(status, err, f"{which}.ckpt' does not exist", "train it further.")
    status, out, err = run_main(["--resume", "--run-dir", tmp_path / "resumed"], capsys)
    assert status == 0, err[-2000:]
    assert "has no checkpoint yet: starting its run from its config.toml" in out
    assert (tmp_path / "resumed" / "results.json").exists()
    status, out, err = run_main([*TINY, "--run-dir", tmp_path / "rerun"], capsys)
    assert status == 0, err[-2000:]
    assert out.count("reusing run directory") == 1
    assert "its earlier run stopped before its first checkpoint" in out
    assert (tmp_path / "rerun" / "results.json").exists()


# ------------------------------------------------------ (h) temporaries left by a kill
def test_temporaries_a_killed_write_left_are_removed_on_the_next_start(run_copy, capsys):
    # What a kill -9 in the middle of write_atomic leaves: half a file under a temporary name.
    left = [
        run_copy / "checkpoints" / ".last.ckpt.tmp-99999",
        run_copy / ".results.json.tmp-99999",
        run_copy / ".model.keras.tmp-99999.keras",
    ]
    for path in left:
        path.write_bytes(b"PK\x03\x04 half of a file")
    status, out, err = run_main(["--resume", "--run-dir", run_copy, "--epochs", "2"], capsys)
    assert status == 0, err[-2000:]
    assert "removed 3 temporary file(s) a killed run left" in out
    assert no_temporaries(run_copy)


# --------------------------------------------- (i) killed after the last checkpoint
def test_a_finished_run_missing_its_results_gets_them_from_resume(run_copy, finished_run, capsys):
    (run_copy / "results.json").unlink()
    (run_copy / "model.keras").unlink()
    before = contents(run_copy / "checkpoints")
    status, out, err = run_main(["--resume", "--run-dir", run_copy], capsys)
    assert status == 0, err[-2000:]
    assert "the run finished training: scoring its best checkpoint" in out
    assert "epoch 1/1:" not in out  # nothing trained
    expected = json.loads((finished_run / "results.json").read_text(encoding="utf-8"))
    actual = json.loads((run_copy / "results.json").read_text(encoding="utf-8"))
    assert actual["test_mse"] == pytest.approx(expected["test_mse"], rel=1e-6)
    assert (run_copy / "model.keras").exists()
    assert contents(run_copy / "checkpoints") == before
    status, _, err = run_main(["--resume", "--run-dir", run_copy], capsys)
    assert_one_line_error(status, err, "already finished", "--epochs")


def test_a_finished_run_continued_then_killed_is_scored_anew_not_by_its_old_results(
    run_copy, capsys
):
    """`--resume --epochs N` continues a finished run; killed before it ends, its results.json
    is the old run's, and `--resume --epochs <epochs trained>` must score the checkpoint."""
    old = json.loads((run_copy / "results.json").read_text(encoding="utf-8"))
    command = [sys.executable, "-m", "rnnzoo.recipes.seqclass", "--resume", "--quiet"]
    command += ["--run-dir", str(run_copy), "--epochs", "100000"]
    going = subprocess.Popen(command, env=subprocess_env(), cwd=REPO_ROOT, stdout=subprocess.PIPE)
    last = run_copy / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 240
        while going.poll() is None and time.monotonic() < deadline:
            if checkpoints.load(last).state["epoch"] >= old["epochs"] + 2:
                break
            time.sleep(0.1)
        assert going.poll() is None, going.stdout.read()[-3000:]
    finally:
        going.kill()
        going.wait()
    # Killed between an improving epoch's best.ckpt and last.ckpt, best.ckpt is the newer.
    kept = [checkpoints.load(last.with_name(f"{which}.ckpt")).state for which in ("last", "best")]
    state = max(kept, key=lambda kept_state: kept_state["global_step"])
    assert state["global_step"] > old["steps"]
    argv = ["--resume", "--run-dir", run_copy, "--epochs", str(state["epoch"])]
    status, out, err = run_main(argv, capsys)
    assert status == 0, err[-2000:]
    assert "the run finished training: scoring its best checkpoint" in out
    new = json.loads((run_copy / "results.json").read_text(encoding="utf-8"))
    assert (new["epochs"], new["steps"]) == (state["epoch"], state["global_step"])
    assert (
        new["best_epoch"]
        == checkpoints.load(run_copy / "checkpoints" / "best.ckpt").state["best_epoch"]
    )
    status, _, err = run_main(argv, capsys)  # scored now: finished, as before
    assert_one_line_error(status, err, "already finished", "--epochs")


# Run in a process of its own: seqclass, killed (SIGKILL) just after the first checkpoint file
# that the end of its last epoch (its last argument) writes, before the second.
KILLED_BETWEEN_CHECKPOINT_WRITES = """
import os, signal, sys
from rnnzoo.recipes import seqclass
from rnnzoo.training import checkpoints
save = checkpoints.save
def save_then_die(checkpoint, path):
    save(checkpoint, path)
    if checkpoint.state["step"] == 0 and checkpoint.state["epoch"] == int(sys.argv[-1]):
        os.kill(os.getpid(), signal.SIGKILL)
checkpoints.save = save_then_die
sys.exit(seqclass.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_run_killed_between_its_two_checkpoint_writes_resumes_to_the_uninterrupted_results(
    epochs, tmp_path, capsys
):
    """The end of an epoch that improves writes best.ckpt and last.ckpt. Killed between the
    two, the run must still score, on resume, the weights of the epoch it names as best (at
    the end of epoch 1, with no checkpoint within it, best.ckpt is the only one)."""
    argv = [*TINY, "--checkpoint-every", "0", "--epochs", str(epochs)]
    assert run_main([*argv, "--run-dir", tmp_path / "whole"], capsys)[0] == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text(encoding="utf-8"))
    assert whole["best_epoch"] == epochs  # else its last epoch writes no best.ckpt
    killed = tmp_path / "killed"
    command = [sys.executable, "-c", KILLED_BETWEEN_CHECKPOINT_WRITES, "--run-dir", str(killed)]
    done = subprocess.run(  # (argv ends in the epoch to die at)
        [*command, *map(str, argv)], env=subprocess_env(), cwd=REPO_ROOT, timeout=300
    )
    assert done.returncode == -signal.SIGKILL
    assert not (killed / "results.json").exists()
    # Until then, the "last" checkpoint (where the run stands) is best.ckpt, the newer.
    exported = {}
    for which in ("last", "best"):
        output = tmp_path / f"{which}.keras"
        argv_export = ["export", "--run-dir", killed, "--checkpoint", which, "--output", output]
        status, _, err = run_main(argv_export, capsys)
        assert status == 0, err[-2000:]
        exported[which] = keras.saving.load_model(output).get_weights()
    for last, best in zip(exported["last"], exported["best"], strict=True):
        np.testing.assert_array_equal(last, best)
    status, out, err = run_main(["--resume", "--run-dir", killed, *argv[-2:]], capsys)
    assert status == 0, err[-2000:]
    results = json.loads((killed / "results.json").read_text(encoding="utf-8"))
    assert (results["epochs"], results["best_epoch"]) == (epochs, epochs)
    assert results["test_mse"] == pytest.approx(whole["test_mse"], rel=1e-6)
    best = checkpoints.load(killed / "checkpoints" / "best.ckpt").state
    assert best["best_epoch"] == epochs


# ---------------------------------------------------- (j) last.ckpt damaged, best.ckpt kept
def test_resume_from_the_best_checkpoint_when_the_last_is_damaged(run_copy, capsys):
    last = run_copy / "checkpoints" / "last.ckpt"
    damage_checkpoint(last)
    status, _, err = run_main(["--resume", "--run-dir", run_copy, "--epochs", "2"], capsys)
    assert_one_line_error(status, err, str(last), "is corrupt", "--checkpoint best")
    argv = ["--resume", "--checkpoint", "best", "--run-dir", run_copy, "--epochs", "2"]
    status, out, err = run_main(argv, capsys)
    assert status == 0, err[-2000:]
    assert "resuming from best.ckpt at epoch 2, step 0/8" in out
    assert checkpoints.load(last).state["epoch"] == 2  # a good last.ckpt again
