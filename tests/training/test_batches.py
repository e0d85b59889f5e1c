"""ShuffledBatches: a seeded new order each epoch, the same order again for any batch range."""

import numpy as np
import pytest

from rnnzoo.training.batches import ShuffledBatches
from rnnzoo.training.errors import RecipeError


def test_each_epoch_is_a_seeded_permutation_cut_into_whole_batches():
    inputs = np.arange(23)
    batches = ShuffledBatches(inputs, inputs * 10, batch_size=5, seed=3)
    assert batches.steps == 4  # 23 // 5: three examples sit out each epoch
    x, y = batches(epoch=0, start=0, stop=4)
    assert x.shape == (20,) and np.array_equal(y, x * 10)
    assert len(set(x.tolist())) == 20
    again = ShuffledBatches(inputs, inputs * 10, batch_size=5, seed=3)
    assert np.array_equal(again(0, 0, 4)[0], x)
    assert not np.array_equal(batches(1, 0, 4)[0], x)  # a new order next epoch
    assert not np.array_equal(ShuffledBatches(inputs, inputs, 5, seed=4)(0, 0, 4)[0], x)


def test_any_batch_range_is_the_matching_slice_of_the_epoch():
    inputs = np.arange(40).reshape(20, 2)
    batches = ShuffledBatches(inputs, np.arange(20), batch_size=4, seed=0)
    whole = batches(epoch=2, start=0, stop=5)[0]
    pieces = [batches(epoch=2, start=k, stop=k + 1)[0] for k in range(5)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    np.testing.assert_array_equal(batches(2, 3, 5)[0], whole[12:])


def test_fewer_examples_than_a_batch_is_a_recipe_error():
    with pytest.raises(
        RecipeError, match="3 examples, fewer than one batch of 4; lower --batch-size"
    ):
        ShuffledBatches(np.zeros(3), np.zeros(3), batch_size=4, seed=0)
