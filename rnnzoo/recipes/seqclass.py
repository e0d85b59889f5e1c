r"""Sequence classification and regression: the lecture's "many to one" case.

A recurrent net reads a whole sequence and predicts one thing at the end. The
tasks are the ones on which a vanilla (tanh) RNN fails and LSTMs, GRUs and
IRNNs succeed, because the evidence sits far from the loss:

    adding                 the adding problem (Hochreiter & Schmidhuber 1997): sum the
                           two marked values of a length-T sequence; MSE (1.0 always: ≈ 0.167)
    row-mnist              MNIST, 28 steps of one 28-pixel row         (Le, Jaitly, Hinton 2015)
    pixel-mnist            MNIST, 784 steps of one pixel
    permuted-pixel-mnist   the same, pixels in a fixed random order drawn from --seed
    text                   labelled text from a file: TSV `label<TAB>text` or CSV
    imdb                   tensorflow-datasets' imdb_reviews, where it can be had

    python -m rnnzoo.recipes.seqclass                          # adding problem, T = 200, LSTM
    python -m rnnzoo.recipes.seqclass --task adding --compare vanilla,irnn,lstm,gru
    python -m rnnzoo.recipes.seqclass --task row-mnist --mnist-dir ../shared/data/mnist
    python -m rnnzoo.recipes.seqclass --task text --data ../shared/data/sms_spam/SMSSpamCollection
    python -m rnnzoo.recipes.seqclass --resume --run-dir tensorboard_logs/seqclass/<stamp>

Top to bottom:

1. Config. `recipes/seqclass.toml`, then the task's own defaults
   (`recipes/seqclass_<task>.toml`), then `--config FILE`, then flags.
2. Data. Train / validation / test arrays for the task (`prepare_data`); text
   gets a vocabulary built on the training split, saved in the run directory.
3. Model. `rnnzoo.models.classifier.build_sequence_classifier`: [embedding
   with masking] -> stacked (optionally bidirectional) recurrent layers ->
   Dense; cross-entropy on logits, or mean squared error for regression.
4. Training. `rnnzoo.training.Trainer` over `ShuffledBatches` (a new order each
   epoch, reproduced exactly on `--resume`), validation each epoch, TensorBoard
   views of the gradients over time, then the test set on the best checkpoint.
5. Comparison. `--compare vanilla,irnn,lstm,...` trains each cell on the same
   data with the same budget and seed, one run directory (and TensorBoard run)
   per cell, and writes `results.md` / `results.csv` beside them.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from rnnzoo.training import config as config_io
from rnnzoo.training.config import option
from rnnzoo.training.errors import RecipeError, run_main
from rnnzoo.training.resume import fingerprint

RECIPE = "seqclass"
RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
DEFAULTS_FILE = RECIPES_DIR / "seqclass.toml"
TASKS = ("adding", "row-mnist", "pixel-mnist", "permuted-pixel-mnist", "text", "imdb")
MNIST_VIEWS = {"row-mnist": "row", "pixel-mnist": "pixel", "permuted-pixel-mnist": "permuted-pixel"}
TEXT_TASKS = ("text", "imdb")
VOCABULARY_FILE = "vocabulary.json"
RESULTS_FILE = "results.json"
PROBE_EXAMPLES = 16
# Config values that count something, and those where 0 means "off" or "all".
COUNTS = (
    "adding_train_size",
    "adding_eval_size",
    "mnist_validation",
    "embedding_dim",
    "units",
    "layers",
    "batch_size",
    "epochs",
)
COUNTS_OR_OFF = (
    "max_length",
    "min_count",
    "max_vocabulary",
    "steps_per_epoch",
    "max_minutes",
    "checkpoint_every",
    "log_every",
    "histograms_every",
    "probe_every",
    "clip_norm",
    "clip_value",
)


@dataclasses.dataclass
class SeqClassConfig:
    """The recipe's hyperparameters; defaults equal `recipes/seqclass.toml` (a test checks)."""

    task: str = option(
        "adding", "adding, row-mnist, pixel-mnist, permuted-pixel-mnist, text or imdb"
    )
    # -- adding problem
    length: int = option(200, "adding: steps per sequence")
    adding_train_size: int = option(100_000, "adding: training sequences, generated from the seed")
    adding_eval_size: int = option(10_000, "adding: validation and test sequences (each)")
    # -- MNIST
    mnist_dir: str = option(
        "", "folder with the four raw MNIST IDX .gz files; empty: tensorflow-datasets"
    )
    mnist_validation: int = option(5000, "MNIST: training images held out for validation")
    # -- text
    data: str = option("", "text: labelled text file, TSV `label<TAB>text` or CSV")
    text_format: str = option("auto", "text: auto (CSV for .csv names), tsv or csv")
    label_column: str = option("label", "text, CSV: the column holding the label")
    text_column: str = option("text", "text, CSV: the column holding the text")
    level: str = option("word", "text: tokens are words (word) or characters (char)")
    lowercase: bool = option(True, "text: lowercase before splitting into tokens")
    max_length: int = option(100, "text: keep the first this many tokens of each text; 0: all")
    min_count: int = option(1, "text: tokens seen fewer times in training count as unknown")
    max_vocabulary: int = option(20_000, "text: keep this many most frequent tokens; 0: all")
    embedding_dim: int = option(64, "text: size of the token embedding")
    validation_fraction: float = option(
        0.1, "text, imdb: fraction of the examples held out for validation"
    )
    test_fraction: float = option(
        0.1, "text: fraction of the examples held out for test (imdb has its own)"
    )
    # -- model
    cell: str = option("lstm", "recurrent cell, any name rnnzoo.cells.get knows")
    units: int = option(128, "hidden units per layer (per direction)")
    layers: int = option(1, "stacked recurrent layers")
    bidirectional: bool = option(False, "read each sequence forwards and backwards")
    dropout: float = option(0.0, "dropout after each recurrent layer")
    recurrent_dropout: float = option(
        0.0, "dropout of h_{t-1} inside the cells, one mask per sequence"
    )
    # -- training
    optimizer: str = option("adam", "adam, rmsprop or adagrad")
    lr: float = option(0.001, "learning rate")
    clip_norm: float = option(1.0, "clip the global gradient norm to this; 0: off")
    clip_value: float = option(0.0, "clip each gradient element to +-this; 0: off")
    batch_size: int = option(64, "sequences per batch")
    epochs: int = option(10, "passes over the training set")
    steps_per_epoch: int = option(0, "batches per epoch; 0: one full pass")
    max_minutes: float = option(
        0.0, "stop training after this many minutes (across resumes); 0: no limit"
    )
    checkpoint_every: int = option(
        200, "save checkpoints/last.ckpt every this many steps (and each epoch)"
    )
    seed: int = option(
        1, "seed of the data (adding, splits, permutation), the weights and the batches"
    )
    compare: str = option(
        "", "cells to train one after another on the same task, e.g. vanilla,irnn,lstm"
    )
    # -- TensorBoard
    log_every: int = option(
        10, "write loss and gradient norms to TensorBoard every this many steps"
    )
    histograms_every: int = option(
        200, "weight and gradient histograms every this many steps; 0: off"
    )
    probe_every: int = option(
        200, "gradient-over-time, gate and activation views every this many steps; 0: off"
    )

    def validate(self):
        from rnnzoo import cells
        from rnnzoo.data.labelled_text import FORMATS, LEVELS
        from rnnzoo.training import checks, optimizers
        from rnnzoo.training.compare import parse_names

        for name, allowed in (
            ("task", TASKS),
            ("cell", cells.names()),
            ("optimizer", optimizers.names()),
            ("level", LEVELS),
            ("text_format", FORMATS),
        ):
            checks.one_of(self, name, allowed)
        checks.at_least(self, 2, "length")  # one marker in each half
        checks.at_least(self, 1, *COUNTS)
        checks.at_least(self, 0, *COUNTS_OR_OFF)
        checks.fraction(
            self, "dropout", "recurrent_dropout", "validation_fraction", "test_fraction"
        )
        checks.positive_number(self, "lr")
        checks.seed(self)
        if self.task == "text" and not self.data:
            raise RecipeError(
                "--task text needs --data FILE: a TSV file of `label<TAB>text` lines or a CSV file "
                "with a header (e.g. ../shared/data/sms_spam/SMSSpamCollection)."
            )
        if self.compare:
            parse_names(self.compare, cells.names())


def task_file(task):
    """The task's own defaults: `recipes/seqclass_<task>.toml` (dashes as underscores)."""
    return RECIPES_DIR / f"seqclass_{task.replace('-', '_')}.toml" if task in TASKS else None


def load_config(config_file=None, overrides=None):
    """`recipes/seqclass.toml`, the task's defaults file, `config_file`, then `overrides`."""
    return config_io.load_layered(
        SeqClassConfig, DEFAULTS_FILE, "task", task_file, config_file, overrides
    )


# =============================================================================== data
@dataclasses.dataclass
class TaskData:
    """A task's arrays and what the model needs to know about them."""

    name: str
    splits: dict  # "train" / "validation" / "test" -> (inputs, targets)
    num_classes: int = None  # None: regression (one number per sequence)
    input_features: int = None  # float sequences: features per step
    vocab_size: int = None  # token sequences: ids, 0 = padding
    vocabulary: dict = None  # token vocabulary and class names, as saved in the run directory
    fingerprint: str = ""

    @property
    def metric(self):
        return "mse" if self.num_classes is None else "accuracy"

    def describe(self):
        sizes = " / ".join(f"{len(self.splits[s][0]):,}" for s in ("train", "validation", "test"))
        shape = "x".join(str(n) for n in self.splits["train"][0].shape[1:])
        what = "regression" if self.num_classes is None else f"{self.num_classes} classes"
        return (
            f"{self.name}: {sizes} sequences (train / validation / test) of shape {shape}, {what}"
        )


def prepare_data(config, saved_vocabulary=None, log=print):
    """The task's `TaskData`; `saved_vocabulary` (a run's vocabulary.json) reuses its token ids."""
    if config.task == "adding":
        data = _adding(config)
    elif config.task in MNIST_VIEWS:
        data = _mnist(config)
    else:
        data = _text(config, saved_vocabulary)
    data.fingerprint = fingerprint(data.name, data.splits)
    log(f"data: {data.describe()}")
    if config.task == "adding":
        from rnnzoo.data.adding import BASELINE_MSE

        test_targets = data.splits["test"][1]
        log(
            "baseline: predicting 1.0 scores test MSE "
            f"{float(np.mean((test_targets - 1.0) ** 2)):.4f} "
            f"(expected {BASELINE_MSE:.4f})"
        )
    return data


def _adding(config):
    from rnnzoo.data.adding import adding_splits

    splits = adding_splits(
        config.length, config.adding_train_size, config.adding_eval_size, config.seed
    )
    return TaskData(f"adding(T={config.length})", splits, input_features=2)


def _mnist(config):
    from rnnzoo.data.mnist import NUM_CLASSES, as_sequences, hold_out, load_mnist, pixel_permutation

    train_images, train_labels, test_images, test_labels = load_mnist(config.mnist_dir or None)
    kept, held_out = hold_out(train_images, train_labels, config.mnist_validation, config.seed)
    view = MNIST_VIEWS[config.task]
    permutation = pixel_permutation(config.seed) if view == "permuted-pixel" else None

    def split(images, labels):
        return as_sequences(images, view, permutation), labels.astype(np.int32)

    splits = {
        "train": split(*kept),
        "validation": split(*held_out),
        "test": split(test_images, test_labels),
    }
    features = splits["train"][0].shape[-1]
    return TaskData(config.task, splits, num_classes=NUM_CLASSES, input_features=features)


def _text(config, saved_vocabulary=None):
    from rnnzoo.data.labelled_text import TokenVocabulary, read_labelled_text, split_indices

    if config.task == "imdb":
        from rnnzoo.data.imdb import load_imdb

        train_rows, test = load_imdb()
        indices = split_indices(len(train_rows), config.validation_fraction, 0.0, config.seed)
        rows = {
            "train": train_rows.subset(indices["train"]),
            "validation": train_rows.subset(indices["validation"]),
            "test": test,
        }
        classes = train_rows.classes()
        name = "imdb_reviews"
    else:
        everything = read_labelled_text(
            config.data, config.text_format, config.label_column, config.text_column
        )
        classes = everything.classes()
        indices = split_indices(
            len(everything), config.validation_fraction, config.test_fraction, config.seed
        )
        rows = {split: everything.subset(indices[split]) for split in indices}
        name = Path(config.data).name
    if saved_vocabulary is None:
        vocabulary = TokenVocabulary.from_texts(
            rows["train"].texts,
            config.level,
            config.lowercase,
            config.min_count,
            config.max_vocabulary,
        )
    else:
        vocabulary = TokenVocabulary.from_json(saved_vocabulary, source=VOCABULARY_FILE)
        if saved_vocabulary.get("classes") != classes:
            raise RecipeError(
                f"--resume: the data's classes {classes} differ from the run's "
                f"{saved_vocabulary.get('classes')}; resume with the run's own data."
            )
    class_ids = {label: index for index, label in enumerate(classes)}
    splits = {
        split: (
            vocabulary.encode_batch(part.texts, config.max_length),
            np.array([class_ids[label] for label in part.labels], np.int32),
        )
        for split, part in rows.items()
    }
    described = (
        f"{name} [{config.level}s, {len(vocabulary):,} ids; {rows['train'].describe()} in training]"
    )
    return TaskData(
        described,
        splits,
        num_classes=len(classes),
        vocab_size=len(vocabulary),
        vocabulary={**vocabulary.to_json(), "classes": classes},
    )


# ============================================================================== model
def build_model(config, data):
    from rnnzoo.models.classifier import build_sequence_classifier

    return build_sequence_classifier(
        input_features=data.input_features,
        vocab_size=data.vocab_size,
        embedding_dim=config.embedding_dim,
        num_classes=data.num_classes,
        cell=config.cell,
        units=config.units,
        num_layers=config.layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        seed=config.seed,
    )


def compile_model(model, config, data):
    import keras

    from rnnzoo.training import optimizers

    if data.num_classes is None:
        loss, metrics = keras.losses.MeanSquaredError(), []
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=optimizers.make_optimizer(
            config.optimizer, config.lr, config.clip_norm, config.clip_value
        ),
        loss=loss,
        metrics=metrics,
        # XLA is slower than TensorFlow's own kernels for these loops on CPU.
        jit_compile=False,
    )
    return model


def scores(model, data, split, batch_size):
    """`{"loss": ..., "accuracy": ...}` (classification) or `{"loss": mse}` on one split."""
    inputs, targets = data.splits[split]
    values = model.evaluate(inputs, targets, batch_size=batch_size, verbose=0, return_dict=True)
    return {name: float(value) for name, value in values.items()}


def metric_of(values, data):
    """The task's metric from `scores`' dict (for regression, the loss is the MSE)."""
    return values["loss"] if data.metric == "mse" else values[data.metric]


# =============================================================================== train
def train(
    config,
    run_dir=None,
    resume=False,
    data=None,
    callbacks=(),
    log=print,
    verbose=1,
    report_divergence=False,
):
    """Train (or resume) one run; returns the results dict also written to `results.json`.

    With `report_divergence`, a loss that becomes NaN or infinite ends the
    training but not the call: the best checkpoint so far (if any) is tested
    and the results say `"diverged": true` (what a comparison wants).
    """
    import keras

    from rnnzoo.tensorboard import RecurrentTensorBoard
    from rnnzoo.training.batches import ShuffledBatches
    from rnnzoo.training.errors import NonFiniteLossError
    from rnnzoo.training.loop import Trainer
    from rnnzoo.training.resume import last_checkpoint, start_or_resume
    from rnnzoo.training.rundir import RunDirectory, default_path
    from rnnzoo.training.summaries import Summaries

    keras.utils.set_random_seed(config.seed)
    run = (
        run_dir
        if isinstance(run_dir, RunDirectory)
        else RunDirectory(run_dir or default_path(RECIPE))
    )
    if data is None:
        saved = run.read_json(VOCABULARY_FILE) if resume and config.task in TEXT_TASKS else None
        data = prepare_data(config, saved, log=log)
    checkpoint = last_checkpoint(run, data.fingerprint) if resume else None
    if not resume:
        run.create(config_io.to_toml(config, header=f"rnnzoo {RECIPE} run: the resolved config."))
        if data.vocabulary is not None:
            run.write_json(VOCABULARY_FILE, data.vocabulary)
    log(f"run directory: {run.path}")

    model = compile_model(build_model(config, data), config, data)
    direction = "bidirectional " if config.bidirectional else ""
    log(
        f"model: {config.layers} {direction}{config.cell} layer(s) of {config.units} units, "
        f"{model.count_params():,} parameters"
    )
    batches = ShuffledBatches(*data.splits["train"], config.batch_size, config.seed)
    steps = min(batches.steps, config.steps_per_epoch) if config.steps_per_epoch else batches.steps
    evaluation_batch = 4 * config.batch_size  # no gradients to keep: bigger batches, fewer steps
    probe_inputs, probe_targets = (array[:PROBE_EXAMPLES] for array in data.splits["validation"])
    views = RecurrentTensorBoard(
        run.events_path("recurrent"),
        probe_data=(probe_inputs, probe_targets),
        scalars_every=config.log_every,
        histograms_every=config.histograms_every,
        gradient_over_time_every=config.probe_every,
        gates_every=config.probe_every,
        activations_every=config.probe_every,
    )
    summaries = Summaries(run)
    trainer = Trainer(
        model,
        batches,
        steps,
        config.batch_size,
        run,
        epochs=config.epochs,
        evaluate=lambda m: scores(m, data, "validation", evaluation_batch),
        checkpoint_every=config.checkpoint_every,
        max_minutes=config.max_minutes,
        callbacks=[views, *callbacks],
        summaries=summaries,
        verbose=verbose,
        log=log,
    )
    start_or_resume(trainer, checkpoint, data.fingerprint, log=log)
    diverged = None
    try:
        trainer.run()
    except NonFiniteLossError as error:
        if not report_divergence:
            raise
        diverged = str(error)
        log(f"{config.cell}: {diverged}")
    finally:
        views.close()
    results = evaluate_best(
        config, run, data, model, trainer.state, summaries, evaluation_batch, log
    )
    summaries.close()
    if diverged:
        results.update(diverged=True, note=diverged.split(";")[0])
    run.write_json(RESULTS_FILE, results)
    return results


def evaluate_best(config, run, data, model, state, summaries, batch_size, log=print):
    """The run's results: the best checkpoint's validation figures and its test score."""
    from rnnzoo.training import checkpoints

    results = {
        "task": config.task,
        "cell": config.cell,
        "metric": data.metric,
        "parameters": int(model.count_params()),
        "epochs": state.epoch,
        "steps": state.global_step,
        "train_seconds": round(state.seconds, 1),
        "best_epoch": state.best_epoch,
        "best_validation_loss": state.best_loss,
        "data": data.fingerprint,
    }
    if not run.checkpoint_path("best").exists():  # diverged before its first evaluation
        return results
    model.set_weights(checkpoints.load(run.checkpoint_path("best")).weights)
    test = scores(model, data, "test", batch_size)
    summaries.scalars("test", state.global_step, test)
    best_record = next(r for r in state.history if r["epoch"] == state.best_epoch)
    prefix = "validation_"
    best_validation = {k[len(prefix) :]: v for k, v in best_record.items() if k.startswith(prefix)}
    results.update(
        best_validation_metric=metric_of(best_validation, data),
        test_loss=test["loss"],
        test_metric=metric_of(test, data),
    )
    log(
        f"best validation {data.metric} {results['best_validation_metric']:.4f} at epoch "
        f"{state.best_epoch}; test {data.metric} {results['test_metric']:.4f} (best checkpoint)"
    )
    return results


# ============================================================================ compare
def finished(run, config):
    """Whether the run has its results and nothing left to do: it diverged, or has no epochs
    or minutes left under `config`."""
    from rnnzoo.training import checkpoints
    from rnnzoo.training.loop import TrainerState
    from rnnzoo.training.resume import work_left

    if not run.file(RESULTS_FILE).exists():
        return False
    if run.read_json(RESULTS_FILE).get("diverged"):
        return True
    state = TrainerState.from_json(checkpoints.load(run.checkpoint_path("last")).state)
    return not work_left(state, config.epochs, config.max_minutes)


def compare(config, run_dir=None, resume=False, log=print, verbose=1):
    """Train every cell of `config.compare` on the same data; returns their results dicts."""
    from rnnzoo import cells
    from rnnzoo.training.compare import parse_names, run_comparison
    from rnnzoo.training.rundir import RunDirectory, default_path

    names = parse_names(config.compare, cells.names())
    run = RunDirectory(run_dir or default_path(RECIPE))
    if not resume:
        run.create(
            config_io.to_toml(config, header=f"rnnzoo {RECIPE} comparison of {', '.join(names)}.")
        )
    data = prepare_data(config, log=log)
    metric = data.metric
    spec = ".4g" if metric == "mse" else ".4f"
    columns = [
        ("cell", "cell", ""),
        ("parameters", "parameters", ","),
        ("steps", "steps", ","),
        (f"best validation {metric}", "best_validation_metric", spec),
        (f"test {metric}", "test_metric", spec),
        ("wall time (s)", "train_seconds", ".1f"),
        ("note", "note", ""),
    ]

    def train_one(name, cell_run, continuing):
        cell_config = dataclasses.replace(config, cell=name, compare="")
        if continuing and finished(cell_run, cell_config):
            log(f"{name}: finished before; its results are kept")
            return cell_run.read_json(RESULTS_FILE)
        return train(
            cell_config,
            cell_run,
            resume=continuing,
            data=data,
            log=log,
            verbose=verbose,
            report_divergence=True,
        )

    rows = run_comparison(names, train_one, run, resume=resume, columns=columns, log=log)
    log(f"results ({run.file('results.md')}):")
    log(run.file("results.md").read_text(encoding="utf-8").rstrip())
    return rows


# ================================================================================= CLI
def build_parser():
    from rnnzoo.training.cli import recipe_parser

    return recipe_parser(
        RECIPE,
        SeqClassConfig,
        "Many-to-one sequence models: the adding problem, row / pixel / permuted-pixel "
        "MNIST, labelled text, IMDB. Flags override --config FILE, which overrides the task's "
        "recipes/seqclass_<task>.toml, which overrides recipes/seqclass.toml.",
        epilog="With --compare, --run-dir holds one run directory per cell and the results table; "
        "--resume continues all of them.",
    )


def _run(config, run_dir, resume=False, verbose=1):
    run = compare if config.compare else train
    return run(config, run_dir, resume=resume, verbose=verbose)


def _main(argv):
    from rnnzoo.training.cli import run_recipe

    return run_recipe(argv, build_parser(), SeqClassConfig, load_config, _run)


def main(argv=None):
    """Entry point: `python -m rnnzoo.recipes.seqclass ...`; returns the exit status."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
