r"""The many-to-one sequence model: read a whole sequence, then predict one thing.

    x_t = E[id_t]   (token ids; id 0 is padding, masked)   or   x_t = inputs_t (floats)
    h^1_t = cell_1(x_t, h^1_{t-1})                         num_layers stacked layers;
    ...                                                    dropout between them
    h^L_T = cell_L(h^{L-1}_t, h^L_{t-1}) at the last step  (the last layer keeps only h_T)
    y = h^L_T V + d                                        Dense(num_classes) logits, or
                                                           Dense(1) for regression

With `bidirectional`, each layer is `keras.layers.Bidirectional`: a forward
and a backward layer of the same cell, outputs concatenated, so the head sees
[h^fwd_T ; h^bwd_1]. With token ids, the embedding's mask (id 0) makes every
recurrent layer skip the padding: a padded sequence gives the same prediction
as the unpadded one.

Train a classifier with
`keras.losses.SparseCategoricalCrossentropy(from_logits=True)` on integer
labels, a regressor with mean squared error.

>>> model = build_sequence_classifier(input_features=2, num_classes=None, units=8)
>>> tuple(model(keras.ops.ones((3, 10, 2))).shape)
(3, 1)
"""

import keras

from rnnzoo import layers as rnn_layers
from rnnzoo.cells.base import check_rate
from rnnzoo.layers.replicas import GlobalBatchDropout
from rnnzoo.models.seeding import check_int, seed_stream, seeded_recurrent_layer


def build_sequence_classifier(
    *,
    input_features=None,
    vocab_size=None,
    embedding_dim=64,
    num_classes=None,
    cell="lstm",
    units=128,
    num_layers=1,
    bidirectional=False,
    dropout=0.0,
    recurrent_dropout=0.0,
    chrono_timescale=None,
    cell_args=None,
    seed=None,
    name="sequence_classifier",
):
    """Build a many-to-one model: a sequence in, logits (or one number) out.

    Give exactly one of `input_features` (float sequences) and `vocab_size`
    (token-id sequences).

    Args:
        input_features: Features per step of float inputs (batch, time, features).
        vocab_size: Number of token ids (0 is padding) of int inputs (batch, time);
            they go through a masking `Embedding`.
        embedding_dim: Size of the embedding (token inputs only).
        num_classes: Number of classes (>= 2): the head gives that many logits;
            None: a regression head with one linear output.
        cell: Any name `rnnzoo.cells.get` knows ("vanilla", "irnn", "lstm", ...).
        units: Hidden units of each recurrent layer (per direction).
        num_layers: Stacked recurrent layers.
        bidirectional: Wrap each recurrent layer in `keras.layers.Bidirectional`.
        dropout: Rate of the dropout after each recurrent layer (0: none): Keras's
            `Dropout` whose masks don't depend on a `tf.distribute` replica count
            (`rnnzoo.layers.replicas.GlobalBatchDropout`).
        recurrent_dropout: The cells' dropout of h_{t-1}, one mask per sequence.
        chrono_timescale: None, or the LSTM cells' chrono initialisation for
            dependencies up to this many steps (see `rnnzoo.cells.LSTMCell`).
        cell_args: None, or a dict of more arguments of each recurrent layer
            (e.g. `{"norm_epsilon": 1.0}` for "layernorm_lstm"); an initializer
            given here replaces the seeded default.
        seed: Seed of every initializer and dropout mask: equal seeds build
            equal models.
        name: The model's name.

    Returns:
        A functional `keras.Model` with layers "embedding" (token inputs),
        "rnn_1" ... "rnn_L", "dropout_1" ... (when dropout > 0) and "head".
    """
    layer_class = rnn_layers.get(cell)  # unknown names raise the registry's ValueError
    if (input_features is None) == (vocab_size is None):
        raise ValueError(
            "Expected exactly one of `input_features` (float sequences) and `vocab_size` "
            f"(token ids); received input_features={input_features!r}, vocab_size={vocab_size!r}."
        )
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, minimum=2)
    units = check_int("units", units)
    num_layers = check_int("num_layers", num_layers)
    dropout = check_rate("dropout", dropout)
    seeds = seed_stream(seed)

    if vocab_size is not None:
        inputs = keras.Input((None,), dtype="int32", name="ids")
        x = keras.layers.Embedding(
            check_int("vocab_size", vocab_size, minimum=2),
            check_int("embedding_dim", embedding_dim),
            embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=next(seeds)),
            mask_zero=True,
            name="embedding",
        )(inputs)
    else:
        inputs = keras.Input((None, check_int("input_features", input_features)), name="sequences")
        x = inputs
    for index in range(1, num_layers + 1):
        options = {
            **(cell_args or {}),
            "return_sequences": index < num_layers,
            "recurrent_dropout": recurrent_dropout,
        }
        if chrono_timescale is not None:
            options["chrono_timescale"] = chrono_timescale
        if bidirectional:
            # Each direction gets its own seeds (Keras would copy the forward layer's).
            # Bidirectional names its forward layer "forward_rnn_<index>".
            forward = seeded_recurrent_layer(
                layer_class, units, seeds, name=f"rnn_{index}", **options
            )
            backward = seeded_recurrent_layer(
                layer_class,
                units,
                seeds,
                go_backwards=True,
                name=f"backward_rnn_{index}",
                **options,
            )
            layer = keras.layers.Bidirectional(
                forward, backward_layer=backward, name=f"rnn_{index}"
            )
        else:
            layer = seeded_recurrent_layer(
                layer_class, units, seeds, name=f"rnn_{index}", **options
            )
        x = layer(x)
        if dropout > 0:
            x = GlobalBatchDropout(dropout, seed=next(seeds), name=f"dropout_{index}")(x)
    outputs = keras.layers.Dense(
        1 if num_classes is None else num_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        # Under a mixed policy the outputs stay in the weights' precision (float32).
        dtype=keras.config.dtype_policy().variable_dtype,
        name="head",
    )(x)
    return keras.Model(inputs, outputs, name=name)
