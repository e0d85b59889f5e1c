r"""Classify digits from a series of glimpses: the recurrent attention model (RAM).

"Even where you might not expect a sequence": the network sees an MNIST digit
only through a few small multi-resolution glimpses, each at a location it
chose after the last (Mnih, Heess, Graves, Kavukcuoglu 2014; Ba, Mnih,
Kavukcuoglu 2015). The model is `rnnzoo.models.ram.RecurrentAttentionModel`;
its core network is any rnnzoo cell (`--cell`).

    python -m rnnzoo.recipes.glimpse_mnist                          # 28x28 MNIST, 6 glimpses
    python -m rnnzoo.recipes.glimpse_mnist --dataset translated     # 60x60, 3 scales of 12x12
    python -m rnnzoo.recipes.glimpse_mnist --dataset cluttered      # 60x60, 4 pieces, 8 glimpses
    python -m rnnzoo.recipes.glimpse_mnist --attention soft         # bilinear glimpses, backprop
    python -m rnnzoo.recipes.glimpse_mnist --mnist-dir ../shared/data/mnist --cell lstm
    python -m rnnzoo.recipes.glimpse_mnist --resume --run-dir tensorboard_logs/glimpse_mnist/<stamp>
    python -m rnnzoo.recipes.glimpse_mnist export --run-dir tensorboard_logs/glimpse_mnist/<stamp>

Datasets (generated deterministically from MNIST and `--seed`):

    mnist        the 28x28 digits as they are
    translated   each digit at a random place on a --size x --size canvas (default 60)
    cluttered    the same plus --pieces random 8x8 pieces of other digits

Top to bottom:

1. Config. `glimpse_mnist.toml`, then the dataset's own defaults
   (`glimpse_mnist_<dataset>.toml`, both in the repository's recipes/ folder),
   then `--config FILE`, then flags.
2. Data. MNIST (tensorflow-datasets, `TFDS_DATA_DIR` honoured, or the raw IDX
   files of `--mnist-dir`), 5,000 training images held out for validation,
   then the dataset's images made from each split with its own seed.
3. Model and training. Hard attention trains on the hybrid loss
   (cross-entropy + REINFORCE with a learned baseline); soft attention on the
   cross-entropy alone. `rnnzoo.training.runner` runs the epochs, saves
   checkpoints atomically, resumes exactly, and keeps the best checkpoint on
   validation error; evaluation averages `--eval-samples` episodes per image.
4. TensorBoard (in the run directory): loss, accuracy, reward, baseline,
   policy-gradient variance, gradient norms and histograms (`recurrent/`), the
   location policy's mean position at each glimpse, and pictures of the
   glimpse paths on fixed test digits with the patches read (`glimpses/`).
"""

import dataclasses
import sys

import keras
import numpy as np

from rnnzoo import cells
from rnnzoo.data.glimpse_mnist import check_dataset, make_images
from rnnzoo.data.mnist import hold_out, load_mnist
from rnnzoo.layers.glimpse import GlimpseSensor
from rnnzoo.models.ram import RecurrentAttentionModel
from rnnzoo.tensorboard import RecurrentTensorBoard
from rnnzoo.tensorboard.attention import GlimpseViews
from rnnzoo.training import checks, cli, optimizers, precision, runner
from rnnzoo.training.batches import ShuffledBatches
from rnnzoo.training.compare import cell_names
from rnnzoo.training.config import option
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.resume import fingerprint
from rnnzoo.training.rundir import RECURRENT_VIEWS

DATASETS = ("mnist", "translated", "cluttered")
ATTENTION = ("hard", "soft")
MNIST_SIDE = 28
COUNTS = (
    *("pieces", "piece_size", "mnist_validation", "glimpses", "patch", "scales", "scale"),
    *("units", "glimpse_units", "location_units", "samples", "eval_samples", "batch_size"),
    "epochs",
)
COUNTS_OR_OFF = (
    *("steps_per_epoch", "max_minutes", "checkpoint_every", "log_every", "histograms_every"),
    *("views_every", "view_examples", "clip_norm", "lr_decay_after", "lr_warmup_steps"),
)


@dataclasses.dataclass
class GlimpseConfig:
    """The recipe's hyperparameters; defaults equal `recipes/glimpse_mnist.toml` (a test checks)."""

    dataset: str = option("mnist", "mnist (28x28), translated or cluttered (a larger canvas)")
    size: int = option(60, "translated, cluttered: side of the canvas in pixels")
    pieces: int = option(4, "cluttered: pieces of other digits scattered on each canvas")
    piece_size: int = option(8, "cluttered: side of each piece in pixels")
    mnist_dir: str = option(
        "", "folder with the four raw MNIST IDX .gz files; empty: tensorflow-datasets"
    )
    mnist_validation: int = option(5000, "training images held out for validation")
    # -- model
    attention: str = option(
        "hard", "hard: sampled glimpses trained by REINFORCE; soft: bilinear glimpses, backprop"
    )
    glimpses: int = option(6, "glimpses per image")
    patch: int = option(8, "side of the retina's finest patch in pixels")
    scales: int = option(1, "patches per glimpse, each --scale times wider than the last")
    scale: int = option(2, "width ratio of consecutive patches")
    cell: str = option("irnn", "core network, any name rnnzoo.cells.get knows (irnn: ReLU RNN)")
    units: int = option(256, "units of the core network")
    cell_args: str = option(
        "",
        "more arguments of the core cell, TOML `key = value` pairs separated by commas, "
        "e.g. 'identity_scale = 0.5' (irnn); empty: the cell's defaults",
    )
    glimpse_units: int = option(128, "hidden units reading the retina (h_g)")
    location_units: int = option(128, "hidden units reading the location (h_l)")
    loc_std: float = option(0.15, "standard deviation of the location policy (hard attention)")
    samples: int = option(1, "episodes per image in training (M)")
    eval_samples: int = option(10, "episodes per image averaged at evaluation (hard attention)")
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
    clip_norm: float = option(5.0, "clip the global gradient norm to this; 0: off")
    batch_size: int = option(64, "images per batch")
    epochs: int = option(20, "passes over the training set")
    steps_per_epoch: int = option(0, "batches per epoch; 0: one full pass")
    max_minutes: float = option(
        0.0, "stop training after this many minutes (across resumes); 0: no limit"
    )
    checkpoint_every: int = option(
        200, "save checkpoints/last.ckpt every this many steps (and each epoch)"
    )
    seed: int = option(1, "seed of the datasets, the split, the weights and the glimpse noise")
    dtype_policy: str = option("float32", precision.HELP)
    # -- TensorBoard
    log_every: int = option(10, "write the training figures every this many steps")
    histograms_every: int = option(
        200, "weight and gradient histograms every this many steps; 0: off"
    )
    views_every: int = option(
        200, "glimpse-path pictures and mean locations every this many steps; 0: off"
    )
    view_examples: int = option(6, "test digits drawn in the glimpse-path pictures")
    compare: str = option("", "cells to train one after another as the core, e.g. irnn,lstm,gru")

    def image_side(self):
        return MNIST_SIDE if self.dataset == "mnist" else self.size

    def validate(self):
        for name, allowed in (
            ("dataset", DATASETS),
            ("attention", ATTENTION),
            ("cell", cells.names()),
            ("optimizer", optimizers.names()),
        ):
            checks.one_of(self, name, allowed)
        checks.at_least(self, 1, *COUNTS)
        checks.at_least(self, 0, *COUNTS_OR_OFF)
        checks.positive_number(self, "lr", "loc_std")
        checks.factor(self, "lr_decay")
        checks.seed(self)
        precision.check(self)
        checks.cell_args(self, cell_names(self), refused=("units", "name", "seed"), of=cells.get)
        if self.attention == "soft" and self.samples > 1:
            raise RecipeError(
                f"--samples {self.samples} repeats each image with the same glimpses under soft "
                "attention (its locations are not sampled); leave --samples at 1, or pass "
                "--attention hard."
            )
        # The library's errors name its own arguments; say which flags set them.
        flags = f"--dataset {self.dataset} --size {self.size}"
        if self.dataset == "cluttered":
            flags += f" --pieces {self.pieces} --piece-size {self.piece_size}"
        try:
            check_dataset(self.dataset, self.size, self.pieces, self.piece_size)
        except ValueError as error:
            raise RecipeError(f"{flags}: {str(error).rstrip('.')}.") from None
        flags = f"--patch {self.patch} --scales {self.scales} --scale {self.scale}"
        try:
            sensor = GlimpseSensor(self.patch, self.scales, self.scale, mode=self.attention)
            sensor.check_fits(self.image_side(), self.image_side())
        except ValueError as error:
            raise RecipeError(f"{flags}: {str(error).rstrip('.')}.") from None


# The datasets' own defaults files, in the configs folder (plain MNIST has none).
DATASET_FILES = {
    "mnist": None,
    "translated": "glimpse_mnist_translated.toml",
    "cluttered": "glimpse_mnist_cluttered.toml",
}
SMOKE = dict(  # --smoke: a few steps of a tiny model, seconds
    mnist_validation=1000,
    glimpses=2,
    units=8,
    glimpse_units=8,
    location_units=8,
    eval_samples=1,
    batch_size=16,
    epochs=1,
    steps_per_epoch=4,
    histograms_every=0,
    views_every=0,
)


# =============================================================================== data
@dataclasses.dataclass
class Images:
    """ "train" / "validation" / "test" -> (uint8 images, int32 labels), and their fingerprint."""

    splits: dict
    fingerprint: str
    vocabulary = None  # (no vocabulary.json)


def prepare_data(config, vocabulary=None, log=print):
    """MNIST, 5,000 training images held out, then the dataset's images made from each split."""
    train_images, train_labels, test_images, test_labels = load_mnist(config.mnist_dir or None)
    kept, held_out = hold_out(train_images, train_labels, config.mnist_validation, config.seed)
    splits = {}
    for index, (split, (images, labels)) in enumerate(
        (("train", kept), ("validation", held_out), ("test", (test_images, test_labels)))
    ):
        made = make_images(
            config.dataset,
            images,
            size=config.size,
            pieces=config.pieces,
            piece_size=config.piece_size,
            seed=3 * config.seed + index,  # each split its own images
        )
        splits[split] = (made, labels.astype(np.int32))
    name = describe_dataset(config)
    sizes = " / ".join(f"{len(splits[s][0]):,}" for s in ("train", "validation", "test"))
    side = splits["train"][0].shape[1]
    log(f"data: {name}, {sizes} images (train / validation / test) of {side}x{side}")
    return Images(splits, fingerprint(name, splits))


def describe_dataset(config):
    if config.dataset == "mnist":
        return "mnist"
    if config.dataset == "translated":
        return f"translated({config.size}x{config.size})"
    return (
        f"cluttered({config.size}x{config.size}, {config.pieces} pieces of "
        f"{config.piece_size}x{config.piece_size})"
    )


# ============================================================================== model
def build_model(config, vocabulary=None, inference=False):
    """The RAM, built for the dataset's images; compiled (its own hybrid loss) unless for
    `inference` (model.keras). Under a mixed `dtype_policy` its outputs stay float32."""
    with checks.cell_args_values(config), precision.dtype_policy(config.dtype_policy):
        model = RecurrentAttentionModel(
            num_classes=10,
            glimpses=config.glimpses,
            patch_size=config.patch,
            num_scales=config.scales,
            scale=config.scale,
            cell=config.cell,
            units=config.units,
            cell_args=checks.keyword_arguments(config, "cell_args"),
            glimpse_units=config.glimpse_units,
            location_units=config.location_units,
            location_std=config.loc_std,
            attention=config.attention,
            samples=config.samples,
            eval_samples=config.eval_samples,
            seed=config.seed,
            name="ram",
        )
        model.build((None, config.image_side(), config.image_side()))
    if not inference:
        model.compile(
            optimizer=optimizers.make_optimizer(config.optimizer, config.lr, config.clip_norm)
        )
    return model


def scores(model, images, labels, batch_size):
    """`{"loss", "accuracy", "error"}` on one split (episodes averaged per image)."""
    values = model.evaluate(images, labels, batch_size=batch_size, verbose=0, return_dict=True)
    values = {name: float(value) for name, value in values.items()}
    values["error"] = 1.0 - values["accuracy"]
    return values


# ============================================================================== train
def plan(config, data, model, run):
    """Shuffled batches, validation error picks the best checkpoint, the glimpse views."""
    batches = ShuffledBatches(*data.splits["train"], config.batch_size, config.seed)
    evaluation_batch = max(1, 4 * config.batch_size // config.eval_samples)
    step_views = RecurrentTensorBoard(
        run.events_path(RECURRENT_VIEWS),
        scalars_every=config.log_every,
        histograms_every=config.histograms_every,
        gradient_over_time_every=0,
        gates_every=0,
        activations_every=0,
    )
    glimpse_views = GlimpseViews(
        run.events_path("glimpses"),
        *(array[: config.view_examples] for array in data.splits["test"]),
        every=config.views_every,
    )
    return runner.Plan(
        description=f"RAM, {config.attention} attention, {config.glimpses} glimpses of "
        f"{config.scales} x {config.patch}x{config.patch}, {config.cell} core of "
        f"{config.units} units",
        batches=batches,
        steps_per_epoch=min(batches.steps, config.steps_per_epoch or batches.steps),
        batch_size=config.batch_size,
        evaluate=lambda model: scores(model, *data.splits["validation"], evaluation_batch),
        test=lambda model: scores(model, *data.splits["test"], evaluation_batch),
        monitor="error",  # the paper's figure; the loss of averaged episodes rises as they sharpen
        learning_rate=optimizers.Schedule(config),
        callbacks=[step_views, glimpse_views],
    )


def summary(config, results):
    episodes = 1 if config.attention == "soft" else config.eval_samples
    return (
        f"best validation error {100 * results['best_validation_error']:.2f}% at epoch "
        f"{results['best_epoch']}; test error {100 * results['test_error']:.2f}% "
        f"(best checkpoint, {episodes} episode(s) per image)"
    )


RECIPE = runner.Recipe(
    name="glimpse_mnist",
    config_class=GlimpseConfig,
    description="The recurrent attention model (RAM): classify MNIST digits from a series of "
    "glimpses.",
    defaults="glimpse_mnist.toml",
    variant="dataset",
    variants=DATASET_FILES,
    smoke=SMOKE,
    prepare_data=prepare_data,
    build_model=build_model,
    plan=plan,
    summary=summary,
    # The RAM is a subclassed model: a SavedModel's `serve` takes a batch of uint8 images.
    serving_signature=lambda config: [
        keras.InputSpec(shape=(None, config.image_side(), config.image_side()), dtype="uint8")
    ],
    no_onnx=(
        "the attention model samples its glimpse locations with TensorFlow's stateless random "
        "ops, which ONNX has no counterpart of (tf2onnx leaves them unconverted); export "
        "--format tf_saved_model for serving instead."
    ),
)


def main(argv=None):
    """`python -m rnnzoo.recipes.glimpse_mnist [train|export] ...`; returns the exit status."""
    return cli.main(RECIPE, argv)


if __name__ == "__main__":
    sys.exit(main())
