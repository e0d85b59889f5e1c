"""One directory per run, holding everything the run made: the same layout for every recipe.

    <run_dir>/
        config.toml            the resolved config, written before anything else
        vocabulary.json        the token or character ids (charlm, seqclass's text tasks)
        checkpoints/last.ckpt  the latest state: `--resume` continues from here
        checkpoints/best.ckpt  the state with the best validation figure
        model.keras            the best model as a plain Keras model, for your own code
        saved_model/           `export --format tf_saved_model`: a SavedModel for serving
        model.onnx             `export --format onnx`: the model for ONNX Runtime
        results.json           the final figures (best validation, test, steps, time, history)
        train/ validation/ test/   TensorBoard: the scalars (and text samples) of each split
        recurrent/             TensorBoard: the views of the training step (gradient norms and
                               histograms, gates, dL/dh_t over time, activations)
        glimpses/              TensorBoard (glimpse_mnist): glimpse paths and locations
        run.lock               locked by the process working here; holds its pid

A comparison (`--compare`) directory holds its own config.toml, `results.md` and
`results.csv`, and one such run directory per variant.

Every file is written atomically (`write_atomic`, `replace_atomic`): to a
temporary `.<name>.tmp-<pid>` file in the same folder, flushed to disk, then
`os.replace`d over the old one, so a run killed at any moment leaves either the
old file or the new one, never half. A temporary left by a kill is removed when
the next run or resume takes the directory (`RunDirectory.open`).

One process at a time works in a run directory: it holds an `flock` on
`run.lock` (`RunDirectory.lock`); a second run or resume is refused while the
first lives, and the kernel drops the lock of a process that dies, so a killed
run's directory is taken over by the next.

The workers of a multi-worker job (`rnnzoo.training.distribute`) all name the same
run directory; only the chief's `RunDirectory` `writes`. The others' (`writes=False`)
read it, check it as the chief does, and change nothing: no lock, no files. Their
TensorBoard events (every worker runs the same views: the workers must run the same
steps) go to a temporary folder of their own, removed by `close`.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from rnnzoo.training.errors import RecipeError, os_error_at

CONFIG_FILE = "config.toml"
VOCABULARY_FILE = "vocabulary.json"
RESULTS_FILE = "results.json"
MODEL_FILE = "model.keras"
SAVED_MODEL = "saved_model"
ONNX_FILE = "model.onnx"
LOCK_FILE = "run.lock"
CHECKPOINTS = "checkpoints"
RECURRENT_VIEWS = "recurrent"
TEMPORARY = ".*.tmp-*"


def replace_atomic(path, write, suffix=""):
    """Make the new `path` with `write(temporary)`, then put it in place in one rename.

    The temporary lies in the same folder (named `.<name>.tmp-<pid><suffix>`) and is flushed
    to disk before `os.replace`; whatever fails, the old file stays as it was and the
    temporary is removed. An OSError names `path`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    try:
        write(temporary)
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise os_error_at(error, path) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only or vanished folder: nothing was left
            temporary.unlink(missing_ok=True)
    _sync_directory(path.parent)


def replace_folder_atomic(path, write):
    """Make the new folder `path` with `write(temporary)`, then put it in place of the old one.

    The new folder is made beside it (`.<name>.tmp-<pid>`) and flushed to disk; the old one
    (if any) is renamed aside (`.<name>.tmp-<pid>-old`), the new one into its place, and the
    old one removed. Whatever fails, `path` is the old folder or the new one, whole: a
    failed write leaves the old one as it was; a process killed between the two renames
    leaves the old one aside, which `RunDirectory.open` puts back. An OSError names `path`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    aside = temporary.with_name(f"{temporary.name}-old")
    try:
        write(temporary)
        for folder, _, files in os.walk(temporary):
            for name in files:
                with open(os.path.join(folder, name), "rb+") as file:
                    os.fsync(file.fileno())
        if path.exists():
            os.replace(path, aside)
        try:
            os.replace(temporary, path)
        except OSError:
            if aside.exists():
                os.replace(aside, path)
            raise
    except OSError as error:
        raise os_error_at(error, path) from None
    finally:
        for leftover in (temporary, aside):
            with contextlib.suppress(OSError):
                _remove(leftover)
    _sync_directory(path.parent)


def _remove(path):
    """Remove a file, or a folder and everything in it."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_atomic(path, data):
    """Write `data` (bytes or str) to `path` so that readers see the old or the new file."""
    if isinstance(data, str):
        data = data.encode("utf-8")

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(data)

    replace_atomic(path, write)


def _sync_directory(folder):
    """Make a rename in `folder` durable (a no-op where directories can't be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def default_path(recipe, root="tensorboard_logs"):
    """`<root>/<recipe>/<YYYYmmdd-HHMMSS>`, with a suffix if that name is taken."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / recipe / stamp
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / recipe / f"{stamp}-{suffix}"
    return path


class RunDirectory:
    """Paths inside one run directory, its lock, and the checks for starting or resuming."""

    def __init__(self, path, writes=True):
        self.path = Path(path)
        self.writes = writes  # False: a multi-worker job's other workers only read it
        self._lock = None
        self._scratch = None  # where a reader's TensorBoard events go

    # ----------------------------------------------------------------- paths
    @property
    def config_path(self):
        return self.path / CONFIG_FILE

    def file(self, name):
        return self.path / name

    def checkpoint_path(self, which="last"):
        """`checkpoints/last.ckpt` or `checkpoints/best.ckpt`."""
        return self.path / CHECKPOINTS / f"{which}.ckpt"

    def events_path(self, kind):
        """The TensorBoard folder of one kind of event (`train`, `validation`, `recurrent`...);
        a reader's is in its temporary folder."""
        if self.writes:
            return self.path / kind
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="rnnzoo-events-"))
        return self._scratch / kind

    def has_checkpoint(self):
        return any(self.checkpoint_path(which).exists() for which in ("last", "best"))

    def finished(self):
        """Whether the run wrote its results (results.json and model.keras)."""
        return self.file(RESULTS_FILE).exists() and self.file(MODEL_FILE).exists()

    # ------------------------------------------------------------ lifecycle
    def check_place(self):
        """Raise the error `open` would for a path that is a file or runs through one: before
        a run prepares its data, not after. Creates nothing."""
        for folder in (self.path, *self.path.parents):
            if folder.is_dir():
                return
            if folder.exists():
                code = errno.EEXIST if folder == self.path else errno.ENOTDIR
                raise os_error_at(OSError(code, os.strerror(code)), self.path)

    def open(self, log=print):
        """Take this directory for this process (creating it): lock it, then remove the
        temporary files a killed run left. Pair with `close`. (A reader takes nothing.)"""
        if not self.writes:
            return self
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise os_error_at(error, self.path) from None
        self.lock()
        folders = (self.path, self.path / CHECKPOINTS)
        stale = [path for folder in folders for path in folder.glob(TEMPORARY)]
        removed = []
        for path in stale:
            original = path.with_name(path.name[1:].split(".tmp-")[0])
            try:
                if path.name.endswith("-old") and not original.exists():
                    os.replace(path, original)  # killed between `replace_folder_atomic`'s renames
                    log(f"put back {original}, which a killed export had set aside")
                else:
                    _remove(path)
                    removed.append(str(path.relative_to(self.path)))
            except OSError as error:
                self.close()
                raise os_error_at(error, path) from None
        if removed:
            left = f"temporary file(s) a killed run left in {self.path}: {', '.join(removed)}"
            log(f"removed {len(removed)} {left}")
        return self

    def lock(self):
        """Hold `run.lock` (an exclusive flock, with this process's pid in it), or refuse when
        a live process holds it. A dead process's lock is free: the kernel dropped it."""
        path = self.path / LOCK_FILE
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise os_error_at(error, path) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(descriptor)
            raise RecipeError(
                f"run directory {str(self.path)!r} is in use by process {holder} (a run or "
                "--resume still going; see its run.lock); wait for it to end, or pass another "
                "--run-dir."
            ) from None
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as error:
            os.close(descriptor)
            raise os_error_at(error, path) from None
        self._lock = descriptor
        return self

    def close(self):
        """Release the lock (the file stays: removing it would race with a waiting process);
        a reader removes its temporary events."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def start(self, config_text, log=print):
        """Begin a new run here (the directory is open): refuse a directory that holds one,
        reuse one whose run stopped before its first checkpoint, write the config."""
        if self.has_checkpoint():
            raise RecipeError(
                f"run directory {str(self.path)!r} already holds a run; pass --resume to "
                "continue it, or a new --run-dir to start another."
            )
        if self.config_path.exists():
            log(
                f"reusing run directory {self.path}: its earlier run stopped before its first "
                "checkpoint"
            )
        if not self.writes:
            return self
        try:
            (self.path / CHECKPOINTS).mkdir(exist_ok=True)
        except OSError as error:
            raise os_error_at(error, self.path / CHECKPOINTS) from None
        write_atomic(self.config_path, config_text)
        return self

    def require(self, what="this command"):
        """Raise a `RecipeError` unless this is a run directory (it has a config)."""
        if not self.config_path.exists():
            raise RecipeError(
                f"{str(self.path)!r} is not a run directory (no {CONFIG_FILE}); {what} needs "
                "the --run-dir of a run that was started."
            )
        return self

    def write_json(self, name, value):
        if not self.writes:
            return
        write_atomic(self.file(name), json.dumps(value, indent=1, ensure_ascii=False) + "\n")

    def read_json(self, name):
        path = str(self.file(name))
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecipeError(f"{path!r} is missing from the run directory.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RecipeError(f"{path!r} is unreadable or corrupt: {error}.") from None
