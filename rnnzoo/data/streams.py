r"""Carried-state batching for truncated backprop through time (char-rnn's batching).

The text (ids x_0 ... x_{N-1}) is cut into B contiguous streams of length
L = (N - 1) // B; stream b holds x_{bL} ... x_{bL+L-1} and its targets are the
next characters. Batch k holds window k of every stream:

    inputs[k][b, t]  = x_{bL + kT + t}
    targets[k][b, t] = x_{bL + kT + t + 1}        t = 0 .. T-1, T = seq_length

so row b of batch k+1 continues row b of batch k exactly where it stopped: a
stateful model that carries its hidden state from batch to batch reads each
stream from start to end, while gradients stop after T steps. There are
L // T batches per pass; the few characters left over at the end of each
stream (fewer than T) and of the text (fewer than B) are not used.

>>> import numpy as np
>>> streams = TextStreams(np.arange(21), batch_size=2, seq_length=3)
>>> streams.steps
3
>>> inputs, targets = streams.batch(1)
>>> inputs.tolist(), targets.tolist()
([[3, 4, 5], [13, 14, 15]], [[4, 5, 6], [14, 15, 16]])
"""

import numpy as np

from rnnzoo.data.errors import DataError


class TextStreams:
    """`batch_size` contiguous streams over `ids`, read `seq_length` steps per batch.

    Args:
        ids: 1-D int array, the encoded text.
        batch_size: Number of streams B (rows of every batch).
        seq_length: Steps T per batch (the truncation length of backprop).
        what: How error messages name the text ("training text", ...).
    """

    def __init__(self, ids, batch_size, seq_length, what="text"):
        ids = np.asarray(ids, dtype=np.int32).reshape(-1)
        if batch_size < 1 or seq_length < 1:
            raise ValueError(
                "Expected positive batch_size and seq_length, "
                f"received {batch_size} and {seq_length}."
            )
        stream_length = max(len(ids) - 1, 0) // batch_size
        if stream_length // seq_length < 1:
            needed = batch_size * seq_length + 1
            raise DataError(
                f"the {what} has {len(ids):,} characters, fewer than one batch of streams "
                f"needs ({batch_size} streams x {seq_length} steps + 1 = {needed:,}); "
                "use a longer text, or a smaller --batch-size or --seq-length."
            )
        used = batch_size * stream_length
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.stream_length = stream_length
        self.inputs = ids[:used].reshape(batch_size, stream_length)
        self.targets = ids[1 : used + 1].reshape(batch_size, stream_length)

    @classmethod
    def for_evaluation(cls, ids, batch_size, seq_length, what="text"):
        """Streams over `ids` with at most `batch_size` rows: fewer if the text is short."""
        fitting = max(1, (len(ids) - 1) // seq_length)
        return cls(ids, min(batch_size, fitting), seq_length, what=what)

    @property
    def steps(self):
        """Batches in one pass over the streams."""
        return self.stream_length // self.seq_length

    @property
    def characters_per_pass(self):
        """Characters predicted in one pass (steps x batch_size x seq_length)."""
        return self.steps * self.batch_size * self.seq_length

    def batch(self, step):
        """`(inputs, targets)` of batch `step`, each (batch_size, seq_length)."""
        if not 0 <= step < self.steps:
            raise IndexError(f"Expected a step in [0, {self.steps}), received {step}.")
        window = slice(step * self.seq_length, (step + 1) * self.seq_length)
        return self.inputs[:, window], self.targets[:, window]

    def arrays(self, start=0, stop=None):
        """Batches `start` .. `stop - 1` stacked batch after batch: `(inputs, targets)`.

        Each is (num_batches * batch_size, seq_length); feeding them to
        `model.fit(..., batch_size=self.batch_size, shuffle=False)` gives the
        model batch `start`, then `start + 1`, ... (resuming mid-pass is
        `start > 0`).
        """
        stop = self.steps if stop is None else stop
        if not 0 <= start <= stop <= self.steps:
            raise IndexError(
                f"Expected 0 <= start <= stop <= {self.steps}, received {start}, {stop}."
            )
        window = slice(start * self.seq_length, stop * self.seq_length)

        def stacked(rows):
            rows = rows[:, window].reshape(self.batch_size, stop - start, self.seq_length)
            return rows.transpose(1, 0, 2).reshape(-1, self.seq_length)

        return stacked(self.inputs), stacked(self.targets)
