"""rnnzoo models: builders of whole networks, and how to sample from them.

>>> import rnnzoo
>>> model = rnnzoo.models.build_char_lm(65, units=32, num_layers=1)
>>> ids = rnnzoo.models.generate(model, [0, 1, 2], 10, temperature=0.8, seed=0)
>>> ids.shape
(1, 10)
"""

import importlib

import keras

from rnnzoo.models.charlm import (
    OneHot,
    StreamEvaluator,
    build_char_lm,
    recurrent_layers,
    reset_states,
)

# The recurrent attention model and the samplers are TensorFlow code. On TensorFlow this module
# imports them (which registers the model for `keras.saving.load_model`); on another backend
# `__getattr__` imports them on first use, so that the rest of rnnzoo runs with no TensorFlow.
_TENSORFLOW_CODE = {
    "RecurrentAttentionModel": "rnnzoo.models.ram",
    "beam_search": "rnnzoo.models.sampling",
    "generate": "rnnzoo.models.sampling",
}


def __getattr__(name):
    if name in _TENSORFLOW_CODE:
        return getattr(importlib.import_module(_TENSORFLOW_CODE[name]), name)
    raise AttributeError(f"module 'rnnzoo.models' has no attribute {name!r}")


if keras.backend.backend() == "tensorflow":
    globals().update((name, __getattr__(name)) for name in _TENSORFLOW_CODE)

__all__ = [
    "OneHot",
    "RecurrentAttentionModel",
    "StreamEvaluator",
    "build_char_lm",
    "recurrent_layers",
    "reset_states",
    "generate",
    "beam_search",
]
