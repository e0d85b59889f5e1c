"""Random draws that do not depend on how a batch is split over `tf.distribute` replicas.

Under a strategy each replica runs the model on its own block of the global batch (replica
g of R takes rows g*b .. (g+1)*b - 1, b = B / R: `rnnzoo.training.distribute`) with its own
copy of every seed generator, the copies advancing together. A draw of the replica's own
shape would give every replica the same numbers (one dropout mask repeated R times over the
global batch) and a single device, drawing for all B rows at once, other numbers again. So
here every replica draws for the global batch and keeps its own rows:

    row r of the global batch gets the numbers a single device gives row r, for any R

at the cost of R times the random numbers (a dropout mask, a location's noise: small next
to the step). Outside a replica context (one device, evaluation) it is the plain draw.

>>> import keras
>>> layer = GlobalBatchDropout(0.5, seed=1)
>>> tuple(layer(keras.ops.ones((2, 3)), training=True).shape)
(2, 3)
"""

import keras
from keras import ops


def replica_position():
    """`(replica id, replicas)` of the replica context this code runs in: `(0, 1)` outside
    one (a single device, or a strategy's cross-replica context). The id may be a tensor."""
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def global_batch_draw(draw, shape):
    """`draw(shape)` as this replica's rows of the same draw for the global batch.

    Args:
        draw: `draw(shape) -> tensor`, a seeded `keras.random` draw.
        shape: This replica's shape, rows first.
    """
    replica, count = replica_position()
    if count == 1:
        return draw(shape)
    rows = shape[0]
    whole = draw((rows * count, *shape[1:]))
    return ops.slice(whole, (replica * rows, *([0] * (len(shape) - 1))), shape)


@keras.saving.register_keras_serializable(package="rnnzoo")
class GlobalBatchDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose mask does not depend on the replica count.

    On one device it is Keras's `Dropout` exactly (the same call). On R replicas each
    replica's mask is its rows of the mask one device would draw for the whole global batch
    (`global_batch_draw`), so a distributed run drops what a single-device run drops.
    Arguments and config are `keras.layers.Dropout`'s; with a `noise_shape` it is Keras's
    `Dropout` on any number of replicas.
    """

    def call(self, inputs, training=False):
        one_draw = self.noise_shape is not None or replica_position()[1] == 1
        if not training or self.rate == 0 or one_draw:
            return super().call(inputs, training=training)
        shape = tuple(ops.shape(inputs))

        def mask(draw_shape):
            ones = ops.ones(draw_shape, dtype=inputs.dtype)
            return keras.random.dropout(ones, self.rate, seed=self.seed_generator)

        return inputs * global_batch_draw(mask, shape)
