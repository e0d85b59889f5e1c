"""The char LM builder: structure for every cell, one-hot input, stateful training models
whose weights load into sampling models, seeded builds, argument errors, save/load."""

import keras
import numpy as np
import processes
import pytest

import rnnzoo
from rnnzoo.models import OneHot, build_char_lm, recurrent_layers, reset_states

VOCAB, UNITS = 7, 5


def ids(rng, batch=3, time=6):
    return rng.integers(0, VOCAB, size=(batch, time)).astype("int32")


@pytest.mark.parametrize("embedding_dim", [0, 4])
@pytest.mark.parametrize("cell", rnnzoo.cells.names())
def test_structure_and_shapes(cell, embedding_dim, rng):
    model = build_char_lm(
        VOCAB, cell=cell, units=UNITS, num_layers=2, embedding_dim=embedding_dim, dropout=0.25
    )
    names = [layer.name for layer in model.layers]
    first = "embedding" if embedding_dim else "one_hot"
    assert names == [first, "rnn_1", "dropout_1", "rnn_2", "dropout_2", "logits"]
    assert isinstance(model.layers[0], keras.layers.Embedding if embedding_dim else OneHot)
    layers = recurrent_layers(model)
    assert [layer.name for layer in layers] == ["rnn_1", "rnn_2"]
    assert all(isinstance(layer, rnnzoo.layers.get(cell)) for layer in layers)
    assert all(layer.return_sequences and not layer.stateful for layer in layers)
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.rate for layer in dropouts] == [0.25, 0.25]
    # The first cell reads embedding_dim features, or one per id with one-hot inputs.
    assert layers[0].cell.kernel.shape[0] == (embedding_dim or VOCAB)
    assert model.layers[-1].activation is keras.activations.linear  # logits
    assert tuple(model(ids(rng)).shape) == (3, 6, VOCAB)


def test_no_dropout_layers_without_dropout():
    model = build_char_lm(VOCAB, units=UNITS, num_layers=3)
    assert [layer.name for layer in model.layers] == [
        "embedding",
        "rnn_1",
        "rnn_2",
        "rnn_3",
        "logits",
    ]


def test_one_hot_layer_encodes_ids(rng):
    tokens = ids(rng)
    np.testing.assert_array_equal(OneHot(VOCAB)(tokens), np.eye(VOCAB, dtype="float32")[tokens])
    assert OneHot.from_config(OneHot(VOCAB).get_config()).depth == VOCAB


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stateful_model_has_fixed_batch_and_its_weights_load_for_sampling(cell, rng, tmp_path):
    train = build_char_lm(VOCAB, cell=cell, units=UNITS, stateful=True, batch_size=3, dropout=0.1)
    assert train.input_shape == (3, None)
    assert all(layer.stateful for layer in recurrent_layers(train))
    first, second = ids(rng), ids(rng)
    fresh = keras.ops.convert_to_numpy(train(first))
    carried = keras.ops.convert_to_numpy(train(second))
    reset_states(train)
    np.testing.assert_allclose(train(first), fresh, atol=1e-6)  # reset clears the carry
    reset_states(train)
    from_zero = keras.ops.convert_to_numpy(train(second))
    assert np.abs(carried - from_zero).max() > 1e-4  # the state did carry over

    # The same structure without a fixed batch: weights copy in memory or through a file.
    sample = build_char_lm(VOCAB, cell=cell, units=UNITS, dropout=0.1)
    assert sample.input_shape == (None, None)
    sample.set_weights(train.get_weights())
    np.testing.assert_allclose(sample(first), fresh, atol=1e-6)
    sample.set_weights([np.zeros_like(w) for w in sample.get_weights()])
    train.save_weights(tmp_path / "trained.weights.h5")
    sample.load_weights(tmp_path / "trained.weights.h5")
    np.testing.assert_allclose(sample(first[:1]), fresh[:1], atol=1e-6)  # any batch size


def test_seed_makes_the_build_repeatable():
    def weights(seed, cell="peephole"):
        model = build_char_lm(VOCAB, cell=cell, units=UNITS, seed=seed)
        return model.get_weights()

    same = zip(weights(3), weights(3))
    assert all(np.array_equal(a, b) for a, b in same)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(3), weights(4)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "transformer"}, "Unknown cell name 'transformer'"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"units": -1}, "units"),
        ({"num_layers": 0}, "num_layers"),
        ({"embedding_dim": -2}, "embedding_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"stateful": True}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    kwargs = {"vocab_size": VOCAB, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_char_lm(kwargs.pop("vocab_size"), **kwargs)


def test_saves_and_loads_in_a_fresh_process(rng, tmp_path):
    tokens = ids(rng)
    models = {
        "embedded_gru": (build_char_lm(VOCAB, cell="gru", units=UNITS, dropout=0.2), tokens),
        "one_hot_lstm": (build_char_lm(VOCAB, units=UNITS, embedding_dim=0), tokens),
    }
    processes.assert_loads_in_fresh_process(models, tmp_path)
