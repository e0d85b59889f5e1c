"""The command-line flags every training recipe shares, and the config they resolve to.

parser = argparse.ArgumentParser(prog="python -m rnnzoo.recipes.myrecipe")
add_run_flags(parser, "myrecipe")            # --config, --run-dir, --resume, --quiet
config_io.add_flags(parser, MyConfig)        # one flag per config field
args = parser.parse_args(argv)
config = config_from_args(args, MyConfig, load_config)
"""

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
