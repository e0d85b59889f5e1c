r"""The character-level language model (Karpathy's char-rnn / min-char-rnn).

The network reads token ids and predicts, at every step, the logits of the
next token:

    x_t = E[id_t]                        embedding (or one-hot, embedding_dim=0)
    h^1_t = cell_1(x_t, h^1_{t-1})       num_layers stacked recurrent layers,
    ...                                  each followed by dropout when dropout > 0
    h^L_t = cell_L(h^{L-1}_t, h^L_{t-1})
    logits_t = h^L_t V + d               Dense(vocab_size), no softmax

Train it with `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`
on `(ids[:, :-1], ids[:, 1:])`. Sample from it with
`rnnzoo.models.generate` or `rnnzoo.models.beam_search`.

The layer structure and names do not depend on `stateful` or `batch_size`,
so the weights of a stateful training model (fixed batch of, say, 64) load
into a stateless batch-free model built for sampling:

>>> import rnnzoo
>>> train = rnnzoo.models.build_char_lm(65, units=32, stateful=True, batch_size=4)
>>> sample = rnnzoo.models.build_char_lm(65, units=32)
>>> sample.set_weights(train.get_weights())
"""

import keras
from keras import ops

from rnnzoo import layers as rnn_layers
from rnnzoo.cells.base import check_rate
from rnnzoo.layers.base import RecurrentLayer
from rnnzoo.layers.replicas import GlobalBatchDropout
from rnnzoo.models.seeding import check_int, seed_stream, seeded_recurrent_layer


@keras.saving.register_keras_serializable(package="rnnzoo")
class OneHot(keras.layers.Layer):
    """Token ids (batch, time) -> one-hot float vectors (batch, time, depth).

    The input encoding of min-char-rnn: the first layer's input weights then
    play the role of an embedding, one row per character.

    Args:
        depth: Positive int, the vocabulary size.
        **kwargs: Base layer arguments (`name`, `dtype`).
    """

    def __init__(self, depth, **kwargs):
        super().__init__(**kwargs)
        self.depth = check_int("depth", depth)

    def call(self, ids):
        return ops.one_hot(ops.cast(ids, "int32"), self.depth, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def build_char_lm(
    vocab_size,
    *,
    cell="lstm",
    units=256,
    num_layers=2,
    embedding_dim=64,
    dropout=0.0,
    cell_args=None,
    batch_size=None,
    stateful=False,
    seed=None,
):
    """Build the char-level language model: ids (batch, time) -> logits (batch, time, vocab).

    Args:
        vocab_size: Number of distinct tokens (input ids lie in [0, vocab_size)).
        cell: Any name `rnnzoo.cells.get` knows ("lstm", "gru", "peephole", ...).
        units: Size of each recurrent layer's hidden state.
        num_layers: Number of stacked recurrent layers.
        embedding_dim: Size of the learned embedding; 0 feeds one-hot vectors
            (min-char-rnn), with no embedding weights.
        dropout: Rate of the dropout after each recurrent layer (char-rnn
            style; `rnnzoo.layers.replicas.GlobalBatchDropout`, Keras's `Dropout`
            whose masks don't depend on a `tf.distribute` replica count); 0 adds
            no dropout layers.
        cell_args: None, or a dict of more arguments of each recurrent layer
            (e.g. `{"unit_forget_bias": False}`); an initializer given here
            replaces the seeded default.
        batch_size: Fixed batch size of the input; required with `stateful`.
        stateful: Carry the recurrent states from one batch to the next
            (truncated backprop through a long stream); zero them with
            `reset_states(model)`.
        seed: Seed of the weight initializers and of the dropout masks, so a
            seeded build is repeatable.

    Returns:
        A `keras.Sequential` named "char_lm" whose layers are named
        "embedding" (or "one_hot"), "rnn_1", "dropout_1", ..., "rnn_L",
        "dropout_L", "logits".
    """
    layer_class = rnn_layers.get(cell)  # unknown names raise the registry's ValueError
    vocab_size = check_int("vocab_size", vocab_size)
    units = check_int("units", units)
    num_layers = check_int("num_layers", num_layers)
    embedding_dim = check_int("embedding_dim", embedding_dim, minimum=0)
    dropout = check_rate("dropout", dropout)
    if stateful and batch_size is None:
        raise ValueError(
            "A stateful char LM needs a fixed batch: received stateful=True and "
            "batch_size=None; pass batch_size=<the training batch size>."
        )
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size)

    seeds = seed_stream(seed)
    stack = [keras.Input(batch_shape=(batch_size, None), dtype="int32", name="ids")]
    if embedding_dim:
        stack.append(
            keras.layers.Embedding(
                vocab_size,
                embedding_dim,
                # Keras's default embedding initializer, seeded.
                embeddings_initializer=keras.initializers.RandomUniform(
                    -0.05, 0.05, seed=next(seeds)
                ),
                name="embedding",
            )
        )
    else:
        stack.append(OneHot(vocab_size, name="one_hot"))
    for index in range(1, num_layers + 1):
        stack.append(
            seeded_recurrent_layer(
                layer_class,
                units,
                seeds,
                **(cell_args or {}),
                return_sequences=True,
                stateful=stateful,
                name=f"rnn_{index}",
            )
        )
        if dropout > 0:
            stack.append(GlobalBatchDropout(dropout, seed=next(seeds), name=f"dropout_{index}"))
    stack.append(
        keras.layers.Dense(
            vocab_size,
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            # Under a mixed policy the logits stay in the weights' precision (float32).
            dtype=keras.config.dtype_policy().variable_dtype,
            name="logits",
        )
    )
    return keras.Sequential(stack, name="char_lm")


def recurrent_layers(model):
    """The model's rnnzoo recurrent layers, in order (input to output)."""
    return [layer for layer in model.layers if isinstance(layer, RecurrentLayer)]


def reset_states(model):
    """Zero the carried states of every recurrent layer of a stateful model.

    (Keras 3 models have no `reset_states`; each `keras.layers.RNN` has `reset_state`.)
    """
    for layer in recurrent_layers(model):
        layer.reset_state()


class StreamEvaluator:
    """The mean loss of some weights over `rnnzoo.data.TextStreams`, read from zero states.

    `build(batch_size)` makes a compiled stateful model of the streams' batch size; one is
    kept per batch size, so evaluating never disturbs a training model's carried states.
    """

    def __init__(self, build):
        self.build = build
        self.models = {}

    def __call__(self, weights, streams):
        model = self.models.get(streams.batch_size)
        if model is None:
            model = self.models[streams.batch_size] = self.build(streams.batch_size)
        model.set_weights(weights)
        reset_states(model)
        inputs, targets = streams.arrays()
        return float(model.evaluate(inputs, targets, batch_size=streams.batch_size, verbose=0))
