"""One directory per run, holding everything the run made.

    <run_dir>/
        config.toml            the resolved config, written before anything else
        vocabulary.json        (recipes with a vocabulary)
        checkpoints/last.ckpt  the latest state: resume from here
        checkpoints/best.ckpt  the state with the best validation score
        train/, validation/    TensorBoard event files

Every file is written atomically (`write_atomic`): to a temporary file in the
same folder, flushed to disk, then `os.replace`d over the old one, so a run
killed at any moment leaves either the old file or the new one, never half.
"""

import datetime
import json
import os
from pathlib import Path

from rnnzoo.training.errors import RecipeError

CONFIG_FILE = "config.toml"
CHECKPOINTS = "checkpoints"


def write_atomic(path, data):
    """Write `data` (bytes or str) to `path` so that readers see the old or the new file."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    _sync_directory(path.parent)


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
    """Paths inside one run directory, and the checks for starting or resuming a run."""

    def __init__(self, path):
        self.path = Path(path)

    # ----------------------------------------------------------------- paths
    @property
    def config_path(self):
        return self.path / CONFIG_FILE

    def file(self, name):
        return self.path / name

    def checkpoint_path(self, which="last"):
        """`checkpoints/last.ckpt` or `checkpoints/best.ckpt`."""
        return self.path / CHECKPOINTS / f"{which}.ckpt"

    def events_path(self, split):
        """The TensorBoard folder of one split (`train`, `validation`, ...)."""
        return self.path / split

    def has_checkpoint(self):
        return any(self.checkpoint_path(which).exists() for which in ("last", "best"))

    # ------------------------------------------------------------ lifecycle
    def create(self, config_text):
        """Start a new run here: refuse a directory that already holds one, write the config."""
        if self.config_path.exists() or self.has_checkpoint():
            raise RecipeError(
                f"run directory {str(self.path)!r} already holds a run; pass --resume to "
                "continue it, or a new --run-dir to start another."
            )
        try:
            (self.path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecipeError(f"cannot create run directory {str(self.path)!r}: {error}.") from None
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
        write_atomic(self.file(name), json.dumps(value, indent=1, ensure_ascii=False) + "\n")

    def read_json(self, name):
        path = str(self.file(name))
        try:
            return json.loads(self.file(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecipeError(f"{path!r} is missing from the run directory.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RecipeError(f"{path!r} is unreadable or corrupt: {error}.") from None
