r"""MNIST made harder for glimpses: translated and cluttered digits (Mnih et al. 2014, sec. 4.1).

The recurrent attention model (RAM, arXiv 1406.6247) is tested on three sets
built from MNIST's 28 x 28 digits:

    "mnist":      the digits as they are (28 x 28)
    "translated": each digit at a uniformly random position, wholly inside,
                  on a blank size x size canvas (the paper: 60 x 60)
    "cluttered":  as "translated", plus `pieces` crops of piece_size x
                  piece_size from *other* random digits of the same array at
                  random positions ("8x8 subpatches from other random MNIST
                  digits": 4 pieces on 60 x 60, 8 on 100 x 100)

Overlaps are combined with the pixelwise maximum, so a cluttered image is its
translated image (same seed, same size) with the clutter pieces maxed in:

    cluttered = max(translated, piece_1, ..., piece_pieces)

Every draw comes from `np.random.default_rng([seed, chunk, stream])` for
chunks of `CHUNK` images, so the output is a pure function of the arguments.
A digit's position depends only on (seed, size, its index i), not on how many
images follow it; which other digit a clutter piece is cut from is drawn among
all N images, so it does depend on N. Pass different seeds for the training
and test splits (e.g. `seed` and `seed + 1`): the same seed gives both splits
the same positions.

>>> import numpy as np
>>> digits = np.zeros((2, 28, 28), dtype=np.uint8); digits[:, 10:18, 10:18] = 255
>>> make_images("translated", digits, size=40, seed=0).shape
(2, 40, 40)
>>> int(make_images("translated", digits, size=40, seed=0).sum()) == int(digits.sum())
True
"""

import numbers

import numpy as np

from rnnzoo.data.errors import DataError

DATASETS = ("mnist", "translated", "cluttered")
SIDE = 28
# Images placed per vectorised step; the random draws are made per chunk of this many images.
CHUNK = 1024
# The independent random streams of a chunk.
_POSITIONS, _CLUTTER = 0, 1


def check_dataset(name, size, pieces, piece_size):
    """Raise `DataError` (a ValueError) unless the arguments describe a dataset `make_images` makes.

    >>> check_dataset("cluttered", 60, 4, 8)
    >>> check_dataset("translated", 20, 4, 8)
    Traceback (most recent call last):
    ...
    rnnzoo.data.errors.DataError: translated MNIST needs size >= 28 (the digit must fit on \
the canvas), received size=20; pass size=60 as in the paper, or more.
    """
    if name not in DATASETS:
        raise DataError(
            f"unknown glimpse dataset {name!r}; expected one of: {', '.join(DATASETS)}."
        )
    for argument, value in (("size", size), ("pieces", pieces), ("piece_size", piece_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise DataError(
                f"{argument} must be an integer, received {value!r} ({type(value).__name__})."
            )
    if name != "mnist" and size < SIDE:
        raise DataError(
            f"{name} MNIST needs size >= {SIDE} (the digit must fit on the canvas), received "
            f"size={size}; pass size=60 as in the paper, or more."
        )
    if pieces < 0:
        raise DataError(
            f"pieces must be >= 0 (how many clutter pieces per image), received pieces={pieces}."
        )
    # piece_size <= 28 <= size: a piece always fits on the canvas too.
    if not 1 <= piece_size <= SIDE:
        raise DataError(
            f"piece_size must be between 1 and {SIDE} (a crop of a {SIDE} x {SIDE} digit), "
            f"received piece_size={piece_size}; the paper uses 8."
        )


def make_images(name, images, *, size=60, pieces=4, piece_size=8, seed=0):
    """The glimpse dataset `name` made from MNIST digits.

    Args:
        name: One of `DATASETS`.
        images: uint8 array (N, 28, 28), 0 = background (as `load_mnist`
            returns them).
        size: Side of the square canvas of "translated" and "cluttered"
            (ignored for "mnist").
        pieces: Clutter pieces per image ("cluttered" only).
        piece_size: Side of each clutter piece ("cluttered" only).
        seed: The random seed; use a different one for each split.

    Returns:
        uint8 (N, size, size); for "mnist", `images` itself (N, 28, 28).

    Raises:
        DataError (a ValueError): bad arguments (see `check_dataset`), images
            of another shape or dtype, or clutter asked of fewer than 2 images.
    """
    check_dataset(name, size, pieces, piece_size)
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE) or images.dtype != np.uint8:
        raise DataError(
            f"glimpse datasets are made from uint8 MNIST images of shape (N, {SIDE}, {SIDE}), "
            f"received dtype {images.dtype} and shape {images.shape}; pass the images "
            "`load_mnist` returns."
        )
    if name == "mnist":
        return images
    count = len(images)
    clutter = pieces if name == "cluttered" else 0
    if clutter and count == 1:
        raise DataError(
            f"cluttered MNIST cuts its clutter from other digits of the same array, so it needs "
            f"at least 2 images, received {count}; pass more images or pieces=0."
        )
    result = np.zeros((count, size, size), dtype=np.uint8)
    for chunk, start in enumerate(range(0, count, CHUNK)):
        stop = min(start + CHUNK, count)
        canvases = result[start:stop]
        # Draw a whole chunk's worth every time, so that image i's draws do not depend on N.
        positions = _rng(seed, chunk, _POSITIONS).integers(0, size - SIDE + 1, (2, CHUNK))
        top, left = positions[:, : stop - start]
        _paste_max(canvases, images[start:stop], top, left)
        rng = _rng(seed, chunk, _CLUTTER)
        for _ in range(clutter):
            # Another digit: i + 1 + U{0, ..., N - 2}, modulo N, is never i itself.
            offsets = rng.integers(0, count - 1, CHUNK)[: stop - start]
            sources = (np.arange(start, stop) + 1 + offsets) % count
            crop = rng.integers(0, SIDE - piece_size + 1, (2, CHUNK))[:, : stop - start]
            place = rng.integers(0, size - piece_size + 1, (2, CHUNK))[:, : stop - start]
            patches = _crop(images, sources, crop[0], crop[1], piece_size)
            _paste_max(canvases, patches, place[0], place[1])
    return result


def _rng(seed, chunk, stream):
    """The generator of one random stream of one chunk."""
    return np.random.default_rng([seed, chunk, stream])


def _window(top, left, side):
    """Row and column indices (n, side, 1) and (n, 1, side) of square windows at (top, left)."""
    steps = np.arange(side)
    rows = (np.asarray(top)[:, None] + steps)[:, :, None]
    columns = (np.asarray(left)[:, None] + steps)[:, None, :]
    return rows, columns


def _crop(images, indices, top, left, side):
    """images[indices[n], top[n]:top[n]+side, left[n]:left[n]+side] for every n: (n, side, side)."""
    rows, columns = _window(top, left, side)
    return images[np.asarray(indices)[:, None, None], rows, columns]


def _paste_max(canvases, patches, top, left):
    """canvases[n, top[n]:..., left[n]:...] = max(that region, patches[n]), in place, for all n."""
    rows, columns = _window(top, left, patches.shape[1])
    which = np.arange(len(canvases))[:, None, None]
    canvases[which, rows, columns] = np.maximum(canvases[which, rows, columns], patches)
