"""Single-file checkpoints: exact round trips, atomic writes, clear errors on damage."""

import io
import os
import zipfile

import keras
import numpy as np
import pytest

from rnnzoo.models import build_char_lm
from rnnzoo.training import checkpoints
from rnnzoo.training.errors import RecipeError

VOCAB, BATCH, TIME = 11, 3, 6


def trained_model(seed=0, dropout=0.3):
    """A stateful 2-layer char LM after two Adam steps (optimizer, RNG, carry all non-trivial)."""
    model = build_char_lm(
        VOCAB,
        units=5,
        num_layers=2,
        embedding_dim=4,
        dropout=dropout,
        batch_size=BATCH,
        stateful=True,
        seed=seed,
    )
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    data = np.random.default_rng(seed).integers(0, VOCAB, (2 * BATCH, TIME + 1))
    model.fit(data[:, :-1], data[:, 1:], batch_size=BATCH, shuffle=False, verbose=0)
    return model


@pytest.fixture(scope="module")
def model():
    return trained_model(seed=0)


@pytest.fixture(scope="module")
def checkpoint_bytes(model):
    return checkpoints.to_bytes(checkpoints.capture(model, {}, optimizer=model.optimizer))


def test_round_trip_restores_weights_optimizer_rng_and_carried_states(tmp_path):
    model = trained_model(seed=0)
    path = tmp_path / "last.ckpt"
    checkpoints.save(
        checkpoints.capture(model, {"epoch": 3, "step": 7}, optimizer=model.optimizer), path
    )
    assert os.listdir(tmp_path) == ["last.ckpt"]
    batch = np.random.default_rng(5).integers(0, VOCAB, (BATCH, TIME + 1))

    def next_step(m):
        # One more training step, with dropout: depends on weights, optimizer, RNG and carry.
        m.fit(batch[:, :-1], batch[:, 1:], batch_size=BATCH, shuffle=False, verbose=0)
        return m.get_weights(), checkpoints.carried_states(m)

    other = trained_model(seed=1)  # different weights, moments, RNG and carry
    loaded = checkpoints.load(path)
    assert loaded.state == {"epoch": 3, "step": 7}
    checkpoints.restore(loaded, other, optimizer=other.optimizer)
    for expected, actual in zip(next_step(model), next_step(other)):
        for e, a in zip(expected, actual):
            np.testing.assert_array_equal(a, e)


def test_carried_states_are_saved_and_restored(model):
    carried = checkpoints.carried_states(model)
    assert len(carried) == 4 and all(c.shape == (BATCH, 5) for c in carried)  # (h, c) x 2 layers
    assert all(np.abs(c).sum() > 0 for c in carried)
    checkpoints.reset_carried_states(model)
    assert all(np.abs(c).sum() == 0 for c in checkpoints.carried_states(model))
    checkpoints.set_carried_states(model, carried)
    for e, a in zip(carried, checkpoints.carried_states(model)):
        np.testing.assert_array_equal(a, e)


def test_stateful_weights_load_into_a_stateless_model(tmp_path, model, checkpoint_bytes):
    (tmp_path / "c.ckpt").write_bytes(checkpoint_bytes)
    stateless = build_char_lm(VOCAB, units=5, num_layers=2, embedding_dim=4, dropout=0.3, seed=9)
    checkpoints.restore(checkpoints.load(tmp_path / "c.ckpt"), stateless, carry=False, rng=False)
    ids = np.random.default_rng(2).integers(0, VOCAB, (BATCH, TIME))
    carried = checkpoints.carried_states(model)
    checkpoints.reset_carried_states(model)
    np.testing.assert_allclose(stateless(ids), model(ids), atol=1e-6)
    checkpoints.set_carried_states(model, carried)


def test_non_finite_weights_are_never_written(tmp_path, model):
    path = tmp_path / "last.ckpt"
    good = checkpoints.capture(model, {"step": 1})
    checkpoints.save(good, path)
    bad = checkpoints.capture(model, {"step": 2})
    bad.weights[0] = bad.weights[0] * np.nan
    with pytest.raises(RecipeError, match="NaN or infinity"):
        checkpoints.save(bad, path)
    assert checkpoints.load(path).state == {"step": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "foreign_zip", "empty"])
def test_damaged_checkpoints_are_recipe_errors(tmp_path, damage, checkpoint_bytes):
    path = tmp_path / "last.ckpt"
    data = bytearray(checkpoint_bytes)
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(os.urandom(4096))
    elif damage == "empty":
        data = bytearray()
    if damage == "foreign_zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a checkpoint")
    else:
        path.write_bytes(bytes(data))
    with pytest.raises(RecipeError, match="is corrupt or not an rnnzoo checkpoint"):
        checkpoints.load(path)


def test_missing_checkpoint_and_mismatched_model_are_recipe_errors(tmp_path, model):
    with pytest.raises(RecipeError, match="does not exist"):
        checkpoints.load(tmp_path / "none.ckpt")
    snapshot = checkpoints.capture(model, {})
    wider = build_char_lm(
        VOCAB, units=6, num_layers=2, embedding_dim=4, batch_size=BATCH, stateful=True
    )
    with pytest.raises(RecipeError, match="different config"):
        checkpoints.restore(snapshot, wider)
    one_layer = build_char_lm(
        VOCAB, units=5, num_layers=1, embedding_dim=4, batch_size=BATCH, stateful=True
    )
    with pytest.raises(RecipeError, match="different config"):
        checkpoints.restore(snapshot, one_layer)


def rewritten(checkpoint_bytes, name, text):
    """The checkpoint's zip with member `name` replaced by `text` (fresh CRCs: intact zip)."""
    source, target = zipfile.ZipFile(io.BytesIO(checkpoint_bytes)), io.BytesIO()
    with zipfile.ZipFile(target, "w") as archive:
        for member in source.namelist():
            archive.writestr(member, text if member == name else source.read(member))
    return target.getvalue()


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("manifest.json", "[]", "manifest.json holds list, not an object"),
        ("manifest.json", '{"format": "rnnzoo-checkpoint", "version": 1}', "`arrays` must map"),
        (
            "manifest.json",
            '{"format": "rnnzoo-checkpoint", "version": 1, "arrays": '
            '{"weights": [["2"]], "rng": [], "optimizer": [], "carried": []}}',
            "`arrays.weights` must be a list of shapes",
        ),
        ("state.json", '["epoch", 3]', "state.json holds list, not an object"),
    ],
    ids=["manifest-list", "no-arrays", "shape-strings", "state-list"],
)
def test_json_parts_of_the_wrong_structure_are_errors_naming_the_file(
    tmp_path, checkpoint_bytes, name, text, fragment
):
    path = tmp_path / "last.ckpt"
    path.write_bytes(rewritten(checkpoint_bytes, name, text))
    with pytest.raises(RecipeError) as caught:
        checkpoints.load(path)
    assert str(path) in str(caught.value) and fragment in str(caught.value)
