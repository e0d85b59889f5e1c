"""Steps per second of the char LM on one device, on 2 logical devices, and as a job of 2
worker processes on this machine (`--distribute none | mirrored | multi-worker`).

Each contender is a fresh `python -m rnnzoo.recipes.charlm` process (a multi-worker job: two,
with their TF_CONFIG on localhost ports), training the same model on the same global batch
for the same steps; the figure is the steps over the training seconds the run reports in its
results.json (start-up, data preparation and the test split are not counted; the small
validation split is). The contenders alternate, `--repeats` times, and the ratios to the
single device are taken within each round, then their median.

    python benchmarks/distributed_scaling.py                   # Tiny Shakespeare from ../shared
    python benchmarks/distributed_scaling.py --steps 20 --repeats 1 --units 64   # a taste

What a CPU machine can show: the replicas share its cores, so the same arithmetic split over
two devices or two processes is not faster; it pays the all-reduce of the gradients each
step and (multi-worker) the gRPC between processes. The figures measure that overhead, the
price of data parallelism; on N GPUs each replica has a device of its own and steps per
second grow towards N times as the per-replica batch keeps each busy.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import arguments

from rnnzoo.training import distribute

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "tiny_shakespeare" / "input.txt"
CONTENDERS = ("none", "mirrored", "multi-worker")


def charlm_args(options, run_dir):
    return [
        *("--data", options.data, "--run-dir", run_dir),
        *("--layers", "2", "--units", options.units, "--embedding-dim", "64"),
        *("--seq-length", options.seq_length, "--batch-size", options.batch_size),
        *("--epochs", "1", "--steps-per-epoch", options.steps, "--max-minutes", "0"),
        *("--validation-fraction", "0.01", "--train-fraction", "0.9"),
        *("--no-views", "--epoch-sample-length", "0", "--sample-length", "1"),
        *("--checkpoint-every", "0", "--quiet"),
    ]


def run(mode, options, folder):
    """One training of `mode`; its steps per second."""
    run_dir = folder / f"{mode}-{time.monotonic_ns()}"
    args = [sys.executable, "-m", "rnnzoo.recipes.charlm", *map(str, charlm_args(options, run_dir))]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    if mode == "none":
        commands = [(args, env)]
    elif mode == "mirrored":
        commands = [([*args, "--distribute", "mirrored", "--devices", "2"], env)]
    else:
        commands = [
            ([*args, "--distribute", "multi-worker"], dict(env, TF_CONFIG=config))
            for config in distribute.local_cluster(2)
        ]
    processes = [
        subprocess.Popen(
            command, env=environment, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for command, environment in commands
    ]
    outputs = [process.communicate()[0].decode(errors="replace") for process in processes]
    for process, output in zip(processes, outputs):
        if process.returncode != 0:
            sys.exit(f"error: the {mode} run failed (exit {process.returncode}):\n{output[-3000:]}")
    results = json.loads((run_dir / "results.json").read_text())
    return results["steps"] / results["train_seconds"], results["parameters"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="text file (default Tiny Shakespeare)")
    parser.add_argument(
        "--units", type=arguments.count, default=256, help="units per layer (2 layers)"
    )
    parser.add_argument("--batch-size", type=arguments.count, default=64, help="the global batch")
    parser.add_argument("--seq-length", type=arguments.count, default=100)
    parser.add_argument("--steps", type=arguments.count, default=40, help="training steps per run")
    parser.add_argument(
        "--repeats", type=arguments.count, default=3, help="rounds of all contenders"
    )
    options = parser.parse_args(argv)
    if not Path(options.data).is_file():
        parser.exit(2, f"error: no text at {options.data}; pass --data FILE.\n")
    rates = {mode: [] for mode in CONTENDERS}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(options.repeats):
            for mode in CONTENDERS:
                rate, parameters = run(mode, options, Path(folder))
                rates[mode].append(rate)
                print(f"round {round_ + 1}: {mode}: {rates[mode][-1]:.2f} steps/s", flush=True)
    shape = (
        f"2x{options.units} LSTM, global batch {options.batch_size}, "
        f"{options.seq_length} steps of TBPTT, {options.steps} training steps; "
        f"{parameters:,} weights ({parameters * 4 / 2**20:.1f} MiB of float32 gradients a step)"
    )
    print(f"\n{shape}; {datetime.date.today()}, {platform.node()}, {os.cpu_count()} CPUs")
    print("| --distribute | processes x replicas | steps/s (median) | vs one device |")
    print("| --- | --- | --- | --- |")
    layout = {"none": "1 x 1", "mirrored": "1 x 2 (logical CPUs)", "multi-worker": "2 x 1"}
    for mode in CONTENDERS:
        ratio = statistics.median(a / b for a, b in zip(rates[mode], rates["none"]))
        print(f"| {mode} | {layout[mode]} | {statistics.median(rates[mode]):.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
