"""Labelled text: TSV and CSV files written here, line-numbered errors, splits, vocabularies.

Also IMDB.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from rnnzoo.data import DataError
from rnnzoo.data.imdb import as_labelled_text, load_imdb
from rnnzoo.data.labelled_text import (
    PAD,
    UNKNOWN,
    LabelledText,
    TokenVocabulary,
    read_labelled_text,
    split_indices,
)

HAM = ["ok see you at home", "call me when you are free", "lunch today?", "thanks , that was fun"]
SPAM = ["win a free prize now !", "claim your cash award , call now", "free entry : txt win"]


def write_tsv(path, lines=30):
    """`lines` rows of `label<TAB>text`, alternating ham and spam, plus a blank line."""
    rows = [
        ("ham", HAM[i % len(HAM)]) if i % 3 else ("spam", SPAM[i % len(SPAM)]) for i in range(lines)
    ]
    path.write_text(
        "\n".join(f"{label}\t{text}" for label, text in rows[:10])
        + "\n\n"
        + "\n".join(f"{label}\t{text}" for label, text in rows[10:])
        + "\n",
        encoding="utf-8",
    )
    return rows


def test_tsv_rows_read_back_with_their_labels(tmp_path):
    rows = write_tsv(tmp_path / "sms.tsv")
    data = read_labelled_text(tmp_path / "sms.tsv")
    assert list(zip(data.labels, data.texts)) == rows
    assert data.classes() == ["ham", "spam"]
    assert data.describe() == "30 examples (ham 20, spam 10)"
    # Only the first tab separates: the text keeps later ones.
    (tmp_path / "tabs.tsv").write_text("a\tx\ty\nb\tz\n", encoding="utf-8")
    assert read_labelled_text(tmp_path / "tabs.tsv").texts == ["x\ty", "z"]


def test_csv_with_named_columns_quotes_and_extra_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(
        'id,text,sentiment\n1,"good, really good",pos\n'
        '2,"bad\nacross two lines",neg\n\n3,meh,neg\n',
        encoding="utf-8",
    )
    data = read_labelled_text(path, label_column="sentiment")
    assert data.labels == ["pos", "neg", "neg"]
    assert data.texts == ["good, really good", "bad\nacross two lines", "meh"]
    # The format follows the name unless given: the same content as .txt must be asked for as CSV.
    renamed = tmp_path / "reviews.txt"
    renamed.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_labelled_text(renamed, "csv", label_column="sentiment").labels == data.labels


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("a.tsv", "just text\nwith no labels\n", "has no labels: none of its 2 lines holds a tab"),
        (
            "a.tsv",
            "ham\tfine\nspam\tok\nno tab here\n",
            "line 3: expected `label<TAB>text`, found no",
        ),
        ("a.tsv", "ham\tfine\n\n\tno label\n", "line 3: the label (before the tab) is empty"),
        ("a.tsv", "ham\tfine\nspam\t   \n", "line 2: the text (after the tab) is empty"),
        ("a.csv", "text,score\nhello,1\n", "has no labels: its header ['text', 'score'] lacks"),
        ("a.csv", "label,body\nham,hello\n", "lacks the column(s) ['text']"),
        (
            "a.csv",
            "label,text\nham,hi\nspam,a,b\n",
            "line 3: expected 2 fields (as the header), found 3",
        ),
        ("a.csv", "label,text\nham,hi\n,empty label\n", "line 3: the 'label' field is empty"),
        ("a.csv", 'label,text\nham,"never closed\n', "not valid CSV"),
        ("a.csv", "label,text\n", "has a header but no rows"),
    ],
)
def test_problems_are_one_line_errors_naming_the_line(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_labelled_text(path)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_unusable_files_and_a_single_class(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_labelled_text(tmp_path / "missing.tsv")
    (tmp_path / "empty.tsv").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="is empty"):
        read_labelled_text(tmp_path / "empty.tsv")
    (tmp_path / "one.tsv").write_text("ham\ta\nham\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match="all 2 examples have label 'ham'; a classifier needs"):
        read_labelled_text(tmp_path / "one.tsv").classes()


def test_seeded_split_is_a_partition():
    parts = split_indices(50, 0.1, 0.2, seed=3)
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [35, 5, 10]
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(50))
    again = split_indices(50, 0.1, 0.2, seed=3)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)
    assert not np.array_equal(parts["test"], split_indices(50, 0.1, 0.2, seed=4)["test"])
    with pytest.raises(DataError, match="too few"):
        split_indices(4, 0.1, 0.1, seed=0)


def test_word_vocabulary_ranks_by_frequency_and_maps_the_rest_to_unknown():
    texts = ["Free cash, free prize!", "call me", "FREE call"]
    vocabulary = TokenVocabulary.from_texts(texts, level="word")
    assert vocabulary.tokens[:2] == ["free", "call"]  # 3 and 2 occurrences
    assert len(vocabulary) == len(vocabulary.tokens) + 2
    ids = vocabulary.encode("free lunch!")
    assert ids == [vocabulary.index["free"], UNKNOWN, vocabulary.index["!"]]
    assert min(vocabulary.index.values()) == 2  # 0 and 1 are padding and unknown
    rare_out = TokenVocabulary.from_texts(texts, level="word", min_count=2)
    assert rare_out.tokens == ["free", "call"]
    assert TokenVocabulary.from_texts(texts, max_size=1).tokens == ["free"]
    cased = TokenVocabulary.from_texts(texts, lowercase=False)
    assert {"Free", "free", "FREE"} <= set(cased.tokens)


def test_char_vocabulary_batches_pad_truncate_and_round_trip_json():
    vocabulary = TokenVocabulary.from_texts(["abcab", "ca"], level="char")
    assert vocabulary.tokens == ["a", "b", "c"]  # a: 3, b: 2, c: 2 (ties sorted)
    batch = vocabulary.encode_batch(["abc", "a", "abcabcx"], max_length=5)
    assert batch.dtype == np.int32 and batch.shape == (3, 5)
    assert batch.tolist() == [[2, 3, 4, PAD, PAD], [2, PAD, PAD, PAD, PAD], [2, 3, 4, 2, 3]]
    assert vocabulary.encode_batch(["ab", "a"]).shape == (2, 2)  # as long as the longest
    again = TokenVocabulary.from_json(json.loads(json.dumps(vocabulary.to_json())))
    assert again == vocabulary and again.level == "char"
    with pytest.raises(DataError, match="not an rnnzoo token vocabulary"):
        TokenVocabulary.from_json({"chars": ["a"]})
    with pytest.raises(DataError, match="unknown vocabulary level"):
        TokenVocabulary([], level="byte")


def test_imdb_examples_as_tensorflow_datasets_yields_them():
    # The structure `tfds.as_numpy(builder.as_dataset(batch_size=-1, as_supervised=True))` gives.
    dataset = tf.data.Dataset.from_tensor_slices(
        (["a great film", "dull, très dull"], [1, 0])
    ).batch(2)
    texts, labels = next(iter(dataset.as_numpy_iterator()))
    data = as_labelled_text(texts, labels, source="imdb_reviews/train")
    assert isinstance(data, LabelledText)
    assert data.labels == ["pos", "neg"] and data.texts == ["a great film", "dull, très dull"]


def test_imdb_unavailable_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "not_a_folder"  # tensorflow-datasets fails here before any download
    blocker.write_text("x")
    with pytest.raises(DataError, match="could not provide imdb_reviews") as error:
        load_imdb(data_dir=str(blocker))
    assert "TFDS_DATA_DIR" in str(error.value) and "\n" not in str(error.value)
