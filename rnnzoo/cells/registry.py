"""Cells by name: what a recipe's `--cell` flag resolves through.

A cell class registers itself by declaring `names` (see
`rnnzoo.cells.base.RecurrentCell`); nothing here lists cells by hand.
"""

import difflib

_CELLS = {}


def register(cell_class):
    """Make `cell_class` known under each of its `names` (lowercase, unique)."""
    for name in cell_class.names:
        if name != name.lower() or not name.isidentifier():
            raise ValueError(
                f"{cell_class.__name__}.names holds {name!r}; a cell name is a lowercase "
                "identifier, e.g. 'lstm'."
            )
        known = _CELLS.get(name)
        if known is not None and known.__qualname__ != cell_class.__qualname__:
            raise ValueError(
                f"Cell name {name!r} of {cell_class.__name__} is taken by {known.__name__}; "
                "choose another name."
            )
        _CELLS[name] = cell_class
    return cell_class


def names():
    """The names `get` knows, in the order the cells were declared."""
    return list(_CELLS)


def classes():
    """The registered cell classes, each once, in the order they were declared."""
    return list(dict.fromkeys(_CELLS.values()))


# Keras's names for what the zoo calls otherwise: a "did you mean", not an alias (one name
# per idea).
KERAS_NAMES = {"simplernn": "vanilla", "simple_rnn": "vanilla"}


def closest(name, known):
    """The one of `known` closest to `name` ignoring case (or the zoo's name for Keras's, as
    'vanilla' for 'SimpleRNN'), for a "did you mean"; else None."""
    name = str(name).lower()
    if KERAS_NAMES.get(name) in known:
        return KERAS_NAMES[name]
    matches = difflib.get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


def missing_attribute(module, name, class_name):
    """The AttributeError for `module.name`, with the closest cell's class
    (`class_name(cell_class)`) where `name` reads like a cell's name."""
    hint = ""
    if not name.startswith("_"):
        stem = name[: -len("Cell")] if name.endswith("Cell") else name
        meant = closest(stem, _CELLS)
        if meant is not None:
            hint = f" (did you mean {class_name(_CELLS[meant])!r}?)"
    return AttributeError(f"module {module!r} has no attribute {name!r}{hint}")


def lookup(table, name, what):
    """`table[name]`, or a ValueError that lists the known names."""
    if isinstance(name, str) and name.lower() in table:
        return table[name.lower()]
    meant = closest(name, table)
    hint = f" (did you mean {meant!r}?)" if meant else ""
    raise ValueError(f"Unknown {what} {name!r}{hint}; expected one of: {', '.join(table)}.")


def get(name):
    """Return the cell class called `name` (one of `names()`).

    >>> import rnnzoo
    >>> rnnzoo.cells.get("peephole").__name__
    'PeepholeLSTMCell'
    """
    return lookup(_CELLS, name, "cell name")
