"""Run directories: the config first, atomic writes, and no second run in one directory."""

import os

import pytest

from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import RunDirectory, default_path, write_atomic


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "file.bin"
    write_atomic(path, b"old")
    write_atomic(path, "new \u2713")
    assert path.read_text(encoding="utf-8") == "new \u2713"
    assert sorted(os.listdir(tmp_path)) == ["file.bin"]


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "file.bin"
    write_atomic(path, b"old")

    class Unwritable:
        pass

    with pytest.raises(TypeError):
        write_atomic(path, Unwritable())
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["file.bin"]


def test_create_writes_the_config_and_refuses_an_existing_run(tmp_path):
    run = RunDirectory(tmp_path / "run").create("units = 3\n")
    assert run.config_path.read_text() == "units = 3\n"
    assert run.checkpoint_path("last").parent.is_dir()
    with pytest.raises(RecipeError, match="already holds a run; pass --resume"):
        RunDirectory(tmp_path / "run").create("units = 4\n")
    assert run.config_path.read_text() == "units = 3\n"


def test_require_and_read_json_errors(tmp_path):
    with pytest.raises(RecipeError, match="is not a run directory"):
        RunDirectory(tmp_path).require("sample")
    run = RunDirectory(tmp_path / "run").create("")
    run.write_json("v.json", {"chars": ["\u00e9"]})
    assert run.read_json("v.json") == {"chars": ["\u00e9"]}
    (run.path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(RecipeError, match="corrupt"):
        run.read_json("bad.json")
    with pytest.raises(RecipeError, match="missing"):
        run.read_json("nothing.json")


def test_default_paths_are_unique(tmp_path):
    first = default_path("charlm", root=tmp_path)
    assert first.parent == tmp_path / "charlm"
    first.mkdir(parents=True)
    assert default_path("charlm", root=tmp_path) != first
