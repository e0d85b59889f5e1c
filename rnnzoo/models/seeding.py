"""Seeded model building, shared by the model builders: one `seed` makes a whole model repeatable."""

import keras
import numpy as np

from rnnzoo import layers as rnn_layers
from rnnzoo.cells.lstm import PeepholeLSTMCell


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


def seeded_recurrent_layer(layer_class, units, seeds, **kwargs):
    """An rnnzoo layer whose initializers and dropout masks draw their seeds from `seeds`."""
    seeded = {"seed": next(seeds)}
    # IRNN fixes its recurrent weights (the identity) and seeds its N(0, 0.001^2) W from `seed`.
    if layer_class is not rnn_layers.IRNN:
        seeded["kernel_initializer"] = keras.initializers.GlorotUniform(seed=next(seeds))
        seeded["recurrent_initializer"] = keras.initializers.Orthogonal(seed=next(seeds))
    if issubclass(layer_class.cell_class, PeepholeLSTMCell):
        seeded["peephole_initializer"] = keras.initializers.GlorotUniform(seed=next(seeds))
    return layer_class(units, **seeded, **kwargs)
