"""rnnzoo cells: one time step of each recurrent network, for `keras.layers.RNN`.

>>> import keras, rnnzoo
>>> layer = keras.layers.RNN(rnnzoo.cells.get("peephole")(8))
"""

from rnnzoo.cells.base import RecurrentCell
from rnnzoo.cells.gru import GRUCell
from rnnzoo.cells.lstm import CoupledLSTMCell, LSTMCell, PeepholeLSTMCell
from rnnzoo.cells.registry import get, names
from rnnzoo.cells.vanilla import IRNNCell, VanillaRNNCell

__all__ = [
    "RecurrentCell",
    "VanillaRNNCell",
    "IRNNCell",
    "LSTMCell",
    "PeepholeLSTMCell",
    "CoupledLSTMCell",
    "GRUCell",
    "get",
    "names",
]
