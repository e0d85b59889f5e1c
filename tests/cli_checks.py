"""What the recipe CLI tests check: one-line errors, no temporary files left, TensorBoard tags."""

import csv
import json
import struct
import zipfile
from pathlib import Path

import numpy as np


def main_runner(main):
    """`run_main(argv, capsys)` for a recipe's `main`, called in this process: its exit status,
    stdout and stderr (the arguments turned to strings first, as a shell passes them)."""

    def run_main(argv, capsys):
        status = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run_main


def results_of(run_dir):
    """A finished run's `results.json`."""
    return json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))


def error_lines(text):
    """The `error:` lines of a command's stderr."""
    return [line for line in text.splitlines() if line.startswith("error:")]


def assert_one_line_error(status, stderr, *fragments):
    """Exit status 2, exactly one `error:` line holding every fragment, no traceback."""
    assert status == 2, stderr[-2000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def no_temporaries(folder):
    """True if no atomic-write temporary file was left under `folder`."""
    return not [p for p in Path(folder).rglob(".*.tmp-*")]


def tags_in(folder):
    """Every summary tag in the TensorBoard event files directly in `folder`."""
    import tensorflow as tf

    tags = set()
    for path in Path(folder).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def assert_mixed_float16_resumes_exactly(run_main, capsys, argv, tmp_path, steps):
    """Under mixed_float16 (Keras's LossScaleOptimizer: the loss scale's variables in the
    checkpoints), a run of 2 epochs stopped after the first and resumed ends with the weights
    of one trained straight through, after `steps` steps; returns its optimizer variables."""
    from rnnzoo.training import checkpoints

    halves, whole = tmp_path / "halves", tmp_path / "whole"
    mixed = [*argv, "--dtype-policy", "mixed_float16", "--epochs", "2"]
    for command in (
        [*mixed, "--run-dir", whole],
        [*mixed, "--run-dir", halves, "--epochs", "1"],
        ["--resume", "--run-dir", halves, "--epochs", "2", "--quiet"],
    ):
        status, _, err = run_main(command, capsys)
        assert status == 0, err[-3000:]
    resumed, straight = (checkpoints.load(r / "checkpoints" / "last.ckpt") for r in (halves, whole))
    assert resumed.state["global_step"] == straight.state["global_step"] == steps
    for a, b in zip(resumed.weights, straight.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    return straight.optimizer


def damage_checkpoint(path):
    """Flip one byte in the middle of the largest array a checkpoint (a zip archive) stores, so
    its CRC fails: a byte flipped at a fixed offset of the file may land in a header field that
    nothing reads (a member's time stamp)."""
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.compress_size)
    data = bytearray(Path(path).read_bytes())
    header = member.header_offset  # the local header: 30 bytes, the name, the extra field
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    data[header + 30 + name_length + extra_length + member.compress_size // 2] ^= 0x5A
    Path(path).write_bytes(bytes(data))


def one_cell_of_each_kind():
    """The first registered cell of each state structure, by name (one state, an (h, c) pair,
    the FGR's three): a recipe's code never asks which cell it runs, only carries, resets,
    splits and checkpoints its states, so cells of one structure share their path through it.
    The recipes' every-cell tests train these; tests/models/test_classifier.py builds every
    registered cell with seeded initialisers (as the recipes do), and tests/cells check each
    cell's step, gradients and saved model on their own."""
    import rnnzoo

    kinds = {}
    for cell_class in rnnzoo.cells.registry.classes():
        state_size = cell_class(8).state_size
        structure = tuple(state_size) if isinstance(state_size, (list, tuple)) else state_size
        kinds.setdefault(structure, cell_class.names[0])
    return list(kinds.values())


def assert_every_cell_trained(run_dir, names):
    """A `--compare` over `names` in `run_dir` trained each cell, in order, without a note
    (a diverged or failed cell gets one), and exported its model.keras."""
    with (Path(run_dir) / "results.csv").open(encoding="utf-8") as file:
        rows = {row["cell"]: row for row in csv.DictReader(file)}
    assert list(rows) == names
    for name, row in rows.items():
        assert row["note"] == "", (name, row["note"])
        assert (Path(run_dir) / name / "model.keras").exists(), name
