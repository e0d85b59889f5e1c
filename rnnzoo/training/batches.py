"""Independent examples, reshuffled every epoch, served to the `Trainer` batch range by batch range.

Sequence classification (and any task whose examples are independent) draws
each epoch's batches from a fresh permutation of the training set. The
permutation of epoch e is a pure function of `(seed, e)`, so a run resumed
mid-epoch (`Trainer.epoch_arrays(epoch, start, stop)`) continues with exactly
the batches an uninterrupted run would have seen. The last
`len(inputs) % batch_size` examples of each permutation are left out of that
epoch (a different few each time).

>>> import numpy as np
>>> batches = ShuffledBatches(np.arange(10), np.arange(10), batch_size=3, seed=0)
>>> batches.steps
3
>>> inputs, targets = batches(epoch=0, start=1, stop=3)
>>> inputs.shape, bool((inputs == targets).all())
((6,), True)
"""

import numpy as np

from rnnzoo.training.errors import RecipeError


class ShuffledBatches:
    """`(inputs, targets)` in a seeded new order each epoch: a `Trainer`'s `epoch_arrays`.

    Args:
        inputs, targets: Arrays with one example per row (same number of rows).
        batch_size: Rows per batch.
        seed: Seed of the per-epoch permutations.
        what: How error messages name the data.
    """

    def __init__(self, inputs, targets, batch_size, seed, what="training set"):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets in the {what}.")
        if len(inputs) < batch_size:
            raise RecipeError(
                f"the {what} has {len(inputs)} examples, fewer than one batch of {batch_size}; "
                "lower --batch-size or use more data."
            )
        self.inputs = inputs
        self.targets = targets
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.steps = len(inputs) // self.batch_size
        self._order = (None, None)

    def order(self, epoch):
        """The permutation of the examples used in `epoch` (counted from 0)."""
        if self._order[0] != epoch:
            self._order = (
                epoch,
                np.random.default_rng([self.seed, epoch]).permutation(len(self.inputs)),
            )
        return self._order[1]

    def __call__(self, epoch, start, stop):
        """Batches `start .. stop - 1` of `epoch`, stacked: `(inputs, targets)`."""
        rows = self.order(epoch)[start * self.batch_size : stop * self.batch_size]
        return self.inputs[rows], self.targets[rows]
