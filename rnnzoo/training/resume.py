"""`--resume` for any recipe: the run's own config, its last checkpoint, the checks between.

A resumed run continues with the config it was started with (its
`config.toml`); only the flags in `changeable` (by default the length of the
run: `--epochs`, `--max-minutes`) may differ. The last checkpoint must have
been made on the same data (its fingerprint), and the run must have something
left to do.

    run, config = resumed_config(MyConfig, args.run_dir, args.config, overrides)
    ...build the data, the model and the Trainer...
    start_or_resume(trainer, last_checkpoint(run, fingerprint) if resume else None, fingerprint)
"""

import hashlib

import numpy as np

from rnnzoo.training import checkpoints
from rnnzoo.training import config as config_io
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import RunDirectory

CHANGEABLE = ("epochs", "max_minutes")


def resumed_config(config_class, run_dir, config_file, overrides, changeable=CHANGEABLE):
    """`(run, config)` of the run in `run_dir`: its config.toml with changeable flag overrides."""
    if not run_dir:
        raise RecipeError("--resume needs --run-dir DIR, the run to continue.")
    if config_file:
        raise RecipeError("--resume continues the run's own config.toml; drop --config.")
    fixed = sorted(set(overrides) - set(changeable))
    if fixed:
        flags = ", ".join(_flag(name) for name in fixed)
        allowed = " and ".join(_flag(name) for name in changeable)
        raise RecipeError(
            f"--resume keeps the run's config; {flags} cannot change mid-run (only {allowed} can); "
            "start a new run instead."
        )
    run = RunDirectory(run_dir).require("--resume")
    return run, config_io.load(config_class, run.config_path, overrides=overrides)


def fingerprint(name, splits):
    """`name:<hash>` of a dataset's arrays (`splits`: split name -> tuple of arrays), so a
    resume on other data is caught."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        for array in splits[split]:
            digest.update(str(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return f"{name}:{digest.hexdigest()[:16]}"


def last_checkpoint(run, fingerprint):
    """The run's `last.ckpt`, refused when it is missing or was made on other data."""
    path = run.checkpoint_path("last")
    if not path.exists():
        raise RecipeError(
            f"--resume: {str(path)!r} does not exist "
            "(the run stopped before its first checkpoint); start a new run."
        )
    checkpoint = checkpoints.load(path)
    if checkpoint.state.get("fingerprint") != fingerprint:
        raise RecipeError(
            f"--resume: the data differs from the run's ({fingerprint} vs "
            f"{checkpoint.state.get('fingerprint')}); resume with the run's own data."
        )
    return checkpoint


def work_left(state, epochs, max_minutes):
    """Whether a run at `state` (a `TrainerState`) has training left.

    That is, training left under `epochs` and `max_minutes`.

    A run its time budget stopped has time again when `max_minutes` is 0 (no
    limit) or more than it has spent.
    """
    out_of_time = state.budget_exhausted and max_minutes and state.seconds >= 60.0 * max_minutes
    return state.epoch < epochs and not out_of_time


def resume_trainer(trainer, checkpoint, log=print):
    """Restore `checkpoint` into `trainer`; refuse a run with nothing left to do."""
    trainer.resume(checkpoint)
    state = trainer.state
    if not work_left(state, trainer.epochs, trainer.max_minutes):
        raise RecipeError(
            f"--resume: the run in {str(trainer.run_directory.path)!r} already finished "
            f"({state.epoch} epochs, {state.seconds / 60:.1f} minutes); pass a larger --epochs or "
            "--max-minutes to continue it."
        )
    state.budget_exhausted = False
    log(f"resuming at epoch {state.epoch + 1}, step {state.step}/{trainer.steps_per_epoch}")


def start_or_resume(trainer, checkpoint, fingerprint, log=print):
    """Continue `trainer` from `checkpoint` (see `resume_trainer`), or, when it is None, start
    a new run on the data identified by `fingerprint`."""
    if checkpoint is not None:
        resume_trainer(trainer, checkpoint, log=log)
    else:
        trainer.state.fingerprint = fingerprint


def _flag(name):
    return "--" + name.replace("_", "-")
