"""Config loading: defaults < files < flags; unknown keys and wrong types are errors."""

import argparse
import dataclasses

import pytest

from rnnzoo.training import config as config_io
from rnnzoo.training.config import option
from rnnzoo.training.errors import RecipeError


@dataclasses.dataclass
class Example:
    name: str = option("lstm", "a name")
    units: int = option(8, "a size")
    rate: float = option(0.5, "a rate")
    flag: bool = option(False, "a switch")

    def validate(self):
        if self.units < 1:
            raise RecipeError("units must be >= 1")


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_layers_apply_in_order(tmp_path):
    first = write(tmp_path, 'name = "gru"\nunits = 16\n', "a.toml")
    second = write(tmp_path, "units = 32\nrate = 1\n", "b.toml")
    config = config_io.load(Example, first, second, overrides={"flag": True})
    assert config == Example(name="gru", units=32, rate=1.0, flag=True)
    assert isinstance(config.rate, float)


def test_unknown_key_names_the_file_the_likely_key_and_the_known_keys(tmp_path):
    path = write(tmp_path, "unitz = 3\nwidth = 2\n")
    with pytest.raises(RecipeError) as raised:
        config_io.load(Example, path)
    assert str(raised.value) == (
        f"{path}: unknown config key(s) 'unitz', 'width' (did you mean 'units' for 'unitz'?); "
        "known keys: name, units, rate, flag."
    )
    with pytest.raises(RecipeError, match=r"key\(s\) 'nmae' \(did you mean 'name'\?\); known"):
        config_io.load(Example, write(tmp_path, 'nmae = "gru"\n', "d.toml"))


@pytest.mark.parametrize(
    "text, message",
    [
        ('units = "8"', "`units` must be int, received '8'"),
        ("units = 8.5", "`units` must be int"),
        ("units = true", "`units` must be int, received True"),
        ("rate = false", "`rate` must be float"),
        ("name = 3", "`name` must be str"),
        ('flag = "yes"', "`flag` must be bool"),
    ],
)
def test_wrong_types_are_errors(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        config_io.load(Example, write(tmp_path, text + "\n"))


def test_invalid_toml_and_missing_files_are_recipe_errors(tmp_path):
    with pytest.raises(RecipeError, match="not valid TOML"):
        config_io.load(Example, write(tmp_path, "units = = 3\n"))
    with pytest.raises(RecipeError, match="does not exist"):
        config_io.load(Example, tmp_path / "missing.toml")


def test_validate_runs_on_the_resolved_config():
    with pytest.raises(RecipeError, match="units must be >= 1"):
        config_io.load(Example, overrides={"units": 0})


def test_to_toml_round_trips_with_help_comments(tmp_path):
    config = Example(name='quote " and \\ and \n', units=3, rate=1e-5, flag=True)
    text = config_io.to_toml(config, header="resolved")
    assert "# a size\nunits = 3" in text
    assert config_io.load(Example, write(tmp_path, text)) == config


def test_flags_override_only_when_given():
    parser = argparse.ArgumentParser()
    config_io.add_flags(parser, Example)
    args = parser.parse_args(["--units", "12", "--flag"])
    assert config_io.flag_overrides(args, Example) == {"units": 12, "flag": True}
    assert config_io.flag_overrides(parser.parse_args([]), Example) == {}
    assert config_io.flag_overrides(parser.parse_args(["--no-flag"]), Example) == {"flag": False}
    with pytest.raises(SystemExit):
        parser.parse_args(["--units", "many"])
