"""`RecipeError`: a mistake the user can fix, reported by the CLIs as one line.

A recipe raises `RecipeError` for bad input (an unknown config key, a corrupt
checkpoint, a loss that became NaN, ...); the data modules raise
`rnnzoo.data.DataError` for unusable data (a missing, empty or binary file).
`run_main` turns either into `error: <message>` on stderr and exit status 2,
never a traceback; anything else is a bug and keeps its traceback.
"""

import sys

from rnnzoo.data.errors import DataError


class RecipeError(Exception):
    """A user-fixable problem; its message says what was expected, what was received, what to do."""


class NonFiniteLossError(RecipeError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def run_main(main, argv=None):
    """Call `main(argv)`; a `RecipeError` or `DataError` becomes one stderr line, exit status 2.

    Returns the exit status (0 when `main` returns None), for `sys.exit`.
    """
    try:
        status = main(argv)
    except (RecipeError, DataError) as error:
        _report(f"error: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _report("error: interrupted; the last checkpoint written is kept (resume with --resume).")
        return EXIT_INTERRUPTED
    return 0 if status is None else status


def _report(line):
    if sys.stdout.isatty():
        print()  # end a progress bar's line first
    sys.stdout.flush()
    print(line, file=sys.stderr)
