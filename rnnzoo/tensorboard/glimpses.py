"""Pictures of where a recurrent attention model looked: glimpse boxes, paths and patches.

A glimpse at step t takes K patches of growing size around one location (the
retina of Mnih et al. 2014). Its boxes are given in image pixels as
(top, left, height, width), scale 0 the finest: pixel (i, j) covers
[i, i + 1) x [j, j + 1), so a box covers rows [top, top + height) and columns
[left, left + width); boxes may reach outside the image.

- `draw_glimpse_path`: the image in grey, every step's boxes as outlines in
  the step's colour (early -> late along viridis), the step number by the
  finest box, and lines joining consecutive glimpse centres;
- `patch_strip`: the patches the model saw, one column per step, one row per
  scale (finest on top);
- `glimpse_figure`: several examples side by side, each its path above its
  strip, titled 'label 7 -> 7'.

All return RGB uint8 (height, width, 3) images for `images.summary_image`.

>>> import numpy as np
>>> boxes = np.array([[[10, 10, 8, 8], [6, 6, 16, 16]], [[2, 4, 8, 8], [-2, 0, 16, 16]]])
>>> draw_glimpse_path(np.zeros((28, 28)), boxes, zoom=2).shape  # 2 x 4 image pixels of margin
(72, 72, 3)
"""

import numpy as np

from rnnzoo.tensorboard.images import (
    BLACK,
    above,
    beside,
    canvas,
    colorize,
    draw_text,
    text_width,
    titled,
    upscale,
)

# Margin around the image, in image pixels, where boxes partly outside it still show.
MARGIN = 4
# Gap between patches of a strip, and between the examples of a figure, in canvas pixels.
PATCH_GAP = 2
EXAMPLE_GAP = 12
CORRECT, WRONG = (0, 128, 0), (200, 0, 0)


def step_colours(steps, colormap="viridis"):
    """One RGB colour per glimpse step, early -> late along `colormap`: (steps, 3) uint8."""
    return colorize(np.arange(steps), 0, max(steps - 1, 1), colormap)


def grey(image):
    """(H, W) or (H, W, 1), float in [0, 1] (clipped) or uint8 -> RGB uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(
            f"Expected a grey image of shape (H, W) or (H, W, 1), received shape {image.shape}."
        )
    if image.dtype != np.uint8:
        image = np.round(np.clip(np.nan_to_num(image.astype(np.float64)), 0, 1) * 255)
    return np.repeat(image.astype(np.uint8)[..., None], 3, axis=-1)


def draw_glimpse_path(image, boxes, zoom=4, margin=MARGIN, numbers=True, colormap="viridis"):
    """The image with every glimpse step's boxes, numbers and the path between them.

    Args:
        image: (H, W) or (H, W, 1), float in [0, 1] or uint8.
        boxes: (T, K, 4) pixel boxes (top, left, height, width) of step t's
            K scales, finest first.
        zoom: Canvas pixels per image pixel.
        margin: Image pixels of white margin on each side; what lies beyond
            it is clipped.
        numbers: Write each step's number (1, 2, ...) by its finest box.
        colormap: A name in `images.COLORMAPS` for the step colours.

    Returns:
        RGB uint8 ((H + 2 margin) zoom, (W + 2 margin) zoom, 3). Drawn in
        order: path lines, then each step's boxes early -> late (a later
        outline covers an earlier one), then the numbers.
    """
    picture = upscale(grey(image), zoom, zoom)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or 0 in boxes.shape[:2]:
        raise ValueError(
            f"Expected boxes of shape (steps, scales, 4) as (top, left, height, width), "
            f"received shape {boxes.shape}."
        )
    offset = margin * zoom
    result = canvas(picture.shape[0] + 2 * offset, picture.shape[1] + 2 * offset)
    result[offset : offset + picture.shape[0], offset : offset + picture.shape[1]] = picture
    # Canvas coordinates: top, left, bottom, right (exclusive), rounded to pixels.
    corners = np.round(
        offset + zoom * np.concatenate([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], -1)
    ).astype(int)
    centres = offset + zoom * (boxes[:, 0, :2] + boxes[:, 0, 2:] / 2)
    colours = step_colours(len(boxes), colormap)
    for step in range(len(boxes) - 1):
        draw_segment(result, centres[step], centres[step + 1], colours[step])
    for step, colour in enumerate(colours):
        for top, left, bottom, right in corners[step]:
            draw_outline(result, top, left, bottom, right, colour)
    if numbers:
        scale = max(1, zoom // 2)
        for step, colour in enumerate(colours):
            top, left = corners[step, 0, :2]
            draw_label(result, str(step + 1), top - 6 * scale, left, colour, scale)
    return result


def draw_outline(image, top, left, bottom, right, colour):
    """Colour the border of rows [top, bottom) x columns [left, right), clipped; in place."""
    height, width = image.shape[:2]
    if bottom <= top or right <= left:
        return image
    rows = slice(max(top, 0), min(bottom, height))
    columns = slice(max(left, 0), min(right, width))
    for row in (top, bottom - 1):
        if 0 <= row < height:
            image[row, columns] = colour
    for column in (left, right - 1):
        if 0 <= column < width:
            image[rows, column] = colour
    return image


def draw_segment(image, start, end, colour):
    """A straight line from point `start` to `end` ((y, x), canvas pixels), clipped, in place."""
    (y0, x0), (y1, x1) = start, end
    count = int(np.ceil(max(abs(y1 - y0), abs(x1 - x0)))) + 2
    ys = np.round(np.linspace(y0, y1, count)).astype(int)
    xs = np.round(np.linspace(x0, x1, count)).astype(int)
    inside = (ys >= 0) & (ys < image.shape[0]) & (xs >= 0) & (xs < image.shape[1])
    image[ys[inside], xs[inside]] = colour
    return image


def draw_label(image, text, top, left, colour, scale):
    """`draw_text` moved inside the image where (top, left) would put it partly outside."""
    top = int(np.clip(top, 0, max(image.shape[0] - 5 * scale, 0)))
    left = int(np.clip(left, 0, max(image.shape[1] - text_width(text, scale), 0)))
    return draw_text(image, text, top, left, colour=colour, scale=scale)


def patch_strip(patches, zoom=4, gap=PATCH_GAP):
    """The glimpse patches as a grid: one column per step, one row per scale (finest on top).

    Args:
        patches: (T, K, g, g) or (T, K, g, g, 1), float in [0, 1] or uint8.
        zoom: Canvas pixels per patch pixel.
        gap: White canvas pixels between patches.

    Returns:
        RGB uint8 (K g zoom + (K - 1) gap, T g zoom + (T - 1) gap, 3); patch
        (t, k) has its top left corner at (k (g zoom + gap), t (g zoom + gap)).

    >>> patch_strip(np.zeros((3, 2, 8, 8)), zoom=2).shape
    (34, 52, 3)
    """
    patches = np.asarray(patches)
    if patches.ndim == 5 and patches.shape[-1] == 1:
        patches = patches[..., 0]
    if patches.ndim != 4 or 0 in patches.shape:
        raise ValueError(
            f"Expected patches of shape (steps, scales, g, g) or (steps, scales, g, g, 1), "
            f"received shape {patches.shape}."
        )
    steps, scales, rows, columns = patches.shape
    cell_height, cell_width = rows * zoom + gap, columns * zoom + gap
    result = canvas(scales * cell_height - gap, steps * cell_width - gap)
    for step in range(steps):
        for scale in range(scales):
            y, x = scale * cell_height, step * cell_width
            result[y : y + rows * zoom, x : x + columns * zoom] = upscale(
                grey(patches[step, scale]), zoom, zoom
            )
    return result


def glimpse_figure(images, boxes, patches=None, labels=None, predictions=None, zoom=4):
    """Several examples side by side: each path, its patch strip below, and its title.

    Args:
        images: (N, H, W) or (N, H, W, 1).
        boxes: (N, T, K, 4) pixel boxes (see `draw_glimpse_path`).
        patches: Optional (N, T, K, g, g) or (N, T, K, g, g, 1).
        labels, predictions: Optional (N,) classes; the title reads
            'label 7 -> 7', green when they agree and red when not.
        zoom: Canvas pixels per image (and patch) pixel.

    Returns:
        One RGB uint8 image.
    """
    count = len(images)
    for name, value in (
        ("boxes", boxes),
        ("patches", patches),
        ("labels", labels),
        ("predictions", predictions),
    ):
        if value is not None and len(value) != count:
            raise ValueError(
                f"Expected one entry of {name} per image ({count}), received {len(value)}."
            )
    if count == 0:
        raise ValueError("glimpse_figure needs at least one image, received none.")
    figure = None
    for index in range(count):
        panel = draw_glimpse_path(images[index], boxes[index], zoom)
        if patches is not None:
            panel = above(panel, patch_strip(patches[index], zoom), gap=PATCH_GAP * 2)
        title = example_title(
            None if labels is None else labels[index],
            None if predictions is None else predictions[index],
        )
        if title:
            colour = BLACK
            if labels is not None and predictions is not None:
                colour = CORRECT if int(labels[index]) == int(predictions[index]) else WRONG
            panel = titled(panel, title, colour=colour)
        figure = panel if figure is None else beside(figure, panel, gap=EXAMPLE_GAP)
    return figure


def example_title(label=None, prediction=None):
    """'label 7 -> 7', 'label 7', '-> 7' or ''."""
    parts = []
    if label is not None:
        parts.append(f"label {int(label)}")
    if prediction is not None:
        parts.append(f"-> {int(prediction)}")
    return " ".join(parts)
