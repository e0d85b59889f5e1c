"""The rnnzoo layers: Keras's own layers where one exists, the plain cell in
keras.layers.RNN for every layer, and the layer contract (shapes, flat config,
saving, training, errors)."""

import inspect
import warnings

import cell_cases
import keras
import layer_checks
import numerics
import numpy as np
import processes
import pytest
import tensorflow as tf
from cell_cases import (
    CELL_IDS,
    LAYER_CASES,
    NUM_WEIGHTS,
    UNITS,
    make_cell,
    random_inputs,
    regularizer_arguments,
    state_widths,
    takes,
)

import rnnzoo

LAYER_IDS = list(LAYER_CASES)


def make_layer(case_id, units=UNITS, **kwargs):
    layer_class, case_kwargs = LAYER_CASES[case_id]
    return layer_class(units, **{**case_kwargs, **kwargs})


# ----------------------------------------------------------- Keras built-ins
KERAS_TWINS = {
    "vanilla": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": lambda units, **kw: keras.layers.GRU(units, reset_after=True, **kw),
    "gru_reset_before": lambda units, **kw: keras.layers.GRU(units, reset_after=False, **kw),
}
OPTIONS = {
    "sequences": {},
    "go_backwards": {"go_backwards": True},
    "return_state": {"return_state": True},
    "masking_layer": {},
    "mask_argument": {},
    "go_backwards_masked": {"go_backwards": True},
}


def padded_inputs(rng):
    """Sequences whose sample 1 ends in two all-zero (padding) steps, and their mask."""
    inputs = random_inputs(rng)
    inputs[1, -2:] = 0.0
    return inputs, np.any(inputs != 0.0, axis=-1)


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("case_id", list(KERAS_TWINS))
def test_layer_equals_its_keras_twin(case_id, option, rng):
    inputs, mask = padded_inputs(rng)
    kwargs = dict(return_sequences=True, **OPTIONS[option])
    zoo = make_layer(case_id, **kwargs)
    twin = KERAS_TWINS[case_id](UNITS, **kwargs)
    zoo(inputs)
    twin(inputs)
    numerics.randomize_weights(zoo, rng)
    numerics.copy_weights(zoo, twin)
    if option == "masking_layer":
        outputs = [
            keras.Sequential([keras.layers.Masking(0.0), layer])(inputs) for layer in (zoo, twin)
        ]
    elif option in ("mask_argument", "go_backwards_masked"):
        outputs = [layer(inputs, mask=mask) for layer in (zoo, twin)]
    else:
        outputs = [zoo(inputs), twin(inputs)]
    numerics.assert_outputs_close(*outputs, atol=1e-5)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case_id", list(KERAS_TWINS))
@cell_cases.requires_tensorflow
def test_layer_gradients_equal_its_keras_twin(case_id, use_bias, rng):
    inputs = tf.constant(random_inputs(rng))
    zoo = make_layer(case_id, return_sequences=True, use_bias=use_bias)
    twin = KERAS_TWINS[case_id](UNITS, return_sequences=True, use_bias=use_bias)
    zoo(inputs)
    twin(inputs)
    numerics.randomize_weights(zoo, rng)
    numerics.copy_weights(zoo, twin)
    read_out = rng.normal(size=(*inputs.shape[:2], UNITS)).astype("float32")
    gradients = []
    for layer in (zoo, twin):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs, training=True) * read_out)
        gradients.append(tape.gradient(loss, [*layer.trainable_weights, inputs]))
    for ours, theirs in zip(*gradients):
        numerics.assert_same_up_to_rounding(ours, theirs, what="gradient")


# ---------------------------------------------- every layer = its plain cell
@pytest.mark.parametrize("option", ["plain", "go_backwards", "mask", "initial_state", "unroll"])
@pytest.mark.parametrize("case_id", LAYER_IDS)
def test_layer_equals_its_cell_in_keras_rnn(case_id, option, rng):
    inputs, mask = padded_inputs(rng)
    kwargs = {"return_sequences": True, "return_state": True}
    kwargs.update(
        {"go_backwards": {"go_backwards": True}, "unroll": {"unroll": True}}.get(option, {})
    )
    layer = make_layer(case_id, **kwargs)
    reference = keras.layers.RNN(make_cell(case_id), **kwargs)
    layer(inputs)
    reference(inputs)
    numerics.randomize_weights(layer, rng)
    numerics.copy_weights(layer, reference)
    call_kwargs = {}
    if option == "mask":
        call_kwargs["mask"] = mask
    if option == "initial_state":
        call_kwargs["initial_state"] = [
            rng.normal(size=(inputs.shape[0], width)).astype("float32")
            for width in state_widths(case_id)
        ]
    assert type(layer.cell) is type(reference.cell)
    numerics.assert_same_up_to_rounding(
        layer(inputs, **call_kwargs), reference(inputs, **call_kwargs)
    )


@pytest.mark.parametrize("case_id", LAYER_IDS)
@cell_cases.requires_tensorflow
def test_layer_gradients_equal_its_cell_in_keras_rnn(case_id, rng):
    """The cell's gradients pass finite differences (tests/cells); the layer's equal them."""
    inputs = tf.constant(random_inputs(rng))
    layer = make_layer(case_id, return_sequences=True, return_state=True)
    reference = keras.layers.RNN(make_cell(case_id), return_sequences=True, return_state=True)
    layer(inputs)
    reference(inputs)
    numerics.randomize_weights(layer, rng)
    numerics.copy_weights(layer, reference)
    read_outs = [rng.normal(size=o.shape).astype("float32") for o in reference(inputs)]
    gradients = []
    for candidate in (layer, reference):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = sum(
                tf.reduce_sum(o * r) for o, r in zip(candidate(inputs, training=True), read_outs)
            )
        gradients.append(tape.gradient(loss, [*candidate.trainable_weights, inputs]))
    for ours, theirs in zip(*gradients):
        numerics.assert_same_up_to_rounding(ours, theirs, what="gradient")


# ------------------------------------------------------------ the contract
@pytest.mark.parametrize("case_id", LAYER_IDS)
def test_layer_passes_the_layer_test(case_id, rng, tmp_path):
    layer_checks.run_layer_test(
        lambda **rnn_kwargs: make_layer(case_id, **rnn_kwargs),
        random_inputs(rng),
        units=UNITS,
        state_widths=make_cell(case_id).state_widths(),
        rng=rng,
        num_weights=NUM_WEIGHTS[case_id],
        regularizers=regularizer_arguments(case_id),
        tmp_path=tmp_path,
    )


def every_layer_models(rng, inputs):
    """{name: model}: each layer alone, a stack with a Bidirectional, a layer returning its
    state, and one reading a mask (random weights)."""
    models = {}
    for case_id in LAYER_IDS:
        models[case_id] = keras.Sequential(
            [
                keras.Input(shape=(None, inputs.shape[-1])),
                make_layer(case_id, return_sequences=True),
            ]
        )
    sequence = keras.Input(shape=(None, inputs.shape[-1]))
    hidden = rnnzoo.layers.PeepholeLSTM(UNITS, return_sequences=True, dropout=0.25)(sequence)
    hidden = keras.layers.Bidirectional(rnnzoo.layers.GRU(UNITS, reset_after=False))(hidden)
    models["stack_with_bidirectional"] = keras.Model(sequence, keras.layers.Dense(2)(hidden))
    sequence = keras.Input(shape=(None, inputs.shape[-1]))
    models["lstm_return_state"] = keras.Model(
        sequence, rnnzoo.layers.LSTM(UNITS, return_state=True, go_backwards=True)(sequence)
    )
    sequence = keras.Input(shape=(None, inputs.shape[-1]))
    masked = keras.layers.Masking()(sequence)
    models["masked_lstm"] = keras.Model(sequence, rnnzoo.layers.LSTM(UNITS)(masked))
    for model in models.values():
        numerics.randomize_weights(model, rng)
    return models


def test_models_with_every_layer_load_in_a_fresh_process(rng, tmp_path):
    inputs = random_inputs(rng)
    models = every_layer_models(rng, inputs)
    processes.assert_loads_in_fresh_process({k: (m, inputs) for k, m in models.items()}, tmp_path)


def test_models_with_every_layer_export_a_savedmodel_that_serves_without_rnnzoo(rng, tmp_path):
    """`model.export(path)` (a SavedModel for TF Serving) works with every layer: inference
    runs the fast loop without its custom gradient, whose saved TensorArrays a SavedModel
    can't hold. The exported `serve` gives the model's outputs in a process that imports
    TensorFlow alone."""
    inputs, mask = padded_inputs(rng)
    models = every_layer_models(rng, inputs)
    expected = {"inputs": inputs}
    for name, model in models.items():
        model.export(tmp_path / name, verbose=False)
        for index, output in enumerate(tf.nest.flatten(model(inputs))):
            expected[f"{name}_{index}"] = np.asarray(output)
    np.savez(tmp_path / "io.npz", **expected)
    report = processes.served_differences(tmp_path)
    assert sorted(report) == sorted(models)
    assert max(report.values()) <= 1e-6, report


@pytest.mark.slow  # about 50 s: 29 exports through tf2onnx
@processes.needs_onnx
def test_models_with_every_layer_export_to_onnx_and_run_in_onnx_runtime(rng, tmp_path):
    """`model.export(path, format="onnx")` (Keras's, through tf2onnx) works with every layer,
    as it does with Keras's own: inference's loop reads and writes its TensorArrays one
    element per iteration, the form tf2onnx turns into ONNX Loops. ONNX Runtime gives the
    model's outputs on sequences of 23 steps (two chunks of 10, then 3 steps one by one),
    one right-padded."""
    import onnxruntime

    inputs = random_inputs(rng, time=23)
    inputs[1, -4:] = 0.0
    for name, model in every_layer_models(rng, inputs).items():
        expected = tf.nest.flatten(model(inputs))  # Keras exports a model once called
        path = tmp_path / f"{name}.onnx"
        model.export(path, format="onnx", verbose=False)
        session = onnxruntime.InferenceSession(str(path))
        outputs = session.run(None, {session.get_inputs()[0].name: inputs})
        assert len(outputs) == len(expected), name
        for output, wanted in zip(outputs, expected):
            np.testing.assert_allclose(output, np.asarray(wanted), rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.slow  # about 30 s: 26 conversions
def test_every_layer_converts_to_tflite_builtin_ops_with_a_fixed_batch(rng):
    """`tf.lite.TFLiteConverter.from_keras_model` converts a model with any zoo layer to
    TFLite's own ops (no Select TF ops) where the batch size is fixed, as it does Keras's
    LSTM (with a batch of None it lowers neither's TensorLists); the TFLite interpreter gives
    the model's outputs on right-padded sequences of 23 steps through a Masking layer."""
    inputs = random_inputs(rng, time=23)
    inputs[1, -4:] = 0.0
    for case_id in LAYER_IDS:
        model = keras.Sequential(
            [
                keras.Input(inputs.shape[1:], batch_size=inputs.shape[0]),
                keras.layers.Masking(),
                make_layer(case_id, return_sequences=True),
            ]
        )
        numerics.randomize_weights(model, rng)
        interpreter = tf.lite.Interpreter(
            model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert()
        )
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
        interpreter.invoke()
        outputs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(outputs, model(inputs), rtol=0, atol=1e-5, err_msg=case_id)


@pytest.mark.parametrize("case_id", ["lstm", "gru", "peephole", "vanilla"])
def test_xla_compiled_calls_run_keras_loop_and_compile_leaves_xla_off(case_id, rng):
    """The fast loop's TensorArrays don't compile with XLA. As Keras's LSTM does where it runs
    cuDNN, a layer that runs its TensorFlow loop has `supports_jit = False`: `compile` leaves
    XLA off (`jit_compile="auto"`, XLA where a GPU is) or warns and turns it off
    (`jit_compile=True`, once a compile error), and trains as without it. Called inside
    XLA-compiled code of one's own, the layer runs Keras's loop (`fast=True` says why)."""
    inputs = random_inputs(rng)
    targets = rng.normal(size=(inputs.shape[0], 1)).astype("float32")
    models, start = [], None
    for jit_compile in (True, False):
        model = keras.Sequential(
            [keras.Input(inputs.shape[1:]), make_layer(case_id), keras.layers.Dense(1)]
        )
        start = start or model.get_weights()
        model.set_weights(start)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
        assert model.jit_compile is False
        assert any("jit_compile" in str(w.message) for w in caught) == jit_compile
        model.fit(inputs, targets, batch_size=2, epochs=2, shuffle=False, verbose=0)
        models.append(model)
    for ours, theirs in zip(*(m.get_weights() for m in models), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert models[0].layers[0].supports_jit is False
    assert make_layer(case_id, fast=False).supports_jit is True  # no GPU here: no cuDNN

    layer = models[0].layers[0]
    compiled = tf.function(lambda x: layer(x), jit_compile=True)
    numerics.assert_outputs_close(compiled(inputs), layer(inputs), atol=1e-5, what="XLA")
    forced = make_layer(case_id, fast=True)
    forced(inputs)
    with pytest.raises(ValueError, match="fast=True, but .*XLA compilation"):
        tf.function(lambda x: forced(x), jit_compile=True)(tf.constant(inputs))


@pytest.mark.parametrize("case_id", ["lstm", "gru", "peephole"])
def test_inference_traced_without_a_tape_still_has_exact_gradients(case_id, rng):
    """A function traced where no tape watches (as `predict` and `export` trace) runs the
    forward loop alone; a gradient taken through it later is TensorFlow's own, and equals
    the plain cell's in keras.layers.RNN."""
    layer = make_layer(case_id, return_sequences=True)
    reference = keras.layers.RNN(make_cell(case_id), return_sequences=True)
    inputs = tf.constant(random_inputs(rng))
    layer(inputs)
    reference(inputs)
    numerics.randomize_weights(layer, rng, scale=0.3)
    numerics.copy_weights(layer, reference)
    assert layer.loop_choice(training=False).loop == "fast"
    traced = tf.function(lambda x: layer(x))
    traced(inputs)  # traced here, no tape
    gradients = []
    for candidate, weights in ((traced, layer.trainable_weights), (reference, reference.weights)):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(candidate(inputs) ** 2)
        gradients.append(tape.gradient(loss, [inputs, *weights]))
    for ours, theirs in zip(*gradients, strict=True):
        numerics.assert_outputs_close(ours, theirs, atol=1e-5, what="gradient")


def test_flat_constructor_sets_cell_and_rnn_arguments():
    layer = rnnzoo.layers.LSTM(
        8,
        dropout=0.1,
        recurrent_dropout=0.2,
        unit_forget_bias=False,
        return_sequences=True,
        go_backwards=True,
        name="encoder",
    )
    assert isinstance(layer, keras.layers.RNN)
    assert isinstance(layer.cell, rnnzoo.cells.LSTMCell)
    assert (layer.units, layer.dropout, layer.recurrent_dropout) == (8, 0.1, 0.2)
    assert layer.unit_forget_bias is False and layer.cell.unit_forget_bias is False
    assert layer.return_sequences and layer.go_backwards and layer.name == "encoder"
    config = layer.get_config()
    assert "cell" not in config
    assert (config["units"], config["dropout"], config["go_backwards"]) == (8, 0.1, True)
    layer_checks.assert_config_mirrors_init(layer)
    assert rnnzoo.layers.IRNN(4, identity_scale=0.5).identity_scale == 0.5


@pytest.mark.parametrize("case_id", LAYER_IDS)
def test_layer_masks_stateful_and_dropout(case_id, rng):
    inputs = random_inputs(rng)
    layer = make_layer(case_id, return_sequences=True, return_state=True)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    layer_checks.assert_masked_steps_carry_state(layer, inputs)
    layer_checks.assert_stateful_carries_state(lambda **kw: make_layer(case_id, **kw), inputs)
    rates = (0.5, 0.0) if takes(case_id, "recurrent_dropout") else (0.0,)
    for recurrent_dropout in rates:  # with and without recurrent dropout
        layer_checks.assert_one_dropout_mask_per_sequence(
            lambda units, **rates: make_layer(
                case_id, units, seed=5, return_sequences=True, **rates
            ),
            rng,
            recurrent_dropout=recurrent_dropout,
        )


@pytest.mark.parametrize("case_id", ["lstm", "gru", "mingru"])
def test_inference_draws_no_dropout_mask_but_spends_the_seeds_of_kerass_rnn(case_id, rng):
    """Only training reads the dropout masks, so an inference call's graph has no random op
    (a training call's has); each call still spends the seeds `keras.layers.RNN` over the
    same cell spends, so the masks of training steps after it stay the same as there."""
    inputs = random_inputs(rng)
    rates = (
        {"dropout": 0.3, "recurrent_dropout": 0.2}
        if takes(case_id, "recurrent_dropout")
        else {"dropout": 0.3}
    )
    layer = make_layer(case_id, return_sequences=True, seed=7, **rates)
    reference = keras.layers.RNN(make_cell(case_id, seed=7, **rates), return_sequences=True)
    spec = tf.TensorSpec((None, None, inputs.shape[-1]), tf.float32)
    for training in (False, True):
        graph = tf.function(
            lambda x, training=training: layer(x, training=training)
        ).get_concrete_function(spec)
        random_ops = [op.type for op in graph.graph.get_operations() if "Random" in op.type]
        assert bool(random_ops) == training, (training, random_ops)
    for model in (layer, reference):
        model(inputs)  # builds
    reference.set_weights(layer.get_weights())
    for training in (False, False, True, False, True):
        ours = layer(inputs, training=training)
        theirs = reference(inputs, training=training)
        numerics.assert_outputs_close(ours, theirs, what=f"outputs, training={training}")
        np.testing.assert_array_equal(
            np.asarray(layer.cell.seed_generator.state.value),
            np.asarray(reference.cell.seed_generator.state.value),
        )


@pytest.mark.parametrize("case_id", LAYER_IDS)
def test_layer_in_mixed_float16(case_id, rng):
    inputs = random_inputs(rng)
    full = make_layer(case_id, return_sequences=True)
    expected = full(inputs)
    keras.mixed_precision.set_dtype_policy("mixed_float16")  # conftest restores the policy
    half = make_layer(case_id, return_sequences=True)
    outputs = half(inputs)
    numerics.copy_weights(full, half)
    outputs = half(inputs)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
    np.testing.assert_allclose(
        numerics.as_list(outputs)[0].astype("float32"),
        numerics.as_list(expected)[0],
        rtol=1e-2,
        atol=1e-2,
    )


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("shape", [(2, 3), (2, 5, 3, 1)], ids=["rank2", "rank4"])
def test_inputs_of_the_wrong_rank_are_refused(shape):
    with pytest.raises(ValueError, match=rf"expected ndim=3, found ndim={len(shape)}"):
        rnnzoo.layers.LSTM(UNITS)(np.zeros(shape, "float32"))


@pytest.mark.parametrize("units", [0, -1, 1.5])
def test_layer_units_must_be_a_positive_integer(units):
    with pytest.raises(ValueError, match=rf"positive integer, received units={units}"):
        rnnzoo.layers.GRU(units)


@pytest.mark.parametrize("case_id", LAYER_IDS)
def test_layer_refuses_an_initial_state_of_the_wrong_shape(case_id, rng):
    inputs = random_inputs(rng)
    states = [np.zeros((inputs.shape[0], width), "float32") for width in state_widths(case_id)]
    wrong_width = [np.zeros((inputs.shape[0], UNITS + 2), "float32")] + states[1:]
    with pytest.raises(
        ValueError,
        match=rf"state `h` of shape \(batch_size, {UNITS}\), received shape \(2, {UNITS + 2}\)",
    ):
        make_layer(case_id)(inputs, initial_state=wrong_width)
    with pytest.raises(
        ValueError, match=rf"expects {len(states)} state tensor\(s\).*received {len(states) + 1}"
    ):
        make_layer(case_id)(inputs, initial_state=states + states[:1])


def test_unknown_layer_name_and_unknown_argument():
    assert [rnnzoo.layers.get(name).cell_class for name in rnnzoo.cells.names()] == [
        rnnzoo.cells.get(name) for name in rnnzoo.cells.names()
    ]
    with pytest.raises(
        ValueError,
        match=r"Unknown cell name 'transformer'; expected one of: "
        + ", ".join(rnnzoo.cells.names()),
    ):
        rnnzoo.layers.get("transformer")
    with pytest.raises(ValueError, match=r"'min_gru' \(did you mean 'mingru'\?\); expected"):
        rnnzoo.layers.get("min_gru")
    with pytest.raises(ValueError, match="peephole_initializer"):
        rnnzoo.layers.LSTM(UNITS, peephole_initializer="zeros")  # an argument of another cell


def test_keras_names_point_to_the_zoos():
    """Keras's SimpleRNN is the zoo's vanilla RNN: not an alias, a "did you mean" by name, and
    by attribute in both modules (as for other near misses); a name like no cell's has none."""
    with pytest.raises(ValueError, match=r"'SimpleRNN' \(did you mean 'vanilla'\?\)"):
        rnnzoo.layers.get("SimpleRNN")
    for module, name, meant in (
        (rnnzoo.layers, "SimpleRNN", "VanillaRNN"),
        (rnnzoo.cells, "SimpleRNNCell", "VanillaRNNCell"),
        (rnnzoo.layers, "Peephole", "PeepholeLSTM"),
        (rnnzoo.cells, "GRUcell", "GRUCell"),
    ):
        assert hasattr(module, meant)
        with pytest.raises(AttributeError, match=rf"'{name}' \(did you mean '{meant}'\?\)$"):
            getattr(module, name)
    with pytest.raises(AttributeError, match=r"has no attribute 'Transformer'$"):
        rnnzoo.layers.Transformer  # noqa: B018
    assert not hasattr(rnnzoo.cells, "_private")


def test_cell_ids_cover_every_registered_cell():
    assert {type(make_cell(c)) for c in CELL_IDS} == {
        rnnzoo.cells.get(n) for n in rnnzoo.cells.names()
    }
    assert {make_layer(c).cell_class for c in LAYER_IDS} == {
        rnnzoo.layers.get(n).cell_class for n in rnnzoo.cells.names()
    }


# ------------------------------------------------ a drop-in for Keras's layers
KERAS_LAYERS = {
    "lstm": (keras.layers.LSTM, rnnzoo.layers.LSTM),
    "gru": (keras.layers.GRU, rnnzoo.layers.GRU),
    "gru_reset_before": (
        lambda units, **kw: keras.layers.GRU(units, reset_after=False, **kw),
        rnnzoo.layers.GRU,
    ),
    "simple_rnn": (keras.layers.SimpleRNN, rnnzoo.layers.VanillaRNN),
}


@pytest.mark.parametrize("case", list(KERAS_LAYERS))
def test_a_keras_layers_config_loads_into_the_zoo_layer_with_the_same_outputs(case, rng):
    keras_class, zoo_class = KERAS_LAYERS[case]
    original = keras_class(
        UNITS,
        return_sequences=True,
        go_backwards=True,
        dropout=0.1,
        activity_regularizer="l2",
        kernel_regularizer=keras.regularizers.L1(0.01),
        seed=3,
        name="from_keras",
    )
    inputs = random_inputs(rng)
    original(inputs)
    numerics.randomize_weights(original, rng)
    zoo = zoo_class.from_config(original.get_config())
    zoo(inputs)
    zoo.set_weights(original.get_weights())
    numerics.assert_same_up_to_rounding(zoo(inputs), original(inputs))
    assert zoo.name == "from_keras" and zoo.go_backwards
    assert zoo.seed == original.get_config().get("seed")  # Keras's SimpleRNN does not save it
    # The kernel's and the activity's (Keras's SimpleRNN drops its activity regularizer).
    assert len(zoo.losses) == len(original.losses) == (1 if case == "simple_rnn" else 2)
    again = zoo_class.from_config(zoo.get_config())
    again(inputs)
    assert len(again.losses) == len(zoo.losses)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rnnzoo.layers.LSTM(UNITS, implementation=1),
        lambda: rnnzoo.layers.GRU(UNITS, implementation=2, use_cudnn=False),
        lambda: rnnzoo.layers.PeepholeLSTM(UNITS, use_cudnn="auto", implementation=2),
    ],
    ids=["lstm_implementation", "gru_use_cudnn_false", "peephole"],
)
def test_kerass_implementation_and_use_cudnn_are_accepted(make, rng):
    layer = make()
    assert layer(random_inputs(rng)).shape == (2, UNITS)
    assert "implementation" not in layer.get_config()  # ignored, as Keras 3 does


def test_use_cudnn_true_says_why_cudnn_cannot_apply(rng):
    with pytest.raises(ValueError, match=r"use_cudnn=True, but cuDNN has no PeepholeLSTMCell"):
        rnnzoo.layers.PeepholeLSTM(UNITS, use_cudnn=True)
    with pytest.raises(ValueError, match=r"use_cudnn=True, but cuDNN has no recurrent dropout"):
        rnnzoo.layers.LSTM(UNITS, use_cudnn=True, recurrent_dropout=0.1)
    with pytest.raises(ValueError, match=r"use_cudnn=True, but cuDNN needs activation='tanh'"):
        rnnzoo.layers.GRU(UNITS, use_cudnn=True, activation="relu")
    # On this CPU-only machine the layer is made (its config may travel to a GPU
    # machine), and a call says there is no GPU.
    layer = rnnzoo.layers.LSTM(UNITS, use_cudnn=True)
    if layer.loop_choice().loop != "cudnn":
        with pytest.raises(ValueError, match=r"use_cudnn=True, but no GPU is visible"):
            layer(random_inputs(rng))


def test_the_loop_choice_is_public_and_explained():
    assert rnnzoo.layers.LSTM(UNITS, use_cudnn=False).loop_choice().loop == "fast"
    choice = rnnzoo.layers.LSTM(UNITS, use_cudnn=False, fast=False).loop_choice()
    assert choice == rnnzoo.layers.LoopChoice(
        "keras", {"cudnn": "use_cudnn=False", "fast": "fast=False"}
    )
    assert rnnzoo.layers.GRU(UNITS, reset_after=False).loop_choice(training=True).loop == "fast"
    for name in ("mingru", "minlstm"):  # the parallel scan over time is their fast path
        assert rnnzoo.layers.get(name)(UNITS, fast=True).loop_choice().loop == "scan"
        slow = rnnzoo.layers.get(name)(UNITS, fast=False).loop_choice()
        assert slow.loop == "keras" and slow.reasons["scan"] == "fast=False"
    dropping = rnnzoo.layers.GRU(UNITS, reset_after=False, recurrent_dropout=0.1)
    for training in (True, False):
        assert dropping.loop_choice(training=training).loop == "fast"


@pytest.mark.parametrize("name", ["LSTM", "GRU", "PeepholeLSTM", "IRNN"])
def test_layers_show_their_real_signature(name):
    import inspect
    import pydoc

    layer_class = getattr(rnnzoo.layers, name)
    parameters = inspect.signature(layer_class).parameters
    assert list(parameters)[0] == "units"
    for argument in ("return_sequences", "stateful", "dropout", "kernel_initializer", "fast"):
        assert argument in parameters, argument
    assert ("reset_after" in parameters) == (name == "GRU")
    assert ("peephole_initializer" in parameters) == (name == "PeepholeLSTM")
    assert ("recurrent_initializer" in parameters) == (name != "IRNN")  # the IRNN fixes U
    text = pydoc.render_doc(layer_class, renderer=pydoc.plaintext)
    assert f"{name}(units, activation=" in text  # Keras's order, by position as far as it goes


@pytest.mark.parametrize(
    "module, keras_name, zoo_name, args",
    [
        ("layers", "LSTM", "LSTM", ("relu", "hard_sigmoid", False, "zeros")),
        ("layers", "GRU", "GRU", ("relu", "hard_sigmoid", False, "zeros")),
        ("layers", "SimpleRNN", "VanillaRNN", ("relu", False, "zeros")),
        ("cells", "LSTMCell", "LSTMCell", ("relu", "hard_sigmoid", False, "zeros")),
        ("cells", "GRUCell", "GRUCell", ("relu", "hard_sigmoid", False, "zeros")),
        ("cells", "SimpleRNNCell", "VanillaRNNCell", ("relu", False, "zeros")),
    ],
)
def test_positional_arguments_mean_what_they_mean_to_keras(module, keras_name, zoo_name, args):
    def by_position(klass):
        parameters = inspect.signature(klass).parameters.items()
        return [name for name, p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]

    keras_class = getattr(keras.layers, keras_name)
    zoo_class = getattr(getattr(rnnzoo, module), zoo_name)
    assert by_position(zoo_class) == by_position(keras_class)
    keras_config = keras_class(UNITS, *args).get_config()
    zoo_config = zoo_class(UNITS, *args).get_config()
    for name in by_position(keras_class)[1 : len(args) + 1]:
        assert zoo_config[name] == keras_config[name], name
    assert zoo_config["use_bias"] is False


def test_positional_arguments_past_keras_order_or_twice_are_type_errors():
    with pytest.raises(TypeError, match=r"LSTM\(\) got multiple values for argument 'activation'"):
        rnnzoo.layers.LSTM(UNITS, "relu", activation="tanh")
    with pytest.raises(TypeError, match=r"MinGRU\(\) takes only units by position; received 1"):
        rnnzoo.layers.MinGRU(UNITS, True)
    with pytest.raises(TypeError, match=r"IRNNCell\(\) takes units and at most 3 more arguments"):
        rnnzoo.cells.IRNNCell(UNITS, "relu", True, None, "zeros")  # IRNN fixes U, 4th in Keras
    # The zoo's variants take Keras's order as far as they share it (PeepholeLSTM: LSTM's).
    assert rnnzoo.cells.PeepholeLSTMCell(UNITS, "relu").get_config()["activation"] == "relu"

    class Tagged(rnnzoo.cells.LSTMCell):  # a user's cell with an __init__ of its own binds as
        def __init__(self, units, tag="x", **kwargs):  # it says, and shows so
            super().__init__(units, **kwargs)
            self.tag = tag

    assert Tagged(UNITS, "y").tag == "y"
    assert str(inspect.signature(Tagged)).startswith("(units, *, activation=")


@pytest.mark.parametrize(
    "keras_name, zoo_name", [("LSTM", "LSTM"), ("GRU", "GRU"), ("SimpleRNN", "VanillaRNN")]
)
def test_signatures_name_every_argument_of_keras_layers(keras_name, zoo_name):
    import inspect

    keras_parameters = inspect.signature(getattr(keras.layers, keras_name)).parameters
    zoo_parameters = inspect.signature(getattr(rnnzoo.layers, zoo_name)).parameters
    missing = [name for name in keras_parameters if name not in zoo_parameters]
    assert missing == []
    assert zoo_parameters["activity_regularizer"].default is None
    names = list(zoo_parameters)
    assert names.index("activity_regularizer") == names.index("bias_regularizer") + 1
