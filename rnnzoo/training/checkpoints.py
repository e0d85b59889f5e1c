"""Single-file checkpoints of a training run, written atomically.

A checkpoint is a zip archive holding everything needed to continue a run
exactly where it stopped:

    manifest.json        format, version and the count/shape of every array
    state.json           the trainer's state (epoch, step in epoch, best
                         validation score, history, ...), JSON
    weights/NNNNN.npy    `model.get_weights()`, in order
    rng/NNNNN.npy        the model's random-seed-generator states (dropout masks)
    optimizer/NNNNN.npy  `optimizer.variables` (iterations, learning rate, moments)
    carried/NNNNN.npy    the carried states of the stateful recurrent layers,
                         layer by layer, state by state (h, then c for an LSTM), each
                         (streams, units): a distributed run's replicas' rows gathered

It is written to a temporary file and `os.replace`d into place (see
`rnnzoo.training.rundir.write_atomic`), so a run killed mid-write leaves the
previous checkpoint intact. Loading checks the archive's CRCs, the structure of
manifest.json and state.json, and every array against the manifest; anything
wrong is a `RecipeError` that names the file.
"""

import dataclasses
import io
import json
import struct
import zipfile

import keras
import numpy as np

from rnnzoo.training.errors import RecipeError
from rnnzoo.training.rundir import write_atomic

FORMAT = "rnnzoo-checkpoint"
VERSION = 1
GROUPS = ("weights", "rng", "optimizer", "carried")


@dataclasses.dataclass
class Checkpoint:
    """The arrays and trainer state of one moment of a run."""

    state: dict
    weights: list
    rng: list = dataclasses.field(default_factory=list)
    optimizer: list = dataclasses.field(default_factory=list)
    carried: list = dataclasses.field(default_factory=list)
    path: str = None  # the file it was loaded from

    def all_finite(self):
        """Whether every weight is finite (a model that diverged is never saved)."""
        return all(np.all(np.isfinite(array)) for array in self.weights)


# ------------------------------------------------------------------ model state
def stateful_layers(model):
    """The model's stateful `keras.layers.RNN` layers, input to output."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.RNN) and layer.stateful:
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(stateful_layers(layer))
    return found


def _carried_variables(model):
    return [v for layer in stateful_layers(model) for v in (layer.states or [])]


def carried_states(model, replicas=None):
    """The carried states of a stateful model, as a flat list of numpy arrays.

    With `replicas` (`rnnzoo.training.distribute.Replicas`), each state is every replica's
    copy, gathered into the global batch's rows: the same arrays as a single device's.
    """
    variables = _carried_variables(model)
    if replicas is not None:
        return replicas.gather(variables)
    return [np.array(variable.numpy()) for variable in variables]


def set_carried_states(model, arrays, replicas=None):
    """Assign `arrays` (as returned by `carried_states`) to the model's carried states (with
    `replicas`: each replica its own rows, for any replica count)."""
    variables = _carried_variables(model)
    if replicas is None:
        _assign(variables, arrays, "carried state")
        return
    count = replicas.count
    _check(variables, arrays, "carried state", lambda v: (v.shape[0] * count, *v.shape[1:]))
    replicas.scatter(variables, arrays)


def reset_carried_states(model):
    """Zero the carried states of every stateful recurrent layer."""
    for layer in stateful_layers(model):
        layer.reset_state()


def rng_variables(model):
    """The model's variables that are not weights: its seed generators' states."""
    weight_ids = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weight_ids]


def capture(model, state, optimizer=None, carry=True, replicas=None):
    """A `Checkpoint` of `model` (and `optimizer`) now, with trainer `state` (`replicas`: see
    `carried_states`; weights, optimizer and random states are the same in every replica)."""
    return Checkpoint(
        state=dict(state),
        weights=[np.array(w) for w in model.get_weights()],
        rng=[np.array(v.numpy()) for v in rng_variables(model)],
        optimizer=[np.array(v.numpy()) for v in optimizer.variables] if optimizer else [],
        carried=carried_states(model, replicas) if carry else [],
    )


def restore(checkpoint, model, optimizer=None, carry=True, rng=True, replicas=None):
    """Load a checkpoint's arrays into `model` (and `optimizer`), checking every shape.

    `model` may differ from the one saved in batch size and statefulness (a
    stateless sampling model takes a stateful training model's weights); set
    `carry=False` and `rng=False` then. With `replicas`, see `set_carried_states`.
    """
    _assign(model.weights, checkpoint.weights, "weight")
    if rng:
        _assign(rng_variables(model), checkpoint.rng, "random-generator state")
    if optimizer is not None:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        _assign(optimizer.variables, checkpoint.optimizer, "optimizer variable")
    if carry:
        set_carried_states(model, checkpoint.carried, replicas)


def _assign(variables, arrays, what):
    _check(variables, arrays, what)
    for variable, array in zip(variables, arrays):
        variable.assign(array)


def _check(variables, arrays, what, expected_shape=lambda variable: tuple(variable.shape)):
    if len(variables) != len(arrays):
        raise RecipeError(
            f"the checkpoint holds {len(arrays)} {what}(s) but the model has "
            f"{len(variables)}; it was made with a different config (cell, layers, "
            "units, ...): use the run's own config.toml."
        )
    for variable, array in zip(variables, arrays):
        expected = tuple(expected_shape(variable))
        if expected != tuple(array.shape):
            raise RecipeError(
                f"checkpoint {what} {variable.path!r} has shape {tuple(array.shape)}, the "
                f"model expects {expected}; it was made with a different config."
            )


# ------------------------------------------------------------------------ files
def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _npy_array(data):
    return np.load(io.BytesIO(data), allow_pickle=False)


def to_bytes(checkpoint):
    """The checkpoint as the bytes of its zip archive."""
    buffer = io.BytesIO()
    manifest = {"format": FORMAT, "version": VERSION, "arrays": {}}
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for group in GROUPS:
            arrays = getattr(checkpoint, group)
            manifest["arrays"][group] = [list(np.shape(array)) for array in arrays]
            for index, array in enumerate(arrays):
                archive.writestr(f"{group}/{index:05d}.npy", _npy_bytes(array))
        archive.writestr("state.json", json.dumps(checkpoint.state, indent=1))
        archive.writestr("manifest.json", json.dumps(manifest))
    return buffer.getvalue()


def save(checkpoint, path):
    """Write `checkpoint` to `path` atomically; refuse weights that are not finite."""
    if not checkpoint.all_finite():
        raise RecipeError(
            f"refusing to write checkpoint {str(path)!r}: the weights hold NaN or infinity."
        )
    write_atomic(path, to_bytes(checkpoint))


def _check_manifest(manifest):
    """Raise ValueError unless `manifest` is this format's: a shape (list of ints) per array."""
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest.json holds {type(manifest).__name__}, not an object")
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ValueError(f"manifest.json: not a {FORMAT} version {VERSION} file")
    arrays = manifest.get("arrays")
    if not isinstance(arrays, dict) or sorted(arrays) != sorted(GROUPS):
        raise ValueError(f"manifest.json: `arrays` must map each of {', '.join(GROUPS)} to shapes")
    for group in GROUPS:
        shapes = arrays[group]
        if not isinstance(shapes, list) or not all(
            isinstance(shape, list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            for shape in shapes
        ):
            raise ValueError(f"manifest.json: `arrays.{group}` must be a list of shapes")


def load(path):
    """Read the checkpoint at `path`; a missing or damaged file is a `RecipeError`."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                raise ValueError(f"CRC mismatch in {damaged}")
            manifest = json.loads(archive.read("manifest.json"))
            _check_manifest(manifest)
            groups = {}
            for group in GROUPS:
                shapes = manifest["arrays"][group]
                arrays = [
                    _npy_array(archive.read(f"{group}/{index:05d}.npy"))
                    for index in range(len(shapes))
                ]
                if [list(a.shape) for a in arrays] != shapes:
                    raise ValueError(f"the {group} arrays do not match the manifest")
                groups[group] = arrays
            state = json.loads(archive.read("state.json"))
            if not isinstance(state, dict):
                raise ValueError(f"state.json holds {type(state).__name__}, not an object")
    except FileNotFoundError:
        raise RecipeError(f"checkpoint {str(path)!r} does not exist.") from None
    except (
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        TypeError,
        OSError,
        EOFError,
        struct.error,
        NotImplementedError,
    ) as error:
        raise RecipeError(
            f"checkpoint {str(path)!r} is corrupt or not an rnnzoo checkpoint ({error}); use "
            "the run's other checkpoint (--checkpoint best or last), or delete this one."
        ) from None
    return Checkpoint(state=state, **groups, path=str(path))
