"""The parallel scan over time (rnnzoo/layers/parallel_scan.py) equals the cell stepped by
keras.layers.RNN, forward and backward.

For minGRU and minLSTM: outputs, final states and the gradients with respect
to the inputs, the initial state and every weight, to 1e-5 in float32 and
1e-12 in float64, with return_sequences on and off, go_backwards, masks
(zero_output_for_mask too), input dropout, carried (stateful) state, unknown
time in graph mode and a long sequence; central differences in float64; the
char LM's stateful training and its sampler, which steps the cell; and the
fallbacks. The scan is proven taken (or not) by counting its calls.
"""

import importlib.util

import cell_cases
import keras
import numerics
import numpy as np
import processes
import pytest
import tensorflow as tf
from cell_cases import BATCH, FEATURES, UNITS, random_inputs

import rnnzoo
from rnnzoo.layers import parallel_scan

pytestmark = cell_cases.requires_tensorflow

NAMES = ["mingru", "minlstm"]
TIME = 13
OPTIONS = {
    "sequences": {"return_sequences": True},
    "last_output": {"return_sequences": False},
    "go_backwards": {"return_sequences": True, "go_backwards": True},
    "go_backwards_last": {"return_sequences": False, "go_backwards": True},
}
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture
def scan_calls(monkeypatch):
    """The names of the layers whose call went through `parallel_scan.run`."""
    calls = []
    run = parallel_scan.run

    def counting_run(layer, *args, **kwargs):
        calls.append(layer.name)
        return run(layer, *args, **kwargs)

    monkeypatch.setattr(parallel_scan, "run", counting_run)
    return calls


def make_pair(name, rng, dtype="float32", cell_kwargs=None, **rnn_kwargs):
    """The rnnzoo layer and keras.layers.RNN over an equal cell, with the same random weights."""
    cell_kwargs = cell_kwargs or {}
    layer = rnnzoo.layers.get(name)(
        UNITS, dtype=dtype, return_state=True, **cell_kwargs, **rnn_kwargs
    )
    reference = keras.layers.RNN(
        rnnzoo.cells.get(name)(UNITS, dtype=dtype, **cell_kwargs),
        dtype=dtype,
        return_state=True,
        **rnn_kwargs,
    )
    inputs = random_inputs(rng, time=TIME, dtype=dtype)
    layer(inputs)
    reference(inputs)
    numerics.randomize_weights(layer, rng, scale=1.0)
    numerics.copy_weights(layer, reference)
    return layer, reference


def assert_scan_equals_keras_loop(
    name, rng, dtype="float32", training=False, mask=None, cell_kwargs=None, **rnn_kwargs
):
    layer, reference = make_pair(name, rng, dtype=dtype, cell_kwargs=cell_kwargs, **rnn_kwargs)
    inputs = tf.constant(random_inputs(rng, time=TIME, dtype=dtype))
    states = [tf.constant(rng.uniform(-1.0, 1.0, size=(BATCH, UNITS)).astype(dtype))]
    layer(inputs)  # keeps the two cells' dropout seed generators in step
    read_outs = [rng.normal(size=o.shape).astype(dtype) for o in reference(inputs)]
    ours, our_gradients = numerics.outputs_and_gradients(
        layer, inputs, states, read_outs, training, mask
    )
    theirs, their_gradients = numerics.outputs_and_gradients(
        reference, inputs, states, read_outs, training, mask
    )
    atol = TOLERANCE[dtype]
    numerics.assert_outputs_close(ours, theirs, atol=atol, rtol=atol, what="outputs and state")
    names = ["inputs", "initial state"] + [w.path for w in layer.trainable_weights]
    for what, our_gradient, their_gradient in zip(names, our_gradients, their_gradients):
        assert our_gradient is not None, f"no gradient for {what}"
        numerics.assert_outputs_close(our_gradient, their_gradient, atol=atol, rtol=atol, what=what)


# ------------------------------------------------------------------ equality
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("name", NAMES)
def test_scan_equals_the_cell_stepped_by_keras(name, option, rng, scan_calls):
    assert_scan_equals_keras_loop(name, rng, **OPTIONS[option])
    assert scan_calls, "the parallel scan was not used"


@pytest.mark.parametrize("name", NAMES)
def test_scan_equals_the_cell_in_float64(name, rng, scan_calls):
    assert_scan_equals_keras_loop(name, rng, dtype="float64", return_sequences=True)
    assert scan_calls


@pytest.mark.parametrize("zero_output_for_mask", [False, True], ids=["previous", "zeros"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("name", NAMES)
def test_masked_steps_keep_the_state_as_keras_does(
    name, go_backwards, zero_output_for_mask, rng, scan_calls
):
    """Leading, inner and trailing masked steps, and a sequence masked throughout."""
    mask = np.ones((BATCH, TIME), dtype=bool)
    mask[0, :2] = mask[0, 5:7] = mask[0, -3:] = False
    mask[1, :] = False
    assert_scan_equals_keras_loop(
        name,
        rng,
        mask=tf.constant(mask),
        return_sequences=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    assert scan_calls


@pytest.mark.parametrize("name", NAMES)
def test_input_dropout_uses_the_cells_one_mask_per_sequence(name, rng, scan_calls):
    """Same seed, same mask: the scan drops what the cell drops at every step."""
    assert_scan_equals_keras_loop(
        name, rng, training=True, cell_kwargs={"dropout": 0.5, "seed": 3}, return_sequences=True
    )
    assert scan_calls


@pytest.mark.parametrize("name", NAMES)
def test_a_long_sequence_with_saturated_gates(name, rng, scan_calls):
    """1000 steps, weights large enough that gates saturate (a_t from ~1e-9 to ~1): the
    products of a_t underflow where they should, and nothing becomes inf or NaN."""
    layer, reference = make_pair(name, rng, return_sequences=True)
    numerics.randomize_weights(layer, rng, scale=4.0)
    numerics.copy_weights(layer, reference)
    inputs = random_inputs(rng, time=1000)
    ours = layer(inputs)
    assert scan_calls
    assert all(np.isfinite(o).all() for o in numerics.as_list(ours))
    numerics.assert_outputs_close(ours, reference(inputs), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_stateful_carries_the_scans_state_between_calls(name, rng, scan_calls):
    stateful = rnnzoo.layers.get(name)(UNITS, stateful=True, return_sequences=True)
    plain = keras.layers.RNN(rnnzoo.cells.get(name)(UNITS), return_sequences=True)
    inputs = random_inputs(rng, time=TIME)
    stateful(inputs[:, :6])
    plain(inputs)
    numerics.randomize_weights(plain, rng, scale=1.0)
    numerics.copy_weights(plain, stateful)
    stateful.reset_state()
    halves = [stateful(inputs[:, :6]), stateful(inputs[:, 6:])]
    numerics.assert_same_up_to_rounding(np.concatenate(halves, axis=1), plain(inputs))
    assert len(scan_calls) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_unknown_batch_and_time_in_graph_mode(name, rng, scan_calls):
    layer, reference = make_pair(name, rng, return_sequences=True)
    function = tf.function(
        lambda x: layer(x), input_signature=[tf.TensorSpec((None, None, FEATURES), tf.float32)]
    )
    for time in (1, 6, TIME):
        inputs = random_inputs(rng, time=time)
        numerics.assert_same_up_to_rounding(function(inputs), reference(inputs))
    assert scan_calls


@pytest.mark.parametrize("name", NAMES)
def test_scan_gradients_match_central_differences_in_float64(name, rng):
    layer = rnnzoo.layers.get(name)(UNITS, return_sequences=True, dtype="float64")
    inputs = tf.Variable(random_inputs(rng, time=TIME, dtype="float64"))
    state = tf.Variable(rng.uniform(-1.0, 1.0, size=(BATCH, UNITS)))
    layer(inputs)
    numerics.randomize_weights(layer, rng, scale=1.0)
    read_out = rng.normal(size=(BATCH, TIME, UNITS))

    def loss():
        return tf.reduce_sum(layer(inputs, initial_state=[state]) * read_out)

    tensors = [*layer.trainable_weights, inputs, state]
    with tf.GradientTape() as tape:
        value = loss()
    gradients = tape.gradient(value, tensors)
    epsilon = 1e-6
    for tensor, gradient in zip(tensors, gradients):
        gradient = tf.convert_to_tensor(gradient).numpy()
        for flat_index in rng.choice(gradient.size, size=4, replace=False):
            index = np.unravel_index(flat_index, gradient.shape)
            original = tensor.numpy()
            bumped = original.copy()
            bumped[index] += epsilon
            tensor.assign(bumped)
            up = loss().numpy()
            bumped[index] -= 2 * epsilon
            tensor.assign(bumped)
            down = loss().numpy()
            tensor.assign(original)
            np.testing.assert_allclose(
                gradient[index], (up - down) / (2 * epsilon), rtol=1e-5, atol=1e-7
            )


# ----------------------------------------------- char LM: stateful and sampling
@pytest.mark.parametrize("name", NAMES)
def test_char_lm_trains_statefully_and_its_sampler_steps_the_same_cell(name, rng, scan_calls):
    """The training model (stateful TBPTT, on the scan) and the sampler (the cell one step at
    a time) compute the same network: greedy generation equals argmax of the parallel
    model's logits, fed its own output."""
    from rnnzoo.models import build_char_lm, generate, reset_states

    vocab = 7
    train = build_char_lm(vocab, cell=name, units=8, stateful=True, batch_size=2, seed=0)
    train.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    tokens = rng.integers(0, vocab, size=(2, 11)).astype("int32")
    for start in (0, 5):  # two truncated chunks of one stream
        train.train_on_batch(tokens[:, start : start + 5], tokens[:, start + 1 : start + 6])
    assert scan_calls, "training did not use the scan"
    reset_states(train)
    whole = keras.ops.convert_to_numpy(build_and_copy(train, vocab, name)(tokens[:, :10]))
    halves = [train(tokens[:, :5]), train(tokens[:, 5:10])]
    numerics.assert_same_up_to_rounding(np.concatenate(halves, axis=1), whole)

    model = build_and_copy(train, vocab, name)
    prime = [1, 4, 2]
    generated = generate(model, prime, 6, temperature=0)[0]
    sequence = list(prime)
    for _ in range(6):
        logits = keras.ops.convert_to_numpy(model(np.array([sequence], "int32")))
        sequence.append(int(np.argmax(logits[0, -1])))
    assert generated.tolist() == sequence[len(prime) :]


def build_and_copy(train, vocab, name):
    from rnnzoo.models import build_char_lm

    model = build_char_lm(vocab, cell=name, units=8)
    model.set_weights(train.get_weights())
    return model


# ------------------------------------------------------------------ fallbacks
@pytest.mark.parametrize("option", ["fast_off", "unroll"])
def test_fast_false_and_unroll_run_keras_loop(option, rng, scan_calls):
    _, reference = make_pair("mingru", rng, return_sequences=True)
    kwargs = {"fast": False} if option == "fast_off" else {"unroll": True}
    layer = rnnzoo.layers.MinGRU(UNITS, return_sequences=True, return_state=True, **kwargs)
    inputs = random_inputs(rng, time=TIME)
    layer(inputs)
    numerics.copy_weights(reference, layer)
    scan_calls.clear()
    numerics.assert_outputs_close(layer(inputs), reference(inputs), atol=1e-6)
    assert not scan_calls


def test_only_cells_with_a_scan_take_it():
    assert parallel_scan.reason(rnnzoo.layers.GRU(UNITS)) == "GRUCell has no parallel scan"
    assert parallel_scan.reason(rnnzoo.layers.MinGRU(UNITS)) is None
    assert parallel_scan.reason(rnnzoo.layers.MinLSTM(UNITS, fast=False)) == "fast=False"


_JAX_SCRIPT = """
import sys
import numpy as np, keras
import rnnzoo

assert keras.backend.backend() == "jax", keras.backend.backend()
data = np.load(sys.argv[1])
report = []
for name in ("mingru", "minlstm"):
    for fast in (True, "auto"):  # the scan; Keras's loop, which "auto" takes on a CPU
        layer = rnnzoo.layers.get(name)(int(data["units"]), return_sequences=True, fast=fast)
        layer.build(data["inputs"].shape)
        layer.set_weights([data[f"{name}_kernel"], data[f"{name}_bias"]])
        print("LOOP", name, fast, layer.loop_choice().loop)
        report.append(float(np.max(np.abs(np.asarray(layer(data["inputs"])) - data[name]))))
print("DIFF", max(report))
"""


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)"
)
def test_the_scan_runs_on_jax_with_the_same_numbers(rng, tmp_path):
    """On JAX's CPU backend the scan (fast=True) and Keras's loop over the cell, which
    fast="auto" takes there, give TensorFlow's scan's numbers."""
    inputs = random_inputs(rng, time=TIME)
    arrays = {"inputs": inputs, "units": UNITS}
    for name in NAMES:
        layer = rnnzoo.layers.get(name)(UNITS, return_sequences=True)
        layer(inputs)
        numerics.randomize_weights(layer, rng, scale=1.0)
        arrays[f"{name}_kernel"], arrays[f"{name}_bias"] = layer.get_weights()
        arrays[name] = keras.ops.convert_to_numpy(layer(inputs))
    np.savez(tmp_path / "scan.npz", **arrays)
    stdout = processes.run_python(
        _JAX_SCRIPT,
        tmp_path / "scan.npz",
        env=processes.subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
    )
    assert float(stdout.split("DIFF")[-1]) <= 1e-5
    loops = {
        tuple(line.split()[1:3]): line.split()[3]
        for line in stdout.splitlines()
        if line.startswith("LOOP ")
    }
    assert loops == {
        (name, fast): loop for name in NAMES for fast, loop in (("True", "scan"), ("auto", "keras"))
    }
