"""One runner for every recipe: seed, run directory, data, model, resume, epochs, test, export.

A recipe module says only what is its own, in a `Recipe`: its config and its
files, how to prepare its data, how to build its model, and how to train and
score it (a `Plan`). `train` does the rest, the same way for every recipe:

0. choose the `tf.distribute` strategy (`--distribute`, `rnnzoo.training.distribute`),
   the one place any recipe's strategy is chosen; the global batch must divide over
   its replicas;
1. seed Keras (weights, dropout masks, noise) from `config.seed`;
2. take the run directory (`rnnzoo.training.rundir`): lock it, remove the
   temporaries a killed run left; `--resume` first checks that config.toml and
   vocabulary.json are what the checkpoint recorded;
3. prepare the data (`recipe.prepare_data`); a new run then writes config.toml
   and vocabulary.json (a directory whose run stopped before its first
   checkpoint is reused, and `--resume` of one starts it);
4. build the model (`recipe.build_model`, in the strategy's scope) and restore the
   checkpoint, or start;
5. train with the `Trainer` (epochs, evaluation, checkpoints, time budget);
6. score the test split with the best checkpoint, write model.keras (the model
   in inference form) and then results.json. A run that finished training but
   lacks them (killed in between) gets them from `--resume`, without training;
7. close the TensorBoard writers and release the directory, whatever happened.

In a multi-worker job every worker runs all of it (the same steps, the same views),
and only the chief writes: the others' run directory reads (`RunDirectory.writes`;
their TensorBoard events go to a temporary folder) and they write no results,
model.keras or checkpoints. A worker that stops ends the others' `train` with a
`RecipeError` that names it.

`export` writes model.keras on demand; `rnnzoo.training.compare` trains one run
per cell through `train`; `rnnzoo.training.cli` is the command line of them all.
"""

import contextlib
import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from rnnzoo.training import checkpoints, distribute
from rnnzoo.training import config as config_io
from rnnzoo.training.errors import (
    NonFiniteLossError,
    RecipeError,
    describe_os_error,
    tensorflow_os_error,
)
from rnnzoo.training.loop import Trainer, TrainerState
from rnnzoo.training.resume import (
    check_data,
    check_unchanged,
    config_values,
    record_schedule,
    recorded_values,
    vocabulary_checksum,
    work_left,
)
from rnnzoo.training.rundir import (
    MODEL_FILE,
    ONNX_FILE,
    RESULTS_FILE,
    SAVED_MODEL,
    VOCABULARY_FILE,
    RunDirectory,
    default_path,
    replace_atomic,
    replace_folder_atomic,
)
from rnnzoo.training.summaries import Summaries


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one recipe adds to the shared run.

    Its config class must have the fields `seed`, `epochs`, `max_minutes`,
    `checkpoint_every` and `batch_size` (the global batch). The hooks:

    - `prepare_data(config, vocabulary, log) -> data`: the data, with
      `.fingerprint` (a str naming the data exactly: a resume on other data is
      refused) and `.vocabulary` (what vocabulary.json holds: a JSON value, an
      object with `to_json()`, or None). `vocabulary` is the run's saved
      vocabulary.json on `--resume`, else None.
    - `build_model(config, vocabulary, inference=False) -> model`: compiled for
      training, or (`inference=True`) the uncompiled form model.keras holds;
      `vocabulary` is vocabulary.json's value (None without one). For training it is
      called in the strategy's scope: a model with a fixed batch takes
      `distribute.replica_batch_size(config.batch_size)` rows.
    - `plan(config, data, model, run) -> Plan`: how to train and score it.
    - `summary(config, results) -> str`: the last line of a run (optional).
    - `commands(subparsers) -> {name: handler(args)}`: more commands (optional).
    - `serving_signature(config) -> [keras.InputSpec, ...]`: the inputs of a SavedModel
      or ONNX export where the model has no Keras inputs to read them from (optional).
    - `no_onnx`: why the model has no ONNX form, for `export --format onnx` to say (None:
      it has one).
    """

    name: str  # the module rnnzoo.recipes.<name>, and the folder of its default run directories
    config_class: type
    description: str  # the first line of --help
    defaults: str  # its defaults file in the configs folder, e.g. "seqclass.toml"
    prepare_data: Callable
    build_model: Callable
    plan: Callable
    summary: Callable = None
    variant: str = None  # the config field that picks a variant ("task", "dataset")
    variants: dict = None  # each variant's own file in the configs folder, or None
    smoke: dict = None  # the config values of --smoke: a few steps on tiny data
    commands: Callable = None
    # serving_signature(config) -> the input signature `export --format tf_saved_model/onnx` gives
    # `model.export`, for a model without Keras inputs (a subclassed one); None: its inputs.
    serving_signature: Callable = None
    # Why `export --format onnx` can't convert the model (None: it can).
    no_onnx: str = None

    def resolve_config(self, config_file=None, overrides=None):
        """A new run's config: the recipe's files, `config_file`, then `overrides` (flags)."""
        return config_io.resolve(
            self.config_class,
            self.defaults,
            config_file,
            overrides,
            self.variant,
            self.variants,
            recipe=self.name,
        )


@dataclasses.dataclass
class Plan:
    """How a recipe trains and scores its model: the parts of the `Trainer` that are its own."""

    description: str  # what the model is, for the log ("1 lstm layer(s) of 128 units")
    batches: Callable  # batches(epoch, start, stop) -> (inputs, targets), in order
    steps_per_epoch: int
    batch_size: int
    evaluate: Callable  # evaluate(model) -> {"loss": ..., ...} on the validation split
    test: Callable  # the same on the test split; the model then holds the best weights
    monitor: str = "loss"  # the validation figure that picks best.ckpt (lower is better)
    metric: str = None  # the figure the last line and comparison tables show (default monitor)
    learning_rate: Callable = None  # optimizers.Schedule(config): (epoch, step) -> rate
    derived: Callable = None  # derived(loss) -> more figures (bits per character)
    callbacks: list = ()  # Keras callbacks; each one with a `close()` is closed at the end
    log_every: int = 0  # the batch loss to TensorBoard every this many steps
    on_epoch_end: Callable = None  # on_epoch_end(trainer, record); the chief's only
    after_test: Callable = None  # after_test(trainer), the best weights; the chief's only


def train(
    recipe,
    config,
    run_dir=None,
    *,
    resume=False,
    checkpoint="last",
    data=None,
    callbacks=(),
    log=print,
    verbose=1,
    keep_finished=False,
    report_divergence=False,
    distribution=None,
):
    """Train (or `resume`) one run; return the results written to results.json.

    Args:
        recipe: The `Recipe`.
        config: The resolved config (the run's own with `resume`).
        run_dir: A path or `RunDirectory` (default tensorboard_logs/<recipe>/<stamp>).
        checkpoint: The checkpoint `resume` continues from: "last" or "best".
        data: Data already prepared (a comparison prepares it once for every run).
        callbacks: More Keras callbacks for `fit`.
        keep_finished: A resumed run that finished and has its results returns
            them (else that is an error: there is nothing to do).
        report_divergence: A NaN or infinite loss ends the training but not the
            call: the best checkpoint so far (if any) is tested and the results
            say `"diverged": true` (what a comparison wants).
        distribution: The `distribute.Distribution` to train under (default one
            device).
    """
    distribution = distribution or distribute.Distribution()
    distribution.check_run_dir(run_dir)
    replicas = distribute.replicas(distribution, log)  # first: before TensorFlow starts
    replicas.check_batch(config.batch_size)
    keras.utils.set_random_seed(config.seed)
    run = run_dir if isinstance(run_dir, RunDirectory) else run_directory(recipe, run_dir, replicas)
    if not resume and run.writes:
        run.check_place()
    try:
        start = _resume_point(run, config, checkpoint, log) if resume else None
        if start is not None and _done(start.state, config) and _scored_at(run, start.state):
            if keep_finished:
                log(f"{run.path}: finished before; its results are kept")
                return run.read_json(RESULTS_FILE)
            if start.state.epoch < config.epochs:  # epochs left, but no time
                spent = start.state.seconds / 60
                raise RecipeError(
                    f"--resume: the run in {str(run.path)!r} has trained {spent:.1f} minutes, "
                    f"all of --max-minutes {config.max_minutes:g} (the run's total, not this "
                    f"call's); pass --max-minutes above {spent:.1f} (or 0: no limit) to train "
                    "it further."
                )
            raise RecipeError(
                f"--resume: the run in {str(run.path)!r} already finished (after epoch "
                f"{start.state.epoch}, {start.state.seconds / 60:.1f} minutes); pass a larger "
                "--epochs or --max-minutes to continue it."
            )
        if start is not None:
            record_schedule(run, config, recorded_values(start.state, type(config)), log)
        if data is None:
            data = recipe.prepare_data(config, start.vocabulary if start else None, log)
        vocabulary = (
            data.vocabulary.to_json() if hasattr(data.vocabulary, "to_json") else data.vocabulary
        )
        if start is None:
            if not resume:
                run.open(log)
            header = f"rnnzoo {recipe.name} run: the resolved config."
            run.start(config_io.to_toml(config, header=header), log=log if not resume else _quiet)
            if vocabulary is not None:
                run.write_json(VOCABULARY_FILE, vocabulary)
        else:
            check_data(start.state, data.fingerprint)
        log(f"run directory: {run.path}{'' if run.writes else ' (the chief writes it)'}")
        with replicas.scope():
            model = recipe.build_model(config, vocabulary)
        replicas.prepare_model(model)
        plan = recipe.plan(config, data, model, run)
        log(f"model: {plan.description}, {model.count_params():,} parameters")
        summaries = Summaries(run)
        trainer = Trainer(
            model,
            plan.batches,
            plan.steps_per_epoch,
            plan.batch_size,
            run,
            epochs=config.epochs,
            evaluate=plan.evaluate,
            checkpoint_every=config.checkpoint_every,
            learning_rate=plan.learning_rate,
            max_minutes=config.max_minutes,
            derived=plan.derived,
            callbacks=[*plan.callbacks, *callbacks],
            summaries=summaries,
            log_every=plan.log_every,
            on_epoch_end=plan.on_epoch_end,
            verbose=verbose,
            log=log,
            monitor=plan.monitor,
            replicas=replicas,
        )
        with _closed_at_end([*plan.callbacks, summaries]):
            if start is None:
                state = trainer.state
                state.fingerprint = data.fingerprint
                state.config = config_values(type(config), run)
                state.vocabulary_checksum = vocabulary_checksum(vocabulary)
            else:
                trainer.resume(start.checkpoint)
            diverged = _train_or_not(trainer, config, start, report_divergence, log)
            return _finish(recipe, config, run, plan, trainer, vocabulary, diverged, log)
    except tf.errors.OpError as error:
        lost = replicas.failure(error)
        if lost is None:
            raise
        raise RecipeError(
            f"{lost}; training stopped, {_kept(run)}. Start every worker again with --resume "
            f"--run-dir {run.path}."
        ) from None
    finally:
        run.close()


def run_directory(recipe, run_dir, replicas):
    """The `RunDirectory` at `run_dir` (default tensorboard_logs/<recipe>/<stamp>; a
    multi-worker job's workers name theirs), which only the chief of `replicas` writes."""
    return RunDirectory(run_dir or default_path(recipe.name), writes=replicas.chief)


def _kept(run):
    """What a stopped job leaves: its last checkpoint, where it stands."""
    path = run.checkpoint_path("last")
    if not path.exists():
        return "no checkpoint was written yet"
    try:
        state = checkpoints.load(path).state
        where = f"epoch {state['epoch'] + 1}, step {state['step']}"
    except (RecipeError, KeyError, TypeError):
        where = "unreadable"
    return f"the last checkpoint {path} ({where}) is intact"


@dataclasses.dataclass
class _Resumed:
    """Where `--resume` starts: the checkpoint, its state, the run's vocabulary.json value."""

    checkpoint: checkpoints.Checkpoint
    state: TrainerState
    vocabulary: object


def _resume_point(run, config, which, log):
    """The `_Resumed` point of the run in `run`, checked against its config.toml and
    vocabulary.json; None when the run stopped before its first checkpoint."""
    run.require("--resume").open(log)
    path = run.checkpoint_path(which)
    if not run.has_checkpoint():
        log(f"--resume: {run.path} has no checkpoint yet: starting its run from its config.toml")
        return None
    checkpoint = read_checkpoint(run, which)
    if checkpoint is None:
        raise RecipeError(
            f"--resume: {str(path)!r} does not exist; resume from the run's other checkpoint "
            "(--checkpoint last)."
        )
    state = TrainerState.from_json(checkpoint.state, source=str(checkpoint.path))
    check_unchanged(run, state, config)
    saved = run.file(VOCABULARY_FILE)
    return _Resumed(checkpoint, state, run.read_json(VOCABULARY_FILE) if saved.exists() else None)


def read_checkpoint(run, which):
    """The run's `which` checkpoint, loaded: "best" is best.ckpt; "last" is where the run
    stands, the newer (by global step) of last.ckpt and best.ckpt. `Trainer.save` writes
    best.ckpt first, so a kill between the two writes leaves best.ckpt the newer, or the only
    one; for "last", a damaged best.ckpt is passed over (last.ckpt is where the run stands).
    None where the run has no such checkpoint."""
    last_path, best_path = run.checkpoint_path("last"), run.checkpoint_path("best")
    if which == "best" or not last_path.exists():
        return checkpoints.load(best_path) if best_path.exists() else None
    last = checkpoints.load(last_path)
    try:
        best = checkpoints.load(best_path) if best_path.exists() else last
    except RecipeError:
        return last
    return best if best.state.get("global_step", 0) > last.state.get("global_step", 0) else last


def _scored_at(run, state):
    """Whether the run's results (results.json, model.keras) score it at `state`. A finished
    run continued with `--resume --epochs N` keeps its old results until it finishes again;
    stopped before that, they are stale and the checkpoint is scored anew."""
    return run.finished() and run.read_json(RESULTS_FILE).get("steps") == state.global_step


def _done(state, config):
    return not work_left(state, config.epochs, config.max_minutes)


def _train_or_not(trainer, config, start, report_divergence, log):
    """Run the epochs left; return the message of a divergence that `report_divergence` let
    end the training (else None)."""
    state = trainer.state
    if start is not None:
        if _done(state, config):
            log("the run finished training: scoring its best checkpoint for its missing results")
            return None
        state.budget_exhausted = False
        where = "" if start.checkpoint.path.endswith("last.ckpt") else " from best.ckpt"
        steps = trainer.steps_per_epoch
        budget = ""
        if config.max_minutes > 0:
            # --max-minutes is the run's total, not this call's: say what is left of it.
            left = max(0.0, config.max_minutes - state.seconds / 60)
            budget = (
                f" ({left:.1f} of the run's {config.max_minutes:g} minutes of training left;"
                " --max-minutes sets the total)"
            )
        log(f"resuming{where} at epoch {state.epoch + 1}, step {state.step}/{steps}{budget}")
    try:
        trainer.run()
    except NonFiniteLossError as error:
        if not report_divergence:
            raise
        log(f"{getattr(config, 'cell', 'the model')}: {error}")
        return str(error)
    return None


def _finish(recipe, config, run, plan, trainer, vocabulary, diverged, log):
    """Score the best checkpoint on the test split; write model.keras, then results.json."""
    state, model = trainer.state, trainer.model
    metric = plan.metric or plan.monitor
    results = {
        "recipe": recipe.name,
        "metric": metric,
        "parameters": int(model.count_params()),
        "epochs": state.epoch,
        "steps": state.global_step,
        "train_seconds": round(state.seconds, 1),
        "best_epoch": state.best_epoch,
        "monitor": state.monitor,
        "data": state.fingerprint,
    }
    trainer.replicas.barrier()  # the chief's best.ckpt is written
    best_path = run.checkpoint_path("best")
    if best_path.exists():  # (none when the loss diverged before the first evaluation)
        best = checkpoints.load(best_path)
        model.set_weights(best.weights)
        test = dict(plan.test(model))
        test.update(plan.derived(test["loss"]) if plan.derived else {})
        trainer.summaries.scalars("test", state.global_step, test)
        record = _best_record(state)
        results.update({f"best_{k}": v for k, v in record.items() if k.startswith("validation_")})
        results.update({f"test_{k}": v for k, v in test.items()})
        if run.writes:
            export_model(recipe, config, vocabulary, best, run.file(MODEL_FILE))
    if diverged:
        results.update(diverged=True, note=diverged.split(";")[0])
    results["history"] = state.history
    run.write_json(RESULTS_FILE, results)
    if best_path.exists():
        log((recipe.summary or summary)(config, results))
        if plan.after_test is not None and run.writes:
            plan.after_test(trainer)
    trainer.replicas.barrier()  # every worker is done with the run
    return results


def _best_record(state):
    """The history record of the best evaluation (an epoch cut by the time budget and then
    resumed has two records)."""
    key = f"validation_{state.monitor}"
    for record in reversed(state.history):
        if record["epoch"] == state.best_epoch and record.get(key) == state.best_score:
            return record
    return {}


def summary(config, results):
    """The last line of a run: its figure at the best epoch and on the test split."""
    metric = results["metric"]
    return (
        f"best validation {metric} {results[f'best_validation_{metric}']:.4g} at epoch "
        f"{results['best_epoch']}; test {metric} {results[f'test_{metric}']:.4g} "
        "(best checkpoint)"
    )


# ------------------------------------------------------------------------------- export
def export_model(recipe, config, vocabulary, checkpoint, path):
    """Write `checkpoint`'s weights to `path` as a Keras model in inference form (no optimizer),
    atomically; return the model."""
    model = recipe.build_model(config, vocabulary, inference=True)
    checkpoints.restore(checkpoint, model, carry=False, rng=False)
    replace_atomic(path, lambda temporary: model.save(temporary), suffix=".keras")
    return model


def export_saved_model(recipe, config, vocabulary, checkpoint, path):
    """Write `checkpoint`'s model to the folder `path` as a SavedModel (`model.export`: its
    `serve` endpoint, what TensorFlow Serving loads), replacing any old one whole."""
    model = recipe.build_model(config, vocabulary, inference=True)
    checkpoints.restore(checkpoint, model, carry=False, rng=False)
    signature = recipe.serving_signature(config) if recipe.serving_signature else None

    def write(temporary):
        try:
            model.export(temporary, verbose=False, input_signature=signature)
        except Exception as error:  # TensorFlow's file errors, as the OSError they report
            reported = tensorflow_os_error(error)
            if reported is None:
                raise
            raise reported from None

    replace_folder_atomic(path, write)


def export_onnx(recipe, config, vocabulary, checkpoint, path):
    """Write `checkpoint`'s model to `path` as an ONNX file (Keras's `model.export(...,
    format="onnx")`, through tf2onnx), atomically; computing in float32 whatever the run's
    dtype policy."""
    if recipe.no_onnx:
        raise RecipeError(f"--format onnx: {recipe.no_onnx}")
    try:
        import tf2onnx  # noqa: F401 (Keras imports it; asked here for a clear error)
    except ImportError:
        raise RecipeError(
            "--format onnx needs the tf2onnx package: pip install tf2onnx (and onnxruntime to "
            "run the file)."
        ) from None
    if getattr(config, "dtype_policy", "float32") != "float32":
        # Keras's ONNX export takes float32 models (ONNX Runtime runs no bfloat16 loop); the
        # weights of a mixed-precision run are float32 already.
        config = dataclasses.replace(config, dtype_policy="float32")
    model = recipe.build_model(config, vocabulary, inference=True)
    checkpoints.restore(checkpoint, model, carry=False, rng=False)
    if recipe.serving_signature:
        signature = recipe.serving_signature(config)
    else:  # the model's own inputs (Keras asks a model not yet called for them)
        signature = [keras.InputSpec(shape=i.shape, dtype=i.dtype) for i in model.inputs]

    def write(temporary):
        with warnings.catch_warnings():  # Keras's numpy 2 patch of tf2onnx asks for np.object
            warnings.simplefilter("ignore", FutureWarning)
            model.export(temporary, format="onnx", verbose=False, input_signature=signature)

    replace_atomic(path, write, suffix=".onnx")


EXPORT_FORMATS = {
    "keras": (MODEL_FILE, export_model),
    "tf_saved_model": (SAVED_MODEL, export_saved_model),
    "onnx": (ONNX_FILE, export_onnx),
}


def export(recipe, run_dir, which="best", output=None, log=print, format="keras"):
    """The `export` command: the run's `which` checkpoint as a Keras file (default
    <run_dir>/model.keras), with `format="tf_saved_model"` a SavedModel folder (default
    <run_dir>/saved_model), or with `format="onnx"` an ONNX file (default
    <run_dir>/model.onnx)."""
    run = RunDirectory(run_dir).require("export")
    default, write = EXPORT_FORMATS[format]
    output = Path(output) if output else run.file(default)
    if format == "keras" and output.suffix != ".keras":
        raise RecipeError(f"--output {str(output)!r} must end in .keras (Keras's own format).")
    if format == "onnx" and output.suffix != ".onnx":
        raise RecipeError(f"--output {str(output)!r} must end in .onnx (an ONNX file).")
    if format == "tf_saved_model" and output.suffix == ".keras":
        raise RecipeError(
            f"--output {str(output)!r} ends in .keras, but a SavedModel is a folder: name one "
            "(default <run-dir>/saved_model), or leave out --format for a Keras file."
        )
    config = config_io.load(recipe.config_class, run.config_path)
    checkpoint = read_checkpoint(run, which)
    if checkpoint is None:  # "last" is None only where the run has no checkpoint at all
        other = ", or pass --checkpoint last" if which == "best" and run.has_checkpoint() else ""
        raise RecipeError(
            f"{str(run.checkpoint_path(which))!r} does not exist: the run has no {which} "
            f"checkpoint yet; train it further{other}."
        )
    saved = run.file(VOCABULARY_FILE)
    vocabulary = run.read_json(VOCABULARY_FILE) if saved.exists() else None
    inside = output.resolve().parent == run.path.resolve()
    try:
        if inside:  # the run directory is written: not while a run works there
            run.open(log)
        try:
            write(recipe, config, vocabulary, checkpoint, output)
        except OSError as error:  # the advice of an export, not a training run's
            remedy = "fix that or pass another --output, then export again (the run is as it was)"
            raise RecipeError(describe_os_error(error, remedy)) from None
    finally:
        run.close()
    epoch = checkpoint.state.get("best_epoch") if which == "best" else None
    log(f"wrote {output} ({which} checkpoint{f', epoch {epoch}' if epoch else ''})")


# ------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _closed_at_end(closables):
    """Close every item that has `close()` at the end; a failure to close is reported only
    when nothing else failed first (a full disk fails the writers' last flush too)."""
    closables = [item for item in closables if hasattr(item, "close")]
    try:
        yield
    except BaseException:
        for item in closables:
            with contextlib.suppress(Exception):
                item.close()
        raise
    failures = []
    for item in closables:
        try:
            item.close()
        except Exception as error:
            failures.append(error)
    if failures:
        raise failures[0]


def _quiet(line):
    pass
