r"""The character-level language model recipe: min-char-rnn / char-rnn in Keras.

Train (the default command), sample, find interpretable cells, export:

    python -m rnnzoo.recipes.charlm                         # Tiny Shakespeare, recipes/charlm.toml
    python -m rnnzoo.recipes.charlm --data input.txt --cell gru --units 128
    python -m rnnzoo.recipes.charlm --config min_char_rnn   # recipes/min_char_rnn.toml
    python -m rnnzoo.recipes.charlm --resume --run-dir tensorboard_logs/charlm/<stamp>
    python -m rnnzoo.recipes.charlm sample --run-dir tensorboard_logs/charlm/<stamp> \
        --prime "ROMEO:" --length 300 --temperature 0.8 --seed 1
    python -m rnnzoo.recipes.charlm inspect --run-dir tensorboard_logs/charlm/<stamp>
    python -m rnnzoo.recipes.charlm export --run-dir tensorboard_logs/charlm/<stamp>
    python -m rnnzoo.recipes.charlm --compare peephole,nig,nfg,nog,niaf,noaf,np,cifg,fgr

Top to bottom, as in the lecture:

1. Data. Tiny Shakespeare from tensorflow-datasets (or `--data FILE`, split
   by position: 90/5/5, or `--train-fraction` / `--validation-fraction`; or,
   offline with nothing cached, the Python standard library's sources),
   encoded with a character vocabulary.
2. Batches. Truncated backprop through time with carried state: the text is
   cut into `batch_size` contiguous streams; batch k+1 continues every stream
   where batch k stopped (`rnnzoo.data.TextStreams`). The model is stateful,
   so its hidden state flows from batch to batch while gradients stop after
   `seq_length` steps. States are zeroed at each epoch and for evaluation.
   With `--distribute`, the streams are shared out over the replicas and each
   carries its own streams' states (`rnnzoo.training.distribute`).
3. Model. `rnnzoo.models.build_char_lm`: embedding (or one-hot) -> stacked
   recurrent layers -> logits; loss = mean cross-entropy in nats/char
   (bits/char = nats / ln 2).
4. Training (`rnnzoo.training.runner`): `model.fit` per epoch with Keras's
   progress bar, validation each epoch, checkpoints, exact `--resume`, the
   test split on the best checkpoint, and model.keras: the model in its
   sampling form (stateless, any batch), ready for `predict`.
5. Sampling. Prime, then sample a character, feed it back in, repeat
   (`rnnzoo.models.generate`; greedy at temperature 0, top-k, beam search).
"""

import dataclasses
import hashlib
import math
import sys

import keras

from rnnzoo import cells
from rnnzoo.data import DataError, TextStreams, Vocabulary, load_corpus, read_text
from rnnzoo.data.text import check_fractions
from rnnzoo.models import StreamEvaluator, beam_search, build_char_lm, generate
from rnnzoo.tensorboard import default_callbacks, interpretable
from rnnzoo.training import checkpoints, checks, cli, distribute, optimizers, precision, runner
from rnnzoo.training import config as config_io
from rnnzoo.training.compare import cell_names
from rnnzoo.training.config import option
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import RECURRENT_VIEWS, VOCABULARY_FILE, RunDirectory

NATS_PER_BIT = math.log(2.0)
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class CharLMConfig:
    """The char LM's hyperparameters; defaults equal `recipes/charlm.toml` (a test checks)."""

    data: str = option("", "UTF-8 text file, split by position; empty: Tiny Shakespeare")
    train_fraction: float = option(0.9, "share of --data's text, from its start, to train on")
    validation_fraction: float = option(0.05, "share after it for validation; the rest is test")
    cell: str = option("lstm", "recurrent cell, any name rnnzoo.cells.get knows")
    layers: int = option(2, "stacked recurrent layers")
    units: int = option(256, "hidden units per layer")
    embedding_dim: int = option(64, "character embedding size; 0: one-hot input (min-char-rnn)")
    dropout: float = option(0.1, "dropout after each recurrent layer")
    cell_args: str = option(
        "",
        "more arguments of each recurrent layer, TOML `key = value` pairs separated by "
        "commas, e.g. 'unit_forget_bias = false'; empty: the layer's defaults",
    )
    seq_length: int = option(100, "steps per batch; gradients stop after this many (TBPTT)")
    batch_size: int = option(64, "contiguous streams trained side by side")
    epochs: int = option(15, "passes over the training streams")
    steps_per_epoch: int = option(0, "batches per epoch; 0: one full pass over the streams")
    lr: float = option(0.002, "learning rate")
    lr_decay: float = option(0.85, "learning-rate factor per epoch after lr_decay_after epochs")
    lr_decay_after: int = option(5, "epochs at the full learning rate before it decays")
    lr_warmup_steps: int = option(
        0, "optimizer steps at the run's start over which the learning rate rises linearly to lr"
    )
    optimizer: str = option("adam", "adam, rmsprop (char-rnn) or adagrad (min-char-rnn)")
    clip_norm: float = option(5.0, "clip the global gradient norm to this; 0: off")
    clip_value: float = option(0.0, "clip each gradient element to +-this; 0: off")
    seed: int = option(1, "seed of the weights, the dropout masks and the samples")
    checkpoint_every: int = option(
        50, "save checkpoints/last.ckpt every this many steps (and each epoch)"
    )
    max_minutes: float = option(
        14.0, "stop training after this many minutes (across resumes); 0: no limit"
    )
    log_every: int = option(10, "write the batch loss to TensorBoard every this many steps")
    sample_length: int = option(500, "characters of the sample printed at the end")
    epoch_sample_length: int = option(200, "characters sampled to TensorBoard each epoch; 0: none")
    sample_temperature: float = option(0.8, "temperature of the end-of-training sample")
    views: bool = option(True, "write the TensorBoard views (gradients, gates, dL/dh_t, ...)")
    dtype_policy: str = option("float32", precision.HELP)
    compare: str = option("", "cells to train one after another on the same text, e.g. lstm,gru")

    def validate(self):
        checks.one_of(self, "optimizer", optimizers.names())
        if self.cell.lower() not in cells.names():
            checks.one_of(self, "cell", cells.names())
        checks.at_least(self, 1, *("layers", "units", "seq_length", "batch_size", "epochs"))
        checks.at_least(self, 1, "sample_length")
        checks.at_least(
            self,
            0,
            *("embedding_dim", "steps_per_epoch", "lr_decay_after", "lr_warmup_steps"),
            "checkpoint_every",
            *("log_every", "clip_norm", "clip_value", "max_minutes", "sample_temperature"),
            "epoch_sample_length",
        )
        checks.fraction(self, "dropout")
        self.split_fractions()
        checks.positive_number(self, "lr")
        checks.factor(self, "lr_decay")
        checks.seed(self)
        checks.cell_args(self, cell_names(self))
        precision.check(self)

    def split_fractions(self):
        """(train, validation, test) shares of a --data file; a RecipeError unless both lie in
        (0, 1) and leave a test split."""
        try:
            return check_fractions(
                (self.train_fraction, self.validation_fraction),
                what="train_fraction and validation_fraction",
            )
        except DataError as error:
            raise RecipeError(str(error)) from None


SMOKE = dict(  # --smoke: a few steps of a tiny model, seconds
    layers=1,
    units=16,
    embedding_dim=8,
    seq_length=16,
    batch_size=4,
    epochs=1,
    steps_per_epoch=5,
    checkpoint_every=0,
    max_minutes=0.0,
    sample_length=40,
    epoch_sample_length=0,
)


# ============================================================================== data
@dataclasses.dataclass
class Data:
    """The corpus encoded: vocabulary, streams of each split, and a fingerprint of the text."""

    vocabulary: Vocabulary
    train: TextStreams
    validation: TextStreams
    test: TextStreams
    fingerprint: str


def prepare_data(config, vocabulary=None, log=print):
    """Load the corpus, build the vocabulary (or reuse the run's: `vocabulary`, its JSON), cut
    each split into streams."""
    corpus = load_corpus(config.data or None, log=log, fractions=config.split_fractions())
    log(f"data: {corpus.describe()}")
    if vocabulary is None:
        vocabulary = Vocabulary.from_text(*(corpus.split(split) for split in SPLITS))
    else:
        vocabulary = Vocabulary.from_json(vocabulary, source=VOCABULARY_FILE)
    ids = {s: vocabulary.encode(corpus.split(s), what=f"{s} split") for s in SPLITS}
    train = TextStreams(ids["train"], config.batch_size, config.seq_length, what="training text")
    validation, test = (
        TextStreams.for_evaluation(ids[s], config.batch_size, config.seq_length, what=f"{s} split")
        for s in ("validation", "test")
    )
    log(
        f"vocabulary: {len(vocabulary)} characters; {train.batch_size} streams of "
        f"{train.stream_length:,} characters, {train.steps} batches of {config.seq_length} "
        "steps per pass"
    )
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(corpus.split(split).encode("utf-8") + b"\0")
    fingerprint = f"{corpus.name}:{digest.hexdigest()[:16]}"
    return Data(vocabulary, train, validation, test, fingerprint)


# ============================================================================= model
def build_model(config, vocabulary, inference=False):
    """The char LM: stateful with a fixed batch and compiled to train; stateless and
    batch-free to sample (`inference`, what model.keras holds). Same weights either way."""
    size = len(Vocabulary.from_json(vocabulary, source=VOCABULARY_FILE))
    if inference:
        return char_lm(config, size)
    optimizer = optimizers.make_optimizer(
        config.optimizer, config.lr, config.clip_norm, config.clip_value
    )
    # Each replica carries the states of its own streams: its share of the batch.
    batch_size = distribute.replica_batch_size(config.batch_size)
    return compile_model(char_lm(config, size, batch_size), optimizer)


def char_lm(config, vocab_size, batch_size=None):
    """`rnnzoo.models.build_char_lm` as `config` says; stateful when given a `batch_size`."""
    with checks.cell_args_values(config), precision.dtype_policy(config.dtype_policy):
        return build_char_lm(
            vocab_size,
            cell=config.cell,
            units=config.units,
            num_layers=config.layers,
            embedding_dim=config.embedding_dim,
            dropout=config.dropout,
            cell_args=checks.keyword_arguments(config, "cell_args"),
            batch_size=batch_size,
            stateful=batch_size is not None,
            seed=config.seed,
        )


def compile_model(model, optimizer=None):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Measured: XLA is slower than TensorFlow's own kernels for this model on CPU.
        jit_compile=False,
    )
    return model


def bits(loss):
    """The loss (nats/char) in bits/char."""
    return {"bits_per_char": loss / NATS_PER_BIT}


def describe_loss(loss):
    return f"{loss:.4f} nats/char ({loss / NATS_PER_BIT:.4f} bits/char)"


def sample_text(model, vocabulary, length, prime="", **options):
    """Continuations of `prime` (default "\\n"), each returned as prime + sampled text.

    `options` go to `rnnzoo.models.generate` (temperature, top_k, num_samples, seed).
    """
    prime = prime or default_prime(vocabulary)
    ids = generate(model, vocabulary.encode(prime, what="--prime text"), length, **options)
    return [prime + vocabulary.decode(row) for row in ids]


def default_prime(vocabulary):
    return "\n" if "\n" in vocabulary.index else vocabulary.chars[0]


# ============================================================================= train
def plan(config, data, model, run):
    """TBPTT over the streams, losses in nats and bits per character, a sample each epoch and
    at the end (from the stateless sampling model), the recurrent views."""
    size = len(data.vocabulary)
    evaluator = StreamEvaluator(lambda batch: compile_model(char_lm(config, size, batch)))
    sampling_model = char_lm(config, size)

    def sample_to(trainer, split, length, seed):
        sampling_model.set_weights(trainer.model.get_weights())
        text = sample_text(
            sampling_model,
            data.vocabulary,
            length,
            temperature=config.sample_temperature,
            seed=seed,
        )[0]
        trainer.summaries.text(split, "sample", trainer.state.global_step, text)
        return text

    def on_epoch_end(trainer, record):
        if config.epoch_sample_length:
            sample_to(trainer, "train", config.epoch_sample_length, config.seed + record["epoch"])

    def after_test(trainer):
        text = sample_to(trainer, "test", config.sample_length, config.seed)
        trainer.log(f"--- sample (temperature {config.sample_temperature:g}, best checkpoint) ---")
        trainer.log(text)

    views = []
    if config.views:
        probe = data.validation.batch(0)
        views = default_callbacks(run.events_path(RECURRENT_VIEWS), probe_batch=probe)
    return runner.Plan(
        description=f"{config.layers} {config.cell} layer(s) of {config.units} units",
        batches=lambda epoch, start, stop: data.train.arrays(start, stop),
        steps_per_epoch=min(data.train.steps, config.steps_per_epoch or data.train.steps),
        batch_size=data.train.batch_size,
        evaluate=lambda model: {"loss": evaluator(model.get_weights(), data.validation)},
        test=lambda model: {"loss": evaluator(model.get_weights(), data.test)},
        learning_rate=optimizers.Schedule(config),
        derived=bits,
        callbacks=views,
        log_every=config.log_every,
        on_epoch_end=on_epoch_end,
        after_test=after_test,
    )


def summary(config, results):
    return (
        f"best validation {describe_loss(results['best_validation_loss'])} at epoch "
        f"{results['best_epoch']}; test {describe_loss(results['test_loss'])}"
    )


# ============================================================================ sample
def load_for_sampling(run_dir, which=None, command="sample"):
    """`(config, vocabulary, model)`: a stateless model with the run's best (or last) weights."""
    run = RunDirectory(run_dir).require(command)
    config = config_io.load(CharLMConfig, run.config_path)
    saved = run.read_json(VOCABULARY_FILE)
    names = [which] if which else ["best", "last"]
    found = (runner.read_checkpoint(run, name) for name in names)
    checkpoint = next((checkpoint for checkpoint in found if checkpoint is not None), None)
    if checkpoint is None:
        files = " or ".join(run.checkpoint_path(name).name for name in names)
        raise RecipeError(
            f"run directory {str(run.path)!r} has no {files} checkpoint yet; train it (or let "
            "it reach its first checkpoint) first."
        )
    model = build_model(config, saved, inference=True)
    checkpoints.restore(checkpoint, model, carry=False, rng=False)
    return config, Vocabulary.from_json(saved, source=VOCABULARY_FILE), model


def sample(args, log=print):
    """The `sample` command: print samples (or beams) from a trained run."""
    for name, minimum in (("length", 0), ("top_k", 0), ("beam_width", 0), ("num_samples", 1)):
        if getattr(args, name) < minimum:
            flag = "--" + name.replace("_", "-")
            raise RecipeError(f"{flag} must be >= {minimum}, received {getattr(args, name)}.")
    if not args.temperature >= 0 or not math.isfinite(args.temperature):
        raise RecipeError(f"--temperature must be a number >= 0, received {args.temperature}.")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise RecipeError(f"--seed must lie in [0, 2**31), received {args.seed}.")
    _, vocabulary, model = load_for_sampling(args.run_dir, args.checkpoint)
    if args.top_k > len(vocabulary):
        raise RecipeError(
            f"--top-k {args.top_k} exceeds the vocabulary's {len(vocabulary)} characters; "
            "pass at most that many, or 0 for all."
        )
    prime = default_prime(vocabulary) if args.prime is None else args.prime
    if not prime:
        raise RecipeError("--prime is empty; give at least one character to predict from.")
    if args.beam_width:
        prime_ids = vocabulary.encode(prime, what="--prime text")
        beams = beam_search(model, prime_ids, args.length, beam_width=args.beam_width)
        beams = beams[: args.num_samples]
        texts = [prime + vocabulary.decode(ids) for ids, _ in beams]
        headers = [f"beam {i}, log p = {score:.3f}" for i, (_, score) in enumerate(beams, 1)]
    else:
        texts = sample_text(
            model,
            vocabulary,
            args.length,
            prime=prime,
            temperature=args.temperature,
            top_k=args.top_k,
            num_samples=args.num_samples,
            seed=args.seed,
        )
        headers = [f"sample {i}" for i in range(1, len(texts) + 1)]
    for header, text in zip(headers, texts):
        if len(texts) > 1:
            log(f"--- {header} ---")
        log(text)


# =========================================================================== inspect
def inspect(args, log=print):
    """The `inspect` command: rank cells against properties of the text, write `cells.html`."""
    if args.max_chars < 1 or args.top < 1:
        raise RecipeError("--max-chars and --top must be >= 1.")
    config, vocabulary, model = load_for_sampling(args.run_dir, args.checkpoint, "inspect")
    if args.text:
        text = read_text(args.text, flag="--text")
    else:
        corpus = load_corpus(config.data or None, log=log, fractions=config.split_fractions())
        text = corpus.split("validation")
        # The split starts wherever the cut fell, perhaps inside a quotation; a paragraph
        # starts outside one, as the property tracker does.
        start = interpretable.paragraph_start(text)
        log(f"inspecting the validation split from its first paragraph, character {start:,}")
        text = text[start:]
    run = RunDirectory(args.run_dir)
    html_path = run.path / "cells.html"
    ranking = interpretable.inspect(
        model,
        vocabulary,
        text,
        html_path,
        log_dir=run.events_path("cells"),
        k=args.top,
        max_chars=args.max_chars,
        image_dir=run.path,
    )
    for name in interpretable.PROPERTIES:
        if name not in ranking:
            log(f"{name}: the same at every character of this text, so no cell to rank")
            continue
        best = ", ".join(f"{s.label} r={s.correlation:+.2f}" for s in ranking[name][: args.top])
        log(f"{name}: {best}")
    log(f"wrote {html_path} and the top cell of each property as {run.path}/cells_<property>.png")


# =============================================================================== CLI
def add_commands(commands):
    """The `sample` and `inspect` commands; returns their handlers."""
    parser = commands.add_parser(
        "sample",
        help="sample text from a trained run",
        description="Prime the model, then sample one character at a time, feeding each back in.",
    )
    flag = parser.add_argument
    flag("--run-dir", metavar="DIR", required=True, help="the run to sample from")
    flag("--prime", metavar="TEXT", help='text to start from (default "\\n")')
    flag(
        "--length", type=int, default=500, metavar="N", help="characters to generate (default 500)"
    )
    flag(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="softmax temperature (default 1.0); 0 is greedy decoding (argmax)",
    )
    flag(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="sample among the K most likely characters only; 0: all",
    )
    flag(
        "--beam-width",
        type=int,
        default=0,
        metavar="B",
        help="beam search with B beams instead of sampling; 0: sample",
    )
    flag(
        "--num-samples",
        type=int,
        default=1,
        metavar="N",
        help="independent samples (or best beams) to print (default 1)",
    )
    flag(
        "--seed",
        type=int,
        metavar="S",
        help="the same seed gives the same text (default: a fresh seed)",
    )
    flag("--checkpoint", choices=("best", "last"), help="default best, else last")

    parser = commands.add_parser(
        "inspect",
        help="find interpretable cells and write an HTML page of them",
        description="Run the model over a text, rank every cell by its correlation with "
        "properties of the text (inside quotes, position in line, bracket depth (all, "
        "expression, block), indentation, inside a comment), write cells.html into the run "
        "directory and the top cells to TensorBoard.",
    )
    flag = parser.add_argument
    flag("--run-dir", metavar="DIR", required=True, help="the run to inspect")
    flag(
        "--text",
        metavar="FILE",
        help="UTF-8 text to run over (default: the run's validation split)",
    )
    flag(
        "--max-chars",
        type=int,
        default=20000,
        metavar="N",
        help="characters of the text to use (default 20000: seconds for a 3x256 LSTM on a CPU)",
    )
    flag("--top", type=int, default=3, metavar="K", help="cells shown per property (default 3)")
    flag("--checkpoint", choices=("best", "last"), help="default best, else last")
    return {"sample": sample, "inspect": inspect}


RECIPE = runner.Recipe(
    name="charlm",
    config_class=CharLMConfig,
    description="Character-level language model (min-char-rnn / char-rnn): train, sample.",
    defaults="charlm.toml",
    smoke=SMOKE,
    prepare_data=prepare_data,
    build_model=build_model,
    plan=plan,
    summary=summary,
    commands=add_commands,
)


def main(argv=None):
    """`python -m rnnzoo.recipes.charlm [train|sample|inspect|export] ...`; returns the exit
    status."""
    return cli.main(RECIPE, argv)


if __name__ == "__main__":
    sys.exit(main())
