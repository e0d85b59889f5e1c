"""The command-line flags every training recipe shares, and the config they resolve to.

parser = recipe_parser("myrecipe", MyConfig, "What it does.")  # run flags + one per field
args = parser.parse_args(argv)
config = config_from_args(args, MyConfig, load_config)
"""

import argparse

from rnnzoo.training import config as config_io
from rnnzoo.training.resume import CHANGEABLE, resumed_config


def add_run_flags(parser, recipe):
    """Add --config, --run-dir, --resume and --quiet to `parser`."""
    parser.add_argument("--config", metavar="FILE", help="TOML file of config values")
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help=f"run directory (default tensorboard_logs/{recipe}/<timestamp>); needed by --resume",
    )
    changeable = " and ".join("--" + name.replace("_", "-") for name in CHANGEABLE)
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue the run in --run-dir from its last checkpoint, with its own config "
        f"(only {changeable} may change)",
    )
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")


def config_from_args(args, config_class, load_config):
    """The run's config: its own config.toml plus the allowed flags with --resume, else
    `load_config(args.config, flags)` (the recipe's defaults, the --config file, the flags)."""
    overrides = config_io.flag_overrides(args, config_class)
    if args.resume:
        return resumed_config(config_class, args.run_dir, args.config, overrides)[1]
    return load_config(args.config, overrides)


def recipe_parser(recipe, config_class, description, epilog=None):
    """The parser of `python -m rnnzoo.recipes.<recipe>`: the run flags and one flag per field
    of `config_class`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m rnnzoo.recipes.{recipe}", description=description, epilog=epilog
    )
    add_run_flags(parser, recipe)
    config_io.add_flags(parser, config_class)
    return parser


def run_recipe(argv, parser, config_class, load_config, run):
    """Parse `argv`, resolve the config and call `run(config, run_dir, resume=, verbose=)`."""
    args = parser.parse_args(argv)
    config = config_from_args(args, config_class, load_config)
    run(config, args.run_dir, resume=args.resume, verbose=2 if args.quiet else 1)
    return 0
