"""The command line of every recipe: `python -m rnnzoo.recipes.<recipe> [command] [flags]`.

    train (the default)   train a run, or continue one with --resume
                          (`rnnzoo.training.runner.train`; with --compare, one run per cell:
                          `rnnzoo.training.compare.compare`)
    export                write a run's model.keras from its best (or last) checkpoint
                          (`--format tf_saved_model`: a SavedModel folder for serving;
                          `--format onnx`: an ONNX file)
    ...                   the recipe's own commands (charlm: sample, inspect)

Every config field is a `train` flag (`--seq-length` for `seq_length`); see
`rnnzoo.training.config` for how flags, --config and the recipe's files resolve.
How a run uses the hardware is not config (it does not change what is trained, so a run
resumes on other hardware): `--distribute` and `--devices`, see
`rnnzoo.training.distribute`.
"""

import argparse
import functools
import sys

from rnnzoo.training import compare, distribute, runner
from rnnzoo.training import config as config_io
from rnnzoo.training.errors import RecipeError, run_main
from rnnzoo.training.resume import changeable_keys, flag_list, resumed_config


def main(recipe, argv=None):
    """Run the command in `argv` (default `sys.argv[1:]`); returns the exit status."""
    return run_main(functools.partial(_main, recipe), argv)


def _main(recipe, argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "train")
    parser, handlers = build_parser(recipe)
    args = parser.parse_args(argv)
    return handlers[args.command](args)


def build_parser(recipe):
    """`(parser, handlers)`: the recipe's parser, and each command's `handler(args)`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m rnnzoo.recipes.{recipe.name}",
        description=recipe.description,
        epilog="Without a command, trains. `<command> --help` lists a command's flags.",
    )
    commands = parser.add_subparsers(dest="command")
    train = commands.add_parser(
        "train",
        help="train a model (the default command)",
        description=f"{recipe.description} Flags override --config FILE, which overrides the "
        "recipe's own config files.",
    )
    add_run_flags(train, recipe)
    config_io.add_flags(train, recipe.config_class)
    export = commands.add_parser(
        "export",
        help="write a run's model as a Keras file (model.keras), a SavedModel or ONNX",
        description="Write the model of a run's checkpoint as a plain Keras model in inference "
        "form, loadable with keras.saving.load_model after `import rnnzoo`, (--format "
        "tf_saved_model) as a SavedModel that TensorFlow alone serves, or (--format onnx) as "
        "an ONNX file for ONNX Runtime (needs tf2onnx).",
    )
    export.add_argument("--run-dir", metavar="DIR", required=True, help="the run to export")
    export.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="default best"
    )
    export.add_argument(
        "--format",
        choices=tuple(runner.EXPORT_FORMATS),
        default="keras",
        help="keras: a Keras file (default); tf_saved_model: a SavedModel folder, as "
        "model.export writes it, for TensorFlow Serving; onnx: an ONNX file",
    )
    export.add_argument(
        "--output",
        metavar="PATH",
        help="default <run-dir>/model.keras, <run-dir>/saved_model with --format "
        "tf_saved_model, <run-dir>/model.onnx with --format onnx",
    )
    handlers = {
        "train": functools.partial(train_command, recipe),
        "export": lambda args: runner.export(
            recipe, args.run_dir, args.checkpoint, args.output, format=args.format
        ),
    }
    if recipe.commands is not None:
        handlers.update(recipe.commands(commands))
    return parser, handlers


def add_run_flags(parser, recipe):
    """Add --config, --run-dir, --resume, --checkpoint, --smoke, --quiet, --distribute and
    --devices to `parser`."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of config values, or the name of one shipped with rnnzoo "
        "(e.g. min_char_rnn)",
    )
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help=f"run directory (default tensorboard_logs/{recipe.name}/<timestamp>); needed by "
        "--resume",
    )
    changeable = flag_list(changeable_keys(recipe.config_class))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its last checkpoint, with its own config "
        f"(only {changeable} may change; a new learning-rate schedule is written into its "
        "config.toml); a run without a checkpoint starts from its config",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("last", "best"),
        help="with --resume: the checkpoint to continue from (default last; best when last is "
        "damaged)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a smoke test: a few steps of a tiny model, seconds"
    )
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    parser.add_argument(
        "--distribute",
        choices=distribute.MODES,
        default="none",
        help="none: one device (default); mirrored: this machine's devices (all GPUs, or "
        "--devices); multi-worker: several machines, the cluster from TF_CONFIG (the same "
        "command and --run-dir on every worker). --batch-size stays the global batch",
    )
    parser.add_argument(
        "--devices",
        metavar="N|NAMES",
        default="",
        help="with --distribute: how many devices (the first N GPUs; with no GPU, the CPU "
        "split into N logical devices) or which (GPU:0,GPU:2); multi-worker: GPUs per worker",
    )


def parse_config(recipe, argv):
    """The config the `train` flags in `argv` resolve to (for scripts and tests)."""
    parser, _ = build_parser(recipe)
    return config_from_args(recipe, parser.parse_args(["train", *map(str, argv)]))


def config_from_args(recipe, args):
    """The config `args` (parsed `train` flags) ask for: the run's own with --resume, else the
    recipe's files, --config and the flags (over the smoke values with --smoke)."""
    overrides = config_io.flag_overrides(args, recipe.config_class)
    if args.resume:
        if args.smoke:
            raise RecipeError("--smoke sets a new run's config; --resume keeps the run's own.")
        return resumed_config(recipe.config_class, args.run_dir, args.config, overrides)
    if args.checkpoint:
        raise RecipeError(
            "--checkpoint picks the checkpoint --resume continues from; add --resume."
        )
    smoke = recipe.smoke if args.smoke else {}
    return recipe.resolve_config(args.config, {**smoke, **overrides})


def train_command(recipe, args):
    """The `train` command."""
    distribution = distribute.Distribution(args.distribute, args.devices)
    config = config_from_args(recipe, args)
    verbose = 2 if args.quiet else 1
    if getattr(config, "compare", ""):
        if args.checkpoint:
            raise RecipeError("--checkpoint continues one run; a --compare resumes every cell.")
        compare.compare(
            recipe,
            config,
            args.run_dir,
            resume=args.resume,
            verbose=verbose,
            distribution=distribution,
        )
    else:
        runner.train(
            recipe,
            config,
            args.run_dir,
            resume=args.resume,
            checkpoint=args.checkpoint or "last",
            verbose=verbose,
            distribution=distribution,
        )
    return 0
