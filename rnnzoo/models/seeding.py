"""Seeded model building, shared by the model builders.

One `seed` makes a whole model repeatable.
"""

import inspect

import keras
import numpy as np


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
    """Seeded initializer arguments for a cell of `cell_class`, their seeds drawn from `seeds`.

    Each argument the class lists in `seeded_initializers` gets its default
    initializer with a seed of its own, in that order.
    """
    return {
        name: _seeded(_default(cell_class, name), next(seeds))
        for name in cell_class.seeded_initializers
    }


def _default(cell_class, argument):
    """The default value of `argument` of `cell_class`, from the nearest `__init__` declaring it."""
    for klass in cell_class.__mro__:
        if "__init__" in vars(klass):
            parameter = inspect.signature(klass.__init__).parameters.get(argument)
            if parameter is not None and parameter.default is not parameter.empty:
                return parameter.default
    raise TypeError(f"{cell_class.__name__} has no default for {argument!r} to seed.")


def _seeded(initializer, seed):
    """`initializer` (a name or instance) as a new instance drawing from `seed`."""
    initializer = keras.initializers.get(initializer)
    config = initializer.get_config()
    if "seed" not in config:
        raise TypeError(
            f"{type(initializer).__name__} takes no seed; drop it from seeded_initializers."
        )
    return type(initializer).from_config({**config, "seed": seed})


def seeded_recurrent_layer(layer_class, units, seeds, **kwargs):
    """An rnnzoo layer whose initializers and dropout masks draw their seeds from `seeds`
    (an initializer among `kwargs` replaces the seeded default; the seeds are drawn all the
    same, so the other layers' seeds don't move)."""
    seeded = {"seed": next(seeds), **seeded_cell_options(layer_class.cell_class, seeds)}
    return layer_class(units, **{**seeded, **kwargs})
