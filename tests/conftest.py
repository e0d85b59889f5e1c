"""Shared pytest setup: a quiet TensorFlow backend, seeded data and weights, and Keras's globals
restored.

The environment is set before any test module imports Keras, so every test
(and every subprocess a test starts with `processes.subprocess_env`) runs on the
same backend. Subfolders add their own conftest files for their own fixtures.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# One thread per operation: pytest-xdist runs a test process per core, and many tests start
# subprocesses of their own; TensorFlow's default pool per process oversubscribed the cores.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import keras  # noqa: E402  (must come after the environment above)
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    """A numpy random generator with a fixed seed: the same data on every run."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def seeded_weights():
    """Seed Keras's initialisers afresh for each test, so a layer's random weights are the same
    whichever tests ran before it in the process (pytest-xdist shares processes out by chance)."""
    keras.utils.set_random_seed(1234)


@pytest.fixture(autouse=True)
def restore_keras_globals():
    """Put back floatx and the dtype policy, so a test that changes them cannot leak."""
    floatx = keras.config.floatx()
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)
