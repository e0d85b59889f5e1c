"""rnnzoo data: text corpora, the character vocabulary, and carried-state stream batching.

>>> from rnnzoo.data import TextStreams, Vocabulary
>>> vocabulary = Vocabulary.from_text("to be or not to be")
>>> streams = TextStreams(vocabulary.encode("to be or not to be"), batch_size=2, seq_length=4)
>>> streams.steps
2
"""

from rnnzoo.data.errors import DataError
from rnnzoo.data.streams import TextStreams
from rnnzoo.data.text import (
    Corpus,
    CorpusUnavailable,
    Vocabulary,
    load_corpus,
    python_sources,
    read_text,
    split_by_position,
    text_file,
    tiny_shakespeare,
)

__all__ = [
    "DataError",
    "TextStreams",
    "Corpus",
    "CorpusUnavailable",
    "Vocabulary",
    "load_corpus",
    "python_sources",
    "read_text",
    "split_by_position",
    "text_file",
    "tiny_shakespeare",
]
