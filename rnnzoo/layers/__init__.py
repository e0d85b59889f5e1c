"""rnnzoo layers: `keras.layers.RNN` subclasses, one per cell, and `GlimpseSensor`, the retina of
the recurrent attention model."""

from rnnzoo.layers.base import RecurrentLayer
from rnnzoo.layers.glimpse import GlimpseSensor
from rnnzoo.layers.recurrent import (
    GRU,
    IRNN,
    LSTM,
    CoupledLSTM,
    PeepholeLSTM,
    VanillaRNN,
    get,
)

__all__ = [
    "RecurrentLayer",
    "VanillaRNN",
    "IRNN",
    "LSTM",
    "PeepholeLSTM",
    "CoupledLSTM",
    "GRU",
    "get",
    "GlimpseSensor",
]
