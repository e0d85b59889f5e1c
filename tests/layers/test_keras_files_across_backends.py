"""A `.keras` file with zoo layers saved on any Keras backend loads on every other one.

Keras 3's promise for its own layers: weights and config are backend-neutral. A model
(a Bidirectional peephole LSTM, a reset-before GRU, a minGRU) is saved in a fresh process
on each of TensorFlow, JAX and torch, then loaded in a fresh process on each, where it must
give the saving backend's outputs.
"""

import importlib.util
import itertools

import numpy as np
import processes
import pytest

BACKENDS = ("tensorflow", "jax", "torch")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("jax", "torch")),
    reason="jax and torch are in the test extra",
)

_SAVE = """
import pathlib, sys
import numpy as np, keras, rnnzoo

folder, backend = pathlib.Path(sys.argv[1]), keras.backend.backend()
x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype("float32")
inputs = keras.Input((6, 2))
hidden = keras.layers.Bidirectional(rnnzoo.layers.PeepholeLSTM(4, return_sequences=True))(inputs)
hidden = rnnzoo.layers.GRU(3, reset_after=False)(hidden)
outputs = rnnzoo.layers.MinGRU(2)(keras.layers.Reshape((3, 1))(hidden))
model = keras.Model(inputs, outputs)
rng = np.random.default_rng(1)
model.set_weights([0.5 * rng.normal(size=w.shape) for w in model.get_weights()])
model.save(folder / f"{backend}.keras")
np.save(folder / f"{backend}.npy", keras.ops.convert_to_numpy(model(x)))
np.save(folder / "x.npy", x)
"""

_LOAD = """
import json, pathlib, sys
import numpy as np, keras, rnnzoo

folder = pathlib.Path(sys.argv[1])
x = np.load(folder / "x.npy")
report = {}
for source in sys.argv[2:]:
    model = keras.saving.load_model(folder / f"{source}.keras")
    outputs = keras.ops.convert_to_numpy(model(x))
    report[source] = float(np.max(np.abs(outputs - np.load(folder / f"{source}.npy"))))
print("REPORT " + json.dumps(report))
"""


def test_a_keras_file_saved_on_any_backend_loads_on_every_other(tmp_path):
    for backend in BACKENDS:
        env = processes.subprocess_env(KERAS_BACKEND=backend)
        processes.run_python(_SAVE, tmp_path, env=env)
    differences = {}
    for backend in BACKENDS:
        env = processes.subprocess_env(KERAS_BACKEND=backend)
        report = processes.reported(processes.run_python(_LOAD, tmp_path, *BACKENDS, env=env))
        differences.update({(source, backend): d for source, d in report.items()})
    assert sorted(differences) == sorted(itertools.product(BACKENDS, BACKENDS))
    assert max(differences.values()) <= 1e-6, differences
    # The same weights (set from one numpy seed) gave the same outputs on every backend.
    saved = [np.load(tmp_path / f"{backend}.npy") for backend in BACKENDS]
    assert all(np.allclose(saved[0], other, atol=1e-6) for other in saved[1:])
