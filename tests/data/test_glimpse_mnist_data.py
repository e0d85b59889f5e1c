"""Translated and cluttered MNIST, made from tiny hand-built digits (no MNIST needed)."""

import numpy as np
import pytest

from rnnzoo.data import DataError
from rnnzoo.data.glimpse_mnist import CHUNK, DATASETS, check_dataset, make_images


def random_digits(count, seed=0):
    """uint8 'digits' with no zero pixel, so every pixel of one can be found again."""
    return np.random.default_rng(seed).integers(1, 256, (count, 28, 28), dtype=np.uint8)


def constant_digits(count):
    """Digit n is a 28 x 28 block of the constant value n + 1."""
    return np.broadcast_to(
        np.arange(1, count + 1, dtype=np.uint8)[:, None, None], (count, 28, 28)
    ).copy()


def locate(canvas, digit):
    """The (top, left) of every place where `digit` appears exactly in `canvas`."""
    windows = np.lib.stride_tricks.sliding_window_view(canvas, digit.shape)
    return [tuple(int(i) for i in place) for place in np.argwhere((windows == digit).all((-2, -1)))]


def test_mnist_is_the_images_unchanged():
    digits = random_digits(3)
    same = make_images("mnist", digits, size=999, seed=5)
    assert same.shape == (3, 28, 28) and same.dtype == np.uint8
    np.testing.assert_array_equal(same, digits)


@pytest.mark.parametrize("name", ["translated", "cluttered"])
@pytest.mark.parametrize("size", [28, 60, 100])
def test_shapes_and_dtype(name, size):
    made = make_images(name, random_digits(5), size=size)
    assert made.shape == (5, size, size) and made.dtype == np.uint8


@pytest.mark.parametrize("name", ["translated", "cluttered"])
def test_a_seed_gives_identical_bytes_and_another_seed_other_bytes(name):
    digits = random_digits(8)
    first = make_images(name, digits, size=60, seed=3)
    again = make_images(name, digits.copy(), size=60, seed=3)
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != make_images(name, digits, size=60, seed=4).tobytes()


def test_a_translated_digit_lies_intact_on_a_blank_canvas_at_varied_positions():
    digits = random_digits(40)
    made = make_images("translated", digits, size=60, seed=0)
    places = []
    for canvas, digit in zip(made, digits):
        found = locate(canvas, digit)
        assert len(found) == 1
        top, left = found[0]
        # Nothing but the digit: the rest of the canvas is 0.
        rest = canvas.copy()
        rest[top : top + 28, left : left + 28] = 0
        assert not rest.any()
        places.append((top, left))
    tops, lefts = np.array(places).T
    # Uniform over 0..32 on both axes: 40 draws spread out and reach both halves.
    assert len(set(places)) > 30
    assert tops.min() < 16 < tops.max() and lefts.min() < 16 < lefts.max()


def test_a_canvas_of_28_leaves_the_digit_where_it_is():
    digits = random_digits(4)
    np.testing.assert_array_equal(make_images("translated", digits, size=28), digits)


def test_positions_do_not_depend_on_the_images_after():
    digits = random_digits(CHUNK + 5)
    whole = make_images("translated", digits, size=40, seed=1)
    np.testing.assert_array_equal(make_images("translated", digits[:3], size=40, seed=1), whole[:3])
    np.testing.assert_array_equal(
        make_images("translated", digits[: CHUNK + 2], size=40, seed=1), whole[: CHUNK + 2]
    )


def test_clutter_pieces_come_only_from_other_digits():
    digits = constant_digits(6)  # digit n is all n + 1: a piece's value names its digit
    translated = make_images("translated", digits, size=60, seed=0)
    made = make_images("cluttered", digits, size=60, pieces=5, piece_size=8, seed=0)
    cut_from = set()
    for index, (canvas, alone) in enumerate(zip(made, translated)):
        own = index + 1
        background = alone == 0
        # Off the digit's own 28 x 28 block, only other digits' values appear ...
        others = set(np.unique(canvas[background]).tolist()) - {0}
        assert others and own not in others and others <= set(range(1, 7))
        # ... at most 5 pieces of 8 x 8 of them, and the block keeps at least its own value.
        assert np.count_nonzero(canvas[background]) <= 5 * 64
        assert (canvas[~background] >= own).all()
        cut_from |= others
    assert cut_from == set(range(1, 7))  # every digit serves as clutter somewhere


def test_cluttered_is_translated_with_the_pieces_maxed_in():
    digits = random_digits(10)
    translated = make_images("translated", digits, size=60, seed=2)
    cluttered = make_images("cluttered", digits, size=60, pieces=4, piece_size=8, seed=2)
    assert (cluttered >= translated).all()
    assert (cluttered != translated).any()
    extra = cluttered != translated
    # The clutter covers at most 4 pieces of 8 x 8 per image.
    assert (extra.sum(axis=(1, 2)) <= 4 * 64).all()
    np.testing.assert_array_equal(
        make_images("cluttered", digits, size=60, pieces=0, seed=2), translated
    )


def test_clutter_pieces_are_crops_of_the_source_digits():
    # A random digit with no zero pixel: a 6 x 6 piece of it matches one crop of it only.
    digits = random_digits(2)
    digits[0] = 0
    made = make_images("cluttered", digits, size=40, pieces=1, piece_size=6, seed=7)
    canvas = made[0]  # the blank digit, cluttered by one 6 x 6 crop of the ramp digit
    ys, xs = np.nonzero(canvas)
    piece = canvas[ys.min() : ys.min() + 6, xs.min() : xs.min() + 6]
    assert len(locate(digits[1], piece)) == 1
    assert np.count_nonzero(canvas) == 36


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("svhn", 60, 4, 8), "unknown glimpse dataset 'svhn'; expected one of: mnist, translated"),
        (("translated", 27, 4, 8), "size >= 28"),
        (("cluttered", 20, 4, 8), "size >= 28"),
        (("cluttered", 60, -1, 8), "pieces must be >= 0"),
        (("cluttered", 60, 4, 0), "piece_size must be between 1 and 28"),
        (("cluttered", 60, 4, 29), "piece_size must be between 1 and 28"),
        (("cluttered", 60.0, 4, 8), "size must be an integer"),
        (("cluttered", 60, True, 8), "pieces must be an integer"),
    ],
)
def test_bad_arguments_are_one_line_value_errors_naming_the_problem(arguments, message):
    with pytest.raises(ValueError, match=message) as caught:
        check_dataset(*arguments)
    assert isinstance(caught.value, DataError) and "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=message):
        make_images(
            arguments[0],
            random_digits(2),
            size=arguments[1],
            pieces=arguments[2],
            piece_size=arguments[3],
        )


def test_the_largest_piece_and_any_size_for_plain_mnist_are_accepted():
    check_dataset("cluttered", 28, 1, 28)
    check_dataset("mnist", 10, 4, 8)  # size is ignored for plain MNIST
    assert make_images("cluttered", random_digits(3), size=28, pieces=2, piece_size=28).shape == (
        3,
        28,
        28,
    )
    assert DATASETS == ("mnist", "translated", "cluttered")


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"uint8 MNIST images of shape \(N, 28, 28\)"):
        make_images("translated", np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"received dtype uint8 and shape \(2, 32, 32\)"):
        make_images("translated", np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="at least 2 images"):
        make_images("cluttered", random_digits(1))
    assert make_images("cluttered", random_digits(1), pieces=0).shape == (1, 60, 60)
    assert make_images("cluttered", random_digits(0)).shape == (0, 60, 60)
