"""The zoo's layers against Keras's over a grid of shapes: training speed and peak memory.

`benchmarks/layer_speed.py` measures every layer at one shape (batch 64, 100 steps, 256
units). This script covers the shapes users train (issue 14): 32 to 1024 units, 28, 100 and
784 steps (row-MNIST, char LMs, pixel-MNIST), batches of 16 to 128, 1 to 64 inputs, for
the three layers Keras also has: `rnnzoo.layers.LSTM` against `keras.layers.LSTM`, `GRU`
against `GRU`, `VanillaRNN` against `SimpleRNN`.

- Speed: at each point, both layers of a pair are built in this process (a regression model
  `Input -> layer(return_sequences=True) -> Dense(1)`, MSE, Adam, `train_on_batch`) and
  take turns, one training step at a time; the figure is the median step time, the ratio
  Keras's time / the zoo's (above 1: the zoo is faster).
- Memory: each contender trains a few steps in a process of its own, which reports its peak
  resident set size (VmHWM); the ratio is the zoo's / Keras's. On TensorFlow a second pair
  of processes reports the peak of the bytes its tensors held (TensorFlow's own count,
  `tf.config.experimental.get_memory_info("CPU:0")["peak"]`, with its CPU allocator switched
  to the counting one by `TF_CPU_ALLOCATOR_USE_BFC=true`): what the layers ask for, apart
  from how the C library's heap keeps freed memory (which is in the resident figure).

    python benchmarks/layer_grid.py                      # every point, speed and memory
    python benchmarks/layer_grid.py --layers LSTM --no-memory --rounds 2
    python benchmarks/layer_grid.py --no-speed           # memory only (no timing: any load)
    python benchmarks/layer_grid.py --backend jax
    python benchmarks/layer_grid.py --layers LSTM --floor --points 256/28/128/28 --no-memory

`--floor` adds contenders at each LSTM (GRU) point that do the layer's matmuls at the same
shapes and no gate maths (see `layer_speed.py`): in Keras's own loop (`MatmulsAloneCell`)
and, for the LSTM, in the zoo's fast loop (`ZooMatmulsAloneCell`). The second one's ratio
over Keras's layer is the most the zoo's LSTM could gain at that point with free gate
maths: where it is below the target, only a faster loop or faster matmuls could meet it.
The last column divides the layer's matmul work (`layer_flops`) by the zoo's step time, to
set beside one large matmul's rate on the same machine (printed above the table).

The table it prints (Markdown) is the README's grid table.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "--backend" in sys.argv[:-1]:  # before Keras is imported
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]

import arguments  # noqa: E402
import numpy as np  # noqa: E402

# (units, steps, batch, inputs): every value the issue names, at shapes users train.
POINTS = [
    (32, 28, 16, 1),
    (32, 784, 128, 1),  # pixel-MNIST, a small model
    (128, 28, 128, 28),  # row-MNIST
    (128, 784, 128, 1),  # pixel-MNIST
    (256, 100, 64, 64),  # the char-LM benchmark's shape
    (256, 28, 128, 28),
    (512, 100, 32, 64),
    (512, 784, 16, 1),
    (1024, 50, 16, 64),
    (1024, 100, 64, 64),
]
PAIRS = {  # zoo layer -> its Keras counterpart
    "LSTM": "LSTM",
    "GRU": "GRU",
    "VanillaRNN": "SimpleRNN",
}
SPEED_TARGET = (
    1.0  # everywhere; 1.5 for the LSTM where the step is compute-bound (256 units and up)
)
LSTM_TARGET = 1.5
MEMORY_LIMIT = 1.10  # the zoo's peak memory at most Keras's + 10%


FLOOR = "floor"
ZOO_FLOOR = "zoo-loop floor"
GATES = {"LSTM": 4, "GRU": 3}  # the layers that have a floor, and their gate blocks


def make_model(name, units, steps, batch, inputs):
    import keras

    import rnnzoo

    if name.startswith(FLOOR):  # "floor LSTM": the LSTM's matmuls alone, in Keras's loop
        from layer_speed import MatmulsAloneCell

        cell = MatmulsAloneCell(units, gates=GATES[name.split()[1]])
        layer = keras.layers.RNN(cell, return_sequences=True)
    elif name.startswith(ZOO_FLOOR):  # the LSTM's matmuls alone, in the zoo's loop
        from layer_speed import ZooMatmulsAloneCell

        layer_class = rnnzoo.layers.layer_class(ZooMatmulsAloneCell)
        layer = layer_class(units, fast=True, return_sequences=True)
    elif name.startswith("keras "):
        layer = getattr(keras.layers, name[len("keras ") :])(units, return_sequences=True)
    else:
        layer = getattr(rnnzoo.layers, name[len("rnnzoo ") :])(units, return_sequences=True)
    model = keras.Sequential(
        [keras.Input((steps, inputs), batch_size=batch), layer, keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def matmul_rate(side=4096, repeats=5):
    """This machine's float32 matmul rate (GFLOP/s) on one large square product, through
    Keras's backend: what the layers' matmuls could run at, at best."""
    from keras import ops

    a, b = (ops.convert_to_tensor(np.ones((side, side), "float32")) for _ in range(2))
    ops.convert_to_numpy(ops.matmul(a, b))
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        ops.convert_to_numpy(ops.matmul(a, b))
        seconds.append(time.perf_counter() - started)
    return 2 * side**3 / statistics.median(seconds) / 1e9


def layer_flops(units, steps, batch, inputs, gates=4):
    """Floating-point operations of a gated layer's matmuls in one training step: forward
    x_t W and h_{t-1} U, backward dz_t W^T, dz_t U^T, x_t^T dz_t and h_{t-1}^T dz_t."""
    width = gates * units
    return 3 * 2 * steps * batch * width * (inputs + units)


def data(steps, batch, inputs, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, inputs)).astype("float32")
    y = rng.normal(size=(batch, steps, 1)).astype("float32")
    return x, y


def speed(contenders, point, rounds, steps_per_round, warmup):
    """Median step seconds of each contender of `contenders`, taking turns."""
    models = {name: make_model(name, *point) for name in contenders}
    batch = data(point[1], point[2], point[3])
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(*batch)
    times = {name: [] for name in contenders}
    for round_index in range(rounds):
        for step in range(steps_per_round):
            order = contenders if (round_index + step) % 2 == 0 else contenders[::-1]
            for name in order:
                started = time.perf_counter()
                models[name].train_on_batch(*batch)
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


_MEMORY_SCRIPT = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import layer_grid
name, point = sys.argv[2], json.loads(sys.argv[3])
model = layer_grid.make_model(name, *point)
batch = layer_grid.data(*point[1:])
model.train_on_batch(*batch)
if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC") == "true":
    import tensorflow as tf
    tf.config.experimental.reset_memory_stats("CPU:0")
for _ in range(2):
    model.train_on_batch(*batch)
if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC") == "true":
    print("TENSORS", tf.config.experimental.get_memory_info("CPU:0")["peak"])
# VmHWM, this process's peak resident set (kB): ru_maxrss would not do, as Linux keeps the
# parent's peak in it across fork and exec.
status = open("/proc/self/status").read().split("VmHWM:")[1]
print("PEAK", int(status.split()[0]))
"""


def peak_memory(name, point, tensors=False):
    """Peak resident memory (MiB) of a process that builds `name` at `point` and trains 3 steps
    (Linux: /proc/self/status); with `tensors`, the peak of the bytes TensorFlow's tensors held
    in the last 2 of those steps (MiB), from its counting CPU allocator."""
    environment = dict(os.environ)
    if tensors:
        environment["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY_SCRIPT,
            os.path.dirname(os.path.abspath(__file__)),
            name,
            json.dumps(point),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} at {point}: {result.stderr[-2000:]}")
    key, unit = ("TENSORS ", 2**20) if tensors else ("PEAK ", 1024)
    line = [text for text in result.stdout.splitlines() if text.startswith(key)][-1]
    return int(line.split()[1]) / unit


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=",".join(PAIRS), help="zoo layers to measure")
    parser.add_argument(
        "--rounds", type=arguments.count, default=3, help="rounds of turns (median taken)"
    )
    parser.add_argument(
        "--steps", type=arguments.count, default=3, help="steps per contender per round"
    )
    parser.add_argument("--warmup", type=arguments.whole, default=2, help="untimed steps first")
    parser.add_argument(
        "--points",
        type=parse_points,
        default=POINTS,
        help="only these points, units/steps/batch/inputs, comma-separated (default: all)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time each LSTM/GRU point's matmuls alone, in Keras's loop and (the LSTM) "
        "in the zoo's loop: the ceilings of the two loops",
    )
    parser.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    arguments.add_backend(parser, backends=("tensorflow", "jax"))
    args = parser.parse_args(argv)
    args.layers = arguments.names(parser, "--layers", args.layers, known=PAIRS)
    return args


def parse_points(text):
    """`--points`: comma-separated units/steps/batch/inputs, four whole numbers each."""
    parsed = []
    for point in text.split(","):
        try:
            parsed.append(tuple(arguments.count(value) for value in point.split("/")))
        except argparse.ArgumentTypeError:
            parsed.append(())
        if len(parsed[-1]) != 4:
            raise argparse.ArgumentTypeError(
                f"expected units/steps/batch/inputs, four whole numbers of at least 1 "
                f"(e.g. 256/100/64/64), received {point!r}"
            )
    return parsed


def main(argv=None):
    args = parse_arguments(argv)
    import keras

    layers, points = args.layers, args.points
    floor = args.floor and args.speed
    tensors = args.memory and keras.backend.backend() == "tensorflow"
    lines = [
        "| layer | units | steps | batch | inputs | zoo ms/step | Keras ms/step | speed ratio "
        "| target | met? |"
        + (
            " matmuls alone, Keras's loop: ms/step, ratio | zoo's loop: ms/step, ratio "
            "| zoo's matmul GFLOP/s |"
            if floor
            else ""
        )
        + " zoo / Keras peak memory (MiB) |"
        + (" zoo / Keras tensors' peak (MiB) |" if tensors else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"
        + ("---:|---:|---:|" if floor else "")  # the two floors, the zoo's matmul rate
        + "---:|"
        + ("---:|" if tensors else ""),
    ]
    rate = matmul_rate() if floor else None
    started = time.monotonic()
    for layer in layers:
        pair = (f"rnnzoo {layer}", f"keras {PAIRS[layer]}")
        contenders = pair
        if floor and layer in GATES:
            contenders += (f"{FLOOR} {layer}",)
        if floor and layer == "LSTM":
            contenders += (f"{ZOO_FLOOR} {layer}",)
        for point in points:
            target = LSTM_TARGET if layer == "LSTM" and point[0] >= 256 else SPEED_TARGET
            if args.speed:
                seconds = speed(contenders, point, args.rounds, args.steps, args.warmup)
                ratio = seconds[pair[1]] / seconds[pair[0]]
                timing = (
                    f"{1000 * seconds[pair[0]]:.1f} | {1000 * seconds[pair[1]]:.1f} "
                    f"| {ratio:.2f}x | >= {target:.1f}x | {'yes' if ratio >= target else 'no'}"
                )
                for prefix in (FLOOR, ZOO_FLOOR) if floor else ():
                    alone = seconds.get(f"{prefix} {layer}")
                    timing += (
                        f" | {1000 * alone:.1f} ms, {seconds[pair[1]] / alone:.2f}x"
                        if alone
                        else " | "
                    )
                if floor and layer in GATES:
                    flops = layer_flops(*point, gates=GATES[layer])
                    timing += f" | {flops / seconds[pair[0]] / 1e9:.0f}"
                elif floor:
                    timing += " | "
            else:
                timing = f" | | | >= {target:.1f}x | "
            memory = ""
            if args.memory:
                zoo, theirs = (peak_memory(name, point) for name in pair)
                flag = "" if zoo <= MEMORY_LIMIT * theirs else " (over +10%)"
                memory = f"{zoo:.0f} / {theirs:.0f} = {zoo / theirs:.2f}{flag}"
            if tensors:
                zoo, theirs = (peak_memory(name, point, tensors=True) for name in pair)
                memory += f" | {zoo:.0f} / {theirs:.0f} = {zoo / theirs:.2f}"
            row = (
                f"| {layer} | {point[0]} | {point[1]} | {point[2]} | {point[3]} | {timing} "
                f"| {memory} |"
            )
            lines.append(row)
            print(row, file=sys.stderr, flush=True)
    minutes = (time.monotonic() - started) / 60
    command = "python benchmarks/layer_grid.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"Command: `{command.strip()}`  ")
    print(
        f"Date: {datetime.date.today().isoformat()}; {platform.machine()}, {os.cpu_count()} "
        f"cores; keras {keras.__version__}, backend {keras.backend.backend()}; median of "
        f"{args.rounds} rounds of {args.steps} alternating steps; {minutes:.0f} min; load "
        f"average {os.getloadavg()[0]:.1f} at the end."
        + (f" One {4096}x{4096} matmul here: {rate:.0f} GFLOP/s." if rate else "")
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
