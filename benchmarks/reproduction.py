"""A long run's README row (issue 15, reproducing the papers), finished or still going.

Reads a run directory of any recipe: its config.toml, the history in checkpoints/last.ckpt
(so a run still training, or stopped, can be read too) and results.json once it has finished.
Prints the learning curve's last points, the figure reached beside the paper's, met or not, the
power law fitted to the later half of the curve and what it projects (as the targets
benchmarks do), and one Markdown row for the README's Results.

    python benchmarks/reproduction.py --run-dir /work/runs/repro/war_and_peace_lstm_2x256 \\
        --command "python -m rnnzoo.recipes.charlm --config charlm_war_and_peace"

The paper's figure is chosen by what the run trains: the task or dataset, and the cell.
    seqclass   pixel-mnist: IRNN >= 97.0% (Le, Jaitly & Hinton 2015), LSTM >= 98% (issue 15)
               permuted-pixel-mnist: IRNN >= 82.0% (Le et al.), LSTM >= 88% (issue 15)
    glimpse    mnist <= 1.29%, translated <= 1.86%, cluttered 60x60 <= 5.23%, cluttered 100x100
               with 4 / 6 / 8 glimpses <= 14.95% / 11.58% / 10.83% (Mnih et al. 2014)
    charlm     no figure: Karpathy et al.'s (2015) Table 1 could not be read from this
               machine, so the row gives the test cross-entropy reached and the curve
"""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import arguments  # noqa: E402
from projection import power_law_projection  # noqa: E402

from rnnzoo.training import checkpoints  # noqa: E402
from rnnzoo.training import config as config_io  # noqa: E402
from rnnzoo.training.errors import RecipeError  # noqa: E402
from rnnzoo.training.loop import cut_short  # noqa: E402

# seqclass (task, cell) -> (the least test accuracy, whose figure it is)
ACCURACY = {
    ("pixel-mnist", "irnn"): (0.97, "Le, Jaitly & Hinton 2015"),
    ("pixel-mnist", "lstm"): (0.98, "issue 15, after later work with Adam and clipping"),
    ("permuted-pixel-mnist", "irnn"): (0.82, "Le, Jaitly & Hinton 2015"),
    ("permuted-pixel-mnist", "lstm"): (0.88, "issue 15"),
}
# glimpse_mnist (dataset, size, glimpses) -> the most test error (Mnih et al. 2014, Tables 1-2)
ERROR = {
    ("mnist", None, 6): 0.0129,
    ("translated", 60, 6): 0.0186,
    ("cluttered", 60, 8): 0.0523,
    ("cluttered", 100, 4): 0.1495,
    ("cluttered", 100, 6): 0.1158,
    ("cluttered", 100, 8): 0.1083,
}


def target(config):
    """(what the run is, the figure's name, how to turn a history record into the figure,
    the paper's figure or None, lower is better, the source) for a run's config; what the
    run is names its dtype policy where it is not float32."""
    what, *rest = _target(config)
    policy = config.get("dtype_policy", "float32")
    return (what if policy == "float32" else f"{what}, {policy}", *rest)


def _target(config):
    if "task" in config:  # seqclass
        goal, source = ACCURACY.get((config["task"], config["cell"]), (None, ""))
        what = f"{config['task']}, {config['cell']} {config['units']}"
        return what, "accuracy", lambda r: r["validation_accuracy"], goal, False, source
    if "dataset" in config:  # glimpse_mnist
        size = None if config["dataset"] == "mnist" else config["size"]
        goal = ERROR.get((config["dataset"], size, config["glimpses"]))
        what = f"{config['dataset']} {size or 28}x{size or 28}, {config['glimpses']} glimpses"
        source = "Mnih et al. 2014"
        return what, "error", lambda r: r["validation_error"], goal, True, source
    corpus = Path(config["data"]).stem if config["data"] else "tiny_shakespeare"
    what = f"{corpus}, {config['layers']}x{config['units']} {config['cell']}"
    return what, "loss", lambda r: r["validation_loss"], None, True, "Karpathy et al. 2015"


def read_run(run_dir):
    """A run directory's config, its history (from checkpoints/last.ckpt) and its results
    (None until it has finished); a folder that is not a run, or a damaged file, is a
    `RecipeError` saying so."""
    if not (run_dir / "config.toml").is_file():
        raise RecipeError(
            f"{run_dir} is not a run directory (no config.toml); give the --run-dir of a "
            "charlm, seqclass or glimpse_mnist run"
        )
    config = config_io.read_toml(run_dir / "config.toml")
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        raise RecipeError(f"{run_dir} has no checkpoint yet; try again after its first one")
    history = checkpoints.load(last).state["history"]
    results_path = run_dir / "results.json"
    try:
        results = json.loads(results_path.read_text()) if results_path.exists() else None
    except (ValueError, OSError) as error:
        raise RecipeError(
            f"{results_path} is damaged ({error}); delete it to read the run as unfinished "
            "(its history is in checkpoints/last.ckpt)"
        ) from None
    return config, history, results


def show(name, value):
    return f"{100 * value:.2f}%" if name in ("accuracy", "error") else f"{value:.4f} nats/char"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="the run directory to read")
    parser.add_argument("--command", default="", help="the command that ran it, for the row")
    parser.add_argument(
        "--last", type=arguments.whole, default=5, help="curve points shown (default 5)"
    )
    args = parser.parse_args(argv)

    run_dir = Path(args.run_dir)
    try:
        config, history, results = read_run(run_dir)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    what, name, figure, goal, lower, source = target(config)
    if not history:
        print(f"run: {run_dir} ({what}) has no evaluation yet; try again after its first epoch.")
        return 1

    print(f"run: {run_dir} ({what}); {len(history)} evaluations")
    print(f"\n| epoch | steps | minutes | train loss | validation {name} |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    # An epoch a budget cut has fewer steps than the run's full ones; the training log marks
    # it, and so does this table.
    epoch_steps = max(record["steps"] for record in history)
    for record in history[-args.last :]:
        epoch = f"{record['epoch']}{cut_short(record, epoch_steps)}"
        print(
            f"| {epoch} | {record['global_step']:,} | {record['seconds'] / 60:.1f} "
            f"| {record['train_loss']:.4f} | {show(name, figure(record))} |"
        )
    # Once the run has finished, the checkpoint the test scored (picked by the run's own
    # monitor, e.g. the validation loss for seqclass; results.json holds its evaluation, which
    # matters where a budget cut an epoch and a resume finished it: two records of one epoch);
    # until then, the best validation figure.
    if results is not None and f"best_validation_{name}" in results:
        label, value = "the best checkpoint's validation", results[f"best_validation_{name}"]
        epoch = results["best_epoch"]
    else:
        best = (min if lower else max)(history, key=figure)
        label, value, epoch = "best validation", figure(best), best["epoch"]
    reached = f"{label} {name} {show(name, value)} at epoch {epoch}"
    minutes = history[-1]["seconds"] / 60
    if results is not None:
        test = results[f"test_{name}"]
        reached += f"; test {name} {show(name, test)}"
        verdict = (
            ""
            if goal is None
            else ("met" if (test <= goal if lower else test >= goal) else "not met")
        )
    else:
        verdict = "" if goal is None else "not finished"
    if goal is not None:
        paper = f"{show(name, goal)}, {source}"
    elif name == "loss":
        paper = f"{source}: Table 1 not checked"
    else:
        paper = "no paper figure for this setup"
    print(f"\nreached: {reached} after {minutes:.1f} min of training ({paper})")

    projection = ""
    if goal is not None and verdict != "met":
        error = (lambda r: figure(r)) if lower else (lambda r: 1 - figure(r))
        points = [(r["seconds"] / 60, error(r)) for r in history]
        slope, at = power_law_projection(points, goal if lower else 1 - goal)
        if slope is not None:
            reach = f"reaches {show(name, goal)} after about {at:.0f} min" if at else "does not"
            projection = (
                f"the later half of the curve fits minutes^{slope:.2f} and {reach} "
                "(an extrapolation)"
            )
            print(f"projection: {projection}")

    cpus = len(os.sched_getaffinity(0))
    machine = f"{platform.machine()}, {cpus} CPU{'s' if cpus > 1 else ''}"
    outcome = f"{reached} ({paper}){': ' + verdict if verdict else ''}"
    if projection:
        outcome += f"; {projection}"
    # The curve: one point an epoch, the resumed evaluation of an epoch a budget cut (the
    # table above shows both).
    epochs = {record["epoch"]: record for record in history}
    curve = ", ".join(show(name, figure(r)) for r in list(epochs.values())[-args.last :])
    print("\n| target | command | result | training | curve (last points) | machine | date |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {what} | `{args.command or '(see the run directory)'}` | {outcome} | "
        f"{history[-1]['epoch']} epochs, {history[-1]['global_step']:,} steps, "
        f"{minutes:.1f} min | {curve} | {machine} | {datetime.date.today()} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
