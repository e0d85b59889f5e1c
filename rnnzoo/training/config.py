"""Recipe configs: a dataclass of scalars, filled from TOML files and command-line flags.

A recipe declares its config as a `dataclasses.dataclass` whose fields are
`int`, `float`, `str` or `bool`, each with `metadata={"help": ...}`. The value
a run uses is resolved in layers, later ones winning:

    dataclass defaults  <  recipe defaults file (recipes/<name>.toml)
                        <  --config FILE  <  flags given on the command line

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
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

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
        raise RecipeError(
            f"{source}: unknown config key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(fields)}."
        )
    values = {name: coerce(fields[name], value, source) for name, value in mapping.items()}
    base = config_class() if base is None else base
    return dataclasses.replace(base, **values)


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


def load_layered(config_class, defaults, key, variant_file, config_file=None, overrides=None):
    """`defaults`, the variant's own file, `config_file`, then `overrides`.

    A recipe with variants (seqclass's tasks, glimpse_mnist's datasets) keeps
    each variant's defaults in its own TOML file. The variant is the value of
    field `key`, read first from the overrides, else `config_file`, else
    `defaults`; `variant_file(value)` names its file (used when it exists).
    """
    overrides = dict(overrides or {})
    defaults = defaults if defaults is not None and Path(defaults).exists() else None
    variant = overrides.get(key)
    if variant is None and config_file is not None:
        variant = read_toml(config_file).get(key)
    if variant is None:
        variant = getattr(load(config_class, defaults), key)
    files = [defaults]
    if isinstance(variant, str) and variant_file(variant) is not None:
        candidate = Path(variant_file(variant))
        if candidate.exists():
            files.append(candidate)
    return load(config_class, *files, config_file, overrides=overrides)


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


def to_toml(config, header=None):
    """`config` as TOML text, each key preceded by its help as a comment."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    for field in _fields(type(config)):
        if lines:
            lines.append("")
        if help_of(field):
            lines.append(f"# {help_of(field)}")
        lines.append(f"{field.name} = {_toml_value(getattr(config, field.name))}")
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
