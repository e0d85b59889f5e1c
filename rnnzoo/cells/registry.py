"""Cells by name: what a recipe's `--cell` flag resolves through."""

from rnnzoo.cells.gru import GRUCell
from rnnzoo.cells.lstm import CoupledLSTMCell, LSTMCell, PeepholeLSTMCell
from rnnzoo.cells.vanilla import IRNNCell, VanillaRNNCell

CELLS = {
    "vanilla": VanillaRNNCell,
    "irnn": IRNNCell,
    "lstm": LSTMCell,
    "peephole": PeepholeLSTMCell,
    "coupled": CoupledLSTMCell,
    "gru": GRUCell,
}


def names():
    """The names `get` knows, in the zoo's order."""
    return list(CELLS)


def lookup(table, name, what):
    """`table[name]`, or a ValueError that lists the known names."""
    if isinstance(name, str) and name.lower() in table:
        return table[name.lower()]
    raise ValueError(f"Unknown {what} {name!r}; expected one of: {', '.join(table)}.")


def get(name):
    """Return the cell class called `name` (one of `names()`).

    >>> import rnnzoo
    >>> rnnzoo.cells.get("peephole").__name__
    'PeepholeLSTMCell'
    """
    return lookup(CELLS, name, "cell name")
