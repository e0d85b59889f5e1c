"""Pictures from arrays, in plain numpy: colour maps, heat maps, line plots, digits.

TensorBoard shows images as they are sent, so every view that draws one
renders it here into an RGB `uint8` array of shape (height, width, 3), and
`summary_image` turns it into the (1, height, width, 3) tensor
`tf.summary.image` takes. Nothing here depends on matplotlib.

A colour map is a list of anchor colours; a value v in [vmin, vmax] is placed
at s = (v - vmin) / (vmax - vmin) along it and its colour interpolated
linearly between the two nearest anchors. NaN and infinite values are drawn
grey.
"""

import numpy as np

# Anchor colours, low to high. "viridis" is sampled from the perceptually
# uniform map of the same name (dark blue -> green -> yellow); "diverging"
# runs blue -> white -> red, for values around 0 such as activations in [-1, 1].
COLORMAPS = {
    "viridis": [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (181, 222, 43),
        (253, 231, 37),
    ],
    "diverging": [
        (5, 48, 97),
        (33, 102, 172),
        (146, 197, 222),
        (247, 247, 247),
        (244, 165, 130),
        (178, 24, 43),
        (103, 0, 31),
    ],
}
MISSING = (128, 128, 128)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)

# A 3x5 pixel font: digits, capitals (lower case is drawn as capitals, except
# the "e" of 1.5e+03) and common punctuation; enough for axis limits, titles
# and the text of the interpretable-cell pictures. Unknown characters are blank.
# Each entry is the character and its five rows; entries start 22 columns apart.
_FONT = r"""
0 111 101 101 101 111 1 010 110 010 010 111 2 111 001 111 100 111 3 111 001 111 001 111
4 101 101 111 001 001 5 111 100 111 001 111 6 111 100 111 101 111 7 111 001 001 010 010
8 111 101 111 101 111 9 111 101 111 001 111 A 010 101 111 101 101 B 110 101 110 101 110
C 011 100 100 100 011 D 110 101 101 101 110 E 111 100 110 100 111 F 111 100 110 100 100
G 011 100 101 101 011 H 101 101 111 101 101 I 111 010 010 010 111 J 001 001 001 101 010
K 101 101 110 101 101 L 100 100 100 100 111 M 101 111 111 101 101 N 110 101 101 101 101
O 010 101 101 101 010 P 110 101 110 100 100 Q 010 101 101 110 011 R 110 101 110 101 101
S 011 100 010 001 110 T 111 010 010 010 010 U 101 101 101 101 111 V 101 101 101 101 010
W 101 101 111 111 101 X 101 101 010 101 101 Y 101 101 010 010 010 Z 111 001 010 100 111
e 000 111 111 100 111 - 000 000 111 000 000 . 000 000 000 000 010 , 000 000 000 010 100
+ 000 010 111 010 000 : 000 010 000 010 000 ; 000 010 000 010 100 ! 010 010 010 000 010
? 110 001 010 000 010 ' 010 010 000 000 000 " 101 101 000 000 000 ( 001 010 010 010 001
) 100 010 010 010 100 [ 011 010 010 010 011 ] 110 010 010 010 110 { 011 010 110 010 011
} 110 010 011 010 110 / 001 001 010 100 100 \ 100 100 010 001 001 = 000 111 000 111 000
_ 000 000 000 000 111 * 000 101 010 101 000 # 101 111 101 111 101 < 001 010 100 010 001
> 100 010 001 010 100 & 010 101 010 101 011 | 010 010 010 010 010 % 101 001 010 100 101
"""
_GLYPHS = {
    line[start]: line[start + 2 : start + 21].split()
    for line in _FONT.strip("\n").splitlines()
    for start in range(0, len(line), 22)
}
_GLYPHS[" "] = ["000"] * 5


def colorize(values, vmin=None, vmax=None, colormap="viridis"):
    """Map an array of values to RGB colours: shape (...,) -> (..., 3) uint8.

    Args:
        values: Array of numbers.
        vmin, vmax: The values drawn with the first and the last anchor
            colour; default the finite minimum and maximum of `values`.
        colormap: A name in `COLORMAPS`.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"Unknown colormap {colormap!r}; expected one of: {', '.join(COLORMAPS)}.")
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    vmin, vmax = value_range(values, vmin, vmax)
    position = np.clip((np.where(finite, values, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    anchors = np.asarray(COLORMAPS[colormap], dtype=np.float64)
    scaled = position * (len(anchors) - 1)
    low = np.minimum(np.floor(scaled).astype(int), len(anchors) - 2)
    weight = (scaled - low)[..., None]
    rgb = anchors[low] * (1.0 - weight) + anchors[low + 1] * weight
    rgb[~finite] = MISSING
    return np.round(rgb).astype(np.uint8)


def luminance(colour):
    """Perceived brightness of an RGB colour, 0 (black) to 255 (white)."""
    red, green, blue = (float(c) for c in colour)
    return 0.299 * red + 0.587 * green + 0.114 * blue


def value_range(values, vmin=None, vmax=None):
    """(vmin, vmax) with the finite extremes of `values` filling in None; never empty."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if vmin is None:
        vmin = float(finite.min()) if finite.size else 0.0
    if vmax is None:
        vmax = float(finite.max()) if finite.size else 1.0
    if not vmax > vmin:
        vmax = vmin + 1.0
    return float(vmin), float(vmax)


def upscale(image, factor_y, factor_x):
    """Repeat each pixel `factor_y` times down and `factor_x` times across."""
    return np.repeat(np.repeat(image, factor_y, axis=0), factor_x, axis=1)


def canvas(height, width, colour=WHITE):
    """A blank RGB image."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[...] = colour
    return image


def text_width(text, scale=1):
    """Width in pixels of `text` written by `draw_text`."""
    return max(0, 4 * len(text) - 1) * scale


def draw_text(image, text, top, left, colour=BLACK, scale=1):
    """Write `text` into `image` in place, 5*scale px high, 4*scale px per character."""
    for index, char in enumerate(text):
        glyph = _GLYPHS.get(char) or _GLYPHS.get(char.upper()) or _GLYPHS[" "]
        bitmap = upscale(np.array([[c == "1" for c in row] for row in glyph]), scale, scale)
        y0, x0 = top, left + index * 4 * scale
        region = image[y0 : y0 + bitmap.shape[0], x0 : x0 + bitmap.shape[1]]
        region[bitmap[: region.shape[0], : region.shape[1]]] = colour
    return image


def format_number(value):
    """A short label for an axis limit: '0', '-12.5', '100', '1.5e+03'."""
    if not np.isfinite(value):
        return ""
    if value == int(value) and abs(value) < 1e5:
        return str(int(value))
    text = f"{value:.3g}"
    return text.replace("e+0", "e+").replace("e-0", "e-")


def heatmap(
    matrix,
    vmin=None,
    vmax=None,
    colormap="viridis",
    min_height=128,
    min_width=320,
    max_pixel=8,
    colorbar=True,
    text_scale=2,
):
    """A matrix drawn as coloured cells, rows down and columns across.

    Each cell becomes a block of pixels, so that small matrices are still
    readable (at least `min_height` x `min_width` pixels where `max_pixel`
    allows). With `colorbar`, a bar and its limits are drawn on the right.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"heatmap expects a non-empty 2-D matrix, received shape {matrix.shape}.")
    vmin, vmax = value_range(matrix, vmin, vmax)
    factor_y = int(np.clip(np.ceil(min_height / matrix.shape[0]), 1, max_pixel))
    factor_x = int(np.clip(np.ceil(min_width / matrix.shape[1]), 1, max_pixel))
    image = upscale(colorize(matrix, vmin, vmax, colormap), factor_y, factor_x)
    if colorbar:
        image = beside(
            image, color_bar(image.shape[0], vmin, vmax, colormap, text_scale=text_scale), gap=4
        )
    return image


def color_bar(height, vmin, vmax, colormap="viridis", width=12, text_scale=2):
    """A vertical colour bar `height` px tall, vmax at the top, its limits written beside it."""
    height = max(height, 16 * text_scale)
    ramp = np.linspace(vmax, vmin, height)[:, None].repeat(width, axis=1)
    bar = colorize(ramp, vmin, vmax, colormap)
    labels = [format_number(vmax), format_number(vmin)]
    label_width = max(text_width(label, text_scale) for label in labels)
    image = canvas(height, width + 3 + label_width)
    image[:, :width] = bar
    draw_text(image, labels[0], 0, width + 3, scale=text_scale)
    draw_text(image, labels[1], height - 5 * text_scale, width + 3, scale=text_scale)
    return image


def line_plot(
    series, colours=None, height=200, width=400, y_range=None, x_labels=None, text_scale=2
):
    """Lines through the points of each series (index on x, value on y), in a framed box.

    Non-finite points break the line. The y limits (default: the finite range
    of all series) and the x limits (default: first and last index) are
    written on the axes.
    """
    series = [np.asarray(s, dtype=np.float64) for s in series]
    if not series or any(s.ndim != 1 or s.size == 0 for s in series):
        raise ValueError("line_plot expects a list of non-empty 1-D series.")
    colours = colours or [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    vmin, vmax = value_range(np.concatenate(series), *(y_range or (None, None)))
    length = max(s.size for s in series)
    labels = [format_number(vmax), format_number(vmin)]
    glyph_height = 5 * text_scale
    margin_left = max(text_width(label, text_scale) for label in labels) + 2 * text_scale
    margin_bottom = glyph_height + 2 * text_scale
    image = canvas(height, width)
    plot_height, plot_width = height - margin_bottom - 2, width - margin_left - 2
    top, left = 1, margin_left
    # Frame and axis limits.
    image[top - 1, left - 1 : left + plot_width + 1] = BLACK
    image[top + plot_height, left - 1 : left + plot_width + 1] = BLACK
    image[top - 1 : top + plot_height + 1, left - 1] = BLACK
    image[top - 1 : top + plot_height + 1, left + plot_width] = BLACK
    draw_text(image, labels[0], top, 0, scale=text_scale)
    draw_text(image, labels[1], top + plot_height - glyph_height, 0, scale=text_scale)
    first, last = x_labels or ("0", str(length - 1))
    draw_text(image, first, top + plot_height + 2 * text_scale, left, scale=text_scale)
    draw_text(
        image,
        last,
        top + plot_height + 2 * text_scale,
        left + plot_width - text_width(last, text_scale),
        scale=text_scale,
    )

    def pixel(index, value):
        x = left + (index / max(length - 1, 1)) * (plot_width - 1)
        y = top + (vmax - min(max(value, vmin), vmax)) / (vmax - vmin) * (plot_height - 1)
        return y, x

    for values, colour in zip(series, colours * len(series)):
        for index in range(values.size - 1):
            a, b = values[index], values[index + 1]
            if not (np.isfinite(a) and np.isfinite(b)):
                continue
            (y0, x0), (y1, x1) = pixel(index, a), pixel(index + 1, b)
            steps = int(max(abs(y1 - y0), abs(x1 - x0))) + 2
            ys = np.round(np.linspace(y0, y1, steps)).astype(int)
            xs = np.round(np.linspace(x0, x1, steps)).astype(int)
            image[ys, xs] = colour
            image[np.minimum(ys + 1, top + plot_height - 1), xs] = colour
        if values.size == 1 and np.isfinite(values[0]):
            y, x = pixel(0, values[0])
            image[int(round(y)), int(round(x))] = colour
    return image


def titled(image, title, text_scale=2, colour=BLACK):
    """`image` with `title` written above it."""
    strip = canvas(7 * text_scale, max(image.shape[1], text_width(title, text_scale)))
    draw_text(strip, title, 0, 0, colour=colour, scale=text_scale)
    return above(strip, image, gap=0)


def text_image(text, values, vmin=-1.0, vmax=1.0, colormap="diverging", columns=100, scale=2):
    """Text drawn character by character on backgrounds coloured by `values` (one per character).

    Lines break at newlines (drawn as a coloured blank, so the value there
    still shows) and after `columns` characters, as the figures of Karpathy,
    Johnson & Fei-Fei (2015) colour text by a cell's tanh(c).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(text),):
        raise ValueError(
            f"Expected one value per character ({len(text)}), received shape {values.shape}."
        )
    colours = colorize(values, vmin, vmax, colormap)
    rows, row, column = [], [], 0
    for index, char in enumerate(text):
        row.append(index)
        column += 1
        if char == "\n" or column == columns:
            rows.append(row)
            row, column = [], 0
    if row:
        rows.append(row)
    cell_height, cell_width = 7 * scale, 4 * scale
    image = canvas(max(1, len(rows)) * cell_height, columns * cell_width)
    for line, indices in enumerate(rows):
        for column, index in enumerate(indices):
            y, x = line * cell_height, column * cell_width
            image[y : y + cell_height, x : x + cell_width] = colours[index]
            char = text[index]
            if not char.isspace():
                # Capitals only (the font's "e" is for numbers); white on dark backgrounds.
                ink = WHITE if luminance(colours[index]) < 110 else BLACK
                draw_text(image, char.upper(), y + scale, x + scale // 2, colour=ink, scale=scale)
    return image


def beside(left, right, gap=8, colour=WHITE):
    """Two images side by side, top-aligned, on a `colour` background."""
    height = max(left.shape[0], right.shape[0])
    image = canvas(height, left.shape[1] + gap + right.shape[1], colour)
    image[: left.shape[0], : left.shape[1]] = left
    image[: right.shape[0], left.shape[1] + gap :] = right
    return image


def above(top, bottom, gap=8, colour=WHITE):
    """Two images one above the other, left-aligned, on a `colour` background."""
    width = max(top.shape[1], bottom.shape[1])
    image = canvas(top.shape[0] + gap + bottom.shape[0], width, colour)
    image[: top.shape[0], : top.shape[1]] = top
    image[top.shape[0] + gap :, : bottom.shape[1]] = bottom
    return image


def summary_image(image):
    """An RGB uint8 image as the (1, height, width, 3) batch `tf.summary.image` takes."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"Expected an RGB uint8 image of shape (height, width, 3), "
            f"received dtype {image.dtype} and shape {image.shape}."
        )
    return image[None]


def write_png(path, image):
    """Encode an RGB uint8 image as PNG with `tf.io.encode_png` and write it to `path`."""
    import tensorflow as tf

    summary_image(image)  # validates
    tf.io.write_file(str(path), tf.io.encode_png(image))
