"""The README's promises: its Python example runs and prints what it says, its test
command is the one CI runs, and a cell loads in a fresh `python -c`."""

import contextlib
import io
import re

import processes

README = processes.REPO_ROOT / "README.md"
CI_SCRIPT = processes.REPO_ROOT / ".ci" / "run"


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_python_examples_run_and_print_what_they_promise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write their logs under the working directory
    blocks = code_blocks("python")
    assert blocks, "README.md has no ```python block"
    for block in blocks:
        # `print(...)  # (2, 1)` promises that output.
        promised = re.findall(r"^print\(.*\)[ \t]*#[ \t]*(.+?)[ \t]*$", block, flags=re.MULTILINE)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
        printed = stdout.getvalue().splitlines()
        for expected in promised:
            assert expected in printed, f"README promises {expected!r}; printed {printed}"
    # The TensorBoard example wrote its views.
    assert list((tmp_path / "tensorboard_logs" / "example").glob("events.out.tfevents.*"))


def test_ci_runs_the_readme_test_command():
    commands = [
        line.split("&&")[-1].strip()
        for block in code_blocks("bash")
        for line in block.splitlines()
        if "pytest" in line
    ]
    assert commands == ["python -m pytest -q"], commands
    ci_lines = [line.strip() for line in CI_SCRIPT.read_text().splitlines()]
    assert commands[0] in ci_lines, f"{CI_SCRIPT} does not run {commands[0]!r}"


def test_a_cell_loads_in_a_fresh_python():
    code = "import keras, rnnzoo; keras.layers.RNN(rnnzoo.cells.get('peephole')(8))"
    processes.run_python(code)
