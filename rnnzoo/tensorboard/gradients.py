"""The training gradients, seen where the optimizer receives them.

Keras 3 callbacks never see gradients: `train_step` computes them and hands
them to `optimizer.apply_gradients` -> `optimizer.apply`, which clips them
(`clipnorm`, `global_clipnorm` or `clipvalue`) and updates the weights.
`GradientRecorder.install()` wraps that one `apply` method of the model's
optimizer (an instance attribute; the class is untouched) so that, inside the
compiled train step, on the steps it is due it stores into its own variables:

- the global gradient norm before clipping, ‖g‖ = sqrt(Σ_v ‖g_v‖²);
- the global norm after clipping: the norm of the update the optimizer
  applies, from its settings as Keras's `_clip_gradients` uses them (first
  match wins):
      clipnorm c:        sqrt(Σ_v (‖g_v‖ · c / max(‖g_v‖, c))²)  (each variable)
      global_clipnorm c: ‖g‖ · min(1, c / ‖g‖)
      clipvalue c:       ‖clip(g, -c, c)‖
      none:              ‖g‖
  (Keras measures a sparse gradient, e.g. an Embedding's, by its unmerged
  slices; so does this, for the scale, see `clipped_global_norm`);
- the norm of the gradients of each of the model's top-level layers;
- on the steps histograms are due, a copy of every gradient.

The variables belong to the recorder, not to the model or the optimizer, so
checkpoints and saved models are unchanged. `uninstall()` restores `apply`.
These are the gradients of the step's own batch as `train_step` computed them
(sparse gradients made dense), before loss-scale unscaling and gradient
accumulation. Under `tf.distribute`, an optimizer that sums the replicas'
gradients itself (`rnnzoo.training.optimizers`) offers `apply_summed`, the step
after the sum: the recorder wraps that instead of `apply`, so it records the
global batch's gradient (the same in every replica; each writes it, alike).
"""

import keras
import numpy as np
import tensorflow as tf


def became_due(previous, current, every):
    """True when a view that runs every `every` steps is due at a step in (previous, current].

    A view is due at step 1 and at every multiple of `every` (steps counted
    from 1); `every=0` turns it off. Several steps at once happen with
    `steps_per_execution > 1`.
    """
    return (
        every > 0
        and current > previous
        and (previous < 1 <= current or current // every > previous // every)
    )


def check_every(name, value):
    """`value` as an int, the steps between a view's writes (0: off); a ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"Expected `{name}` to be a number of training steps >= 0 (0 turns the view off), "
            f"received {name}={value!r}."
        )
    return int(value)


def training_step(model):
    """The optimizer's step count: the step every view writes at."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _due_tensor(step, every):
    return tf.logical_or(tf.equal(step, 1), tf.equal(step % every, 0))


def _sparse_values(gradient):
    """What Keras's clipping measures: an IndexedSlices' slice values, unmerged."""
    return gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient


def clipped_global_norm(optimizer, gradients):
    """The global norm of the gradients as `optimizer` applies them, after its clipping.

    Mirrors Keras's `_clip_gradients`, including how it measures sparse
    (IndexedSlices) gradients: by their slice values, with repeated indices
    not summed first. The returned norm is that of the update actually
    applied (repeated indices summed).

    Args:
        optimizer: A Keras optimizer (its `clipnorm`, `global_clipnorm` and
            `clipvalue` attributes are read).
        gradients: List of gradients (tensors or IndexedSlices).
    """
    dense = [_float32(tf.convert_to_tensor(g)) for g in gradients]
    norms = tf.stack([tf.norm(g) for g in dense])
    measured = tf.stack([tf.norm(_float32(_sparse_values(g))) for g in gradients])
    if optimizer.clipnorm and optimizer.clipnorm > 0:
        clip = float(optimizer.clipnorm)
        return _root_sum_square(norms * clip / tf.maximum(measured, clip))
    if optimizer.global_clipnorm and optimizer.global_clipnorm > 0:
        clip = float(optimizer.global_clipnorm)
        measured_global = _root_sum_square(measured)
        # Keras turns a non-finite norm into NaN rather than clipping it.
        scale = clip * tf.minimum(1.0 / measured_global, 1.0 / clip) + (
            measured_global - measured_global
        )
        return _root_sum_square(norms) * scale
    if optimizer.clipvalue and optimizer.clipvalue > 0:
        clip = float(optimizer.clipvalue)
        clipped = []
        for gradient in gradients:
            if isinstance(gradient, tf.IndexedSlices):
                gradient = tf.IndexedSlices(
                    tf.clip_by_value(gradient.values, -clip, clip),
                    gradient.indices,
                    gradient.dense_shape,
                )
            else:
                gradient = tf.clip_by_value(gradient, -clip, clip)
            clipped.append(tf.norm(_float32(tf.convert_to_tensor(gradient))))
        return _root_sum_square(tf.stack(clipped))
    return _root_sum_square(norms)


def _root_sum_square(values):
    return tf.sqrt(tf.reduce_sum(tf.square(values)))


def _float32(tensor):
    return tf.cast(tensor, tf.float32)


def layer_groups(model):
    """(names, index by variable id): each trainable variable's top-level layer of `model`.

    Variables of the model itself (not inside any of its layers) go to a group
    named after the model.
    """
    names, index = [], {}
    for layer in model.layers:
        variables = [v for v in layer.trainable_variables if id(v) not in index]
        if variables:
            for variable in variables:
                index[id(variable)] = len(names)
            names.append(layer.name)
    rest = [v for v in model.trainable_variables if id(v) not in index]
    if rest:
        for variable in rest:
            index[id(variable)] = len(names)
        names.append(model.name)
    return names, index


class GradientRecorder:
    """Records gradient norms (and, less often, the gradients) of a model's training steps.

    Args:
        model: A compiled, built `keras.Model` (as in `on_train_begin`).
        norms_every: Record norms at step 1 and every this many steps (0: never).
        values_every: Copy the gradients at step 1 and every this many steps
            (0: never).

    After a due step, `norms_step` holds its 1-based step number and
    `global_norm`, `clipped_global_norm`, `layer_norms` (ordered as
    `layer_names`) its norms; after a step due for values, `values_step` and
    `values[variable.path]` hold the gradients.
    """

    def __init__(self, model, norms_every=10, values_every=100):
        if model.optimizer is None:
            raise ValueError(
                f"Model {model.name!r} has no optimizer; compile it before recording gradients."
            )
        self.model = model
        self.optimizer = model.optimizer
        self.norms_every = int(norms_every)
        self.values_every = int(values_every)
        self.layer_names, self._group_of = layer_groups(model)
        self.variables = list(model.trainable_variables)
        self.norms_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.global_norm = tf.Variable(np.nan, dtype=tf.float32, trainable=False)
        self.clipped_global_norm = tf.Variable(np.nan, dtype=tf.float32, trainable=False)
        self.layer_norms = tf.Variable(
            np.full(len(self.layer_names), np.nan, np.float32), trainable=False
        )
        self.values_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.values = {}
        if self.values_every:
            self.values = {
                v.path: tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False)
                for v in self.variables
            }
        self._original_apply = None

    # --------------------------------------------------------------- install
    @property
    def method(self):
        """The optimizer method wrapped: `apply_summed` where there is one, else `apply`."""
        return "apply_summed" if hasattr(self.optimizer, "apply_summed") else "apply"

    def install(self):
        """Wrap the optimizer's `apply`; a train function built before must be rebuilt."""
        if self._original_apply is not None:
            return
        method = self.method
        installed = self.optimizer.__dict__.get(method)
        if installed is not None:
            previous = getattr(installed, "recorder", None)
            if previous is None:
                raise RuntimeError(
                    f"Optimizer {self.optimizer.name!r} already has an instance-level "
                    f"`{method}` that is not a GradientRecorder's; remove it first."
                )
            previous.uninstall()  # one recorder per optimizer: the newest wins
        self._original_apply = getattr(self.optimizer, method)
        recorder = self

        def apply(grads, trainable_variables=None):
            if trainable_variables is not None:
                recorder.record(list(grads), list(trainable_variables))
            return recorder._original_apply(grads, trainable_variables)

        apply.recorder = self
        object.__setattr__(self.optimizer, method, apply)

    def uninstall(self):
        """Give the optimizer its own `apply` back."""
        if self._original_apply is not None:
            self.optimizer.__dict__.pop(self.method, None)
            self._original_apply = None

    # ---------------------------------------------------------------- record
    def record(self, grads, variables):
        """In the train step: store what is due at this step (a no-op otherwise)."""
        pairs = [
            (g, v) for g, v in zip(grads, variables) if g is not None and id(v) in self._group_of
        ]
        if not pairs:
            return
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        step = tf.cast(keras.ops.convert_to_tensor(self.optimizer.iterations), tf.int64) + 1
        # The work sits inside tf.cond: on the other steps it costs one comparison.
        if self.norms_every:
            tf.cond(
                _due_tensor(step, self.norms_every),
                lambda: self._store_norms(step, grads, variables),
                lambda: tf.constant(False),
            )
        if self.values_every:
            tf.cond(
                _due_tensor(step, self.values_every),
                lambda: self._store_values(step, grads, variables),
                lambda: tf.constant(False),
            )

    def _store_norms(self, step, grads, variables):
        norms = tf.stack([tf.norm(_float32(tf.convert_to_tensor(g))) for g in grads])
        squares = tf.math.unsorted_segment_sum(
            tf.square(norms),
            tf.constant([self._group_of[id(v)] for v in variables]),
            num_segments=len(self.layer_names),
        )
        self.global_norm.assign(_root_sum_square(norms))
        self.clipped_global_norm.assign(clipped_global_norm(self.optimizer, grads))
        self.layer_norms.assign(tf.sqrt(squares))
        self.norms_step.assign(step)
        return tf.constant(True)

    def _store_values(self, step, grads, variables):
        for grad, variable in zip(grads, variables):
            if variable.path in self.values:
                self.values[variable.path].assign(_float32(tf.convert_to_tensor(grad)))
        self.values_step.assign(step)
        return tf.constant(True)

    # ------------------------------------------------------------------ read
    def read_norms(self):
        """(step, global, clipped global, {layer name: norm}) of the last recorded step."""
        layer_norms = self.layer_norms.numpy()
        return (
            int(self.norms_step.numpy()),
            float(self.global_norm.numpy()),
            float(self.clipped_global_norm.numpy()),
            dict(zip(self.layer_names, layer_norms.tolist())),
        )

    def read_values(self):
        """(step, {variable path: gradient array}) of the last step with copied gradients."""
        return int(self.values_step.numpy()), {path: v.numpy() for path, v in self.values.items()}
