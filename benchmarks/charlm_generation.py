"""Generation speed of a char LM: `model.predict` per character against the compiled sampler.

The workload (issue 3): `build_char_lm(65, cell="lstm", units=256,
num_layers=2, embedding_dim=64)` with its random initial weights (speed does
not depend on training), batch 1, a 20-character prime.

- "model.predict per char": the naive loop, `model.predict` on the growing
  sequence, then a numpy draw from the last step's softmax (a few dozen
  characters only: it is slow);
- "plain jit while_loop": the issue's faster baseline, one XLA-compiled
  `tf.while_loop` stepping the embedding, each `cell.call` and the Dense
  layer, drawing with `tf.random.categorical`;
- `rnnzoo.models.generate` at temperature 1, greedy (temperature 0) and
  top-k (k=5), and `rnnzoo.models.beam_search` with width 5: one XLA-compiled
  `tf.while_loop` each, compiled during the warm-up.

The contenders take turns, round after round, so that a noisy (shared)
machine slows them all alike; each figure is the median of its rounds, in
generated characters per second of wall-clock time (beam search: characters
of the output sequence, each step extending all 5 hypotheses). A second
column divides by the process's CPU time instead: on a machine shared with
other work it shows what the loop costs by itself.

    python benchmarks/charlm_generation.py                  # 5 rounds of 2000 chars
    python benchmarks/charlm_generation.py --rounds 3 --length 1000
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import rnnzoo  # noqa: E402
from rnnzoo.models import beam_search, build_char_lm, generate  # noqa: E402

VOCABULARY = 65
EMBEDDING = 64
UNITS = 256
LAYERS = 2
PRIME_LENGTH = 20
TARGET = 10_000  # chars/s, for the compiled sampler at batch 1 (issue 3)
PREDICT = "model.predict per char"
PLAIN = "plain jit while_loop, temperature 1"


def predict_per_char(model, prime, length, rng):
    """The naive loop: `model.predict` on the whole sequence for every new character."""
    sequence = list(prime)
    for _ in range(length):
        logits = model.predict(np.array([sequence], dtype="int32"), verbose=0)[0, -1]
        probabilities = np.exp(logits - logits.max())
        sequence.append(int(rng.choice(VOCABULARY, p=probabilities / probabilities.sum())))
    return sequence[len(prime) :]


def plain_while_loop(model):
    """The issue's baseline: one jit-compiled `tf.while_loop` over the layers as they are.

    Per step: embedding lookup, each cell's `call`, the Dense layer, and
    `tf.random.categorical`; no folding, no inverse-CDF draw. Returns
    `run(prime, length)`; the prime goes through the same loop, one id a step.
    """
    embedding, *middle, dense = model.layers
    cells = [layer.cell for layer in middle if isinstance(layer, rnnzoo.layers.RecurrentLayer)]

    @tf.function(jit_compile=True)
    def loop(prime, length):
        states = [cell.get_initial_state(batch_size=1) for cell in cells]

        def step(token, states):
            x = embedding(token)
            new_states = []
            for cell, cell_states in zip(cells, states):
                x, cell_states = cell.call(x, cell_states)
                new_states.append(cell_states)
            return dense(x), new_states

        prime_length = tf.shape(prime)[0]

        def body(t, token, states, ids):
            logits, states = step(token, states)
            sampled = tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0]
            primed = prime[tf.minimum(t + 1, prime_length - 1)][None]
            token = tf.where(t + 1 < prime_length, primed, sampled)  # the prime first
            return t + 1, token, states, ids.write(t, token[0])

        total = prime_length - 1 + length
        ids = tf.TensorArray(tf.int32, size=total)
        _, _, _, ids = tf.while_loop(
            lambda t, *_: t < total, body, (tf.constant(0), prime[:1], states, ids)
        )
        return ids.stack()[prime_length - 1 :]

    return lambda prime, length: loop(tf.constant(prime, tf.int32), tf.constant(length)).numpy()


def contenders(model, prime, length, predict_length, rng):
    """name -> (function generating some characters, how many it generates, target chars/s)."""
    seeds = iter(range(1_000_000))
    baseline = plain_while_loop(model)
    return {
        PREDICT: (
            lambda: predict_per_char(model, prime, predict_length, rng),
            predict_length,
            None,
        ),
        PLAIN: (
            lambda: baseline(prime, length),
            length,
            None,
        ),
        "generate, temperature 1": (
            lambda: generate(model, prime, length, temperature=1.0, seed=next(seeds)),
            length,
            TARGET,
        ),
        "generate, greedy": (
            lambda: generate(model, prime, length, temperature=0),
            length,
            TARGET,
        ),
        "generate, top-k 5": (
            lambda: generate(model, prime, length, temperature=1.0, top_k=5, seed=next(seeds)),
            length,
            TARGET,
        ),
        "beam search, width 5": (
            lambda: beam_search(model, prime, length, beam_width=5),
            length,
            None,
        ),
    }


def table(medians, cpu_medians, contenders_by_name):
    predict, plain = medians[PREDICT], medians[PLAIN]
    lines = [
        "| contender | chars/s | vs model.predict | vs plain jit loop | target | met? "
        "| chars per CPU-second |",
        "|---|---:|---:|---:|---:|:---:|---:|",
    ]
    for name, speed in medians.items():
        target = contenders_by_name[name][2]
        wanted = f">= {target:,}" if target else ""
        met = ("yes" if speed >= target else "no") if target else ""
        lines.append(
            f"| {name} | {speed:,.0f} | {speed / predict:,.3g}x | {speed / plain:.3g}x "
            f"| {wanted} | {met} | {cpu_medians[name]:,.0f} |"
        )
    return "\n".join(lines)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds",
        type=arguments.count,
        default=5,
        help="rounds over all contenders (median taken)",
    )
    parser.add_argument(
        "--length", type=arguments.count, default=2000, help="characters per compiled-sampler call"
    )
    parser.add_argument(
        "--predict-length",
        type=arguments.count,
        default=30,
        help="characters per round for the slow model.predict loop",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the prime")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_arguments(argv)
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(args.seed)
    model = build_char_lm(
        VOCABULARY,
        cell="lstm",
        units=UNITS,
        num_layers=LAYERS,
        embedding_dim=EMBEDDING,
        seed=args.seed,
    )
    prime = rng.integers(0, VOCABULARY, PRIME_LENGTH).tolist()
    runs = contenders(model, prime, args.length, args.predict_length, rng)
    for name, (run, _, _) in runs.items():
        run()  # compiles the XLA loops; warms up predict
        print(f"warmed up: {name}", file=sys.stderr, flush=True)

    names = list(runs)
    speeds = {name: [] for name in names}
    cpu_speeds = {name: [] for name in names}
    for round_index in range(args.rounds):
        # Rotate the order so no contender always runs right after the same one.
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            run, count, _ = runs[name]
            start, cpu_start = time.perf_counter(), time.process_time()
            run()
            speeds[name].append(count / (time.perf_counter() - start))
            cpu_speeds[name].append(count / (time.process_time() - cpu_start))
        print(
            f"round {round_index + 1}/{args.rounds}: "
            + ", ".join(f"{n} {speeds[n][-1]:,.0f}" for n in names),
            file=sys.stderr,
            flush=True,
        )

    medians = {name: statistics.median(speeds[name]) for name in names}
    cpu_medians = {name: statistics.median(cpu_speeds[name]) for name in names}
    command = "python benchmarks/charlm_generation.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"Command: `{command.strip()}`  ")
    print(
        f"Date: {datetime.date.today().isoformat()}; "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; keras {keras.__version__}, rnnzoo {rnnzoo.__version__}; "
        f"{LAYERS}x{UNITS} LSTM, embedding {EMBEDDING}, vocabulary {VOCABULARY}, batch 1, "
        f"prime {PRIME_LENGTH}; median of {args.rounds} rounds ({args.length} chars per sampler "
        f"call, {args.predict_length} for model.predict); load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after.\n"
    )
    print(table(medians, cpu_medians, runs))


if __name__ == "__main__":
    main()
