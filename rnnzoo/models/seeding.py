"""Seeded model building, shared by the model builders.

One `seed` makes a whole model repeatable.
"""

import keras
import numpy as np

from rnnzoo.cells.lstm import PeepholeLSTMCell
from rnnzoo.cells.vanilla import IRNNCell


def check_int(name, value, minimum=1):
    """`value` as an int if it is an integer >= `minimum`; a ValueError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"Expected `{name}` to be an integer >= {minimum}, received {name}={value!r}."
        )
    return int(value)


def seed_stream(seed):
    """Distinct int seeds (< 2**31) drawn from `seed`, or an endless stream of None."""
    generator = None if seed is None else np.random.default_rng(check_int("seed", seed, minimum=0))
    while True:
        yield None if generator is None else int(generator.integers(2**31))


def seeded_cell_options(cell_class, seeds):
    """Seeded initializer arguments for a cell of `cell_class`, their seeds drawn from `seeds`."""
    # IRNN fixes its recurrent weights (the identity) and seeds its N(0, 0.001^2) W from `seed`.
    if issubclass(cell_class, IRNNCell):
        return {}
    options = {
        "kernel_initializer": keras.initializers.GlorotUniform(seed=next(seeds)),
        "recurrent_initializer": keras.initializers.Orthogonal(seed=next(seeds)),
    }
    if issubclass(cell_class, PeepholeLSTMCell):
        options["peephole_initializer"] = keras.initializers.GlorotUniform(seed=next(seeds))
    return options


def seeded_recurrent_layer(layer_class, units, seeds, **kwargs):
    """An rnnzoo layer whose initializers and dropout masks draw their seeds from `seeds`."""
    seeded = {"seed": next(seeds), **seeded_cell_options(layer_class.cell_class, seeds)}
    return layer_class(units, **seeded, **kwargs)
