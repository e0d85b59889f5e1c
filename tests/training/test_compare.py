"""The comparison runner's pieces: --compare names and the results table in two formats."""

import pytest

from rnnzoo.training.compare import parse_names, run_comparison, table_rows
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import RunDirectory

KNOWN = ["vanilla", "irnn", "lstm", "gru"]
COLUMNS = [("cell", "cell", ""), ("parameters", "parameters", ","), ("test mse", "mse", ".3g")]


def test_names_are_checked_trimmed_and_lowercased():
    assert parse_names(" LSTM, gru ,vanilla", KNOWN) == ["lstm", "gru", "vanilla"]
    with pytest.raises(RecipeError, match="unknown cell\\(s\\) elman, jordan"):
        parse_names("lstm,elman,jordan", KNOWN)
    with pytest.raises(RecipeError, match="lists lstm more than once"):
        parse_names("lstm,gru,lstm", KNOWN)
    with pytest.raises(RecipeError, match="lists no cells"):
        parse_names(" , ", KNOWN)


def test_markdown_values_are_formatted_and_csv_values_raw():
    rows = [
        {"cell": "lstm", "parameters": 67201, "mse": 0.001234},
        {"cell": "vanilla", "parameters": 16897},
    ]
    assert table_rows(rows, COLUMNS) == [
        ["cell", "parameters", "test mse"],
        ["lstm", "67,201", "0.00123"],
        ["vanilla", "16,897", ""],
    ]
    assert table_rows(rows, COLUMNS, formatted=False)[1] == ["lstm", 67201, 0.001234]


def test_each_variant_runs_in_its_own_directory_and_the_table_grows(tmp_path):
    calls = []

    def train_one(name, run, resume):
        calls.append((name, run.path, resume))
        (run.path / "checkpoints").mkdir(parents=True)
        (run.path / "checkpoints" / "last.ckpt").write_bytes(b"")
        return {"cell": name, "parameters": len(name), "mse": 0.5}

    parent = RunDirectory(tmp_path)
    run_comparison(["gru", "lstm"], train_one, parent, columns=COLUMNS, log=lambda line: None)
    assert calls == [("gru", tmp_path / "gru", False), ("lstm", tmp_path / "lstm", False)]
    assert (tmp_path / "results.md").read_text().splitlines()[2:] == [
        "| gru | 3 | 0.5 |",
        "| lstm | 4 | 0.5 |",
    ]
    assert (
        tmp_path / "results.csv"
    ).read_text() == "cell,parameters,test mse\ngru,3,0.5\nlstm,4,0.5\n"
    # Resumed: the variants with a checkpoint continue, a new one starts.
    calls.clear()
    (tmp_path / "gru" / "checkpoints" / "last.ckpt").unlink()
    (tmp_path / "gru" / "checkpoints").rmdir()
    run_comparison(
        ["lstm", "gru"],
        lambda n, r, resume: calls.append((n, resume)) or {"cell": n},
        parent,
        resume=True,
        columns=COLUMNS,
        log=lambda line: None,
    )
    assert calls == [("lstm", True), ("gru", False)]
