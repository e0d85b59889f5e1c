"""Look inside a model's recurrent layers on a probe batch: h_t, c_t, gates and ∂L/∂h_t.

`keras.layers.RNN` runs its loop in one op and keeps nothing of the steps. To
see them, `recording(model)` makes every steppable recurrent layer of `model`
(a `keras.layers.RNN` whose cell answers `gate_names` and
`step(inputs, states, training) -> (output, new_states, gates)`, as every
rnnzoo cell does) run its sequence one `cell.step` per time step and keep
what each step returned. The steps run as one TensorFlow graph loop
(`tf.while_loop`, traced once per layer and input shape), so a 20,000-step
text takes seconds; in training mode (dropout on) they run eagerly, because
the cell keeps its per-sequence dropout masks between steps. Gates are
found by asking the cell, never by checking its class, so a new cell that
implements `step` is seen too.

For the gradient through time, a zero "probe" tensor p_t is added to each
step's output h_t (which rnnzoo cells also carry as their state `h`):

    h'_t = h_t + p_t,    p_t = 0,    so    ∂L/∂p_t = ∂L/∂h_t

the total derivative of the loss with respect to h_t, through every later
step, which is what vanishes or explodes as t moves away from the loss.

How the model is run: the layers' `call` is swapped for the unroll only
inside the `with recording(...)` block, and the model is then called as
usual, so Sequential, functional and subclassed models all work, as do
rnnzoo layers inside `keras.layers.Bidirectional` (the backward layer's
records are put back in input order) and layers used several times (one
record per call). The unroll honours `return_sequences`, `return_state`,
`go_backwards`, `initial_state` and masks; it starts from zero states even
for `stateful` layers and leaves their stored states alone. Cells wrapped in
`keras.layers.StackedRNNCells` are not seen (wrap each in its own layer).
"""

import contextlib
import dataclasses
import functools
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

LOSS_AT = ("last", "every")


def is_steppable(layer):
    """True for a `keras.layers.RNN` whose cell answers `gate_names` and `step`."""
    cell = getattr(layer, "cell", None)
    return (
        isinstance(layer, keras.layers.RNN)
        and callable(getattr(cell, "step", None))
        and hasattr(cell, "gate_names")
    )


def recurrent_layers(model):
    """The steppable recurrent layers in `model`, outermost first, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False) if is_steppable(layer)]


@dataclasses.dataclass
class LayerTrace:
    """What one call of one recurrent layer did on the probe batch.

    Arrays are (batch, time, units), time in input order.

    Attributes:
        name: The layer's name (with "/call_<n>" for its n-th call after the first).
        state_names: The cell's state names, e.g. ("h", "c").
        gate_names: The cell's gate names, e.g. ("i", "f", "g", "o").
        states: State name -> the state after each step.
        gates: Gate name -> the gate's activation at each step.
        gradient_norms: (time,) ‖∂L/∂h_t‖, the Frobenius norm over the batch
            and the units, or None when no loss was given.
    """

    name: str
    state_names: tuple
    gate_names: tuple
    states: dict
    gates: dict
    gradient_norms: object = None

    @property
    def steps(self):
        return next(iter(self.states.values())).shape[1]


class _Recorder:
    """The step-by-step values of one layer call, each stacked (time, batch, ...) in loop order."""

    def __init__(self, name, cell, backwards):
        self.name = name
        self.state_names = tuple(getattr(cell, "state_names", ()))
        self.gate_names = tuple(cell.gate_names)
        self.backwards = backwards
        self.states = []
        self.gates = {}
        self.probes = None

    def trace(self, gradients=None):
        """The numpy `LayerTrace`, with ∂L/∂h_t from `gradients` (∂L/∂probes) if given."""
        order = slice(None, None, -1) if self.backwards else slice(None)

        def in_input_order(value):
            return np.swapaxes(ops.convert_to_numpy(value), 0, 1)[:, order]

        state_names = self.state_names or tuple(f"state_{i}" for i in range(len(self.states)))
        states = {name: in_input_order(s) for name, s in zip(state_names, self.states)}
        gates = {
            name: in_input_order(self.gates[name]) for name in self.gate_names if name in self.gates
        }
        norms = None
        if gradients is not None:
            norms = ops.convert_to_numpy(tf.norm(gradients, axis=[1, 2]))[order]
        return LayerTrace(self.name, state_names, self.gate_names, states, gates, norms)


@contextlib.contextmanager
def recording(model, tape=None):
    """While active, `model`'s recurrent layers unroll step by step and record.

    Yields the list that each layer call appends its recorder to. With a
    `tf.GradientTape`, a watched zero probe is added to every h_t (see the
    module docstring).
    """
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(
            f"Expected {model.name!r} to contain a keras.layers.RNN whose cell has "
            "`gate_names` and `step()` (any rnnzoo layer or cell), found none. "
            "Build the model from rnnzoo.layers or rnnzoo.cells."
        )
    recorders = []
    calls = {}
    try:
        for layer in layers:
            unroll = functools.partial(_unroll, layer, recorders, calls, tape)
            # An instance attribute shadows the class's `call`; Keras's
            # `Layer.__call__` looks `self.call` up on every call.
            object.__setattr__(layer, "call", unroll)
        yield recorders
    finally:
        for layer in layers:
            layer.__dict__.pop("call", None)


def _unroll(
    layer, recorders, calls, tape, sequences, initial_state=None, mask=None, training=False
):
    """`keras.layers.RNN.call`, one `cell.step` at a time, recording every step."""
    cell = layer.cell
    steps = sequences.shape[1]
    if steps is None:
        raise ValueError(
            f"Layer {layer.name!r} received sequences of unknown length (shape "
            f"{tuple(sequences.shape)}); the probe records every step and needs a "
            "concrete batch: call it eagerly on real data."
        )
    batch_size = ops.shape(sequences)[0]
    if initial_state is None:
        states = layer.get_initial_state(batch_size)
    else:
        states = initial_state
    states = [ops.convert_to_tensor(s, dtype=cell.compute_dtype) for s in _as_list(states)]
    count = calls.get(layer.name, 0)
    calls[layer.name] = count + 1
    name = layer.name if count == 0 else f"{layer.name}/call_{count}"
    recorder = _Recorder(name, cell, layer.go_backwards)
    recorders.append(recorder)

    # Time-major, in the order the loop visits the steps.
    inputs = _time_major(sequences)
    keep = None
    if mask is not None:
        keep = ops.expand_dims(ops.cast(_time_major(mask), "bool"), -1)
    if layer.go_backwards:
        inputs = tf.reverse(inputs, [0])
        keep = None if keep is None else tf.reverse(keep, [0])
    if tape is not None:
        recorder.probes = tf.zeros((steps, batch_size, cell.output_size), cell.compute_dtype)
        tape.watch(recorder.probes)
    # Without dropout the loop runs as one TensorFlow graph (seconds for a long
    # text, where a Python loop of eager steps takes minutes); in training the
    # cell draws and keeps its dropout masks, which must stay eager tensors.
    loop = functools.partial(_run_steps, cell) if training else _graph_loop(layer)
    outputs, states, recorder.states, recorder.gates = loop(
        inputs, states, recorder.probes, keep, layer.zero_output_for_mask, training
    )
    if training:
        # As keras.layers.RNN does after its loop: next call draws new masks.
        for reset in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
            getattr(cell, reset, lambda: None)()

    result = _time_major(outputs) if layer.return_sequences else outputs[-1]
    if layer.return_state:
        return (result, *states)
    return result


def _time_major(x):
    """(batch, time, ...) <-> (time, batch, ...)."""
    return tf.transpose(x, [1, 0, *range(2, len(x.shape))])


_graph_loops = weakref.WeakKeyDictionary()


def _graph_loop(layer):
    """`_run_steps` compiled with `tf.function`, one per layer (traced once per input signature)."""
    if layer not in _graph_loops:
        _graph_loops[layer] = tf.function(
            functools.partial(_run_steps, layer.cell), autograph=False
        )
    return _graph_loops[layer]


def _run_steps(cell, inputs, states, probes, keep, zero_output_for_mask, training):
    """Run `cell.step` over time-major `inputs`; keep each step's output, states and gates.

    With `probes` (time, batch, units), step t's output h_t becomes h_t + probes[t]
    (also where it is carried as a state). With `keep` (time, batch, 1), a
    masked step carries the states through and outputs zeros, or the previous
    output when not `zero_output_for_mask`, as `keras.layers.RNN` does.

    Returns:
        `(outputs, states, per-step states, per-step gates)`: the outputs
        stacked (time, batch, units), the final states, and each state and
        gate stacked the same way.
    """
    steps = inputs.shape[0]

    def step(t, states, previous_output):
        output, new_states, gates = cell.step(inputs[t], states, training=training)
        new_states = _as_list(new_states)
        if probes is not None:
            probed = output + probes[t]
            new_states = [probed if state is output else state for state in new_states]
            output = probed
        if keep is not None:
            kept_output = ops.zeros_like(output) if zero_output_for_mask else previous_output
            output = ops.where(keep[t], output, kept_output)
            new_states = [ops.where(keep[t], new, old) for new, old in zip(new_states, states)]
        return output, new_states, dict(gates)

    output, states, gates = step(0, states, _zero_output(cell, states))
    records = tf.nest.map_structure(
        lambda value: tf.TensorArray(value.dtype, steps, element_shape=value.shape).write(0, value),
        (output, states, gates),
    )

    def body(t, states, previous_output, records):
        output, states, gates = step(t, states, previous_output)
        records = tf.nest.map_structure(
            lambda array, value: array.write(t, value), records, (output, states, gates)
        )
        return t + 1, states, output, records

    _, states, _, records = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(1), states, output, records)
    )
    outputs, per_step_states, per_step_gates = tf.nest.map_structure(
        lambda array: array.stack(), records
    )
    return outputs, states, per_step_states, per_step_gates


def _zero_output(cell, states):
    return ops.zeros((ops.shape(states[0])[0], cell.output_size), cell.compute_dtype)


def _as_list(states):
    return list(states) if isinstance(states, (list, tuple)) else [states]


def resolve_loss(model, loss_fn=None):
    """The loss function the probe uses: `loss_fn`, else the model's compiled single loss."""
    loss = loss_fn if loss_fn is not None else getattr(model, "loss", None)
    if isinstance(loss, str):
        return keras.losses.get(loss)
    if callable(loss):
        return loss
    if loss is None:
        raise ValueError(
            f"The probe needs a loss; model {model.name!r} was not compiled with one "
            "and no `loss_fn` was given. Compile the model first or pass "
            "loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True) (for example)."
        )
    raise ValueError(
        f"The probe takes a single loss function; model {model.name!r} has "
        f"loss={loss!r}. Pass `loss_fn` for the output to probe."
    )


def is_per_step(targets, predictions):
    """True when predictions are (batch, time, ...) and the targets share that time axis."""
    return (
        len(predictions.shape) >= 3
        and len(targets.shape) >= 2
        and targets.shape[1] == predictions.shape[1]
    )


def probe_loss(loss_fn, targets, predictions, loss_at="last"):
    """The mean loss over the probe batch, at the last time step or at every one.

    With `loss_at="last"` and a per-step output (`is_per_step`), only the last
    step's prediction and target count; an output with one prediction per
    sequence is already "at the last step". With `"every"`, the loss is the
    model's loss over all outputs.
    """
    if loss_at not in LOSS_AT:
        raise ValueError(f"Expected loss_at to be one of {LOSS_AT}, received {loss_at!r}.")
    targets = ops.convert_to_tensor(targets)
    if loss_at == "last" and is_per_step(targets, predictions):
        targets, predictions = targets[:, -1], predictions[:, -1]
    return ops.mean(loss_fn(targets, predictions))


def probe(model, inputs, targets=None, loss_fn=None, loss_at="last", training=False):
    """Run `model` on `inputs`, unrolling its recurrent layers, and return their traces.

    With `targets`, also computes the loss (see `probe_loss`) and ‖∂L/∂h_t‖
    for every recurrent layer and time step.

    Args:
        model: A `keras.Model` containing rnnzoo recurrent layers.
        inputs: The probe batch's inputs (arrays or tensors, concrete shapes).
        targets: Its targets, or None for a forward pass only.
        loss_fn: Loss function `(targets, predictions) -> loss`; default the
            model's compiled loss.
        loss_at: "last" (default) or "every", see `probe_loss`.
        training: Run the layers in training mode (dropout on); default False,
            so the same probe batch gives comparable numbers over training.

    Returns:
        `(traces, loss)`: a list of `LayerTrace`, one per layer call in call
        order, and the loss as a float (None without targets).
    """
    if targets is None:
        with recording(model) as recorders:
            model(inputs, training=training)
        return [recorder.trace() for recorder in recorders], None
    loss_fn = resolve_loss(model, loss_fn)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        with recording(model, tape) as recorders:
            predictions = model(inputs, training=training)
        loss = probe_loss(loss_fn, targets, predictions, loss_at)
    probes = [recorder.probes for recorder in recorders]
    gradients = tape.gradient(loss, probes, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    traces = [recorder.trace(grads) for recorder, grads in zip(recorders, gradients)]
    return traces, float(loss)
