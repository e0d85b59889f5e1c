"""The seqclass recipe's quality targets (issue 5): train, test, and say whether each is met.

Each target runs `python -m rnnzoo.recipes.seqclass` in this process with the
flags printed as "command", then prints the results table, the wall time and
one verdict line per figure the issue asks for:

    adding                 T = 200; LSTM, GRU and IRNN reach test MSE < 0.01 while the tanh
                           RNN stays near the 0.167 baseline (compare vanilla,irnn,lstm,gru)
    row-mnist              LSTM >= 98.5% test accuracy
    sms-spam               >= 98% test accuracy on the UCI SMS Spam Collection (LSTM)
    pixel-mnist            the figures reached and their cost (compare irnn,lstm);
    permuted-pixel-mnist   Le et al. 2015 report IRNN 97% / 82%, LSTM 65% / 36%

`--budget-minutes` is the training time of each cell (the recipe's
`--max-minutes`); any other flag goes to the recipe after the target's own,
so it overrides them (`--length 100 --units 64`). Data: `--shared` (default `../shared`) holds
data/mnist/*.gz and data/sms_spam/SMSSpamCollection.

    python benchmarks/seqclass_targets.py --target adding --budget-minutes 15
    python benchmarks/seqclass_targets.py --target row-mnist --budget-minutes 20
    python benchmarks/seqclass_targets.py --target sms-spam
    python benchmarks/seqclass_targets.py --target adding --budget-minutes 2   # a short run
"""

import argparse
import csv
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rnnzoo.recipes import seqclass  # noqa: E402
from rnnzoo.training.rundir import default_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASELINE_MSE = 1 / 6


def targets(shared):
    """target -> (recipe flags, checks); a check is (cell, comparison, threshold, what it says)."""
    mnist = ["--mnist-dir", str(shared / "data" / "mnist")]
    return {
        "adding": (
            ["--task", "adding", "--length", "200", "--compare", "vanilla,irnn,lstm,gru"],
            [
                ("lstm", "<", 0.01, "LSTM test MSE < 0.01"),
                ("gru", "<", 0.01, "GRU test MSE < 0.01"),
                ("irnn", "<", 0.01, "IRNN test MSE < 0.01"),
                ("vanilla", ">", 0.1, "tanh RNN stays near the 0.167 baseline (test MSE > 0.1)"),
            ],
        ),
        "row-mnist": (
            ["--task", "row-mnist", *mnist, "--compare", "lstm"],
            [("lstm", ">=", 0.985, "LSTM >= 98.5% test accuracy")],
        ),
        "sms-spam": (
            [
                "--task",
                "text",
                "--data",
                str(shared / "data" / "sms_spam" / "SMSSpamCollection"),
                "--compare",
                "lstm",
            ],
            [("lstm", ">=", 0.98, "SMS Spam >= 98% test accuracy")],
        ),
        "pixel-mnist": (["--task", "pixel-mnist", *mnist, "--compare", "irnn,lstm"], []),
        "permuted-pixel-mnist": (
            ["--task", "permuted-pixel-mnist", *mnist, "--compare", "irnn,lstm"],
            [],
        ),
    }


def passes(value, comparison, threshold):
    return {"<": value < threshold, ">": value > threshold, ">=": value >= threshold}[comparison]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=(
            "Other flags go to the recipe, after the target's own (e.g. --length 100 --units 64)."
        ),
    )
    parser.add_argument("--target", required=True, choices=list(targets(Path("."))))
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=15.0,
        help="training minutes per cell (the recipe's --max-minutes; default 15)",
    )
    parser.add_argument(
        "--shared", default=str(REPO / ".." / "shared"), help="the shared data folder"
    )
    parser.add_argument("--run-dir", help="default tensorboard_logs/seqclass/<target>-<timestamp>")
    args, extra = parser.parse_known_args(argv)

    flags, checks = targets(Path(args.shared).resolve())[args.target]
    stamped = default_path(seqclass.RECIPE.name)
    run_dir = Path(args.run_dir or stamped.with_name(f"{args.target}-{stamped.name}"))
    flags = [
        *flags,
        "--max-minutes",
        f"{args.budget_minutes:g}",
        "--quiet",
        *extra,
        "--run-dir",
        str(run_dir),
    ]
    command = "python -m rnnzoo.recipes.seqclass " + " ".join(shlex.quote(f) for f in flags)
    print(f"command: {command}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; load average "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the start"
    )
    started = time.monotonic()
    status = seqclass.main(flags)
    wall = time.monotonic() - started
    if status:
        return status
    rows = {
        row["cell"]: row for row in csv.DictReader((run_dir / "results.csv").open(encoding="utf-8"))
    }
    print(f"wall time: {wall / 60:.1f} minutes for the whole target (data, training, evaluation)")
    test_column = next(name for name in next(iter(rows.values())) if name.startswith("test "))
    failed = 0
    for cell, comparison, threshold, what in checks:
        if cell not in rows:
            continue  # --compare chose other cells
        row = rows[cell]
        met = row[test_column] != "" and passes(float(row[test_column]), comparison, threshold)
        failed += not met
        figure = f"{float(row[test_column]):.4f}" if row[test_column] else row["note"]
        print(f"target {what}: {cell} {test_column} {figure} -> {'met' if met else 'NOT met'}")
    if args.target == "adding":
        print(f"(predicting 1.0 scores MSE {BASELINE_MSE:.4f})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
