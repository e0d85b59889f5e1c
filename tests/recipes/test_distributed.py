"""Every recipe under `tf.distribute`, on this machine's CPU: the CPU split into 2 logical
devices (`--distribute mirrored --devices 2`) and 2 worker processes on localhost
(`--distribute multi-worker`, TF_CONFIG) end with a single device's weights; a killed job
resumes exactly, with as many replicas or fewer; a dying worker stops the job.

Tolerance of the weight comparisons (`assert_same_run`): 1e-5 of each array's largest value.
Two replicas sum the gradient of a batch in two partial sums, then add them; one device sums
it in one: the same numbers in another order, which float rounding tells apart by ~1e-7
relative per step (Adam divides by sqrt(v) and carries that through a few steps; measured:
below 2e-6 after 12 steps). A job resumed with the same replicas repeats the same sums: it
is compared to 1e-6 absolute, like the single-device resume test.
"""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_checks import assert_one_line_error, error_lines, no_temporaries, tags_in
from processes import REPO_ROOT, subprocess_env

from rnnzoo.recipes import charlm, glimpse_mnist, seqclass
from rnnzoo.training import checkpoints, distribute

RELATIVE = 1e-5  # see the module docstring
GATES = {"gru": "zrn", "lstm": "ifgo"}
CHARLM = [
    *("--layers", "2", "--units", "16", "--embedding-dim", "8", "--dropout", "0.2"),
    *("--seq-length", "8", "--batch-size", "4", "--sample-length", "20"),
    *("--epoch-sample-length", "0", "--log-every", "2", "--quiet"),
    # 0.05 clips every step here: the norm clipped must be the global batch's.
    *("--clip-norm", "0.05"),
]


# ----------------------------------------------------------------------------- helpers
def start(recipe, args, log, **env):
    """`python -m rnnzoo.recipes.<recipe> *args` in a fresh process writing to file `log`."""
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", f"rnnzoo.recipes.{recipe}", *map(str, args)],
            env=subprocess_env(**env),
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    process.log = log
    return process


def start_workers(recipe, args, run_dir, logs, **env):
    """A multi-worker job of 2 processes on localhost, each with its TF_CONFIG."""
    return [
        start(
            recipe,
            [*args, "--run-dir", run_dir, "--distribute", "multi-worker"],
            logs / f"{run_dir.name}-worker{index}.log",
            TF_CONFIG=config,
            **env,
        )
        for index, config in enumerate(distribute.local_cluster(2))
    ]


def train_three_ways(module, args, folder):
    """Train the recipe `module` with `args` on 2 logical devices and as a job of 2 workers
    (fresh processes, side by side) and on one device (in this process), into `folder`/
    mirrored, workers and single; return the outputs of the mirrored run and the workers."""
    recipe = module.__name__.rsplit(".", 1)[-1]
    mirrored = start(
        recipe,
        [*args, "--run-dir", folder / "mirrored", "--distribute", "mirrored", "--devices", "2"],
        folder / "mirrored.log",
    )
    workers = start_workers(recipe, args, folder / "workers", folder, TMPDIR=folder)
    assert module.main([*map(str, args), "--run-dir", str(folder / "single")]) == 0
    return finish(mirrored, *workers)


def output(process):
    return process.log.read_text(encoding="utf-8", errors="replace")


def finish(*processes, timeout=400):
    """Wait for every process; each must exit 0. Returns their outputs."""
    for process in processes:
        process.wait(timeout=timeout)
    for process in processes:
        assert process.returncode == 0, output(process)[-3000:]
    return [output(process) for process in processes]


def assert_close(actual, expected, relative=RELATIVE, what="array"):
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    difference = float(np.max(np.abs(actual - expected)))
    assert difference <= relative * scale, f"{what} differs by {difference / scale:.3g} relative"


def assert_same_run(run_dir, reference_dir, relative=RELATIVE):
    """The last checkpoints of two runs hold the same weights, optimizer state and carried
    states (to `relative`), the same random states, and the same best score."""
    actual = checkpoints.load(run_dir / "checkpoints" / "last.ckpt")
    expected = checkpoints.load(reference_dir / "checkpoints" / "last.ckpt")
    for group in ("weights", "optimizer", "carried"):
        pairs = list(zip(getattr(actual, group), getattr(expected, group)))
        assert len(pairs) == len(getattr(expected, group)) == len(getattr(actual, group))
        for index, (a, e) in enumerate(pairs):
            assert a.shape == e.shape, (group, index)
            assert_close(a, e, relative, f"{run_dir.name}: {group}[{index}]")
    for a, e in zip(actual.rng, expected.rng):
        np.testing.assert_array_equal(a, e)  # every seed generator advanced alike
    assert actual.state["global_step"] == expected.state["global_step"]
    assert actual.state["best_score"] == pytest.approx(expected.state["best_score"], rel=1e-5)
    return actual


def assert_same_gradient_views(run_dir, reference_dir):
    """The training gradient norms the TensorBoard view recorded (from the real step: the
    global batch's gradient, in every replica) are the single device's."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "tensorboard"))
    from tensorboard_events import Events

    actual, expected = (
        Events(folder / "recurrent").scalars("gradient_norm/global")
        for folder in (run_dir, reference_dir)
    )
    assert expected and [step for step, _ in actual] == [step for step, _ in expected]
    assert [norm for _, norm in actual] == pytest.approx([norm for _, norm in expected], rel=1e-5)


def event_files(run_dir, kind):
    return list((run_dir / kind).glob("events.out.tfevents.*"))


def assert_written_by_the_chief_only(run_dir, logs, worker_log):
    """One event file per folder (the other worker wrote none there, nor anything in its
    temporary folder, which is gone), no temporaries left."""
    for kind in ("train", "validation", "recurrent"):
        assert len(event_files(run_dir, kind)) == 1, kind
    assert not list(logs.glob("rnnzoo-events-*"))  # the other worker's TMPDIR
    assert "(the chief writes it)" in worker_log
    assert no_temporaries(run_dir)


# ----------------------------------------------------------------------- the recipes
@pytest.mark.slow
def test_charlm_on_two_devices_and_two_workers_equals_one_device(tmp_path, small_text, capsys):
    """2 epochs (carried states zeroed at the second's start, in every replica), dropout,
    clipping: the same weights, carried states, gradient views; sample and inspect work."""
    args = [*CHARLM, "--data", small_text, "--epochs", "2", "--steps-per-epoch", "6"]
    args += ["--checkpoint-every", "4"]
    mirrored_out, chief_out, worker_out = train_three_ways(charlm, args, tmp_path)

    assert "distributed: mirrored over 2 logical CPU devices (2 replica(s))" in mirrored_out
    assert "worker 0 of 2 at localhost" in chief_out and "2 replica(s) in all" in chief_out
    single = tmp_path / "single"
    for run_dir in (tmp_path / "mirrored", tmp_path / "workers"):
        last = assert_same_run(run_dir, single)
        assert [a.shape for a in last.carried] == [(4, 16)] * 4  # 4 streams of both replicas
        assert_same_gradient_views(run_dir, single)
    assert_written_by_the_chief_only(tmp_path / "workers", tmp_path, worker_out)
    # Both workers report the job's figures: the same lines.
    report = [line for line in chief_out.splitlines() if line.startswith("epoch 2/2")]
    assert report and report[0] in worker_out

    capsys.readouterr()
    run_dir = str(tmp_path / "workers")
    assert charlm.main(["sample", "--run-dir", run_dir, "--length", "30", "--seed", "3"]) == 0
    assert charlm.main(["inspect", "--run-dir", run_dir, "--max-chars", "200"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and (tmp_path / "workers" / "cells.html").exists()


@pytest.mark.slow
def test_seqclass_compare_on_two_devices_and_two_workers_equals_one_device(tmp_path, capsys):
    """--compare under a strategy: one strategy for every cell, each cell equal to one
    device's; dropout (drawn for the global batch) and clipping; the probe views."""
    args = [
        *("--task", "adding", "--length", "12", "--adding-train-size", "96"),
        *("--adding-eval-size", "32", "--units", "8", "--layers", "2", "--dropout", "0.3"),
        *("--batch-size", "16", "--epochs", "1", "--steps-per-epoch", "4"),
        *("--clip-norm", "0.1", "--checkpoint-every", "2", "--log-every", "1"),
        *("--histograms-every", "2", "--probe-every", "2", "--compare", "gru,lstm"),
        "--quiet",
    ]
    train_three_ways(seqclass, args, tmp_path)
    for cell in ("gru", "lstm"):
        for run in ("mirrored", "workers"):
            run_dir = tmp_path / run / cell
            assert_same_run(run_dir, tmp_path / "single" / cell)
            assert_same_gradient_views(run_dir, tmp_path / "single" / cell)
            views = tags_in(run_dir / "recurrent")
            assert {f"gates/rnn_1/{gate}" for gate in GATES[cell]} <= views
            assert "gradient_over_time/rnn_1/curve" in views
    tables = [(tmp_path / run / "results.csv").read_text() for run in ("single", "workers")]
    assert [len(table.splitlines()) for table in tables] == [3, 3]


@pytest.mark.slow
def test_glimpse_mnist_on_two_devices_and_two_workers_equals_one_device(
    tmp_path, mnist_dir, capsys
):
    """Hard attention: the REINFORCE loss scaled by the global batch, each replica's
    location noise its rows of one device's; the glimpse views from the chief."""
    args = [
        *("--mnist-dir", mnist_dir, "--mnist-validation", "4", "--units", "8"),
        *("--glimpse-units", "4", "--location-units", "4", "--glimpses", "3"),
        *("--batch-size", "4", "--epochs", "1", "--eval-samples", "2"),
        *("--clip-norm", "0.5", "--views-every", "2", "--histograms-every", "0"),
        *("--log-every", "1", "--checkpoint-every", "2", "--quiet"),
    ]
    train_three_ways(glimpse_mnist, args, tmp_path)
    single = tmp_path / "single"
    for run in ("mirrored", "workers"):
        assert_same_run(tmp_path / run, single)
        assert_same_gradient_views(tmp_path / run, single)
    glimpses = tmp_path / "workers" / "glimpses"
    assert len(list(glimpses.glob("events.out.tfevents.*"))) == 1
    assert tags_in(glimpses) == tags_in(single / "glimpses")
    results = json.loads((tmp_path / "workers" / "results.json").read_text())
    expected = json.loads((single / "results.json").read_text())
    assert results["test_error"] == expected["test_error"]


# ------------------------------------------------------------------ faults and resume
def wait_for(path, processes, seconds=240):
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            break
        time.sleep(0.005)


@pytest.mark.slow
def test_a_killed_multi_worker_job_resumes_exactly_and_with_fewer_replicas(tmp_path, small_text):
    args = [*CHARLM, "--data", small_text, "--epochs", "2", "--steps-per-epoch", "30"]
    args += ["--checkpoint-every", "5"]
    whole = start_workers("charlm", args, tmp_path / "whole", tmp_path)
    killed_dir = tmp_path / "killed"
    killed = start_workers("charlm", args, killed_dir, tmp_path)
    last = killed_dir / "checkpoints" / "last.ckpt"
    wait_for(last, killed)
    for process in killed:  # the whole job, at once
        process.send_signal(signal.SIGKILL)
    for process in killed:
        process.wait()
        assert process.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    finish(*whole)
    state = checkpoints.load(last).state
    assert state["step"] > 0 and not state["finished"], state  # killed mid-epoch
    shutil.copytree(killed_dir, tmp_path / "one_device")

    resume = ["--resume", "--quiet"]
    resumed = start_workers("charlm", resume, killed_dir, tmp_path)
    # The same checkpoint on one device: the 4 streams' states all on one replica.
    alone = start("charlm", [*resume, "--run-dir", tmp_path / "one_device"], tmp_path / "one.log")
    chief_out, _, _ = finish(*resumed, alone)
    assert f"resuming at epoch {state['epoch'] + 1}, step {state['step']}/30" in chief_out
    actual = checkpoints.load(last)
    expected = checkpoints.load(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    for a, e in zip(actual.weights + actual.optimizer, expected.weights + expected.optimizer):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-6)
    assert actual.state["best_score"] == pytest.approx(expected.state["best_score"], abs=1e-6)
    assert_same_run(tmp_path / "one_device", tmp_path / "whole")


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0], ids=["worker", "chief"])
def test_a_dying_worker_stops_the_job_within_seconds_keeping_the_last_checkpoint(
    victim, tmp_path, small_text
):
    args = [*CHARLM, "--data", small_text, "--epochs", "1", "--steps-per-epoch", "800"]
    args += ["--checkpoint-every", "3"]
    run_dir = tmp_path / "run"
    workers = start_workers("charlm", args, run_dir, tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    wait_for(last, workers)
    workers[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    survivor = workers[1 - victim]
    survivor.wait(timeout=120)
    seconds = time.monotonic() - killed_at
    workers[victim].wait()
    assert workers[victim].returncode == -signal.SIGKILL, "the job ended before the kill"
    text = output(survivor)
    lost = "worker 0 (the chief)" if victim == 0 else "worker 1"
    assert_one_line_error(survivor.returncode, text, f"{lost} of the multi-worker job stopped")
    assert "is intact" in error_lines(text)[0] and "--resume" in error_lines(text)[0]
    assert seconds < 60, f"the survivor took {seconds:.0f} s to stop"
    state = checkpoints.load(last).state  # loads: whole, its CRCs right
    assert state["step"] > 0 and not state["finished"]


# ------------------------------------------------------------------------------ errors
TF_CONFIG = {"cluster": {"worker": ["localhost:1", "localhost:2"]}}


@pytest.mark.parametrize(
    "args, tf_config, fragments",
    [
        (["--devices", "2"], None, ["--devices 2 needs --distribute mirrored or multi-worker"]),
        (["--distribute", "mirrored", "--devices", "0"], None, ["at least 1"]),
        (["--distribute", "mirrored", "--devices", "GPU:0"], None, ["0 GPU(s), no GPU:0"]),
        (["--distribute", "mirrored", "--devices", "two"], None, ["a count (2) or device"]),
        (["--distribute", "mirrored", "--devices", "2"], None, ["already started"]),
        (["--distribute", "multi-worker"], None, ["TF_CONFIG environment variable"]),
        (["--distribute", "multi-worker"], "{", ["TF_CONFIG is not valid JSON"]),
        (["--distribute", "multi-worker"], {"cluster": {"worker": "h:1"}}, ["host:port"]),
        (
            ["--distribute", "multi-worker"],
            {**TF_CONFIG, "task": {"type": "worker", "index": 2}},
            ["`task` must name this worker"],
        ),
        (
            ["--distribute", "multi-worker", "--devices", "2"],
            {**TF_CONFIG, "task": {"type": "worker", "index": 0}},
            ["trains on its one CPU"],
        ),
    ],
)
def test_bad_distribution_flags_are_one_line_errors(
    args, tf_config, fragments, tmp_path, small_text, capsys, monkeypatch
):
    import tensorflow as tf

    tf.config.list_logical_devices()  # this process's TensorFlow has started its devices
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        text = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
        monkeypatch.setenv("TF_CONFIG", text)
    argv = ["--data", small_text, "--run-dir", tmp_path / "run", *args]
    status = charlm.main([str(a) for a in argv])
    assert_one_line_error(status, capsys.readouterr().err, *fragments)
    assert not (tmp_path / "run").exists()


def test_multi_worker_without_run_dir_is_one_line(small_text, capsys, monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({**TF_CONFIG, "task": {"type": "worker", "index": 0}})
    )
    status = charlm.main(["--data", str(small_text), "--distribute", "multi-worker"])
    assert_one_line_error(status, capsys.readouterr().err, "needs --run-dir DIR")


@pytest.mark.slow
def test_an_uneven_batch_and_a_worker_that_never_comes_are_one_line(tmp_path, small_text):
    uneven = start(
        "charlm",
        ["--data", small_text, "--batch-size", "5", "--distribute", "mirrored", "--devices", "2"],
        tmp_path / "uneven.log",
    )
    # A job of two whose second worker never starts: the first waits 3 s, then stops.
    first, _ = distribute.local_cluster(2)
    code = (
        "import sys; from rnnzoo.training import distribute; "
        "distribute.WAIT_FOR_WORKERS_SECONDS = 3; from rnnzoo.recipes import charlm; "
        "sys.exit(charlm.main(sys.argv[1:]))"
    )
    with open(tmp_path / "alone.log", "w") as log:
        alone = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "--data",
                str(small_text),
                "--run-dir",
                str(tmp_path / "run"),
                "--distribute",
                "multi-worker",
            ],
            env=subprocess_env(TF_CONFIG=first),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    alone.log = tmp_path / "alone.log"
    for process in (uneven, alone):
        process.wait(timeout=120)
    assert_one_line_error(
        uneven.returncode, output(uneven), "--batch-size 5 does not divide evenly over 2 replicas"
    )
    # TensorFlow's wait can't be interrupted: the watchdog kills the worker after its line.
    assert alone.returncode == -signal.SIGKILL
    text = output(alone)
    lines = error_lines(text)
    assert len(lines) == 1 and "did not all start within 3 s" in lines[0], text[-2000:]
    assert "Traceback" not in text
