"""The zoo's layers: one `keras.layers.RNN` per registered cell, derived from the cell class.

Declaring a cell (a `rnnzoo.cells.RecurrentCell` subclass with `names`) is
all it takes to get its layer: `layer_class(cell_class)` makes it, named
after the cell without "Cell" (`LSTMCell` -> `LSTM`), registered with Keras
under the "rnnzoo" package, with the cell's and the RNN's arguments in its
signature. The zoo's own layers are attributes of `rnnzoo.layers`.

>>> import keras, rnnzoo
>>> model = keras.Sequential([
...     keras.Input((None, 3)),
...     rnnzoo.layers.PeepholeLSTM(8, return_sequences=True),
...     rnnzoo.layers.GRU(8),
...     keras.layers.Dense(1),
... ])
>>> model(keras.ops.ones((2, 5, 3))).shape
(2, 1)
"""

import inspect

import keras

from rnnzoo import cells
from rnnzoo.layers.base import RecurrentLayer

_LAYERS = {}
# Keras's layers, whose positional arguments the zoo's layers take in the same order.
KERAS_LAYERS = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)


def layer_name(cell_class):
    """The layer's class name: the cell's without its "Cell" suffix."""
    name = cell_class.__name__
    return name[: -len("Cell")] if name.endswith("Cell") and len(name) > 4 else f"{name}Layer"


def layer_class(cell_class):
    """The `RecurrentLayer` subclass that runs `cell_class` (made once, then reused)."""
    if cell_class not in _LAYERS:
        name = layer_name(cell_class)
        summary = (cell_class.__doc__ or "").strip().splitlines()[0] if cell_class.__doc__ else ""
        doc = (
            f"{summary}\n\nThe `keras.layers.RNN` of `{cell_class.__module__}."
            f"{cell_class.__name__}`: it takes the cell's arguments and the RNN's side by side "
            f"(see `RecurrentLayer`), and its config is flat.\n\n"
            f"{_cell_doc(cell_class)}"
        )
        signature = _signature(cell_class)
        klass = type(
            name,
            (RecurrentLayer,),
            {
                "cell_class": cell_class,
                "__doc__": doc,
                "__module__": "rnnzoo.layers",
                "__init__": _init(signature),
                # What `inspect.signature(klass)` (help(), IDEs, Jupyter) shows.
                "__signature__": signature.replace(
                    parameters=list(signature.parameters.values())[1:]
                ),
            },
        )
        _LAYERS[cell_class] = keras.saving.register_keras_serializable(package="rnnzoo")(klass)
    return _LAYERS[cell_class]


def get(name):
    """Return the layer class for a cell name (one of `rnnzoo.cells.names()`).

    >>> import rnnzoo
    >>> rnnzoo.layers.get("gru").__name__
    'GRU'
    """
    return layer_class(cells.get(name))


def all_layers():
    """The layer class of every registered cell, by layer name, in the zoo's order."""
    return {layer_name(cell): layer_class(cell) for cell in cells.registry.classes()}


def _cell_doc(cell_class):
    """The cell's docstring after its summary line, dedented."""
    text = inspect.getdoc(cell_class) or ""
    return "\n".join(text.splitlines()[1:]).strip()


def _signature(cell_class):
    """`(self, units, <Keras's arguments, in its order>, *, <the others>, **kwargs)`, as the
    layer takes them (`RecurrentLayer.__init__` itself only says `**kwargs`)."""
    keyword = cells.base.cell_arguments(cell_class)

    def add(function, skip):
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name in skip or parameter.kind in (
                parameter.VAR_KEYWORD,
                parameter.VAR_POSITIONAL,
            ):
                continue
            keyword.setdefault(parameter.name, parameter.replace(kind=parameter.KEYWORD_ONLY))

    add(RecurrentLayer.__init__, ("self", "units"))
    add(keras.layers.RNN.__init__, ("self", "cell"))
    # The base layer's argument that Keras's LSTM, GRU and SimpleRNN name in their own
    # signatures, in their place: after the other regularizers.
    keyword = _insert_after(
        keyword,
        "bias_regularizer",
        inspect.Parameter("activity_regularizer", inspect.Parameter.KEYWORD_ONLY, default=None),
    )
    keyword = cells.base.keras_order(keyword, KERAS_LAYERS)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [
            inspect.Parameter("self", positional),
            inspect.Parameter("units", positional),
            *keyword.values(),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    )


def _insert_after(parameters, name, parameter):
    """`parameters` (name -> Parameter) with `parameter` after `name`, or last without it."""
    items = list(parameters.items())
    at = list(parameters).index(name) + 1 if name in parameters else len(items)
    return dict([*items[:at], (parameter.name, parameter), *items[at:]])


def _init(signature):
    """An `__init__` that shows `signature` and passes everything to `RecurrentLayer`'s,
    positional arguments after `units` named in Keras's order (`LSTM(8, "relu")`)."""

    def __init__(self, units, *args, **kwargs):
        if args:
            kwargs = cells.base.positional_as_keywords(type(self), args, kwargs)
        RecurrentLayer.__init__(self, units, **kwargs)

    __init__.__signature__ = signature
    return __init__
