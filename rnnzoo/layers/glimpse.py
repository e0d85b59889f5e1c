"""`GlimpseSensor`: the retina of the recurrent attention model (Mnih et al. 2014).

The sensor reads a few square patches of growing size around one location of
each image, all reduced to the same small size, finest first. This module
needs the TensorFlow backend (it indexes images with `tf.gather`).
"""

import numbers

import keras
import tensorflow as tf

_MODES = ("hard", "soft")


def _check_int(name, value, minimum, why=""):
    """Return `value` as an int if it is an integer >= minimum; raise a ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"GlimpseSensor expected `{name}` to be an int >= {minimum}{why}, "
            f"received {name}={value!r}."
        )
    return int(value)


@keras.saving.register_keras_serializable(package="rnnzoo")
class GlimpseSensor(keras.layers.Layer):
    """The glimpse sensor ("retina") of RAM: `num_scales` patches around a location.

    A location l = (l_y, l_x) in [-1, 1]^2 (row first) names a point of an
    H x W image: (-1, -1) is the top-left corner, (0, 0) the centre, (1, 1) the
    bottom-right corner. Pixel (i, j) covers [i, i + 1) x [j, j + 1), so the
    point's pixel coordinates are

        c_y = (l_y + 1) / 2 * H,        c_x = (l_x + 1) / 2 * W.

    Scale k = 0 .. K-1 reads the square of width w_k = g * s**k centred there,

        top_k = c_y - w_k / 2,          left_k = c_x - w_k / 2,

    and averages its s**k x s**k blocks down to g x g:

        retina[k, i, j] = mean_{a, b < s**k} P_k[i * s**k + a, j * s**k + b],

    where P_k[u, v] is the image read at row top_k + u, column left_k + v:

    - mode "hard": top_k and left_k are snapped to the grid,
      top_k <- floor(top_k + 0.5), so P_k is exactly w_k x w_k image pixels
      (scale 0 returns pixels, coarser scales exact block means). The output
      has no gradient with respect to the locations.
    - mode "soft": top_k and left_k stay fractional and P_k is read by
      bilinear interpolation between pixel centres (at i + 0.5), as a spatial
      transformer samples: with y = top_k + u = r + f_y (r an integer,
      0 <= f_y < 1) and likewise x = left_k + v = q + f_x,

          P_k[u, v] = (1 - f_y)(1 - f_x) I[r, q] + (1 - f_y) f_x I[r, q + 1]
                      + f_y (1 - f_x) I[r + 1, q] + f_y f_x I[r + 1, q + 1].

      The output is continuous and piecewise smooth in the locations, and
      differentiable with respect to them (and to the images).

    Pixels outside the image read as 0 (the images are padded with zeros, so
    soft mode stays continuous across the border); locations outside
    [-1, 1]^2 are allowed and read zeros where they leave the image.

    Args:
        patch_size: g, the side of every returned patch, an int >= 1.
        num_scales: K, how many patches, an int >= 1.
        scale: s, the factor between the widths of successive patches, an int
            >= 2 (any int >= 1 when num_scales is 1).
        mode: "hard" (pixels on the grid) or "soft" (bilinear, differentiable
            with respect to the locations).
        **kwargs: The base layer's arguments (`name`, `dtype`, ...).

    Call arguments:
        images: (batch, H, W, C) floats, cast to the layer's compute dtype.
        locations: (batch, 2) floats, (l_y, l_x).

    Returns:
        (batch, num_scales, patch_size, patch_size, C): the retina, finest
        scale first.

    >>> import numpy as np, rnnzoo
    >>> images = np.arange(36, dtype="float32").reshape(1, 6, 6, 1)  # 6 * row + col
    >>> sensor = rnnzoo.layers.GlimpseSensor(patch_size=2, num_scales=2, scale=2)
    >>> centre = np.zeros((1, 2), "float32")
    >>> retina = np.asarray(sensor(images, centre))
    >>> retina.shape
    (1, 2, 2, 2, 1)
    >>> retina[0, 0, :, :, 0].tolist()  # rows 2-3, columns 2-3
    [[14.0, 15.0], [20.0, 21.0]]
    >>> retina[0, 1, :, :, 0].tolist()  # 2 x 2 block means of rows 1-4, columns 1-4
    [[10.5, 12.5], [22.5, 24.5]]
    >>> np.asarray(sensor.boxes(centre, 6, 6)).tolist()  # (top, left, height, width)
    [[[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 4.0, 4.0]]]
    """

    def __init__(self, patch_size=8, num_scales=1, scale=2, mode="hard", **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _check_int("patch_size", patch_size, 1)
        self.num_scales = _check_int("num_scales", num_scales, 1)
        if self.num_scales == 1:
            self.scale = _check_int("scale", scale, 1)
        else:
            self.scale = _check_int(
                "scale", scale, 2, f" when num_scales > 1 (num_scales={self.num_scales})"
            )
        if mode not in _MODES:
            raise ValueError(
                f"GlimpseSensor expected `mode` to be 'hard' or 'soft', received mode={mode!r}."
            )
        self.mode = mode
        # s**k: the block size that scale k averages over, and w_k = g * s**k.
        self.block_sizes = tuple(self.scale**k for k in range(self.num_scales))
        self.widths = tuple(self.patch_size * block for block in self.block_sizes)

    def check_fits(self, image_height, image_width):
        """Raise a ValueError unless the patches fit an image_height x image_width image.

        The finest patch must lie within the image (g <= min(H, W)), and the
        largest may be at most twice its smaller side (g * s**(K-1) <= 2 min(H, W)).
        """
        smaller = min(int(image_height), int(image_width))
        image = f"a {image_height}x{image_width} image"
        if self.patch_size > smaller:
            raise ValueError(
                f"GlimpseSensor: patch_size={self.patch_size} does not fit {image}: expected "
                f"patch_size <= {smaller} (its smaller side); use a smaller patch_size."
            )
        if self.widths[-1] > 2 * smaller:
            raise ValueError(
                f"GlimpseSensor: the largest patch, patch_size * scale**(num_scales - 1) = "
                f"{self.patch_size} * {self.scale}**{self.num_scales - 1} = {self.widths[-1]} "
                f"pixels, does not fit {image}: expected at most 2 * {smaller} = {2 * smaller}; "
                "use fewer scales, a smaller scale or a smaller patch_size."
            )

    def build(self, images_shape, locations_shape=None):
        if len(images_shape) != 4:
            raise ValueError(
                "GlimpseSensor expected images of shape (batch, height, width, channels), "
                f"received shape {tuple(images_shape)}."
            )
        if locations_shape is not None and (
            len(locations_shape) != 2 or locations_shape[-1] not in (2, None)
        ):
            raise ValueError(
                "GlimpseSensor expected locations of shape (batch, 2) holding (row, column), "
                f"received shape {tuple(locations_shape)}."
            )
        if images_shape[1] is not None and images_shape[2] is not None:
            self.check_fits(images_shape[1], images_shape[2])
        self.built = True

    @property
    def _geometry_dtype(self):
        # Pixel coordinates need more precision than float16 keeps (its numbers
        # near 100 are 1/16 apart): float32, or float64 for float64 layers.
        return "float64" if self.compute_dtype == "float64" else "float32"

    def boxes(self, locations, image_height, image_width):
        """Each patch's (top, left, height, width) in pixels: (batch, num_scales, 4).

        Exactly the region the sensor reads for these locations (snapped to
        the grid in hard mode), before the reduction to patch_size x patch_size.
        image_height and image_width may be ints or scalar tensors.
        """
        dtype = self._geometry_dtype
        locations = tf.cast(locations, dtype)
        sizes = tf.cast(tf.stack([image_height, image_width]), dtype)
        centres = (locations + 1.0) / 2.0 * sizes  # (batch, 2): c_y, c_x
        widths = tf.constant(self.widths, dtype)[None, :, None]  # (1, K, 1)
        corners = centres[:, None, :] - widths / 2.0  # (batch, K, 2): top_k, left_k
        if self.mode == "hard":
            corners = tf.floor(corners + 0.5)
        return tf.concat([corners, tf.broadcast_to(widths, tf.shape(corners))], axis=-1)

    def call(self, images, locations):
        images = tf.cast(images, self.compute_dtype)
        shape = tf.shape(images)
        sizes = tf.cast(shape[1:3], self._geometry_dtype)
        corners = self.boxes(locations, shape[1], shape[2])[..., :2]
        # One row and column of zeros on every side: every index outside the
        # image is clamped onto them, so any location reads zeros outside.
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
        retina = [
            self._read(padded, corners[:, k], sizes, width, block)
            for k, (width, block) in enumerate(zip(self.widths, self.block_sizes))
        ]
        return tf.stack(retina, axis=1)

    def _read(self, padded, corner, sizes, width, block):
        """One scale: the width x width square at `corner` (batch, 2), averaged to g x g."""
        # Past -(width + 1) or sizes + 1 the square lies wholly outside (it reads
        # zeros either way); the clip keeps the integer indices small.
        corner = tf.minimum(tf.maximum(corner, -(width + 1.0)), sizes + 1.0)
        origin = tf.floor(corner)  # corner itself in hard mode
        # Soft mode reads one row and column more, to interpolate towards.
        taps = width + 1 if self.mode == "soft" else width
        indices = tf.cast(origin, "int32")[:, :, None] + 1 + tf.range(taps)  # (batch, 2, taps)
        last = tf.shape(padded)[1:3, None] - 1  # (2, 1): the last padded row, column
        indices = tf.minimum(tf.maximum(indices, 0), last)
        square = tf.gather(padded, indices[:, 0], axis=1, batch_dims=1)
        square = tf.gather(square, indices[:, 1], axis=2, batch_dims=1)
        if self.mode == "soft":
            fraction = tf.cast(corner - origin, self.compute_dtype)  # f_y, f_x
            f_y = fraction[:, 0, None, None, None]
            f_x = fraction[:, 1, None, None, None]
            square = (1.0 - f_y) * square[:, :-1] + f_y * square[:, 1:]
            square = (1.0 - f_x) * square[:, :, :-1] + f_x * square[:, :, 1:]
        if block == 1:
            return square
        g = self.patch_size
        channels = padded.shape[-1] if padded.shape[-1] is not None else tf.shape(padded)[-1]
        blocks = tf.reshape(square, [-1, g, block, g, block, channels])
        return tf.reduce_mean(blocks, axis=[2, 4])

    def compute_output_shape(self, images_shape, locations_shape=None):
        g = self.patch_size
        return (images_shape[0], self.num_scales, g, g, images_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "num_scales": self.num_scales,
                "scale": self.scale,
                "mode": self.mode,
            }
        )
        return config
