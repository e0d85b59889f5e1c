"""The fast loop on Keras's JAX backend (rnnzoo/layers/jax_loop.py) equals the plain cell there.

The tests run under the TensorFlow backend, so the JAX checks run in one
fresh process with KERAS_BACKEND=jax: for each case, the zoo's layer (which
must choose its fast loop) and `keras.layers.RNN` over an equal cell with the
same weights, the same initial states and the same mask give the same
outputs and the same gradients (`jax.grad` of a weighted sum of every output,
with respect to every weight, the inputs and the initial states).
"""

import importlib.util
import json

import processes
import pytest

from rnnzoo.cells import registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)"
)

CASES = [
    # (cell name, cell arguments, layer arguments, mask pattern, training)
    ("lstm", {}, {"return_sequences": True}, None, False),
    ("lstm", {}, {"return_sequences": False, "go_backwards": True}, None, False),
    ("peephole", {}, {"return_sequences": True}, "holes", False),
    ("gru", {}, {"return_sequences": True, "zero_output_for_mask": True}, "right", False),
    ("vanilla", {}, {"return_sequences": False}, "left", False),
    ("gru", {"reset_after": False}, {"return_sequences": True}, "holes", False),
    ("irnn", {}, {"return_sequences": True}, None, False),
    ("coupled", {}, {"return_sequences": True, "go_backwards": True}, "holes", False),
    ("nfg", {}, {"return_sequences": True}, None, False),
    ("noaf", {}, {"return_sequences": True}, None, False),
    ("fgr", {}, {"return_sequences": True}, "holes", False),
    ("lstm", {"activation": "softsign"}, {"return_sequences": True}, None, False),
    (
        "lstm",
        {"dropout": 0.25, "recurrent_dropout": 0.4, "seed": 3},
        {"return_sequences": True},
        "right",
        True,
    ),
    ("gru", {"recurrent_dropout": 0.3, "seed": 1}, {"return_sequences": False}, None, True),
    (
        "gru",
        {"reset_after": False, "recurrent_dropout": 0.3, "seed": 2},
        {"return_sequences": True},
        "right",
        True,
    ),
    ("layernorm_lstm", {}, {"return_sequences": True}, "holes", False),
    ("layernorm_gru", {}, {"return_sequences": True}, None, False),
    ("layernorm_rnn", {}, {"return_sequences": False}, "right", False),
    ("lstmp", {"projection_units": 3}, {"return_sequences": True}, None, False),
]
# The step derivative each cell's layer uses on JAX: its hand-written one, but the
# layer-normalised LSTM's is TensorFlow-only (recomputing the step measured faster on JAX).
DERIVATIVES = {"layernorm_lstm": "AutomaticDerivative", "layernorm_gru": "LayerNormGRUDerivative"}
DERIVATIVES.update({"layernorm_rnn": "LayerNormRNNDerivative", "lstmp": "LSTMPDerivative"})

_SCRIPT = """
import json, sys
import numpy as np, keras, jax, jax.numpy as jnp
import rnnzoo

assert keras.backend.backend() == "jax"
cases = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
report = []
for name, cell_kwargs, layer_kwargs, pattern, training in cases:
    layer = rnnzoo.layers.get(name)(4, fast=True, return_state=True, **cell_kwargs, **layer_kwargs)
    reference = keras.layers.RNN(
        rnnzoo.cells.get(name)(4, **cell_kwargs), return_state=True, **layer_kwargs
    )
    x = rng.normal(size=(3, 13, 2)).astype("float32")
    widths = rnnzoo.cells.get(name)(4, **cell_kwargs).state_widths()
    states = [0.5 * rng.normal(size=(3, w)).astype("float32") for w in widths]
    mask = None
    if pattern is not None:
        mask = np.ones((3, 13), bool)
        if pattern == "right":
            mask[1, -5:] = False
        elif pattern == "left":
            mask[0, :4] = False
        else:
            mask = rng.random((3, 13)) < 0.6
            mask[2, 0] = False
    layer(x)
    reference(x)
    weights = [0.3 * rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    reference.set_weights(weights)
    choice = layer.loop_choice(training=training, mask=mask)
    read_outs = None

    def loss(values, model):
        trainable, x, states = values
        non_trainable = [v.value for v in model.non_trainable_variables]
        outputs, _ = model.stateless_call(
            trainable, non_trainable, x, initial_state=states, mask=mask, training=training
        )
        return sum(jnp.sum(o * r) for o, r in zip(outputs, read_outs)), outputs

    layer(x, initial_state=states, mask=mask)  # each draws the same masks: seeds stay in step
    outputs = reference(x, initial_state=states, mask=mask)
    read_outs = [rng.normal(size=o.shape).astype("float32") for o in outputs]
    results = []
    for model in (layer, reference):
        values = ([v.value for v in model.trainable_variables], jnp.asarray(x), states)
        (_, out), grads = jax.value_and_grad(loss, has_aux=True)(values, model)
        results.append((out, jax.tree_util.tree_leaves(grads)))
    (ours, our_grads), (theirs, their_grads) = results
    report.append({
        "case": [name, pattern, training],
        "loop": choice.loop,
        "derivative": type(layer.cell.derivative()).__name__,
        "outputs": max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(ours, theirs)),
        "gradients": max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(our_grads, their_grads)),
        "gradient_scale": max(float(jnp.max(jnp.abs(b))) for b in their_grads),
    })
print("REPORT " + json.dumps(report))
"""


def test_the_jax_fast_loop_equals_the_plain_cell_in_keras_rnn_on_jax():
    stdout = processes.run_python(
        _SCRIPT,
        json.dumps(CASES),
        env=processes.subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
    )
    report = processes.reported(stdout)
    assert len(report) == len(CASES)
    for entry in report:
        assert entry["loop"] == "fast", entry
        wanted = DERIVATIVES.get(entry["case"][0])
        assert wanted is None or entry["derivative"] == wanted, entry
        assert entry["outputs"] <= 1e-5, entry
        assert entry["gradients"] <= 1e-5 * max(1.0, entry["gradient_scale"]), entry


_EXPORT_SCRIPT = """
import pathlib, sys
import numpy as np, keras, rnnzoo

assert keras.backend.backend() == "jax"
directory = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.normal(size=(3, 13, 2)).astype("float32")
x[1, -4:] = 0.0  # padding, for the masked model
expected = {"inputs": x}
for name in ("lstm", "peephole", "gru", "vanilla", "mingru", "mingru_scan", "masked_gru"):
    inputs = keras.Input((13, 2))
    hidden = keras.layers.Masking()(inputs) if name.startswith("masked") else inputs
    fast = True if name.endswith("_scan") else "auto"  # "auto" takes Keras's loop on a CPU
    cell_name = name.removeprefix("masked_").removesuffix("_scan")
    layer = rnnzoo.layers.get(cell_name)(4, return_sequences=True, fast=fast)
    model = keras.Model(inputs, layer(hidden))
    model.set_weights([0.5 * rng.normal(size=w.shape) for w in model.get_weights()])
    model.export(directory / name, verbose=False)
    expected[f"{name}_0"] = np.asarray(model(x))
np.savez(directory / "io.npz", **expected)
"""


def test_models_exported_on_jax_serve_with_tensorflow_alone(tmp_path):
    """`model.export` on Keras's JAX backend (jax2tf over the zoo's `lax.scan` loop and
    its custom derivative, and over the minimal cells' parallel scan) writes a SavedModel
    that TensorFlow alone serves, equal to the model's outputs on JAX."""
    env = processes.subprocess_env(KERAS_BACKEND="jax")
    processes.run_python(_EXPORT_SCRIPT, tmp_path, env=env)
    report = processes.served_differences(tmp_path)
    assert sorted(report) == [
        "gru",
        "lstm",
        "masked_gru",
        "mingru",
        "mingru_scan",
        "peephole",
        "vanilla",
    ]
    assert max(report.values()) <= 1e-6, report


_ONNX_SCRIPT = """
import json, pathlib, sys
import numpy as np, keras, onnxruntime, rnnzoo
from rnnzoo.cells import registry

assert keras.backend.backend() == "jax"
directory = pathlib.Path(sys.argv[1])
onnxruntime.set_default_logger_severity(3)
rng = np.random.default_rng(0)
x = rng.normal(size=(3, 13, 2)).astype("float32")
x[1, -4:] = 0.0  # padding, for the masked model
models = {}
for name in registry.names():
    inputs = keras.Input((None, 2))
    models[name] = keras.Model(inputs, rnnzoo.layers.get(name)(4, return_sequences=True)(inputs))
inputs = keras.Input((None, 2))
hidden = rnnzoo.layers.PeepholeLSTM(4, return_sequences=True, dropout=0.25)(inputs)
hidden = keras.layers.Bidirectional(rnnzoo.layers.GRU(4, reset_after=False))(hidden)
models["stack_with_dropout_and_bidirectional"] = keras.Model(inputs, keras.layers.Dense(2)(hidden))
inputs = keras.Input((None, 2))
states = rnnzoo.layers.LSTM(4, return_state=True, go_backwards=True)(inputs)
models["lstm_return_state"] = keras.Model(inputs, states)
inputs = keras.Input((None, 2))
models["masked_lstm"] = keras.Model(inputs, rnnzoo.layers.LSTM(4)(keras.layers.Masking()(inputs)))
for name in ("mingru", "minlstm"):  # their parallel scan ("auto" takes Keras's loop on a CPU)
    inputs = keras.Input((None, 2))
    scan = rnnzoo.layers.get(name)(4, return_sequences=True, fast=True)
    models[f"{name}_scan"] = keras.Model(inputs, scan(inputs))
report = {}
for name, model in models.items():
    model.set_weights([0.5 * rng.normal(size=w.shape) for w in model.get_weights()])
    model(x)  # Keras exports a model once called
    model.export(directory / f"{name}.onnx", format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(directory / f"{name}.onnx"))
    differences = []
    for steps in (13, 6):  # the export's sequences have any length
        expected = keras.tree.flatten(model(x[:, :steps]))
        outputs = session.run(None, {session.get_inputs()[0].name: x[:, :steps]})
        assert len(outputs) == len(expected), name
        differences += [float(np.abs(o - np.asarray(e)).max()) for o, e in zip(outputs, expected)]
    report[name] = max(differences)
print("REPORT " + json.dumps(report))
"""


@pytest.mark.slow  # about 60 s: 31 exports through jax2onnx
@pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("jax2onnx", "onnxruntime")),
    reason="jax2onnx or onnxruntime is not installed (the test extra)",
)
def test_models_exported_to_onnx_on_jax_run_in_onnx_runtime(tmp_path):
    """`model.export(path, format="onnx")` on Keras's JAX backend (Keras's, through jax2onnx)
    works with every layer for sequences of any length: the zoo's `lax.scan` loop, the
    minimal cells' parallel scan (one step at a time where the length is a symbol), masks,
    `return_state`, Bidirectional, and dropout (inference draws no mask; Keras's own LSTM
    with dropout fails this export). ONNX Runtime gives the model's outputs at two lengths."""
    env = processes.subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    report = processes.reported(processes.run_python(_ONNX_SCRIPT, tmp_path, env=env))
    assert len(report) == len(registry.names()) + 5, sorted(report)
    assert max(report.values()) <= 1e-5, report


_DATA_PARALLEL_SCRIPT = """
import jax, keras, numpy as np, rnnzoo

assert keras.backend.backend() == "jax" and len(jax.devices()) == 2, jax.devices()
rng = np.random.default_rng(0)
x, y = rng.normal(size=(8, 7, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
mask = np.ones((8, 7), bool)
mask[::3, 5:] = False


def trained():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((7, 3))
    hidden = rnnzoo.layers.LSTM(5, return_sequences=True)(keras.layers.Masking()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(rnnzoo.layers.GRU(4)(hidden)))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x * mask[..., None], y, batch_size=8, epochs=3, verbose=0)
    return model.get_weights()


single = trained()
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
split = trained()
print("REPORT", max(float(np.abs(a - b).max()) for a, b in zip(single, split)))
"""


def test_keras_data_parallel_on_jax_trains_as_one_device():
    """`keras.distribution.DataParallel` over two (host) devices shards each batch across them
    through the zoo's `lax.scan` loop and its custom derivative, masks included: the weights
    after three steps equal one device's."""
    env = processes.subprocess_env(
        KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"
    )
    stdout = processes.run_python(_DATA_PARALLEL_SCRIPT, env=env)
    assert processes.reported(stdout) <= 1e-6
