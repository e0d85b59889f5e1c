"""Quality of a char LM config, end to end: train it, then report the README's figures.

Runs `rnnzoo.recipes.charlm` on a config file (default `recipes/charlm.toml`)
exactly as the CLI does, then prints the resolved config, the per-epoch curve
and one Markdown table row: config, data, wall time, best validation
nats/char and bits/char, test bits/char, machine, date, command.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python benchmarks/charlm_quality.py
    TFDS_DATA_DIR=../shared/tensorflow_datasets python benchmarks/charlm_quality.py \
        recipes/charlm_large.toml
    # a short sanity run: any config flag overrides the file
    python benchmarks/charlm_quality.py --max-minutes 2 --run-dir /tmp/charlm_sanity

The issue's targets (Tiny Shakespeare, validation split): the default config
<= 1.50 nats/char within 15 minutes on 2 CPU cores; charlm_large <= 1.47.
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rnnzoo.recipes import charlm  # noqa: E402
from rnnzoo.training import config as config_io  # noqa: E402
from rnnzoo.training import runner  # noqa: E402
from rnnzoo.training.errors import run_main  # noqa: E402


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def curve(history):
    lines = [
        "| epoch | steps | minutes | lr | train nats/char | validation nats/char "
        "| validation bits/char |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for record in history:
        lines.append(
            f"| {record['epoch']} | {record['global_step']} | {record['seconds'] / 60:.1f} | "
            f"{record['learning_rate']:.2g} | {record['train_loss']:.4f} | "
            f"{record['validation_loss']:.4f} | {record['validation_bits_per_char']:.4f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "config",
        nargs="?",
        default="charlm.toml",
        help="config file to run, or the name of one in recipes/ (default charlm.toml)",
    )
    parser.add_argument(
        "--run-dir", metavar="DIR", help="run directory (default tensorboard_logs/charlm/<stamp>)"
    )
    config_io.add_flags(parser, charlm.CharLMConfig)
    args = parser.parse_args(argv)
    overrides = config_io.flag_overrides(args, charlm.CharLMConfig)
    config = charlm.RECIPE.resolve_config(args.config, overrides)
    print(f"config: {args.config}" + (f" with {overrides}" if overrides else ""))
    print(config_io.to_toml(config))

    started = time.monotonic()
    results = runner.train(charlm.RECIPE, config, args.run_dir, verbose=2)
    wall = time.monotonic() - started

    print()
    print(curve(results["history"]))
    print()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    if os.environ.get("TFDS_DATA_DIR"):
        command = f"TFDS_DATA_DIR={os.environ['TFDS_DATA_DIR']} {command}"
    name = Path(args.config).name
    if overrides:
        name += " + " + ", ".join(f"{key}={value}" for key, value in overrides.items())
    print(
        "| config | data | wall time | training time | best validation nats/char "
        "| best validation bits/char | test bits/char | machine | date | command |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
    print(
        f"| {name} | {results['data'].split(':')[0]} | {wall / 60:.1f} min | "
        f"{results['train_seconds'] / 60:.1f} min | {results['best_validation_loss']:.4f} | "
        f"{results['best_validation_bits_per_char']:.4f} | {results['test_bits_per_char']:.4f} | "
        f"{usable_cpus()} CPUs ({cpu_model()}) | {datetime.date.today().isoformat()} "
        f"| `{command}` |"
    )


if __name__ == "__main__":
    sys.exit(run_main(main))
