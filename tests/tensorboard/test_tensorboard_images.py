"""The numpy pictures: colour maps, heat maps, line plots, text, PNG."""

import numpy as np
import pytest
import tensorflow as tf

from rnnzoo.tensorboard import images


def test_colorize_puts_the_limits_on_the_end_anchors_and_non_finite_grey():
    for name, anchors in images.COLORMAPS.items():
        colours = images.colorize(
            np.array([0.0, 10.0, 5.0, np.nan, -np.inf, 99.0]), 0.0, 10.0, name
        )
        assert tuple(colours[0]) == anchors[0] and tuple(colours[1]) == anchors[-1]
        assert tuple(colours[3]) == tuple(colours[4]) == images.MISSING
        assert tuple(colours[5]) == anchors[-1]  # clipped
    # Halfway between two anchors is their mean.
    two = len(images.COLORMAPS["diverging"]) - 1
    middle = images.colorize(np.array([0.5 / two]), 0.0, 1.0, "diverging")[0]
    expected = (np.array(images.COLORMAPS["diverging"][0]) + images.COLORMAPS["diverging"][1]) / 2
    np.testing.assert_allclose(middle, expected, atol=0.5)
    with pytest.raises(ValueError, match="colormap"):
        images.colorize(np.zeros(2), colormap="jet")


def test_heatmap_draws_each_cell_as_a_block():
    matrix = np.arange(6, dtype=float).reshape(2, 3)
    image = images.heatmap(matrix, min_height=4, min_width=6, colorbar=False)
    assert image.shape == (4, 6, 3)
    np.testing.assert_array_equal(
        image[:2, :2], np.broadcast_to(images.colorize(0.0, 0, 5), (2, 2, 3))
    )
    np.testing.assert_array_equal(
        image[2:, 4:], np.broadcast_to(images.colorize(5.0, 0, 5), (2, 2, 3))
    )
    with_bar = images.heatmap(matrix, min_height=4, min_width=6)
    assert with_bar.shape[1] > 6 and with_bar.shape[0] >= 4
    with pytest.raises(ValueError, match="2-D"):
        images.heatmap(np.zeros(3))


def test_line_plot_draws_the_points_where_the_axes_put_them():
    blue = (31, 119, 180)
    image = images.line_plot(
        [np.array([0.0, 1.0])], colours=[blue], height=100, width=200, text_scale=1
    )
    is_blue = np.all(image == blue, axis=-1)
    ys, xs = np.nonzero(is_blue)
    # The line rises from the bottom left of the plot box to its top right.
    assert ys[xs.argmin()] > ys[xs.argmax()]
    assert is_blue.sum() > 150
    gap = images.line_plot([np.array([0.0, np.nan, 1.0])], colours=[blue], text_scale=1)
    assert not np.any(np.all(gap == blue, axis=-1))  # no segment touches a NaN


def test_text_image_colours_each_character_and_breaks_lines():
    text = "ab\ncd"
    values = np.array([-1.0, 1.0, 0.0, -1.0, 1.0])
    image = images.text_image(text, values, columns=4, scale=1)
    assert image.shape == (2 * 7, 4 * 4, 3)
    low, high = images.COLORMAPS["diverging"][0], images.COLORMAPS["diverging"][-1]
    assert tuple(image[0, 0]) == low and tuple(image[0, 4]) == high and tuple(image[7, 4]) == high
    with pytest.raises(ValueError, match="one value per character"):
        images.text_image("abc", np.zeros(2))


def test_png_round_trip(tmp_path):
    image = images.titled(images.heatmap(np.random.default_rng(0).normal(size=(5, 7))), "LSTM 0.5")
    path = tmp_path / "picture.png"
    images.write_png(path, image)
    decoded = tf.io.decode_png(tf.io.read_file(str(path))).numpy()
    np.testing.assert_array_equal(decoded, image)
    with pytest.raises(ValueError, match="RGB uint8"):
        images.summary_image(image.astype(np.float32))
