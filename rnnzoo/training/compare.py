"""Train several cells on the same task with the same budget, then tabulate: `--compare`.

Any recipe whose config has a `compare` field (the cells, "vanilla,irnn,lstm")
and a `cell` field gets it. One comparison directory holds one ordinary run
directory per cell, each its own TensorBoard run, and the table of their results:

    <run_dir>/
        config.toml            the comparison's resolved config
        <cell>/                one run directory per cell (see rnnzoo.training.rundir)
        results.md, results.csv  one row per finished cell, rewritten after each

`compare` prepares the data once and trains the cells in order through
`rnnzoo.training.runner.train`. Resumed, it continues every cell that was
started (one that finished keeps its results unless a larger `--epochs` or
`--max-minutes` leaves it more to do) and starts the rest. A cell whose loss
diverges gets a note in the table, and the next cell still trains.
"""

import csv
import dataclasses
import io

from rnnzoo import cells
from rnnzoo.training import config as config_io
from rnnzoo.training import distribute, runner
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.resume import config_values, record_schedule
from rnnzoo.training.rundir import RESULTS_FILE, RunDirectory, write_atomic


def parse_names(text, known, what="cell"):
    """`"vanilla, lstm"` -> `["vanilla", "lstm"]`, each checked against `known`, no repeats."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise RecipeError(
            f"--compare lists no {what}s; give names separated by commas, e.g. {','.join(known)}."
        )
    unknown = [name for name in names if name not in known]
    if unknown:
        meant = {name: cells.registry.closest(name, known) for name in unknown}
        listed = [
            f"{name} (did you mean {meant[name]!r}?)" if meant[name] else name for name in unknown
        ]
        raise RecipeError(
            f"--compare: unknown {what}(s) {', '.join(listed)}; "
            f"expected names from: {', '.join(known)}."
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RecipeError(
            f"--compare lists {', '.join(repeated)} more than once; list each {what} once."
        )
    return names


def cell_names(config):
    """The cells a run of `config` trains: those `--compare` lists (checked), else `--cell`."""
    return parse_names(config.compare, cells.names()) if config.compare else [config.cell]


def compare(recipe, config, run_dir=None, resume=False, log=print, verbose=1, distribution=None):
    """Train every cell of `config.compare` on the same data; returns their results dicts.
    Every cell trains under `distribution` (a `distribute.Distribution`); in a multi-worker
    job only the chief writes the comparison's files."""
    names = parse_names(config.compare, cells.names())
    distribution = distribution or distribute.Distribution()
    distribution.check_run_dir(run_dir)
    replicas = distribute.replicas(distribution, log)  # before the data starts TensorFlow
    replicas.check_batch(config.batch_size)
    run = runner.run_directory(recipe, run_dir, replicas)
    header = f"rnnzoo {recipe.name} comparison of {', '.join(names)}."
    if resume:
        run.require("--resume")
        record_schedule(run, config, config_values(type(config), run), log)
    data = recipe.prepare_data(config, None, log)
    rows = []
    try:
        run.open(log)
        if not resume and run.writes:  # (the others might see the chief's new files)
            if any(RunDirectory(run.path / name).config_path.exists() for name in names):
                raise RecipeError(
                    f"{str(run.path)!r} already holds a comparison; pass --resume to continue "
                    "it, or a new --run-dir to start another."
                )
            write_atomic(run.config_path, config_io.to_toml(config, header=header))
        for index, name in enumerate(names, 1):
            cell_run = RunDirectory(run.path / name, writes=run.writes)
            continuing = resume and cell_run.config_path.exists()
            doing = "resuming" if continuing else "training"
            log(f"[{index}/{len(names)}] {name}: {doing} in {cell_run.path}")
            results = _diverged_before(cell_run) if continuing else None
            if results is None:
                results = runner.train(
                    recipe,
                    dataclasses.replace(config, cell=name, compare=""),
                    cell_run,
                    resume=continuing,
                    data=data,
                    log=log,
                    verbose=verbose,
                    keep_finished=True,
                    report_divergence=True,
                    distribution=distribution,
                )
            rows.append({"cell": name, **results})
            if run.writes:
                write_table(run, rows)
    finally:
        run.close()
    if run.writes:
        log(f"results ({run.file('results.md')}):")
        log(run.file("results.md").read_text(encoding="utf-8").rstrip())
    return rows


def _diverged_before(run):
    """The results of a run whose loss diverged (nothing more to train), else None."""
    if run.file(RESULTS_FILE).exists():
        results = run.read_json(RESULTS_FILE)
        if results.get("diverged"):
            return results
    return None


def table_columns(metric):
    """The table's `(header, key, format)` columns, showing the figure `metric`."""
    return [
        ("cell", "cell", ""),
        ("parameters", "parameters", ","),
        ("steps", "steps", ","),
        (f"best validation {metric}", f"best_validation_{metric}", ".4g"),
        (f"test {metric}", f"test_{metric}", ".4g"),
        ("wall time (s)", "train_seconds", ".1f"),
        ("note", "note", ""),
    ]


def table_rows(rows, columns, formatted=True):
    """`[headers, *rows]` of the table: each value formatted with its column's format spec
    (`formatted`) or as it is (for CSV); "" where a row lacks the key."""
    table = [[header for header, _, _ in columns]]
    for row in rows:
        table.append(
            [
                "" if row.get(key) is None else (format(row[key], spec) if formatted else row[key])
                for _, key, spec in columns
            ]
        )
    return table


def write_table(run_directory, rows):
    """Write `results.md` (a Markdown table, formatted) and `results.csv` (raw values)."""
    table = table_rows(rows, table_columns(rows[0]["metric"]))
    markdown = [
        "| " + " | ".join(table[0]) + " |",
        "| " + " | ".join("---" for _ in table[0]) + " |",
        *("| " + " | ".join(row) + " |" for row in table[1:]),
    ]
    write_atomic(run_directory.file("results.md"), "\n".join(markdown) + "\n")
    buffer = io.StringIO()
    table = table_rows(rows, table_columns(rows[0]["metric"]), formatted=False)
    csv.writer(buffer, lineterminator="\n").writerows(table)
    write_atomic(run_directory.file("results.csv"), buffer.getvalue())
