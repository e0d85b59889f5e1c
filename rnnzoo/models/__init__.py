"""rnnzoo models: builders of whole networks, and how to sample from them.

>>> import rnnzoo
>>> model = rnnzoo.models.build_char_lm(65, units=32, num_layers=1)
>>> ids = rnnzoo.models.generate(model, [0, 1, 2], 10, temperature=0.8, seed=0)
>>> ids.shape
(1, 10)
"""

from rnnzoo.models.charlm import (
    OneHot,
    StreamEvaluator,
    build_char_lm,
    recurrent_layers,
    reset_states,
)
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
