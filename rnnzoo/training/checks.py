"""Range checks for a recipe config's `validate()`: each failure a `RecipeError` naming the key.

def validate(self):
    checks.one_of(self, "cell", cells.names())
    checks.at_least(self, 1, "units", "batch_size")
    checks.fraction(self, "dropout")
"""

import contextlib
import inspect
import math

from rnnzoo import layers as rnn_layers
from rnnzoo.cells.registry import closest
from rnnzoo.training.config import tomllib
from rnnzoo.training.errors import RecipeError


def one_of(config, name, allowed):
    """`config.<name>` must be one of `allowed`."""
    value = getattr(config, name)
    if value not in allowed:
        meant = closest(value, allowed)
        hint = f" (did you mean {meant!r}?)" if meant else ""
        raise RecipeError(f"unknown {name} {value!r}{hint}; expected one of: {', '.join(allowed)}.")


def at_least(config, minimum, *names):
    """Each `config.<name>` must be >= `minimum` (NaN fails too)."""
    for name in names:
        value = getattr(config, name)
        if not value >= minimum:
            what = "at least 1" if minimum == 1 else f">= {minimum}"
            raise RecipeError(f"`{name}` must be {what}, received {value!r}.")


def fraction(config, *names):
    """Each `config.<name>` must lie in [0, 1)."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            raise RecipeError(f"`{name}` must lie in [0, 1), received {value!r}.")


def factor(config, *names):
    """Each `config.<name>` must lie in (0, 1]: a factor that shrinks a value or keeps it."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 < value <= 1.0:
            raise RecipeError(f"`{name}` must lie in (0, 1], received {value!r}.")


def positive_number(config, *names):
    """Each `config.<name>` must be finite and > 0."""
    for name in names:
        value = getattr(config, name)
        if not (value > 0 and math.isfinite(value)):
            raise RecipeError(f"`{name}` must be a positive number, received {value!r}.")


def seed(config, name="seed"):
    """`config.<name>` must be a valid seed, in [0, 2**31)."""
    value = getattr(config, name)
    if not 0 <= value < 2**31:
        raise RecipeError(f"`{name}` must lie in [0, 2**31), received {value!r}.")


# The recurrent layers' arguments every recipe sets itself: `cell_args` may not.
RECIPE_LAYER_ARGUMENTS = (
    *("units", "return_sequences", "return_state", "go_backwards", "stateful", "name"),
    "seed",
)


def cell_args(config, cell_names, refused=RECIPE_LAYER_ARGUMENTS, of=rnn_layers.get):
    """`config.cell_args` as a dict of more arguments of each recurrent layer (or, with
    `of=rnnzoo.cells.get`, of each cell): TOML pairs (`keyword_arguments`), none `refused`,
    each a named argument of the class `of(name)` for every cell in `cell_names`. The names
    only, by the classes' signatures (building a layer here would start TensorFlow before
    `--devices` could split the CPU); `cell_args_values` catches a value the class can't take,
    when the model is built."""
    arguments = keyword_arguments(config, "cell_args", refused)
    for name in cell_names:
        target = of(name)
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        accepted = [
            p.name for p in inspect.signature(target).parameters.values() if p.kind in named
        ]
        unknown = [key for key in arguments if key not in accepted]
        if unknown:
            raise RecipeError(
                f"`cell_args` {config.cell_args!r} does not fit cell {name!r}: "
                f"{target.__name__} has no argument {', '.join(unknown)}."
            )
    return arguments


@contextlib.contextmanager
def cell_args_values(config):
    """Building a model inside: a TypeError or ValueError there, where `config.cell_args` is
    set, becomes one `RecipeError` line naming it (others pass as they are)."""
    try:
        yield
    except (TypeError, ValueError) as error:
        if not config.cell_args:
            raise
        reason = str(error).strip().splitlines() or [""]
        raise RecipeError(
            f"`cell_args` {config.cell_args!r} does not fit cell {config.cell!r}: "
            f"{type(error).__name__}: {reason[0]}"
        ) from None


def keyword_arguments(config, name, refused=()):
    """`config.<name>`, TOML `key = value` pairs separated by commas, as a dict; none of its
    keys may be one of `refused` (the arguments the recipe sets itself)."""
    text = getattr(config, name)
    try:
        arguments = tomllib.loads(f"arguments = {{{text}}}")["arguments"]
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(
            f"`{name}` must be TOML `key = value` pairs separated by commas, e.g. "
            f"'norm_epsilon = 1.0, unit_forget_bias = false'; received {text!r} "
            f"({str(error).split(' (at line')[0]})."
        ) from None
    for key in arguments:
        if key in refused:
            raise RecipeError(
                f"`{name}` may not set {key!r}: the recipe sets it (arguments it leaves to "
                f"`{name}`: any but {', '.join(refused)})."
            )
    return arguments
