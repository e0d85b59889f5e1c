"""Corpora and the vocabulary: real files written by the tests, and the shared Tiny Shakespeare."""

import json
from pathlib import Path

import numpy as np
import pytest

from rnnzoo.data import (
    DataError,
    Vocabulary,
    load_corpus,
    python_sources,
    read_text,
    split_by_position,
    text_file,
    tiny_shakespeare,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
TFDS_DIR = SHARED / "tensorflow_datasets"
RAW_SHAKESPEARE = SHARED / "data" / "tiny_shakespeare" / "input.txt"
WAR_AND_PEACE = SHARED / "data" / "war_and_peace" / "warpeace_input.txt"


def test_vocabulary_round_trips_text_and_json():
    vocabulary = Vocabulary.from_text("to be, or not", "to be!")
    assert vocabulary.chars == sorted(set("to be, or not!"))
    ids = vocabulary.encode("not to be!")
    assert ids.dtype == np.int32
    assert [vocabulary.chars[i] for i in ids] == list("not to be!")
    assert vocabulary.decode(ids) == "not to be!"
    again = Vocabulary.from_json(json.loads(json.dumps(vocabulary.to_json())))
    assert again == vocabulary


def test_vocabulary_rejects_unknown_characters_and_bad_json():
    vocabulary = Vocabulary.from_text("abc")
    with pytest.raises(DataError, match="outside the vocabulary: 'xz'"):
        vocabulary.encode("axbz")
    with pytest.raises(DataError, match="not an rnnzoo vocabulary"):
        Vocabulary.from_json({"chars": ["a"]})
    with pytest.raises(DataError, match="once"):
        Vocabulary(["a", "a"])


def test_read_text_normalises_newlines_and_drops_bom(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes("\ufeffline one\r\nline two\rthree\n".encode("utf-8"))
    assert read_text(path) == "line one\nline two\nthree\n"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8|NUL bytes"),
        (b"plain text\x00with a NUL", "NUL bytes"),
        (b"caf\xe9 latin-1", "not UTF-8 text"),
    ],
    ids=["missing", "empty", "png", "nul", "latin1"],
)
def test_read_text_refuses_unusable_files(tmp_path, content, message):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text(path)


def test_read_text_refuses_a_directory(tmp_path):
    with pytest.raises(DataError, match="not a file"):
        read_text(tmp_path)


def test_text_file_splits_90_5_5_by_position(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    path = tmp_path / "letters.txt"
    path.write_text(text, encoding="utf-8")
    corpus = text_file(path)
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (900, 50, 50)
    assert corpus.train + corpus.validation + corpus.test == text
    assert split_by_position("abcdefghij", (0.5, 0.3, 0.2)) == ("abcde", "fgh", "ij")


def test_a_windows_text_with_a_bom_splits_80_10_10_after_its_line_ends_are_made_unix(tmp_path):
    """War and Peace's shape: a BOM, then CRLF line ends. The reader drops the BOM and makes each
    CRLF one "\n" before splitting, so the splits, the vocabulary and the line lengths are those
    of the Unix text."""
    lines = [f"line {i:03d} of the book" for i in range(100)]  # 100 lines of 20 characters
    path = tmp_path / "windows.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    corpus = text_file(path, (0.8, 0.1))
    unix = "\n".join(lines) + "\n"  # 2,100 characters, 2,201 on disk less the BOM
    assert corpus.train + corpus.validation + corpus.test == unix
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (1680, 210, 210)
    assert not {"\r", "\ufeff"} & set(unix)
    assert text_file(path, (0.8, 0.1, 0.1)) == corpus  # the test share may be given too


@pytest.mark.parametrize(
    "fractions",
    [(0.9, 0.1), (0.0, 0.5), (0.8, -0.1), (1.2, 0.1), (0.8, 0.1, 0.2), (0.8,), ("a", 0.1)],
    ids=["no-test", "no-train", "negative", "above-1", "sum-not-1", "one", "not-a-number"],
)
def test_split_fractions_that_leave_a_split_empty_or_do_not_add_up_are_refused(tmp_path, fractions):
    path = tmp_path / "t.txt"
    path.write_text("some text\n" * 100, encoding="utf-8")
    with pytest.raises(DataError, match="fractions"):
        text_file(path, fractions)
    with pytest.raises(DataError, match="fractions"):
        load_corpus(path, fractions=fractions)


@pytest.mark.skipif(not WAR_AND_PEACE.exists(), reason="../shared/data absent")
def test_war_and_peace_loses_its_bom_and_carriage_returns_and_splits_80_10_10():
    corpus = text_file(WAR_AND_PEACE, (0.8, 0.1))
    text = corpus.train + corpus.validation + corpus.test
    # 3,258,246 bytes on disk: a 3-byte BOM, 62,014 CRLFs, and a few 2-byte UTF-8 letters (é).
    assert len(text) == 3_196_212 and text.count("\n") == 62_014
    assert not {"\r", "\ufeff"} & set(text)
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (
        2_556_969,
        319_621,
        319_622,
    )
    assert text.startswith('"Well, Prince, so Genoa')


def test_python_sources_are_ascii_python_of_the_requested_size():
    corpus = python_sources(max_chars=50_000)
    text = corpus.train + corpus.validation + corpus.test
    assert len(text) == 50_000
    assert text.isascii()
    assert "def " in text and "import " in text
    assert corpus.name == "python-stdlib"


def test_python_sources_from_an_empty_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no Python sources"):
        python_sources(root=tmp_path)


def test_load_corpus_prefers_the_given_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world\n" * 100, encoding="utf-8")
    lines = []
    corpus = load_corpus(path, log=lines.append)
    assert corpus.name == str(path) and not lines


def test_load_corpus_falls_back_to_python_sources_with_one_line(tmp_path, monkeypatch):
    # An empty tfds folder and (on these machines) no network: tfds can't provide the data.
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    lines = []
    corpus = load_corpus(None, data_dir=str(tmp_path / "no_tfds_here"), log=lines.append)
    if corpus.name == "tiny_shakespeare":
        pytest.skip("tensorflow-datasets downloaded tiny_shakespeare (this machine has a network)")
    assert corpus.name == "python-stdlib"
    assert len(lines) == 1 and "could not provide tiny_shakespeare" in lines[0]


@pytest.mark.skipif(
    not (TFDS_DIR / "tiny_shakespeare").exists(), reason="../shared/tensorflow_datasets absent"
)
def test_tiny_shakespeare_has_its_three_splits_and_65_characters():
    corpus = tiny_shakespeare(str(TFDS_DIR))
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (
        1_003_854,
        55_770,
        55_770,
    )
    assert len(Vocabulary.from_text(corpus.train, corpus.validation, corpus.test)) == 65
    if RAW_SHAKESPEARE.exists():
        # tfds's splits are the char-rnn file cut in three.
        raw = RAW_SHAKESPEARE.read_text(encoding="utf-8")
        assert corpus.train in raw and corpus.validation in raw and corpus.test in raw
