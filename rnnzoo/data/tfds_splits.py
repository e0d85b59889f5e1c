"""Whole splits of a tensorflow-datasets dataset as numpy arrays, or one clear error.

`read_splits("mnist", ("train", "test"))` prepares the dataset where needed
(downloading it into `data_dir` / `TFDS_DATA_DIR` first, where the network
allows) and returns each split's `(inputs, labels)` in one batch. Whatever
tensorflow-datasets raises when it can't (no network, a missing optional
dependency, a damaged folder, ...) becomes a `DatasetUnavailable` whose
message names the dataset and the first line of the reason.
"""

import contextlib
import io
import logging
import os

from rnnzoo.data.errors import DataError


class DatasetUnavailable(DataError):
    """tensorflow-datasets could not provide the dataset (not prepared and not downloadable)."""


def read_splits(name, splits, data_dir=None):
    """`{split: (inputs, labels)}` of tfds dataset `name`, as numpy arrays (`as_supervised`).

    Args:
        name: The tensorflow-datasets name ("mnist", "imdb_reviews", ...).
        splits: Split names to read.
        data_dir: Where the dataset is (or is to be) prepared; None: `TFDS_DATA_DIR`
            as it is now (tensorflow-datasets itself reads it once, at import),
            else tensorflow-datasets' own default.
    """
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # tfds warns about every empty folder it probes
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
                builder.download_and_prepare()
        return {
            split: tuple(
                tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
            )
            for split in splits
        }
    except Exception as error:  # tfds raises many kinds when it can't download
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else ""
        raise DatasetUnavailable(
            f"tensorflow-datasets could not provide {name} ({type(error).__name__}"
            + (f": {reason}" if reason else "")
            + ")"
        ) from None
    finally:
        absl_logger.setLevel(level)
