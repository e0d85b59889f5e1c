"""TensorBoard event files of a run: scalars and text, one folder per split.

`Summaries(run_dir).scalars("validation", step, {"loss": 1.4})` writes to
`<run_dir>/validation/`, so TensorBoard draws train and validation curves of
the same tag on one chart.
"""

import tensorflow as tf


class Summaries:
    """Lazily opened `tf.summary` writers under a run directory, one per split."""

    def __init__(self, run_directory):
        self.run_directory = run_directory
        self._writers = {}

    def _writer(self, split):
        if split not in self._writers:
            path = self.run_directory.events_path(split)
            self._writers[split] = tf.summary.create_file_writer(str(path))
        return self._writers[split]

    def scalars(self, split, step, values):
        """Write each `name: value` of `values` as a scalar at `step`."""
        with self._writer(split).as_default():
            for name, value in values.items():
                tf.summary.scalar(name, float(value), step=int(step))

    def text(self, split, name, step, text):
        """Write `text` verbatim (indented, so TensorBoard's markdown keeps its lines)."""
        block = "\n".join("    " + line for line in text.split("\n"))
        with self._writer(split).as_default():
            tf.summary.text(name, block, step=int(step))

    def flush(self):
        for writer in self._writers.values():
            writer.flush()

    def close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
