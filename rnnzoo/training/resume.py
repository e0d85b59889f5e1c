"""`--resume` for any recipe: the run's own config, and the checks between it and its checkpoint.

A resumed run continues with the config it was started with (its
`config.toml`); only the length of the run (`--epochs`, `--max-minutes`) and
its learning-rate schedule (`--lr`, `--lr-decay`, `--lr-decay-after`,
`--lr-warmup-steps`, where the recipe has them) may differ. A changed schedule is written into
config.toml (`record_schedule`), so later resumes keep it; a new length holds
for that resume. Every checkpoint records what the run started from:
config.toml's values, a checksum of vocabulary.json's content and a
fingerprint of the data. A resume whose config.toml or vocabulary.json was
edited since (but for the schedule), or whose data differs, is refused with
what changed.
"""

import hashlib
import json

import numpy as np

from rnnzoo.training import config as config_io
from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import VOCABULARY_FILE, RunDirectory, write_atomic

CHANGEABLE = ("epochs", "max_minutes")
# The learning-rate schedule: a long run may go on at another rate or decay (config.toml
# then holds the new one).
SCHEDULE = ("lr", "lr_decay", "lr_decay_after", "lr_warmup_steps")


def schedule_keys(config_class):
    """The keys of `SCHEDULE` that `config_class` has."""
    return tuple(name for name in SCHEDULE if name in config_class.__dataclass_fields__)


def changeable_keys(config_class):
    """The keys a `--resume` may change: the run's length and its schedule."""
    return CHANGEABLE + schedule_keys(config_class)


def resumed_config(config_class, run_dir, config_file, overrides, changeable=None):
    """The config of the run in `run_dir`: its config.toml with changeable flag overrides."""
    changeable = changeable or changeable_keys(config_class)
    if not run_dir:
        raise RecipeError("--resume needs --run-dir DIR, the run to continue.")
    if config_file:
        raise RecipeError("--resume continues the run's own config.toml; drop --config.")
    fixed = sorted(set(overrides) - set(changeable))
    if fixed:
        flags = flag_list(fixed)
        allowed = flag_list(changeable)
        raise RecipeError(
            f"--resume keeps the run's config; {flags} cannot change mid-run (only {allowed} can); "
            "start a new run instead."
        )
    run = RunDirectory(run_dir).require("--resume")
    return config_io.load(config_class, run.config_path, overrides=overrides)


def config_values(config_class, run):
    """The values in the run's config.toml (comments and layout aside), as a dict."""
    config = config_io.from_mapping(
        config_class, config_io.read_toml(run.config_path), source=str(run.config_path)
    )
    return _values(config)


def recorded_values(state, config_class):
    """The config values a checkpoint's `state` recorded at the run's start. An option added
    to the recipe after the run started is recorded in neither file; it takes its default,
    which keeps the run's behaviour as it was."""
    return _values(config_class()) | state.config


def record_schedule(run, config, started, log=print):
    """Write `config`'s learning-rate schedule into the run's config.toml where it differs
    (a resume's flags changed it), so later resumes keep it; say so where it differs from
    `started` (the values the run started with)."""
    keys = schedule_keys(type(config))
    now = {name: getattr(config, name) for name in keys}
    on_disk = config_values(type(config), run)
    changed = {name: value for name, value in now.items() if on_disk[name] != value}
    if changed and run.writes:
        text = run.config_path.read_text(encoding="utf-8")
        write_atomic(run.config_path, config_io.with_values(text, changed))
    from_start = _differences({name: started[name] for name in keys}, now)
    if from_start:
        log(
            f"--resume: the learning-rate schedule differs from the run's start ({from_start})"
            f"; {run.config_path} holds it"
        )


def vocabulary_checksum(value):
    """A checksum of a vocabulary's content (its JSON value, whatever the file's layout)."""
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_unchanged(run, state, config):
    """Refuse to resume from `state` (a `TrainerState`) when the run's config.toml or
    vocabulary.json changed since it started (but for the schedule, which a resume may
    change), or when `config` (what would run now) differs from config.toml in more than
    the changeable keys."""
    changeable = changeable_keys(type(config))
    on_disk = config_values(type(config), run)
    edited = _differences(recorded_values(state, type(config)), on_disk, skip=SCHEDULE)
    if edited:
        flags = flag_list(changeable)
        raise RecipeError(
            f"--resume: {str(run.config_path)!r} was edited after the run started ({edited}); "
            f"put the recorded values back ({flags} may change as flags), or start a new run "
            "with the new config."
        )
    now = _values(config)
    differing = _differences(on_disk, now, skip=changeable)
    if differing:
        raise RecipeError(
            f"--resume: the config to run differs from {str(run.config_path)!r} ({differing}); "
            "resume with the run's own config."
        )
    path = run.file(VOCABULARY_FILE)
    saved = run.read_json(VOCABULARY_FILE) if path.exists() else None
    if vocabulary_checksum(saved) != state.vocabulary_checksum:
        raise RecipeError(
            f"--resume: {str(path)!r} was "
            f"{'edited' if saved is not None else 'removed'} after the run started "
            f"(checksum {vocabulary_checksum(saved) or 'none'}, recorded "
            f"{state.vocabulary_checksum or 'none'}): its ids would no longer match the "
            "model's; put the run's own vocabulary.json back."
        )


def fingerprint(name, splits):
    """`name:<hash>` of a dataset's arrays (`splits`: split name -> tuple of arrays), so a
    resume on other data is caught."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        for array in splits[split]:
            digest.update(str(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return f"{name}:{digest.hexdigest()[:16]}"


def check_data(state, fingerprint):
    """Refuse to resume from `state` on data other than the run's."""
    if state.fingerprint != fingerprint:
        raise RecipeError(
            f"--resume: the data differs from the run's ({fingerprint} vs {state.fingerprint}); "
            "resume with the run's own data."
        )


def out_of_time(state, max_minutes):
    """Whether a run at `state` has spent `max_minutes` (the run's total; 0: no limit).

    However the run ended (its budget stopped it, or it ran its epochs under a
    larger `--max-minutes` given to an earlier resume), it has time again only
    when `max_minutes` is 0 or more than it has spent.
    """
    return bool(max_minutes) and state.seconds >= 60.0 * max_minutes


def work_left(state, epochs, max_minutes):
    """Whether a run at `state` (a `TrainerState`) has training left under `epochs` and
    `max_minutes`."""
    return state.epoch < epochs and not out_of_time(state, max_minutes)


def _values(config):
    """A config's values by name."""
    return {name: getattr(config, name) for name in type(config).__dataclass_fields__}


def _differences(old, new, skip=()):
    """`"units 16 -> 32, lr 0.1 -> 0.2"` for the keys whose values differ."""
    keys = [key for key in dict.fromkeys([*old, *new]) if key not in skip]
    return ", ".join(
        f"{key} {old.get(key)!r} -> {new.get(key)!r}"
        for key in keys
        if old.get(key) != new.get(key)
    )


def flag_list(names):
    """`"--epochs, --max-minutes and --lr"` for `names`."""
    flags = ["--" + name.replace("_", "-") for name in names]
    return flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]
