"""Optimizers by name, with the lecture's two kinds of gradient clipping, and step decay.

    clip_norm  > 0:  g <- g * min(1, clip_norm / ||g||)   over all gradients together
                     (the lecture's pseudocode; Keras's `global_clipnorm`)
    clip_value > 0:  g <- clip(g, -clip_value, clip_value) elementwise
                     (min-char-rnn's `np.clip(dparam, -5, 5)`; Keras's `clipvalue`)

Keras applies `clipvalue` before `global_clipnorm` when both are set.
"""

import keras

from rnnzoo.training.errors import RecipeError

OPTIMIZERS = {
    # Adam (Kingma & Ba 2015): the usual default.
    "adam": lambda lr, **clip: keras.optimizers.Adam(lr, **clip),
    # RMSProp with char-rnn's decay rate 0.95.
    "rmsprop": lambda lr, **clip: keras.optimizers.RMSprop(lr, rho=0.95, **clip),
    # Adagrad as min-char-rnn: accumulators start at 0, epsilon 1e-8.
    "adagrad": lambda lr, **clip: keras.optimizers.Adagrad(
        lr, initial_accumulator_value=0.0, epsilon=1e-8, **clip
    ),
}


def names():
    return list(OPTIMIZERS)


def make_optimizer(name, learning_rate, clip_norm=0.0, clip_value=0.0):
    """The optimizer called `name`, clipping by global norm and/or value (0 = off)."""
    if name not in OPTIMIZERS:
        raise RecipeError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}.")
    clip = {}
    if clip_norm > 0:
        clip["global_clipnorm"] = float(clip_norm)
    if clip_value > 0:
        clip["clipvalue"] = float(clip_value)
    return OPTIMIZERS[name](float(learning_rate), **clip)


def step_decay(learning_rate, decay, decay_after, epoch):
    """char-rnn's schedule: `decay_after` epochs at `learning_rate`, then x `decay` per epoch.

    Epoch e (counted from 0) runs at learning_rate * decay ** max(0, e - decay_after + 1).

    >>> [round(step_decay(0.002, 0.5, 2, epoch), 6) for epoch in range(4)]
    [0.002, 0.002, 0.001, 0.0005]
    """
    return learning_rate * decay ** max(0, epoch - decay_after + 1)
