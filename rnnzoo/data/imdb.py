"""IMDB movie reviews (Maas et al. 2011) from tensorflow-datasets' `imdb_reviews`.

25,000 training and 25,000 test reviews, each labelled "neg" or "pos".
tensorflow-datasets prepares the dataset in `data_dir` (or `TFDS_DATA_DIR`),
downloading it first where the network allows; where it can't, `load_imdb`
raises a one-line `DataError` saying what to do.

>>> train, test = load_imdb()  # doctest: +SKIP
>>> train.describe()           # doctest: +SKIP
'25,000 examples (neg 12,500, pos 12,500)'
"""

from rnnzoo.data.labelled_text import LabelledText
from rnnzoo.data.tfds_splits import DatasetUnavailable, read_splits

NAME = "imdb_reviews"
CLASS_NAMES = ("neg", "pos")  # tfds's ClassLabel names, by label id


def as_labelled_text(texts, labels, source):
    """tfds's `(text bytes, label id)` arrays as `LabelledText` with the labels "neg" / "pos"."""
    decoded = [text.decode("utf-8") if isinstance(text, bytes) else str(text) for text in texts]
    return LabelledText([CLASS_NAMES[int(label)] for label in labels], decoded, source)


def load_imdb(data_dir=None):
    """`(train, test)` `LabelledText` of imdb_reviews; a `DataError` when it can't be had."""
    try:
        splits = read_splits(NAME, ("train", "test"), data_dir)
    except DatasetUnavailable as error:
        raise DatasetUnavailable(
            f"{error}; prepare imdb_reviews with tensorflow-datasets on a machine with network and "
            "point TFDS_DATA_DIR at it, or save the reviews as `label<TAB>text` lines and use "
            "--task text --data FILE."
        ) from None
    return tuple(
        as_labelled_text(*splits[split], source=f"{NAME}/{split}") for split in ("train", "test")
    )
