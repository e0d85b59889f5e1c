r"""MNIST as images, and the sequence views of Le, Jaitly & Hinton (2015).

Two sources, one result (`load_mnist`): uint8 images (N, 28, 28) and uint8
labels (N,), 60,000 for training and 10,000 for test.

- `mnist_dir`: a folder with LeCun's four raw IDX files
  (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
  `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`; gzipped or not);
- otherwise tensorflow-datasets' `mnist`, prepared in `data_dir` or
  `TFDS_DATA_DIR` (downloaded there first where the network allows).

An IDX file is a big-endian header, then the array in C order:

    bytes 0-1: 0, 0     byte 2: element type (0x08 = unsigned byte)
    byte 3: number of dimensions d      then d uint32 sizes, then the data

The sequence views turn an image into a sequence a recurrent net reads one
step at a time, scaled to [0, 1]:

    "row":            28 steps of 28 pixels (one image row per step)
    "pixel":          784 steps of 1 pixel, in raster order
    "permuted-pixel": 784 steps of 1 pixel, in a fixed random order (the
                      same permutation for every image, drawn from a seed)
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from rnnzoo.data.errors import DataError
from rnnzoo.data.tfds_splits import DatasetUnavailable, read_splits

SIDE = 28
PIXELS = SIDE * SIDE
NUM_CLASSES = 10
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
VIEWS = ("row", "pixel", "permuted-pixel")
_UNSIGNED_BYTE = 0x08


# ------------------------------------------------------------------------ IDX files
def read_idx(path):
    """The uint8 array in IDX file `path` (gzipped when its name ends in .gz)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except FileNotFoundError:
        raise DataError(f"IDX file {str(path)!r} does not exist.") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        # A damaged .gz fails in zlib (a bad block), in gzip (a bad header or checksum) or ends
        # early (EOFError), depending on where it is damaged.
        raise DataError(
            f"IDX file {str(path)!r} cannot be read ({error}); it is damaged: download it again."
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{str(path)!r} is not an IDX file (it should start with two zero bytes, a type byte "
            "and a dimension count); pass LeCun's original MNIST files."
        )
    element_type, ndim = data[2], data[3]
    if element_type != _UNSIGNED_BYTE:
        raise DataError(
            f"IDX file {str(path)!r} holds element type 0x{element_type:02x}; MNIST's files hold "
            "unsigned bytes (0x08)."
        )
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"IDX file {str(path)!r} has a truncated header ({len(data)} bytes).")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(
            f"IDX file {str(path)!r} declares shape {shape} ({expected:,} bytes of data) but holds "
            f"{len(data) - header:,}; the file is truncated or damaged: download it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzipped when `path` ends in .gz).

    `read_idx` reads it back.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, _UNSIGNED_BYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def write_mnist_dir(mnist_dir, train_images, train_labels, test_images, test_labels):
    """Write the four arrays as MNIST's four IDX .gz files in `mnist_dir` (a subset, a test set)."""
    folder = Path(mnist_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(FILES.values(), (train_images, train_labels, test_images, test_labels)):
        write_idx(folder / f"{name}.gz", array)
    return folder


def _idx_path(folder, name):
    """`folder/name.gz`, else `folder/name`, else None."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def read_mnist_dir(mnist_dir):
    """The four arrays from the raw IDX files in `mnist_dir` (see `load_mnist`)."""
    folder = Path(mnist_dir)
    if not folder.is_dir():
        raise DataError(
            f"--mnist-dir {str(folder)!r} is not a folder; pass the folder holding "
            f"{', '.join(name + '.gz' for name in FILES.values())}."
        )
    paths = {key: _idx_path(folder, name) for key, name in FILES.items()}
    missing = [FILES[key] + ".gz" for key, path in paths.items() if path is None]
    if missing:
        raise DataError(
            f"--mnist-dir {str(folder)!r} lacks {', '.join(missing)}; put all four MNIST IDX files "
            "there (from http://yann.lecun.com/exdb/mnist/), or leave --mnist-dir empty to use "
            "tensorflow-datasets."
        )
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            raise DataError(
                f"{str(paths[split + '_images'])!r} holds an array of shape {images.shape}; MNIST "
                f"images are (N, {SIDE}, {SIDE})."
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{str(paths[split + '_labels'])!r} holds {labels.shape} labels for {len(images)} "
                "images; the two files of a split must match."
            )
        if labels.size and labels.max() >= NUM_CLASSES:
            raise DataError(
                f"{str(paths[split + '_labels'])!r} holds label {int(labels.max())}; MNIST labels "
                f"are digits 0-{NUM_CLASSES - 1}."
            )
    return tuple(arrays[key] for key in FILES)


# ------------------------------------------------------------------ tensorflow-datasets
def read_tfds_mnist(data_dir=None):
    """The four arrays from tensorflow-datasets' `mnist` (`data_dir` or TFDS_DATA_DIR)."""
    try:
        splits = read_splits("mnist", ("train", "test"), data_dir)
    except DatasetUnavailable as error:
        raise DatasetUnavailable(
            f"{error}; set TFDS_DATA_DIR to a folder where it is prepared, or pass --mnist-dir "
            "with the four raw IDX .gz files."
        ) from None
    arrays = []
    for split in ("train", "test"):
        images, labels = splits[split]
        arrays += [images.reshape(-1, SIDE, SIDE).astype(np.uint8), labels.astype(np.uint8)]
    return tuple(arrays)


def load_mnist(mnist_dir=None, data_dir=None):
    """MNIST: `(train_images, train_labels, test_images, test_labels)`.

    Images are uint8 (N, 28, 28) with 0 = background, labels uint8 (N,). Both
    sources hold the same examples, but tensorflow-datasets stores them in
    another order (so a seeded split of the training set differs between them).

    Args:
        mnist_dir: Folder with the four raw IDX files; None reads
            tensorflow-datasets instead.
        data_dir: tensorflow-datasets' folder (default `TFDS_DATA_DIR`, then
            its own default).

    Raises:
        DataError: files missing or damaged, or tensorflow-datasets unable to
            provide the dataset; the message says which and what to do.
    """
    if mnist_dir:
        return read_mnist_dir(mnist_dir)
    return read_tfds_mnist(data_dir)


def hold_out(train_images, train_labels, count, seed):
    """Split MNIST's training set: `((images, labels) kept, (images, labels) held out)`.

    The `count` held-out examples (for validation) are drawn from `seed`.
    """
    if not 0 < count < len(train_images):
        raise DataError(
            f"cannot hold out {count} of {len(train_images)} training images for validation; "
            f"hold out between 1 and {len(train_images) - 1}."
        )
    order = np.random.default_rng(seed).permutation(len(train_images))
    held_out, kept = order[:count], order[count:]
    return (train_images[kept], train_labels[kept]), (
        train_images[held_out],
        train_labels[held_out],
    )


# ------------------------------------------------------------------------ views
def pixel_permutation(seed):
    """The fixed order of the 784 pixels of permuted-pixel MNIST, drawn from `seed`."""
    return np.random.default_rng(seed).permutation(PIXELS)


def as_sequences(images, view, permutation=None):
    """Images (N, 28, 28) uint8 -> float32 sequences in [0, 1] for a recurrent net.

    Args:
        images: uint8 array (N, 28, 28).
        view: "row" -> (N, 28, 28); "pixel" or "permuted-pixel" -> (N, 784, 1).
        permutation: For "permuted-pixel", the pixel order (`pixel_permutation`).
    """
    if view not in VIEWS:
        raise DataError(f"unknown MNIST view {view!r}; expected one of: {', '.join(VIEWS)}.")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(
            f"MNIST views take images of shape (N, {SIDE}, {SIDE}), received {images.shape}."
        )
    scaled = images.astype(np.float32) / 255.0
    if view == "row":
        return scaled
    pixels = scaled.reshape(len(images), PIXELS)
    if view == "permuted-pixel":
        if permutation is None or sorted(np.asarray(permutation).tolist()) != list(range(PIXELS)):
            raise DataError(
                "the permuted-pixel view needs a permutation of the 784 pixel positions."
            )
        pixels = pixels[:, permutation]
    return pixels[:, :, None]
