"""Inference speed of rnnzoo's layers against Keras's own: the forward pass alone.

Where no gradient tape watches a call (`predict`, `evaluate`, sampling, a
SavedModel, ONNX or TFLite export), the zoo's fast loop runs a forward loop
of its own (`fast_loop._inference`); under a tape it runs the training
forward, which also keeps what its hand-written backward reads (each step's
local derivatives). This times, for each layer, three contenders on the same
weights and inputs, `Input(100, 64) -> layer(256, return_sequences=True)`,
batch 64, each a `tf.function` of the call:

- Keras's layer of the same kind (LSTM, GRU, SimpleRNN);
- the zoo's layer as inference runs it (traced with no tape);
- the zoo's layer traced under a tape: the training forward with the
  backward's saved tensors (TensorFlow's graph optimiser prunes what no
  gradient reads). Inference has its own loop for export (a SavedModel can't
  hold the training loop's custom gradient; ONNX and TFLite converters need
  its TensorArrays read and written once per loop iteration), not for speed.

The contenders take turns one call at a time, the order reversed every round;
each figure is the median. "zoo / Keras" is Keras's time / the zoo's.

    python benchmarks/inference_speed.py
    python benchmarks/inference_speed.py --layers LSTM,GRU --rounds 10
    python benchmarks/inference_speed.py --units 512 --length 784 --batch 16
"""

import argparse
import datetime
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from charlm_quality import cpu_model  # noqa: E402

import rnnzoo  # noqa: E402

PAIRS = {
    "LSTM": (rnnzoo.layers.LSTM, keras.layers.LSTM),
    "PeepholeLSTM": (rnnzoo.layers.PeepholeLSTM, keras.layers.LSTM),
    "GRU": (rnnzoo.layers.GRU, keras.layers.GRU),
    "VanillaRNN": (rnnzoo.layers.VanillaRNN, keras.layers.SimpleRNN),
}


def traced(layer, inputs, under_tape):
    """A `tf.function` of `layer(inputs)`, traced now, under a gradient tape or not."""
    function = tf.function(lambda x: layer(x))
    if under_tape:
        with tf.GradientTape():
            function(inputs)
    else:
        function(inputs)
    return function


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", default=",".join(PAIRS), help="comma-separated, from above")
    parser.add_argument(
        "--rounds", type=arguments.count, default=60, help="timed calls per contender"
    )
    parser.add_argument("--units", type=arguments.count, default=256)
    parser.add_argument("--length", type=arguments.count, default=100, help="steps per sequence")
    parser.add_argument("--batch", type=arguments.count, default=64)
    parser.add_argument("--inputs", type=arguments.count, default=64, help="features per step")
    args = parser.parse_args()
    names = arguments.names(parser, "--layers", args.layers, known=PAIRS)

    tf.get_logger().setLevel("ERROR")  # each contender is a function of its own, traced once
    print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}")
    print(f"{args.units} units, batch {args.batch}, {args.length} steps of {args.inputs} inputs")
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(args.batch, args.length, args.inputs)), tf.float32)
    calls = {}
    for name in names:
        zoo_class, keras_class = PAIRS[name]
        zoo = zoo_class(args.units, return_sequences=True)
        theirs = keras_class(args.units, return_sequences=True)
        calls[name, "keras"] = traced(theirs, inputs, under_tape=False)
        calls[name, "zoo"] = traced(zoo, inputs, under_tape=False)
        calls[name, "zoo, saving"] = traced(zoo, inputs, under_tape=True)
    times = {key: [] for key in calls}
    for round_index in range(args.rounds):
        order = list(calls) if round_index % 2 == 0 else list(calls)[::-1]
        for key in order:
            started = time.perf_counter()
            calls[key](inputs).numpy()
            times[key].append(time.perf_counter() - started)
    median = {key: 1000 * statistics.median(values) for key, values in times.items()}

    print()
    print("| layer | Keras ms | zoo ms | zoo / Keras | zoo with saved tensors ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        keras_ms, zoo_ms, saving_ms = (median[name, k] for k in ("keras", "zoo", "zoo, saving"))
        print(
            f"| {name} | {keras_ms:.1f} | {zoo_ms:.1f} | {keras_ms / zoo_ms:.2f}x "
            f"| {saving_ms:.1f} | {saving_ms / zoo_ms:.2f}x |"
        )


if __name__ == "__main__":
    main()
