r"""The adding problem (Hochreiter & Schmidhuber 1997; as in Le, Jaitly & Hinton 2015).

Each example is a sequence of T steps with two input channels:

    x_t = (v_t, m_t),   v_t ~ U[0, 1],   m_t = 1 at exactly two steps, 0 elsewhere

one marked step i drawn uniformly from the first half (t < T/2), the other j
from the second half (t >= T/2), and the target is the sum of the marked values:

    y = v_i + v_j

A model that ignores the inputs does best predicting E[y] = 1, with mean squared
error Var(v_i + v_j) = 2/12 ≈ 0.167: the baseline a tanh RNN stays at when
T is long, because the gradient from y does not reach step i.

Examples are a pure function of the seed: the same `(num_examples, length,
seed)` gives the same arrays on every machine.

>>> inputs, targets = adding_problem(3, length=6, seed=0)
>>> inputs.shape, targets.shape
((3, 6, 2), (3, 1))
>>> bool((inputs[:, :, 1].sum(axis=1) == 2).all())
True
"""

import numpy as np

from rnnzoo.data.errors import DataError

# Var(v_i + v_j) for two independent U[0, 1] values: the MSE of always predicting 1.
BASELINE_MSE = 2.0 / 12.0
SPLITS = ("train", "validation", "test")


def adding_problem(num_examples, length, seed):
    """`num_examples` adding-problem sequences of `length` steps.

    Args:
        num_examples: How many sequences (>= 1).
        length: Steps T per sequence (>= 2: one marker in each half).
        seed: Integer seed; equal seeds give equal arrays.

    Returns:
        `(inputs, targets)`: float32 arrays of shapes (N, T, 2) (values, markers)
        and (N, 1) (the sum of the two marked values).
    """
    num_examples = _positive("num_examples", num_examples, minimum=1)
    length = _positive("length", length, minimum=2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(num_examples, length)).astype(np.float32)
    half = length // 2
    rows = np.arange(num_examples)
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    markers = np.zeros((num_examples, length), np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).reshape(-1, 1)
    return np.stack([values, markers], axis=-1), targets.astype(np.float32)


def adding_splits(length, train_size, eval_size, seed):
    """Train, validation and test sets of the adding problem, each from its own seed.

    The three seeds are spawned from `seed` (`numpy.random.SeedSequence`), so
    the splits never share a sequence's random stream and a larger
    `train_size` leaves the validation and test sets unchanged.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`, the
        validation and test sets of `eval_size` examples each.
    """
    sizes = {"train": train_size, "validation": eval_size, "test": eval_size}
    seeds = np.random.SeedSequence(seed).spawn(len(SPLITS))
    return {split: adding_problem(sizes[split], length, seeds[i]) for i, split in enumerate(SPLITS)}


def _positive(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(
            f"the adding problem needs `{name}` to be an integer >= {minimum}, received {value!r}."
        )
    return int(value)
