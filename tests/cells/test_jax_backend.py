"""The cells run on Keras's JAX backend and give TensorFlow's numbers.

TensorFlow (this process) builds every cell with random weights and runs it
on masked sequences; a fresh process with KERAS_BACKEND=jax rebuilds each cell
from its config (with dropout added), loads the same weights from an .npz
file and must reproduce outputs and final states at inference, and must drop
units in training (dropout masks made before `lax.scan`, not inside it).
"""

import importlib.util
import json

import keras
import numerics
import numpy as np
import processes
import pytest
from cell_cases import CELL_IDS, make_cell, random_inputs, takes

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="jax is not installed (pip install jax) so Keras's JAX backend cannot run",
)

# Two calls per cell: each call compiles a `lax.scan`, which is the slow part.
_JAX_SCRIPT = processes.backend_cases_script(
    "jax",
    """
    config = dict(case["config"], dropout=0.5, seed=3)
    if case["takes_recurrent_dropout"]:
        config["recurrent_dropout"] = 0.5
    cell = getattr(rnnzoo.cells, case["class_name"]).from_config(config)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer.build(inputs.shape)
    layer.set_weights([data[f"{case_id}/weight_{i}"] for i in range(case["weights"])])
    inference = layer(inputs, mask=mask, training=False)
    training = layer(inputs, mask=mask, training=True)
    report[case_id] = {
        "max_abs_diff": max(
            float(np.max(np.abs(np.asarray(output) - data[f"{case_id}/output_{i}"])))
            for i, output in enumerate(inference)
        ),
        "training_vs_inference": float(np.max(np.abs(np.asarray(training[0] - inference[0])))),
        "training_finite": bool(np.isfinite(np.asarray(training[0])).all()),
    }
""",
)


def test_cells_on_the_jax_backend_reproduce_tensorflow(rng, tmp_path):
    inputs = random_inputs(rng)
    mask = np.ones(inputs.shape[:2], dtype=bool)
    mask[1, 2:] = False  # sample 0 runs every step, sample 1 carries its state
    arrays = {"inputs": inputs, "mask": mask}
    cases = {}
    for case_id in CELL_IDS:
        layer = keras.layers.RNN(make_cell(case_id), return_sequences=True, return_state=True)
        layer(inputs)
        numerics.randomize_weights(layer, rng)
        weights = layer.get_weights()
        cases[case_id] = {
            "class_name": type(layer.cell).__name__,
            "config": layer.cell.get_config(),
            "weights": len(weights),
            "takes_recurrent_dropout": takes(case_id, "recurrent_dropout"),
        }
        for i, weight in enumerate(weights):
            arrays[f"{case_id}/weight_{i}"] = weight
        for i, output in enumerate(numerics.as_list(layer(inputs, mask=mask))):
            arrays[f"{case_id}/output_{i}"] = output
    np.savez(tmp_path / "data.npz", **arrays)
    (tmp_path / "cases.json").write_text(json.dumps(cases))

    stdout = processes.run_python(
        _JAX_SCRIPT,
        tmp_path,
        env=processes.subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
    )
    report = processes.reported(stdout)
    assert sorted(report) == sorted(CELL_IDS)
    for case_id, entry in report.items():
        assert entry["max_abs_diff"] <= 1e-5, f"{case_id}: JAX differs from TF: {entry}"
        assert entry["training_vs_inference"] > 1e-3, f"{case_id}: no dropout in training: {entry}"
        assert entry["training_finite"], case_id


# TensorFlow made unimportable for real: any `import tensorflow` (or TensorBoard) fails.
_WITHOUT_TENSORFLOW = """
import sys


class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorboard"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")


sys.meta_path.insert(0, NoTensorFlow())
import keras, numpy as np
import rnnzoo

assert keras.backend.backend() == "jax", keras.backend.backend()
x = np.random.default_rng(0).normal(size=(8, 12, 3)).astype("float32")
y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")
for name in ("lstm", "peephole", "gru", "vanilla", "mingru", "mingru_scan"):
    fast = True if name.endswith("_scan") else "auto"
    layer = rnnzoo.layers.get(name.removesuffix("_scan"))(5, fast=fast)
    model = keras.Sequential([keras.Input((12, 3)), layer, keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    assert all(np.isfinite(losses)), (name, losses)
    print("LOOP", name, layer.loop_choice(training=True).loop)
char_lm = rnnzoo.models.build_char_lm(11, units=6, num_layers=2, embedding_dim=4, seed=0)
char_lm.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
ids = np.random.default_rng(2).integers(0, 11, size=(4, 9))
print("CHARLM", float(char_lm.train_on_batch(ids[:, :-1], ids[:, 1:])))
print("TENSORFLOW", "tensorflow" in sys.modules)
"""


def test_the_layers_train_on_jax_with_no_tensorflow_installed():
    stdout = processes.run_python(
        _WITHOUT_TENSORFLOW, env=processes.subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    )
    loops = dict(line.split()[1:] for line in stdout.splitlines() if line.startswith("LOOP "))
    assert loops == {
        "lstm": "fast",
        "peephole": "fast",
        "gru": "fast",
        "vanilla": "fast",
        "mingru": "keras",  # on a CPU, where Keras's loop over the cell is faster
        "mingru_scan": "scan",
    }
    assert "CHARLM " in stdout and "TENSORFLOW False" in stdout
