"""Carried-state stream batching: consecutive batches continue each stream."""

import numpy as np
import pytest

from rnnzoo.data import DataError, TextStreams


def test_each_row_continues_its_stream_from_batch_to_batch():
    ids = np.arange(1000) % 97
    streams = TextStreams(ids, batch_size=4, seq_length=7)
    assert streams.stream_length == 999 // 4
    assert streams.steps == (999 // 4) // 7
    for b in range(4):
        start = b * streams.stream_length
        inputs = np.concatenate([streams.batch(k)[0][b] for k in range(streams.steps)])
        targets = np.concatenate([streams.batch(k)[1][b] for k in range(streams.steps)])
        expected = ids[start : start + streams.steps * 7]
        np.testing.assert_array_equal(inputs, expected)
        # targets are the next characters
        np.testing.assert_array_equal(targets, ids[start + 1 : start + 1 + streams.steps * 7])


def test_arrays_stack_batches_in_order_from_any_start():
    streams = TextStreams(np.arange(500), batch_size=3, seq_length=5)
    inputs, targets = streams.arrays(start=2, stop=6)
    assert inputs.shape == targets.shape == (4 * 3, 5)
    for k in range(2, 6):
        row = (k - 2) * 3
        np.testing.assert_array_equal(inputs[row : row + 3], streams.batch(k)[0])
        np.testing.assert_array_equal(targets[row : row + 3], streams.batch(k)[1])
    everything, _ = streams.arrays()
    assert everything.shape == (streams.steps * 3, 5)
    with pytest.raises(IndexError):
        streams.arrays(start=5, stop=streams.steps + 1)


def test_text_shorter_than_one_batch_of_streams_is_a_data_error():
    TextStreams(np.arange(4 * 8 + 1), batch_size=4, seq_length=8)  # exactly enough
    with pytest.raises(DataError, match=r"32 characters.*4 streams x 8 steps \+ 1 = 33"):
        TextStreams(np.arange(32), batch_size=4, seq_length=8, what="training text")


def test_evaluation_streams_shrink_the_batch_for_short_texts():
    streams = TextStreams.for_evaluation(np.arange(30), batch_size=64, seq_length=10)
    assert streams.batch_size == 2 and streams.steps == 1
    with pytest.raises(DataError):
        TextStreams.for_evaluation(np.arange(5), batch_size=64, seq_length=10)
