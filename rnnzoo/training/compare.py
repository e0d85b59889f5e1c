"""Train several variants (cells, ...) on the same task with the same budget, then tabulate.

One comparison directory holds one ordinary run directory per variant, each
its own TensorBoard run, and the table of their results:

    <run_dir>/
        config.toml            the comparison's resolved config
        <name>/                one run directory per variant (config, checkpoints, events,
                               results.json)
        results.md, results.csv  one row per finished variant, rewritten after each

`run_comparison` trains the variants in order. Resumed, it continues every
variant that has a checkpoint (`train_one` decides whether one that finished
has more to do, say after a larger `--epochs`) and starts the rest.
"""

import csv
import io

from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import RunDirectory, write_atomic


def parse_names(text, known, what="cell"):
    """`"vanilla, lstm"` -> `["vanilla", "lstm"]`, each checked against `known`, no repeats."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise RecipeError(
            f"--compare lists no {what}s; give names separated by commas, e.g. {','.join(known)}."
        )
    unknown = [name for name in names if name not in known]
    if unknown:
        raise RecipeError(
            f"--compare: unknown {what}(s) {', '.join(unknown)}; "
            f"expected names from: {', '.join(known)}."
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RecipeError(
            f"--compare lists {', '.join(repeated)} more than once; list each {what} once."
        )
    return names


def run_comparison(names, train_one, run_directory, resume=False, columns=(), log=print):
    """Train every variant with `train_one(name, run_directory, resume) -> results dict`.

    Args:
        names: The variants, in order; variant `name` runs in `<run_directory>/<name>`.
        train_one: Trains one variant in the run directory it is given,
            continuing it from its last checkpoint when `resume` is True, and
            returns its results (a dict with a key per column).
        run_directory: The comparison's `RunDirectory` (already created).
        resume: Continue an interrupted comparison.
        columns: `(header, key, format)` triples of the table (see `table_rows`).
        log: Where progress lines go.

    Returns:
        The list of results dicts, in the order of `names`.
    """
    rows = []
    for index, name in enumerate(names, 1):
        run = RunDirectory(run_directory.path / name)
        continuing = resume and run.checkpoint_path("last").exists()
        if resume and not continuing and run.config_path.exists():
            # Stopped before its first checkpoint: nothing to continue, start it again.
            run.config_path.unlink()
        log(
            f"[{index}/{len(names)}] {name}: "
            f"{'resuming' if continuing else 'training'} in {run.path}"
        )
        rows.append(train_one(name, run, continuing))
        write_table(run_directory, rows, columns)
    return rows


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


def write_table(run_directory, rows, columns):
    """Write `results.md` (a Markdown table, formatted) and `results.csv` (raw values)."""
    table = table_rows(rows, columns)
    markdown = [
        "| " + " | ".join(table[0]) + " |",
        "| " + " | ".join("---" for _ in table[0]) + " |",
        *("| " + " | ".join(row) + " |" for row in table[1:]),
    ]
    write_atomic(run_directory.file("results.md"), "\n".join(markdown) + "\n")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table_rows(rows, columns, formatted=False))
    write_atomic(run_directory.file("results.csv"), buffer.getvalue())
