"""Fixtures of the recipe tests: a small text and MNIST files written by the tests, and a CLI
runner."""

import subprocess
import sys

import numpy as np
import pytest
from processes import REPO_ROOT, subprocess_env

from rnnzoo.data.mnist import write_mnist_dir

WORDS = [
    "the",
    "king",
    "and",
    "queen",
    "of",
    "rome",
    "said",
    "to",
    "all",
    "that",
    "were",
    "there",
    "in",
    "love",
    "with",
    "night",
    "o",
    "my",
    "lord",
    "what",
    "is",
    "it",
    "you",
    "would",
    "have",
    "me",
    "do",
    ",",
    ".",
    "!",
    "?",
]


def _write_text(path, characters, seed=0):
    """Seeded pseudo-English: words, spaces, a newline every few words."""
    rng = np.random.default_rng(seed)
    pieces, size = [], 0
    while size < characters:
        line = " ".join(rng.choice(WORDS, size=rng.integers(3, 9))) + "\n"
        pieces.append(line)
        size += len(line)
    path.write_text("".join(pieces)[:characters], encoding="utf-8")
    return path


def _run_cli(*args, env=None, timeout=300):
    """`python -m rnnzoo.recipes.charlm *args` in a fresh process, from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "rnnzoo.recipes.charlm", *map(str, args)],
        env=subprocess_env() if env is None else env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def write_text():
    """`write_text(path, characters, seed=0)`: a seeded pseudo-English text file."""
    return _write_text


@pytest.fixture(scope="session")
def run_cli():
    """`run_cli(*args, env=None)`: the charlm CLI in a fresh process (a CompletedProcess)."""
    return _run_cli


@pytest.fixture(scope="session")
def small_text(tmp_path_factory):
    return _write_text(tmp_path_factory.mktemp("text") / "small.txt", 30_000)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """MNIST's four IDX files holding 24 training and 8 test random images."""
    rng = np.random.default_rng(1)
    return write_mnist_dir(
        tmp_path_factory.mktemp("mnist"),
        rng.integers(0, 256, (24, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 24, dtype=np.uint8),
        rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 8, dtype=np.uint8),
    )
