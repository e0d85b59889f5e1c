"""The checks that need a GPU, in one run: Keras on JAX (the GPU machines here have no TensorFlow).

Issue 12 asks for the parallel scans' speed where a scan can pay, and issue 14 for the
layers' GPU paths: Keras's cuDNN routines through `use_cudnn`, and the fast loop and the
scans placed on the device. On whatever device JAX sees first, this script

1. checks equality: the zoo's `LSTM` and `GRU` with `use_cudnn=True` against
   `keras.layers.LSTM` / `GRU` with `use_cudnn=True` (Keras's own cuDNN path on both sides),
   and the fast loop and the scans (`use_cudnn=False`) against the same cell stepped by
   `keras.layers.RNN`. The same weights on both sides; outputs and the gradients of a fixed
   random projection of them with respect to the inputs and every weight; the largest
   difference of each relative to the reference's largest value, and the loop each side ran;
2. with `--speed`, runs `benchmarks/layer_speed.py` on the same device for the contenders
   that matter there (alternating, one process), printing its Markdown table.

Where no GPU is visible the cuDNN rows say so and the rest runs on the CPU, which is how it
is tested here:

    KERAS_BACKEND=jax python benchmarks/gpu_checks.py               # equality only
    KERAS_BACKEND=jax python benchmarks/gpu_checks.py --speed --rounds 2

On a lent GPU machine, Keras and what it needs travel as wheels (see the device tool's
README): `keras`, `namex` and `optree` for Python 3.12, then
`PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax python3 benchmarks/gpu_checks.py --speed`.
"""

import argparse
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import rnnzoo  # noqa: E402

UNITS, BATCH, STEPS, INPUTS = 256, 64, 100, 64
SPEED_CONTENDERS = (
    "keras LSTM,rnnzoo LSTM,rnnzoo PeepholeLSTM,keras GRU,rnnzoo GRU,"
    "RNN(rnnzoo MinGRUCell),rnnzoo MinGRU,RNN(rnnzoo MinLSTMCell),rnnzoo MinLSTM"
)


def cases():
    """(what is checked, the zoo's layer, the reference layer), each a factory."""
    K, Z, C = keras.layers, rnnzoo.layers, rnnzoo.cells
    seq = {"return_sequences": True}
    return [
        (
            "LSTM, cuDNN",
            lambda: Z.LSTM(UNITS, use_cudnn=True, **seq),
            lambda: K.LSTM(UNITS, use_cudnn=True, **seq),
        ),
        (
            "GRU, cuDNN",
            lambda: Z.GRU(UNITS, use_cudnn=True, **seq),
            lambda: K.GRU(UNITS, use_cudnn=True, **seq),
        ),
        *(
            (
                f"{name}, fast loop",
                lambda name=name: getattr(Z, name)(UNITS, use_cudnn=False, fast=True, **seq),
                lambda name=name: K.RNN(getattr(C, f"{name}Cell")(UNITS), **seq),
            )
            for name in ("LSTM", "PeepholeLSTM", "GRU", "VanillaRNN")
        ),
        *(
            (
                f"{name}, parallel scan",
                lambda name=name: getattr(Z, name)(UNITS, fast=True, **seq),
                lambda name=name: K.RNN(getattr(C, f"{name}Cell")(UNITS), **seq),
            )
            for name in ("MinGRU", "MinLSTM")
        ),
    ]


def outputs_and_gradients(layer, x, probe):
    """[outputs, d x, d each trainable weight] of sum(outputs * probe), by jax.grad."""
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in layer.trainable_variables]
    fixed = [v.value for v in layer.non_trainable_variables]

    def loss(trainable, x):
        outputs, _ = layer.stateless_call(trainable, fixed, x)
        return jnp.sum(outputs * probe), outputs

    (_, outputs), (d_weights, d_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        trainable, x
    )
    return [outputs, d_x, *d_weights]


def loop_of(layer):
    return layer.loop_choice(training=True).loop if hasattr(layer, "loop_choice") else "keras"


def check(name, make_zoo, make_reference, x, probe):
    """One Markdown row: the largest differences, or why the case could not run."""
    reference, zoo = make_reference(), make_zoo()
    reference.build(x.shape)
    zoo.build(x.shape)
    zoo.set_weights(reference.get_weights())
    try:
        theirs = outputs_and_gradients(reference, x, probe)
        ours = outputs_and_gradients(zoo, x, probe)
    except ValueError as error:  # use_cudnn=True where cuDNN can't run (no GPU): say why
        return f"| {name} | not run: {str(error).splitlines()[0]} | | | |"
    output, gradient = (
        relative_difference(ours[:1], theirs[:1]),
        relative_difference(ours[1:], theirs[1:]),
    )
    return f"| {name} | {output:.1e} | {gradient:.1e} | {loop_of(zoo)} | {loop_of(reference)} |"


def relative_difference(ours, theirs):
    """The largest of max |a - b| / max |b| over the pairs of arrays."""
    return max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-30))
        for a, b in zip(ours, theirs)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", action="store_true", help="then run layer_speed.py here")
    parser.add_argument(
        "--rounds", type=arguments.count, default=2, help="layer_speed.py's --rounds"
    )
    args = parser.parse_args(argv)
    import jax

    print(f"keras {keras.__version__} on {keras.backend.backend()}; devices: {jax.devices()}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, STEPS, INPUTS)).astype("float32")
    probe = rng.normal(size=(BATCH, STEPS, UNITS)).astype("float32")
    print(f"batch {BATCH}, {STEPS} steps, {INPUTS} inputs, {UNITS} units, float32\n")
    print("| case | outputs, relative diff | gradients, relative diff | zoo's loop | reference's |")
    print("|---|---:|---:|---|---|")
    for name, make_zoo, make_reference in cases():
        print(check(name, make_zoo, make_reference, x, probe), flush=True)
    if args.speed:
        here = os.path.dirname(os.path.abspath(__file__))
        command = [sys.executable, os.path.join(here, "layer_speed.py"), "--backend"]
        command += [keras.backend.backend(), "--only", SPEED_CONTENDERS]
        command += ["--rounds", str(args.rounds)]
        print(f"\n$ {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
