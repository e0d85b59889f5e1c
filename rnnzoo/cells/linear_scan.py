r"""A linear recurrence over a whole sequence at once: a parallel prefix scan over time.

    h_t = a_t * h_{t-1} + b_t,   t = 1..T, h_0 given, * elementwise

is what minGRU and minLSTM reduce to (their gates read x_t only), and its
steps compose: two consecutive steps (a, b) then (a', b') are one step
(a' a, a' b + b'). `linear_recurrence` evaluates it as a parallel prefix
scan of that combination, with no loop over time: Blelloch's tree
(`_tree_scan`: pair up the steps, scan the pairs, fill in; about 2T
combinations over ceil(log2 T) levels of elementwise ops) where the number
of steps is known when the graph is built, else Hillis & Steele's doubling
rounds (`_doubling_scan`: each step combines with the one 1, 2, 4, ...
steps before it; T log2 T combinations).

The gradient is the same kind of scan, run backwards: with g_t the loss's
gradient with respect to h_t, lambda_t = g_t + a_{t+1} lambda_{t+1} is its
gradient with respect to h_t through every later step, and then
dL/db_t = lambda_t, dL/da_t = lambda_t h_{t-1}, dL/dh_0 = a_1 lambda_1. On
TensorFlow this is a custom gradient (autodiff of the rounds' slices and
concatenations measured ~10x slower than the forward pass); on other
backends `keras.ops.associative_scan` runs the same combination and its
gradient comes from autodiff.

Why products and not logarithms. Feng et al. write their scan in log space
(Heinsen 2023: log h_t = a*_t + logcumsumexp(log b - a*)_t, a* the cumulative
sum of log a_t), which needs b_t > 0 and a stable logcumsumexp. Here it is
not needed: 0 < a_t <= 1, so the running products only shrink (an underflow
to 0 is a factor below 1e-38 of a value that is then negligible), every
b_t > 0 (their g keeps the candidate positive), so the sums never cancel,
and nothing is divided or exponentiated. TensorFlow's logcumsumexp kernel
was also the slow part of that formulation on the benchmark's shape (its
forward and gradient took longer than Keras's whole loop). h_0 enters
linearly, as a_1 h_0 added to b_1, so any initial state works (zeros, or a
carried state of either sign), where log h_0 needs h_0 > 0.
"""

import keras
from keras import ops


def linear_recurrence(a, b, h0):
    """h_t = a_t * h_{t-1} + b_t for every t: a, b (batch, time, units), h0 (batch, units).

    Returns h (batch, time, units).
    """
    if keras.backend.backend() == "tensorflow":
        return _tensorflow_recurrence(a, b, h0)
    if not isinstance(a.shape[1], int):
        return _step_by_step(a, b, h0)
    b = ops.concatenate([b[:, :1] + a[:, :1] * h0[:, None], b[:, 1:]], axis=1)

    def combine(earlier, later):
        (a1, b1), (a2, b2) = earlier, later
        return a2 * a1, a2 * b1 + b2

    return ops.associative_scan(combine, (a, b), axis=1)[1]


def _step_by_step(a, b, h0):
    """`linear_recurrence` one step at a time (`keras.ops.scan`), for a number of steps that
    is a symbol, not a number: JAX's associative scan needs the length (an export of a
    model for sequences of any length traces it so, e.g. Keras's ONNX export on JAX)."""

    def step(h_prev, a_b):
        a_t, b_t = a_b
        h = a_t * h_prev + b_t
        return h, h

    _, h = ops.scan(step, h0, (ops.moveaxis(a, 1, 0), ops.moveaxis(b, 1, 0)))
    return ops.moveaxis(h, 0, 1)


def gated_recurrence(k, h0, coefficients, coefficients_gradient, mask=None):
    """h from gate pre-activations k (batch, time, width): (a, b) = `coefficients(k)`, then
    `linear_recurrence`; a step where `mask` (batch, time) is False keeps h (a = 1, b = 0).

    `coefficients(k)` -> (a_t, b_t, saved); `coefficients_gradient(k, a, saved, d_a, d_b)`
    -> d_k, its hand-written derivative. On TensorFlow the whole of it, k -> h, has one
    gradient: the backward scan, then `coefficients_gradient` (autodiff of the
    gates' dozen elementwise ops over the whole sequence cost as much as the scan).
    """
    keep = None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), -1)
    if keras.backend.backend() != "tensorflow":
        a, b, _ = coefficients(k)
        if keep is not None:
            a, b = ops.where(keep, a, ops.ones_like(a)), ops.where(keep, b, ops.zeros_like(b))
        return linear_recurrence(a, b, h0)
    import tensorflow as tf

    @tf.custom_gradient
    def recurrence(k, h0):
        a, b, saved = coefficients(k)
        if keep is not None:
            a, b = tf.where(keep, a, tf.ones_like(a)), tf.where(keep, b, tf.zeros_like(b))
        h = _scan(tf, a, _with_h0(tf, a, b, h0))

        def gradient(d_h):
            d_a, d_b, d_h0 = _backward(tf, a, h, h0, d_h)
            if keep is not None:
                d_a, d_b = tf.where(keep, d_a, tf.zeros_like(d_a)), tf.where(keep, d_b, 0.0)
            return coefficients_gradient(k, a, saved, d_a, d_b), d_h0

        return h, gradient

    return recurrence(k, h0)


def _tensorflow_recurrence(a, b, h0):
    import tensorflow as tf

    @tf.custom_gradient
    def recurrence(a, b, h0):
        h = _scan(tf, a, _with_h0(tf, a, b, h0))
        return h, lambda d_h: _backward(tf, a, h, h0, d_h)

    return recurrence(a, b, h0)


def _with_h0(tf, a, b, h0):
    """b with a_1 h_0 added to its first step, so the scan can start from zeros."""
    return tf.concat([b[:, :1] + a[:, :1] * h0[:, None], b[:, 1:]], axis=1)


def _backward(tf, a, h, h0, d_h):
    """The recurrence's gradients -> (d_a, d_b, d_h0), from those of its outputs d_h.

    lambda_t = d_h_t + a_{t+1} lambda_{t+1} (the same scan, from the end) is the
    gradient with respect to h_t through every later step; d_b = lambda,
    d_a_t = lambda_t h_{t-1}, d_h0 = a_1 lambda_1.
    """
    a_next = tf.concat([a[:, 1:], tf.ones_like(a[:, :1])], axis=1)
    d_b = tf.reverse(_scan(tf, tf.reverse(a_next, [1]), tf.reverse(d_h, [1])), [1])
    h_prev = tf.concat([h0[:, None], h[:, :-1]], axis=1)
    return d_b * h_prev, d_b, a[:, 0] * d_b[:, 0]


def _scan(tf, a, b):
    """h_t = a_t h_{t-1} + b_t from h_0 = 0, along axis 1: the tree where the length is known
    when the graph is built, else the doubling rounds."""
    if b.shape[1] is None:
        return _doubling_scan(tf, a, b)
    return _tree_scan(tf, a, b)


def _tree_scan(tf, a, b):
    """Blelloch's work-efficient scan: pair the steps (2i, 2i+1) into one, scan the T/2
    pairs the same way, then fill in the even steps from the odd ones before them.

    About 2T combinations in all (the doubling rounds make T log2 T) over
    ceil(log2 T) levels; each level is a few elementwise ops on halves of the
    sequence, no loop over time. Measured on the benchmark's (64, 100, 256),
    forward and backward: 31 ms, against 71 ms for the doubling rounds.
    """
    length = b.shape[1]
    if length == 1:
        return b
    if length % 2:  # one identity step (a = 1, b = 0) at the end pairs the last step
        a = tf.concat([a, tf.ones_like(a[:, :1])], axis=1)
        b = tf.concat([b, tf.zeros_like(b[:, :1])], axis=1)
    pairs = [-1, (length + 1) // 2, 2, b.shape[-1]]
    a, b = tf.reshape(a, pairs), tf.reshape(b, pairs)
    a_even, a_odd, b_even, b_odd = a[:, :, 0], a[:, :, 1], b[:, :, 0], b[:, :, 1]
    h_odd = _tree_scan(tf, a_odd * a_even, a_odd * b_even + b_odd)
    h_even = tf.concat([b_even[:, :1], a_even[:, 1:] * h_odd[:, :-1] + b_even[:, 1:]], axis=1)
    h = tf.stack([h_even, h_odd], axis=2)
    h = tf.reshape(h, [-1, 2 * ((length + 1) // 2), b.shape[-1]])
    return h[:, :length]


def _doubling_scan(tf, a, b):
    """Hillis & Steele's scan, for a length known only at run time: every step combines
    with the one 1, 2, 4, ... steps before it, ceil(log2 T) rounds of a `tf.while_loop`
    (a loop over rounds, not over time)."""
    length = tf.shape(b)[1]

    def body(shift, a, b):
        new_b = tf.concat([b[:, :shift], a[:, shift:] * b[:, :-shift] + b[:, shift:]], axis=1)
        new_a = tf.concat([a[:, :shift], a[:, shift:] * a[:, :-shift]], axis=1)
        new_a.set_shape(a.shape)
        new_b.set_shape(b.shape)
        return shift * 2, new_a, new_b

    _, _, b = tf.while_loop(lambda shift, a, b: shift < length, body, (tf.constant(1), a, b))
    return b
