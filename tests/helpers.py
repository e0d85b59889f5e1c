"""The shared test helper (keras-hub style): one call checks any cell or layer.

`run_layer_test(make_layer, inputs, units=..., num_states=...)` proves, for a
layer built by `make_layer(**rnn_kwargs)`:

- output and state shapes, eagerly and symbolically, for every combination of
  `return_sequences` and `return_state`;
- the config round trip: `from_config(get_config())` gives an equal config and,
  with the weights copied, equal outputs; every config key is an `__init__`
  argument, and every argument of the class's own `__init__` is in the config;
- saving to `.keras` and loading back (in this process) with equal outputs;
- one training step that moves every trainable weight of the layer.

`assert_loads_in_fresh_process(models, directory)` saves several models and
loads all of them in ONE new Python process (a cold start costs seconds), which
must reproduce the outputs.

Also here: the cell cases every parametrized test runs over (`CELL_CASES`),
and small tools for weights, outputs and subprocesses.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import rnnzoo

REPO_ROOT = Path(__file__).resolve().parents[1]

# For tests that take gradients with tf.GradientTape.
requires_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason=f"uses tf.GradientTape; KERAS_BACKEND is {keras.backend.backend()}",
)

# Small shapes keep every test fast: batch, time, features, units.
BATCH, TIME, FEATURES, UNITS = 2, 5, 3, 4

# Every cell of the zoo, with the GRU in both of its forms: id -> (class, kwargs).
CELL_CASES = {
    "vanilla": (rnnzoo.cells.VanillaRNNCell, {}),
    "irnn": (rnnzoo.cells.IRNNCell, {}),
    "lstm": (rnnzoo.cells.LSTMCell, {}),
    "peephole": (rnnzoo.cells.PeepholeLSTMCell, {}),
    "coupled": (rnnzoo.cells.CoupledLSTMCell, {}),
    "gru_reset_after": (rnnzoo.cells.GRUCell, {"reset_after": True}),
    "gru_reset_before": (rnnzoo.cells.GRUCell, {"reset_after": False}),
}
CELL_IDS = list(CELL_CASES)

# The same cases as rnnzoo layers (each registered layer runs one registered cell).
_LAYER_OF_CELL = {
    rnnzoo.layers.get(name).cell_class: rnnzoo.layers.get(name) for name in rnnzoo.cells.names()
}
LAYER_CASES = {
    case_id: (_LAYER_OF_CELL[cell_class], kwargs)
    for case_id, (cell_class, kwargs) in CELL_CASES.items()
}


def make_cell(case_id, units=UNITS, **kwargs):
    """A fresh cell of case `case_id`; `kwargs` override the case's arguments."""
    cell_class, case_kwargs = CELL_CASES[case_id]
    return cell_class(units, **{**case_kwargs, **kwargs})


def num_states(case_id):
    """How many state tensors the case's cell carries (2 for the LSTMs, else 1)."""
    return len(CELL_CASES[case_id][0].state_names)


def random_inputs(rng, batch=BATCH, time=TIME, features=FEATURES, dtype="float32"):
    return rng.normal(size=(batch, time, features)).astype(dtype)


# ------------------------------------------------------------------ weights
def randomize_weights(layer, rng, scale=0.5):
    """Give every weight of a built layer N(0, scale^2) values (stronger tests than inits)."""
    layer.set_weights(
        [(scale * rng.normal(size=w.shape)).astype(w.dtype) for w in layer.get_weights()]
    )


def copy_weights(source, target):
    target.set_weights(source.get_weights())


# ------------------------------------------------------------------ outputs
def as_list(outputs):
    """A layer's outputs as a list of numpy arrays (one entry unless return_state)."""
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return [keras.ops.convert_to_numpy(outputs)]


def max_abs_diff(actual, expected):
    """Largest absolute difference over matching lists of outputs."""
    actual, expected = as_list(actual), as_list(expected)
    assert len(actual) == len(expected), f"{len(actual)} outputs != {len(expected)}"
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    return max(
        float(np.max(np.abs(a.astype("float64") - e.astype("float64"))))
        for a, e in zip(actual, expected)
    )


def assert_outputs_close(actual, expected, atol=1e-5, rtol=0.0, what="outputs"):
    """Max abs difference <= atol + rtol * (largest |expected| value)."""
    diff = max_abs_diff(actual, expected)
    scale = max(float(np.max(np.abs(e))) for e in as_list(expected))
    limit = atol + rtol * scale
    assert diff <= limit, (
        f"{what}: max abs diff {diff:.3g} > {limit:.3g} (largest |value| {scale:.3g})"
    )


def assert_same_up_to_rounding(actual, expected, what="outputs"):
    """Equal up to float32 rounding: two loops that sum in another order (1e-5, relative)."""
    assert_outputs_close(actual, expected, atol=1e-5, rtol=1e-5, what=what)


# ------------------------------------------------------------------- config
def init_argument_names(klass):
    """Every named argument the `__init__` methods up `klass`'s MRO accept."""
    names = set()
    for base in klass.__mro__:
        if "__init__" not in vars(base):
            continue
        for name, parameter in inspect.signature(base.__init__).parameters.items():
            if name != "self" and parameter.kind in (
                parameter.POSITIONAL_OR_KEYWORD,
                parameter.KEYWORD_ONLY,
            ):
                names.add(name)
    if hasattr(klass, "cell_class"):  # an rnnzoo layer takes its cell's arguments
        names |= init_argument_names(klass.cell_class)
    return names


def own_init_argument_names(klass):
    """The named arguments of the `__init__` that `klass` itself runs first."""
    parameters = inspect.signature(klass.__init__).parameters
    return {
        name
        for name, parameter in parameters.items()
        if name != "self" and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
    }


def assert_config_mirrors_init(obj):
    """Every config key is an `__init__` argument, and the own arguments are all saved."""
    config = obj.get_config()
    klass = type(obj)
    unknown = set(config) - {"cell"} - init_argument_names(klass)
    assert not unknown, f"{klass.__name__}.get_config() has keys __init__ lacks: {unknown}"
    missing = own_init_argument_names(klass) - set(config) - {"cell"}
    assert not missing, f"{klass.__name__}.get_config() lacks __init__ arguments: {missing}"
    cell = getattr(obj, "cell", None)
    if isinstance(cell, rnnzoo.cells.RecurrentCell):
        assert_config_mirrors_init(cell)
        if hasattr(klass, "cell_class"):  # flat config: the cell's arguments sit in the layer's
            cell_keys = set(cell.get_config()) - {"name", "dtype", "trainable"}
            assert cell_keys <= set(config), f"layer config lacks {cell_keys - set(config)}"
            assert "cell" not in config


# ------------------------------------------------------------ the one check
def expected_shapes(inputs_shape, units, num_states, return_sequences, return_state):
    batch, time = inputs_shape[0], inputs_shape[1]
    output = (batch, time, units) if return_sequences else (batch, units)
    return [output] + ([(batch, units)] * num_states if return_state else [])


def run_layer_test(make_layer, inputs, *, units, num_states, rng, tmp_path=None, train=True):
    """Shapes, config round trip, save/load and a training step of `make_layer(**rnn_kwargs)`.

    Args:
        make_layer: Callable taking `keras.layers.RNN` keyword arguments
            (`return_sequences`, `return_state`) and returning a new layer.
        inputs: numpy array (batch, time, features).
        units, num_states: The expected state width and number of states.
        rng: numpy Generator for the random weights and targets.
        tmp_path: Where to save the `.keras` file; no save test without it.
        train: Whether to run the training step.
    """
    # 1. Shapes, eager and symbolic.
    for return_sequences in (False, True):
        for return_state in (False, True):
            flags = dict(return_sequences=return_sequences, return_state=return_state)
            want = expected_shapes(inputs.shape, units, num_states, **flags)
            got = [tuple(o.shape) for o in as_list(make_layer(**flags)(inputs))]
            assert got == want, f"{flags}: eager shapes {got}, expected {want}"
            symbolic = make_layer(**flags)(keras.Input(shape=(None, inputs.shape[-1])))
            symbolic = symbolic if isinstance(symbolic, (list, tuple)) else [symbolic]
            got = [tuple(o.shape) for o in symbolic]
            want = expected_shapes((None, None), units, num_states, **flags)
            assert got == want, f"{flags}: symbolic shapes {got}, expected {want}"

    # 2. Config round trip, with the weights copied.
    layer = make_layer(return_sequences=True, return_state=True)
    layer(inputs)
    randomize_weights(layer, rng)
    expected = layer(inputs)
    assert_config_mirrors_init(layer)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(inputs)
    copy_weights(layer, clone)
    assert max_abs_diff(clone(inputs), expected) == 0.0, "from_config clone differs"

    # 3. Save to .keras and load back.
    model = keras.Sequential([keras.Input(shape=inputs.shape[1:]), make_layer()])
    randomize_weights(model, rng)
    if tmp_path is not None:
        path = Path(tmp_path) / "layer_test.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded.layers[0]) is type(model.layers[0])
        assert max_abs_diff(loaded(inputs), model(inputs)) == 0.0, "loaded model differs"

    # 4. One training step moves every trainable weight of the layer.
    if train:
        head = keras.layers.Dense(1)
        model = keras.Sequential([keras.Input(shape=inputs.shape[1:]), make_layer(), head])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
        randomize_weights(model, rng)  # no unit left dead by chance (IRNN's relu)
        recurrent = model.layers[0]
        before = [w.numpy().copy() for w in recurrent.trainable_weights]
        assert before, "the layer has no trainable weights"
        targets = rng.normal(size=(inputs.shape[0], 1)).astype("float32")
        loss = model.train_on_batch(inputs, targets)
        assert np.isfinite(loss), f"training loss {loss}"
        for weight, old in zip(recurrent.trainable_weights, before):
            assert not np.array_equal(weight.numpy(), old), f"{weight.path} did not move"


# ------------------------------------------- behaviour inside the RNN loop
def assert_masked_steps_carry_state(layer, inputs):
    """Masked time steps leave output and state unchanged (Keras's RNN convention).

    `layer` is built, with return_sequences=True and return_state=True. Sample 0
    is unmasked; sample 1 keeps steps 0 and 2 only. Its outputs must repeat the
    last unmasked output, and its final states must be those of a run on the
    two kept steps alone.
    """
    batch, time = inputs.shape[:2]
    assert batch >= 2 and time >= 4
    mask = np.ones((batch, time), dtype=bool)
    mask[1, 1] = mask[1, 3:] = False
    masked = as_list(layer(inputs, mask=mask))
    unmasked = as_list(layer(inputs))
    kept = as_list(layer(inputs[1:2, [0, 2]]))
    assert_same_up_to_rounding([m[0] for m in masked], [u[0] for u in unmasked], "unmasked sample")
    sequence = masked[0][1]
    expected_sequence = kept[0][0][[0, 0, 1] + [1] * (time - 3)]
    assert np.allclose(sequence, expected_sequence, rtol=1e-5, atol=1e-5), (
        "masked steps changed the output"
    )
    for state, kept_state in zip(masked[1:], kept[1:]):
        assert np.allclose(state[1], kept_state[0], rtol=1e-5, atol=1e-5), (
            "masked steps changed the state"
        )


def assert_stateful_carries_state(make_layer, inputs):
    """stateful=True carries the state between calls, and reset_state() clears it."""
    stateful = make_layer(stateful=True, return_sequences=True)
    plain = make_layer(return_sequences=True)
    split = inputs.shape[1] // 2
    stateful(inputs[:, :split])
    plain(inputs)
    copy_weights(plain, stateful)
    stateful.reset_state()
    whole = as_list(plain(inputs))[0]
    first = as_list(stateful(inputs[:, :split]))[0]
    second = as_list(stateful(inputs[:, split:]))[0]
    assert_same_up_to_rounding(np.concatenate([first, second], axis=1), whole, "two halves")
    stateful.reset_state()
    assert_same_up_to_rounding(stateful(inputs), whole, "after reset_state()")
    assert max_abs_diff(stateful(inputs), whole) > 1e-4, "the second call did not carry state"


def assert_one_dropout_mask_per_sequence(
    make_layer, rng, dropout=0.5, recurrent_dropout=0.5, batch=8, features=2, units=3
):
    """Dropout is off at inference, on in training, with one mask per sequence.

    `make_layer(units, dropout=..., recurrent_dropout=...)` returns a new layer
    with return_sequences=True. In training, each sample's whole output
    sequence must equal an inference run with ONE fixed pair of masks: an input
    mask m_x in {0, 1/(1-dropout)}^features (applied to the inputs) and a
    recurrent mask m_h in {0, 1/(1-recurrent_dropout)}^units (applied as the
    rows of the recurrent kernel, since every cell drops h_{t-1} where it
    enters that matmul). Masks redrawn at each step would match none of these
    candidates.
    """
    inputs = random_inputs(rng, batch=batch, time=TIME, features=features)
    layer = make_layer(units, dropout=dropout, recurrent_dropout=recurrent_dropout)
    reference = make_layer(units, dropout=0.0, recurrent_dropout=0.0)
    layer(inputs)
    reference(inputs)
    randomize_weights(layer, rng)
    copy_weights(layer, reference)

    inference = as_list(layer(inputs, training=False))[0]
    assert max_abs_diff(inference, reference(inputs)) == 0.0, "dropout active at inference"
    training = as_list(layer(inputs, training=True))[0]
    assert max_abs_diff(training, inference) > 1e-3, "dropout inactive in training"

    input_masks = _binary_masks(features, dropout)  # (2^features, features)
    tiled = (inputs[None] * input_masks[:, None, None, :]).reshape(-1, *inputs.shape[1:])
    recurrent_kernel = layer.cell.recurrent_kernel.numpy()
    unmatched = np.ones(batch, dtype=bool)
    for recurrent_mask in _binary_masks(units, recurrent_dropout):
        reference.cell.recurrent_kernel.assign(recurrent_mask[:, None] * recurrent_kernel)
        candidates = as_list(reference(tiled))[0].reshape(len(input_masks), batch, -1)
        distance = np.abs(candidates - training.reshape(1, batch, -1)).max(axis=-1)
        tolerance = 1e-5 * (1.0 + np.abs(training).reshape(batch, -1).max(axis=-1))
        unmatched &= ~(distance <= tolerance).any(axis=0)
    assert not unmatched.any(), (
        f"samples {np.flatnonzero(unmatched).tolist()} match no fixed pair of dropout masks"
    )


def _binary_masks(width, rate):
    """Every dropout mask of `width` units: entries in {0, 1/(1-rate)}; just ones if rate=0."""
    if rate == 0:
        return np.ones((1, width), dtype="float32")
    grid = np.array(np.meshgrid(*[[0.0, 1.0 / (1.0 - rate)]] * width, indexing="ij"))
    return grid.reshape(width, -1).T.astype("float32")


# ------------------------------------------------------------- subprocesses
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


# Loads every <name>.keras in a folder, runs it on <name>.npz["inputs"] and
# prints, as one JSON line, the largest difference to the saved outputs and
# the classes of the model's layers.
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
    line = [text for text in stdout.splitlines() if text.startswith("REPORT ")][-1]
    report = json.loads(line[len("REPORT ") :])
    assert sorted(report) == sorted(models), f"loaded {sorted(report)}"
    for name, (classes, count) in expected_classes.items():
        entry = report[name]
        assert entry["classes"] == classes, f"{name}: loaded {entry['classes']}, saved {classes}"
        assert entry["outputs"] == count, f"{name}: {entry['outputs']} outputs, saved {count}"
        assert entry["max_abs_diff"] <= atol, (
            f"{name}: fresh-process outputs differ by {entry['max_abs_diff']:.3g}"
        )


# ------------------------------------------------------------------------- recipe CLIs
def error_lines(text):
    """The `error:` lines of a command's stderr."""
    return [line for line in text.splitlines() if line.startswith("error:")]


def assert_one_line_error(status, stderr, *fragments):
    """Exit status 2, exactly one `error:` line holding every fragment, no traceback."""
    assert status == 2, stderr[-2000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def no_temporaries(folder):
    """True if no atomic-write temporary file was left under `folder`."""
    return not [p for p in Path(folder).rglob(".*.tmp-*")]


def tags_in(folder):
    """Every summary tag in the TensorBoard event files directly in `folder`."""
    import tensorflow as tf

    tags = set()
    for path in Path(folder).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    return tags
