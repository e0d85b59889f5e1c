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


def test_start_writes_the_config_and_refuses_a_run_with_a_checkpoint(tmp_path):
    lines = []
    run = RunDirectory(tmp_path / "run").open().start("units = 3\n", log=lines.append)
    assert run.config_path.read_text() == "units = 3\n" and lines == []
    assert run.checkpoint_path("last").parent.is_dir()
    # No checkpoint yet (the run stopped before its first): the next start reuses it, saying so.
    run.start("units = 4\n", log=lines.append)
    assert run.config_path.read_text() == "units = 4\n"
    assert len(lines) == 1 and "reusing run directory" in lines[0]
    run.checkpoint_path("last").write_bytes(b"a checkpoint")
    with pytest.raises(RecipeError, match="already holds a run; pass --resume"):
        run.start("units = 5\n")
    assert run.config_path.read_text() == "units = 4\n"
    run.close()


def test_a_held_directory_is_refused_and_released_by_close(tmp_path):
    first = RunDirectory(tmp_path / "run").open()
    assert (tmp_path / "run" / "run.lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(RecipeError, match=f"is in use by process {os.getpid()}"):
        RunDirectory(tmp_path / "run").open()
    first.close()
    RunDirectory(tmp_path / "run").open().close()


def test_open_removes_the_temporaries_a_killed_run_left(tmp_path):
    run = RunDirectory(tmp_path / "run").open()
    run.start("units = 3\n")
    run.close()
    left = [run.path / ".results.json.tmp-4242", run.path / "checkpoints" / ".last.ckpt.tmp-4242"]
    for path in left:
        path.write_bytes(b"half a file")
    lines = []
    RunDirectory(run.path).open(log=lines.append).close()
    assert not any(path.exists() for path in left)
    assert lines == [
        f"removed 2 temporary file(s) a killed run left in {run.path}: "
        ".results.json.tmp-4242, checkpoints/.last.ckpt.tmp-4242"
    ]


def test_require_and_read_json_errors(tmp_path):
    with pytest.raises(RecipeError, match="is not a run directory"):
        RunDirectory(tmp_path).require("sample")
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
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
