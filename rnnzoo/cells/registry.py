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


def closest(name, known):
    """The one of `known` closest to `name` ignoring case, for a "did you mean"; else None."""
    matches = difflib.get_close_matches(str(name).lower(), list(known), n=1)
    return matches[0] if matches else None


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
