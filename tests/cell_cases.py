"""The cases every parametrized cell and layer test runs over, and the shapes they use.

`CELL_CASES` holds every cell the registry knows, in each of its forms (the
GRU with `reset_after` True and False): a new cell is in every shared test as
soon as it is declared. `LAYER_CASES` holds the same cases as rnnzoo layers.
"""

import keras
import pytest

import rnnzoo

# For tests that take gradients with tf.GradientTape.
requires_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason=f"uses tf.GradientTape; KERAS_BACKEND is {keras.backend.backend()}",
)


# Small shapes keep every test fast: batch, time, features, units.
BATCH, TIME, FEATURES, UNITS = 2, 5, 3, 4


def _cases():
    """Every registered cell class under its first name, and each of its `forms` as
    `<name>_<form>`: id -> (cell class, keyword arguments)."""
    cases = {}
    for cell_class in rnnzoo.cells.registry.classes():
        name = cell_class.names[0]
        cases[name] = (cell_class, {})
        for form, arguments in cell_class.forms.items():
            cases[f"{name}_{form}"] = (cell_class, dict(arguments))
    return cases


CELL_CASES = _cases()
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
    """How many state tensors the case's cell carries (2 for the LSTMs, else 1; 3 for fgr)."""
    return len(CELL_CASES[case_id][0].state_names)


def state_widths(case_id, units=UNITS):
    """The width of each state of the case's cell (`units` each, but fgr's gate state)."""
    return make_cell(case_id, units=units).state_widths()


def random_inputs(rng, batch=BATCH, time=TIME, features=FEATURES, dtype="float32"):
    return rng.normal(size=(batch, time, features)).astype(dtype)


# Trainable weights of each case, as each cell's docstring lists them.
NUM_WEIGHTS = {
    "vanilla": 3,  # kernel, recurrent_kernel, bias
    "irnn": 3,
    "lstm": 3,
    "peephole": 6,  # the LSTM's and peephole_i, peephole_f, peephole_o
    "coupled": 3,
    "nig": 5,  # kernel, recurrent_kernel, bias and the peepholes of the gates it keeps
    "nfg": 5,
    "nog": 5,
    "niaf": 6,
    "noaf": 6,
    "cifg": 5,
    "fgr": 7,  # the baseline's and gate_recurrent_kernel
    "gru": 3,
    "gru_reset_before": 3,
    "layernorm_lstm": 9,  # the LSTM's and gamma, beta of kernel_norm, recurrent_norm, state_norm
    "layernorm_gru": 7,  # the GRU's and gamma, beta of kernel_norm, recurrent_norm
    "layernorm_rnn": 4,  # the vanilla RNN's and norm_gamma
    "lstmp": 4,  # the LSTM's and projection_kernel
    "mgu": 4,  # kernel, recurrent_kernel, bias, candidate_recurrent_bias
    "mgu_no_reset_gate": 3,
    "mut1": 4,  # kernel, recurrent_kernel, bias and input_projection (FEATURES != UNITS)
    "mut2": 4,
    "mut3": 3,
    "indrnn": 3,  # kernel, recurrent_kernel (a vector), bias
    "mingru": 2,  # kernel, bias: no recurrent weights
    "minlstm": 2,
}


def regularizer_arguments(case_id):
    """Every `*_regularizer` argument the case's cell takes, up its class chain."""
    arguments = rnnzoo.cells.base.cell_arguments(CELL_CASES[case_id][0])
    return sorted(name for name in arguments if name.endswith("_regularizer"))


def takes(case_id, argument):
    """Whether the case's cell takes `argument`: not one of its `fixed_arguments` (minGRU has
    no recurrent weights, so no `recurrent_dropout`, ...)."""
    return argument not in CELL_CASES[case_id][0].fixed_arguments
