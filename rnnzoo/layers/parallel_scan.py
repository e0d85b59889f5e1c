"""The layers' parallel scan over time, for cells whose recurrence is linear in h.

A cell that can compute a whole sequence at once says so with a `scan`
method (minGRU and minLSTM, `rnnzoo.cells.minimal`):

    cell.scan(sequences, initial_states, mask=None) -> (outputs, final_states)

`sequences` (batch, time, features) in the order to process them, already
dropped out; `outputs` (batch, time, units), h at every step; a masked step
(mask False) keeps the states. `RecurrentLayer.inner_loop` calls `run`
wherever `reason` gives none, in place of any loop over time: no sequence
loop runs, forward or backward. What is the layer's and not the cell's
lives here, as in Keras's loop: input dropout (the cell's one mask per
sequence), `go_backwards`, the outputs of masked steps (the last unmasked
output, zeros before the first, or zeros with `zero_output_for_mask`), and
the (batch, 1, units) outputs without `return_sequences`.

The results equal the cell in `keras.layers.RNN` up to float rounding,
gradients included (tests/layers/test_parallel_scan.py).

With `fast="auto"` a layer on JAX's CPU backend runs Keras's loop over the
cell instead: there JAX's associative scan, a tree of strided slices over
time, trained 0.56-0.79x and inferred 0.30-0.77x as fast as the cell stepped
by Keras's loop (`benchmarks/scan_or_loop.py`; README, "The parallel scan or
Keras's loop"); a scan pays where many lanes run side by side. `fast=True`
runs the scan anyway.
"""

import keras
from keras import ops


def reason(layer, mask=None):
    """Why `run` can't stand in for the layer's loop on this call, or None."""
    cell = layer.cell
    if not callable(getattr(cell, "scan", None)):
        return f"{type(cell).__name__} has no parallel scan"
    if layer.fast is False:
        return "fast=False"
    if layer.unroll:
        return "unroll=True asks for Keras's unrolled loop"
    if layer.fast == "auto" and _on_jax_cpu():
        return (
            "on JAX's CPU backend Keras's loop over the cell runs faster than the parallel scan "
            "(fast=True runs the scan)"
        )
    return None


def _on_jax_cpu():
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


def run(layer, sequences, initial_state, mask=None, training=False):
    """`keras.layers.RNN.inner_loop` as one parallel scan: -> (last_output, outputs, states)."""
    cell = layer.cell
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    if training and cell.dropout > 0:
        sequences = sequences * ops.expand_dims(cell.get_dropout_mask(sequences[:, 0, :]), 1)
    if mask is not None:
        mask = ops.cast(mask, "bool")
    if layer.go_backwards:
        sequences = ops.flip(sequences, axis=1)
        mask = None if mask is None else ops.flip(mask, axis=1)
    outputs, states = cell.scan(sequences, list(initial_state), mask=mask)
    if mask is not None:
        # Keras's loop outputs the previous output at a masked step (zeros before any).
        shown = mask if layer.zero_output_for_mask else ops.cumsum(ops.cast(mask, "int32"), 1) > 0
        outputs = ops.where(ops.expand_dims(shown, -1), outputs, ops.zeros_like(outputs))
    last_output = outputs[:, -1]
    if not layer.return_sequences:
        outputs = ops.expand_dims(last_output, 1)
    return last_output, outputs, states
