r"""Generating text from a char LM, one token at a time, compiled with XLA.

A char LM (`rnnzoo.models.build_char_lm`, or any `keras.Sequential` chain of
`Embedding` | `OneHot` -> rnnzoo recurrent layers and `Dropout` -> `Dense`
logits) defines p(id_{t+1} | id_1..id_t). Generation feeds each sampled id
back in:

    states = prime(id_1 .. id_{P-1})                 zero states, then the prime
    token = id_P
    repeat length times:
        logits, states = step(token, states)         the cells, stepped directly
        token ~ softmax(logits / temperature)        (top_k: among the k best)
        emit token

`temperature == 0` is greedy decoding (argmax); `top_k > 0` samples among the
k most likely ids only. Beam search keeps the `beam_width` partial sequences
with the highest total log-probability sum_t log p(id_t | id_<t), stepping all
of them as one batch.

Why not `model.predict` per character: that reruns Keras's input handling and
the whole prefix every step (tens of chars/s; see
`benchmarks/charlm_generation.py`). Here the prime and the whole generation
loop are one `tf.function(jit_compile=True)` around two `tf.while_loop`s, so
a step costs a few small fused XLA kernels. Where every cell's step is its
projection then its `pointwise` part (all the zoo's cells but the GRU with
`reset_after=False`), the step is `_FusedStep`: the embedding is folded into the
first cell's input projection (one (vocab, gates * units) table, looked up
per step), and the step's matrix products are made together, as one batched
matmul that XLA spreads over the CPU's threads. Other models are stepped
through their cells' `call` (`_CellStep`). The compiled function is kept per
model and reads the model's variables, so it follows later weight updates
(sampling during training needs no recompilation); it is compiled again only
for a new batch size, mode (greedy or sampling), `top_k`, or a prime or
length past its power-of-two bucket.

Randomness is stateless: one `tf.random.stateless_uniform` call draws every
step's uniform number from the seed, so the same seed gives the same ids in
any process (on the same TensorFlow build and device), and a shorter call's
ids are a prefix of a longer one's.

The prime must hold at least one id: a char LM predicts the next id *from* an
id, and there is no id to start from otherwise (char-rnn primes with a
character too). Prime with, say, the id of "\n" to start "from nothing".
"""

import secrets
import weakref

import keras
import numpy as np
import tensorflow as tf

from rnnzoo.layers.base import RecurrentLayer
from rnnzoo.models.charlm import OneHot, check_int


def generate(model, prime_ids, length, *, temperature=1.0, top_k=0, num_samples=1, seed=None):
    """Sample `length` ids after `prime_ids`, feeding each sample back in.

    Args:
        model: A char LM: `Embedding`/`OneHot` -> rnnzoo recurrent layers
            (and `Dropout`, ignored) -> `Dense(vocab_size)` logits.
        prime_ids: Non-empty 1-D sequence of ids in [0, vocab_size), run
            through the network before sampling (shared by every sample).
        length: Number of ids to generate (>= 0).
        temperature: Divides the logits; lower is more conservative. 0 means
            greedy decoding (argmax), which ignores `seed` and `top_k`.
        top_k: If > 0, sample only among the `top_k` most likely ids.
        num_samples: Number of independent samples, generated as one batch.
        seed: Int in [0, 2**31); the same seed gives the same ids. None
            draws a fresh seed.

    Returns:
        An int32 array (num_samples, length) of generated ids (without the prime).
    """
    sampler = _sampler_for(model)
    prime = sampler.check_prime(prime_ids)
    length = check_int("length", length, minimum=0)
    temperature = _check_temperature(temperature)
    top_k = check_int("top_k", top_k, minimum=0)
    if top_k > sampler.vocab_size:
        raise ValueError(
            f"Expected `top_k` <= the vocabulary size {sampler.vocab_size}, received "
            f"top_k={top_k}; pass 0 to sample from the whole vocabulary."
        )
    num_samples = check_int("num_samples", num_samples, minimum=1)
    if seed is None:
        seed = secrets.randbits(31)
    seed = check_int("seed", seed, minimum=0)
    if seed >= 2**31:
        raise ValueError(f"Expected `seed` < 2**31 (an int32), received seed={seed}.")
    if length == 0:
        return np.zeros((num_samples, 0), dtype=np.int32)
    mode = "greedy" if temperature == 0 else "sample"
    if top_k == sampler.vocab_size:
        top_k = 0  # keeping every id is plain sampling
    ids = sampler.generate_function(
        _padded(np.tile(prime, (num_samples, 1))),
        tf.constant(len(prime), tf.int32),
        _padded_buffer(num_samples, length),
        tf.constant(length, tf.int32),
        tf.constant(max(temperature, 1e-30), tf.float32),
        tf.constant([seed, 0], tf.int32),
        mode,
        top_k,
    )
    return ids.numpy()[:, :length]


def beam_search(model, prime_ids, length, *, beam_width=5):
    """The `beam_width` most likely continuations of `prime_ids` found by beam search.

    At each of `length` steps every kept hypothesis is extended by every id,
    and the `beam_width` extensions with the highest total log-probability
    are kept. With `beam_width=1` this is greedy decoding; with
    `beam_width >= vocab_size ** (length - 1)` it is exhaustive.

    Args:
        model, prime_ids: As for `generate`.
        length: Number of ids to generate (>= 0).
        beam_width: Number of hypotheses kept (>= 1).

    Returns:
        A list of `(ids, log_prob)` pairs, best first: `ids` an int32 array
        (length,), `log_prob` the float total log-probability of `ids` given
        the prime. At most `beam_width` pairs (fewer when there are fewer
        distinct sequences of that length).
    """
    sampler = _sampler_for(model)
    prime = sampler.check_prime(prime_ids)
    length = check_int("length", length, minimum=0)
    beam_width = check_int("beam_width", beam_width, minimum=1)
    if length == 0:
        return [(np.zeros((0,), dtype=np.int32), 0.0)]
    ids, scores = sampler.beam_function(
        _padded(np.tile(prime, (beam_width, 1))),
        tf.constant(len(prime), tf.int32),
        _padded_buffer(beam_width, length),
        tf.constant(length, tf.int32),
    )
    ids, scores = ids.numpy()[:, :length], scores.numpy()
    order = np.argsort(-scores, kind="stable")
    return [(ids[index], float(scores[index])) for index in order if np.isfinite(scores[index])]


# ---------------------------------------------------------------------- the chain
class _Sampler:
    """A char LM's layers, checked, and its compiled generation and beam-search loops."""

    def __init__(self, model):
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "The compiled sampler runs on Keras's TensorFlow backend; received backend "
                f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow to sample."
            )
        layers = list(model.layers)
        if (
            len(layers) < 3
            or not isinstance(layers[0], (keras.layers.Embedding, OneHot))
            or not isinstance(layers[-1], keras.layers.Dense)
            or not all(
                isinstance(layer, (RecurrentLayer, keras.layers.Dropout)) for layer in layers[1:-1]
            )
            or not any(isinstance(layer, RecurrentLayer) for layer in layers[1:-1])
        ):
            raise ValueError(
                "Expected a char LM whose layers are Embedding or OneHot, then rnnzoo "
                "recurrent layers (and Dropout), then Dense logits, as "
                "`rnnzoo.models.build_char_lm` builds; received layers "
                f"{[type(layer).__name__ for layer in layers]}."
            )
        self.input_layer, self.dense = layers[0], layers[-1]
        self.recurrent = [layer for layer in layers[1:-1] if isinstance(layer, RecurrentLayer)]
        self.vocab_size = self.dense.units
        if isinstance(self.input_layer, OneHot):
            input_size = self.input_layer.depth
        else:
            input_size = self.input_layer.input_dim
        if input_size != self.vocab_size:
            raise ValueError(
                "A char LM feeds its outputs back as inputs, so it needs as many input "
                f"ids ({input_size}) as output logits ({self.vocab_size}); make them equal."
            )
        activation = keras.activations.serialize(self.dense.activation)
        if activation != "linear":
            raise ValueError(
                "Expected the last Dense layer to produce logits (activation=None), "
                f"received activation={activation!r}."
            )
        for layer in self.recurrent:
            if layer.go_backwards:
                raise ValueError(
                    f"Cannot generate left to right through layer {layer.name!r}, which "
                    "has go_backwards=True."
                )
        self.generate_function = tf.function(self._generate, jit_compile=True, autograph=False)
        self.beam_function = tf.function(self._beam_search, jit_compile=True, autograph=False)

    def check_prime(self, prime_ids):
        prime = np.asarray(prime_ids)
        if prime.ndim != 1 or prime.size == 0 or not np.issubdtype(prime.dtype, np.integer):
            raise ValueError(
                "Expected `prime_ids` to be a non-empty 1-D sequence of integer ids, received "
                f"{prime_ids!r}; prime with at least one id (for example the id of '\\n')."
            )
        if prime.min() < 0 or prime.max() >= self.vocab_size:
            raise ValueError(
                f"Expected `prime_ids` in [0, {self.vocab_size}), received ids from "
                f"{prime.min()} to {prime.max()}."
            )
        return prime.astype(np.int32)

    # ------------------------------------------------------------ the loops
    def _primed(self, step, prime, prime_length):
        """`pending` after prime[:, :prime_length-1], and the last prime id, to feed next."""

        def body(t, pending):
            _, pending = step.predict(step.feed(prime[:, t], pending))
            return t + 1, pending

        _, pending = tf.while_loop(
            lambda t, pending: t < prime_length - 1,
            body,
            (tf.constant(0), step.start(prime.shape[0])),
        )
        return pending, tf.gather(prime, prime_length - 1, axis=1)

    def _generate(self, prime, prime_length, buffer, length, temperature, seed, mode, top_k):
        step = _step_for(self)
        pending, token = self._primed(step, prime, prime_length)
        # Every step's uniform number, drawn at once: row t holds step t's draws,
        # so they do not depend on the buffer's length (a shorter call with the
        # same seed generates a prefix of a longer one).
        uniforms = tf.random.stateless_uniform(tf.shape(tf.transpose(buffer)), seed)

        def body(t, token, pending, buffer):
            logits, pending = step.predict(step.feed(token, pending))
            token = _choose(logits, temperature, uniforms[t], mode, top_k)
            buffer = tf.tensor_scatter_nd_update(buffer, _column(buffer, t), token)
            return t + 1, token, pending, buffer

        *_, buffer = tf.while_loop(
            lambda t, *_: t < length, body, (tf.constant(0), token, pending, buffer)
        )
        return buffer

    def _beam_search(self, prime, prime_length, buffer, length):
        beam_width = prime.shape[0]
        step = _step_for(self)
        pending, token = self._primed(step, prime, prime_length)
        # Only the first hypothesis is alive at first, so the first step keeps distinct ids.
        scores = tf.concat([tf.zeros([1]), tf.fill([beam_width - 1], -np.inf)], axis=0)

        def body(t, token, pending, buffer, scores):
            logits, pending = step.predict(step.feed(token, pending))
            candidates = scores[:, None] + tf.nn.log_softmax(logits)  # (beam, vocab)
            scores, flat = tf.math.top_k(tf.reshape(candidates, [-1]), k=beam_width)
            parent, token = flat // self.vocab_size, flat % self.vocab_size
            pending = tf.nest.map_structure(lambda state: tf.gather(state, parent), pending)
            buffer = tf.gather(buffer, parent)
            buffer = tf.tensor_scatter_nd_update(buffer, _column(buffer, t), token)
            return t + 1, token, pending, buffer, scores

        _, _, _, buffer, scores = tf.while_loop(
            lambda t, *_: t < length, body, (tf.constant(0), token, pending, buffer, scores)
        )
        return buffer, scores


def _step_for(sampler):
    """The fastest step that computes what the model does: `_FusedStep` where it applies
    (every cell's step is its projection then `pointwise`)."""
    cells = [layer.cell for layer in sampler.recurrent]
    if all(cell.pointwise_step_reason() is None for cell in cells):
        return _FusedStep(sampler)
    return _CellStep(sampler)


class _CellStep:
    """One step of any char LM, through Keras's own calls: embed, `cell(x, states)`, Dense.

    The loops see every step as two halves, so that `_FusedStep` can split its
    work differently: `feed(token, pending)` hands the chosen id to the
    network, and `predict(fed)` returns the next logits and a new `pending`.
    Beam search reorders `pending` (a nest of (batch, ...) tensors) between
    the two. Here `pending` is the layers' states and `feed` only pairs it
    with the id.
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def start(self, batch_size):
        """`pending` before the first id: every layer's initial states."""
        return _initial_states(self.sampler, batch_size)

    def feed(self, token, pending):
        return token, pending

    def predict(self, fed):
        token, states = fed
        x, new_states = self.sampler.input_layer(token), []
        for layer, layer_states in zip(self.sampler.recurrent, states):
            # Through `__call__`, as keras.layers.RNN does: it casts for mixed precision.
            x, layer_states = layer.cell(x, list(layer_states), training=False)
            if not isinstance(layer_states, (list, tuple)):
                layer_states = [layer_states]
            new_states.append(list(layer_states))
        return _logits(self.sampler, x), new_states


class _FusedStep:
    """One step of a char LM whose cells are a projection then `pointwise`, with fewer and
    larger matmuls.

    At batch 1 a step is bound by reading the weights: each product is a
    (1, units) row times a matrix of a megabyte or so, and XLA's CPU backend
    runs such a product on one thread. Two things cut that cost:

    - the embedding is folded into the first cell's input projection: the
      table T = embed(all ids) W_1 + b_1 (vocab, gates * units) is computed
      once per call, and feeding an id looks its row up;
    - the step is skewed by half a layer, so that its products do not wait
      for one another: `predict` takes layer 1 at step t and the layers
      above at step t - 1, and computes h1_t U_1 (for step t + 1), h1_t W_2
      and every h_l,t-1 U_l (l >= 2) together. At batch 1, where those
      matrices have one shape, they are one batched matmul, which XLA
      shares between threads (`_halves`). With more rows the separate
      products are faster: on 2 cores, beam search of width 5 ran 1.4x as
      fast with them as with the batched matmul. Layers 2.. then step
      (h_l-1,t W_l for l >= 3 waits for the layer below), the Dense layer
      gives the logits, and `feed` completes layer 1's step t + 1 from
      T[id] + h1_t U_1.

    The cells' equations are their own `pointwise`, after the projections
    made here.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.cells = cells = [layer.cell for layer in sampler.recurrent]
        self.dtypes = [cell.compute_dtype for cell in cells]
        self.input_kernels = [tf.cast(c.kernel, d) for c, d in zip(cells, self.dtypes)]
        self.recurrent_kernels = [
            tf.cast(c.recurrent_projection_kernel(), d) for c, d in zip(cells, self.dtypes)
        ]
        self.input_biases = [_cast(c.input_bias(), d) for c, d in zip(cells, self.dtypes)]
        inputs = tf.cast(sampler.input_layer(tf.range(sampler.vocab_size)), self.dtypes[0])
        self.table = tf.matmul(inputs, self.input_kernels[0])
        if self.input_biases[0] is not None:
            self.table = self.table + self.input_biases[0]
        self.recurrent_biases = [_cast(c.recurrent_bias(), d) for c, d in zip(cells, self.dtypes)]
        self.parameters = [
            [tf.cast(p, d) for p in c.pointwise_parameters()] for c, d in zip(cells, self.dtypes)
        ]
        # The products `predict` makes at once: h1 U_1, h1 W_2, h_l U_l (l >= 2).
        matrices = self.recurrent_kernels[:1] + self.input_kernels[1:2] + self.recurrent_kernels[1:]
        same = len({(tuple(m.shape), m.dtype) for m in matrices}) == 1
        self.stacked, self.split = None, matrices[0].shape[-1] % 2 == 0
        if same and len(matrices) > 1:
            self.stacked = _halves(matrices) if self.split else tf.stack(matrices)
        self.matrices = matrices

    def start(self, batch_size):
        states = _initial_states(self.sampler, batch_size)
        initial = tf.cast(states[0][0], self.dtypes[0])
        return self._recurrent_part(0, tf.matmul(initial, self.recurrent_kernels[0])), states

    def feed(self, token, pending):
        """Layer 1's step from the id's table row and its pending h1 U_1: -> `fed` states."""
        first_hu, states = pending
        first, _ = self._step(0, tf.gather(self.table, token), first_hu, states[0])
        return [first, *states[1:]]

    def predict(self, fed):
        """fed (layer 1 at t, the others at t - 1) -> (logits_t, pending for step t + 1)."""
        h1 = fed[0][0]
        rows = [h1] if len(fed) == 1 else [h1, h1] + [states[0] for states in fed[1:]]
        if self.stacked is not None and h1.shape[0] == 1:
            rows = tf.cast(tf.stack(rows), self.stacked.dtype)
            if self.split:
                products = _joined(tf.matmul(tf.repeat(rows, 2, axis=0), self.stacked))
            else:
                products = tf.matmul(rows, self.stacked)
            products = tf.unstack(products)
        else:
            products = [tf.matmul(tf.cast(row, m.dtype), m) for row, m in zip(rows, self.matrices)]
        first_hu, x, new_states = products[0], h1, [fed[0]]
        for index in range(1, len(fed)):
            if index == 1:
                xw = products[1]
            else:
                xw = tf.matmul(tf.cast(x, self.dtypes[index]), self.input_kernels[index])
            if self.input_biases[index] is not None:
                xw = xw + self.input_biases[index]
            states, x = self._step(index, xw, products[index + 1], fed[index])
            new_states.append(states)
        return _logits(self.sampler, x), (self._recurrent_part(0, first_hu), new_states)

    def _recurrent_part(self, index, hu):
        bias = self.recurrent_biases[index]
        return hu if bias is None else tf.nn.bias_add(hu, bias)

    def _step(self, index, xw, hu, states):
        """Layer `index`'s cell from its projections -> (new states, new h)."""
        cell = self.cells[index]
        if index > 0:
            hu = self._recurrent_part(index, hu)
        z = xw + hu if cell.projection == "sum" else (xw, hu)
        states = [tf.cast(state, self.dtypes[index]) for state in states]
        states, _ = cell.pointwise(z, states, self.parameters[index])
        states = list(states)
        return states, states[0]  # the zoo's cells output their h, the first state


def _halves(matrices):
    """n (rows, width) matrices as 2n (rows, width / 2) ones: each one's left half, then its right.

    XLA's CPU batched matmul appears to share out whole batch entries among
    its threads: in a loop of only the 2x256 LSTM's three products, on two
    cores, six halves made 1.35x as many steps a second as three whole
    matrices, twelve quarters no more than six halves, and 24 pieces ran on
    one thread.
    """
    stacked = tf.stack(matrices)
    count, rows, width = stacked.shape
    halves = tf.reshape(stacked, [count, rows, 2, width // 2])
    return tf.reshape(tf.transpose(halves, [0, 2, 1, 3]), [2 * count, rows, width // 2])


def _joined(products):
    """The inverse of `_halves` on products: (2n, batch, width / 2) -> (n, batch, width)."""
    count, batch, half = products.shape
    halves = tf.reshape(products, [count // 2, 2, batch, half])
    return tf.reshape(tf.transpose(halves, [0, 2, 1, 3]), [count // 2, batch, 2 * half])


def _cast(value, dtype):
    return None if value is None else tf.cast(value, dtype)


def _initial_states(sampler, batch_size):
    return [
        list(layer.cell.get_initial_state(batch_size=batch_size)) for layer in sampler.recurrent
    ]


def _logits(sampler, h):
    return tf.cast(sampler.dense(h), tf.float32)


def _choose(logits, temperature, uniform, mode, top_k):
    """The next id of each row: argmax, or a draw from softmax(logits / temperature).

    The draw inverts the cumulative distribution with one uniform number u
    per row: id j is chosen when cdf_{j-1} <= u * cdf_V < cdf_j. It is exact,
    and cheaper per step than `tf.random.stateless_categorical`, which draws
    a random number per id.
    """
    if mode == "greedy":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    if top_k:
        logits, candidates = tf.math.top_k(logits, k=top_k)
    cdf = tf.cumsum(tf.nn.softmax(logits / temperature), axis=-1)
    threshold = uniform[:, None] * cdf[:, -1:]
    choice = tf.reduce_sum(tf.cast(cdf <= threshold, tf.int32), axis=-1)
    choice = tf.minimum(choice, logits.shape[-1] - 1)  # u * cdf_V rounded up to cdf_V
    if top_k:
        choice = tf.gather(candidates, choice, batch_dims=1)
    return choice


def _column(buffer, t):
    """Scatter indices of column t of a (batch, time) buffer."""
    rows = tf.range(buffer.shape[0])
    return tf.stack([rows, tf.fill(tf.shape(rows), t)], axis=1)


# --------------------------------------------------------------- the cache
_SAMPLERS = weakref.WeakKeyDictionary()


def _sampler_for(model):
    if model not in _SAMPLERS:
        _SAMPLERS[model] = _Sampler(model)
    return _SAMPLERS[model]


def _bucket(size, smallest):
    """The power of two >= size (at least `smallest`): sizes that share a compiled loop."""
    bucket = smallest
    while bucket < size:
        bucket *= 2
    return bucket


def _padded(prime):
    """A (batch, P) prime padded with zeros to a bucketed width."""
    width = _bucket(prime.shape[1], 16)
    return tf.constant(np.pad(prime, ((0, 0), (0, width - prime.shape[1]))), tf.int32)


def _padded_buffer(batch_size, length):
    return tf.zeros([batch_size, _bucket(length, 64)], tf.int32)


# ------------------------------------------------------------- arguments
def _check_temperature(temperature):
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(temperature, bool) or not np.isfinite(value) or value < 0:
        raise ValueError(
            f"Expected `temperature` to be a finite number >= 0 (0 is greedy), received "
            f"temperature={temperature!r}."
        )
    return value
