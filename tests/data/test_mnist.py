"""MNIST: raw IDX files (written here, byte by byte), tensorflow-datasets, the sequence views."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from rnnzoo.data import DataError
from rnnzoo.data.mnist import (
    FILES,
    as_sequences,
    load_mnist,
    pixel_permutation,
    read_idx,
    write_idx,
    write_mnist_dir,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
RAW_MNIST = SHARED / "data" / "mnist"
TFDS_DIR = SHARED / "tensorflow_datasets"


def tiny_mnist(rng, train=20, test=6):
    """Random uint8 'images' and digit labels of MNIST's shapes."""
    return (
        rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, train, dtype=np.uint8),
        rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, test, dtype=np.uint8),
    )


def test_idx_bytes_written_by_hand_are_read_as_their_array(tmp_path):
    # The format, spelled out: 0, 0, type 0x08, 3 dims; sizes as big-endian uint32; data.
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + array.tobytes()
    (tmp_path / "a.idx").write_bytes(data)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), array)
    write_idx(tmp_path / "b.gz", array)
    assert gzip.decompress((tmp_path / "b.gz").read_bytes()) == data


def test_a_folder_of_the_four_files_loads_as_written(tmp_path, rng):
    arrays = tiny_mnist(rng)
    write_mnist_dir(tmp_path, *arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        name + ".gz" for name in FILES.values()
    )
    loaded = load_mnist(tmp_path)
    for written, read in zip(arrays, loaded):
        assert read.dtype == np.uint8
        np.testing.assert_array_equal(read, written)


def test_missing_or_damaged_files_are_one_line_errors(tmp_path, rng):
    write_mnist_dir(tmp_path, *tiny_mnist(rng))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte.gz") as error:
        load_mnist(tmp_path)
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist(tmp_path / "nowhere")

    images = tmp_path / "train-images-idx3-ubyte.gz"
    whole = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(whole[:-5]))
    with pytest.raises(DataError, match="truncated or damaged"):
        read_idx(images)
    images.write_bytes(gzip.compress(b"\x1f\x8b not idx"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(images)
    images.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot be read"):
        read_idx(images)


def test_labels_must_match_the_images(tmp_path, rng):
    train_images, _, test_images, test_labels = tiny_mnist(rng)
    write_mnist_dir(tmp_path, train_images, np.zeros(19, np.uint8), test_images, test_labels)
    with pytest.raises(DataError, match="19,\\) labels for 20 images"):
        load_mnist(tmp_path)
    write_mnist_dir(tmp_path, train_images, np.full(20, 12, np.uint8), test_images, test_labels)
    with pytest.raises(DataError, match="label 12"):
        load_mnist(tmp_path)


def test_row_pixel_and_permuted_views(rng):
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    rows = as_sequences(images, "row")
    assert rows.shape == (3, 28, 28) and rows.dtype == np.float32
    np.testing.assert_allclose(rows * 255.0, images, atol=1e-4)
    pixels = as_sequences(images, "pixel")
    assert pixels.shape == (3, 784, 1)
    # Step t of the pixel view is pixel (t // 28, t % 28): raster order.
    assert pixels[1, 28 * 5 + 7, 0] == pytest.approx(images[1, 5, 7] / 255.0)
    permutation = pixel_permutation(seed=4)
    assert sorted(permutation.tolist()) == list(range(784))
    np.testing.assert_array_equal(permutation, pixel_permutation(seed=4))
    assert not np.array_equal(permutation, pixel_permutation(seed=5))
    permuted = as_sequences(images, "permuted-pixel", permutation)
    np.testing.assert_array_equal(permuted[:, :, 0], pixels[:, permutation, 0])
    with pytest.raises(DataError, match="permutation"):
        as_sequences(images, "permuted-pixel")
    with pytest.raises(DataError, match="unknown MNIST view"):
        as_sequences(images, "column")


@pytest.mark.skipif(
    not RAW_MNIST.is_dir() or not TFDS_DIR.is_dir(), reason="../shared MNIST is absent"
)
def test_the_shared_raw_files_and_tensorflow_datasets_hold_the_same_mnist(monkeypatch):
    raw = load_mnist(RAW_MNIST)
    assert [a.shape for a in raw] == [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    assert raw[1][:5].tolist() == [5, 0, 4, 1, 9]  # the famous first digits of the training set
    monkeypatch.setenv("TFDS_DATA_DIR", str(TFDS_DIR))  # honoured even after tfds was imported
    prepared = load_mnist()

    def fingerprints(images, labels):  # tfds stores the examples in another order
        return sorted(
            hashlib.md5(image.tobytes() + bytes([label])).digest()
            for image, label in zip(images, labels)
        )

    assert fingerprints(*raw[:2]) == fingerprints(*prepared[:2])
    assert fingerprints(*raw[2:]) == fingerprints(*prepared[2:])


def test_tensorflow_datasets_failure_is_one_line_error(tmp_path):
    # A data_dir that is a file: tensorflow-datasets fails before any download.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(DataError, match="tensorflow-datasets could not provide mnist") as error:
        load_mnist(data_dir=str(blocker))
    assert "--mnist-dir" in str(error.value) and "\n" not in str(error.value)
