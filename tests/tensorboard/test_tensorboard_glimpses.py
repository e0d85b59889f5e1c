"""Glimpse pictures: box outlines at zoom, step colours, clipping, patch strips, figures, PNG."""

import numpy as np
import pytest
import tensorflow as tf

from rnnzoo.tensorboard import glimpses, images

GREY_IMAGE = np.full((20, 24), 0.5)


def pixels_of(picture, colour):
    """The set of (y, x) where `picture` has exactly `colour`."""
    return {tuple(p) for p in np.argwhere(np.all(picture == np.asarray(colour), axis=-1))}


def outline(top, left, bottom, right):
    """The border pixels of rows [top, bottom) x columns [left, right)."""
    return {
        (y, x)
        for y in range(top, bottom)
        for x in range(left, right)
        if y in (top, bottom - 1) or x in (left, right - 1)
    }


def test_the_image_sits_in_grey_inside_a_white_margin():
    image = np.zeros((20, 24), np.uint8)
    image[3, 5] = 200
    picture = glimpses.draw_glimpse_path(
        image, np.full((1, 1, 4), -100.0), zoom=3, margin=2, numbers=False
    )
    assert picture.shape == ((20 + 4) * 3, (24 + 4) * 3, 3) and picture.dtype == np.uint8
    assert (picture[:6] == 255).all() and (picture[:, -6:] == 255).all()
    inner = picture[6:-6, 6:-6]
    assert (inner == inner[..., :1]).all()  # grey: R = G = B
    assert (inner[9:12, 15:18] == 200).all() and inner[:, :, 0].sum() == 200 * 9
    # Floats in [0, 1] become 0..255, clipped; (H, W, 1) is read like (H, W).
    floats = glimpses.draw_glimpse_path(
        np.array([[0.0, 0.5, 2.0]])[..., None],
        np.full((1, 1, 4), -9.0),
        zoom=1,
        margin=0,
        numbers=False,
    )
    np.testing.assert_array_equal(floats[0, :, 0], [0, 128, 255])


def test_a_box_on_a_blank_image_colours_exactly_its_outline_at_zoom():
    zoom, margin = 4, 4
    boxes = np.array([[[5, 6, 8, 10]]])  # rows 5..12, columns 6..15 of the image
    picture = glimpses.draw_glimpse_path(
        np.zeros((20, 24)), boxes, zoom=zoom, margin=margin, numbers=False
    )
    colour = glimpses.step_colours(1)[0]
    offset = margin * zoom
    expected = outline(offset + 5 * zoom, offset + 6 * zoom, offset + 13 * zoom, offset + 16 * zoom)
    assert pixels_of(picture, colour) == expected
    # Everything else is the black image or the white margin.
    others = np.ones(picture.shape[:2], bool)
    others[tuple(np.array(sorted(expected)).T)] = False
    assert set(np.unique(picture[others])) <= {0, 255}


def test_steps_get_different_colours_in_colormap_order_and_their_numbers():
    boxes = np.array([[[1, 1, 4, 4]], [[8, 1, 4, 4]], [[15, 1, 4, 4]], [[15, 12, 4, 4]]])
    colours = glimpses.step_colours(4)
    assert len({tuple(c) for c in colours}) == 4
    # Early -> late along viridis: the first anchor first, the last anchor last.
    assert tuple(colours[0]) == images.COLORMAPS["viridis"][0]
    assert tuple(colours[-1]) == images.COLORMAPS["viridis"][-1]
    zoom, offset = 4, 16
    bare = glimpses.draw_glimpse_path(GREY_IMAGE, boxes, zoom=zoom, numbers=False)
    for step, (top, left, height, width) in enumerate(boxes[:, 0]):
        box = outline(
            offset + top * zoom,
            offset + left * zoom,
            offset + (top + height) * zoom,
            offset + (left + width) * zoom,
        )
        assert box <= pixels_of(bare, colours[step])
    numbered = glimpses.draw_glimpse_path(GREY_IMAGE, boxes, zoom=zoom)
    for step in range(4):
        # The number is written in the step's colour just above its box (scale zoom // 2 = 2).
        top, left = offset + boxes[step, 0, 0] * zoom - 12, offset + boxes[step, 0, 1] * zoom
        expected = images.draw_text(
            np.zeros((10, 12, 3), np.uint8), str(step + 1), 0, 0, colour=(1, 1, 1), scale=2
        )[..., 0].astype(bool)
        region = numbered[top : top + 10, left : left + 12]
        ink = np.all(region == colours[step], axis=-1)
        np.testing.assert_array_equal(ink & expected, expected)


def test_lines_join_consecutive_centres_in_the_earlier_steps_colour():
    boxes = np.array([[[2, 2, 4, 4]], [[2, 16, 4, 4]], [[14, 16, 4, 4]]])
    zoom, offset = 2, 8
    picture = glimpses.draw_glimpse_path(GREY_IMAGE, boxes, zoom=zoom, numbers=False)
    colours = glimpses.step_colours(3)
    centre_row = offset + 4 * zoom  # the first two centres share image row 4
    # Between the first two boxes, a horizontal line in step 1's colour ...
    between = picture[centre_row, offset + 7 * zoom : offset + 15 * zoom]
    assert (between == colours[0]).all()
    # ... then a vertical one down to the third, in step 2's colour.
    column = offset + 18 * zoom
    assert (picture[offset + 7 * zoom : offset + 13 * zoom, column] == colours[1]).all()
    # No line back from the last centre (40, 44) to the first (16, 16): grey halfway.
    assert (picture[28, 30] == 128).all()


def test_boxes_outside_the_image_are_clipped_to_the_canvas():
    zoom, margin = 2, 4
    boxes = np.array(
        [
            [[-6, -6, 8, 8], [-14, -14, 24, 24]],  # partly outside, past the margin
            [[18, 20, 8, 8], [100, 100, 8, 8]],  # bottom right corner; wholly outside
            [[-1000, 5, 2000, 2], [3.3, 4.6, 2.5, 1.2]],  # huge, and fractional
        ]
    )
    picture = glimpses.draw_glimpse_path(GREY_IMAGE, boxes, zoom=zoom, margin=margin)
    assert picture.shape == ((20 + 8) * zoom, (24 + 8) * zoom, 3)
    colours = glimpses.step_colours(3)
    first = pixels_of(picture, colours[0])
    # The finest box of step 1 spans canvas rows/columns -4..11: only its bottom and right
    # sides show, from the canvas edge.
    assert {(11, x) for x in range(0, 12)} <= first
    assert {(y, 11) for y in range(0, 12)} <= first
    # The coarse box's sides lie outside the canvas except its bottom and right, at 27
    # (up to column 18, where step 3's box, drawn later, crosses it).
    assert {(27, x) for x in range(0, 18)} | {(y, 27) for y in range(0, 28)} <= first
    # Step 3's huge box: its sides at canvas columns 18 and 21 run the whole height.
    third = pixels_of(picture, colours[2])
    assert {(y, x) for y in range(picture.shape[0]) for x in (18, 21)} <= third


def test_bad_boxes_and_images_are_refused():
    with pytest.raises(ValueError, match=r"boxes of shape \(steps, scales, 4\)"):
        glimpses.draw_glimpse_path(GREY_IMAGE, np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"grey image of shape \(H, W\)"):
        glimpses.draw_glimpse_path(np.zeros((4, 4, 3)), np.zeros((1, 1, 4)))
    with pytest.raises(ValueError, match="patches of shape"):
        glimpses.patch_strip(np.zeros((3, 8, 8)))


@pytest.mark.parametrize("trailing", [(), (1,)])
def test_the_strip_puts_patch_t_k_in_column_t_row_k(trailing):
    steps, scales, side, zoom, gap = 3, 2, 5, 2, glimpses.PATCH_GAP
    values = (10 * np.arange(1, steps + 1)[:, None] + np.arange(scales)[None, :]).astype(np.uint8)
    patches = np.broadcast_to(values[:, :, None, None], (steps, scales, side, side))
    strip = glimpses.patch_strip(patches.reshape(patches.shape + trailing), zoom=zoom)
    cell = side * zoom
    assert strip.dtype == np.uint8
    assert strip.shape == (scales * cell + (scales - 1) * gap, steps * cell + (steps - 1) * gap, 3)
    covered = np.zeros(strip.shape[:2], bool)
    for step in range(steps):
        for scale in range(scales):
            y, x = scale * (cell + gap), step * (cell + gap)
            assert (strip[y : y + cell, x : x + cell] == values[step, scale]).all()
            covered[y : y + cell, x : x + cell] = True
    assert (strip[~covered] == 255).all()  # white gaps


def test_glimpse_figure_puts_examples_side_by_side_with_strips_and_titles():
    count, steps, scales, side = 3, 4, 2, 6
    rng = np.random.default_rng(0)
    pictures = rng.random((count, 20, 24, 1))
    boxes = rng.uniform(-4, 20, (count, steps, scales, 4))
    patches = rng.random((count, steps, scales, side, side))
    zoom = 2
    bare = glimpses.glimpse_figure(pictures, boxes, zoom=zoom)
    path_height, path_width = (20 + 8) * zoom, (24 + 8) * zoom
    assert bare.dtype == np.uint8 and bare.ndim == 3 and bare.shape[-1] == 3
    assert bare.shape == (path_height, count * path_width + (count - 1) * glimpses.EXAMPLE_GAP, 3)
    np.testing.assert_array_equal(
        bare[:, :path_width], glimpses.draw_glimpse_path(pictures[0], boxes[0], zoom=zoom)
    )
    full = glimpses.glimpse_figure(
        pictures, boxes, patches, labels=[7, 1, 2], predictions=np.array([7, 3, 2]), zoom=zoom
    )
    strip = glimpses.patch_strip(patches[1], zoom=zoom)
    title_height, title_width = 14, images.text_width("label 1 -> 3", 2)
    assert full.shape[0] == title_height + path_height + 2 * glimpses.PATCH_GAP + strip.shape[0]
    panel_width = max(path_width, strip.shape[1], title_width)
    assert full.shape[1] == count * panel_width + (count - 1) * glimpses.EXAMPLE_GAP
    # The second example: its path below its title, its strip below its path, and its
    # title red ('label 1 -> 3' is wrong) where the first one's is green.
    left = panel_width + glimpses.EXAMPLE_GAP
    np.testing.assert_array_equal(
        full[title_height : title_height + path_height, left : left + path_width],
        glimpses.draw_glimpse_path(pictures[1], boxes[1], zoom=zoom),
    )
    below = title_height + path_height + 2 * glimpses.PATCH_GAP
    np.testing.assert_array_equal(full[below:, left : left + strip.shape[1]], strip)
    assert pixels_of(full[:title_height, left : left + panel_width], glimpses.WRONG)
    assert not pixels_of(full[:title_height, :panel_width], glimpses.WRONG)
    assert pixels_of(full[:title_height, :panel_width], glimpses.CORRECT)
    assert glimpses.example_title(7, 7) == "label 7 -> 7"
    assert glimpses.example_title(prediction=4) == "-> 4"
    with pytest.raises(ValueError, match=r"one entry of labels per image \(3\), received 2"):
        glimpses.glimpse_figure(pictures, boxes, labels=[1, 2])


def test_a_figure_survives_a_png_round_trip(tmp_path):
    figure = glimpses.glimpse_figure(
        np.random.default_rng(1).integers(0, 256, (2, 12, 12), dtype=np.uint8),
        np.array([[[[2, 2, 4, 4]], [[6, 6, 4, 4]]]] * 2),
        labels=[3, 4],
        predictions=[3, 4],
        zoom=2,
    )
    images.write_png(tmp_path / "glimpses.png", figure)
    decoded = tf.io.decode_png(tf.io.read_file(str(tmp_path / "glimpses.png"))).numpy()
    np.testing.assert_array_equal(decoded, figure)
    assert images.summary_image(figure).shape == (1,) + figure.shape
