r"""A linear recurrence over a whole sequence at once: a parallel prefix scan over time.

    h_t = a_t * h_{t-1} + b_t,   t = 1..T, h_0 given, * elementwise

is what minGRU and minLSTM reduce to (their gates read x_t only), and its
steps compose: two consecutive steps (a, b) then (a', b') are one step
(a' a, a' b + b'). `linear_recurrence` combines every step with the one
1, 2, 4, ... steps before it (Hillis & Steele's scan): after ceil(log2 T)
rounds of elementwise products over the whole sequence, step t holds
h_t. No loop over time.

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
not needed: 0 < a_t < 1, so the running products only shrink (an underflow
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
    """h_t = a_t * h_{t-1} + b_t for every t: a, b (time, batch, units), h0 (batch, units).

    Returns h (time, batch, units), time-major as the inputs.
    """
    if keras.backend.backend() == "tensorflow":
        return _tensorflow_recurrence(a, b, h0)
    b = ops.concatenate([b[:1] + a[:1] * h0[None], b[1:]], axis=0)

    def combine(earlier, later):
        (a1, b1), (a2, b2) = earlier, later
        return a2 * a1, a2 * b1 + b2

    return ops.associative_scan(combine, (a, b), axis=0)[1]


def _tensorflow_recurrence(a, b, h0):
    import tensorflow as tf

    @tf.custom_gradient
    def recurrence(a, b, h0):
        h = _prefix_scan(tf, a, tf.concat([b[:1] + a[:1] * h0[None], b[1:]], axis=0))

        def gradient(d_h):
            a_next = tf.concat([a[1:], tf.zeros_like(a[:1])], axis=0)
            d_b = _suffix_scan(tf, a_next, d_h)  # lambda_t
            h_prev = tf.concat([h0[None], h[:-1]], axis=0)
            return d_b * h_prev, d_b, a[0] * d_b[0]

        return h, gradient

    return recurrence(a, b, h0)


def _prefix_scan(tf, a, b):
    """B_t = sum_{k <= t} (a_{k+1} ... a_t) b_k, by doubling shifts along axis 0."""

    def double(shift, a, b):
        b = tf.concat([b[:shift], a[shift:] * b[:-shift] + b[shift:]], axis=0)
        a = tf.concat([a[:shift], a[shift:] * a[:-shift]], axis=0)
        return a, b

    return _rounds(tf, double, a, b)


def _suffix_scan(tf, c, g):
    """L_t = sum_{k >= t} (c_t ... c_{k-1}) g_k: `_prefix_scan` run from the end."""

    def double(shift, c, g):
        g = tf.concat([c[:-shift] * g[shift:] + g[:-shift], g[-shift:]], axis=0)
        c = tf.concat([c[:-shift] * c[shift:], c[-shift:]], axis=0)
        return c, g

    return _rounds(tf, double, c, g)


def _rounds(tf, double, a, b):
    """`a, b = double(shift, a, b)` for shift = 1, 2, 4, ... below the length; -> b.

    A loop over the ceil(log2 T) rounds, not over time: T may be unknown
    until the call (a Keras model's `None` time axis).
    """
    length = tf.shape(b)[0]

    def body(shift, a, b):
        new_a, new_b = double(shift, a, b)
        new_a.set_shape(a.shape)
        new_b.set_shape(b.shape)
        return shift * 2, new_a, new_b

    _, _, b = tf.while_loop(lambda shift, a, b: shift < length, body, (tf.constant(1), a, b))
    return b
