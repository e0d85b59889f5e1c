"""The glimpse_mnist recipe's targets (issue 6): train RAM, test it, compare with the paper.

Runs `python -m rnnzoo.recipes.glimpse_mnist` in this process with the flags
printed as "command", then prints the validation-error curve (epoch, minutes,
error), a least-squares fit of log(error) against log(minutes) over the later
half of the curve with what it projects, and one Markdown table row:

    target       dataset, glimpses, retina                      paper (Mnih et al. 2014)
    mnist        28x28 MNIST, 6 glimpses of 8x8                 <= 1.29% test error
    translated   60x60 translated MNIST, 6 glimpses, 3 x 12x12  <= 1.86%
    cluttered    60x60 cluttered (4 pieces), 8 glimpses         <= 5.23%

The paper trained for far longer than a CPU allows; `--budget-minutes` is the
training time (the recipe's `--max-minutes`) and the projection says how the
curve extrapolates. A projection is not a measurement: the table reports the
error reached. Any other flag goes to the recipe after the target's own.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python benchmarks/glimpse_targets.py \\
        --target mnist --budget-minutes 15
    python benchmarks/glimpse_targets.py --target cluttered --budget-minutes 15 \\
        --mnist-dir ../shared/data/mnist
    python benchmarks/glimpse_targets.py --target mnist --budget-minutes 1 --attention soft
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from projection import power_law_projection  # noqa: E402

from rnnzoo.recipes import glimpse_mnist  # noqa: E402
from rnnzoo.training import checkpoints  # noqa: E402
from rnnzoo.training.rundir import default_path  # noqa: E402

# target -> (recipe flags, the paper's test error, what the paper's row is)
TARGETS = {
    "mnist": (["--dataset", "mnist"], 0.0129, "28x28 MNIST, RAM 6 glimpses, 8x8, 1 scale"),
    "translated": (
        ["--dataset", "translated"],
        0.0186,
        "60x60 translated MNIST, RAM 6 glimpses, 12x12, 3 scales",
    ),
    "cluttered": (
        ["--dataset", "cluttered"],
        0.0523,
        "60x60 cluttered MNIST (4 pieces), RAM 8 glimpses, 12x12, 3 scales",
    ),
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Other flags go to the recipe, after the target's own (e.g. --attention soft).",
    )
    parser.add_argument("--target", required=True, choices=list(TARGETS))
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=15.0,
        help="training minutes (the recipe's --max-minutes; default 15)",
    )
    parser.add_argument(
        "--run-dir", help="default tensorboard_logs/glimpse_mnist/<target>-<timestamp>"
    )
    args, extra = parser.parse_known_args(argv)

    flags, paper, row = TARGETS[args.target]
    stamped = default_path(glimpse_mnist.RECIPE.name)
    run_dir = Path(args.run_dir or stamped.with_name(f"{args.target}-{stamped.name}"))
    flags = [
        *flags,
        "--max-minutes",
        f"{args.budget_minutes:g}",
        "--epochs",
        "1000",
        "--quiet",
        *extra,
        "--run-dir",
        str(run_dir),
    ]
    command = "python -m rnnzoo.recipes.glimpse_mnist " + " ".join(shlex.quote(f) for f in flags)
    print(f"command: {command}")
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs"
    print(f"machine: {machine}; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    started = time.monotonic()
    status = glimpse_mnist.main(flags)
    wall = time.monotonic() - started
    if status:
        return status
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    history = checkpoints.load(run_dir / "checkpoints" / "last.ckpt").state["history"]
    print("\n| epoch | minutes | validation error |\n| ---: | ---: | ---: |")
    for record in history:
        print(
            f"| {record['epoch']} | {record['seconds'] / 60:.1f} | "
            f"{100 * record['validation_error']:.2f}% |"
        )
    curve = [(record["seconds"] / 60, record["validation_error"]) for record in history]
    slope, minutes = power_law_projection(curve, paper)
    if slope is not None:
        reach = (
            f"reaches {100 * paper:.2f}% after about {minutes:.0f} minutes"
            if minutes
            else ("does not fall")
        )
        print(
            f"\nprojection (fit of the later half of the curve, error ~ minutes^{slope:.2f}): "
            f"{reach} -- an extrapolation, not a measurement"
        )
    met = results["test_error"] <= paper
    print(f"\nwall time: {wall / 60:.1f} minutes (data, training, evaluation)")
    print(
        f"target {row} <= {100 * paper:.2f}% test error: test error "
        f"{100 * results['test_error']:.2f}% -> {'met' if met else 'NOT met'}"
    )
    print("\n| target | command | test error (paper) | training | wall time | machine | date |")
    print(
        f"| {row} | `{command}` | {100 * results['test_error']:.2f}% ({100 * paper:.2f}%) | "
        f"{results['epochs']} epochs, {results['steps']:,} steps, "
        f"{results['train_seconds'] / 60:.1f} min | {wall / 60:.1f} min | {machine} | "
        f"{datetime.date.today()} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
