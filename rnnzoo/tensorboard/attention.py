"""`GlimpseViews`: where a recurrent attention model looks, written to TensorBoard during `fit`.

Every `every` training steps (and at step 1) the callback runs the model on a
fixed set of images, looking at the location policy's *means* (no noise is
drawn, so training's random state is untouched and a resumed run logs the
same pictures), and writes

- `glimpses/paths`: each image with its glimpse boxes, step by step, the path
  joining them, and below it the patches the retina read (one column per
  step, finest scale on top), titled 'label -> prediction';
- `locations/step_<t>/row` and `.../column`: the mean over the images of the
  policy's mean location at glimpse t, in [-1, 1] (-1 = top / left);
- `locations/means`: a histogram of all the policy's mean coordinates.

The training figures of a RAM (loss, accuracy, reward, baseline, policy-
gradient variance) are in Keras's logs and written by `RecurrentTensorBoard`.
"""

import keras
import numpy as np
import tensorflow as tf

from rnnzoo.tensorboard import summaries
from rnnzoo.tensorboard.glimpses import glimpse_figure
from rnnzoo.tensorboard.gradients import became_due, check_every, training_step
from rnnzoo.tensorboard.images import summary_image

PATHS_NOTE = (
    "Fixed test images: glimpse boxes at the location policy's means, step by step "
    "(early to late along viridis), the path joining them, and the patches read (columns: "
    "steps; rows: scales, finest on top). Title: label -> prediction from those glimpses."
)


def glimpse_record(model, images):
    """The model's mean-location episodes on `images`: a dict of numpy arrays.

    "boxes" (N, T, k, 4) pixel boxes (top, left, height, width) of each glimpse
    and scale, "retina" (N, T, k, g, g, C), "means" (N, T, 2) and "predictions" (N,).
    """
    prepared = model.prepare(images)
    result = model.episodes(prepared, keep_retina=True, sample=False)
    locations = keras.ops.convert_to_numpy(result["locations"])
    height, width = prepared.shape[1], prepared.shape[2]
    boxes = np.stack(
        [
            keras.ops.convert_to_numpy(model.sensor.boxes(locations[:, t], height, width))
            for t in range(locations.shape[1])
        ],
        axis=1,
    )
    return {
        "boxes": boxes,
        "retina": keras.ops.convert_to_numpy(result["retina"]),
        "means": keras.ops.convert_to_numpy(result["means"]),
        "predictions": np.argmax(keras.ops.convert_to_numpy(result["logits"]), -1),
    }


def glimpse_picture(model, images, labels=None):
    """`(picture, record)`: an RGB uint8 picture of the glimpse paths and patches of `model` on
    `images` (titled with `labels` when given), and the `glimpse_record` it shows."""
    record = glimpse_record(model, images)
    picture = glimpse_figure(
        np.asarray(images),
        record["boxes"],
        record["retina"],
        labels=None if labels is None else np.asarray(labels),
        predictions=record["predictions"],
    )
    return picture, record


class GlimpseViews(keras.callbacks.Callback):
    """Writes glimpse-path pictures and mean locations of a `RecurrentAttentionModel`.

    Args:
        log_dir: Directory for the event file (its own: one writer per directory).
        images: The fixed images (N, H, W) drawn at each view.
        labels: Their labels (for the titles), or None.
        every: Training steps between views (0: off); also written at step 1.
    """

    def __init__(self, log_dir, images, labels=None, every=200):
        super().__init__()
        self.log_dir = str(log_dir)
        self.images = np.asarray(images)
        self.labels = None if labels is None else np.asarray(labels)
        self.every = check_every("every", every)
        self.writer = None
        self._step = None
        self._describe = summaries.Descriptions()

    def on_train_begin(self, logs=None):
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.log_dir)
        self._step = self._current_step()

    def on_train_batch_end(self, batch, logs=None):
        previous, step = self._step, self._current_step()
        self._step = step
        if self.every and len(self.images) and became_due(previous, step, self.every):
            self.write(step)

    def write(self, step):
        """Draw the fixed images' glimpses with the model as it is, at `step`."""
        picture, record = glimpse_picture(self.model, self.images, self.labels)
        means = record["means"]
        with self.writer.as_default():
            tf.summary.image(
                "glimpses/paths",
                summary_image(picture),
                step=step,
                description=self._describe("glimpses/paths", PATHS_NOTE),
            )
            for t in range(means.shape[1]):
                for axis, name in enumerate(("row", "column")):
                    tag = f"locations/step_{t + 1}/{name}"
                    tf.summary.scalar(
                        tag,
                        float(means[:, t, axis].mean()),
                        step=step,
                        description=self._describe(
                            tag,
                            f"Mean over the fixed images of the location policy's mean {name} at "
                            f"glimpse {t + 1}, in [-1, 1] (-1: top / left).",
                        ),
                    )
            tf.summary.histogram(
                "locations/means",
                means.reshape(-1),
                step=step,
                description=self._describe(
                    "locations/means", "The location policy's mean coordinates, all glimpses."
                ),
            )
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _current_step(self):
        return training_step(self.model)
