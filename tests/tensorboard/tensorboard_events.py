"""Read event files back with TensorBoard's own reader, and a tiny model to write them.

`Events(log_dir)` wraps `tensorboard.backend.event_processing.plugin_event_accumulator`
(the loader behind TensorBoard's dashboards): `tags("scalars")` lists what
the scalars dashboard shows, `scalars(tag)` / `histograms(tag)` / `images(tag)`
give `(step, value)` pairs decoded to numpy.
"""

import keras
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.util import tensor_util

import rnnzoo

VOCAB, STEPS = 7, 12


class Events:
    def __init__(self, log_dir):
        self.accumulator = plugin_event_accumulator.EventAccumulator(
            str(log_dir), size_guidance={plugin_event_accumulator.TENSORS: 0}
        )
        self.accumulator.Reload()

    def tags(self, plugin):
        """The tags the `plugin` dashboard ("scalars", "histograms", "images") shows."""
        return set(self.accumulator.PluginTagToContent(plugin))

    def _values(self, tag):
        return [
            (event.step, tensor_util.make_ndarray(event.tensor_proto))
            for event in self.accumulator.Tensors(tag)
        ]

    def scalars(self, tag):
        """[(step, float)]"""
        return [(step, float(value)) for step, value in self._values(tag)]

    def histograms(self, tag):
        """[(step, (buckets, 3) array of left edge, right edge, count)]"""
        return self._values(tag)

    def images(self, tag):
        """[(step, RGB uint8 array)], each PNG decoded."""
        decoded = []
        for step, value in self._values(tag):
            width, height, png = int(value[0]), int(value[1]), value[2]
            image = tf.io.decode_png(png).numpy()
            assert image.shape == (height, width, 3), (tag, image.shape, width, height)
            decoded.append((step, image))
        return decoded

    def description(self, tag):
        return self.accumulator.SummaryMetadata(tag).summary_description


def tiny_char_model(seed=0):
    """Embedding -> LSTM -> GRU -> Dense: a per-step model over VOCAB symbols."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((STEPS,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 6, name="embedding"),
            rnnzoo.layers.LSTM(8, return_sequences=True, name="lstm"),
            rnnzoo.layers.GRU(8, return_sequences=True, name="gru"),
            keras.layers.Dense(VOCAB, name="dense"),
        ]
    )


def tiny_char_data(count=16, seed=0):
    x = np.random.default_rng(seed).integers(0, VOCAB, (count, STEPS)).astype("int32")
    return x, np.roll(x, -1, axis=1)
