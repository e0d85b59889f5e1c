r"""Labelled text for sequence classification: TSV/CSV files, splits, token vocabularies.

Files. Two layouts, one example per row, blank lines skipped:

- TSV: `label<TAB>text` on every line (the UCI SMS Spam Collection's layout);
  the text is everything after the first tab.
- CSV: a header row naming the columns, and the label and text in the
  columns named `label_column` and `text_column` (other columns ignored).

Any row that doesn't fit is a `DataError` naming its line number.

Vocabulary. `TokenVocabulary` maps tokens to ids, built on the training split
only, so validation and test words it never saw count as unknown:

    id 0: padding (masked: the recurrent layers skip it)
    id 1: unknown (a token not in the vocabulary, or rarer than min_count)
    id 2, 3, ...: the tokens, most frequent first (ties in sorted order)

A token is a character (`level="char"`) or a word or punctuation mark
(`level="word"`, the regular expression `\w+|[^\w\s]`), lowercased when
`lowercase`. Sequences are padded with 0 at the end to the longest sequence
of the batch, truncated to `max_length` tokens.

>>> vocabulary = TokenVocabulary.from_texts(["a cat", "a dog!"], level="word")
>>> vocabulary.tokens
['a', '!', 'cat', 'dog']
>>> vocabulary.encode_batch(["a dog", "the cat!"]).tolist()
[[2, 5, 0], [1, 4, 3]]
"""

import collections
import csv
import dataclasses
import io
import re
from pathlib import Path

import numpy as np

from rnnzoo.data.errors import DataError
from rnnzoo.data.text import read_text

FORMATS = ("auto", "tsv", "csv")
LEVELS = ("char", "word")
PAD, UNKNOWN = 0, 1
RESERVED = 2
VOCABULARY_FORMAT = "rnnzoo-token-vocabulary"
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclasses.dataclass(frozen=True)
class LabelledText:
    """Examples read from a file: `labels[i]` is the label of `texts[i]`."""

    labels: list
    texts: list
    source: str = ""

    def __len__(self):
        return len(self.texts)

    def subset(self, indices):
        return LabelledText(
            [self.labels[i] for i in indices], [self.texts[i] for i in indices], self.source
        )

    def classes(self):
        """The sorted distinct labels; a `DataError` unless there are at least two."""
        classes = sorted(set(self.labels))
        if len(classes) < 2:
            found = f"label {classes[0]!r}" if classes else "no labels"
            raise DataError(
                f"{self.source or 'the data'!r}: all {len(self)} examples have {found}; "
                "a classifier needs examples of at least two classes."
            )
        return classes

    def describe(self):
        counts = collections.Counter(self.labels)
        classes = ", ".join(f"{label} {count:,}" for label, count in sorted(counts.items()))
        return f"{len(self):,} examples ({classes})"


# ------------------------------------------------------------------------ reading
def read_labelled_text(path, text_format="auto", label_column="label", text_column="text"):
    """The examples in a TSV or CSV file (see the module docstring).

    Args:
        path: The file (UTF-8).
        text_format: "tsv", "csv", or "auto": CSV for a `.csv` name, TSV otherwise.
        label_column, text_column: The CSV columns to read.

    Raises:
        DataError: a missing, empty or binary file, a file with no labels, a
            row that does not parse (its line is named).
    """
    if text_format not in FORMATS:
        raise DataError(
            f"unknown text format {text_format!r}; expected one of: {', '.join(FORMATS)}."
        )
    text = read_text(path)
    if text_format == "auto":
        text_format = "csv" if Path(path).suffix.lower() == ".csv" else "tsv"
    if text_format == "csv":
        return _read_csv(text, str(path), label_column, text_column)
    return _read_tsv(text, str(path))


def _read_tsv(text, source):
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not any("\t" in line for _, line in lines):
        raise DataError(
            f"{source!r} has no labels: none of its {len(lines)} lines holds a tab; a TSV file has "
            "`label<TAB>text` on every line (or pass --text-format csv for a CSV file)."
        )

    def rows():
        for number, line in lines:
            label, tab, body = line.partition("\t")
            if not tab:
                raise DataError(
                    f"{source!r} line {number}: expected `label<TAB>text`, found no tab: "
                    f"{line!r:.60}."
                )
            yield number, label, body

    return _collect(rows(), source, "the label (before the tab)", "the text (after the tab)")


def _read_csv(text, source, label_column, text_column):
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)

    def rows(header):
        label_index, text_index = header.index(label_column), header.index(text_column)
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{source!r} line {reader.line_num}: expected {len(header)} fields (as the "
                    f"header), found {len(row)}; quote fields that contain commas."
                )
            yield reader.line_num, row[label_index], row[text_index]

    try:
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in (label_column, text_column) if name not in header]
        if missing:
            what = "has no labels: its" if label_column in missing else "has no"
            raise DataError(
                f"{source!r} {what} header {header!r:.120} lacks the column(s) {missing!r}; name "
                "them with --label-column and --text-column."
            )
        data = _collect(
            rows(header), source, f"the {label_column!r} field", f"the {text_column!r} field"
        )
    except csv.Error as error:
        raise DataError(f"{source!r} line {reader.line_num}: not valid CSV ({error}).") from None
    if not data.texts:
        raise DataError(f"{source!r} has a header but no rows.")
    return data


def _collect(rows, source, label_name, text_name):
    """`LabelledText` from `(line number, label, text)` rows; an empty label or text is an error."""
    labels, texts = [], []
    for number, label, body in rows:
        label, body = label.strip(), body.strip()
        for value, name in ((label, label_name), (body, text_name)):
            if not value:
                raise DataError(f"{source!r} line {number}: {name} is empty.")
        labels.append(label)
        texts.append(body)
    return LabelledText(labels, texts, source)


# ------------------------------------------------------------------------ splits
def split_indices(count, validation_fraction, test_fraction, seed):
    """`{"train", "validation", "test"}` -> index arrays of a seeded random split of `count`."""
    order = np.random.default_rng(seed).permutation(count)
    validation = int(round(count * validation_fraction))
    test = int(round(count * test_fraction))
    if (
        count - validation - test < 1
        or (validation_fraction > 0 and validation < 1)
        or (test_fraction > 0 and test < 1)
    ):
        raise DataError(
            f"{count} examples are too few to split {validation_fraction:g} / {test_fraction:g} "
            "into validation and test sets with some left to train on; use more data."
        )
    return {
        "train": order[validation + test :],
        "validation": order[:validation],
        "test": order[validation : validation + test],
    }


# --------------------------------------------------------------------- vocabulary
class TokenVocabulary:
    """Tokens <-> ids, with 0 for padding and 1 for unknown tokens (see the module docstring).

    Args:
        tokens: The known tokens; token `tokens[k]` gets id k + 2.
        level: "char" or "word".
        lowercase: Whether text is lowercased before it is split into tokens.
    """

    def __init__(self, tokens, level="word", lowercase=True):
        if level not in LEVELS:
            raise DataError(
                f"unknown vocabulary level {level!r}; expected one of: {', '.join(LEVELS)}."
            )
        tokens = list(tokens)
        if len(set(tokens)) != len(tokens) or not all(isinstance(t, str) and t for t in tokens):
            raise DataError(
                "a token vocabulary lists distinct non-empty strings; "
                "received duplicates or blanks."
            )
        self.tokens = tokens
        self.level = level
        self.lowercase = bool(lowercase)
        self.index = {token: k + RESERVED for k, token in enumerate(tokens)}

    @classmethod
    def from_texts(cls, texts, level="word", lowercase=True, min_count=1, max_size=0):
        """The tokens of `texts` seen at least `min_count` times.

        Only the `max_size` most frequent are kept (0: all).
        """
        empty = cls([], level, lowercase)
        counts = collections.Counter(token for text in texts for token in empty.tokenize(text))
        ranked = sorted(
            (token for token, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size:
            ranked = ranked[:max_size]
        return cls(ranked, level, lowercase)

    def __len__(self):
        """The number of ids, padding and unknown included (the embedding's input size)."""
        return len(self.tokens) + RESERVED

    def __eq__(self, other):
        return isinstance(other, TokenVocabulary) and self.to_json() == other.to_json()

    def tokenize(self, text):
        if self.lowercase:
            text = text.lower()
        return list(text) if self.level == "char" else _WORD.findall(text)

    def encode(self, text, max_length=0):
        """The ids of `text`'s tokens (the first `max_length`, when > 0)."""
        tokens = self.tokenize(text)
        if max_length:
            tokens = tokens[:max_length]
        return [self.index.get(token, UNKNOWN) for token in tokens]

    def encode_batch(self, texts, max_length=0):
        """int32 (N, T) ids, 0-padded at the end; T = the longest encoded text (at least 1)."""
        encoded = [self.encode(text, max_length) for text in texts]
        width = max([len(ids) for ids in encoded] + [1])
        batch = np.full((len(encoded), width), PAD, dtype=np.int32)
        for row, ids in enumerate(encoded):
            batch[row, : len(ids)] = ids
        return batch

    def to_json(self):
        return {
            "format": VOCABULARY_FORMAT,
            "level": self.level,
            "lowercase": self.lowercase,
            "tokens": self.tokens,
        }

    @classmethod
    def from_json(cls, value, source="vocabulary"):
        if not isinstance(value, dict) or value.get("format") != VOCABULARY_FORMAT:
            raise DataError(
                f"{source} is not an rnnzoo token vocabulary "
                f"(expected format {VOCABULARY_FORMAT!r})."
            )
        return cls(value.get("tokens", []), value.get("level"), value.get("lowercase", True))
