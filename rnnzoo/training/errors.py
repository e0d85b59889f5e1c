"""`RecipeError`: a mistake the user can fix, reported by the CLIs as one line.

A recipe raises `RecipeError` for bad input (an unknown config key, a corrupt
checkpoint, a loss that became NaN, ...); the data modules raise
`rnnzoo.data.DataError` for unusable data (a missing, empty or binary file).
`run_main` turns either into `error: <message>` on stderr and exit status 2,
never a traceback, and so for an operating-system error (a full disk, a
read-only file system, no permission, a failing device), TensorFlow's own
reports of one included (its TensorBoard writers): the line names the file.
A closed output pipe (`... | head`) ends the command quietly. Anything else is
a bug and keeps its traceback.
"""

import errno
import os
import re
import sys

from rnnzoo.data.errors import DataError


class RecipeError(Exception):
    """A user-fixable problem; its message says what was expected, what was received, what to do."""


class NonFiniteLossError(RecipeError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


class StoppedBySignal(Exception):
    """Training stopped on SIGTERM or SIGINT after saving a checkpoint; the CLIs exit with
    128 + the signal's number, as a shell reports a process the signal ended."""

    def __init__(self, message, number):
        super().__init__(message)
        self.status = 128 + number


EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader went away

KEPT = "what was saved before is intact"
_WHAT_TO_DO = {
    errno.ENOSPC: f"the disk is full: free some space, then continue with --resume ({KEPT})",
    errno.EDQUOT: f"the disk quota is used up: free some space, then --resume ({KEPT})",
    errno.EROFS: "the file system is read-only: pass a --run-dir on a writable one",
    errno.EACCES: "permission denied: make it writable for you, or pass another --run-dir",
    errno.EPERM: "not permitted: make it writable for you, or pass another --run-dir",
    errno.EIO: f"the device reported an I/O error: check the disk ({KEPT})",
    errno.EEXIST: "a file is there where a folder must go: move it, or pass another --run-dir",
    errno.ENOTDIR: "part of that path is a file, not a folder: pass another --run-dir",
}


_TENSORFLOW_WORDS = {errno.ENOTDIR: "is not a directory"}


def os_error_at(error, path):
    """`error` (an OSError) as one that names `path`, the file being written or read."""
    if error.errno is None:
        return OSError(errno.EIO, str(error), str(path))
    return type(error)(error.errno, error.strerror or os.strerror(error.errno), str(path))


def describe_os_error(error, remedy=None):
    """One line for an OSError: the file, the system's reason, and what to do (a training
    run's advice, or the cause followed by `remedy`)."""
    where = repr(str(error.filename)) if error.filename is not None else "a file"
    code = errno.errorcode.get(error.errno)
    reason = (error.strerror or str(error)) + (f" ({code})" if code else "")
    what_to_do = _WHAT_TO_DO.get(error.errno, "check that path")
    if remedy is not None:
        what_to_do = f"{what_to_do.split(':')[0]}: {remedy}"
    return f"{where}: {reason}; {what_to_do}."


def tensorflow_os_error(error):
    """The OSError inside a TensorFlow error (`OpError`) that reports one, else None.

    TensorFlow's file writers (TensorBoard events) report a full disk and the like as
    `tf.errors.OpError`s whose message holds the path and the system's reason.
    """
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is None or not isinstance(error, tensorflow.errors.OpError):
        return None
    message = str(getattr(error, "message", error))
    for code in _WHAT_TO_DO:
        # The system's words, or TensorFlow's own ("/a/file is not a directory").
        if os.strerror(code) in message or _TENSORFLOW_WORDS.get(code, "\0") in message:
            paths = re.findall(r"/[^\s;,'\"{}]+", message)  # the first in an existing folder
            path = next((p for p in paths if os.path.isdir(os.path.dirname(p))), None)
            return OSError(code, os.strerror(code), path)
    return None


def run_main(main, argv=None):
    """Call `main(argv)`; a `RecipeError`, `DataError` or OSError becomes one stderr line, exit
    status 2; a training stopped by a signal one line, 128 + its number; a closed stdout pipe
    a quiet exit.

    Returns the exit status (0 when `main` returns None), for `sys.exit`.
    """
    try:
        status = main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe would print a complaint
    except (RecipeError, DataError) as error:
        return _report(f"error: {error}", EXIT_USAGE)
    except StoppedBySignal as error:
        return _report(f"error: {error}", error.status)
    except BrokenPipeError:
        return _quiet_stdout()
    except OSError as error:
        return _report(f"error: {describe_os_error(error)}", EXIT_USAGE)
    except KeyboardInterrupt:
        return _report(
            "error: interrupted; the last checkpoint written is kept (resume with --resume).",
            EXIT_INTERRUPTED,
        )
    except Exception as error:
        reported = tensorflow_os_error(error)
        if reported is None:
            raise
        return _report(f"error: {describe_os_error(reported)}", EXIT_USAGE)
    return 0 if status is None else status


def _report(line, status):
    try:
        if sys.stdout.isatty():
            print()  # end a progress bar's line first
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _quiet_stdout()
    print(line, file=sys.stderr)
    return status


def _quiet_stdout():
    """Point stdout at /dev/null: its reader is gone, and the interpreter's last flush must
    not complain about it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE
