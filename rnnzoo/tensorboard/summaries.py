"""What each view writes to TensorBoard, from numbers already computed.

Every function writes with `tf.summary` into the default writer (use it
inside `with writer.as_default():`), at the given step. Tags, grouped by
their first component in TensorBoard's dashboards:

    batch/<metric>, epoch/<metric>                   scalars: loss and metrics
    optimizer/learning_rate                          scalar
    gradient_norm/global, gradient_norm/global_clipped, gradient_norm/<layer>
                                                     scalars, training gradients
    weights/<variable path>, gradients/<variable path>
                                                     histograms
    gradient_over_time/<layer>/curve                 image: log10 ‖∂L/∂h_t‖ over t
    gradient_over_time/<layer>/history               image: rows = logged training
                                                     steps, columns = t
    gradient_over_time/<layer>/log10_first_over_last scalar: log10 ‖∂L/∂h_0‖/‖∂L/∂h_T‖
    gates/<layer>/<gate>                             histogram of the gate's activations
    gate_saturation/<layer>/<gate>_left|_right       scalars: saturated fractions
    activations/<layer>/<state>                      image: units x time, one sequence
"""

import numpy as np
import tensorflow as tf

from rnnzoo.tensorboard import images

# Saturation thresholds of Karpathy, Johnson & Fei-Fei (2015) for gates in [0, 1].
LEFT_SATURATED = 0.1
RIGHT_SATURATED = 0.9

PROBE_NOTE = "Computed on the fixed probe batch, in inference mode (no dropout)."


class Descriptions:
    """Gives a tag's description the first time it is written, and None after."""

    def __init__(self):
        self._seen = set()

    def __call__(self, tag, text):
        if tag in self._seen:
            return None
        self._seen.add(tag)
        return text


def write_logs(prefix, logs, step, describe):
    """Scalars `prefix/<name>` for every number in Keras's `logs` dict."""
    for name, value in sorted((logs or {}).items()):
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        tag = f"{prefix}/{name}"
        text = (
            "Keras's running mean over the epoch so far, as `fit` reports it."
            if prefix == "batch"
            else "At the end of the epoch (`val_` on the validation data)."
        )
        tf.summary.scalar(tag, value, step=step, description=describe(tag, text))


def write_learning_rate(value, step, describe):
    tag = "optimizer/learning_rate"
    tf.summary.scalar(
        tag,
        float(value),
        step=step,
        description=describe(tag, "The optimizer's current learning rate."),
    )


def write_gradient_norms(global_norm, clipped_norm, layer_norms, step, describe):
    """Scalars of the training gradients' norms (see `rnnzoo.tensorboard.gradients`)."""
    note = "Training gradients of this step's batch, recorded inside the optimizer."
    tf.summary.scalar(
        "gradient_norm/global",
        global_norm,
        step=step,
        description=describe(
            "gradient_norm/global", f"Global gradient norm before clipping. {note}"
        ),
    )
    tf.summary.scalar(
        "gradient_norm/global_clipped",
        clipped_norm,
        step=step,
        description=describe(
            "gradient_norm/global_clipped",
            (
                "Global gradient norm after the optimizer's clipnorm / global_clipnorm / "
                f"clipvalue. {note}"
            ),
        ),
    )
    for name, value in layer_norms.items():
        tag = f"gradient_norm/{name}"
        tf.summary.scalar(
            tag,
            value,
            step=step,
            description=describe(tag, f"Norm of layer {name}'s gradients, before clipping. {note}"),
        )


def write_variable_histograms(prefix, arrays, step, describe, text):
    """Histograms `prefix/<path>` of each array in `arrays` (path -> array)."""
    for path, value in arrays.items():
        tag = f"{prefix}/{path}"
        tf.summary.histogram(tag, value, step=step, description=describe(tag, text))


def log10(values):
    """log10 of non-negative values, -inf for zeros, without warnings."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log10(values)


def gradient_over_time_images(norms, history, reference=None):
    """(curve, history) images of log10 ‖∂L/∂h_t‖.

    Args:
        norms: (time,) this step's norms.
        history: (rows, time) norms of the logged steps so far, oldest first.
        reference: (time,) norms of the first logged step, drawn in grey
            under the current curve.
    """
    series = [log10(norms)]
    colours = [(31, 119, 180)]
    if reference is not None:
        series.insert(0, log10(reference))
        colours.insert(0, (190, 190, 190))
    curve = images.line_plot(series, colours=colours)
    history_image = images.heatmap(log10(history), colormap="viridis")
    return curve, history_image


def write_gradient_over_time(trace, history, reference, step, loss_at, describe):
    """The views of ∂L/∂h_t for one layer trace (with `gradient_norms`)."""
    prefix = f"gradient_over_time/{trace.name}"
    loss_text = (
        "the loss at the last time step" if loss_at == "last" else "the loss over every time step"
    )
    what = (
        f"log10 ‖∂L/∂h_t‖ (Frobenius norm over batch and units) for each time step t, "
        f"L = {loss_text}. {PROBE_NOTE}"
    )
    curve, history_image = gradient_over_time_images(trace.gradient_norms, history, reference)
    tf.summary.image(
        f"{prefix}/curve",
        images.summary_image(curve),
        step=step,
        description=describe(
            f"{prefix}/curve",
            f"{what} Blue: this step; grey: the first logged step. x: t, y: log10 norm.",
        ),
    )
    tf.summary.image(
        f"{prefix}/history",
        images.summary_image(history_image),
        step=step,
        description=describe(
            f"{prefix}/history",
            (
                f"{what} Rows: logged training steps, oldest at the top; columns: t. "
                "Grey: a gradient of exactly 0 (underflow)."
            ),
        ),
    )
    first, last = log10(trace.gradient_norms[[0, -1]])
    ratio = first - last
    if np.isfinite(ratio):
        tag = f"{prefix}/log10_first_over_last"
        tf.summary.scalar(
            tag,
            ratio,
            step=step,
            description=describe(
                tag,
                (
                    "log10(‖∂L/∂h_0‖ / ‖∂L/∂h_T‖): very negative = vanishing, "
                    f"positive = exploding. {PROBE_NOTE}"
                ),
            ),
        )


def saturation_thresholds(values):
    """(left, right) thresholds for a gate's values.

    A gate in [0, 1] (sigmoid) uses 0.1 and 0.9. A gate that goes below 0 on
    the probe batch is taken to range over [-1, 1] (tanh, like the LSTM's
    candidate g) and uses the same points mapped onto that range, -0.8 and 0.8.
    """
    if np.min(values) < 0:
        return 2 * LEFT_SATURATED - 1, 2 * RIGHT_SATURATED - 1
    return LEFT_SATURATED, RIGHT_SATURATED


def saturation(values):
    """(fraction left-saturated, fraction right-saturated) of a gate's activations."""
    values = np.asarray(values)
    left, right = saturation_thresholds(values)
    return float(np.mean(values < left)), float(np.mean(values > right))


def write_gates(trace, step, describe):
    """Histograms of each gate the cell reports, and its saturated fractions."""
    for gate, values in trace.gates.items():
        tag = f"gates/{trace.name}/{gate}"
        tf.summary.histogram(
            tag,
            values,
            step=step,
            description=describe(
                tag, f"Activations of gate {gate} over batch, time and units. {PROBE_NOTE}"
            ),
        )
        left, right = saturation(values)
        low, high = saturation_thresholds(values)
        for side, fraction, text in (("left", left, f"< {low:g}"), ("right", right, f"> {high:g}")):
            tag = f"gate_saturation/{trace.name}/{gate}_{side}"
            tf.summary.scalar(
                tag,
                fraction,
                step=step,
                description=describe(
                    tag,
                    (
                        f"Fraction of gate {gate}'s activations {text} "
                        f"(Karpathy et al. 2015). {PROBE_NOTE}"
                    ),
                ),
            )


def activation_image(values):
    """A (time, units) activation matrix as an image: rows = units, columns = time."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    bound = float(np.max(np.abs(finite))) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    return images.heatmap(values.T, vmin=-bound, vmax=bound, colormap="diverging")


def write_activations(trace, step, describe, example=0):
    """Images of each state of one probe sequence: units down, time across."""
    for state, values in trace.states.items():
        tag = f"activations/{trace.name}/{state}"
        tf.summary.image(
            tag,
            images.summary_image(activation_image(values[example])),
            step=step,
            description=describe(
                tag,
                (
                    f"State {state} of probe sequence {example}: one row per unit, "
                    f"one column per time step; blue < 0 < red. {PROBE_NOTE}"
                ),
            ),
        )
