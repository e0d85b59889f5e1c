"""Recipe configs: a dataclass of scalars, filled from TOML files and command-line flags.

A recipe declares its config as a `dataclasses.dataclass` whose fields are
`int`, `float`, `str` or `bool`, each with `metadata={"help": ...}`. The value
a run uses is resolved in layers, later ones winning (`resolve`):

    dataclass defaults  <  the recipe's defaults file (<name>.toml)
                        <  the variant's own file (seqclass_<task>.toml, ...)
                        <  --config FILE  <  flags given on the command line

The recipe files live in the repository's top-level `recipes/` folder and ship
inside the package as `rnnzoo/recipes/configs/` (`configs_folder` finds them
either way). A file a recipe declares that is missing is an error, never skipped.

Every layer is checked the same way: an unknown key, or a value of the wrong
type (a string where an int is expected, `true` for a float, ...) is a
`RecipeError` that names the file and the key. A dataclass may define
`validate(self)` for range checks; it runs on the resolved config.

>>> import dataclasses
>>> @dataclasses.dataclass
... class Example:
...     units: int = option(8, "hidden size")
>>> from_mapping(Example, {"units": 16}, source="a test").units
16
"""

import argparse
import dataclasses
import json
import math
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from rnnzoo.cells.registry import closest
from rnnzoo.training.errors import RecipeError

_TYPES = (bool, int, float, str)


def option(default, help):
    """A config field: its default and its one-line reason (shown by --help and in config.toml)."""
    return dataclasses.field(default=default, metadata={"help": help})


def _fields(config_class):
    fields = dataclasses.fields(config_class)
    for field in fields:
        if field.type not in _TYPES and field.type not in {t.__name__ for t in _TYPES}:
            raise TypeError(
                f"{config_class.__name__}.{field.name} has type {field.type!r}; "
                "recipe configs hold only bool, int, float or str."
            )
    return fields


def _field_type(field):
    if isinstance(field.type, type):
        return field.type
    return {kind.__name__: kind for kind in _TYPES}[field.type]  # postponed annotations


def help_of(field):
    """The field's one-line help (its `metadata["help"]`)."""
    return field.metadata.get("help", "")


def coerce(field, value, source):
    """`value` as the field's type, or a `RecipeError` naming `source` and the key."""
    expected = _field_type(field)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise RecipeError(
        f"{source}: `{field.name}` must be {expected.__name__}, received {value!r} "
        f"({type(value).__name__}); fix the value (for example {field.name} = "
        f"{_toml_value(field.default)})."
    )


def from_mapping(config_class, mapping, source, base=None):
    """A `config_class` from `base` (or its defaults) with `mapping`'s keys replaced."""
    fields = {field.name: field for field in _fields(config_class)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        close = {key: closest(key, fields) for key in unknown}
        meant = [f"{match!r} for {key!r}" for key, match in close.items() if match]
        if len(unknown) == 1:  # (did you mean 'units'?)
            meant = [repr(match) for match in close.values() if match]
        hint = f" (did you mean {', '.join(meant)}?)" if meant else ""
        raise RecipeError(
            f"{source}: unknown config key(s) {', '.join(map(repr, unknown))}{hint}; "
            f"known keys: {', '.join(fields)}."
        )
    values = {name: coerce(fields[name], value, source) for name, value in mapping.items()}
    base = config_class() if base is None else base
    return dataclasses.replace(base, **values)


def configs_folder():
    """The folder of the recipe config files.

    Installed from a wheel or an sdist, they are package data in `rnnzoo/recipes/configs/`; in
    an editable install or a source checkout, the repository's `recipes/` folder beside the
    package holds them.
    """
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "recipes" / "configs", package.parent / "recipes"):
        if folder.is_dir():
            return folder
    raise RecipeError(
        f"rnnzoo's recipe configs are missing: neither {str(package / 'recipes' / 'configs')!r} "
        f"nor {str(package.parent / 'recipes')!r} exists; reinstall rnnzoo."
    )


def recipe_file(name):
    """`name` (a file of the configs folder) as a path; a missing file is a `RecipeError`."""
    path = configs_folder() / name
    if not path.is_file():
        raise RecipeError(
            f"recipe config {str(path)!r} is missing (the recipe declares it); restore it, "
            "or reinstall rnnzoo."
        )
    return path


_RECIPE_COMMAND = re.compile(r"python -m rnnzoo\.recipes\.(\w+)")


def shipped_for(path):
    """The recipe a shipped config file is for: the `python -m rnnzoo.recipes.<name>` its
    comments run (None for a file that names none)."""
    match = _RECIPE_COMMAND.search(Path(path).read_text(encoding="utf-8"))
    return match and match.group(1)


def shipped_configs(recipe=None):
    """The names of the shipped configs (`recipe`'s alone, if given), sorted."""
    files = sorted(configs_folder().glob("*.toml"))
    return [file.stem for file in files if recipe is None or shipped_for(file) == recipe]


def config_path(value, recipe=None):
    """The file `--config VALUE` names: a path, or the name of a file in the configs folder
    (`min_char_rnn` or `min_char_rnn.toml`), so the shipped configs work from any folder.

    A bare name that is neither is a `RecipeError` listing the shipped configs (`recipe`'s
    alone, if given); so is a shipped config of another recipe than `recipe`, which would
    otherwise fail on keys that recipe does not know."""
    path = Path(value)
    if not path.exists() and path.name == str(value):
        for name in (str(value), f"{value}.toml"):
            if (configs_folder() / name).is_file():
                path = configs_folder() / name
                break
        else:
            raise RecipeError(
                f"config {str(value)!r} is neither a file nor a shipped config; pass a .toml "
                f"file's path, or one of: {', '.join(shipped_configs(recipe))}."
            )
    if recipe is not None and path.is_file() and path.resolve().parent == configs_folder():
        owner = shipped_for(path)
        if owner not in (None, recipe):
            raise RecipeError(
                f"config {str(value)!r} is the {owner} recipe's (python -m rnnzoo.recipes."
                f"{owner} --config {path.stem}), not {recipe}'s; pass one of {recipe}'s: "
                f"{', '.join(shipped_configs(recipe))}, or a .toml file of your own."
            )
    return path


def read_toml(path):
    """The table in TOML file `path`, or a `RecipeError` saying why it can't be read."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise RecipeError(
            f"config file {str(path)!r} does not exist; pass an existing .toml file."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"config file {str(path)!r} cannot be read: {error}.") from None
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"config file {str(path)!r} is not valid TOML: {error}.") from None


def load(config_class, *files, overrides=None):
    """Resolve a config: defaults, then each TOML file in order, then `overrides` (flags)."""
    config = config_class()
    for path in files:
        if path is not None:
            config = from_mapping(config_class, read_toml(path), source=str(path), base=config)
    if overrides:
        config = from_mapping(config_class, overrides, source="command line", base=config)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def resolve(
    config_class,
    defaults,
    config_file=None,
    overrides=None,
    variant=None,
    variants=None,
    recipe=None,
):
    """The config of a new run: `defaults`, the variant's file, `config_file`, then `overrides`.

    `defaults` names the recipe's defaults file in the configs folder; `recipe`, the recipe's
    name, refuses another recipe's shipped config (`config_path`). A recipe with variants
    (seqclass's tasks, glimpse_mnist's datasets) names the field that picks one (`variant`)
    and declares each variant's own file (`variants`: value -> file name, or None for a
    variant without one). The variant is read from the overrides, else `config_file`, else
    the defaults.
    """
    overrides = dict(overrides or {})
    files = [recipe_file(defaults)]
    config_file = None if config_file is None else config_path(config_file, recipe)
    if variant is not None:
        value = overrides.get(variant)
        if value is None and config_file is not None:
            value = read_toml(config_file).get(variant)
        if value is None:
            value = read_toml(files[0]).get(variant, getattr(config_class(), variant))
        name = variants.get(value) if isinstance(value, str) else None
        if name is not None:
            files.append(recipe_file(name))
    if config_file is not None:
        files.append(config_file)
    return load(config_class, *files, overrides=overrides)


# --------------------------------------------------------------------------- TOML out
def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(str(value))


def _toml_line(name, value):
    """`name = value`, one line of a config's TOML."""
    return f"{name} = {_toml_value(value)}"


def to_toml(config, header=None):
    """`config` as TOML text, each key preceded by its help as a comment."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    for field in _fields(type(config)):
        if lines:
            lines.append("")
        if help_of(field):
            lines.append(f"# {help_of(field)}")
        lines.append(_toml_line(field.name, getattr(config, field.name)))
    return "\n".join(lines) + "\n"


def with_values(text, values):
    """The TOML `text` of a config (as `to_toml` writes it) with the `key = value` lines of
    `values` (name -> value) set to them, or added at the end where `text` has none (a run
    from before the option existed); comments and layout kept."""
    lines = text.splitlines()
    for name, value in values.items():
        prefix = f"{name} = "
        matches = [index for index, line in enumerate(lines) if line.startswith(prefix)]
        if len(matches) > 1:
            raise ValueError(f"expected one `{prefix}...` line in the config, found {len(matches)}")
        if matches:
            lines[matches[0]] = _toml_line(name, value)
        else:
            lines.append(_toml_line(name, value))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- flags
def flag_name(field):
    return "--" + field.name.replace("_", "-")


def add_flags(parser, config_class, skip=()):
    """One flag per config field (`--seq-length` for `seq_length`), help from the field.

    Flags default to None so that only the flags actually given override the
    config files (see `flag_overrides`).
    """
    for field in _fields(config_class):
        if field.name in skip:
            continue
        kind = _field_type(field)
        help_text = f"{help_of(field)} (default {_toml_value(field.default)})"
        if kind is bool:
            parser.add_argument(
                flag_name(field),
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag_name(field),
                dest=field.name,
                type=kind,
                default=None,
                metavar=field.name.upper(),
                help=help_text,
            )


def flag_overrides(args, config_class):
    """The config values given as flags in parsed `args` (those not None)."""
    return {
        field.name: getattr(args, field.name)
        for field in _fields(config_class)
        if getattr(args, field.name, None) is not None
    }
