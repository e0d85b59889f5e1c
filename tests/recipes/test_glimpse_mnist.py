"""The glimpse_mnist recipe end to end, on MNIST files the tests write: every dataset and
attention kind, its TensorBoard views, resume, bad inputs."""

import dataclasses
import subprocess
import sys

import keras
import numpy as np
import pytest
from cli_checks import (
    assert_every_cell_trained,
    assert_mixed_float16_resumes_exactly,
    assert_one_line_error,
    main_runner,
    no_temporaries,
    one_cell_of_each_kind,
    results_of,
    tags_in,
)
from processes import (
    REPO_ROOT,
    keras_file_outputs,
    same_noise,
    served_differences,
    subprocess_env,
)

from rnnzoo.data.mnist import write_mnist_dir
from rnnzoo.recipes import glimpse_mnist
from rnnzoo.training import checkpoints, cli, runner
from rnnzoo.training import config as config_io

RECIPES = REPO_ROOT / "recipes"
DEFAULTS_FILE = RECIPES / "glimpse_mnist.toml"
# A tiny model, a few steps: seconds per run.
TINY = [
    "--units",
    "8",
    "--glimpse-units",
    "4",
    "--location-units",
    "4",
    "--batch-size",
    "4",
    "--epochs",
    "1",
    "--eval-samples",
    "2",
    "--mnist-validation",
    "4",
    "--histograms-every",
    "0",
    "--quiet",
]


run_main = main_runner(glimpse_mnist.main)


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    """MNIST's four IDX files holding 24 training and 8 test images: a bright bar whose row
    is the label, so the model has something to find."""
    rng = np.random.default_rng(1)

    def digits(count):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 40, (count, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels):
            image[4 + 2 * label : 6 + 2 * label, 6:22] = 255
        return images, labels

    return write_mnist_dir(tmp_path_factory.mktemp("mnist"), *digits(24), *digits(8))


# ------------------------------------------------------------------------- config files
def test_defaults_file_equals_the_dataclass_and_every_value_has_a_reason():
    defaults = config_io.load(glimpse_mnist.GlimpseConfig, DEFAULTS_FILE)
    assert defaults == glimpse_mnist.GlimpseConfig()
    names = [field.name for field in dataclasses.fields(glimpse_mnist.GlimpseConfig)]
    files = sorted(RECIPES.glob("glimpse_mnist*.toml"))
    assert set(glimpse_mnist.DATASET_FILES) == set(glimpse_mnist.DATASETS)  # each one declared
    variants = {RECIPES / name for name in glimpse_mnist.DATASET_FILES.values() if name}
    assert variants | {DEFAULTS_FILE} <= set(files)
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        keys = [line.split("=")[0].strip() for line in lines if "=" in line and line[0] != "#"]
        assert set(keys) <= set(names), path
        if path == DEFAULTS_FILE:
            assert keys == names  # every key, in the dataclass's order
        elif path in variants:
            dataset = config_io.read_toml(path)["dataset"]
            assert glimpse_mnist.DATASET_FILES[dataset] == path.name
        else:  # a config loaded by name (--config glimpse_mnist_cluttered100), over its dataset's
            config = glimpse_mnist.RECIPE.resolve_config(path.stem)
            assert config.dataset == config_io.read_toml(path)["dataset"]
        for index, line in enumerate(lines):
            if "=" in line and line[0] != "#":
                assert lines[index - 1].startswith("# "), f"{path.name}: no reason above {line!r}"


def test_the_dataset_picks_the_papers_retina_and_glimpses():
    def retina(config):
        return (config.glimpses, config.patch, config.scales)

    resolve = glimpse_mnist.RECIPE.resolve_config
    assert retina(resolve()) == (6, 8, 1)  # Table 1a, 1.29%
    assert retina(resolve(overrides={"dataset": "translated"})) == (6, 12, 3)
    cluttered = resolve(overrides={"dataset": "cluttered", "glimpses": 4})
    assert retina(cluttered) == (4, 12, 3) and cluttered.pieces == 4  # flags beat the file
    # The schedule of the run that reached 4.85% (the paper: 5.23%): its best epoch was 98.
    assert (cluttered.lr_decay, cluttered.lr_decay_after, cluttered.epochs) == (0.96, 15, 100)
    large = resolve("glimpse_mnist_cluttered100")  # Table 2's 100x100 task, its 8-glimpse row
    assert retina(large) == (8, 12, 4) and (large.size, large.dataset) == (100, "cluttered")
    assert (large.lr_decay, large.max_minutes) == (0.96, 0.0)  # the cluttered file's schedule


# ----------------------------------------------------------------------------- runs
@pytest.mark.parametrize(
    "dataset, attention, side",
    [
        ("mnist", "hard", 28),
        ("translated", "soft", 60),
        ("cluttered", "hard", 60),
        ("cluttered", "soft", 60),
    ],
)
def test_each_dataset_and_attention_trains_and_reports(
    dataset, attention, side, mnist_dir, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    flags = [
        "--dataset",
        dataset,
        "--attention",
        attention,
        "--mnist-dir",
        mnist_dir,
        "--views-every",
        "2",
        "--log-every",
        "1",
        "--run-dir",
        run_dir,
    ]
    status, out, err = run_main([*TINY, *flags], capsys)
    assert status == 0, err[-3000:]
    assert f"20 / 4 / 8 images (train / validation / test) of {side}x{side}" in out
    assert "test error" in out and f"{2 if attention == 'hard' else 1} episode(s) per image" in out
    results = results_of(run_dir)
    assert results["steps"] == 5 and results["monitor"] == "error"
    assert 0.0 <= results["test_error"] <= 1.0
    assert {
        "config.toml",
        "checkpoints",
        "train",
        "validation",
        "test",
        "glimpses",
        "recurrent",
        "model.keras",
        "results.json",
    } <= {p.name for p in run_dir.iterdir()}
    glimpse_tags = tags_in(run_dir / "glimpses")
    assert {
        "glimpses/paths",
        "locations/step_1/row",
        "locations/step_6/column",
        "locations/means",
    } <= glimpse_tags
    step_tags = tags_in(run_dir / "recurrent")
    assert {"batch/loss", "batch/accuracy", "gradient_norm/global"} <= step_tags
    if attention == "hard":
        assert {"batch/reward", "batch/baseline", "batch/pg_variance"} <= step_tags
    assert {"loss", "error"} <= tags_in(run_dir / "validation")
    assert no_temporaries(run_dir)


def test_generated_data_is_deterministic_per_seed(mnist_dir):
    config = glimpse_mnist.RECIPE.resolve_config(
        overrides={"dataset": "cluttered", "mnist_dir": str(mnist_dir), "mnist_validation": 4}
    )

    def prepared(config):
        return glimpse_mnist.prepare_data(config, log=lambda line: None)

    first, again = prepared(config), prepared(config)
    other = prepared(dataclasses.replace(config, seed=2))
    assert first.fingerprint == again.fingerprint != other.fingerprint
    for split in first.splits:
        np.testing.assert_array_equal(first.splits[split][0], again.splits[split][0])
    # Train, validation and test canvases are placed with different seeds.
    assert not np.array_equal(first.splits["train"][0][:4], first.splits["validation"][0][:4])


class Interrupt:
    """Raises after `steps` training steps (a kill -9 in the middle of an epoch)."""

    def __new__(cls, steps):
        import keras

        class _Interrupt(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if int(self.model.optimizer.iterations) >= steps:
                    raise InterruptedError("stopped by the test")

        return _Interrupt()


def test_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(
    mnist_dir, tmp_path, capsys
):
    args = [
        *TINY,
        "--epochs",
        "2",
        "--mnist-dir",
        mnist_dir,
        "--checkpoint-every",
        "2",
        "--views-every",
        "3",
        "--log-every",
        "0",
    ]
    assert run_main([*args, "--run-dir", tmp_path / "whole"], capsys)[0] == 0

    config = cli.parse_config(glimpse_mnist.RECIPE, args)
    with pytest.raises(InterruptedError):
        runner.train(
            glimpse_mnist.RECIPE,
            config,
            tmp_path / "cut",
            callbacks=[Interrupt(steps=8)],
            log=lambda line: None,
            verbose=0,
        )
    state = checkpoints.load(tmp_path / "cut" / "checkpoints" / "last.ckpt").state
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 2, 7)

    status, out, err = run_main(["--resume", "--run-dir", tmp_path / "cut", "--quiet"], capsys)
    assert status == 0, err[-3000:]
    assert "resuming at epoch 2, step 2/5" in out
    expected = checkpoints.load(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    actual = checkpoints.load(tmp_path / "cut" / "checkpoints" / "last.ckpt")
    for a, b in zip(
        actual.weights + actual.optimizer + actual.rng,
        expected.weights + expected.optimizer + expected.rng,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert (
        results_of(tmp_path / "cut")["test_error"] == results_of(tmp_path / "whole")["test_error"]
    )


def test_the_learning_rate_decays_after_lr_decay_after_epochs(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    flags = [
        "--mnist-dir",
        mnist_dir,
        "--run-dir",
        run_dir,
        "--epochs",
        "4",
        "--steps-per-epoch",
        "1",
        "--lr",
        "0.01",
        "--lr-decay",
        "0.5",
        "--lr-decay-after",
        "2",
    ]
    status, _, err = run_main([*TINY, *flags], capsys)
    assert status == 0, err[-3000:]
    history = checkpoints.load(run_dir / "checkpoints" / "last.ckpt").state["history"]
    assert [record["learning_rate"] for record in history] == pytest.approx(
        [0.01, 0.01, 0.005, 0.0025]
    )


# ------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda d: ["--dataset", "fashion"], ["unknown dataset 'fashion'", "mnist, translated"]),
        (lambda d: ["--cell", "elman"], ["unknown cell 'elman'", "vanilla, irnn"]),
        (lambda d: ["--attention", "glance"], ["unknown attention 'glance'", "hard, soft"]),
        (lambda d: ["--patch", "40"], ["--patch 40 --scales 1 --scale 2:", "28"]),
        (
            lambda d: ["--dataset", "translated", "--scales", "5"],
            ["--patch 12 --scales 5 --scale 2:", "192", "60"],
        ),
        (
            lambda d: ["--dataset", "translated", "--size", "20"],
            ["--dataset translated --size 20:", "28"],
        ),
        (lambda d: ["--mnist-dir", d], ["lacks train-images-idx3-ubyte.gz"]),
        (lambda d: ["--glimpses", "0"], ["`glimpses` must be at least 1"]),
        (lambda d: ["--lr-decay", "1.5"], ["`lr_decay` must lie in (0, 1]", "1.5"]),
        (
            lambda d: ["--cell-args", "norm_epsilon = 1.0"],
            ["`cell_args` 'norm_epsilon = 1.0' does not fit cell 'irnn'", "IRNNCell has no"],
        ),
        (lambda d: ["--cell-args", "units = 3"], ["`cell_args` may not set 'units'"]),
        (
            lambda d: ["--attention", "soft", "--samples", "3"],
            ["--samples 3 repeats each image with the same glimpses", "--attention hard"],
        ),
    ],
    ids=[
        "dataset",
        "cell",
        "attention",
        "patch",
        "scales",
        "size",
        "mnist-files",
        "glimpses",
        "lr-decay",
        "cell-args-name",
        "cell-args-recipe-key",
        "samples-of-soft-attention",
    ],
)
def test_bad_inputs_are_one_line_errors(make_args, fragments, tmp_path, capsys):
    status, _, err = run_main([*make_args(tmp_path), "--run-dir", tmp_path / "run"], capsys)
    assert_one_line_error(status, err, *fragments)
    assert not (tmp_path / "run").exists()


def test_the_command_line_exits_2_with_one_line():
    command = [sys.executable, "-m", "rnnzoo.recipes.glimpse_mnist", "--dataset", "fashion"]
    result = subprocess.run(
        command, env=subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert_one_line_error(result.returncode, result.stderr, "unknown dataset 'fashion'")


def test_the_figure_script_draws_a_finished_run(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    status, _, err = run_main(
        [*TINY, "--mnist-dir", mnist_dir, "--views-every", "0", "--run-dir", run_dir], capsys
    )
    assert status == 0, err[-3000:]
    out = tmp_path / "paths.png"
    command = [
        sys.executable,
        "scripts/glimpse_paths_figure.py",
        "--run-dir",
        str(run_dir),
        "--count",
        "3",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        command, env=subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mnist: 6 glimpses, hard attention" in result.stdout
    import tensorflow as tf

    picture = tf.io.decode_png(out.read_bytes()).numpy()
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[1] > 3 * 28


# ----------------------------------------------------------------------------- export
def test_cell_args_reach_the_core_of_the_run_and_of_model_keras(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    flags = ["--mnist-dir", mnist_dir, "--cell-args", "identity_scale = 0.5"]
    status, _, err = run_main([*TINY, *flags, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert 'cell_args = "identity_scale = 0.5"' in (run_dir / "config.toml").read_text()
    exported = keras.saving.load_model(run_dir / "model.keras", safe_mode=False)
    assert exported.core.identity_scale == 0.5


def test_smoke_run_exports_the_attention_model_that_loads_in_a_fresh_process(
    mnist_dir, tmp_path, capsys
):
    run_dir = tmp_path / "smoke"
    flags = ["--smoke", "--mnist-dir", mnist_dir, "--mnist-validation", "4"]
    status, out, err = run_main([*flags, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert "2 glimpses of 1 x 8x8" in out  # the smoke mode's tiny RAM
    config = config_io.load(glimpse_mnist.GlimpseConfig, run_dir / "config.toml")
    model = glimpse_mnist.build_model(config, inference=True)
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    checkpoints.restore(best, model, carry=False, rng=False)
    images = glimpse_mnist.prepare_data(config, log=lambda line: None).splits["test"][0][:6]
    outputs, loaded = keras_file_outputs(run_dir / "model.keras", images, tmp_path)
    assert loaded == "RecurrentAttentionModel not compiled"
    # Hard attention samples its glimpses: both processes draw from the same random state.
    np.testing.assert_allclose(outputs, same_noise(model)(images), rtol=0, atol=1e-5)


def test_mixed_bfloat16_run_keeps_the_policy_outputs_float32_and_exports_it(
    mnist_dir, tmp_path, capsys
):
    """--dtype-policy mixed_bfloat16: the glimpse and core networks compute in bfloat16 on
    float32 weights, the class logits, location means and baselines stay float32 (REINFORCE's
    (l_t - mu_t) / sigma^2 needs more than bfloat16's 8 bits), the glimpse views draw, and
    model.keras gives the same outputs in a fresh process. mixed_float16 resumes exactly."""
    run_dir = tmp_path / "mixed"
    flags = ["--mnist-dir", mnist_dir, "--views-every", "2", "--dtype-policy", "mixed_bfloat16"]
    status, _, err = run_main([*TINY, *flags, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    assert {"glimpses/paths", "locations/means"} <= tags_in(run_dir / "glimpses")
    config = config_io.load(glimpse_mnist.GlimpseConfig, run_dir / "config.toml")
    assert config.dtype_policy == "mixed_bfloat16"
    best = checkpoints.load(run_dir / "checkpoints" / "best.ckpt")
    assert {np.asarray(w).dtype for w in best.weights} == {np.dtype("float32")}
    model = glimpse_mnist.build_model(config, inference=True)
    assert keras.config.dtype_policy().name == "float32"
    checkpoints.restore(best, model, carry=False, rng=False)
    for layer in (model.retina_layer, model.core):
        assert (layer.compute_dtype, layer.variable_dtype) == ("bfloat16", "float32")
    for layer in (model.locator, model.baseline_layer, model.classifier):
        assert layer.compute_dtype == "float32"
    images = glimpse_mnist.prepare_data(config, log=lambda line: None).splits["test"][0][:6]
    mixed = model.episodes(model.prepare(images), sample=False)
    assert {keras.backend.standardize_dtype(mixed[n].dtype) for n in mixed} == {"float32"}
    # The same weights in float32 give other logits, by bfloat16's rounding.
    exact = glimpse_mnist.build_model(
        dataclasses.replace(config, dtype_policy="float32"), None, True
    )
    exact.set_weights(model.get_weights())
    plain = exact.episodes(exact.prepare(images), sample=False)
    difference = np.abs(np.asarray(mixed["logits"]) - np.asarray(plain["logits"])).max()
    assert 1e-5 < difference < 0.1, difference
    outputs, _ = keras_file_outputs(run_dir / "model.keras", images, tmp_path)
    np.testing.assert_array_equal(outputs, same_noise(model)(images))

    # mixed_float16 scales the loss (Keras's LossScaleOptimizer, inside the RAM's own
    # train_step): its scale is in the checkpoints, so a stopped run resumes to the same weights.
    argv = [*TINY, "--mnist-dir", mnist_dir]
    optimizer = assert_mixed_float16_resumes_exactly(run_main, capsys, argv, tmp_path, steps=10)
    assert len(optimizer) > len(best.optimizer)  # the loss scale's variables

    status, _, err = run_main([*TINY, "--mnist-dir", mnist_dir, "--dtype-policy", "bf16"], capsys)
    assert_one_line_error(status, err, "unknown dtype_policy 'bf16'", "mixed_bfloat16")


def test_export_writes_a_savedmodel_of_the_attention_model(mnist_dir, tmp_path, capsys):
    """The RAM is a subclassed model: `export --format tf_saved_model` gives `model.export`
    the recipe's input signature (uint8 images); served by TensorFlow alone, its first call
    draws the glimpses the checkpoint's model draws first."""
    run_dir = tmp_path / "run"
    status, _, err = run_main([*TINY, "--mnist-dir", mnist_dir, "--run-dir", run_dir], capsys)
    assert status == 0, err[-3000:]
    argv = ["export", "--run-dir", run_dir, "--format", "tf_saved_model"]
    status, out, err = run_main(argv, capsys)
    assert status == 0 and "saved_model (best checkpoint" in out, err
    config = config_io.load(glimpse_mnist.GlimpseConfig, run_dir / "config.toml")
    model = glimpse_mnist.build_model(config, inference=True)
    checkpoints.restore(
        checkpoints.load(run_dir / "checkpoints" / "best.ckpt"), model, carry=False, rng=False
    )
    images = glimpse_mnist.prepare_data(config, log=lambda line: None).splits["test"][0][:5]
    np.savez(run_dir / "io.npz", inputs=images, saved_model_0=np.asarray(model(images)))
    assert served_differences(run_dir) == {"saved_model": pytest.approx(0, abs=1e-5)}
    # ONNX has no stateless random ops to draw the glimpses with: one line saying so.
    argv = ["export", "--run-dir", run_dir, "--format", "onnx"]
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, "--format onnx: the attention model samples", "tf_saved")
    assert not (run_dir / "model.onnx").exists()


# ------------------------------------------------------------------ every cell of the zoo
@pytest.mark.slow
def test_each_kind_of_cell_trains_a_few_steps(tmp_path, capsys, mnist_dir):
    """`--cell <any name>` works: one --compare over a cell of each kind (the data made once;
    see `one_cell_of_each_kind`: all 24 cells took 7 minutes of CI, 18 s each)."""
    names = one_cell_of_each_kind()
    run_dir = tmp_path / "every_cell"
    argv = [
        *TINY,
        *["--mnist-dir", mnist_dir],
        "--run-dir",
        run_dir,
        "--compare",
        ",".join(names),
    ]
    status, _, err = run_main(argv, capsys)
    assert status == 0, err[-3000:]
    assert_every_cell_trained(run_dir, names)
