"""What mixed precision buys: the char-LM training step under Keras's dtype policies.

The workload is the char-LM step of the other benchmarks, two layers deep:
`Embedding(65, 64) -> layer(256) -> layer(256) -> Dense(65)` (the logits in
float32 under every policy, as `rnnzoo.models.build_char_lm` keeps them),
batch 64, 100 steps, Adam with `global_clipnorm`, sparse categorical
crossentropy from logits, random ids (`--units`, `--length` and `--batch`
change the shape). Each layer (rnnzoo's LSTM and GRU, Keras's LSTM and GRU)
is built once per policy ("float32", "mixed_bfloat16"; `--policies` adds
"mixed_float16"), all in this process, and the models take turns one
training step at a time, in an order that alternates round by round, so that
a busy machine slows them alike. Each figure is the median step time;
"speed-up" is float32's time / the policy's, and "zoo / Keras" Keras's
layer's time / rnnzoo's under the same policy.

bfloat16 pays off where the CPU multiplies bfloat16 matrices in hardware
(Intel AMX or AVX512-BF16, printed first from /proc/cpuinfo); elsewhere
oneDNN emulates it and it may be slower than float32. The quality side (the
validation loss a run reaches) is `benchmarks/charlm_quality.py
--dtype-policy mixed_bfloat16`.

    python benchmarks/mixed_precision.py                 # 5 rounds of 5 steps
    python benchmarks/mixed_precision.py --rounds 3 --layers "rnnzoo LSTM,keras LSTM"
    python benchmarks/mixed_precision.py --policies float32,mixed_bfloat16,mixed_float16
    python benchmarks/mixed_precision.py --units 128 --length 784 --batch 128  # pixel-MNIST's
    python benchmarks/mixed_precision.py --layers "RAM mnist,RAM cluttered"  # glimpse_mnist's

"RAM <dataset>" is glimpse_mnist's model with that dataset's defaults (its
recipe configs; `--batch` images of random pixels a step; `--units` and
`--length` do not apply).
"""

import argparse
import datetime
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from charlm_quality import cpu_model  # noqa: E402

import rnnzoo  # noqa: E402
from rnnzoo.recipes import glimpse_mnist  # noqa: E402
from rnnzoo.training import precision  # noqa: E402

VOCABULARY, EMBEDDING, UNITS, LAYERS, BATCH, LENGTH = 65, 64, 256, 2, 64, 100
LAYER_CLASSES = {
    "rnnzoo LSTM": rnnzoo.layers.LSTM,
    "keras LSTM": keras.layers.LSTM,
    "rnnzoo GRU": rnnzoo.layers.GRU,
    "keras GRU": keras.layers.GRU,
}
RAM_DATASETS = {f"RAM {dataset}": dataset for dataset in glimpse_mnist.DATASETS}


def matrix_features():
    """The CPU's bfloat16 / float16 matrix features, from /proc/cpuinfo."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    wanted = ("amx_bf16", "amx_fp16", "amx_tile", "avx512_bf16", "avx512_fp16")
    return [flag for flag in wanted if flag in flags]


def build_ram(dataset, policy):
    """glimpse_mnist's model, compiled as the recipe compiles it, under `policy`."""
    config = glimpse_mnist.RECIPE.resolve_config(
        overrides={"dataset": dataset, "dtype_policy": policy}
    )
    keras.utils.set_random_seed(0)
    return glimpse_mnist.build_model(config), config.image_side()


def build(layer_class, policy, units, length):
    with precision.dtype_policy(policy):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((length,), dtype="int32"),
                keras.layers.Embedding(VOCABULARY, EMBEDDING),
                *(layer_class(units, return_sequences=True) for _ in range(LAYERS)),
                keras.layers.Dense(VOCABULARY, dtype="float32"),
            ]
        )
        model.compile(
            keras.optimizers.Adam(2e-3, global_clipnorm=5.0),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    return model


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=arguments.count, default=5, help="timed rounds")
    parser.add_argument(
        "--steps", type=arguments.count, default=5, help="steps per contender per round"
    )
    parser.add_argument("--warmup", type=arguments.whole, default=3, help="untimed steps first")
    parser.add_argument(
        "--layers", default=",".join(LAYER_CLASSES), help="comma-separated, from the list above"
    )
    parser.add_argument("--policies", default="float32,mixed_bfloat16", help="comma-separated")
    parser.add_argument("--units", type=arguments.count, default=UNITS, help="units of each layer")
    parser.add_argument("--length", type=arguments.count, default=LENGTH, help="steps per sequence")
    parser.add_argument("--batch", type=arguments.count, default=BATCH, help="sequences per batch")
    args = parser.parse_args()
    # Each name once, in the order given; float32 first, the baseline of every speed-up.
    layers = arguments.names(parser, "--layers", args.layers, known=[*LAYER_CLASSES, *RAM_DATASETS])
    policies = arguments.names(parser, "--policies", args.policies, known=precision.POLICIES)
    policies = list(dict.fromkeys(["float32", *policies]))

    print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"bfloat16/float16 matrix features: {', '.join(matrix_features()) or 'none'}")
    print(f"keras {keras.__version__} on {keras.backend.backend()}")
    print(f"{LAYERS} layers of {args.units} units, batch {args.batch}, {args.length} steps")
    rng = np.random.default_rng(0)
    ids, next_ids = rng.integers(0, VOCABULARY, (2, args.batch, args.length)).astype("int32")
    contenders = [(layer, policy) for layer in layers for policy in policies]
    models, batches = {}, {}
    for key in contenders:
        layer, policy = key
        if layer in RAM_DATASETS:
            models[key], side = build_ram(RAM_DATASETS[layer], policy)
            images = rng.integers(0, 256, (args.batch, side, side)).astype("uint8")
            batches[key] = images, rng.integers(0, 10, args.batch).astype("int32")
        else:
            models[key] = build(LAYER_CLASSES[layer], policy, args.units, args.length)
            batches[key] = ids, next_ids
    for key, model in models.items():
        for _ in range(args.warmup):
            model.train_on_batch(*batches[key])
    times = {key: [] for key in contenders}
    for round_index in range(args.rounds):
        order = contenders if round_index % 2 == 0 else contenders[::-1]
        for _ in range(args.steps):
            for key in order:
                started = time.perf_counter()
                models[key].train_on_batch(*batches[key])
                times[key].append(time.perf_counter() - started)
    median = {key: statistics.median(values) for key, values in times.items()}

    print()
    print("| layer | policy | ms/step | speed-up over float32 | zoo / Keras |")
    print("|---|---|---:|---:|---:|")
    for layer, policy in contenders:
        seconds = median[layer, policy]
        speedup = median[layer, "float32"] / seconds
        keras_layer = layer.replace("rnnzoo", "keras")
        versus = ""
        if layer.startswith("rnnzoo") and (keras_layer, policy) in median:
            versus = f"{median[keras_layer, policy] / seconds:.2f}x"
        print(f"| {layer} | {policy} | {1000 * seconds:.1f} | {speedup:.2f}x | {versus} |")


if __name__ == "__main__":
    main()
