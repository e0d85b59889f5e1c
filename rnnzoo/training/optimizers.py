"""Optimizers by name, with the lecture's two kinds of gradient clipping, step decay and warm-up.

    clip_norm  > 0:  g <- g * min(1, clip_norm / ||g||)   over all gradients together
                     (the lecture's pseudocode; Keras's `global_clipnorm`)
    clip_value > 0:  g <- clip(g, -clip_value, clip_value) elementwise
                     (min-char-rnn's `np.clip(dparam, -5, 5)`; Keras's `clipvalue`)

Keras applies `clipvalue` before `global_clipnorm` when both are set.

Under `tf.distribute` the gradients of the replicas are summed first, then clipped: the
norm clipped is the global batch's, as on one device (see `SumsOverReplicas`).
"""

import keras
import tensorflow as tf

from rnnzoo.training.errors import RecipeError


def sum_over_replicas(gradients):
    """Each gradient summed over the replicas of the replica context this runs in (the
    gradients themselves on one device); None gradients stay None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return list(gradients)
    present = [gradient for gradient in gradients if gradient is not None]
    summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present) if present else [])
    return [None if gradient is None else next(summed) for gradient in gradients]


class SumsOverReplicas:
    """A Keras optimizer (mixed in before it) that sums the replicas' gradients, then clips.

    Keras 3.15's TensorFlow optimizer clips each replica's own gradient and sums the clipped
    gradients afterwards (`_backend_update_step`): `global_clipnorm` would bound a replica's
    share of the step, not the step. Here `apply` sums first, so clipping, the update and
    the weights are a single device's; `apply_summed` is the rest of the step (where
    `rnnzoo.tensorboard`'s `GradientRecorder` reads the global gradient).
    """

    def apply(self, grads, trainable_variables=None):
        return self.apply_summed(sum_over_replicas(grads), trainable_variables)

    def apply_summed(self, grads, trainable_variables=None):
        """Keras's `apply`, on gradients already summed over the replicas."""
        return super().apply(grads, trainable_variables)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)  # `apply` summed them


def _summing(optimizer_class):
    return type(
        optimizer_class.__name__,
        (SumsOverReplicas, optimizer_class),
        {"__module__": __name__, "__doc__": optimizer_class.__doc__},
    )


Adam = _summing(keras.optimizers.Adam)
RMSprop = _summing(keras.optimizers.RMSprop)
Adagrad = _summing(keras.optimizers.Adagrad)

OPTIMIZERS = {
    # Adam (Kingma & Ba 2015): the usual default.
    "adam": lambda lr, **clip: Adam(lr, **clip),
    # RMSProp with char-rnn's decay rate 0.95.
    "rmsprop": lambda lr, **clip: RMSprop(lr, rho=0.95, **clip),
    # Adagrad as min-char-rnn: accumulators start at 0, epsilon 1e-8.
    "adagrad": lambda lr, **clip: Adagrad(lr, initial_accumulator_value=0.0, epsilon=1e-8, **clip),
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


def warmed_up(learning_rate, warmup_steps, iteration):
    """A linear warm-up: optimizer step `iteration` (counted from 0) of the first
    `warmup_steps` runs at learning_rate * (iteration + 1) / warmup_steps, later steps at
    `learning_rate`.

    RMSProp's and Adam's first steps move every weight by a multiple of the learning rate
    whatever the size of its gradient (their averages of g^2 start at 0; RMSProp's first
    step with rho 0.95 is 4.5 learning rates). On War and Peace the first RMSProp step of
    1e-3 took a 512-unit vanilla RNN's orthogonal recurrent matrix from spectral norm 1 to
    1.6 (one layer) or 1.9 (the first of three): its tanh units saturate, the gradients to
    the recurrent layers vanish, and the network stays at the unigram loss for epochs. A
    warm-up keeps those first steps small. It does not make a too-high rate safe: on the Linux
    kernel a 2x512 vanilla RNN at 2e-3 with a 100-step warm-up saturated as soon as the ramp
    reached the full rate, and stayed above the unigram loss for three epochs (README).

    >>> [warmed_up(0.002, 4, iteration) for iteration in range(5)]
    [0.0005, 0.001, 0.0015, 0.002, 0.002]
    """
    if iteration >= warmup_steps:
        return learning_rate
    return learning_rate * (iteration + 1) / warmup_steps


class Schedule:
    """A recipe's learning rate: `lr`, times `lr_decay` each epoch after `lr_decay_after`
    epochs (`step_decay`), and over the run's first `lr_warmup_steps` optimizer steps a
    linear warm-up to it (`warmed_up`)."""

    def __init__(self, config):
        self.lr = config.lr
        self.decay = config.lr_decay
        self.decay_after = config.lr_decay_after
        self.warmup_steps = config.lr_warmup_steps

    def __call__(self, epoch, iteration):
        """The learning rate of optimizer step `iteration` (from 0), in `epoch` (from 0)."""
        rate = step_decay(self.lr, self.decay, self.decay_after, epoch)
        return warmed_up(rate, self.warmup_steps, iteration)
