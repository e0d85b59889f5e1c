"""Every cell follows the Keras cell contract: shapes, config, saving, training, named gates."""

import keras
import layer_checks
import numerics
import numpy as np
import processes
import pytest
from cell_cases import (
    CELL_CASES,
    CELL_IDS,
    NUM_WEIGHTS,
    UNITS,
    make_cell,
    random_inputs,
    regularizer_arguments,
    takes,
)

# Arguments away from the defaults, to prove the config carries each of them.
NON_DEFAULT_ARGUMENTS = {
    "vanilla": {"activation": "softsign", "use_bias": False},
    "irnn": {"identity_scale": 0.5, "bias_initializer": "ones"},
    "lstm": {"unit_forget_bias": False, "recurrent_activation": "hard_sigmoid"},
    "peephole": {"peephole_initializer": "zeros", "peephole_regularizer": "l2"},
    "coupled": {"activation": "softsign", "unit_forget_bias": False},
    "nig": {"peephole_constraint": "non_neg", "chrono_timescale": 50},
    "nfg": {"peephole_initializer": "ones", "activation": "softsign"},
    "nog": {"unit_forget_bias": False, "peephole_regularizer": "l1"},
    "niaf": {"activation": "softsign", "peephole_initializer": "zeros"},
    "noaf": {"recurrent_activation": "hard_sigmoid", "use_bias": False},
    "cifg": {"unit_forget_bias": False, "peephole_constraint": "non_neg"},
    "fgr": {
        "gate_recurrent_initializer": "zeros",
        "gate_recurrent_regularizer": "l2",
        "gate_recurrent_constraint": "non_neg",
    },
    "gru": {"recurrent_activation": "hard_sigmoid", "use_bias": False},
    "gru_reset_before": {"activation": "softsign", "use_bias": False},
    "layernorm_lstm": {
        "norm_epsilon": 0.01,
        "norm_beta_initializer": "ones",
        "norm_gamma_constraint": "non_neg",
    },
    "layernorm_gru": {"norm_epsilon": 0.01, "norm_gamma_regularizer": "l2", "use_bias": False},
    "layernorm_rnn": {"norm_epsilon": 0.001, "norm_gamma_initializer": "zeros"},
    "lstmp": {
        "projection_units": 3,
        "projection_initializer": "zeros",
        "projection_constraint": "non_neg",
    },
    "mgu": {"reset_gate": False, "unit_forget_bias": False},
    "mgu_no_reset_gate": {"recurrent_activation": "hard_sigmoid", "use_bias": False},
    "mut1": {"recurrent_activation": "hard_sigmoid", "use_bias": False},
    "mut2": {"activation": "softsign", "bias_initializer": "ones"},
    "mut3": {"use_bias": False, "activation": "softsign"},
    "indrnn": {"recurrent_max_abs": 1.5, "recurrent_initializer": "zeros"},
    "mingru": {"use_bias": False, "kernel_initializer": "zeros"},
    "minlstm": {"bias_initializer": "ones", "kernel_constraint": "non_neg"},
}
COMMON_ARGUMENTS = {
    "dropout": 0.25,
    "recurrent_dropout": 0.125,
    "seed": 7,
    "kernel_regularizer": "l2",
    "recurrent_constraint": "non_neg",
    "name": "the_cell",
}


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_cell_in_keras_rnn_passes_the_layer_test(case_id, rng, tmp_path):
    regularizers = regularizer_arguments(case_id)

    def make_layer(**kwargs):
        cell_kwargs = {name: kwargs.pop(name) for name in regularizers if name in kwargs}
        return keras.layers.RNN(make_cell(case_id, **cell_kwargs), **kwargs)

    layer_checks.run_layer_test(
        make_layer,
        random_inputs(rng),
        units=UNITS,
        state_widths=make_cell(case_id).state_widths(),
        rng=rng,
        num_weights=NUM_WEIGHTS[case_id],
        regularizers=regularizers,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_cells_show_every_argument_they_take(case_id):
    import inspect

    cell_class = CELL_CASES[case_id][0]
    shown = inspect.signature(cell_class).parameters
    assert list(shown)[0] == "units" and list(shown)[-1] == "kwargs"
    for argument in (*NON_DEFAULT_ARGUMENTS[case_id], *COMMON_ARGUMENTS):
        if argument == "name":  # the base layer's, as in Keras's cells' signatures
            continue
        assert (argument in shown) == takes(case_id, argument), argument
    # Each argument shown is taken, at the default shown, and keeps it.
    defaults = {name: p.default for name, p in shown.items() if name not in ("units", "kwargs")}
    config = cell_class(UNITS, name="cell", **defaults).get_config()
    assert config == cell_class(UNITS, name="cell").get_config()


@pytest.mark.parametrize(
    "keras_name, zoo_name",
    [("LSTMCell", "LSTMCell"), ("GRUCell", "GRUCell"), ("SimpleRNNCell", "VanillaRNNCell")],
)
def test_cells_show_every_argument_of_keras_cells(keras_name, zoo_name):
    import inspect

    import rnnzoo

    keras_parameters = inspect.signature(getattr(keras.layers, keras_name)).parameters
    zoo_parameters = inspect.signature(getattr(rnnzoo.cells, zoo_name)).parameters
    assert [name for name in keras_parameters if name not in zoo_parameters] == []


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_cell_config_round_trip_with_non_default_arguments(case_id, rng):
    common = {k: v for k, v in COMMON_ARGUMENTS.items() if takes(case_id, k)}
    cell = make_cell(case_id, **NON_DEFAULT_ARGUMENTS[case_id], **common)
    config = cell.get_config()
    for key, value in {**NON_DEFAULT_ARGUMENTS[case_id], **common}.items():
        assert key in config, f"get_config() lacks {key}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert config[key] == value
    layer_checks.assert_config_mirrors_init(cell)

    clone = type(cell).from_config(config)
    assert clone.get_config() == config

    inputs = random_inputs(rng)
    original_layer = keras.layers.RNN(cell, return_state=True)
    clone_layer = keras.layers.RNN(clone, return_state=True)
    original_layer(inputs)
    clone_layer(inputs)
    numerics.randomize_weights(original_layer, rng)
    numerics.copy_weights(original_layer, clone_layer)
    assert numerics.max_abs_diff(clone_layer(inputs), original_layer(inputs)) == 0.0


def test_models_with_every_cell_load_in_a_fresh_process(rng, tmp_path):
    """One new Python process loads a model per cell and reproduces its outputs."""
    inputs = random_inputs(rng)
    models = {}
    for case_id in CELL_IDS:
        sequence = keras.Input(shape=(None, inputs.shape[-1]))
        outputs = keras.layers.RNN(make_cell(case_id), return_sequences=True, return_state=True)(
            sequence
        )
        model = keras.Model(sequence, outputs)
        numerics.randomize_weights(model, rng)
        models[case_id] = (model, inputs)
    processes.assert_loads_in_fresh_process(models, tmp_path)


@pytest.mark.parametrize("case_id", CELL_IDS)
def test_step_returns_the_gates_the_cell_names(case_id, rng):
    cell = make_cell(case_id)
    layer = keras.layers.RNN(cell)
    inputs = random_inputs(rng)
    layer(inputs)
    numerics.randomize_weights(layer, rng)
    states = [
        rng.normal(size=(inputs.shape[0], width)).astype("float32") for width in cell.state_widths()
    ]

    output, new_states, gates = cell.step(inputs[:, 0], states)

    assert set(gates) == set(cell.gate_names)
    assert len(cell.gate_names) == len(set(cell.gate_names))
    for name, gate in gates.items():
        assert tuple(gate.shape) == (inputs.shape[0], UNITS), name
    call_output, call_states = cell(inputs[:, 0], states)
    assert numerics.max_abs_diff(output, call_output) == 0.0
    assert numerics.max_abs_diff(list(new_states), list(call_states)) == 0.0
    assert list(cell.state_names)[0] == "h"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(new_states[0]), output)
