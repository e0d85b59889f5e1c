"""Where the parallel scan pays: minGRU's and minLSTM's scan against Keras's loop over the cell.

Their layers can run every step at once (`rnnzoo/layers/parallel_scan.py`) or
step the cell in `keras.layers.RNN`'s loop; `fast="auto"` picks one per
backend and device (Keras's loop on JAX's CPU backend, the scan elsewhere).
For each layer and sequence length this times both on the same weights and
inputs, `Input(length, 64) -> layer(256, return_sequences=True) -> MSE`,
batch 64, Adam, on whatever device Keras's backend uses:

- a training step (`train_on_batch`) and a forward pass (`predict_on_batch`);
- the scan (`fast=True`, "scan") and Keras's loop (`fast=False`, "keras"),
  taking turns, the order reversed every round; each figure is the median.

"scan speed" is Keras's loop's time / the scan's (above 1: the scan is
faster); "auto" is the loop `fast="auto"` runs here (`layer.loop_choice()`).

    python benchmarks/scan_or_loop.py
    python benchmarks/scan_or_loop.py --backend jax --lengths 100,1000 --rounds 5
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "--backend" in sys.argv[:-1]:  # before Keras is imported
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from layer_speed import allocator  # noqa: E402

import rnnzoo  # noqa: E402

LAYERS = ("MinGRU", "MinLSTM")
FEATURES = 64
LOOPS = {"scan": True, "keras": False}  # contender -> the layer's `fast`


def lengths(text):
    """Comma-separated sequence lengths, each a whole number of at least 1."""
    return [arguments.count(part) for part in text.split(",") if part.strip()]


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated layers")
    parser.add_argument(
        "--lengths", type=lengths, default=[100, 1000], help="comma-separated sequence lengths"
    )
    parser.add_argument("--units", type=arguments.count, default=256, help="hidden units")
    parser.add_argument("--batch", type=arguments.count, default=64, help="sequences a batch")
    parser.add_argument(
        "--rounds", type=arguments.count, default=5, help="rounds over the contenders"
    )
    parser.add_argument(
        "--calls", type=arguments.count, default=3, help="timed calls a contender each round"
    )
    arguments.add_backend(parser)
    args = parser.parse_args(argv)
    if not args.lengths:
        parser.error("--lengths: expected comma-separated whole numbers of at least 1")
    args.layers = arguments.names(parser, "--layers", args.layers, known=LAYERS)
    return args


def build(layer_name, fast, length, units):
    inputs = keras.Input((length, FEATURES))
    layer = getattr(rnnzoo.layers, layer_name)(units, return_sequences=True, fast=fast)
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def timed(call, model, calls):
    """Seconds a `call(model)`, over `calls` calls in a row."""
    start = time.perf_counter()
    for _ in range(calls):
        call(model)
    return (time.perf_counter() - start) / calls


def milliseconds(seconds):
    """Three significant figures, no exponent: 4.57 ms, 51.8 ms, 1580 ms."""
    value = seconds * 1e3
    return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


def measure(layer_name, length, args, rng):
    """-> ({(contender, "train"|"infer"): median seconds}, the loop "auto" takes)."""
    x = rng.normal(size=(args.batch, length, FEATURES)).astype("float32")
    y = rng.normal(size=(args.batch, length, args.units)).astype("float32")
    models = {name: build(layer_name, fast, length, args.units) for name, fast in LOOPS.items()}
    models["keras"].set_weights(models["scan"].get_weights())
    kinds = {
        "train": lambda model: model.train_on_batch(x, y),
        "infer": lambda model: np.asarray(model.predict_on_batch(x)),
    }
    for model in models.values():  # compile each function before timing
        for call in kinds.values():
            call(model)
    times = {(name, kind): [] for name in models for kind in kinds}
    order = list(models)
    for _ in range(args.rounds):
        for name in order:
            for kind, call in kinds.items():
                times[name, kind].append(timed(call, models[name], args.calls))
        order.reverse()
    auto = getattr(rnnzoo.layers, layer_name)(args.units).loop_choice(training=True).loop
    return {key: statistics.median(values) for key, values in times.items()}, auto


def main(argv=None):
    args = parse_arguments(argv)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    rows = []
    for layer_name in args.layers:
        for length in args.lengths:
            medians, auto = measure(layer_name, length, args, rng)
            rows.append((layer_name, length, medians, auto))
            print(f"measured: {layer_name} at {length} steps", file=sys.stderr, flush=True)
    command = "python benchmarks/scan_or_loop.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    device = keras.backend.backend()
    if device == "jax":
        import jax

        device += f" on {jax.default_backend()}"
    print(f"Command: `{command.strip()}`  ")
    print(
        f"Date: {datetime.date.today().isoformat()}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; keras {keras.__version__}, backend {device}; batch {args.batch}, "
        f"{FEATURES} features, {args.units} units; median of {args.rounds} rounds of "
        f"{args.calls} calls; memory allocator: {allocator()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end.\n"
    )
    print(
        "| layer | steps | train: scan | train: keras | scan speed | infer: scan | infer: keras "
        "| scan speed | auto |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for layer_name, length, t, auto in rows:
        cells = []
        for kind in ("train", "infer"):
            scan, loop = t["scan", kind], t["keras", kind]
            cells += [milliseconds(scan), milliseconds(loop), f"{loop / scan:.2f}x"]
        print(f"| {layer_name} | {length} | " + " | ".join(cells) + f" | {auto} |")


if __name__ == "__main__":
    main()
