"""`RecurrentLayer`: a `keras.layers.RNN` built on one rnnzoo cell, with Keras's conventions.

Like `keras.layers.LSTM`, a layer takes the cell's arguments and the RNN's
arguments side by side (`rnnzoo.layers.LSTM(64, dropout=0.1,
return_sequences=True)`), its config is flat (the cell's arguments plus the
RNN's, no nested "cell"), and the cell's arguments read back as attributes
(`layer.units`, `layer.dropout`).

On the TensorFlow backend the layer runs its sequence loop through
`rnnzoo.layers.fast_loop` (same results as the plain cell in
`keras.layers.RNN`, faster); `fast=False` keeps Keras's own loop.
"""

import inspect

import keras

from rnnzoo.cells.base import RecurrentCell
from rnnzoo.layers import fast_loop, parallel_scan

# Arguments of `keras.layers.RNN` itself, which stay with the layer.
_RNN_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
)


def _cell_argument_names(cell_class):
    """Every keyword argument `cell_class.__init__` accepts, up its class chain."""
    names = set()
    for klass in cell_class.__mro__:
        if not issubclass(klass, RecurrentCell):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        names.update(
            name
            for name, parameter in parameters.items()
            if name not in ("self", "units") and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        )
    return frozenset(names)


class RecurrentLayer(keras.layers.RNN):
    """A `keras.layers.RNN` whose cell is `cell_class`; subclasses set `cell_class`.

    Args:
        units: Positive int, size of the hidden state.
        fast: Run the sequence through `rnnzoo.layers.fast_loop` where it
            applies (TensorFlow backend, no mask, `unroll=False`, no
            recurrent dropout while training); Keras's loop otherwise.
            Default True.
        **kwargs: The cell's arguments (see the cell's docstring), the RNN's
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`) and the base layer's (`name`,
            `dtype`, `trainable`, `activity_regularizer`).
    """

    cell_class = None

    def __init__(self, units, fast=True, **kwargs):
        cell_names = _cell_argument_names(self.cell_class)
        cell_kwargs = {name: kwargs.pop(name) for name in list(kwargs) if name in cell_names}
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=f"{_snake_case(self.cell_class.__name__)}",
            **cell_kwargs,
        )
        super().__init__(cell, **kwargs)
        self.fast = fast
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def __getattr__(self, name):
        # Read the cell's arguments through the layer, as keras.layers.LSTM does.
        if (
            not name.startswith("_")
            and name != "cell"
            and name in _cell_argument_names(self.cell_class)
        ):
            return getattr(self.cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def units(self):
        return self.cell.units

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if initial_state is not None:
            self.cell.check_states(initial_state)
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # A cell with a parallel scan over time (minGRU, minLSTM) runs it instead of any loop.
        if parallel_scan.reason(self, mask) is None:
            return parallel_scan.run(self, sequences, initial_state, mask=mask, training=training)
        if self.fast and fast_loop.applies(self, mask, training):
            return fast_loop.run(self, sequences, initial_state, training=training)
        return super().inner_loop(sequences, initial_state, mask, training=training)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        config["fast"] = self.fast
        cell_config = self.cell.get_config()
        for key in ("name", "dtype", "trainable"):
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _snake_case(name):
    out = []
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)
