"""rnnzoo cells: one time step of each recurrent network, for `keras.layers.RNN`.

A cell class registers itself by declaring its `names` (see
`rnnzoo.cells.base`); `names()` lists them in the order the modules below
declare them, the zoo's order.

>>> import keras, rnnzoo
>>> layer = keras.layers.RNN(rnnzoo.cells.get("peephole")(8))
"""

# ruff: noqa: I001  (the import order is the zoo's order of names)
from rnnzoo.cells.base import RecurrentCell
from rnnzoo.cells.vanilla import IRNNCell, VanillaRNNCell
from rnnzoo.cells.lstm import (
    LSTMCell,
    PeepholeLSTMCell,
    CoupledLSTMCell,
    NoInputGateLSTMCell,
    NoForgetGateLSTMCell,
    NoOutputGateLSTMCell,
    NoInputActivationLSTMCell,
    NoOutputActivationLSTMCell,
    CoupledPeepholeLSTMCell,
    FullGateRecurrenceLSTMCell,
)
from rnnzoo.cells.gru import GRUCell
from rnnzoo.cells.layernorm import LayerNormLSTMCell, LayerNormGRUCell, LayerNormRNNCell
from rnnzoo.cells.lstmp import LSTMPCell
from rnnzoo.cells.mgu import MGUCell
from rnnzoo.cells.mutated import MUT1Cell, MUT2Cell, MUT3Cell
from rnnzoo.cells.indrnn import IndRNNCell
from rnnzoo.cells.minimal import MinGRUCell, MinLSTMCell
from rnnzoo.cells import registry
from rnnzoo.cells.registry import get, names

__all__ = [
    "RecurrentCell",
    "VanillaRNNCell",
    "IRNNCell",
    "LSTMCell",
    "PeepholeLSTMCell",
    "CoupledLSTMCell",
    "NoInputGateLSTMCell",
    "NoForgetGateLSTMCell",
    "NoOutputGateLSTMCell",
    "NoInputActivationLSTMCell",
    "NoOutputActivationLSTMCell",
    "CoupledPeepholeLSTMCell",
    "FullGateRecurrenceLSTMCell",
    "GRUCell",
    "LayerNormLSTMCell",
    "LayerNormGRUCell",
    "LayerNormRNNCell",
    "LSTMPCell",
    "MGUCell",
    "MUT1Cell",
    "MUT2Cell",
    "MUT3Cell",
    "IndRNNCell",
    "MinGRUCell",
    "MinLSTMCell",
    "get",
    "names",
    "registry",
]


def __getattr__(name):
    raise registry.missing_attribute(__name__, name, lambda cell_class: cell_class.__name__)
