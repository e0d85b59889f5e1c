"""rnnzoo models: builders of whole networks, and how to sample from them.

>>> import rnnzoo
>>> model = rnnzoo.models.build_char_lm(65, units=32, num_layers=1)
>>> ids = rnnzoo.models.generate(model, [0, 1, 2], 10, temperature=0.8, seed=0)
>>> ids.shape
(1, 10)
"""

import keras

from rnnzoo.models.charlm import (
    OneHot,
    StreamEvaluator,
    build_char_lm,
    recurrent_layers,
    reset_states,
)

# The recurrent attention model and the samplers are TensorFlow code. On TensorFlow they are
# imported here (which registers the model for `keras.saving.load_model`); on another backend
# on first use, so that the rest of rnnzoo runs there with no TensorFlow installed.
_ON_FIRST_USE = {
    "RecurrentAttentionModel": "rnnzoo.models.ram",
    "beam_search": "rnnzoo.models.sampling",
    "generate": "rnnzoo.models.sampling",
}
if keras.backend.backend() == "tensorflow":
    from rnnzoo.models.ram import RecurrentAttentionModel
    from rnnzoo.models.sampling import beam_search, generate

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


def __getattr__(name):
    if name in _ON_FIRST_USE:
        import importlib

        return getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module 'rnnzoo.models' has no attribute {name!r}")
