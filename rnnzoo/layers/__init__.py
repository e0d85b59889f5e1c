"""rnnzoo layers: a `keras.layers.RNN` subclass per registered cell, and `GlimpseSensor`, the
retina of the recurrent attention model.

Each cell's layer is derived from the cell class (`rnnzoo.layers.recurrent`):
`rnnzoo.cells.LSTMCell` gives `rnnzoo.layers.LSTM`, `PeepholeLSTMCell` gives
`PeepholeLSTM`, and so on for every name in `rnnzoo.cells.names()`.
"""

import keras

from rnnzoo import cells
from rnnzoo.layers.base import LoopChoice, RecurrentLayer
from rnnzoo.layers.recurrent import all_layers, get, layer_class

globals().update(all_layers())
if keras.backend.backend() == "tensorflow":  # registered for load_model; elsewhere on first use
    from rnnzoo.layers.glimpse import GlimpseSensor

__all__ = ["RecurrentLayer", "LoopChoice", *all_layers(), "get", "layer_class", "GlimpseSensor"]


def __getattr__(name):
    if name == "GlimpseSensor":  # TensorFlow code: on another backend, imported on first use
        from rnnzoo.layers.glimpse import GlimpseSensor

        return GlimpseSensor
    # Layers of cells registered after this import (a user's own cells).
    for cell_class in cells.registry.classes():
        klass = layer_class(cell_class)
        if klass.__name__ == name:
            return klass
    raise cells.registry.missing_attribute(__name__, name, lambda c: layer_class(c).__name__)
