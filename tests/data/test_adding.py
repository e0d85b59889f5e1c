"""The adding problem: two markers, one per half, target = the sum of the marked values."""

import numpy as np
import pytest

from rnnzoo.data import DataError
from rnnzoo.data.adding import BASELINE_MSE, adding_problem, adding_splits


def test_each_sequence_marks_one_step_per_half_and_the_target_is_their_sum():
    inputs, targets = adding_problem(500, length=10, seed=3)
    assert inputs.shape == (500, 10, 2) and targets.shape == (500, 1)
    assert inputs.dtype == targets.dtype == np.float32
    values, markers = inputs[:, :, 0], inputs[:, :, 1]
    assert set(np.unique(markers).tolist()) == {0.0, 1.0}
    assert (markers[:, :5].sum(axis=1) == 1).all() and (markers[:, 5:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(axis=1), rtol=1e-6)
    assert values.min() >= 0.0 and values.max() < 1.0
    # Every position of each half gets marked: the markers are drawn uniformly.
    assert (markers.sum(axis=0) > 0).all()


def test_predicting_one_scores_the_known_baseline_of_one_sixth():
    _, targets = adding_problem(20_000, length=10, seed=0)
    assert pytest.approx(1 / 6) == BASELINE_MSE
    # Var(U + U') = 2/12; the standard error of the estimate is about 0.0014 here.
    assert np.mean((targets - 1.0) ** 2) == pytest.approx(BASELINE_MSE, abs=0.006)
    # ...and no constant does better than the mean, about 1.
    assert np.mean(targets) == pytest.approx(1.0, abs=0.01)


def test_the_seed_alone_decides_the_data():
    first, again, other = (adding_problem(8, 12, seed) for seed in (5, 5, 6))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_splits_are_distinct_and_a_bigger_training_set_leaves_evaluation_alone():
    small = adding_splits(length=10, train_size=20, eval_size=6, seed=1)
    big = adding_splits(length=10, train_size=50, eval_size=6, seed=1)
    assert [len(small[s][0]) for s in ("train", "validation", "test")] == [20, 6, 6]
    assert not np.array_equal(small["validation"][0], small["test"][0])
    assert not np.array_equal(small["train"][0][:6], small["validation"][0])
    for split in ("validation", "test"):
        for a, b in zip(small[split], big[split]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "num_examples, length, fragment",
    [(0, 10, "num_examples"), (4, 1, "length"), (4, 2.5, "length")],
)
def test_bad_sizes_are_data_errors(num_examples, length, fragment):
    with pytest.raises(DataError, match=fragment):
        adding_problem(num_examples, length, seed=0)
