"""The shared layer test (keras-hub style) and the checks of behaviour inside the RNN loop.

`run_layer_test(make_layer, inputs, units=..., state_widths=...)` proves, for a
layer built by `make_layer(**rnn_kwargs)`:

- output and state shapes, eagerly and symbolically, for every combination of
  `return_sequences` and `return_state`;
- the count of trainable and non-trainable weights, and the output dtype
  (float32, and float16 under the "mixed_float16" policy);
- `layer.losses`: with every regularizer argument the layer takes set, each
  trainable weight adds its penalty (an argument accepted and then dropped
  fails), and the activity regularizer adds one more;
- the config round trip: `from_config(get_config())` gives an equal config and,
  with the weights copied, equal outputs; every config key is an `__init__`
  argument, and every argument of the class's own `__init__` is in the config;
- saving to `.keras` and loading back (in this process) with equal outputs;
- one training step that moves every trainable weight of the layer.
"""

import inspect
from pathlib import Path

import keras
import numpy as np
from cell_cases import TIME, random_inputs
from numerics import (
    as_list,
    assert_same_up_to_rounding,
    copy_weights,
    max_abs_diff,
    randomize_weights,
)

import rnnzoo


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


def expected_shapes(inputs_shape, units, state_widths, return_sequences, return_state):
    batch, time = inputs_shape[0], inputs_shape[1]
    output = (batch, time, units) if return_sequences else (batch, units)
    return [output] + ([(batch, width) for width in state_widths] if return_state else [])


def run_layer_test(
    make_layer,
    inputs,
    *,
    units,
    state_widths,
    rng,
    num_weights,
    regularizers=None,
    tmp_path=None,
    train=True,
):
    """Shapes, weights, losses, config round trip, save/load and a training step of a layer.

    Args:
        make_layer: Callable taking `keras.layers.RNN` keyword arguments
            (`return_sequences`, `return_state`, `activity_regularizer`) and
            the `regularizers` below, and returning a new layer.
        inputs: numpy array (batch, time, features).
        units: The expected output width.
        state_widths: The expected width of each state.
        rng: numpy Generator for the random weights and targets.
        num_weights: The expected number of trainable weights (the layer has
            no non-trainable weights).
        regularizers: Keyword arguments setting every regularizer the layer
            takes (`kernel_regularizer`, ...), each to an L2 penalty; between
            them they must cover every trainable weight.
        tmp_path: Where to save the `.keras` file; no save test without it.
        train: Whether to run the training step.
    """
    # 1. Shapes, eager and symbolic.
    for return_sequences in (False, True):
        for return_state in (False, True):
            flags = dict(return_sequences=return_sequences, return_state=return_state)
            want = expected_shapes(inputs.shape, units, state_widths, **flags)
            got = [tuple(o.shape) for o in as_list(make_layer(**flags)(inputs))]
            assert got == want, f"{flags}: eager shapes {got}, expected {want}"
            symbolic = make_layer(**flags)(keras.Input(shape=(None, inputs.shape[-1])))
            symbolic = symbolic if isinstance(symbolic, (list, tuple)) else [symbolic]
            got = [tuple(o.shape) for o in symbolic]
            want = expected_shapes((None, None), units, state_widths, **flags)
            assert got == want, f"{flags}: symbolic shapes {got}, expected {want}"

    # 2. Weights, output dtype, and the losses of every regularizer.
    layer = make_layer(return_sequences=True)
    outputs = layer(inputs)
    assert len(layer.trainable_weights) == num_weights, (
        f"{len(layer.trainable_weights)} trainable weights "
        f"{[w.path for w in layer.trainable_weights]}, expected {num_weights}"
    )
    assert not layer.non_trainable_weights, f"non-trainable {layer.non_trainable_weights}"
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32", outputs.dtype
    assert not layer.losses, "losses without any regularizer"
    if regularizers is not None:
        penalty = 0.01
        regularized = make_layer(
            return_sequences=True,
            activity_regularizer=keras.regularizers.L2(penalty),
            **{name: keras.regularizers.L2(penalty) for name in regularizers},
        )
        outputs = regularized(inputs)
        randomize_weights(regularized, rng)
        outputs = keras.ops.convert_to_numpy(regularized(inputs))
        expected_losses = [
            penalty * float(np.sum(np.square(w.numpy()))) for w in regularized.trainable_weights
        ]
        expected_losses.append(penalty * float(np.sum(np.square(outputs))) / inputs.shape[0])
        got = sorted(float(loss) for loss in regularized.losses)
        assert len(got) == len(expected_losses), (
            f"{len(got)} losses, expected {len(expected_losses)} (one per weight and the "
            "activity regularizer): a regularizer argument was dropped"
        )
        assert np.allclose(got, sorted(expected_losses), rtol=1e-4), (got, expected_losses)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = make_layer(return_sequences=True, return_state=True)
        mixed_outputs = as_list(mixed(inputs))
    finally:
        keras.config.set_dtype_policy(previous_policy)
    assert all(o.dtype == np.float16 for o in mixed_outputs), [o.dtype for o in mixed_outputs]
    assert all(w.dtype == "float32" for w in mixed.weights), "mixed precision keeps float32 weights"

    # 3. Config round trip, with the weights copied.
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

    # 4. Save to .keras and load back.
    model = keras.Sequential([keras.Input(shape=inputs.shape[1:]), make_layer()])
    randomize_weights(model, rng)
    if tmp_path is not None:
        path = Path(tmp_path) / "layer_test.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded.layers[0]) is type(model.layers[0])
        assert max_abs_diff(loaded(inputs), model(inputs)) == 0.0, "loaded model differs"

    # 5. One training step moves every trainable weight of the layer.
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
    # Random weights, not the initializers': these can leave every ReLU unit of a small
    # IndRNN at zero by the end, and then there is no state to carry.
    randomize_weights(plain, np.random.default_rng(0))
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
    unmatched = np.ones(batch, dtype=bool)
    for recurrent_mask in _binary_masks(units, recurrent_dropout):
        if recurrent_dropout:  # the mask scales the rows of U (the entries of IndRNN's u)
            recurrent_kernel = layer.cell.recurrent_kernel.numpy()
            rows = recurrent_mask.reshape(-1, *[1] * (recurrent_kernel.ndim - 1))
            reference.cell.recurrent_kernel.assign(rows * recurrent_kernel)
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
