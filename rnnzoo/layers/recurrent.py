"""The zoo's layers: each a `keras.layers.RNN` over its rnnzoo cell.

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

import keras

from rnnzoo import cells
from rnnzoo.layers.base import RecurrentLayer


@keras.saving.register_keras_serializable(package="rnnzoo")
class VanillaRNN(RecurrentLayer):
    """Vanilla RNN layer: h_t = tanh(x_t W + h_{t-1} U + b). See `rnnzoo.cells.VanillaRNNCell`."""

    cell_class = cells.VanillaRNNCell


@keras.saving.register_keras_serializable(package="rnnzoo")
class IRNN(RecurrentLayer):
    """Identity-initialised ReLU RNN layer (Le et al. 2015). See `rnnzoo.cells.IRNNCell`."""

    cell_class = cells.IRNNCell


@keras.saving.register_keras_serializable(package="rnnzoo")
class LSTM(RecurrentLayer):
    """LSTM layer, weight-compatible with `keras.layers.LSTM`. See `rnnzoo.cells.LSTMCell`."""

    cell_class = cells.LSTMCell


@keras.saving.register_keras_serializable(package="rnnzoo")
class PeepholeLSTM(RecurrentLayer):
    """LSTM layer with peephole connections. See `rnnzoo.cells.PeepholeLSTMCell`."""

    cell_class = cells.PeepholeLSTMCell


@keras.saving.register_keras_serializable(package="rnnzoo")
class CoupledLSTM(RecurrentLayer):
    """LSTM layer with coupled input and forget gates. See `rnnzoo.cells.CoupledLSTMCell`."""

    cell_class = cells.CoupledLSTMCell


@keras.saving.register_keras_serializable(package="rnnzoo")
class GRU(RecurrentLayer):
    """GRU layer, weight-compatible with `keras.layers.GRU`. See `rnnzoo.cells.GRUCell`."""

    cell_class = cells.GRUCell


LAYERS = {
    "vanilla": VanillaRNN,
    "irnn": IRNN,
    "lstm": LSTM,
    "peephole": PeepholeLSTM,
    "coupled": CoupledLSTM,
    "gru": GRU,
}


def get(name):
    """Return the layer class for a cell name (one of `rnnzoo.cells.names()`).

    >>> import rnnzoo
    >>> rnnzoo.layers.get("gru").__name__
    'GRU'
    """
    return cells.registry.lookup(LAYERS, name, "cell name")
