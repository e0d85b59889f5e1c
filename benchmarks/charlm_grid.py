"""Karpathy, Johnson & Fei-Fei's grid (2015, the layout of their Table 1) from charlm runs.

Reads finished run directories of `python -m rnnzoo.recipes.charlm train` (their config.toml
and results.json) and prints, per corpus, the test cross-entropy of each run's best
checkpoint in nats/char: a row per cell and depth, a column per width, as the paper lays out
its grid (runs trained under a mixed dtype policy on rows of their own, named so). Then every
run on a row of its own, with its parameters, the validation curve at epochs 10, 20 and 25,
the best validation epoch and its training time: the rows of the README's War and Peace
tables.

    python benchmarks/charlm_grid.py /work/runs/repro13/wp_*

A run still training (no results.json yet) is named and left out; `benchmarks/reproduction.py
--run-dir RUN` reads its curve so far.
"""

import argparse
import json
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "vanilla": "vanilla RNN"}
CURVE_EPOCHS = (10, 20, 25)


def read_run(run_dir):
    """A finished run's grid entry, or None if it has no results.json yet.

    Raises ValueError, saying why, for a folder that is not a charlm run directory.
    """
    if not (run_dir / "config.toml").exists():
        raise ValueError(f"{run_dir} is not a run directory (no config.toml)")
    results_path = run_dir / "results.json"
    if not results_path.exists():
        return None
    results = json.loads(results_path.read_text())
    if results.get("recipe") != "charlm":
        raise ValueError(f"{run_dir} is a {results.get('recipe')} run, not a charlm one")
    config = tomllib.loads((run_dir / "config.toml").read_text())
    validation = {r["epoch"]: r["validation_loss"] for r in results["history"]}
    return {
        "corpus": Path(config["data"]).stem if config["data"] else "tiny_shakespeare",
        "cell": config["cell"],
        "layers": config["layers"],
        "units": config["units"],
        "policy": config.get("dtype_policy", "float32"),
        "parameters": results["parameters"],
        "epochs": results["epochs"],
        "best_epoch": results["best_epoch"],
        "best_validation": results["best_validation_loss"],
        "curve": [validation.get(epoch) for epoch in CURVE_EPOCHS],
        "test": results["test_loss"],
        "minutes": results["train_seconds"] / 60,
    }


def cell_name(cell):
    return CELL_NAMES.get(cell, cell)


def order(run):
    """Rows in the order LSTM, GRU, vanilla RNN, then any other cell; by depth, float32 first,
    then width."""
    known = list(CELL_NAMES)
    rank = known.index(run["cell"]) if run["cell"] in known else len(known)
    return rank, run["cell"], run["layers"], run["policy"] != "float32", run["units"]


def precision(policy):
    """The label of a mixed dtype policy (", mixed_bfloat16"); "" for float32."""
    return "" if policy == "float32" else f", {policy}"


def grid_table(runs):
    """Markdown: a row per (cell, layers), a column per units, test nats/char (epochs)."""
    widths = sorted({run["units"] for run in runs})
    entries = {(run["cell"], run["layers"], run["policy"], run["units"]): run for run in runs}
    rows = list(
        dict.fromkeys(
            (run["cell"], run["layers"], run["policy"]) for run in sorted(runs, key=order)
        )
    )
    lines = [
        "| cell, layers | " + " | ".join(f"{units} units" for units in widths) + " |",
        "| --- |" + " ---: |" * len(widths),
    ]
    for cell, layers, policy in rows:
        cells = []
        for units in widths:
            run = entries.get((cell, layers, policy, units))
            cells.append("" if run is None else f"{run['test']:.4f} ({run['epochs']})")
        label = f"{cell_name(cell)}, {layers}{precision(policy)}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(runs):
    """Markdown: one run a row, its parameters, curve, best epoch, test and minutes."""
    epochs = ", ".join(str(epoch) for epoch in CURVE_EPOCHS)
    lines = [
        f"| cell, layers × units | parameters | validation nats/char at epochs {epochs} "
        "| best validation (epoch) | **test nats/char** | training |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for run in sorted(runs, key=order):
        curve = ", ".join("–" if loss is None else f"{loss:.4f}" for loss in run["curve"])
        lines.append(
            f"| {cell_name(run['cell'])} {run['layers']}×{run['units']}{precision(run['policy'])} "
            f"| {run['parameters']:,} | {curve} "
            f"| {run['best_validation']:.4f} ({run['best_epoch']}) | **{run['test']:.4f}** "
            f"| {run['minutes']:.1f} min |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="charlm run directories")
    args = parser.parse_args(argv)

    runs = []
    for run_dir in args.run_dirs:
        try:
            run = read_run(run_dir)
        except ValueError as error:
            print(f"error: {error}; give charlm runs", file=sys.stderr)
            return 2
        if run is None:
            print(f"{run_dir}: not finished (no results.json), left out")
        else:
            runs.append(run)
    for corpus in sorted({run["corpus"] for run in runs}):
        of_corpus = [run for run in runs if run["corpus"] == corpus]
        print(f"\n{corpus}: test nats/char of the best checkpoint (epochs trained)\n")
        print(grid_table(of_corpus))
        print()
        print(runs_table(of_corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
