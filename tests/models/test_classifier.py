"""The many-to-one builder: heads, masking of padded tokens, bidirectional layers, seeds, saving."""

import keras
import numpy as np
import pytest

import rnnzoo
from rnnzoo.models.classifier import build_sequence_classifier


def lstm_parameters(inputs, units):
    return 4 * (inputs * units + units * units + units)


@pytest.mark.parametrize("cell", rnnzoo.cells.names())
def test_every_cell_gives_one_prediction_per_sequence(cell, rng):
    model = build_sequence_classifier(
        input_features=2, num_classes=None, cell=cell, units=4, seed=0
    )
    outputs = model(rng.random((3, 7, 2), dtype=np.float32))
    assert tuple(outputs.shape) == (3, 1)
    assert model.get_layer("head").activation is keras.activations.linear
    recurrent = model.get_layer("rnn_1")
    assert isinstance(recurrent, rnnzoo.layers.get(cell)) and not recurrent.return_sequences


def test_parameter_count_of_a_two_layer_lstm_classifier_with_embedding():
    model = build_sequence_classifier(
        vocab_size=30, embedding_dim=5, num_classes=3, units=6, num_layers=2, dropout=0.1, seed=0
    )
    assert model.count_params() == 30 * 5 + lstm_parameters(5, 6) + lstm_parameters(6, 6) + (
        6 * 3 + 3
    )
    assert (
        model.get_layer("rnn_1").return_sequences and not model.get_layer("rnn_2").return_sequences
    )
    assert [layer.name for layer in model.layers if layer.name.startswith("dropout")] == [
        "dropout_1",
        "dropout_2",
    ]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "irnn"])
def test_padding_is_masked_so_padded_and_unpadded_sequences_agree(cell, bidirectional):
    model = build_sequence_classifier(
        vocab_size=12,
        embedding_dim=3,
        num_classes=2,
        cell=cell,
        units=5,
        num_layers=2,
        bidirectional=bidirectional,
        seed=1,
    )
    short = np.array([[3, 4, 5], [6, 7, 8]], np.int32)
    padded = np.concatenate([short, np.zeros((2, 4), np.int32)], axis=1)
    # Relative tolerances: the IRNN's N(0, 0.001^2) input weights make its outputs ~1e-6.
    np.testing.assert_allclose(model(padded), model(short), rtol=1e-5, atol=1e-12)
    # The padding really is there: the same ids where the zeros were change the prediction.
    repeated = np.concatenate([short, short[:, :1].repeat(4, axis=1)], axis=1)
    assert not np.allclose(model(repeated), model(short), rtol=1e-2, atol=0)


def test_bidirectional_reads_both_ways_with_independent_initial_weights(rng):
    model = build_sequence_classifier(
        input_features=2, num_classes=4, units=3, bidirectional=True, seed=2
    )
    wrapper = model.get_layer("rnn_1")
    assert isinstance(wrapper, keras.layers.Bidirectional)
    assert tuple(model(rng.random((2, 5, 2), dtype=np.float32)).shape) == (2, 4)
    assert wrapper.backward_layer.go_backwards and not wrapper.forward_layer.go_backwards
    forward, backward = wrapper.forward_layer.get_weights(), wrapper.backward_layer.get_weights()
    assert not np.allclose(forward[0], backward[0])
    assert model.get_layer("head").kernel.shape == (6, 4)  # [h_fwd ; h_bwd]


def test_the_seed_decides_every_initial_weight():
    def weights(seed):
        model = build_sequence_classifier(
            vocab_size=9, num_classes=2, cell="peephole", units=3, seed=seed
        )
        return model.get_weights()

    first, again, other = weights(7), weights(7), weights(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])


def test_saved_model_loads_with_equal_predictions(tmp_path, rng):
    model = build_sequence_classifier(
        vocab_size=15,
        embedding_dim=4,
        num_classes=3,
        cell="coupled",
        units=4,
        bidirectional=True,
        seed=3,
    )
    ids = rng.integers(1, 15, (2, 6)).astype(np.int32)
    ids[0, 4:] = 0
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded(ids), model(ids), rtol=1e-6, atol=1e-6)


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="exactly one of `input_features`"):
        build_sequence_classifier(num_classes=2)
    with pytest.raises(ValueError, match="exactly one of `input_features`"):
        build_sequence_classifier(input_features=2, vocab_size=10)
    with pytest.raises(ValueError, match="num_classes"):
        build_sequence_classifier(input_features=2, num_classes=1)
    with pytest.raises(ValueError, match="Unknown cell name 'elman'"):
        build_sequence_classifier(input_features=2, cell="elman")


def test_under_mixed_bfloat16_the_head_stays_float32(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")  # conftest restores the policy
    model = build_sequence_classifier(input_features=3, num_classes=4, units=8, seed=0)
    assert model.get_layer("rnn_1").compute_dtype == "bfloat16"
    assert model.get_layer("head").compute_dtype == "float32"
    outputs = model(rng.normal(size=(2, 5, 3)).astype("float32"))
    assert outputs.dtype == "float32" and outputs.shape == (2, 4)
    keras.config.set_dtype_policy("float32")
    exact = build_sequence_classifier(input_features=3, num_classes=4, units=8, seed=0)
    assert exact.get_layer("rnn_1").compute_dtype == "float32"
