"""The glimpse sensor (rnnzoo/layers/glimpse.py) reads the pixels its docstring promises.

Hard mode against plain numpy slices of a zero-padded image whose pixels
encode their coordinates (centre, corners, edges, outside), coarser scales
against numpy block means, `boxes` against the windows read; soft mode against
hard mode on the grid, against `tf.image.crop_and_resize` off the grid, for
continuity, for the direction it moves, and its gradient against finite
differences in float64. Bad arguments and patches too large raise clear
ValueErrors; the layer runs in graph mode with unknown shapes, under mixed
precision, and in a model saved and loaded from a `.keras` file.
"""

import doctest

import cell_cases
import keras
import numpy as np
import pytest
import tensorflow as tf

from rnnzoo.layers import GlimpseSensor, glimpse

pytestmark = cell_cases.requires_tensorflow

HEIGHT, WIDTH, CHANNELS = 20, 24, 3


def coordinate_images(batch=1, height=HEIGHT, width=WIDTH, channels=CHANNELS):
    """Pixel (b, i, j, c) holds 10000 c + 100 i + j + 1 + 0.5 b: its value names its place."""
    rows = 100.0 * np.arange(height)[:, None, None]
    columns = np.arange(width)[None, :, None] + 1.0  # + 1: no image pixel reads as 0
    planes = 10000.0 * np.arange(channels)[None, None, :]
    image = rows + columns + planes
    return np.stack([image + 0.5 * b for b in range(batch)]).astype("float32")


def numpy_window(image, top, left, width):
    """image[top:top + width, left:left + width], zeros outside: a zero-padded numpy slice."""
    margin = 100  # wider than any test reaches outside the image
    padded = np.pad(image, [(margin, margin), (margin, margin), (0, 0)])
    rows = slice(margin + top, margin + top + width)
    columns = slice(margin + left, margin + left + width)
    return padded[rows, columns]


def numpy_block_means(window, block):
    """Average a (w, w, C) window over its block x block squares."""
    size = window.shape[0] // block
    return window.reshape(size, block, size, block, -1).mean(axis=(1, 3))


def numpy_retina(image, location, patch_size, num_scales, scale):
    """The hard-mode retina, written from the docstring's equations with numpy only."""
    height, width = image.shape[:2]
    centre = ((location[0] + 1) / 2 * height, (location[1] + 1) / 2 * width)
    patches = []
    for k in range(num_scales):
        size = patch_size * scale**k
        top, left = (int(np.floor(c - size / 2 + 0.5)) for c in centre)
        patches.append(numpy_block_means(numpy_window(image, top, left, size), scale**k))
    return np.stack(patches)


# (l_y, l_x): the centre, the four corners, near every edge, and off the image.
LOCATIONS = [
    (0.0, 0.0),
    (-1.0, -1.0),
    (-1.0, 1.0),
    (1.0, -1.0),
    (1.0, 1.0),
    (-0.95, 0.3),
    (0.9, -0.2),
    (0.13, -0.97),
    (-0.41, 0.93),
    (1.3, -1.6),
]


@pytest.mark.parametrize("patch_size", [1, 4, 5])
def test_hard_mode_reads_exact_pixels(patch_size):
    images = coordinate_images(batch=len(LOCATIONS))
    sensor = GlimpseSensor(patch_size=patch_size)
    retina = np.asarray(sensor(images, np.array(LOCATIONS, "float32")))
    assert retina.shape == (len(LOCATIONS), 1, patch_size, patch_size, CHANNELS)
    for b, location in enumerate(LOCATIONS):
        expected = numpy_retina(images[b], location, patch_size, 1, 2)
        np.testing.assert_array_equal(retina[b], expected, err_msg=f"location {location}")


def test_hard_mode_known_windows():
    """A few windows written out by hand, not by the formula the other tests share."""
    images = coordinate_images(batch=3)
    sensor = GlimpseSensor(patch_size=4)
    locations = np.array([[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0]], "float32")
    retina = np.asarray(sensor(images, locations))[:, 0, :, :, 0]
    # Centre of 20 x 24: (10, 12); the patch is rows 8-11, columns 10-13.
    np.testing.assert_array_equal(retina[0][0], [811, 812, 813, 814])
    np.testing.assert_array_equal(retina[0][:, 0], [811, 911, 1011, 1111])
    # Top-left corner: rows -2..1, columns -2..1, so zeros but for pixels (0..1, 0..1).
    np.testing.assert_array_equal(
        retina[1] - 0.5, [[-0.5] * 4, [-0.5] * 4, [-0.5, -0.5, 1, 2], [-0.5, -0.5, 101, 102]]
    )
    # Bottom-right corner: rows 18..21, columns 22..25.
    np.testing.assert_array_equal(
        retina[2] - 1.0, [[1823, 1824, -1, -1], [1923, 1924, -1, -1], [-1] * 4, [-1] * 4]
    )


@pytest.mark.parametrize("scale", [2, 3])
def test_coarser_scales_are_block_means_finest_first(scale):
    images = coordinate_images(batch=len(LOCATIONS), height=28, width=30)
    sensor = GlimpseSensor(patch_size=3, num_scales=3, scale=scale)
    retina = np.asarray(sensor(images, np.array(LOCATIONS, "float32")))
    assert retina.shape == (len(LOCATIONS), 3, 3, 3, CHANNELS)
    for b, location in enumerate(LOCATIONS):
        expected = numpy_retina(images[b], location, 3, 3, scale)
        np.testing.assert_allclose(retina[b], expected, rtol=1e-6, err_msg=f"{location}")
    # Finest first: at the centre every scale's middle pixel is near the same
    # place, but only scale 0 holds single pixels (integers + 1 apart in a row).
    assert np.all(np.diff(retina[0, 0, 0, :, 0]) == 1)
    assert np.all(np.diff(retina[0, 1, 0, :, 0]) == scale)
    assert np.all(np.diff(retina[0, 2, 0, :, 0]) == scale**2)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_boxes_match_the_windows_read(mode):
    images = coordinate_images(batch=len(LOCATIONS))
    locations = np.array(LOCATIONS, "float32")
    sensor = GlimpseSensor(patch_size=4, num_scales=2, scale=2, mode=mode)
    boxes = np.asarray(sensor.boxes(locations, HEIGHT, WIDTH))
    assert boxes.shape == (len(LOCATIONS), 2, 4)
    np.testing.assert_array_equal(boxes[:, :, 2:], [[[4, 4], [8, 8]]] * len(LOCATIONS))
    # Centre (10, 12): scale 0 from (8, 10), scale 1 from (6, 8), in both modes.
    np.testing.assert_array_equal(boxes[0, :, :2], [[8, 10], [6, 8]])
    if mode == "soft":
        # Unsnapped: (l_y, l_x) = (-0.95, 0.3) puts the corners at (-1.5, 13.6), (-3.5, 11.6).
        np.testing.assert_allclose(boxes[5, :, :2], [[-1.5, 13.6], [-3.5, 11.6]], rtol=1e-6)
        return
    retina = np.asarray(sensor(images, locations))
    for b in range(len(LOCATIONS)):
        for k, (top, left, size, _) in enumerate(boxes[b].astype(int)):
            window = numpy_window(images[b], top, left, size)
            np.testing.assert_array_equal(retina[b, k], numpy_block_means(window, 2**k))


def grid_locations():
    """Locations whose every patch corner lies on the pixel grid (even patch sizes)."""
    # Multiples of H / 4 and W / 8 keep l exact in float32.
    centres = np.array([[10, 12], [0, 0], [20, 24], [5, 21], [15, 3], [-5, 27]])
    return (2.0 * centres / [HEIGHT, WIDTH] - 1.0).astype("float32")


def test_soft_equals_hard_on_the_grid():
    images = coordinate_images(batch=6)
    locations = grid_locations()
    kwargs = {"patch_size": 4, "num_scales": 3, "scale": 2}
    hard = GlimpseSensor(mode="hard", **kwargs)(images, locations)
    soft = GlimpseSensor(mode="soft", **kwargs)(images, locations)
    np.testing.assert_array_equal(np.asarray(soft), np.asarray(hard))


def test_soft_mode_matches_crop_and_resize(rng):
    """An independent reference: TF's bilinear crop, on the zero-padded image, then block means."""
    images = rng.uniform(size=(5, HEIGHT, WIDTH, 2)).astype("float32")
    locations = rng.uniform(-1.2, 1.2, size=(5, 2)).astype("float32")
    sensor = GlimpseSensor(patch_size=3, num_scales=2, scale=2, mode="soft")
    retina = np.asarray(sensor(images, locations))
    boxes = np.asarray(sensor.boxes(locations, HEIGHT, WIDTH))
    margin = 10
    padded = np.pad(images, [(0, 0), (margin, margin), (margin, margin), (0, 0)])
    last = np.array([HEIGHT, WIDTH]) + 2 * margin - 1.0
    for k, size in enumerate([3, 6]):
        # Sample u of the patch sits at pixel index top + u (pixel centres at i + 0.5).
        first = boxes[:, k, :2] + margin
        crop_boxes = np.concatenate([first / last, (first + size - 1) / last], axis=1)
        crops = tf.image.crop_and_resize(
            padded, crop_boxes.astype("float32"), np.arange(5), [size, size]
        )
        expected = tf.nn.avg_pool2d(crops, 2**k, 2**k, "VALID")
        np.testing.assert_allclose(retina[:, k], expected, atol=2e-5)


def test_soft_mode_is_continuous_and_hard_mode_is_not(rng):
    """Sliding across pixel borders, soft outputs move by at most the distance moved."""
    images = rng.uniform(size=(1, HEIGHT, WIDTH, 1)).astype("float64")  # values in [0, 1)
    steps = np.linspace(-1.1, 1.1, 1501)
    locations = np.stack([np.full_like(steps, 0.1), steps], axis=1)
    images = np.repeat(images, len(steps), axis=0)
    # Bilinear reads are 1-Lipschitz in the pixel position for values in [0, 1).
    moved = (steps[1] - steps[0]) / 2 * WIDTH
    jumps = {}
    for mode in ("soft", "hard"):
        sensor = GlimpseSensor(patch_size=4, num_scales=2, mode=mode, dtype="float64")
        retina = np.asarray(sensor(images, locations))
        jumps[mode] = np.abs(np.diff(retina, axis=0)).max()
    assert jumps["soft"] <= moved * (1 + 1e-9)
    assert jumps["hard"] > 10 * moved  # snapping jumps: the check above can fail


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_moving_right_moves_content_left(mode):
    """A bright dot seen from further right (or lower) sits further left (or higher)."""
    images = np.zeros((1, HEIGHT, WIDTH, 1), "float32")
    images[0, 10, 12] = 1.0
    sensor = GlimpseSensor(patch_size=6, mode=mode)
    steps = np.linspace(-0.15, 0.15, 13)

    def centroids(locations):
        patches = np.asarray(sensor(np.repeat(images, len(steps), 0), locations))[:, 0, :, :, 0]
        grid = np.arange(6)
        rows = (patches.sum(axis=2) * grid).sum(axis=1) / patches.sum(axis=(1, 2))
        columns = (patches.sum(axis=1) * grid).sum(axis=1) / patches.sum(axis=(1, 2))
        return rows, columns

    zeros = np.zeros_like(steps)
    rows, columns = centroids(np.stack([zeros, steps], 1).astype("float32"))
    assert np.all(np.diff(columns) <= 0) and columns[0] > columns[-1]
    np.testing.assert_allclose(rows, rows[0], atol=1e-6)
    rows, columns = centroids(np.stack([steps, zeros], 1).astype("float32"))
    assert np.all(np.diff(rows) <= 0) and rows[0] > rows[-1]
    np.testing.assert_allclose(columns, columns[0], atol=1e-6)


def test_soft_gradient_matches_finite_differences(rng):
    images = rng.normal(size=(3, HEIGHT, WIDTH, 2))
    locations = np.array([[0.113, -0.271], [-0.93, 0.961], [0.571, 0.052]])
    sensor = GlimpseSensor(patch_size=3, num_scales=2, scale=3, mode="soft", dtype="float64")
    # Away from the kinks (bilinear is piecewise smooth): no corner within 1e-3 of the grid.
    corners = np.asarray(sensor.boxes(locations, HEIGHT, WIDTH))[..., :2]
    assert np.all(np.abs(corners - np.round(corners)) > 1e-3)
    weights = rng.normal(size=(3, 2, 3, 3, 2))

    def loss(images, locations):
        return tf.reduce_sum(sensor(images, locations) * weights)

    images_tensor, locations_tensor = tf.constant(images), tf.constant(locations)
    with tf.GradientTape() as tape:
        tape.watch([images_tensor, locations_tensor])
        value = loss(images_tensor, locations_tensor)
    grad_images, grad_locations = tape.gradient(value, [images_tensor, locations_tensor])
    assert grad_locations.dtype == tf.float64
    step = 1e-6
    numeric = np.zeros_like(locations)
    for index in np.ndindex(*locations.shape):
        shift = np.zeros_like(locations)
        shift[index] = step
        numeric[index] = (loss(images, locations + shift) - loss(images, locations - shift)) / (
            2 * step
        )
    np.testing.assert_allclose(grad_locations, numeric, rtol=1e-6, atol=1e-8)
    assert np.all(np.abs(numeric) > 1e-2)  # every coordinate moves the loss
    # The retina is linear in the images, so <dL/dI, I> = L exactly.
    np.testing.assert_allclose(np.sum(grad_images * images), value, rtol=1e-10)


def test_hard_mode_has_no_location_gradient_but_an_image_gradient(rng):
    images = tf.constant(rng.normal(size=(2, HEIGHT, WIDTH, 1)))
    locations = tf.constant([[0.1, -0.2], [0.5, 0.7]], "float64")
    sensor = GlimpseSensor(patch_size=4, num_scales=2, dtype="float64")
    with tf.GradientTape() as tape:
        tape.watch([images, locations])
        value = tf.reduce_sum(sensor(images, locations) ** 2)
    grad_images, grad_locations = tape.gradient(value, [images, locations])
    assert grad_locations is None
    np.testing.assert_allclose(np.sum(grad_images * images), 2 * value, rtol=1e-10)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_far_away_locations_read_zeros(mode):
    images = tf.constant(coordinate_images(batch=4))
    locations = tf.constant([[50.0, 0.0], [0.0, -50.0], [1e9, -1e9], [-3.0, 3.0]])
    sensor = GlimpseSensor(patch_size=4, num_scales=2, mode=mode)
    with tf.GradientTape() as tape:
        tape.watch(locations)
        retina = sensor(images, locations)
    np.testing.assert_array_equal(retina, np.zeros((4, 2, 4, 4, CHANNELS)))
    gradient = tape.gradient(retina, locations)
    if mode == "soft":
        np.testing.assert_array_equal(gradient, np.zeros((4, 2)))


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({"patch_size": 0}, ["patch_size", "int >= 1", "patch_size=0"]),
        ({"patch_size": 2.5}, ["patch_size", "patch_size=2.5"]),
        ({"patch_size": True}, ["patch_size", "patch_size=True"]),
        ({"num_scales": 0}, ["num_scales", "num_scales=0"]),
        ({"num_scales": 3, "scale": 1}, ["scale", ">= 2", "num_scales=3", "scale=1"]),
        ({"scale": 0}, ["scale", ">= 1", "scale=0"]),
        ({"mode": "bilinear"}, ["'hard' or 'soft'", "mode='bilinear'"]),
    ],
)
def test_bad_arguments_raise(kwargs, names):
    with pytest.raises(ValueError) as error:
        GlimpseSensor(**kwargs)
    message = str(error.value)
    assert "\n" not in message
    for name in names:
        assert name in message


def test_scale_one_is_allowed_with_one_scale():
    assert GlimpseSensor(num_scales=1, scale=1).scale == 1


def test_patches_that_do_not_fit_raise():
    with pytest.raises(ValueError, match=r"patch_size=9 does not fit a 8x20 image.*<= 8"):
        GlimpseSensor(patch_size=9).check_fits(8, 20)
    sensor = GlimpseSensor(patch_size=4, num_scales=3, scale=2)  # largest: 16 pixels
    sensor.check_fits(8, 8)  # 16 <= 2 * 8: fits
    with pytest.raises(ValueError, match=r"largest patch.* = 16 pixels.*at most 2 \* 7 = 14"):
        sensor.check_fits(7, 30)
    # build() checks static shapes: calling on too small images fails before reading.
    with pytest.raises(ValueError, match="largest patch"):
        sensor(np.zeros((1, 7, 30, 1), "float32"), np.zeros((1, 2), "float32"))
    with pytest.raises(ValueError, match=r"locations of shape \(batch, 2\)"):
        GlimpseSensor()(np.zeros((1, 8, 8, 1), "float32"), np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match=r"images of shape \(batch, height, width, channels\)"):
        GlimpseSensor()(np.zeros((1, 8, 8), "float32"), np.zeros((1, 2), "float32"))


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_graph_mode_with_unknown_batch_and_image_size(mode, rng):
    sensor = GlimpseSensor(patch_size=4, num_scales=2, mode=mode)
    images = rng.uniform(size=(3, HEIGHT, WIDTH, 2)).astype("float32")
    locations = rng.uniform(-1, 1, size=(3, 2)).astype("float32")
    eager = np.asarray(sensor(images, locations))
    graph = tf.function(
        sensor,
        input_signature=[
            tf.TensorSpec([None, None, None, 2], tf.float32),
            tf.TensorSpec([None, 2], tf.float32),
        ],
    )
    np.testing.assert_array_equal(np.asarray(graph(images, locations)), eager)
    symbolic = graph.get_concrete_function().structured_outputs
    assert symbolic.shape.as_list() == [None, 2, 4, 4, 2]
    assert sensor.compute_output_shape((None, 20, 24, 2), (None, 2)) == (None, 2, 4, 4, 2)


def test_mixed_precision(rng):
    keras.config.set_dtype_policy("mixed_float16")  # restored by conftest
    images = rng.uniform(size=(2, HEIGHT, WIDTH, 1)).astype("float32")
    locations = np.array([[0.3, -0.7], [0.0, 0.5]], "float32")
    sensor = GlimpseSensor(patch_size=4, num_scales=2, mode="soft")
    retina = sensor(images, locations)
    assert retina.dtype == tf.float16
    reference = GlimpseSensor(patch_size=4, num_scales=2, mode="soft", dtype="float32")
    np.testing.assert_allclose(retina, reference(images, locations), atol=2e-3)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_in_a_model_that_saves_and_loads(mode, rng, tmp_path):
    images = keras.Input((HEIGHT, WIDTH, 2), name="images")
    locations = keras.Input((2,), name="locations")
    retina = GlimpseSensor(patch_size=4, num_scales=2, scale=3, mode=mode)(images, locations)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(retina))
    model = keras.Model([images, locations], outputs)
    assert tuple(retina.shape) == (None, 2, 4, 4, 2)
    inputs = [
        rng.uniform(size=(4, HEIGHT, WIDTH, 2)).astype("float32"),
        rng.uniform(-1, 1, size=(4, 2)).astype("float32"),
    ]
    expected = np.asarray(model(inputs))
    path = tmp_path / "glimpse.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), expected)
    (sensor,) = [layer for layer in loaded.layers if isinstance(layer, GlimpseSensor)]
    assert (sensor.patch_size, sensor.num_scales, sensor.scale, sensor.mode) == (4, 2, 3, mode)


def test_config_round_trip():
    sensor = GlimpseSensor(patch_size=5, num_scales=3, scale=3, mode="soft", name="retina")
    config = sensor.get_config()
    assert {"patch_size": 5, "num_scales": 3, "scale": 3, "mode": "soft"}.items() <= config.items()
    clone = GlimpseSensor.from_config(config)
    assert clone.get_config() == config
    images = coordinate_images(height=50, width=50)
    locations = np.array([[0.21, -0.33]], "float32")
    np.testing.assert_array_equal(clone(images, locations), sensor(images, locations))
    assert keras.saving.get_registered_object("rnnzoo>GlimpseSensor") is GlimpseSensor


def test_docstring_example_runs():
    results = doctest.testmod(glimpse)
    assert results.attempted > 0 and results.failed == 0
