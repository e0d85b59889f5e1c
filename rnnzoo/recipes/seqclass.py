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
    python -m rnnzoo.recipes.seqclass export --run-dir tensorboard_logs/seqclass/<stamp>

Top to bottom:

1. Config. `seqclass.toml`, then the task's own defaults (`seqclass_<task>.toml`,
   both in the repository's recipes/ folder), then `--config FILE`, then flags.
2. Data. Train / validation / test arrays for the task (`prepare_data`); text
   gets a vocabulary built on the training split, saved in the run directory.
3. Model. `rnnzoo.models.classifier.build_sequence_classifier`: [embedding
   with masking] -> stacked (optionally bidirectional) recurrent layers ->
   Dense; cross-entropy on logits, or mean squared error for regression.
4. Training (`rnnzoo.training.runner`): `ShuffledBatches` (a new order each
   epoch, reproduced exactly on `--resume`), validation each epoch, TensorBoard
   views of the gradients over time, the test set on the best checkpoint.
5. Comparison. `--compare vanilla,irnn,lstm,...` trains each cell on the same
   data with the same budget and seed, one run directory (and TensorBoard run)
   per cell, and writes `results.md` / `results.csv` beside them.
"""

import dataclasses
import sys
from pathlib import Path

import keras
import numpy as np

from rnnzoo import cells
from rnnzoo.data.adding import BASELINE_MSE, adding_splits
from rnnzoo.data.imdb import load_imdb
from rnnzoo.data.labelled_text import (
    FORMATS,
    LEVELS,
    TokenVocabulary,
    read_labelled_text,
    split_indices,
)
from rnnzoo.data.mnist import (
    NUM_CLASSES,
    SIDE,
    as_sequences,
    hold_out,
    load_mnist,
    pixel_permutation,
)
from rnnzoo.models.classifier import build_sequence_classifier
from rnnzoo.tensorboard import RecurrentTensorBoard
from rnnzoo.training import checks, cli, optimizers, precision, runner
from rnnzoo.training.batches import ShuffledBatches
from rnnzoo.training.compare import cell_names
from rnnzoo.training.config import option
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.resume import fingerprint
from rnnzoo.training.rundir import RECURRENT_VIEWS, VOCABULARY_FILE

TASKS = ("adding", "row-mnist", "pixel-mnist", "permuted-pixel-mnist", "text", "imdb")
# The MNIST tasks and the order in which each reads an image (rnnzoo.data.mnist.as_sequences).
MNIST_ORDERS = {
    "row-mnist": "row",
    "pixel-mnist": "pixel",
    "permuted-pixel-mnist": "permuted-pixel",
}
PROBE_EXAMPLES = 16
# The recurrent layers' arguments this recipe sets besides every recipe's: from its own keys.
RECIPE_LAYER_ARGUMENTS = (*checks.RECIPE_LAYER_ARGUMENTS, "recurrent_dropout", "chrono_timescale")
# Config values that count something, and those where 0 means "off" or "all".
COUNTS = (
    *("adding_train_size", "adding_eval_size", "mnist_validation", "embedding_dim"),
    *("units", "layers", "batch_size", "epochs"),
)
COUNTS_OR_OFF = (
    *("max_length", "min_count", "max_vocabulary", "steps_per_epoch", "max_minutes"),
    *("checkpoint_every", "log_every", "histograms_every", "probe_every"),
    *("clip_norm", "clip_value", "lr_decay_after", "lr_warmup_steps"),
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
    chrono_timescale: float = option(
        0.0,
        "LSTM cells: chrono initialisation of the forget and input gate biases for "
        "dependencies up to this many steps (Tallec & Ollivier 2018); 0: off",
    )
    cell_args: str = option(
        "",
        "more arguments of each recurrent layer, TOML `key = value` pairs separated by "
        "commas, e.g. 'norm_epsilon = 1.0' (layernorm_lstm); empty: the layer's defaults",
    )
    # -- training
    optimizer: str = option("adam", "adam, rmsprop or adagrad")
    lr: float = option(0.001, "learning rate")
    lr_decay: float = option(
        1.0, "learning-rate factor per epoch after lr_decay_after epochs; 1: constant"
    )
    lr_decay_after: int = option(20, "epochs at the full learning rate before it decays")
    lr_warmup_steps: int = option(
        0, "optimizer steps at the run's start over which the learning rate rises linearly to lr"
    )
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
    dtype_policy: str = option("float32", precision.HELP)
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
        checks.factor(self, "lr_decay")
        checks.seed(self)
        names = cell_names(self)
        if self.chrono_timescale:
            for name in names:
                cell = cells.get(name)
                if not (
                    self.chrono_timescale >= 2
                    and issubclass(cell, cells.LSTMCell)
                    and "f" in cell.gate_names
                ):
                    raise RecipeError(
                        "`chrono_timescale` sets an LSTM cell's forget-gate bias: it must be 0 "
                        "(off), or a number of steps >= 2 with LSTM cells that have a forget "
                        f"gate; received chrono_timescale={self.chrono_timescale!r} with cell "
                        f"{name!r}."
                    )
        checks.cell_args(self, names, refused=RECIPE_LAYER_ARGUMENTS)
        precision.check(self)
        if self.task == "text" and not self.data:
            raise RecipeError(
                "--task text needs --data FILE: a TSV file of `label<TAB>text` lines or a CSV file "
                "with a header (e.g. ../shared/data/sms_spam/SMSSpamCollection)."
            )

    @property
    def metric(self):
        """The task's figure: mean squared error (adding) or accuracy."""
        return "mse" if self.task == "adding" else "accuracy"


# The task's own defaults file, in the configs folder (dashes as underscores).
TASK_FILES = {task: f"seqclass_{task.replace('-', '_')}.toml" for task in TASKS}
SMOKE = dict(  # --smoke: a few steps of a tiny model on a little data, seconds
    length=20,
    adding_train_size=256,
    adding_eval_size=64,
    max_length=20,
    units=8,
    batch_size=16,
    epochs=1,
    steps_per_epoch=4,
    histograms_every=0,
    probe_every=0,
)


# =============================================================================== data
@dataclasses.dataclass
class TaskData:
    """A task's arrays: "train" / "validation" / "test" -> (inputs, targets)."""

    name: str
    splits: dict
    fingerprint: str = ""
    vocabulary: dict = None  # text: the token vocabulary and class names (vocabulary.json)

    def describe(self, config):
        sizes = " / ".join(f"{len(self.splits[s][0]):,}" for s in ("train", "validation", "test"))
        shape = "x".join(str(n) for n in self.splits["train"][0].shape[1:])
        classes = model_inputs(config, self.vocabulary).get("num_classes")
        what = f"{classes} classes" if classes else "regression"
        return (
            f"{self.name}: {sizes} sequences (train / validation / test) of shape {shape}, {what}"
        )


def prepare_data(config, vocabulary=None, log=print):
    """The task's `TaskData`; `vocabulary` (a run's vocabulary.json) reuses its token ids."""
    if config.task == "adding":
        splits = adding_splits(
            config.length, config.adding_train_size, config.adding_eval_size, config.seed
        )
        data = TaskData(f"adding(T={config.length})", splits)
    elif config.task in MNIST_ORDERS:
        data = _mnist(config)
    else:
        data = _text(config, vocabulary)
    data.fingerprint = fingerprint(data.name, data.splits)
    log(f"data: {data.describe(config)}")
    if config.task == "adding":
        test_targets = data.splits["test"][1]
        log(
            "baseline: predicting 1.0 scores test MSE "
            f"{float(np.mean((test_targets - 1.0) ** 2)):.4f} (expected {BASELINE_MSE:.4f})"
        )
    return data


def _mnist(config):
    train_images, train_labels, test_images, test_labels = load_mnist(config.mnist_dir or None)
    kept, held_out = hold_out(train_images, train_labels, config.mnist_validation, config.seed)
    order = MNIST_ORDERS[config.task]
    permutation = pixel_permutation(config.seed) if order == "permuted-pixel" else None

    def split(images, labels):
        return as_sequences(images, order, permutation), labels.astype(np.int32)

    splits = {
        "train": split(*kept),
        "validation": split(*held_out),
        "test": split(test_images, test_labels),
    }
    return TaskData(config.task, splits)


def _text(config, saved_vocabulary=None):
    if config.task == "imdb":
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
    return TaskData(described, splits, vocabulary={**vocabulary.to_json(), "classes": classes})


# ============================================================================== model
def model_inputs(config, vocabulary):
    """What the model reads and predicts, from the task (and a text task's vocabulary)."""
    if config.task == "adding":
        return {"input_features": 2}  # (value, marker) per step; one number out
    if config.task in MNIST_ORDERS:
        features = SIDE if MNIST_ORDERS[config.task] == "row" else 1
        return {"input_features": features, "num_classes": NUM_CLASSES}
    tokens = TokenVocabulary.from_json(vocabulary, source=VOCABULARY_FILE)
    return {"vocab_size": len(tokens), "num_classes": len(vocabulary["classes"])}


def build_model(config, vocabulary=None, inference=False):
    """The classifier (or regressor), compiled unless for `inference` (model.keras)."""
    with checks.cell_args_values(config), precision.dtype_policy(config.dtype_policy):
        model = build_sequence_classifier(
            **model_inputs(config, vocabulary),
            embedding_dim=config.embedding_dim,
            cell=config.cell,
            units=config.units,
            num_layers=config.layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout,
            chrono_timescale=config.chrono_timescale or None,
            cell_args=checks.keyword_arguments(config, "cell_args"),
            seed=config.seed,
        )
    if inference:
        return model
    if config.metric == "mse":
        loss, metric = keras.losses.MeanSquaredError(), keras.metrics.MeanSquaredError("mse")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=optimizers.make_optimizer(
            config.optimizer, config.lr, config.clip_norm, config.clip_value
        ),
        loss=loss,
        metrics=[metric],
        # XLA is slower than TensorFlow's own kernels for these loops on CPU.
        jit_compile=False,
    )
    return model


def scores(model, data, split, batch_size):
    """`{"loss": ..., "accuracy": ...}` or `{"loss": ..., "mse": ...}` on one split."""
    inputs, targets = data.splits[split]
    values = model.evaluate(inputs, targets, batch_size=batch_size, verbose=0, return_dict=True)
    return {name: float(value) for name, value in values.items()}


# ============================================================================== train
def plan(config, data, model, run):
    """Shuffled batches, the validation and test scores, the recurrent views."""
    batches = ShuffledBatches(*data.splits["train"], config.batch_size, config.seed)
    evaluation_batch = 4 * config.batch_size  # no gradients to keep: bigger batches, fewer steps
    probe_inputs, probe_targets = (array[:PROBE_EXAMPLES] for array in data.splits["validation"])
    views = RecurrentTensorBoard(
        run.events_path(RECURRENT_VIEWS),
        probe_data=(probe_inputs, probe_targets),
        scalars_every=config.log_every,
        histograms_every=config.histograms_every,
        gradient_over_time_every=config.probe_every,
        gates_every=config.probe_every,
        activations_every=config.probe_every,
    )
    direction = "bidirectional " if config.bidirectional else ""
    return runner.Plan(
        description=f"{config.layers} {direction}{config.cell} layer(s) of {config.units} units",
        batches=batches,
        steps_per_epoch=min(batches.steps, config.steps_per_epoch or batches.steps),
        batch_size=config.batch_size,
        evaluate=lambda model: scores(model, data, "validation", evaluation_batch),
        test=lambda model: scores(model, data, "test", evaluation_batch),
        metric=config.metric,
        learning_rate=optimizers.Schedule(config),
        callbacks=[views],
    )


RECIPE = runner.Recipe(
    name="seqclass",
    config_class=SeqClassConfig,
    description="Many-to-one sequence models: the adding problem, row / pixel / permuted-pixel "
    "MNIST, labelled text, IMDB; --compare trains several cells side by side.",
    defaults="seqclass.toml",
    variant="task",
    variants=TASK_FILES,
    smoke=SMOKE,
    prepare_data=prepare_data,
    build_model=build_model,
    plan=plan,
)


def main(argv=None):
    """`python -m rnnzoo.recipes.seqclass [train|export] ...`; returns the exit status."""
    return cli.main(RECIPE, argv)


if __name__ == "__main__":
    sys.exit(main())
