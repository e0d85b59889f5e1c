"""Where the recipe configs come from: one folder, every declared file present, the package list.

`.ci/run` checks the other half: a wheel installed in a fresh virtual environment resolves the
same configs from its package data, from a folder outside the repository.
"""

import sys
from pathlib import Path

import pytest
from processes import REPO_ROOT

from rnnzoo.recipes import charlm, glimpse_mnist, seqclass
from rnnzoo.training import config as config_io
from rnnzoo.training.errors import RecipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES = (charlm.RECIPE, seqclass.RECIPE, glimpse_mnist.RECIPE)


def test_a_checkout_reads_the_repositorys_recipes_folder():
    assert config_io.configs_folder() == REPO_ROOT / "recipes"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda recipe: recipe.name)
def test_every_file_a_recipe_declares_exists(recipe):
    folder = config_io.configs_folder()
    declared = [recipe.defaults, *[name for name in (recipe.variants or {}).values() if name]]
    assert all((folder / name).is_file() for name in declared), declared
    needs = {"data": "x.tsv"} if recipe is seqclass.RECIPE else {}  # (--task text needs --data)
    for variant in recipe.variants or {}:  # each variant resolves, its own file included
        recipe.resolve_config(overrides={recipe.variant: variant, **needs})


def test_a_declared_file_that_is_missing_is_an_error_not_skipped():
    with pytest.raises(RecipeError, match=r"recipe config .*charlm_gru\.toml' is missing"):
        config_io.resolve(
            charlm.CharLMConfig,
            "charlm.toml",
            overrides={"cell": "gru"},
            variant="cell",
            variants={"gru": "charlm_gru.toml"},
        )
    with pytest.raises(RecipeError, match=r"recipe config .*nowhere\.toml' is missing"):
        config_io.resolve(charlm.CharLMConfig, "nowhere.toml")


def test_config_takes_a_path_or_the_name_of_a_shipped_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any folder: the shipped files are found by name
    named = charlm.RECIPE.resolve_config("min_char_rnn")
    assert named == charlm.RECIPE.resolve_config("min_char_rnn.toml")
    assert named == charlm.RECIPE.resolve_config(REPO_ROOT / "recipes" / "min_char_rnn.toml")
    assert named.cell == "vanilla"
    # A bare name that names nothing lists the names that would work.
    with pytest.raises(RecipeError, match="'nothing.toml' is neither a file nor") as error:
        charlm.RECIPE.resolve_config("nothing.toml")
    shipped = str(error.value).rpartition("one of: ")[2].rstrip(".").split(", ")
    assert "min_char_rnn" in shipped and "charlm_war_and_peace" in shipped
    assert not any(name.startswith(("seqclass", "glimpse")) for name in shipped)  # charlm's
    assert all(charlm.RECIPE.resolve_config(name) for name in shipped)
    with pytest.raises(RecipeError, match="does not exist"):  # a path: said as before
        charlm.RECIPE.resolve_config(tmp_path / "nothing.toml")


def test_every_shipped_config_names_its_recipe_and_each_recipe_its_own_files():
    folder = config_io.configs_folder()
    owners = {path.stem: config_io.shipped_for(path) for path in folder.glob("*.toml")}
    assert set(owners.values()) == {recipe.name for recipe in RECIPES}, owners
    for recipe in RECIPES:
        declared = [recipe.defaults, *[name for name in (recipe.variants or {}).values() if name]]
        assert {owners[Path(name).stem] for name in declared} == {recipe.name}, declared


def test_another_recipes_shipped_config_is_refused_by_name_and_by_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Without the check this failed on charlm's keys: "unknown config key(s) 'seq_length'".
    with pytest.raises(RecipeError, match="is the charlm recipe's") as error:
        seqclass.RECIPE.resolve_config("charlm_war_and_peace")
    message = str(error.value)
    assert "python -m rnnzoo.recipes.charlm --config charlm_war_and_peace" in message
    assert "seqclass_pixel_mnist" in message and "glimpse_mnist_cluttered" not in message
    with pytest.raises(RecipeError, match="is the seqclass recipe's"):
        glimpse_mnist.RECIPE.resolve_config(REPO_ROOT / "recipes" / "seqclass_adding.toml")
    # A copy of it outside the configs folder is the user's own file: its keys are checked.
    copy = tmp_path / "mine.toml"
    copy.write_text((REPO_ROOT / "recipes" / "charlm_war_and_peace.toml").read_text())
    with pytest.raises(RecipeError, match="unknown config key"):
        seqclass.RECIPE.resolve_config(copy)


def test_smoke_values_are_config_keys_and_flags_beat_them():
    for recipe in RECIPES:
        assert set(recipe.smoke) <= set(recipe.config_class.__dataclass_fields__), recipe.name
    config = seqclass.RECIPE.resolve_config(overrides={**seqclass.SMOKE, "units": 3})
    assert (config.units, config.steps_per_epoch) == (3, seqclass.SMOKE["steps_per_epoch"])


def test_the_wheel_lists_every_package_folder_and_ships_the_configs():
    """pyproject.toml lists the packages (the configs folder needs a package-dir mapping, which
    package discovery can't express): a package folder missing from the list would be missing
    from the wheel."""
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = sorted(
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for path in (REPO_ROOT / "rnnzoo").rglob("__init__.py")
    )
    assert sorted(setuptools["packages"]) == sorted([*folders, "rnnzoo.recipes.configs"])
    assert setuptools["package-dir"] == {"rnnzoo.recipes.configs": "recipes"}
    assert setuptools["package-data"] == {"rnnzoo.recipes.configs": ["*.toml"]}
