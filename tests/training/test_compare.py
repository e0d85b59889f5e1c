"""The comparison's pieces: --compare names and the results table in two formats (the runs
themselves: tests/recipes/test_seqclass.py)."""

import pytest

from rnnzoo.training.compare import parse_names, table_rows, write_table
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import RunDirectory

KNOWN = ["vanilla", "irnn", "lstm", "gru"]
COLUMNS = [("cell", "cell", ""), ("parameters", "parameters", ","), ("test mse", "mse", ".3g")]


def test_names_are_checked_trimmed_and_lowercased():
    assert parse_names(" LSTM, gru ,vanilla", KNOWN) == ["lstm", "gru", "vanilla"]
    with pytest.raises(RecipeError, match="unknown cell\\(s\\) elman, jordan"):
        parse_names("lstm,elman,jordan", KNOWN)
    with pytest.raises(RecipeError, match=r"unknown cell\(s\) gr \(did you mean 'gru'\?\), elman;"):
        parse_names("gr,elman", KNOWN)
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


def test_the_table_shows_the_runs_metric_and_a_note_where_one_diverged(tmp_path):
    rows = [
        {"cell": "lstm", "metric": "mse", "parameters": 67201, "steps": 500},
        {"cell": "irnn", "metric": "mse", "steps": 3, "note": "the training loss became nan"},
    ]
    rows[0].update(best_validation_mse=0.0123456, test_mse=0.000151, train_seconds=61.04)
    write_table(RunDirectory(tmp_path), rows)
    assert (tmp_path / "results.md").read_text().splitlines() == [
        "| cell | parameters | steps | best validation mse | test mse | wall time (s) | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| lstm | 67,201 | 500 | 0.01235 | 0.000151 | 61.0 |  |",
        "| irnn |  | 3 |  |  |  | the training loss became nan |",
    ]
    assert (tmp_path / "results.csv").read_text().splitlines()[1] == (
        "lstm,67201,500,0.0123456,0.000151,61.04,"
    )
