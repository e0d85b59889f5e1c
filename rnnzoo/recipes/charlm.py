r"""The character-level language model recipe: min-char-rnn / char-rnn in Keras.

Train (the default command) and sample:

    python -m rnnzoo.recipes.charlm                         # Tiny Shakespeare, recipes/charlm.toml
    python -m rnnzoo.recipes.charlm --data input.txt --cell gru --units 128
    python -m rnnzoo.recipes.charlm --config recipes/min_char_rnn.toml
    python -m rnnzoo.recipes.charlm --resume --run-dir tensorboard_logs/charlm/<stamp>
    python -m rnnzoo.recipes.charlm sample --run-dir tensorboard_logs/charlm/<stamp> \
        --prime "ROMEO:" --length 300 --temperature 0.8 --seed 1

Top to bottom, as in the lecture:

1. Data. Tiny Shakespeare from tensorflow-datasets (or `--data FILE`, split
   90/5/5 by position; or, offline with nothing cached, the Python standard
   library's sources), encoded with a character vocabulary.
2. Batches. Truncated backprop through time with carried state: the text is
   cut into `batch_size` contiguous streams; batch k+1 continues every stream
   where batch k stopped (`rnnzoo.data.TextStreams`). The model is stateful,
   so its hidden state flows from batch to batch while gradients stop after
   `seq_length` steps. States are zeroed at each epoch and for evaluation.
3. Model. `rnnzoo.models.build_char_lm`: embedding (or one-hot) -> stacked
   recurrent layers -> logits; loss = mean cross-entropy in nats/char
   (bits/char = nats / ln 2).
4. Training. `rnnzoo.training.Trainer`: `model.fit` per epoch with Keras's
   progress bar, validation each epoch, checkpoints, exact `--resume`.
5. Sampling. Prime, then sample a character, feed it back in, repeat
   (`rnnzoo.models.generate`; greedy at temperature 0, top-k, beam search).

Everything a run makes goes in its run directory (see `rnnzoo.training.rundir`);
`results.json` there holds the final figures.
"""

import argparse
import dataclasses
import hashlib
import math
import sys
import time
from pathlib import Path

from rnnzoo.training import cli
from rnnzoo.training import config as config_io
from rnnzoo.training.config import option
from rnnzoo.training.errors import RecipeError, run_main

RECIPE = "charlm"
DEFAULTS_FILE = Path(__file__).resolve().parents[2] / "recipes" / "charlm.toml"
NATS_PER_BIT = math.log(2.0)
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class CharLMConfig:
    """The char LM's hyperparameters; defaults equal `recipes/charlm.toml` (a test checks)."""

    data: str = option("", "UTF-8 text file, split 90/5/5 by position; empty: Tiny Shakespeare")
    cell: str = option("lstm", "recurrent cell, any name rnnzoo.cells.get knows")
    layers: int = option(2, "stacked recurrent layers")
    units: int = option(256, "hidden units per layer")
    embedding_dim: int = option(64, "character embedding size; 0: one-hot input (min-char-rnn)")
    dropout: float = option(0.1, "dropout after each recurrent layer")
    seq_length: int = option(100, "steps per batch; gradients stop after this many (TBPTT)")
    batch_size: int = option(64, "contiguous streams trained side by side")
    epochs: int = option(15, "passes over the training streams")
    steps_per_epoch: int = option(0, "batches per epoch; 0: one full pass over the streams")
    lr: float = option(0.002, "learning rate")
    lr_decay: float = option(0.85, "learning-rate factor per epoch after lr_decay_after epochs")
    lr_decay_after: int = option(5, "epochs at the full learning rate before it decays")
    optimizer: str = option("adam", "adam, rmsprop (char-rnn) or adagrad (min-char-rnn)")
    clip_norm: float = option(5.0, "clip the global gradient norm to this; 0: off")
    clip_value: float = option(0.0, "clip each gradient element to +-this; 0: off")
    seed: int = option(1, "seed of the weights, the dropout masks and the samples")
    checkpoint_every: int = option(50, "save checkpoints/last.ckpt every this many steps")
    max_minutes: float = option(14.0, "stop training after this many minutes; 0: no limit")
    log_every: int = option(10, "write the batch loss to TensorBoard every this many steps")
    sample_length: int = option(500, "characters of the sample printed at the end")
    epoch_sample_length: int = option(200, "characters sampled to TensorBoard each epoch; 0: none")
    sample_temperature: float = option(0.8, "temperature of the end-of-training sample")
    views: bool = option(True, "write the TensorBoard views (gradients, gates, dL/dh_t, ...)")

    def validate(self):
        from rnnzoo import cells
        from rnnzoo.training import checks, optimizers

        for name, value, known in (
            ("cell", self.cell.lower(), cells.names()),
            ("optimizer", self.optimizer, optimizers.names()),
        ):
            if value not in known:
                raise RecipeError(f"unknown {name} {value!r}; expected one of: {', '.join(known)}.")
        checks.at_least(
            self, 1, "layers", "units", "seq_length", "batch_size", "epochs", "sample_length"
        )
        checks.at_least(
            self,
            0,
            "embedding_dim",
            "steps_per_epoch",
            "lr_decay_after",
            "checkpoint_every",
            "log_every",
            "clip_norm",
            "clip_value",
            "max_minutes",
            "sample_temperature",
            "epoch_sample_length",
        )
        checks.fraction(self, "dropout")
        checks.positive_number(self, "lr")
        checks.factor(self, "lr_decay")
        checks.seed(self)


def load_config(config_file=None, overrides=None):
    """Defaults (`recipes/charlm.toml`), then `config_file`, then `overrides` (flags)."""
    defaults = DEFAULTS_FILE if DEFAULTS_FILE.exists() else None
    return config_io.load(CharLMConfig, defaults, config_file, overrides=overrides)


# ============================================================================== data
@dataclasses.dataclass
class Data:
    """The corpus encoded: vocabulary, streams of each split, and a fingerprint of the text."""

    vocabulary: object
    train: object
    validation: object
    test: object
    fingerprint: str


def prepare_data(config, vocabulary=None, log=print):
    """Load the corpus, build (or reuse) the vocabulary, cut each split into streams."""
    from rnnzoo.data import TextStreams, Vocabulary, load_corpus

    corpus = load_corpus(config.data or None, log=log)
    log(f"data: {corpus.describe()}")
    if vocabulary is None:
        vocabulary = Vocabulary.from_text(*(corpus.split(split) for split in SPLITS))
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
def build_model(config, vocab_size, batch_size=None, stateful=False):
    from rnnzoo.models import build_char_lm

    return build_char_lm(
        vocab_size,
        cell=config.cell,
        units=config.units,
        num_layers=config.layers,
        embedding_dim=config.embedding_dim,
        dropout=config.dropout,
        batch_size=batch_size,
        stateful=stateful,
        seed=config.seed,
    )


def compile_model(model, optimizer=None):
    import keras

    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Measured: XLA is slower than TensorFlow's own kernels for this model on CPU.
        jit_compile=False,
    )
    return model


class StreamEvaluator:
    """Mean loss (nats/char) of some weights over streams, read from zero states.

    Keeps its own stateful copy of the model per batch size, so evaluating
    never disturbs the training model's carried states.
    """

    def __init__(self, config, vocab_size):
        self.config = config
        self.vocab_size = vocab_size
        self.models = {}

    def __call__(self, weights, streams):
        from rnnzoo.training.checkpoints import reset_carried_states

        model = self.models.get(streams.batch_size)
        if model is None:
            model = build_model(self.config, self.vocab_size, streams.batch_size, stateful=True)
            self.models[streams.batch_size] = compile_model(model)
        model.set_weights(weights)
        reset_carried_states(model)
        inputs, targets = streams.arrays()
        return float(model.evaluate(inputs, targets, batch_size=streams.batch_size, verbose=0))


def bits(loss):
    """The loss (nats/char) in bits/char."""
    return {"bits_per_char": loss / NATS_PER_BIT}


def describe_loss(loss):
    return f"{loss:.4f} nats/char ({loss / NATS_PER_BIT:.4f} bits/char)"


def sample_text(model, vocabulary, length, prime="", **options):
    """Continuations of `prime` (default "\\n"), each returned as prime + sampled text.

    `options` go to `rnnzoo.models.generate` (temperature, top_k, num_samples, seed).
    """
    from rnnzoo.models import generate

    prime = prime or default_prime(vocabulary)
    ids = generate(model, vocabulary.encode(prime, what="--prime text"), length, **options)
    return [prime + vocabulary.decode(row) for row in ids]


def default_prime(vocabulary):
    return "\n" if "\n" in vocabulary.index else vocabulary.chars[0]


# ============================================================================= train
def train(config, run_dir=None, resume=False, callbacks=(), log=print, verbose=1):
    """Train (or resume) a run; return the results also written to `results.json`.

    `callbacks` are extra Keras callbacks for `model.fit` (TensorBoard views, ...).
    """
    import keras

    from rnnzoo.data import Vocabulary
    from rnnzoo.training import checkpoints, optimizers
    from rnnzoo.training.loop import Trainer
    from rnnzoo.training.resume import last_checkpoint, resume_trainer
    from rnnzoo.training.rundir import RunDirectory, default_path
    from rnnzoo.training.summaries import Summaries

    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    run = RunDirectory(run_dir or default_path(RECIPE))
    vocabulary = Vocabulary.from_json(run.read_json("vocabulary.json")) if resume else None
    data = prepare_data(config, vocabulary, log=log)
    vocabulary = data.vocabulary
    checkpoint = last_checkpoint(run, data.fingerprint) if resume else None
    if not resume:
        run.create(config_io.to_toml(config, header=f"rnnzoo {RECIPE} run: the resolved config."))
        run.write_json("vocabulary.json", vocabulary.to_json())
    log(f"run directory: {run.path}")

    model = build_model(config, len(vocabulary), data.train.batch_size, stateful=True)
    compile_model(
        model,
        optimizers.make_optimizer(config.optimizer, config.lr, config.clip_norm, config.clip_value),
    )
    evaluator = StreamEvaluator(config, len(vocabulary))
    sampler = build_model(config, len(vocabulary))  # stateless, batch-free
    summaries = Summaries(run)

    def on_epoch_end(trainer, record):
        if config.epoch_sample_length:
            sampler.set_weights(model.get_weights())
            text = sample_text(
                sampler,
                vocabulary,
                config.epoch_sample_length,
                temperature=config.sample_temperature,
                seed=config.seed + record["epoch"],
            )[0]
            summaries.text("train", "sample", record["global_step"], text)

    if config.views:
        from rnnzoo.tensorboard import default_callbacks

        # Its own folder: two writers in one folder hide each other's live updates.
        views = default_callbacks(run.events_path("views"), probe_batch=data.validation.batch(0))
        callbacks = [*views, *callbacks]

    trainer = Trainer(
        model,
        lambda epoch, start, stop: data.train.arrays(start, stop),
        min(data.train.steps, config.steps_per_epoch or data.train.steps),
        data.train.batch_size,
        run,
        epochs=config.epochs,
        evaluate=lambda m: {"loss": evaluator(m.get_weights(), data.validation)},
        checkpoint_every=config.checkpoint_every,
        learning_rate=lambda epoch: optimizers.step_decay(
            config.lr, config.lr_decay, config.lr_decay_after, epoch
        ),
        max_minutes=config.max_minutes,
        derived=bits,
        callbacks=callbacks,
        summaries=summaries,
        log_every=config.log_every,
        on_epoch_end=on_epoch_end,
        verbose=verbose,
        log=log,
    )
    if checkpoint is not None:
        resume_trainer(trainer, checkpoint, log=log)
    else:
        trainer.state.fingerprint = data.fingerprint

    state = trainer.run()

    best = checkpoints.load(run.checkpoint_path("best"))
    test_loss = evaluator(best.weights, data.test)
    summaries.scalars("test", state.global_step, {"loss": test_loss, **bits(test_loss)})
    sampler.set_weights(best.weights)
    text = sample_text(
        sampler,
        vocabulary,
        config.sample_length,
        temperature=config.sample_temperature,
        seed=config.seed,
    )[0]
    summaries.text("test", "sample", state.global_step, text)
    summaries.close()
    results = {
        "epochs": state.epoch,
        "steps": state.global_step,
        "train_seconds": round(state.seconds, 1),
        "best_epoch": state.best_epoch,
        "best_validation_loss": state.best_loss,
        "best_validation_bits_per_char": state.best_loss / NATS_PER_BIT,
        "test_loss": test_loss,
        "test_bits_per_char": test_loss / NATS_PER_BIT,
        "data": data.fingerprint,
        "wall_seconds_this_process": round(time.monotonic() - started, 1),
        "history": state.history,
    }
    run.write_json("results.json", results)
    log(
        f"best validation {describe_loss(state.best_loss)} at epoch {state.best_epoch}; "
        f"test {describe_loss(test_loss)}"
    )
    log(f"--- sample (temperature {config.sample_temperature:g}, best checkpoint) ---")
    log(text)
    return results


# ============================================================================ sample
def load_for_sampling(run_dir, which=None):
    """`(config, vocabulary, model)`: a stateless model with the run's best (or last) weights."""
    from rnnzoo.data import Vocabulary
    from rnnzoo.training import checkpoints
    from rnnzoo.training.rundir import RunDirectory

    run = RunDirectory(run_dir).require("sample")
    config = load_config(run.config_path)
    vocabulary = Vocabulary.from_json(run.read_json("vocabulary.json"), source="vocabulary.json")
    paths = [run.checkpoint_path(name) for name in ([which] if which else ["best", "last"])]
    existing = [path for path in paths if path.exists()]
    if not existing:
        raise RecipeError(
            f"run directory {str(run.path)!r} has no {' or '.join(p.name for p in paths)} "
            "checkpoint yet; train it (or let it reach its first checkpoint) first."
        )
    model = build_model(config, len(vocabulary))
    checkpoints.restore(checkpoints.load(existing[0]), model, carry=False, rng=False)
    return config, vocabulary, model


def sample(args, log=print):
    """The `sample` command: print samples (or beams) from a trained run."""
    from rnnzoo.models import beam_search

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
    from rnnzoo.data import load_corpus, read_text
    from rnnzoo.tensorboard import interpretable
    from rnnzoo.training.rundir import RunDirectory

    config, vocabulary, model = load_for_sampling(args.run_dir, args.checkpoint)
    if args.text:
        text = read_text(args.text)
    else:
        text = load_corpus(config.data or None, log=log).split("validation")
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
    )
    for name, scores in ranking.items():
        best = ", ".join(f"{s.label} r={s.correlation:+.2f}" for s in scores[: args.top])
        log(f"{name}: {best}")
    log(f"wrote {html_path}")


# =============================================================================== CLI
def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m rnnzoo.recipes.charlm",
        description="Character-level language model (min-char-rnn / char-rnn): train, sample.",
        epilog="Without a command, trains. `train --help` and `sample --help` list their flags.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{train,sample,inspect}")
    trainer = commands.add_parser(
        "train",
        help="train a model (the default command)",
        description="Train a char LM with truncated BPTT and carried state. Flags override "
        "--config FILE, which overrides recipes/charlm.toml.",
    )
    cli.add_run_flags(trainer, RECIPE)
    config_io.add_flags(trainer, CharLMConfig)

    sampler = commands.add_parser(
        "sample",
        help="sample text from a trained run",
        description="Prime the model, then sample one character at a time, feeding each back in.",
    )
    add = sampler.add_argument
    add("--run-dir", metavar="DIR", required=True, help="the run to sample from")
    add("--prime", metavar="TEXT", help='text to start from (default "\\n")')
    add("--length", type=int, default=500, metavar="N", help="characters to generate (default 500)")
    add(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="softmax temperature (default 1.0); 0 is greedy decoding (argmax)",
    )
    add(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="sample among the K most likely characters only; 0: all",
    )
    add(
        "--beam-width",
        type=int,
        default=0,
        metavar="B",
        help="beam search with B beams instead of sampling; 0: sample",
    )
    add(
        "--num-samples",
        type=int,
        default=1,
        metavar="N",
        help="independent samples (or best beams) to print (default 1)",
    )
    add(
        "--seed",
        type=int,
        metavar="S",
        help="the same seed gives the same text (default: a fresh seed)",
    )
    add("--checkpoint", choices=("best", "last"), help="default best, else last")

    inspector = commands.add_parser(
        "inspect",
        help="find interpretable cells and write an HTML page of them",
        description="Run the model over a text, rank every cell by its correlation with "
        "properties of the text (inside quotes, position in line, bracket and indentation "
        "depth, inside a comment), write cells.html into the run directory and the top "
        "cells to TensorBoard.",
    )
    add = inspector.add_argument
    add("--run-dir", metavar="DIR", required=True, help="the run to inspect")
    add(
        "--text",
        metavar="FILE",
        help="UTF-8 text to run over (default: the run's validation split)",
    )
    add(
        "--max-chars",
        type=int,
        default=5000,
        metavar="N",
        help="characters of the text to use (default 5000; about 4 ms each on 2 cores)",
    )
    add("--top", type=int, default=3, metavar="K", help="cells shown per property (default 3)")
    add("--checkpoint", choices=("best", "last"), help="default best, else last")
    return parser


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "train")
    args = build_parser().parse_args(argv)
    if args.command == "sample":
        _check_sample_args(args)
        return sample(args)
    if args.command == "inspect":
        if args.max_chars < 1 or args.top < 1:
            raise RecipeError("--max-chars and --top must be >= 1.")
        return inspect(args)
    config = cli.config_from_args(args, CharLMConfig, load_config)
    train(config, args.run_dir, resume=args.resume, verbose=2 if args.quiet else 1)
    return 0


def _check_sample_args(args):
    for name, minimum in (("length", 0), ("top_k", 0), ("beam_width", 0), ("num_samples", 1)):
        value = getattr(args, name)
        if value < minimum:
            flag = "--" + name.replace("_", "-")
            raise RecipeError(f"{flag} must be >= {minimum}, received {value}.")
    if not args.temperature >= 0 or not math.isfinite(args.temperature):
        raise RecipeError(f"--temperature must be a number >= 0, received {args.temperature}.")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise RecipeError(f"--seed must lie in [0, 2**31), received {args.seed}.")


def main(argv=None):
    """`python -m rnnzoo.recipes.charlm [train|sample|inspect] ...`; returns the exit status."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
