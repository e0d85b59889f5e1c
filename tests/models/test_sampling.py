"""The compiled sampler and beam search, against slow references that call the Keras model.

The references feed the whole (prime + generated) sequence to the model, which
is causal, so its logits at position t are p(id_{t+1} | id_1..id_t).
"""

import json

import keras
import numpy as np
import processes
import pytest

import rnnzoo
from rnnzoo.models import beam_search, build_char_lm, generate, recurrent_layers, sampling

VOCAB = 6
PRIME = [1, 4, 2]
# Cells, input encodings, depths and dropout for the sampler's fused step (the
# embedding folded into the first cell, the products of a step stacked into
# one matmul), each with the seed of weights whose greedy text is not one
# repeated id. `unusual_models` covers its other branches and the fallback.
CASES = {
    "lstm": ({"cell": "lstm", "embedding_dim": 4, "dropout": 0.3}, 0),
    "gru": ({"cell": "gru", "embedding_dim": 4}, 1),
    "vanilla_one_hot": ({"cell": "vanilla", "embedding_dim": 0}, 0),
    "peephole": ({"cell": "peephole", "embedding_dim": 3, "num_layers": 1}, 2),
    "coupled_three_layers": ({"cell": "coupled", "embedding_dim": 4, "num_layers": 3}, 4),
}


def randomized(model, seed, scale=1.2):
    """`model` with N(0, scale^2) weights: sharper distributions than the initializers give."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=scale, size=w.shape) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def models():
    return {
        name: randomized(build_char_lm(VOCAB, units=8, **kwargs), seed=seed)
        for name, (kwargs, seed) in CASES.items()
    }


def next_logits(model, sequences):
    """Logits of the id after each whole row of `sequences`: (rows, vocab)."""
    return keras.ops.convert_to_numpy(model(np.asarray(sequences, dtype="int32")))[:, -1]


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_greedy(model, prime, length):
    sequence = list(prime)
    for _ in range(length):
        sequence.append(int(np.argmax(next_logits(model, [sequence])[0])))
    return sequence[len(prime) :]


def reference_log_probs(model, prime, continuations):
    """Total log-probability of each continuation (rows) given the prime."""
    continuations = np.asarray(continuations)
    sequences = np.concatenate([np.tile(prime, (len(continuations), 1)), continuations], axis=1)
    logits = keras.ops.convert_to_numpy(model(sequences.astype("int32")))
    steps = log_softmax(logits[:, len(prime) - 1 : -1])
    chosen = np.take_along_axis(steps, continuations[..., None], axis=-1)[..., 0]
    return chosen.sum(axis=1)


@pytest.mark.parametrize("case", list(CASES))
def test_greedy_equals_the_slow_reference(models, case):
    model = models[case]
    expected = reference_greedy(model, PRIME, 12)
    assert len(set(expected)) > 1, "a constant reference would prove little; change the weights"
    for rows in (1, 2):
        ids = generate(model, PRIME, 12, temperature=0, num_samples=rows)
        assert ids.shape == (rows, 12) and ids.dtype == np.int32
        np.testing.assert_array_equal(ids, [expected] * rows)


def char_lm(*recurrent, seed):
    """A char LM of the given recurrent layers (return_sequences=True), randomized."""
    layers = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(VOCAB, 4)]
    return randomized(keras.Sequential([*layers, *recurrent, keras.layers.Dense(VOCAB)]), seed)


def unusual_models():
    sequences = {"return_sequences": True}
    return {
        # A cell whose step is not a projection then `pointwise` (MUT1's reset gate scales
        # h_{t-1} before its matmul): every step through `cell.call`.
        "not_pointwise": char_lm(
            rnnzoo.layers.LSTM(8, activation="softsign", **sequences),
            rnnzoo.layers.get("mut1")(8, **sequences),
            seed=5,
        ),
        # Matrices of different shapes: the products one by one.
        "mixed_shapes": char_lm(
            rnnzoo.layers.LSTM(8, **sequences), rnnzoo.layers.GRU(6, **sequences), seed=4
        ),
        # An odd width: the matrices stacked whole, not in halves.
        "odd_width": char_lm(
            rnnzoo.layers.VanillaRNN(7, **sequences),
            rnnzoo.layers.VanillaRNN(7, **sequences),
            seed=3,
        ),
    }


def step_path(model):
    """Which of the sampler's step paths `model` takes (its internals, so that
    the test below is known to cover each)."""
    step = sampling._step_for(sampling._sampler_for(model))
    if isinstance(step, sampling._CellStep):
        return "cell calls"
    if step.stacked is None:
        return "products one by one"
    return "stacked halves" if step.split else "stacked whole"  # at batch 1


def test_every_step_path_equals_the_slow_reference(models):
    paths = {name: step_path(model) for name, model in unusual_models().items()}
    assert sorted(paths.values()) == ["cell calls", "products one by one", "stacked whole"]
    assert step_path(models["lstm"]) == "stacked halves"
    for name, model in unusual_models().items():
        expected = reference_greedy(model, PRIME, 10)
        assert len(set(expected)) > 1, name
        for rows in (1, 2):  # the batched matmul is for one row only
            np.testing.assert_array_equal(
                generate(model, PRIME, 10, temperature=0, num_samples=rows),
                [expected] * rows,
                name,
            )
        best = beam_search(model, PRIME, 4, beam_width=3)
        np.testing.assert_allclose(
            [log_prob for _, log_prob in best],
            reference_log_probs(model, PRIME, [ids for ids, _ in best]),
            rtol=1e-5,
            err_msg=name,
        )


def test_long_and_single_id_primes(models):
    model = models["lstm"]
    long_prime = list(np.random.default_rng(0).integers(0, VOCAB, size=40))  # past one bucket
    for prime in ([3], long_prime):
        ids = generate(model, prime, 5, temperature=0)
        np.testing.assert_array_equal(ids[0], reference_greedy(model, prime, 5))


def test_same_seed_same_ids_and_different_seed_different_ids(models):
    model = models["gru"]
    first = generate(model, PRIME, 30, temperature=1.0, num_samples=3, seed=7)
    np.testing.assert_array_equal(generate(model, PRIME, 30, num_samples=3, seed=7), first)
    assert not np.array_equal(generate(model, PRIME, 30, num_samples=3, seed=8), first)
    assert not np.array_equal(first[0], first[1])  # the samples of a batch are independent
    longer = generate(model, PRIME, 100, num_samples=3, seed=7)  # another length bucket
    np.testing.assert_array_equal(longer[:, :30], first)


def test_same_seed_same_ids_in_a_fresh_process():
    code = (
        "import json, rnnzoo\n"
        "model = rnnzoo.models.build_char_lm(6, units=8, seed=3)\n"
        "print('IDS', json.dumps(rnnzoo.models.generate("
        "model, [1, 4, 2], 20, temperature=1.5, top_k=4, num_samples=2, seed=11).tolist()))\n"
    )
    model = build_char_lm(VOCAB, units=8, seed=3)
    here = generate(model, PRIME, 20, temperature=1.5, top_k=4, num_samples=2, seed=11)
    line = [text for text in processes.run_python(code).splitlines() if text.startswith("IDS ")]
    assert json.loads(line[-1][4:]) == here.tolist()


def test_top_k_one_is_greedy(models):
    model = models["lstm"]
    np.testing.assert_array_equal(
        generate(model, PRIME, 15, temperature=1.0, top_k=1, seed=5),
        generate(model, PRIME, 15, temperature=0),
    )


def test_sampled_ids_stay_within_the_top_k(models):
    model, top_k = models["vanilla_one_hot"], 2
    ids = generate(model, PRIME, 10, temperature=2.0, top_k=top_k, num_samples=20, seed=1)
    sequences = np.concatenate([np.tile(PRIME, (20, 1)), ids], axis=1)
    logits = keras.ops.convert_to_numpy(model(sequences))[:, len(PRIME) - 1 : -1]
    allowed = np.argsort(-logits, axis=-1)[..., :top_k]
    assert np.all((allowed == ids[..., None]).any(axis=-1))
    assert len(np.unique(ids)) > top_k  # the top k differ from step to step


@pytest.mark.parametrize("temperature, top_k", [(0.5, 0), (1.0, 3)])
def test_samples_follow_the_tempered_distribution(models, temperature, top_k):
    model, draws = models["peephole"], 4000
    logits = next_logits(model, [PRIME])[0] / temperature
    if top_k:
        logits = np.where(logits >= np.sort(logits)[-top_k], logits, -np.inf)
    expected = np.exp(log_softmax(logits))
    assert expected.max() < 0.9, "a near-deterministic case would prove little"
    ids = generate(model, PRIME, 1, temperature=temperature, top_k=top_k, num_samples=draws, seed=2)
    observed = np.bincount(ids[:, 0], minlength=VOCAB) / draws
    # The standard error of each frequency is at most 0.5 / sqrt(4000) ~ 0.008.
    np.testing.assert_allclose(observed, expected, atol=0.035)


def test_beam_width_one_is_greedy_with_its_log_probability(models):
    model = models["gru"]
    [(ids, log_prob)] = beam_search(model, PRIME, 10, beam_width=1)
    greedy = generate(model, PRIME, 10, temperature=0)[0]
    np.testing.assert_array_equal(ids, greedy)
    np.testing.assert_allclose(log_prob, reference_log_probs(model, PRIME, [greedy])[0], atol=1e-4)


def test_wider_beam_finds_at_least_the_greedy_log_probability(models):
    model = models["lstm"]
    greedy = generate(model, PRIME, 10, temperature=0)[0]
    greedy_log_prob = reference_log_probs(model, PRIME, [greedy])[0]
    results = beam_search(model, PRIME, 10, beam_width=5)
    assert len(results) == 5
    assert results[0][1] >= greedy_log_prob - 1e-5
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(
        scores, reference_log_probs(model, PRIME, [ids for ids, _ in results]), atol=1e-4
    )


def test_beam_as_wide_as_all_prefixes_is_exhaustive(models):
    """With beam_width = vocab ** (length - 1) no prefix is ever pruned."""
    model, length = models["vanilla_one_hot"], 3
    every = np.stack(np.meshgrid(*[np.arange(VOCAB)] * length, indexing="ij"), -1)
    every = every.reshape(-1, length)
    log_probs = reference_log_probs(model, PRIME, every)
    best = np.argsort(-log_probs)[: VOCAB ** (length - 1)]
    results = beam_search(model, PRIME, length, beam_width=VOCAB ** (length - 1))
    np.testing.assert_array_equal(np.stack([ids for ids, _ in results]), every[best])
    np.testing.assert_allclose([score for _, score in results], log_probs[best], atol=1e-4)


def test_sampler_follows_weight_updates(models):
    model = build_char_lm(VOCAB, cell="lstm", units=8, embedding_dim=4)
    randomized(model, seed=10)
    np.testing.assert_array_equal(
        generate(model, PRIME, 8, temperature=0)[0], reference_greedy(model, PRIME, 8)
    )
    randomized(model, seed=11)  # as training would, after the sampler was compiled
    np.testing.assert_array_equal(
        generate(model, PRIME, 8, temperature=0)[0], reference_greedy(model, PRIME, 8)
    )


def test_samples_from_a_stateful_training_model(models):
    train = build_char_lm(VOCAB, cell="gru", units=8, embedding_dim=4, stateful=True, batch_size=4)
    train.set_weights(models["gru"].get_weights())
    expected = generate(models["gru"], PRIME, 12, temperature=0)
    np.testing.assert_array_equal(generate(train, PRIME, 12, temperature=0), expected)
    assert all(layer.stateful for layer in recurrent_layers(train))


def test_zero_length(models):
    assert generate(models["lstm"], PRIME, 0, num_samples=3).shape == (3, 0)
    [(ids, log_prob)] = beam_search(models["lstm"], PRIME, 0)
    assert ids.shape == (0,) and log_prob == 0.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: generate(m, PRIME, -1), "length"),
        (lambda m: generate(m, PRIME, 2.5), "length"),
        (lambda m: generate(m, PRIME, 5, temperature=-0.1), "temperature"),
        (lambda m: generate(m, PRIME, 5, temperature="hot"), "temperature"),
        (lambda m: generate(m, PRIME, 5, top_k=VOCAB + 1), "top_k"),
        (lambda m: generate(m, PRIME, 5, top_k=-1), "top_k"),
        (lambda m: generate(m, PRIME, 5, num_samples=0), "num_samples"),
        (lambda m: generate(m, PRIME, 5, seed=-3), "seed"),
        (lambda m: generate(m, [], 5), "non-empty"),
        (lambda m: generate(m, [[1, 2]], 5), "1-D"),
        (lambda m: generate(m, [1, VOCAB], 5), r"prime_ids. in \[0, 6\)"),
        (lambda m: beam_search(m, PRIME, 5, beam_width=0), "beam_width"),
        (lambda m: beam_search(m, PRIME, -2), "length"),
        (lambda m: beam_search(m, [], 5), "non-empty"),
    ],
)
def test_bad_arguments_raise(models, call, message):
    with pytest.raises(ValueError, match=message):
        call(models["lstm"])


def test_models_that_are_not_char_lms_raise():
    no_recurrence = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 3),
            keras.layers.Dense(VOCAB),
        ]
    )
    with pytest.raises(ValueError, match="Expected a char LM"):
        generate(no_recurrence, PRIME, 3)
    softmax = build_char_lm(VOCAB, units=4, num_layers=1)
    softmax.layers[-1].activation = keras.activations.softmax
    with pytest.raises(ValueError, match="logits"):
        generate(softmax, PRIME, 3)
    mismatched = build_char_lm(VOCAB + 1, units=4, num_layers=1)
    wrong_vocab = keras.Sequential([*mismatched.layers[:-1], keras.layers.Dense(VOCAB)])
    with pytest.raises(ValueError, match="as many input ids"):
        generate(wrong_vocab, PRIME, 3)


def test_mixed_precision_model():
    keras.config.set_dtype_policy("mixed_bfloat16")  # conftest restores the policy
    model = randomized(build_char_lm(VOCAB, units=8, embedding_dim=4), seed=0)
    # The recurrent layers compute in bfloat16; the logits stay float32, as Keras advises.
    assert model.get_layer("rnn_1").compute_dtype == "bfloat16"
    assert model.get_layer("logits").compute_dtype == "float32"
    chosen = generate(model, PRIME, 8, temperature=0)[0]
    assert len(set(chosen.tolist())) > 1
    # Each id is the slow reference's argmax after the same prefix, up to bfloat16's rounding:
    # the two compute the logits in other orders, so a near tie (0.430 against 0.436 was seen)
    # may go either way. 0.02 is about ten bfloat16 steps at these logits (spread about 1).
    sequence = list(PRIME)
    for index in chosen:
        logits = next_logits(model, [sequence])[0].astype("float64")
        assert logits[index] >= logits.max() - 0.02, (sequence, logits)
        sequence.append(int(index))
    ids = generate(model, PRIME, 8, num_samples=2, seed=0)
    assert ids.shape == (2, 8) and ids.min() >= 0 and ids.max() < VOCAB
