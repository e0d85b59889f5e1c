"""TensorBoard views of recurrent training: gradients, gates, ∂L/∂h_t, activations, cells.

>>> import rnnzoo.tensorboard as rtb
>>> callbacks = rtb.default_callbacks("runs/x/tensorboard", (inputs, targets))  # doctest: +SKIP
>>> model.fit(x, y, callbacks=callbacks)                                       # doctest: +SKIP

- `callbacks`: `RecurrentTensorBoard`, the callback, and `default_callbacks`.
- `gradients`: the training gradients' norms and values, seen inside the optimizer.
- `probe`: unroll the recurrent layers on a probe batch (states, gates, ∂L/∂h_t).
- `summaries`: what each view writes; `images`: numpy colour maps and plots.
- `interpretable`: find cells that track quotes, line position, depth, comments.
- `glimpses`: pictures of glimpse paths and patches; `attention`: `GlimpseViews`, the
  callback that writes them (and the location policy's means) for a recurrent attention model.
"""

from rnnzoo.tensorboard import images, interpretable, probe, summaries
from rnnzoo.tensorboard.callbacks import DEFAULT_EVERY, RecurrentTensorBoard, default_callbacks
from rnnzoo.tensorboard.gradients import GradientRecorder
from rnnzoo.tensorboard.probe import LayerTrace, recording

__all__ = [
    "DEFAULT_EVERY",
    "GradientRecorder",
    "LayerTrace",
    "RecurrentTensorBoard",
    "default_callbacks",
    "images",
    "interpretable",
    "probe",
    "recording",
    "summaries",
]
