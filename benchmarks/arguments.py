"""Argument types and checks the benchmark scripts share.

A bad value ends as argparse's usage and one `error:` line, exit status 2, before any model
is built, as the recipes' flags do:

    parser.add_argument("--rounds", type=arguments.count, default=3)
    layers = arguments.names(parser, "--layers", args.layers, known=PAIRS)
"""

import argparse
import os


def count(text):
    """A whole number of at least 1: rounds, steps, units, a batch."""
    return _whole(text, least=1)


def whole(text):
    """A whole number of at least 0: untimed warm-up steps, curve points shown."""
    return _whole(text, least=0)


def _whole(text, least):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected at least {least}, received {value}")
    return value


def names(parser, flag, text, known):
    """The comma-separated names in `text`, each once in the order given, every one of
    `known`; else the parser's error naming the unknown ones and listing `known`."""
    wanted = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        parser.error(
            f"{flag}: unknown {', '.join(map(repr, unknown)) or 'empty list'}; expected "
            f"comma-separated names from: {', '.join(known)}"
        )
    return wanted


def add_backend(parser, backends=("tensorflow", "jax", "torch")):
    """`--backend`: Keras's backend, default KERAS_BACKEND's or tensorflow. The script sets
    KERAS_BACKEND from it before importing Keras; this only checks and shows it."""
    parser.add_argument(
        "--backend",
        choices=backends,
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend (default tensorflow, or KERAS_BACKEND)",
    )
