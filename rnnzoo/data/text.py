"""Text corpora for character-level models, and the vocabulary that maps characters to ids.

Three sources, each giving a train / validation / test split of plain text:

- `tiny_shakespeare()`: tensorflow-datasets' `tiny_shakespeare` with its own
  three splits (`TFDS_DATA_DIR` or `data_dir` says where it is prepared);
- `text_file(path, fractions)`: any UTF-8 text file, split by position (by
  default the first 90% train, the next 5% validation, the last 5% test;
  Karpathy et al.'s corpora are split 80 / 10 / 10), a leading byte-order mark
  dropped and CRLF or CR line ends made "\n" (War and Peace has both);
- `python_sources()`: the Python standard library's own `.py` files, the
  corpus every machine has (the lecture's "char-RNN writes C code" experiment,
  in Python).

`load_corpus(path=None)` picks one: the file if given, otherwise Tiny
Shakespeare, and where tensorflow-datasets can't get it, one printed line and
the Python sources.
"""

import contextlib
import dataclasses
import io
import json
import logging
import os
import sysconfig
from pathlib import Path

import numpy as np

from rnnzoo.data.errors import DataError

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)
# About the size of Tiny Shakespeare (1,115,394 characters).
PYTHON_SOURCES_CHARS = 1_100_000
VOCABULARY_FORMAT = "rnnzoo-vocabulary"


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A named text in three splits."""

    name: str
    train: str
    validation: str
    test: str

    def split(self, name):
        if name not in SPLITS:
            raise ValueError(f"Expected a split in {SPLITS}, received {name!r}.")
        return getattr(self, name)

    def describe(self):
        """One line: the name and each split's size in characters."""
        sizes = " / ".join(f"{len(self.split(s)):,}" for s in SPLITS)
        return f"{self.name}: {sizes} characters (train / validation / test)"


class Vocabulary:
    """The characters a model knows, id i <-> `chars[i]`.

    >>> vocabulary = Vocabulary.from_text("hello")
    >>> vocabulary.chars
    ['e', 'h', 'l', 'o']
    >>> vocabulary.decode(vocabulary.encode("hole"))
    'hole'
    """

    def __init__(self, chars):
        chars = list(chars)
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise DataError(
                f"A vocabulary is a non-empty list of single characters, received {chars!r:.80}."
            )
        if len(set(chars)) != len(chars):
            raise DataError("A vocabulary lists each character once; received duplicates.")
        self.chars = chars
        self.index = {char: i for i, char in enumerate(chars)}

    @classmethod
    def from_text(cls, *texts):
        """The sorted set of characters in `texts`."""
        return cls(sorted(set().union(*map(set, texts))))

    def __len__(self):
        return len(self.chars)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.chars == other.chars

    def unknown(self, text):
        """The characters of `text` not in the vocabulary, sorted."""
        return sorted(set(text) - self.index.keys())

    def encode(self, text, what="text"):
        """`text` as an int32 array of ids; characters outside the vocabulary are a DataError."""
        missing = self.unknown(text)
        if missing:
            raise DataError(
                f"the {what} has {len(missing)} character(s) outside the vocabulary: "
                f"{''.join(missing)!r:.60}; use only characters the model was trained on."
            )
        return np.fromiter((self.index[c] for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_json(self):
        return {"format": VOCABULARY_FORMAT, "chars": self.chars}

    @classmethod
    def from_json(cls, value, source="vocabulary"):
        if not isinstance(value, dict) or value.get("format") != VOCABULARY_FORMAT:
            raise DataError(
                f"{source} is not an rnnzoo vocabulary (expected format {VOCABULARY_FORMAT!r})."
            )
        return cls(value.get("chars", []))

    @classmethod
    def load(cls, path):
        try:
            value = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"vocabulary file {str(path)!r} does not exist.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"vocabulary file {str(path)!r} is unreadable: {error}.") from None
        return cls.from_json(value, source=repr(str(path)))


# ---------------------------------------------------------------------- sources
def read_text(path, flag="--data"):
    """The UTF-8 text in `path`; DataError if unusable, naming the command-line `flag` that
    gave the path.

    A leading byte-order mark (U+FEFF) is dropped and every CRLF or lone CR becomes "\n", so a
    file saved on Windows (War and Peace: a BOM and 62,014 CRLFs) gives the same characters,
    and the same line lengths, as its Unix copy.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{flag} file {str(path)!r} does not exist; pass a UTF-8 text file.")
    if not path.is_file():
        raise DataError(f"{flag} {str(path)!r} is not a file; pass a UTF-8 text file.")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{flag} file {str(path)!r} is empty; pass a file with text in it.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{flag} file {str(path)!r} is not UTF-8 text (byte {error.start}: "
            f"{data[error.start : error.start + 1]!r}); pass a text file, not a binary one."
        ) from None
    if "\x00" in text:
        raise DataError(
            f"{flag} file {str(path)!r} holds NUL bytes, so it looks binary; pass a text file."
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_fractions(fractions, what="split fractions"):
    """`fractions` (train, validation[, test]) as a (train, validation, test) tuple of floats;
    DataError unless train and validation lie in (0, 1) and leave a test split."""
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (2, 3) or (len(values) == 3 and abs(sum(values) - 1) > 1e-9):
        raise DataError(
            f"the {what} must be (train, validation) or (train, validation, test) numbers "
            f"summing to 1, received {fractions!r}."
        )
    train, validation = values[:2]
    if not (0 < train < 1 and 0 < validation < 1 and train + validation < 1):
        raise DataError(
            f"the {what} must each lie in (0, 1) and leave a test split (train + validation < 1), "
            f"received train {train:g} and validation {validation:g}; e.g. 0.8 and 0.1."
        )
    return train, validation, 1.0 - train - validation


def split_by_position(text, fractions=SPLIT_FRACTIONS):
    """Cut `text` into consecutive train / validation / test pieces of the given fractions
    (the test piece is what is left)."""
    fractions = check_fractions(fractions)
    first = int(len(text) * fractions[0])
    second = first + int(len(text) * fractions[1])
    return text[:first], text[first:second], text[second:]


def text_file(path, fractions=SPLIT_FRACTIONS):
    """A `Corpus` from a UTF-8 text file (see `read_text`), split by position: 90 / 5 / 5 unless
    `fractions` (train, validation[, test]) says otherwise."""
    fractions = check_fractions(fractions)
    return Corpus(str(path), *split_by_position(read_text(path), fractions))


class CorpusUnavailable(Exception):
    """tensorflow-datasets could not provide the corpus (no network, nothing prepared)."""


def tiny_shakespeare(data_dir=None):
    """Tiny Shakespeare from tensorflow-datasets, with its train / validation / test splits.

    `data_dir` defaults to `TFDS_DATA_DIR` (tensorflow-datasets' own rule).
    Raises `CorpusUnavailable` when the dataset is neither prepared there nor
    downloadable.
    """
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # tfds warns about every empty folder it probes
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder("tiny_shakespeare", data_dir=data_dir)
        if not builder.is_prepared():
            with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
                builder.download_and_prepare()
        texts = {}
        for split in SPLITS:
            (example,) = tfds.as_numpy(builder.as_dataset(split=split))
            texts[split] = example["text"].decode("utf-8")
    except Exception as error:  # tfds raises many kinds when it can't download
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorpusUnavailable(f"{type(error).__name__}: {reason[:200]}") from error
    finally:
        absl_logger.setLevel(level)
    return Corpus("tiny_shakespeare", texts["train"], texts["validation"], texts["test"])


def python_sources(max_chars=PYTHON_SOURCES_CHARS, root=None, fractions=SPLIT_FRACTIONS):
    """The standard library's ASCII `.py` files, in path order, up to `max_chars` characters.

    Test folders and third-party packages are left out; the text is split by
    position like any file (`fractions`, 90 / 5 / 5 by default).
    """
    fractions = check_fractions(fractions)
    root = Path(root or sysconfig.get_paths()["stdlib"])
    skipped = {"site-packages", "dist-packages", "test", "tests", "idlelib"}
    pieces, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if skipped & set(path.relative_to(root).parts):
            continue
        try:
            text = path.read_bytes().decode("ascii")
        except (OSError, UnicodeDecodeError):
            continue
        text = text.replace("\r\n", "\n")
        pieces.append(text)
        total += len(text)
        if total >= max_chars:
            break
    text = "\n\n".join(pieces)[:max_chars]
    if not text:
        raise DataError(
            f"found no Python sources under {str(root)!r} to fall back on; pass --data FILE."
        )
    return Corpus("python-stdlib", *split_by_position(text, fractions))


def load_corpus(path=None, data_dir=None, log=print, fractions=SPLIT_FRACTIONS):
    """The corpus a text recipe trains on: `path`'s text, else Tiny Shakespeare, else Python.

    When tensorflow-datasets can't provide Tiny Shakespeare, `log` gets one
    line saying so and the standard library's Python sources are used.
    `fractions` split a file (or the Python sources) by position; Tiny
    Shakespeare keeps tensorflow-datasets' own splits.
    """
    fractions = check_fractions(fractions)
    if path:
        return text_file(path, fractions)
    try:
        return tiny_shakespeare(data_dir or os.environ.get("TFDS_DATA_DIR") or None)
    except CorpusUnavailable as error:
        log(
            f"note: tensorflow-datasets could not provide tiny_shakespeare ({error}); "
            "training on the Python standard library's sources instead "
            "(set TFDS_DATA_DIR, or pass --data FILE)."
        )
    return python_sources(fractions=fractions)
