"""Every zoo layer on Keras's torch backend gives TensorFlow's numbers, trains, and saves.

On torch a Keras layer is a `torch.nn.Module`, which keeps its sub-layers (the cell) in
tables of its own: a layer class with a `__getattr__` of its own must hand other names on
to torch's (a layer made on torch once failed at construction, "'LSTM' object has no
attribute 'cell'"). TensorFlow (this process) builds every layer with random weights and
runs it on masked sequences; a fresh process with KERAS_BACKEND=torch rebuilds each from
its config, loads the same weights and must reproduce the outputs and their gradients
(TensorFlow's taken through its fast loop), train a few steps, and give the same outputs
from a `.keras` file. There the layers run Keras's loop (or their
parallel scan): the fast loops are TensorFlow's and JAX's.
"""

import importlib.util
import json

import keras
import numerics
import numpy as np
import processes
import pytest
import tensorflow as tf
from cell_cases import LAYER_CASES, random_inputs

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed (the test extra)"
)

_TORCH_SCRIPT = processes.backend_cases_script(
    "torch",
    """
    import torch
    layer = getattr(rnnzoo.layers, case["class_name"]).from_config(case["config"])
    layer.build(inputs.shape)
    layer.set_weights([data[f"{case_id}/weight_{i}"] for i in range(case["weights"])])
    outputs = layer(inputs, mask=mask)
    difference = float(np.max(np.abs(keras.ops.convert_to_numpy(outputs) - data[case_id])))
    weights = [w.value for w in layer.trainable_weights]
    grads = torch.autograd.grad((outputs * outputs).sum(), weights, allow_unused=True)
    expected = [data[f"{case_id}/gradient_{i}"] for i in range(len(weights))]
    gradient_error = max(
        float(np.max(np.abs((0 if g is None else g.detach().numpy()) - e)))
        / max(float(np.max(np.abs(e))), 1e-12)
        for g, e in zip(grads, expected)
    )
    model = keras.Sequential([keras.Input(inputs.shape[1:]), layer, keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    targets = np.ones((inputs.shape[0], inputs.shape[1], 1), "float32")
    losses = [float(model.train_on_batch(inputs, targets)) for _ in range(3)]
    model.save(folder / f"{case_id}.keras")
    loaded = keras.saving.load_model(folder / f"{case_id}.keras")
    reloaded = float(np.max(np.abs(
        keras.ops.convert_to_numpy(loaded(inputs)) - keras.ops.convert_to_numpy(model(inputs))
    )))
    report[case_id] = {
        "max_abs_diff": difference,
        "gradient_error": gradient_error,
        "losses_fall": bool(np.isfinite(losses).all() and losses[-1] < losses[0]),
        "reloaded": reloaded,
        "loop": layer.loop_choice(training=True).loop,
    }
""",
)


def test_every_layer_on_the_torch_backend_reproduces_tensorflow_trains_and_saves(rng, tmp_path):
    inputs = random_inputs(rng)
    mask = np.ones(inputs.shape[:2], dtype=bool)
    mask[1, 3:] = False  # right-padded: sample 1 carries its state
    arrays = {"inputs": inputs, "mask": mask}
    cases = {}
    for case_id, (layer_class, kwargs) in LAYER_CASES.items():
        layer = layer_class(4, return_sequences=True, **kwargs)
        layer(inputs)
        numerics.randomize_weights(layer, rng, scale=0.5)
        weights = layer.get_weights()
        cases[case_id] = {
            "class_name": type(layer).__name__,
            "config": layer.get_config(),
            "weights": len(weights),
        }
        arrays.update({f"{case_id}/weight_{i}": w for i, w in enumerate(weights)})
        with tf.GradientTape() as tape:
            outputs = layer(inputs, mask=mask)
            loss = tf.reduce_sum(outputs * outputs)
        arrays[case_id] = keras.ops.convert_to_numpy(outputs)
        gradients = tape.gradient(loss, layer.trainable_weights)
        arrays.update({f"{case_id}/gradient_{i}": g.numpy() for i, g in enumerate(gradients)})
    np.savez(tmp_path / "data.npz", **arrays)
    (tmp_path / "cases.json").write_text(json.dumps(cases))

    stdout = processes.run_python(
        _TORCH_SCRIPT, tmp_path, env=processes.subprocess_env(KERAS_BACKEND="torch"), timeout=600
    )
    report = processes.reported(stdout)
    assert sorted(report) == sorted(LAYER_CASES)
    for case_id, entry in report.items():
        assert entry["max_abs_diff"] <= 1e-5, f"{case_id}: torch differs from TF: {entry}"
        # Relative to the largest gradient element: TF's fast loop against torch's autograd.
        assert entry["gradient_error"] <= 1e-5, f"{case_id}: torch's gradients differ: {entry}"
        assert entry["losses_fall"], f"{case_id}: {entry}"
        assert entry["reloaded"] <= 1e-6, f"{case_id}: {entry}"
        expected = "scan" if case_id in ("mingru", "minlstm") else "keras"
        assert entry["loop"] == expected, f"{case_id}: {entry}"
