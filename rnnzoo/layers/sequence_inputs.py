"""What both fast loops (`fast_loop` on TensorFlow, `jax_loop` on JAX) take from a layer's call.

`prepare` turns `keras.layers.RNN.inner_loop`'s arguments into the flat list of arrays the
loops' whole-sequence functions differentiate (time-major inputs, the cell's weights in the
compute dtype, the initial states, the pointwise parameters, the masks) and the `Spec` that
says what is in it; `finish` turns the loop's results back into what `inner_loop` returns.
Written with `keras.ops`, so the two loops share it.
"""

import dataclasses

from keras import ops


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a loop's sequence function takes besides x, W and U, and what it returns."""

    return_sequences: bool
    state_count: int
    has_biases: tuple  # (input bias, recurrent bias)
    parameter_count: int
    masked: bool  # a (T, B, 1) mask follows the parameters
    zero_output_for_mask: bool
    recurrent_dropout: bool  # a (B, width of h) mask of h_{t-1} follows
    additive: bool  # z = x W + b + h U ("sum"), else the pair (x W + b, h U + b_h)


def prepare(layer, sequences, initial_state, mask=None, training=False):
    """-> (spec, x (T, B, features), [W, U, b?, b_h?, *states, *parameters, mask?, dropout?]).

    The input dropout (one mask per sequence, the cell's own) is applied to x;
    `go_backwards` reverses x and the mask.
    """
    cell = layer.cell
    dtype = cell.compute_dtype
    x = ops.cast(sequences, dtype)
    if training and cell.dropout > 0:
        x = x * ops.expand_dims(ops.cast(cell.get_dropout_mask(sequences[:, 0, :]), dtype), 1)
    x = ops.transpose(x, (1, 0, 2))
    if mask is not None:
        mask = ops.expand_dims(ops.transpose(ops.cast(mask, dtype), (1, 0)), -1)
    if layer.go_backwards:
        x = ops.flip(x, axis=0)
        mask = None if mask is None else ops.flip(mask, axis=0)
    biases = [_cast(cell.input_bias(), dtype), _cast(cell.recurrent_bias(), dtype)]
    arrays = [ops.cast(cell.kernel, dtype), ops.cast(cell.recurrent_projection_kernel(), dtype)]
    arrays += [b for b in biases if b is not None]
    states = [ops.cast(state, dtype) for state in initial_state]
    parameters = [ops.cast(p, dtype) for p in cell.pointwise_parameters()]
    dropping = bool(training and cell.recurrent_dropout > 0)
    if dropping:
        recurrent_mask = ops.cast(cell.get_recurrent_dropout_mask(states[0]), dtype)
        parameters += cell.recurrent_dropout_parameters(recurrent_mask)
    arrays += [*states, *parameters]
    if mask is not None:
        arrays.append(mask)
    if dropping:
        arrays.append(recurrent_mask)
    spec = Spec(
        return_sequences=layer.return_sequences,
        state_count=len(states),
        has_biases=tuple(b is not None for b in biases),
        parameter_count=len(parameters),
        masked=mask is not None,
        zero_output_for_mask=layer.zero_output_for_mask,
        recurrent_dropout=dropping,
        additive=cell.projection == "sum",
    )
    return spec, x, arrays


def unpack(spec, arrays):
    """`prepare`'s arrays (after x) by name: (W, U, b, b_h, states, parameters, mask,
    recurrent dropout mask), None for those absent."""
    arrays = list(arrays)
    kernel, recurrent_kernel = arrays.pop(0), arrays.pop(0)
    bias, recurrent_bias = [arrays.pop(0) if has else None for has in spec.has_biases]
    states = arrays[: spec.state_count]
    parameters = arrays[spec.state_count : spec.state_count + spec.parameter_count]
    extras = arrays[spec.state_count + spec.parameter_count :]
    mask = extras.pop(0) if spec.masked else None
    recurrent_mask = extras.pop(0) if spec.recurrent_dropout else None
    return kernel, recurrent_kernel, bias, recurrent_bias, states, parameters, mask, recurrent_mask


def finish(spec, first, final_states):
    """`inner_loop`'s `(last_output, outputs, states)` from a loop's results: `first` is the
    outputs (T, B, units) with `return_sequences`, else the last output (B, units)."""
    if spec.return_sequences:
        outputs = ops.transpose(first, (1, 0, 2))
        return outputs[:, -1], outputs, list(final_states)
    return first, ops.expand_dims(first, 1), list(final_states)


def _cast(value, dtype):
    return None if value is None else ops.cast(value, dtype)
