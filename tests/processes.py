"""Fresh Python processes: the environment a test's subprocess runs in, and save/load checks.

`assert_loads_in_fresh_process(models, directory)` saves several models and
loads all of them in ONE new Python process (a cold start costs seconds), which
must reproduce the outputs.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from numerics import as_list

# Keras's ONNX export (tf2onnx) and ONNX Runtime, both in the test extra.
HAS_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(
    not HAS_ONNX, reason="tf2onnx or onnxruntime is not installed (the test extra)"
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**overrides):
    """The environment of a fresh process: this one's, quiet, with the repo importable."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.update(overrides)
    return env


def run_python(code, *args, env=None, timeout=300):
    """Run `python -c code *args` in a fresh process; return stdout, fail with its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=subprocess_env() if env is None else env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"fresh process failed (exit {result.returncode}):\n{result.stderr[-4000:]}"
    )
    return result.stdout


def run_benchmark(script, *args, timeout=600):
    """`python benchmarks/SCRIPT *args` in a fresh process, from the repo root: the
    CompletedProcess (its exit status, stdout and stderr are the test's to check)."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *map(str, args)],
        env=subprocess_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_LOAD_SCRIPT = """
import json, pathlib, sys
import numpy as np, keras
import rnnzoo  # registers the zoo's classes, as a user's program would

report = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.keras")):
    model = keras.saving.load_model(path)
    data = np.load(path.with_suffix(".npz"))
    outputs = model(data["inputs"])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    diffs = [
        float(np.max(np.abs(keras.ops.convert_to_numpy(o) - data[f"output_{i}"])))
        for i, o in enumerate(outputs)
    ]
    classes = []
    for layer in model.layers:
        classes.append(type(layer).__name__)
        if isinstance(getattr(layer, "cell", None), keras.layers.Layer):
            classes.append(type(layer.cell).__name__)
    report[path.stem] = {"max_abs_diff": max(diffs), "outputs": len(diffs), "classes": classes}
print("REPORT " + json.dumps(report))
"""


def reported(stdout):
    """The JSON value a fresh process's script printed on its last "REPORT " line."""
    line = [text for text in stdout.splitlines() if text.startswith("REPORT ")][-1]
    return json.loads(line[len("REPORT ") :])


def backend_cases_script(backend, body):
    """A fresh process's script on Keras's `backend`: it reads `cases.json` and `data.npz`
    (with "inputs" and "mask") from the folder `sys.argv[1]`, runs `body` for each
    `case_id, case`, filling `report[case_id]`, and prints "REPORT <json>"."""
    header = f"""
import json, pathlib, sys
import numpy as np, keras
import rnnzoo

assert keras.backend.backend() == {backend!r}, keras.backend.backend()
folder = pathlib.Path(sys.argv[1])
cases = json.loads((folder / "cases.json").read_text())
data = np.load(folder / "data.npz")
inputs, mask = data["inputs"], data["mask"]
report = {{}}
for case_id, case in cases.items():
"""
    return header + body + '\nprint("REPORT " + json.dumps(report))\n'


_SERVE_SCRIPT = """
import json, pathlib, sys
import numpy as np, tensorflow as tf  # no keras, no rnnzoo: what TF Serving has

report = {}
data = np.load(pathlib.Path(sys.argv[1]) / "io.npz")
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/saved_model.pb")):
    path = path.parent
    loaded = tf.saved_model.load(str(path))  # kept: its variables live as long as it does
    outputs = tf.nest.flatten(loaded.serve(data["inputs"]))
    expected = [data[f"{path.name}_{i}"] for i in range(len(outputs))]
    report[path.name] = max(float(np.max(np.abs(o.numpy() - e))) for o, e in zip(outputs, expected))
print("REPORT " + json.dumps(report))
"""


def served_differences(directory):
    """{name: max abs difference} of each SavedModel folder NAME in `directory` served (its
    `serve` endpoint, as `model.export` writes it) in a fresh process that imports TensorFlow
    alone, on `io.npz`'s "inputs", against its "NAME_0", "NAME_1", ... outputs."""
    stdout = run_python(_SERVE_SCRIPT, directory)
    return reported(stdout)


def assert_loads_in_fresh_process(models, directory, atol=1e-6):
    """Save `models` ({name: (model, inputs)}) to `.keras`; one new process must reproduce them.

    Each loaded model must give the saved outputs (max abs diff <= atol) and
    hold layers (or cells) of the same classes as the original.
    """
    directory = Path(directory)
    expected_classes = {}
    for name, (model, inputs) in models.items():
        outputs = as_list(model(inputs))
        model.save(directory / f"{name}.keras")
        np.savez(
            directory / f"{name}.npz",
            inputs=inputs,
            **{f"output_{i}": o for i, o in enumerate(outputs)},
        )
        classes = []
        for layer in model.layers:
            classes.append(type(layer).__name__)
            if isinstance(getattr(layer, "cell", None), keras.layers.Layer):
                classes.append(type(layer.cell).__name__)
        expected_classes[name] = (classes, len(outputs))
    stdout = run_python(_LOAD_SCRIPT, directory)
    report = reported(stdout)
    assert sorted(report) == sorted(models), f"loaded {sorted(report)}"
    for name, (classes, count) in expected_classes.items():
        entry = report[name]
        assert entry["classes"] == classes, f"{name}: loaded {entry['classes']}, saved {classes}"
        assert entry["outputs"] == count, f"{name}: {entry['outputs']} outputs, saved {count}"
        assert entry["max_abs_diff"] <= atol, (
            f"{name}: fresh-process outputs differ by {entry['max_abs_diff']:.3g}"
        )


_KERAS_FILE_SCRIPT = """
import sys
import numpy as np, keras
import rnnzoo  # registers the zoo's classes, as a user's program would

model = keras.saving.load_model(sys.argv[1], safe_mode=True)
for variable in model.variables:  # the same noise as the other process (RAM's glimpses)
    if variable.path.endswith("seed_generator_state"):
        variable.assign(np.array([7, 0], keras.ops.convert_to_numpy(variable).dtype))
outputs = model(np.load(sys.argv[2])["inputs"])
np.save(sys.argv[3], keras.ops.convert_to_numpy(outputs))
print("LOADED", type(model).__name__, "compiled" if model.compiled else "not compiled")
"""


def same_noise(model):
    """Set every random-generator state of `model` as `keras_file_outputs` does."""
    for variable in model.variables:
        if variable.path.endswith("seed_generator_state"):
            variable.assign(np.array([7, 0], keras.ops.convert_to_numpy(variable).dtype))
    return model


def keras_file_outputs(path, inputs, directory):
    """`(outputs, description)` of the Keras file `path` on `inputs`, loaded in safe mode in a
    fresh process after `import rnnzoo` (random states set by `same_noise`)."""
    directory = Path(directory)
    np.savez(directory / "inputs.npz", inputs=inputs)
    stdout = run_python(
        _KERAS_FILE_SCRIPT, path, directory / "inputs.npz", directory / "outputs.npy"
    )
    line = [text for text in stdout.splitlines() if text.startswith("LOADED ")][-1]
    return np.load(directory / "outputs.npy"), line[len("LOADED ") :]
