"""What the TensorBoard views cost: training throughput with and without `default_callbacks`.

The workload is the char-LM step of the other benchmarks: `Embedding(65, 64)
-> rnnzoo LSTM(256, return_sequences=True) -> Dense(65)`, batch 64, sequence
100, Adam with `global_clipnorm`, sparse categorical crossentropy from
logits, random ids (speed does not depend on the text). Two identical models
train side by side: "plain" with no callback, "views" with
`rnnzoo.tensorboard.default_callbacks` at the default frequencies
(`DEFAULT_EVERY`), writing to a temporary directory, one probe batch of 64
sequences (16 probed).

A round is `--steps` training steps per contender (200: exactly one run of
each probe view and two of the histograms, so a round carries the views'
amortised cost), trained in `fit` calls of `--chunk` steps (as the Trainer
calls `fit` once per epoch), the two contenders alternating chunk by chunk
and swapping who goes first, so that a busy machine slows both alike. A
round's ratio is plain time / views time summed over its chunks, i.e. the
throughput ratio views / plain; the figure is the median over rounds, after
an untimed warm-up (tracing, first writes). Both the wall clock and the
process's CPU time (steadier on a shared machine) are reported, and the wall
time spent inside the callback's hooks (per batch, per epoch, per `fit`).

    python benchmarks/tensorboard_overhead.py              # 3 rounds of 200 steps
    python benchmarks/tensorboard_overhead.py --rounds 2 --steps 100 --chunk 50
    python benchmarks/tensorboard_overhead.py --no-probe-views  # what the probe views cost
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import rnnzoo  # noqa: E402
from rnnzoo.tensorboard import DEFAULT_EVERY, RecurrentTensorBoard, default_callbacks  # noqa: E402

VOCABULARY, EMBEDDING, UNITS, BATCH, LENGTH = 65, 64, 256, 64, 100
TARGET_OVERHEAD = 0.10


def build(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((LENGTH,), dtype="int32"),
            keras.layers.Embedding(VOCABULARY, EMBEDDING),
            rnnzoo.layers.LSTM(UNITS, return_sequences=True),
            keras.layers.Dense(VOCABULARY),
        ]
    )
    model.compile(
        keras.optimizers.Adam(2e-3, global_clipnorm=5.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class TimedViews(RecurrentTensorBoard):
    """`RecurrentTensorBoard` that also adds up the wall time spent in its hooks."""

    seconds = 0.0

    def _timed(self, hook, *args):
        start = time.perf_counter()
        getattr(super(), hook)(*args)
        self.seconds += time.perf_counter() - start

    def on_train_begin(self, logs=None):
        self._timed("on_train_begin", logs)

    def on_train_batch_end(self, batch, logs=None):
        self._timed("on_train_batch_end", batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._timed("on_epoch_end", epoch, logs)

    def on_train_end(self, logs=None):
        self._timed("on_train_end", logs)


def timed_fit(model, x, y, callbacks):
    """(wall seconds, process CPU seconds) of one `fit` call."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=arguments.count, default=3, help="timed rounds")
    parser.add_argument(
        "--steps", type=arguments.count, default=200, help="training steps per round"
    )
    parser.add_argument("--chunk", type=arguments.count, default=25, help="steps per fit call")
    parser.add_argument(
        "--warmup-steps", type=arguments.whole, default=5, help="untimed steps first"
    )
    parser.add_argument(
        "--probe-views",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with the probe views (default); --no-probe-views: scalars and histograms only",
    )
    args = parser.parse_args()
    if args.steps % args.chunk:
        parser.error("--steps must be a multiple of --chunk")

    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCABULARY, (args.chunk * BATCH, LENGTH)).astype("int32")
    y = rng.integers(0, VOCABULARY, (args.chunk * BATCH, LENGTH)).astype("int32")
    warm = args.warmup_steps * BATCH
    with tempfile.TemporaryDirectory() as log_dir:
        # default_callbacks(log_dir, probe_batch) is [RecurrentTensorBoard(log_dir, probe_batch)];
        # the timed subclass is the same callback with a stopwatch.
        (views,) = default_callbacks(log_dir, probe_batch=(x[:BATCH], y[:BATCH]))
        probe_views = ("gradient_over_time_every", "gates_every", "activations_every")
        off = {} if args.probe_views else dict.fromkeys(probe_views, 0)
        timed = TimedViews(log_dir, probe_data=(x[:BATCH], y[:BATCH]), **off)
        assert type(views) is RecurrentTensorBoard
        assert args.probe_views is False or views.every == timed.every
        contenders = {"plain": (build(), []), "views": (build(), [timed])}
        print(f"defaults: {DEFAULT_EVERY}")
        for name, (model, callbacks) in contenders.items():
            wall, _ = timed_fit(model, x[:warm], y[:warm], callbacks)
            print(f"warm-up {name}: {wall:.1f} s")
        timed.seconds = 0.0
        rounds = []  # per round: {name: [wall, cpu]}
        order = list(contenders)
        for round_index in range(args.rounds):
            totals = {name: np.zeros(2) for name in contenders}
            for _ in range(args.steps // args.chunk):
                for name in order:
                    model, callbacks = contenders[name]
                    totals[name] += timed_fit(model, x, y, callbacks)
                order.reverse()
            rounds.append(totals)
            (plain_wall, plain_cpu), (views_wall, views_cpu) = totals["plain"], totals["views"]
            print(
                f"round {round_index + 1}: plain {plain_wall:.1f} s ({plain_cpu:.1f} s CPU), "
                f"views {views_wall:.1f} s ({views_cpu:.1f} s CPU); "
                f"ratio wall {plain_wall / views_wall:.3f}, CPU {plain_cpu / views_cpu:.3f}"
            )
        timed.close()
    characters = args.steps * BATCH * LENGTH
    for index, clock in enumerate(("wall", "CPU")):
        ratio = statistics.median(r["plain"][index] / r["views"][index] for r in rounds)
        plain_speed = characters / statistics.median(r["plain"][index] for r in rounds)
        views_speed = characters / statistics.median(r["views"][index] for r in rounds)
        verdict = "OK" if 1 - ratio <= TARGET_OVERHEAD else "OVER"
        print(
            f"{clock:>4} clock: plain {plain_speed:,.0f} chars/s, views {views_speed:,.0f} "
            f"chars/s; median throughput ratio views/plain = {ratio:.3f}, overhead "
            f"{100 * (1 - ratio):.1f}% (target <= {100 * TARGET_OVERHEAD:.0f}%): {verdict}"
        )
    plain_round = statistics.median(r["plain"][0] for r in rounds)
    per_round = timed.seconds / args.rounds
    print(
        f"time inside the callback's hooks: {per_round:.2f} s per round = "
        f"{100 * per_round / plain_round:.1f}% of a plain round's wall time"
    )


if __name__ == "__main__":
    main()
