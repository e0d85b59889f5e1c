"""Training speed of rnnzoo's layers against Keras's own, on a char-level LM step.

The workload (issue 2): `Embedding(65, 64) -> layer(256, return_sequences=True)
-> Dense(65)`, batch 64, sequence 100, Adam, sparse categorical crossentropy
from logits, default `compile` (no jit on CPU), one `train_on_batch` per step.

Every model is built and warmed up first; then the contenders take turns one
training step at a time (A, B, C, ..., A, B, C, ...), so that a noisy, shared
machine slows them all alike: `--rounds` rounds of `--steps` turns, the order
rotated at every turn. A contender's figure is characters (tokens) per second
at the median of its timed steps; the ratio is against the contender's Keras
baseline, measured in the same process. A later column gives the same ratio
in CPU time of this process (the work of its threads per step, less sensitive
to other programs on the machine than wall time), and the last the minor page
faults of a step (median): on Keras's JAX backend, XLA's CPU code takes each
step's temporaries in one block, and a block over 32 MiB (the largest the C
library's malloc keeps for reuse; it maps bigger ones on each request and unmaps
them when freed) is faulted in page by page at every step. The header names the
allocator (LD_PRELOAD, GLIBC_TUNABLES): see `benchmarks/allocators.py` and the
README, "Page faults on Keras's JAX backend".

Two rows are floors, not layers: `RNN(LSTM's matmuls alone)` and `RNN(GRU's
matmuls alone)` run Keras's own loop over a step that does the LSTM's (GRU's)
matmuls at the same shapes and no gate maths (`MatmulsAloneCell`). Their ratio
over Keras's LSTM (GRU) bounds what Keras's loop over those matmuls can gain. A third,
`rnnzoo loop over LSTM's matmuls alone`, runs the same free step in the zoo's own fast loop
(`ZooMatmulsAloneCell`): the most the zoo's LSTM could reach with gate maths that cost
nothing.

    python benchmarks/layer_speed.py                 # all contenders, 4 rounds
    python benchmarks/layer_speed.py --only "keras LSTM,rnnzoo LSTM" --rounds 2
    python benchmarks/layer_speed.py --backend jax   # Keras on JAX: the zoo's lax.scan loop
    python benchmarks/layer_speed.py --backend torch # Keras's loop over the zoo's cells

`--backend` sets KERAS_BACKEND before Keras is imported (on JAX every
contender's training step is jit-compiled, as Keras does there). The targets
printed are the TensorFlow layers'; none was set for torch.
"""

import argparse
import datetime
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "--backend" in sys.argv[:-1]:  # before Keras is imported
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]

import arguments  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import rnnzoo  # noqa: E402

VOCABULARY = 65
EMBEDDING = 64
UNITS = 256
BATCH = 64
LENGTH = 100


# Each zoo layer's target ratio against its Keras counterpart (issue 2; the Greff
# variants: issue 11; the parallel scans against their own cell stepped by
# keras.layers.RNN: issue 12). Layers not listed here are measured against 1.1x, but
# those that run Keras's loop (no fast loop, no scan) have no target: a row only.
TARGETS = {"LSTM": 1.2, "CoupledLSTM": 1.3, "GRU": 1.2, "VanillaRNN": 1.2, "IRNN": 1.2}
TARGETS.update({"MinGRU": 5.0, "MinLSTM": 5.0})
DEFAULT_TARGET = 1.1


class MatmulsAloneCell(keras.layers.Layer):
    """A floor for a gated cell's step: its matmuls and nothing else.

    z = x_t W + h_{t-1} U + b with W (inputs, gates * units) and U (units, gates * units),
    as the LSTM (4 gates) or the GRU (3); h_t = the first `units` columns of z. Forward
    and backward (automatic), the step does the gated cell's matmuls at the same shapes,
    with no gate maths. In `keras.layers.RNN` it is Keras's loop with free gates: its
    speed over Keras's LSTM (or GRU) bounds what any loop that keeps those matmuls, the
    zoo's included, can gain on this machine.
    """

    def __init__(self, units, gates, **kwargs):
        super().__init__(**kwargs)
        self.units, self.gates = units, gates
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], width), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(width,), initializer="zeros", name="bias")

    def call(self, inputs, states):
        z = inputs @ self.kernel + states[0] @ self.recurrent_kernel + self.bias
        h = z[:, : self.units]
        return h, [h]


class _PassThroughDerivative(rnnzoo.cells.derivatives.StepDerivative):
    """The derivative of `ZooMatmulsAloneCell.pointwise`: dz = [dh, 0, 0, 0], dc_{t-1} = dc_t."""

    saved_names = ()

    def save(self, z, states, new_states, gates, parameters):
        return []

    def backward(self, saved, d_states, parameters, side_by_side=None):
        d_h, d_c = d_states
        zeros = keras.ops.zeros_like(d_h)
        join = side_by_side or rnnzoo.cells.derivatives.concatenate
        return join([d_h] + [zeros] * (self.cell.num_gates - 1)), [None, d_c], []


class ZooMatmulsAloneCell(rnnzoo.cells.LSTMCell):
    """The same floor in the zoo's own loop: the LSTM's weights and matmuls, no gate maths.

        z_t = x_t W + h_{t-1} U + b,  h_t = z_t's first block,  c_t = c_{t-1}

    Unregistered (no `names`), run by `rnnzoo.layers.layer_class(ZooMatmulsAloneCell)`:
    the zoo's fast loop (chunked input projections, weight gradients, the loop itself) with a
    pointwise part that costs nothing. Its speed over Keras's LSTM is what the zoo's loop
    could reach at that shape if its gate maths were free.
    """

    names = ()
    step_derivative = _PassThroughDerivative

    def pointwise(self, z, states, parameters):
        return [z[:, : self.units], states[1]], {}


def automatic_derivative_layer(cell_class):
    """The zoo's layer of `cell_class` with its step differentiated automatically (its
    hand-written `step_derivative` unused): what the hand-written one gains."""
    cell = type(
        f"Automatic{cell_class.__name__}",
        (cell_class,),
        {
            "names": (),
            "derivative": lambda self: rnnzoo.cells.derivatives.AutomaticDerivative(self),
        },
    )
    return rnnzoo.layers.layer_class(cell)


def has_scan(cell_class):
    """Whether the cell's layer runs a parallel scan over time (rnnzoo.layers.parallel_scan)."""
    return callable(getattr(cell_class, "scan", None))


def keras_counterpart(layer_class):
    """What a zoo layer is measured against: Keras's LSTM for the LSTM family, its GRU for
    the GRU-like cells, ...; a parallel scan against the same cell in keras.layers.RNN."""
    cell = layer_class.cell_class
    if has_scan(cell):
        return f"RNN(rnnzoo {cell.__name__})"
    if issubclass(cell, rnnzoo.cells.LSTMCell):
        return "keras LSTM"
    gru_like = (rnnzoo.cells.GRUCell, rnnzoo.cells.MGUCell, rnnzoo.cells.mutated.MutatedCell)
    if issubclass(cell, gru_like):
        return "keras GRU"
    return "keras SimpleRNN"


def target(layer_class):
    """The layer's target ratio, or None for a layer on Keras's loop (nothing to beat)."""
    cell = layer_class.cell_class(1)
    if not has_scan(layer_class.cell_class) and cell.pointwise_step_reason() is not None:
        return None
    return TARGETS.get(layer_class.__name__, DEFAULT_TARGET)


def _contenders():
    """name -> (layer factory, baseline name, target ratio or None).

    Keras's layers and cells, the zoo's cells inside `keras.layers.RNN` next to
    Keras's, then every registered zoo layer (one row per cell name's class).
    """
    K, Z = keras.layers, rnnzoo.layers
    C = rnnzoo.cells
    seq = {"return_sequences": True}
    contenders = {
        "keras LSTM": (lambda: K.LSTM(UNITS, **seq), None, None),
        "RNN(keras LSTMCell)": (lambda: K.RNN(K.LSTMCell(UNITS), **seq), None, None),
        "RNN(rnnzoo LSTMCell)": (
            lambda: K.RNN(C.LSTMCell(UNITS), **seq),
            "RNN(keras LSTMCell)",
            0.95,
        ),
        "RNN(LSTM's matmuls alone)": (
            lambda: K.RNN(MatmulsAloneCell(UNITS, 4), **seq),
            "keras LSTM",
            None,
        ),
        "rnnzoo loop over LSTM's matmuls alone": (
            lambda: Z.layer_class(ZooMatmulsAloneCell)(UNITS, fast=True, **seq),
            "keras LSTM",
            None,
        ),
        "keras GRU": (lambda: K.GRU(UNITS, **seq), None, None),
        "RNN(GRU's matmuls alone)": (
            lambda: K.RNN(MatmulsAloneCell(UNITS, 3), **seq),
            "keras GRU",
            None,
        ),
        "RNN(keras GRUCell)": (lambda: K.RNN(K.GRUCell(UNITS), **seq), None, None),
        "RNN(rnnzoo GRUCell)": (
            lambda: K.RNN(C.GRUCell(UNITS), **seq),
            "RNN(keras GRUCell)",
            0.95,
        ),
        "keras SimpleRNN": (lambda: K.SimpleRNN(UNITS, **seq), None, None),
        "RNN(keras SimpleRNNCell)": (
            lambda: K.RNN(K.SimpleRNNCell(UNITS), **seq),
            None,
            None,
        ),
        "RNN(rnnzoo VanillaRNNCell)": (
            lambda: K.RNN(C.VanillaRNNCell(UNITS), **seq),
            "RNN(keras SimpleRNNCell)",
            0.95,
        ),
    }
    for cell_class in C.registry.classes():
        if has_scan(cell_class):  # the baseline of its parallel scan: its steps in Keras's loop
            contenders[f"RNN(rnnzoo {cell_class.__name__})"] = (
                lambda cell_class=cell_class: K.RNN(cell_class(UNITS), **seq),
                None,
                None,
            )
    for cell_class in C.registry.classes():
        layer_class = Z.layer_class(cell_class)
        # A scan's row is the scan, which fast="auto" leaves for Keras's loop on JAX's CPU.
        scan = {"fast": True} if has_scan(cell_class) else {}
        contenders[f"rnnzoo {layer_class.__name__}"] = (
            lambda layer_class=layer_class, scan=scan: layer_class(UNITS, **scan, **seq),
            keras_counterpart(layer_class),
            target(layer_class),
        )
    # Cho et al.'s GRU under recurrent dropout: its (r * h) U_h reads the dropped h too (the
    # fast loop takes the mask as a pointwise parameter; it ran Keras's loop until 2026-12-05).
    dropping = {"reset_after": False, "recurrent_dropout": 0.2, **seq}
    keras_dropping = "keras GRU (reset_after=False recurrent_dropout=0.2)"
    contenders[keras_dropping] = (lambda: K.GRU(UNITS, **dropping), None, None)
    for fast in (True, False):
        contenders[f"rnnzoo GRU (reset_after=False recurrent_dropout=0.2 fast={fast})"] = (
            lambda fast=fast: Z.GRU(UNITS, fast=fast, **dropping),
            keras_dropping,
            None,
        )
    # What the hand-written derivatives of these cells gain over automatic ones.
    hand_written = (C.LayerNormLSTMCell, C.LayerNormGRUCell, C.LayerNormRNNCell, C.LSTMPCell)
    for cell_class in (*hand_written, C.FullGateRecurrenceLSTMCell):
        automatic = automatic_derivative_layer(cell_class)
        contenders[f"rnnzoo {Z.layer_class(cell_class).__name__} (automatic derivative)"] = (
            lambda automatic=automatic: automatic(UNITS, **seq),
            keras_counterpart(automatic),
            None,
        )
    return contenders


def build_model(make_layer):
    model = keras.Sequential(
        [
            keras.Input((LENGTH,), batch_size=BATCH, dtype="int32"),
            keras.layers.Embedding(VOCABULARY, EMBEDDING),
            make_layer(),
            keras.layers.Dense(VOCABULARY),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def page_faults():
    """The minor page faults this process has taken so far (pages the kernel had to map)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed_step(model, batch):
    """(wall seconds, CPU seconds of this process, minor page faults) of one training step."""
    faults, wall, cpu = page_faults(), time.perf_counter(), time.process_time()
    loss = model.train_on_batch(*batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    faults = page_faults() - faults
    if not np.isfinite(loss):
        raise RuntimeError(f"Training diverged: loss={loss}.")
    return wall, cpu, faults


def ratio_table(speeds, cpu_speeds, faults, contenders):
    """The Markdown table: median chars/s, and ratios against each baseline."""
    lines = [
        "| contender | chars/s | baseline | ratio | target | met? | ratio in CPU time "
        "| page faults a step |",
        "|---|---:|---|---:|---:|:---:|---:|---:|",
    ]
    for name, speed in speeds.items():
        _, baseline, target = contenders[name]
        if baseline is None or baseline not in speeds:
            lines.append(f"| {name} | {speed / 1000:.1f}k | | | | | | {faults[name]:,.0f} |")
            continue
        ratio = speed / speeds[baseline]
        cpu_ratio = cpu_speeds[name] / cpu_speeds[baseline]
        if target is None:
            lines.append(
                f"| {name} | {speed / 1000:.1f}k | {baseline} | {ratio:.2f}x | none | "
                f"| {cpu_ratio:.2f}x | {faults[name]:,.0f} |"
            )
            continue
        wanted = f">= {target:.2f}x" if target >= 1 else f">= {target:.2f}x (within 5%)"
        met = "yes" if ratio >= target else "no"
        lines.append(
            f"| {name} | {speed / 1000:.1f}k | {baseline} | {ratio:.2f}x | {wanted} | {met} "
            f"| {cpu_ratio:.2f}x | {faults[name]:,.0f} |"
        )
    return "\n".join(lines)


def allocator():
    """Which malloc serves the process, and how: a preloaded one (LD_PRELOAD), else the C
    library's, with its GLIBC_TUNABLES if set."""
    preloaded = os.environ.get("LD_PRELOAD", "").strip()
    if preloaded:
        return f"LD_PRELOAD={preloaded}"
    tunables = os.environ.get("GLIBC_TUNABLES", "").strip()
    return "the C library's malloc" + (f", GLIBC_TUNABLES={tunables}" if tunables else "")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds",
        type=arguments.count,
        default=4,
        help="rounds over all contenders (median taken)",
    )
    parser.add_argument(
        "--steps",
        type=arguments.count,
        default=8,
        help="timed training steps per contender per round",
    )
    parser.add_argument(
        "--warmup",
        type=arguments.whole,
        default=3,
        help="untimed training steps per contender first",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated contender names to run (baselines are added); default all",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and data")
    arguments.add_backend(parser)
    args = parser.parse_args(argv)
    if args.only:  # the contenders' names: their layers are built later, the names now
        args.only = arguments.names(parser, "--only", args.only, known=list(_contenders()))
    return args


def main(argv=None):
    args = parse_arguments(argv)
    contenders = _contenders()
    names = list(contenders)
    if args.only:
        wanted = args.only
        with_baselines = set(wanted) | {contenders[n][1] for n in wanted if contenders[n][1]}
        names = [name for name in names if name in with_baselines]

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    batch = (
        rng.integers(0, VOCABULARY, (BATCH, LENGTH)).astype("int32"),
        rng.integers(0, VOCABULARY, (BATCH, LENGTH)).astype("int32"),
    )
    models = {}
    for name in names:
        models[name] = build_model(contenders[name][0])
        for _ in range(args.warmup):
            models[name].train_on_batch(*batch)
        print(f"built and warmed up: {name}", file=sys.stderr, flush=True)

    walls = {name: [] for name in names}
    cpus = {name: [] for name in names}
    faults = {name: [] for name in names}
    for round_index in range(args.rounds):
        for step in range(args.steps):
            # Rotate the order so no contender always runs right after the same one.
            shift = (round_index * args.steps + step) % len(names)
            for name in names[shift:] + names[:shift]:
                wall, cpu, faulted = timed_step(models[name], batch)
                walls[name].append(wall)
                cpus[name].append(cpu)
                faults[name].append(faulted)
        print(
            f"round {round_index + 1}/{args.rounds}: "
            + ", ".join(
                f"{n} {BATCH * LENGTH / statistics.median(walls[n]) / 1000:.1f}k" for n in names
            ),
            file=sys.stderr,
            flush=True,
        )

    medians = {name: BATCH * LENGTH / statistics.median(walls[name]) for name in names}
    cpu_medians = {name: BATCH * LENGTH / statistics.median(cpus[name]) for name in names}
    fault_medians = {name: statistics.median(faults[name]) for name in names}
    command = "python benchmarks/layer_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"Command: `{command.strip()}`  ")
    print(
        f"Date: {datetime.date.today().isoformat()}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; keras {keras.__version__}, backend {keras.backend.backend()}; "
        f"batch {BATCH}, sequence {LENGTH}, {UNITS} units; median step of {args.rounds} rounds "
        f"of {args.steps} interleaved steps; memory allocator: {allocator()}; "
        f"load average {os.getloadavg()[0]:.1f} at the end.\n"
    )
    print(ratio_table(medians, cpu_medians, fault_medians, contenders))


if __name__ == "__main__":
    main()
