"""Data parallelism with `tf.distribute`: the strategy a run trains under, chosen once.

    --distribute none          one device (the default)
    --distribute mirrored      `tf.distribute.MirroredStrategy` over this machine's devices:
                               every GPU, or `--devices N` (the first N GPUs; on a machine
                               without GPUs, the CPU split into N logical devices), or
                               `--devices GPU:0,GPU:2`
    --distribute multi-worker  `tf.distribute.MultiWorkerMirroredStrategy`: the same command
                               on every worker, the cluster from the TF_CONFIG environment
                               variable; each worker trains on its GPUs (or the first
                               `--devices N`), or on its CPU

`replicas(distribution)` makes the strategy (once per process: before TensorFlow sets up its
devices, so it comes first in `runner.train` and `compare.compare`) and returns `Replicas`,
what the runner and the `Trainer` ask of it.

What is split and what is shared. `--batch-size` stays the global batch B; each step's batch
is cut into one block of rows per replica, replica g (`replica_id_in_sync_group`) of R taking
rows g*b .. (g+1)*b - 1, b = B / R (a batch that doesn't divide is an error). Every replica
holds the same weights and optimizer state; each computes its block's gradient of a loss
scaled by the global batch (Keras does it for compiled losses; the RAM's own `train_step`
too), the gradients are summed over the replicas and only then clipped
(`rnnzoo.training.optimizers`), so a step is the single device's step, up to the order of
float sums. Metrics are summed over the replicas when read: the global figures.
Random draws (dropout, the RAM's location noise) are drawn for the global batch and cut per
replica (`rnnzoo.layers.replicas`), so they are a single device's too. (The cells' own
`dropout` and `recurrent_dropout` masks are not: each replica draws its own block's.)

Carried states (the char LM). A stateful model is built with the per-replica batch
(`replica_batch_size`). Keras makes each state variable a `MirroredVariable` with aggregation
NONE, which a replica updates alone (its own copy; found by experiment, Keras 3.15 / TF 2.21):
so replica g carries the states of the streams in its rows, from batch to batch, exactly as a
single device carries all of them, and zeroing them (a cross-replica assignment) zeroes every
copy at the same moments. `gather` reads the copies into one (B, units) array per state in
stream order (a collective in a multi-worker job), which is what a checkpoint stores, the same
as a single device's; `scatter` puts such an array back, cut for any replica count: a run
resumes with more or fewer replicas, the streams only change places.

Who writes. Only the chief (multi-worker: task "chief", else worker 0; one process: always)
writes the run directory and TensorBoard; every worker reads the run directory (`--run-dir`
must name the same directory on every worker: a shared file system). Every worker evaluates
in full on its first device (not split), so each keeps the same random state.

Faults. A worker that dies stops the others within seconds (TensorFlow's coordination
service misses its heartbeats, or its connections reset): `failure` turns the error into one
line naming it. A worker that never comes stops the others after `WAIT_FOR_WORKERS_SECONDS`
(one line, then killed: TensorFlow's wait can't be interrupted otherwise).

Two Keras 3.15 faults under `MultiWorkerMirroredStrategy` are worked around in
`prepare_model` and `_patch_keras_log_reduction` (see there).
"""

import contextlib
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from rnnzoo.training.errors import RecipeError

MODES = ("none", "mirrored", "multi-worker")
# How long the workers of a job may take to find each other (all must start within it);
# beyond it the ones that came stop with one line instead of waiting for ever.
WAIT_FOR_WORKERS_SECONDS = 300.0
# The TensorFlow errors of a collective whose peer went away.
_PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.InternalError,
    tf.errors.FailedPreconditionError,
)


@dataclasses.dataclass(frozen=True)
class Distribution:
    """What `--distribute` and `--devices` ask for."""

    mode: str = "none"
    devices: str = ""  # "": the defaults; "N": a count; "GPU:0,GPU:1": names (mirrored)

    def __post_init__(self):
        if self.mode not in MODES:
            raise RecipeError(f"--distribute {self.mode!r}: expected one of {', '.join(MODES)}.")
        if self.devices and self.mode == "none":
            raise RecipeError(
                f"--devices {self.devices} needs --distribute mirrored or multi-worker; "
                "without them a run trains on one device."
            )

    def check_run_dir(self, run_dir):
        """A multi-worker job needs `run_dir`: each worker must name the same directory."""
        if self.mode == "multi-worker" and run_dir is None:
            raise RecipeError(
                "--distribute multi-worker needs --run-dir DIR: every worker must name the "
                "same run directory (on a file system they all reach), which only the chief "
                "writes."
            )

    def count(self):
        """`--devices` as a count, or None when it names devices (or is not given)."""
        text = self.devices.strip()
        if not text.lstrip("-").isdigit():
            return None
        count = int(text)
        if count < 1:
            raise RecipeError(f"--devices {text}: expected a count of at least 1.")
        return count


# ------------------------------------------------------------------------------ replicas
class Replicas:
    """The replicas a run trains on: the strategy, this process's part, who writes.

    `Replicas()` is one device and no strategy: the single-device code paths, unchanged.
    """

    def __init__(
        self, strategy=None, description="one device", chief=True, worker=None, chief_task=None
    ):
        self.strategy = strategy
        self.description = description
        self.chief = chief
        self.worker = worker  # this process's (task type, index) in a multi-worker job
        self.chief_task = chief_task  # the chief's (task type, index) there
        self.count = strategy.num_replicas_in_sync if strategy is not None else 1
        self._local_ids = None
        self._gathers = {}  # the traced gather of each list of variables
        self._agree = None  # the traced `stop_agreed`

    @property
    def multi_worker(self):
        return self.worker is not None

    def scope(self):
        """The strategy's scope (where variables become distributed), or nothing."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ batches
    def check_batch(self, batch_size, flag="--batch-size"):
        """Refuse a global batch that the replicas can't share evenly."""
        if batch_size % self.count:
            raise RecipeError(
                f"{flag} {batch_size} does not divide evenly over {self.count} replicas "
                f"({self.description}); pass a multiple of {self.count}, e.g. "
                f"{flag} {max(self.count, batch_size - batch_size % self.count)}."
            )

    @property
    def local_ids(self):
        """The `replica_id_in_sync_group` of each of this process's replicas, in local order."""
        if self._local_ids is None:
            if self.strategy is None:
                self._local_ids = (0,)
            else:
                ids = tf.function(lambda: self.strategy.run(_replica_id))()
                self._local_ids = tuple(
                    int(i) for i in self.strategy.experimental_local_results(ids)
                )
        return self._local_ids

    def fit_data(self, inputs, targets, batch_size):
        """The arguments of `model.fit` that feed `inputs`, `targets` in batches of
        `batch_size` rows, in order: replica g gets rows g*b .. (g+1)*b - 1 of each."""
        if self.strategy is None:
            return {"x": inputs, "y": targets, "batch_size": batch_size}
        blocks = (self._local_blocks(inputs, batch_size), self._local_blocks(targets, batch_size))

        def per_worker(context):
            # One element per replica and step; a worker's replicas take them in turn.
            dataset = tf.data.Dataset.from_tensor_slices(blocks)
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF
            )
            return dataset.with_options(options)

        return {
            "x": self.strategy.distribute_datasets_from_function(per_worker),
            "steps_per_epoch": len(inputs) // batch_size,
        }

    def _local_blocks(self, array, batch_size):
        """This process's replicas' blocks of every batch: (steps * local replicas, b, ...)."""
        array = np.asarray(array)
        steps, rows = len(array) // batch_size, batch_size // self.count
        blocks = array[: steps * batch_size].reshape(steps, self.count, rows, *array.shape[1:])
        ids = list(self.local_ids)
        return blocks[:, ids].reshape(steps * len(ids), rows, *array.shape[1:])

    # ------------------------------------------------------------- carried state
    def gather(self, variables):
        """The per-replica copies of each variable (rows first) as one array per variable,
        replica by replica in id order: the global batch's rows. A collective in a
        multi-worker job: every worker must call it at the same point."""
        if self.strategy is None:
            return [np.array(variable.numpy()) for variable in variables]
        if not variables:
            return []
        key = tuple(id(variable) for variable in variables)
        if key not in self._gathers:
            strategy = self.strategy

            def read():
                replica = tf.reshape(_replica_id(), [1])
                return [replica, *(tf.identity(variable.value) for variable in variables)]

            @tf.function
            def gather():
                return [strategy.gather(value, axis=0) for value in strategy.run(read)]

            self._gathers[key] = gather
        gathered = [np.array(value) for value in self._gathers[key]()]
        order = np.argsort(gathered[0])
        return [
            np.concatenate([np.split(array, self.count)[i] for i in order])
            for array in gathered[1:]
        ]

    def scatter(self, variables, arrays):
        """Give each of this process's replicas its rows of `arrays` (as `gather` returns
        them) in its copy of each variable."""
        if self.strategy is None:
            for variable, array in zip(variables, arrays):
                variable.assign(array)
            return
        for variable, array in zip(variables, arrays):
            rows = len(array) // self.count
            copies = self.strategy.experimental_local_results(variable.value)
            for copy, replica in zip(copies, self.local_ids):
                copy.assign(array[replica * rows : (replica + 1) * rows])

    # ------------------------------------------------------------------- models
    def prepare_model(self, model):
        """Ready `model` (built and compiled in `scope()`) to train, under the strategy if any.

        Its optimizer's variables are made now, in the scope: else the first step would make
        them inside a replica, and on one device Keras's `fit` would make them while tracing
        the train step, then trace it all again without them (a tiny recipe run spent half
        its time tracing). Under a strategy, the model then forgets the one it was built under:
        Keras 3.15's `fit` then takes it from the scope the `Trainer` enters, and skips its
        `_maybe_symbolic_build`, which reduces the first batch with `strategy.reduce` and
        fails under `MultiWorkerMirroredStrategy` on an (inputs, targets) pair. Evaluation
        (outside the scope) runs on one device.
        """
        with self.scope():
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        if self.strategy is None:
            return model
        model._distribute_strategy = None
        return model

    def stop_agreed(self, stop):
        """Whether any worker wants to `stop` (every worker calls this at the same step, so
        all stop together); this process's own wish on one machine."""
        if not self.multi_worker:
            return stop
        if self._agree is None:
            strategy = self.strategy

            @tf.function
            def agree(wish):
                wishes = strategy.run(tf.identity, args=(wish,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, wishes, axis=None)

            self._agree = agree
        return float(self._agree(tf.constant(1.0 if stop else 0.0))) > 0

    def barrier(self):
        """Wait until every worker of a multi-worker job is here (nothing on one machine):
        what the chief wrote before it is on disk for the others to read, and no worker ends
        its process while another still runs a step (its peers would take it for dead)."""
        if self.multi_worker:
            self.stop_agreed(False)

    # ------------------------------------------------------------------- faults
    def failure(self, error):
        """What a TensorFlow error says about a lost worker, as a sentence; None when it is
        not one (or this is not a multi-worker job)."""
        if not self.multi_worker or not isinstance(error, _PEER_ERRORS):
            return None
        message = str(getattr(error, "message", error))
        tasks = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", message)
        others = [
            (kind, int(index))
            for kind, index in dict.fromkeys(tasks)
            if (kind, int(index)) != self.worker
        ]
        if others:
            lost = ", ".join(
                f"{kind} {index}{' (the chief)' if (kind, index) == self.chief_task else ''}"
                for kind, index in others
            )
            return f"{lost} of the multi-worker job stopped or cannot be reached"
        first = message.strip().splitlines()[0] if message.strip() else type(error).__name__
        return f"a worker of the multi-worker job stopped or cannot be reached ({first})"


def _replica_id():
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return tf.cast(tf.convert_to_tensor(replica), tf.int32)


def replica_batch_size(batch_size):
    """The rows of each global batch of `batch_size` that one replica trains on, under the
    strategy in scope (`batch_size` itself on one device)."""
    return batch_size // tf.distribute.get_strategy().num_replicas_in_sync


# ----------------------------------------------------------------------------- choosing
_MADE = {}  # Distribution -> Replicas, made in this process


def replicas(distribution=None, log=print):
    """The `Replicas` of `distribution` (a `Distribution`, None for one device), made once
    per process: the devices are set up before TensorFlow starts them."""
    distribution = distribution or Distribution()
    if distribution.mode == "none":
        return Replicas()
    if distribution in _MADE:
        return _MADE[distribution]
    if distribution.mode == "mirrored":
        made = _mirrored(distribution)
    else:
        earlier = [d for d in _MADE if d.mode == "multi-worker"]
        if earlier:
            raise RecipeError(
                "this process already joined a multi-worker job; a job is joined once per "
                "process: run each training in its own process."
            )
        made = _multi_worker(distribution)
    log(f"distributed: {made.description}")
    _MADE[distribution] = made
    return made


def _mirrored(distribution):
    gpus = tf.config.list_physical_devices("GPU")
    count = distribution.count()
    if not distribution.devices:
        names = [f"/gpu:{i}" for i in range(len(gpus))] or ["/cpu:0"]
    elif count is None:
        names = _named_devices(distribution.devices, gpus)
    elif gpus:
        if count > len(gpus):
            raise RecipeError(
                f"--devices {count}: this machine has {len(gpus)} GPU(s); pass at most "
                f"{len(gpus)}, or name them (--devices GPU:0,GPU:1)."
            )
        names = [f"/gpu:{i}" for i in range(count)]
    else:
        _split_cpu(count)
        names = [f"/cpu:{i}" for i in range(count)]
    strategy = tf.distribute.MirroredStrategy(names)
    kind = "GPU" if gpus and "cpu" not in names[0] else "CPU"
    where = (
        f"{len(names)} logical CPU devices"
        if kind == "CPU" and len(names) > 1
        else ", ".join(name.lstrip("/") for name in names)
    )
    return Replicas(strategy, f"mirrored over {where} ({len(names)} replica(s))")


def _named_devices(text, gpus):
    names = []
    for item in (part.strip() for part in text.split(",")):
        match = re.fullmatch(r"/?(?:device:)?(gpu|cpu):(\d+)", item, re.IGNORECASE)
        if match is None:
            raise RecipeError(
                f"--devices {text!r}: expected a count (2) or device names (GPU:0,GPU:1), "
                f"received {item!r}."
            )
        kind, index = match.group(1).lower(), int(match.group(2))
        if kind == "gpu" and index >= len(gpus):
            raise RecipeError(
                f"--devices {text!r}: this machine has {len(gpus)} GPU(s), no GPU:{index}."
            )
        if kind == "cpu" and index > 0:
            raise RecipeError(
                f"--devices {text!r}: name the CPU as CPU:0; to split it into logical "
                "devices pass a count (--devices 2)."
            )
        names.append(f"/{kind}:{index}")
    if len(set(names)) != len(names):
        raise RecipeError(f"--devices {text!r} names a device twice.")
    return names


def _split_cpu(count):
    """Make the CPU `count` logical devices (before TensorFlow starts its devices)."""
    if count == 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        found = len(tf.config.list_logical_devices("CPU"))
        if found != count:
            raise RecipeError(
                f"--devices {count}: TensorFlow already started this process's devices "
                f"({found} CPU device(s)); the CPU is split into logical devices only before "
                "it starts: run the training in a fresh process."
            ) from None


def cluster_from_environment():
    """`(cluster, task type, task index)` from TF_CONFIG, every part checked."""
    text = os.environ.get("TF_CONFIG")
    example = (
        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    if not text:
        raise RecipeError(
            "--distribute multi-worker reads the cluster from the TF_CONFIG environment "
            f"variable, which is not set; set it on every worker, e.g. {example} (index 1 on "
            "the second)."
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecipeError(
            f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}."
        ) from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    jobs = {"chief", "worker"}
    if (
        not isinstance(cluster, dict)
        or not set(cluster) <= jobs | {"evaluator", "ps"}
        or not cluster.get("worker", cluster.get("chief"))
        or not all(
            isinstance(cluster.get(job, []), list)
            and all(isinstance(address, str) and ":" in address for address in cluster[job])
            for job in jobs & set(cluster)
        )
    ):
        raise RecipeError(
            f'TF_CONFIG: `cluster` must map "worker" (and optionally "chief") to lists of '
            f"host:port addresses, received {cluster!r:.120}; e.g. {example}."
        )
    if set(cluster) - jobs:
        raise RecipeError(
            f"TF_CONFIG: the cluster has {', '.join(sorted(set(cluster) - jobs))} tasks; "
            'MultiWorkerMirroredStrategy trains on "chief" and "worker" tasks only.'
        )
    kind = task.get("type") if isinstance(task, dict) else None
    index = task.get("index") if isinstance(task, dict) else None
    if (
        kind not in jobs
        or isinstance(index, bool)
        or not isinstance(index, int)
        or not 0 <= index < len(cluster.get(kind, []))
    ):
        raise RecipeError(
            f"TF_CONFIG: `task` must name this worker by a type of the cluster and an index "
            f"into its list, received {task!r:.120}; e.g. {example}."
        )
    return cluster, kind, index


def local_cluster(count):
    """The TF_CONFIG value (a JSON string) of each of `count` workers of a job on this
    machine, on ports free now: what the tests and benchmarks start workers with."""
    sockets = [socket.socket() for _ in range(count)]
    for item in sockets:
        item.bind(("localhost", 0))
    addresses = [f"localhost:{item.getsockname()[1]}" for item in sockets]
    for item in sockets:
        item.close()
    return [
        json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
        for index in range(count)
    ]


def _multi_worker(distribution):
    cluster, kind, index = cluster_from_environment()
    gpus = tf.config.list_physical_devices("GPU")
    count = distribution.count()
    if distribution.devices and count is None:
        raise RecipeError(
            f"--devices {distribution.devices!r}: with multi-worker, --devices is a count "
            "(the GPUs each worker trains on)."
        )
    if count is not None and gpus:
        if count > len(gpus):
            raise RecipeError(
                f"--devices {count}: this worker has {len(gpus)} GPU(s); pass at most {len(gpus)}."
            )
        tf.config.set_visible_devices(gpus[:count], "GPU")
    elif count is not None and count > 1:
        raise RecipeError(
            f"--devices {count}: a worker without GPUs trains on its one CPU; pass --devices 1, "
            "or start more workers."
        )
    address = cluster[kind][index]
    workers = sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
    seconds = WAIT_FOR_WORKERS_SECONDS
    watchdog = _watchdog(
        seconds,
        f"error: multi-worker: the {workers} workers of TF_CONFIG did not all start within "
        f"{seconds:g} s; start every worker (the same command, each with its own TF_CONFIG "
        "task) and check their addresses. This worker was stopped (killed).",
    )
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.OpError, RuntimeError, ValueError) as error:
        raise RecipeError(
            f"multi-worker: {kind} {index} could not join the job at {address} ({error}); "
            "check TF_CONFIG (is the port free?)."
        ) from None
    finally:
        watchdog.kill()
        watchdog.wait()
    _patch_keras_log_reduction()
    chief_task = ("chief", 0) if "chief" in cluster else ("worker", 0)
    chief = (kind, index) == chief_task
    description = (
        f"multi-worker, {kind} {index} of {workers} at {address}"
        f"{' (the chief: writes the run directory)' if chief else ''}, "
        f"{strategy.num_replicas_in_sync} replica(s) in all"
    )
    return Replicas(strategy, description, chief, worker=(kind, index), chief_task=chief_task)


_WATCHDOG = """
import os, signal, sys, time
parent, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    time.sleep(0.2)
    if os.getppid() != parent:
        sys.exit(0)
print(sys.argv[3], file=sys.stderr, flush=True)
os.kill(parent, signal.SIGKILL)
"""


def _watchdog(seconds, message):
    """A process that prints `message` and kills this one after `seconds`, unless killed
    first. TensorFlow waits for the other workers holding the GIL (no Python thread or
    signal handler runs meanwhile) and ignores SIGTERM: only another process can end it."""
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def _patch_keras_log_reduction():
    """Keras 3.15 reduces a step's logs under `MultiWorkerMirroredStrategy` with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar (every loss and
    metric). The logs are each replica's own metric results (Keras's metric variables are
    summed on read, not on update), so reduce them as Keras does on one machine: their mean
    over all replicas, here of every worker (`axis=None`)."""
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "rnnzoo_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda value: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica.rnnzoo_patched = True
    trainer.reduce_per_replica = reduce_per_replica
