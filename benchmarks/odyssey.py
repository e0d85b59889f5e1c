"""Greff et al.'s "LSTM: A Search Space Odyssey" in one command: every variant, one budget.

Greff, Srivastava, Koutník, Steunebrink & Schmidhuber (IEEE TNNLS 2017, arXiv 1503.04069)
compare the "vanilla" LSTM (with peepholes) to eight variants, each changing one thing. This
script trains all nine (`rnnzoo.cells.names()`: peephole, nig, nfg, nog, niaf, noaf, np,
cifg, fgr) with the same budget, in steps, on several seeds, on two tasks, through the
recipes' own `--compare`:

    charlm      Tiny Shakespeare (tensorflow-datasets), one layer: test bits per character
    row-mnist   MNIST read one 28-pixel row per step (seqclass): test accuracy

and prints, per variant, the parameter count and the mean +- standard deviation (over seeds)
of the test figure, with its difference from the baseline in units of the baseline's
standard deviation. A fixed number of steps (not minutes) makes the figures independent of
how busy the machine is; the wall time is printed at the end.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python benchmarks/odyssey.py
    python benchmarks/odyssey.py --tasks row-mnist --seeds 1 --variants peephole,nfg   # a taste
    python benchmarks/odyssey.py --resume --out tensorboard_logs/odyssey/<stamp>       # go on

Every comparison is an ordinary `--compare` run directory under `--out`
(`<task>/seed<seed>/<variant>/...`), so `--resume` continues an interrupted benchmark
where it stopped.
"""

import argparse
import csv
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import arguments  # noqa: E402

from rnnzoo import cells  # noqa: E402
from rnnzoo.recipes import charlm, seqclass  # noqa: E402
from rnnzoo.training.rundir import default_path  # noqa: E402

VARIANTS = "peephole,nig,nfg,nog,niaf,noaf,np,cifg,fgr"
REPO = Path(__file__).resolve().parents[1]

# The budget of every run, the same for each variant: flags of the recipe. Each value's reason:
TASKS = {
    "charlm": (
        charlm,
        "test_loss",  # nats per character, shown in bits
        [
            "--layers", "1",  # one layer: the cell alone makes the difference
            "--units", "128",  # small enough for 27 runs on 2 cores in about an hour
            "--epochs", "4",  # 4 x 150 steps: past the fast early fall of the loss
            "--steps-per-epoch", "150",  # about one pass over Tiny Shakespeare's streams
            "--lr-decay-after", "100",  # a constant rate (Greff et al. tune theirs; we fix one)
            "--max-minutes", "0",  # steps, not minutes, bound the run: load-independent
            "--no-views",  # TensorBoard's probe views cost time and change nothing here
            "--epoch-sample-length", "0",
            "--sample-length", "100",
            "--checkpoint-every", "0",
        ],
    ),
    "row-mnist": (
        seqclass,
        "test_accuracy",
        [
            "--task", "row-mnist",
            "--units", "128",  # seqclass's default model
            "--epochs", "3",  # 3 x 400 steps of 64 images: about 1.4 passes over the training set
            "--steps-per-epoch", "400",
            "--max-minutes", "0",
            "--histograms-every", "0",  # no views: they change nothing here
            "--probe-every", "0",
            "--checkpoint-every", "0",
        ],
    ),
}  # fmt: skip

# What Greff et al. found (their Section 5 and Fig. 3), to put beside the measured table.
FINDINGS = {
    "nfg": "removing the forget gate hurts significantly",
    "noaf": "removing the output activation hurts significantly",
    "nig": "removing the input gate hurts",
    "nog": "removing the output gate hurts",
    "niaf": "removing the input activation hurts (little on music)",
    "np": "removing the peepholes costs little",
    "cifg": "coupling the input and forget gates costs little",
    "fgr": "full gate recurrence does not help (and adds 9 H^2 weights)",
    "peephole": "the baseline",
}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="charlm,row-mnist", help="comma-separated tasks")
    parser.add_argument(
        "--seeds", default="1,2,3", help="comma-separated seeds (>= 3 for a spread)"
    )
    parser.add_argument("--variants", default=VARIANTS, help="comma-separated cell names")
    parser.add_argument(
        "--shared", default=str(REPO.parent / "shared"), help="folder holding data/mnist"
    )
    parser.add_argument("--out", help="output folder (default tensorboard_logs/odyssey/<stamp>)")
    parser.add_argument("--resume", action="store_true", help="continue the runs in --out")
    args = parser.parse_args(argv)
    args.tasks = arguments.names(parser, "--tasks", args.tasks, known=list(TASKS))
    args.variants = arguments.names(parser, "--variants", args.variants, known=cells.names())
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated whole numbers, received {args.seeds!r}")
    if args.resume and not args.out:
        parser.error("--resume needs --out, the benchmark's folder")
    return args


def run_task(task, seed, variants, out, shared, resume):
    """Train every variant on `task` with `seed` (one `--compare`); return its results.csv rows."""
    recipe, _, flags = TASKS[task]
    run_dir = out / task / f"seed{seed}"
    argv = [*flags, "--seed", str(seed), "--compare", variants, "--run-dir", str(run_dir)]
    if task == "row-mnist":
        argv += ["--mnist-dir", str(Path(shared) / "data" / "mnist")]
    if resume and (run_dir / "config.toml").exists():
        argv = ["--resume", "--run-dir", str(run_dir)]
    argv += ["--quiet"]
    print(f"--- {task}, seed {seed}: python -m {recipe.__name__} {' '.join(argv)}", flush=True)
    status = recipe.main(argv)
    if status != 0:  # the recipe has said why, in its own error line
        raise SystemExit(status)
    with (run_dir / "results.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def figure(task, row):
    """The row's test figure: bits per character (charlm) or accuracy (row-mnist)."""
    value = float(row[{"charlm": "test loss", "row-mnist": "test accuracy"}[task]])
    return value / math.log(2.0) if task == "charlm" else value


def table(results, tasks, variants):
    """The Markdown table of every variant's parameters and mean +- sd per task."""
    headers = ["variant"]
    for task in tasks:
        unit = "test bits/char (lower is better)" if task == "charlm" else "test accuracy"
        headers += [f"{task} parameters", f"{task} {unit}", f"{task} vs baseline (sd)"]
    headers.append("Greff et al. found")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for variant in variants:
        cells = [f"`{variant}`"]
        for task in tasks:
            values = results[task].get(variant, {}).get("values", [])
            if not values:
                cells += ["", "", ""]
                continue
            mean = statistics.mean(values)
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{results[task][variant]['parameters']:,}")
            cells.append(f"{mean:.4f} ± {spread:.4f} (n={len(values)})")
            base = results[task].get("peephole", {}).get("values", [])
            if variant != "peephole" and len(base) > 1 and statistics.stdev(base) > 0:
                cells.append(f"{(mean - statistics.mean(base)) / statistics.stdev(base):+.1f}")
            else:
                cells.append("")
        cells.append(FINDINGS.get(variant, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_arguments(argv)
    tasks, seeds, variants = args.tasks, args.seeds, args.variants
    out = Path(args.out) if args.out else default_path("odyssey")
    started = time.monotonic()
    results = {task: {} for task in tasks}
    for task in tasks:
        for seed in seeds:
            for row in run_task(task, seed, ",".join(variants), out, args.shared, args.resume):
                entry = results[task].setdefault(
                    row["cell"], {"values": [], "parameters": int(row["parameters"])}
                )
                if row["note"]:
                    print(f"{task}, seed {seed}, {row['cell']}: {row['note']}")
                else:
                    entry["values"].append(figure(task, row))
    minutes = (time.monotonic() - started) / 60
    command = "python benchmarks/odyssey.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = "\n".join(
        [
            f"Command: `{command.strip()}`  ",
            f"Date: {datetime.date.today().isoformat()}; {platform.machine()}, "
            f"{os.cpu_count()} cores; wall time {minutes:.1f} min (this process); seeds "
            f"{', '.join(map(str, seeds))}; runs in {out}.",
            "",
            table(results, tasks, variants),
        ]
    )
    (out / "odyssey.md").write_text(report + "\n", encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
