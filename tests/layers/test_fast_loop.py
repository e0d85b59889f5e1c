"""The fast sequence loop (rnnzoo/layers/fast_loop.py) equals the plain cell in keras.layers.RNN.

For every layer it serves: outputs, final states and the gradients w.r.t. the
inputs, the initial states and every weight, in float32 (max abs diff <= 1e-5)
and float64; with go_backwards, return_sequences on and off, dropout, stateful
layers, unknown batch and time in graph mode, mixed precision. Each cell's
step derivative (hand-written or automatic) equals autodiff of its
`pointwise`. Where the loop does not apply,
the layer falls back to Keras's loop, and a model with the fast layer saves
and loads. The fast path is proven taken (or not) by counting its calls.
"""

import importlib.util

import cell_cases
import keras
import numerics
import numpy as np
import processes
import pytest
import tensorflow as tf
from cell_cases import FEATURES, LAYER_CASES, UNITS, make_cell, random_inputs, state_widths

import rnnzoo
from rnnzoo.layers import fast_loop

pytestmark = cell_cases.requires_tensorflow

# Every case whose step is a projection then `pointwise`.
FAST_IDS = [case for case in cell_cases.CELL_IDS if make_cell(case).pointwise_step_reason() is None]
# One whole chunk of steps and 3 steps more: both loops of `_chunked_loop` run.
TIME = max(fast_loop._FORWARD_CHUNK, fast_loop._BACKWARD_CHUNK) + 3
OPTIONS = {
    "sequences": {"return_sequences": True},
    "last_output": {"return_sequences": False},
    "go_backwards": {"return_sequences": True, "go_backwards": True},
    "go_backwards_last": {"return_sequences": False, "go_backwards": True},
}
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def assert_runs_fast(layer, training=False, mask=None):
    """The layer's own answer: this call runs the fast loop (`RecurrentLayer.loop_choice`)."""
    choice = layer.loop_choice(training=training, mask=mask)
    assert choice.loop == "fast", choice.reasons


def make_pair(case_id, rng, dtype="float32", cell_kwargs=None, fast="auto", **rnn_kwargs):
    """A fast rnnzoo layer and `keras.layers.RNN` over an equal cell, same random weights.

    Both are called once (to build them), which also draws one dropout mask
    from each cell's seed generator: calls must stay paired to keep them equal.
    """
    layer_class, case_kwargs = LAYER_CASES[case_id]
    cell_kwargs = {**case_kwargs, **(cell_kwargs or {})}
    layer = layer_class(
        UNITS, dtype=dtype, return_state=True, fast=fast, **cell_kwargs, **rnn_kwargs
    )
    reference = keras.layers.RNN(
        make_cell(case_id, dtype=dtype, **cell_kwargs),
        dtype=dtype,
        return_state=True,
        **rnn_kwargs,
    )
    inputs = random_inputs(rng, time=TIME, dtype=dtype or "float32")
    layer(inputs)
    reference(inputs)
    # Small enough weights that 13 steps neither explode nor vanish: values
    # and gradients stay near 1, where an absolute tolerance means something.
    numerics.randomize_weights(layer, rng, scale=0.3)
    numerics.copy_weights(layer, reference)
    return layer, reference


def assert_equal_to_plain_rnn(
    case_id, rng, dtype="float32", training=False, mask=None, fast=True, **kwargs
):
    """Outputs and gradients of the zoo's layer (fast=True: it must run the fast loop)
    equal those of `keras.layers.RNN` over the same cell."""
    layer, reference = make_pair(case_id, rng, dtype=dtype, fast=fast, **kwargs)
    inputs = tf.constant(random_inputs(rng, time=TIME, dtype=dtype))
    states = [
        tf.constant(0.5 * rng.normal(size=(cell_cases.BATCH, width)).astype(dtype))
        for width in state_widths(case_id)
    ]
    layer(inputs)  # keeps the two seed generators in step
    read_outs = [rng.normal(size=o.shape).astype(dtype) for o in reference(inputs)]
    ours, our_gradients = numerics.outputs_and_gradients(
        layer, inputs, states, read_outs, training, mask
    )
    theirs, their_gradients = numerics.outputs_and_gradients(
        reference, inputs, states, read_outs, training, mask
    )
    if fast is True:
        assert_runs_fast(layer, training, mask)
    atol = TOLERANCE[dtype]
    numerics.assert_outputs_close(ours, theirs, atol=atol, what="outputs and states")
    names = ["inputs"] + [f"state {i}" for i in range(len(states))]
    names += [w.path for w in layer.trainable_weights]
    assert len(our_gradients) == len(their_gradients) == len(names)
    for name, our_gradient, their_gradient in zip(names, our_gradients, their_gradients):
        assert our_gradient is not None, f"no gradient for {name}"
        numerics.assert_outputs_close(our_gradient, their_gradient, atol=atol, what=name)


# ------------------------------------------------------------------ equality
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("case_id", FAST_IDS)
def test_fast_layer_equals_its_cell_in_keras_rnn(case_id, option, rng):
    assert_equal_to_plain_rnn(case_id, rng, **OPTIONS[option])


@pytest.mark.parametrize("case_id", FAST_IDS)
def test_fast_layer_equals_its_cell_in_float64(case_id, rng):
    assert_equal_to_plain_rnn(case_id, rng, dtype="float64", return_sequences=True)


@pytest.mark.parametrize("case_id", ["lstm", "gru", "vanilla"])
def test_fast_layer_without_bias_equals_its_cell(case_id, rng):
    assert_equal_to_plain_rnn(case_id, rng, cell_kwargs={"use_bias": False}, return_sequences=True)


@pytest.mark.parametrize("case_id", ["lstm", "gru", "irnn"])
def test_input_dropout_uses_the_cells_one_mask_per_sequence(case_id, rng):
    """Same seed, same mask: the fast loop drops exactly what the cell drops at every step."""
    assert_equal_to_plain_rnn(
        case_id,
        rng,
        training=True,
        cell_kwargs={"dropout": 0.5, "seed": 3},
        return_sequences=True,
    )


@pytest.mark.parametrize("case_id", ["lstm", "gru"])
def test_graph_mode_with_unknown_batch_and_time(case_id, rng):
    layer, reference = make_pair(case_id, rng, return_sequences=True)
    signature = [tf.TensorSpec((None, None, FEATURES), tf.float32)]
    fast = tf.function(lambda x: layer(x), input_signature=signature)
    for batch, time in [(3, 7), (2, 12)]:
        inputs = random_inputs(rng, batch=batch, time=time)
        numerics.assert_outputs_close(fast(inputs), reference(inputs), what="outputs")
    assert_runs_fast(layer)


def test_training_a_model_with_unknown_time_matches_the_plain_cell(rng):
    """model.fit (a compiled train step) takes the same steps with the fast loop."""
    inputs = random_inputs(rng, batch=4, time=9)
    targets = rng.normal(size=(4, 1)).astype("float32")
    models = []
    for make in (lambda: rnnzoo.layers.LSTM(UNITS), lambda: keras.layers.RNN(make_cell("lstm"))):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((None, FEATURES)), make(), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    for model in models:
        model.fit(inputs, targets, batch_size=2, epochs=2, verbose=0, shuffle=False)
    numerics.assert_outputs_close(models[0].get_weights(), models[1].get_weights(), what="weights")
    assert_runs_fast(models[0].layers[0], training=True)


@pytest.mark.parametrize("case_id", ["lstm", "gru"])
def test_stateful_fast_layer_carries_the_same_state(case_id, rng):
    layer, reference = make_pair(case_id, rng, stateful=True, return_sequences=True)
    layer.reset_state()  # the building call ran with other weights
    reference.reset_state()
    for _ in range(2):
        inputs = random_inputs(rng, time=TIME)
        numerics.assert_outputs_close(layer(inputs), reference(inputs), what="outputs and states")
    assert_runs_fast(layer)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_stateful_fast_layer_in_a_graph_with_a_static_batch(batch_size, rng):
    # A stateful model fixes its batch size; the loop's states keep that static
    # shape from step to step (batch 1 once failed in tf.while_loop's shape check).
    layer, reference = make_pair("lstm", rng, stateful=True, return_sequences=True)
    models = []
    for recurrent in (layer, reference):
        inputs = keras.Input(batch_shape=(batch_size, None, FEATURES))
        model = keras.Model(inputs, recurrent.__class__.from_config(recurrent.get_config())(inputs))
        model.layers[-1].set_weights(recurrent.get_weights())
        models.append(model)
    sequences = random_inputs(rng, batch=batch_size, time=TIME)
    fast, plain = (model.predict(sequences, batch_size=batch_size, verbose=0) for model in models)
    numerics.assert_outputs_close(fast, plain, what="stateful outputs in graph mode")
    assert_runs_fast(models[0].layers[-1])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("case_id", ["lstm", "peephole", "gru"])
def test_fast_layer_in_mixed_precision(case_id, policy, rng):
    keras.config.set_dtype_policy(policy)  # conftest restores the policy
    layer, reference = make_pair(case_id, rng, dtype=None, return_sequences=True)
    inputs = random_inputs(rng, time=TIME)
    ours, theirs = layer(inputs), reference(inputs)
    compute = policy.removeprefix("mixed_")
    assert all(keras.backend.standardize_dtype(o.dtype) == compute for o in ours)
    numerics.assert_outputs_close(ours, theirs, atol=1e-2, what=f"{compute} outputs")
    assert_runs_fast(layer)


# -------------------------------------------------------- explicit derivatives
@pytest.mark.parametrize("case_id", FAST_IDS)
def test_step_derivative_equals_autodiff(case_id, rng):
    """Each cell's step derivative (its hand-written one where it declares one) is the VJP
    of its `pointwise`."""
    cell = make_cell(case_id, dtype="float64")
    cell.build((None, FEATURES))
    numerics.randomize_weights(cell, rng)
    derivative = cell.derivative()
    declared = type(cell).step_derivative
    if declared is None or not declared(cell).supported:
        declared = rnnzoo.cells.derivatives.AutomaticDerivative
    assert type(derivative) is declared
    width = cell.kernel.shape[-1]
    recurrent_width = cell.recurrent_projection_kernel().shape[-1]

    def normal(*shape):
        return tf.constant(rng.normal(size=shape))

    z = (
        normal(cell_cases.BATCH, width)
        if cell.projection == "sum"
        else (normal(cell_cases.BATCH, width), normal(cell_cases.BATCH, recurrent_width))
    )
    states = [normal(cell_cases.BATCH, width) for width in cell.state_widths()]
    parameters = [tf.constant(p.numpy()) for p in cell.pointwise_parameters()]
    d_states = [normal(cell_cases.BATCH, width) for width in cell.state_widths()]
    with tf.GradientTape() as tape:
        tape.watch([z, states, parameters])
        new_states, _ = cell.pointwise(z, states, parameters)
        loss = sum(tf.reduce_sum(s * d) for s, d in zip(new_states, d_states))
    expected = tape.gradient(
        loss, [z, states, parameters], unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    forward_states, saved = derivative.forward(z, states, parameters)
    numerics.assert_outputs_close(forward_states, new_states, atol=0.0, what="forward")
    assert [tuple(s.shape)[-1] for s in saved] == derivative.saved_widths()
    d_z, d_prev, d_parameters = derivative.backward(saved, d_states, parameters)
    d_prev = [tf.zeros_like(s) if d is None else d for s, d in zip(states, d_prev)]
    if derivative.per_row_parameter_gradients:
        # The step's shares per batch row, summed over the batch as the loop does.
        d_parameters = [tf.reduce_sum(d, axis=0) for d in d_parameters]
    for what, actual, wanted in [
        ("d_z", d_z, expected[0]),
        ("d_states_prev", d_prev, expected[1]),
        ("d_parameters", d_parameters, expected[2]),
    ]:
        if tf.nest.flatten(wanted):
            numerics.assert_outputs_close(
                tf.nest.flatten(actual), tf.nest.flatten(wanted), atol=1e-12, what=what
            )


@pytest.mark.parametrize("activation", ["softsign", "elu"])
def test_an_activation_without_a_hand_written_derivative_runs_fast_by_autodiff(activation, rng):
    layer, _ = make_pair("lstm", rng, cell_kwargs={"activation": activation})
    assert type(layer.cell.derivative()) is rnnzoo.cells.derivatives.AutomaticDerivative
    assert_equal_to_plain_rnn("lstm", rng, cell_kwargs={"activation": activation})


# ------------------------------------------------------ masks, recurrent dropout
def random_mask(rng, pattern):
    """A (batch, TIME) mask: right-padded, left-padded or holes anywhere."""
    mask = np.ones((cell_cases.BATCH, TIME), dtype=bool)
    if pattern == "right_padded":
        mask[1, -4:] = False
    elif pattern == "left_padded":
        mask[0, :3] = False
    else:
        mask = rng.random((cell_cases.BATCH, TIME)) < 0.6
        mask[0, 0] = False
    return mask


@pytest.mark.parametrize("zero_output", [False, True], ids=["carry_output", "zero_output"])
@pytest.mark.parametrize("pattern", ["right_padded", "left_padded", "holes"])
@pytest.mark.parametrize("option", ["sequences", "last_output", "go_backwards"])
def test_masked_sequences_run_fast_and_equal_keras_loop(option, pattern, zero_output, rng):
    """A masked step keeps the states and outputs the last output (or zeros), as Keras's loop."""
    assert_equal_to_plain_rnn(
        "lstm",
        rng,
        mask=tf.constant(random_mask(rng, pattern)),
        zero_output_for_mask=zero_output,
        **OPTIONS[option],
    )


@pytest.mark.parametrize("case_id", ["vanilla", "peephole", "gru", "fgr"])
def test_masked_sequences_run_fast_for_every_kind_of_state(case_id, rng):
    assert_equal_to_plain_rnn(
        case_id, rng, mask=tf.constant(random_mask(rng, "holes")), return_sequences=True
    )


@pytest.mark.parametrize("case_id", ["lstm", "gru", "vanilla", "cifg", "gru_reset_before"])
def test_recurrent_dropout_in_training_runs_fast_with_the_cells_one_mask(case_id, rng):
    """Same seed, same masks: h_{t-1} dropped where it enters h_{t-1} U, as the cell does
    (and, in the reset-before GRU, where it enters (r_t * h_{t-1}) U_h)."""
    assert_equal_to_plain_rnn(
        case_id,
        rng,
        training=True,
        cell_kwargs={"dropout": 0.25, "recurrent_dropout": 0.4, "seed": 5},
        return_sequences=True,
    )


def test_masks_and_recurrent_dropout_together(rng):
    assert_equal_to_plain_rnn(
        "lstm",
        rng,
        training=True,
        mask=tf.constant(random_mask(rng, "right_padded")),
        cell_kwargs={"recurrent_dropout": 0.3, "seed": 2},
        return_sequences=True,
        go_backwards=True,
    )


# ------------------------------------------------------------------ the choice
FALLBACKS = {
    "fast_off": ("lstm", {"fast": False}, {}, "fast=False"),
    "unroll": ("lstm", {"unroll": True}, {}, "unroll=True"),
}


@pytest.mark.parametrize("fallback", list(FALLBACKS))
def test_where_the_fast_loop_cannot_run_keras_loop_runs_and_says_why(fallback, rng):
    case_id, rnn_kwargs, cell_kwargs, why = FALLBACKS[fallback]
    layer, reference = make_pair(case_id, rng, cell_kwargs=cell_kwargs, **rnn_kwargs)
    choice = layer.loop_choice(training=True)
    assert choice.loop == "keras" and why in choice.reasons["fast"], choice
    assert "cuDNN" in choice.reasons["cudnn"] or "GPU" in choice.reasons["cudnn"]
    inputs = tf.constant(random_inputs(rng, time=TIME))
    numerics.assert_outputs_close(
        layer(inputs, training=True), reference(inputs, training=True), what="outputs"
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: rnnzoo.layers.LSTM(UNITS, fast=True, unroll=True),
        lambda: rnnzoo.layers.get("mut1")(UNITS, fast=True),
    ],
    ids=["unroll", "not_pointwise"],
)
def test_fast_true_raises_naming_the_reason(make):
    with pytest.raises(ValueError, match=r"fast=True, but .*(unroll|not a projection)"):
        make()


def test_fast_must_be_auto_true_or_false():
    for value in ("yes", 1, None):
        with pytest.raises(ValueError, match="Expected `fast` to be 'auto', True or False"):
            rnnzoo.layers.LSTM(UNITS, fast=value)


def test_recurrent_dropout_at_inference_runs_fast(rng):
    layer, reference = make_pair("lstm", rng, cell_kwargs={"recurrent_dropout": 0.3})
    inputs = random_inputs(rng, time=TIME)
    numerics.assert_outputs_close(layer(inputs), reference(inputs))
    assert_runs_fast(layer, training=False)


@pytest.mark.parametrize("time, loops", [(1, 0), (7, 0), (10, 1), (23, 1), (None, 2)], ids=str)
def test_inference_loops_over_chunks_and_runs_a_known_rest_without_a_loop(time, loops, rng):
    """Inference reads and writes its TensorArrays in a loop over chunks of 10 steps (the
    form ONNX and TFLite converters take); where the length is known when traced, the steps
    left over run after it unrolled, so a one-step call (a sampler's, a stateful model fed
    step by step) runs no loop at all; an unknown length loops over them too. Outputs equal
    the plain cell's either way."""
    layer, reference = make_pair("lstm", rng, return_sequences=True)
    spec = tf.TensorSpec((3, time, FEATURES), tf.float32)
    traced = tf.function(lambda x: layer(x)).get_concrete_function(spec)
    whiles = [op for op in traced.graph.get_operations() if op.type in ("While", "StatelessWhile")]
    assert len(whiles) == loops
    inputs = random_inputs(rng, batch=3, time=time or 13)
    numerics.assert_outputs_close(traced(tf.constant(inputs)), reference(inputs))


# -------------------------------------------------------------- config, saving
def test_fast_is_in_the_config():
    layer = rnnzoo.layers.GRU(UNITS, fast=False)
    config = layer.get_config()
    assert config["fast"] is False
    assert rnnzoo.layers.GRU.from_config(config).fast is False
    assert rnnzoo.layers.GRU(UNITS).fast == "auto"


def test_model_with_fast_layers_saves_and_loads(rng, tmp_path):
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            rnnzoo.layers.LSTM(UNITS, return_sequences=True),
            rnnzoo.layers.GRU(UNITS, go_backwards=True),
            keras.layers.Dense(2),
        ]
    )
    inputs = random_inputs(rng, time=TIME)
    expected = model(inputs)
    path = tmp_path / "fast.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [layer.fast for layer in loaded.layers[:2]] == ["auto", "auto"]
    numerics.assert_outputs_close(loaded(inputs), expected, atol=1e-6)
    for layer in loaded.layers[:2]:
        assert_runs_fast(layer)


_JAX_SCRIPT = """
import sys
import numpy as np, keras
import rnnzoo

assert keras.backend.backend() == "jax", keras.backend.backend()
data = np.load(sys.argv[1])
layer = rnnzoo.layers.LSTM(data["units"].item(), return_sequences=True)
layer.build(data["inputs"].shape)
layer.set_weights([data["kernel"], data["recurrent_kernel"], data["bias"]])
print("DIFF", float(np.max(np.abs(np.asarray(layer(data["inputs"])) - data["outputs"]))))
"""


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)"
)
def test_the_same_layer_gives_the_same_numbers_on_jax(rng, tmp_path):
    """Weights from TensorFlow, the same outputs on JAX (where the JAX fast loop runs)."""
    layer = rnnzoo.layers.LSTM(UNITS, return_sequences=True)
    inputs = random_inputs(rng, time=TIME)
    layer(inputs)
    numerics.randomize_weights(layer, rng, scale=0.3)
    path = tmp_path / "lstm.npz"
    kernel, recurrent_kernel, bias = layer.get_weights()
    np.savez(
        path,
        inputs=inputs,
        outputs=keras.ops.convert_to_numpy(layer(inputs)),
        units=UNITS,
        kernel=kernel,
        recurrent_kernel=recurrent_kernel,
        bias=bias,
    )
    stdout = processes.run_python(
        _JAX_SCRIPT, path, env=processes.subprocess_env(KERAS_BACKEND="jax")
    )
    assert float(stdout.split("DIFF")[-1]) <= 1e-5


def test_784_steps_of_pixels_equal_keras_lstm_in_float64(rng):
    """Pixel-MNIST's length: the fast LSTM over 784 steps of one value in [0, 1] (the
    pixel tasks' input) equals `keras.layers.LSTM` with the same weights (Keras's own
    initialisers), outputs and gradients, to float64 rounding: nothing in the chunked loop
    drifts over a long sequence."""
    inputs = tf.constant(rng.uniform(size=(4, 784, 1)))
    layer = rnnzoo.layers.LSTM(64, dtype="float64", fast=True)
    reference = keras.layers.LSTM(64, dtype="float64")
    layer(inputs)
    reference(inputs)
    numerics.copy_weights(layer, reference)
    states = [tf.zeros((4, 64), "float64"), tf.zeros((4, 64), "float64")]
    read_outs = [rng.normal(size=(4, 64))]
    ours, our_gradients = numerics.outputs_and_gradients(layer, inputs, states, read_outs)
    theirs, their_gradients = numerics.outputs_and_gradients(reference, inputs, states, read_outs)
    assert_runs_fast(layer)
    numerics.assert_outputs_close(ours, theirs, atol=1e-12, what="outputs")
    names = ["inputs", "h0", "c0", "kernel", "recurrent_kernel", "bias"]
    assert len(our_gradients) == len(their_gradients) == len(names)
    for name, our_gradient, their_gradient in zip(names, our_gradients, their_gradients):
        numerics.assert_outputs_close(our_gradient, their_gradient, atol=1e-12, what=name)
