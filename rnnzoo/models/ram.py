r"""The recurrent attention model (RAM): classify an image from a few glimpses.

Mnih, Heess, Graves, Kavukcuoglu 2014, "Recurrent Models of Visual
Attention" (arXiv 1406.6247). The network never sees the whole image: at each
of T steps it reads a small multi-resolution retina at a location it chose,
updates a recurrent state, and picks where to look next.

    l_0 ~ N(mu_0, sigma^2 I),  mu_0 = tanh(h_0 W_l + b_l)     (h_0 = 0: a learned start)
    for t = 1 .. T:
        rho_t = sensor(x, l_{t-1})                  k patches of g x g, each s times wider
        g_t   = ReLU(ReLU(rho_t W_g) W_a + ReLU(l_{t-1} W_p) W_b + b)   glimpse network
        h_t   = core(g_t, h_{t-1})                  any rnnzoo cell (the paper: a ReLU RNN)
        mu_t  = tanh(h_t W_l + b_l),  l_t ~ N(mu_t, sigma^2 I), clipped to [-1, 1]
        b_t   = h_t w_b + c_b                       learned baseline (t < T)
    y = softmax(h_T V + d)                          the class, read at the last step

Training ("hard" attention) minimises the hybrid loss, averaged over
episodes (an image seen `samples` times is `samples` episodes):

    L = -log p(y* | x)                                   classification (backprop)
        - sum_{t<T} log pi(l_t | h_t) * stop(R - b_t)    REINFORCE, R = 1[argmax p = y*]
        + sum_{t<T} (R - b_t)^2                          the baseline's regression

log pi is the Gaussian's log density of the unclipped sample, so its gradient
with respect to mu_t is (l_t - mu_t) / sigma^2. The location and baseline
networks read stop(h_t): REINFORCE trains the location network, backprop the
glimpse and core networks, and the baseline only its own weights. The sensor
is not differentiable in hard mode; locations enter the glimpse network as
constants.

With `attention="soft"` the same network reads its glimpses by bilinear
sampling (`GlimpseSensor(mode="soft")`), the location is the mean mu_t itself
(no sampling, no baseline), and the whole model, location network included,
is trained by backprop on the classification loss alone (spatial-transformer /
DRAW style).

At evaluation each image is classified from `eval_samples` episodes whose
class probabilities are averaged (hard attention; soft attention is
deterministic and uses one).

Under a mixed dtype policy (`dtype="mixed_bfloat16"`, or Keras's global policy
when the model is made) the sensor, glimpse and core networks compute in 16
bits on float32 weights, while the classifier, the location network and the
baseline compute in float32: REINFORCE's (l_t - mu_t) / sigma^2 is a
difference of about sigma, which bfloat16's 8-bit mantissa would round by a few
per cent. `mixed_float16` scales the loss (Keras's `LossScaleOptimizer`).

Under `tf.distribute` each replica trains on its block of the global batch: its
loss (a mean over its rows) is divided by the replica count before the
gradients, which the optimizer sums over the replicas, so the step is that of
the mean over the global batch; and each replica's location noise is its rows
of the noise one device draws for the whole batch (`rnnzoo.layers.replicas`):
a distributed run looks where a single-device run looks.

>>> import numpy as np
>>> model = RecurrentAttentionModel(num_classes=10, glimpses=2, patch_size=4, units=16,
...                                 glimpse_units=8, location_units=8, eval_samples=2, seed=0)
>>> log_probs = model(np.zeros((3, 12, 12), np.uint8))
>>> tuple(log_probs.shape)
(3, 10)
"""

import functools
import math

import keras
import tensorflow as tf
from keras import ops

from rnnzoo import cells
from rnnzoo.layers.glimpse import GlimpseSensor
from rnnzoo.layers.replicas import global_batch_draw, replica_position
from rnnzoo.models.seeding import check_int, seed_stream, seeded_cell_options

ATTENTION = ("hard", "soft")


@keras.saving.register_keras_serializable(package="rnnzoo")
class RecurrentAttentionModel(keras.Model):
    """RAM (hard attention, REINFORCE) or its differentiable soft-attention twin.

    Inputs are images (batch, H, W) or (batch, H, W, C), uint8 in [0, 255] or
    floats in [0, 1]; targets are integer class labels. Calling the model
    returns the log of the class probabilities averaged over `eval_samples`
    episodes; `train_step` / `test_step` make it work with `fit` and
    `evaluate` after `compile(optimizer)` (no loss argument: the model has its
    own hybrid loss).

    Args:
        num_classes: Number of classes.
        glimpses: T, the glimpses per episode.
        patch_size: g, the retina's finest patch (g x g pixels).
        num_scales: k, patches per glimpse, each `scale` times wider than the last.
        scale: s, the width ratio between consecutive patches.
        cell: The core network: any name `rnnzoo.cells.get` knows ("irnn" is
            the paper's ReLU RNN, with identity initialisation).
        units: Units of the core network.
        cell_args: None, or a dict of more arguments of the core cell (e.g.
            `{"identity_scale": 0.5}` for "irnn"); an initializer given here
            replaces the seeded default.
        glimpse_units: h_g, the retina's hidden layer.
        location_units: h_l, the location's hidden layer; g has
            `glimpse_units + location_units` units (the paper: 128 + 128 = 256).
        location_std: sigma, the fixed standard deviation of the location policy.
        attention: "hard" (sampled locations, REINFORCE) or "soft" (bilinear
            glimpses, backprop only).
        samples: Episodes per image in training (M); 1 with soft attention.
        eval_samples: Episodes per image averaged at evaluation.
        seed: Seed of the initializers and of the location noise.
    """

    def __init__(
        self,
        num_classes=10,
        glimpses=6,
        patch_size=8,
        num_scales=1,
        scale=2,
        cell="irnn",
        units=256,
        cell_args=None,
        glimpse_units=128,
        location_units=128,
        location_std=0.15,
        attention="hard",
        samples=1,
        eval_samples=10,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.glimpses = check_int("glimpses", glimpses)
        self.units = check_int("units", units)
        self.glimpse_units = check_int("glimpse_units", glimpse_units)
        self.location_units = check_int("location_units", location_units)
        self.samples = check_int("samples", samples)
        self.eval_samples = check_int("eval_samples", eval_samples)
        if attention not in ATTENTION:
            raise ValueError(
                f"Expected `attention` to be one of {', '.join(ATTENTION)}; received {attention!r}."
            )
        self.attention = attention
        if attention == "soft" and self.samples > 1:
            raise ValueError(
                f"Expected `samples=1` with `attention='soft'` (its glimpses are not sampled, so "
                f"{self.samples} episodes of an image would be identical); received "
                f"samples={self.samples}."
            )
        if not (isinstance(location_std, (int, float)) and location_std > 0):
            raise ValueError(
                f"Expected `location_std` to be a number > 0; received {location_std!r}."
            )
        self.location_std = float(location_std)
        self.cell_name = cell
        self.cell_args = dict(cell_args or {})
        self.seed = seed
        seeds = seed_stream(seed)

        # Every layer takes the model's dtype policy (the global one unless `dtype` is given,
        # the saved one when model.keras loads); the outputs keep the weights' float32.
        policy = {"dtype": self.dtype_policy}
        output = {"dtype": self.dtype_policy.variable_dtype}

        def dense(units, name, activation=None, **options):
            return keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
                name=name,
                **{**policy, **options},
            )

        self.sensor = GlimpseSensor(
            patch_size, num_scales, scale, mode=attention, name="sensor", **policy
        )
        self.retina_layer = dense(glimpse_units, "retina", "relu")
        self.location_layer = dense(location_units, "location", "relu")
        width = glimpse_units + location_units
        self.what_layer = dense(width, "what")
        self.where_layer = dense(width, "where", use_bias=False)
        cell_class = cells.get(cell)
        seeded = {"seed": next(seeds), **seeded_cell_options(cell_class, seeds)}
        self.core = cell_class(self.units, name="core", **{**seeded, **policy, **self.cell_args})
        self.locator = dense(2, "locator", "tanh", **output)
        # Soft attention has no policy to baseline.
        self.baseline_layer = dense(1, "baseline", **output) if attention == "hard" else None
        self.classifier = dense(self.num_classes, "classifier", **output)
        self.noise = keras.random.SeedGenerator(next(seeds), name="location_noise")
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "loss",
                "accuracy",
                "reward",
                "baseline",
                "reinforce_loss",
                "baseline_loss",
                "pg_variance",
                "pg_variance_no_baseline",
            )
        }

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        channels = input_shape[3] if len(input_shape) == 4 else 1
        if height is not None and width is not None:
            self.sensor.check_fits(height, width)
        retina = self.sensor.num_scales * self.sensor.patch_size**2 * channels
        shapes = [
            (self.sensor, ((None, height, width, channels), (None, 2))),
            (self.retina_layer, ((None, retina),)),
            (self.location_layer, ((None, 2),)),
            (self.what_layer, ((None, self.glimpse_units),)),
            (self.where_layer, ((None, self.location_units),)),
            (self.core, ((None, self.glimpse_units + self.location_units),)),
            (self.locator, ((None, self.core.output_size),)),
            (self.baseline_layer, ((None, self.core.output_size),)),
            (self.classifier, ((None, self.core.output_size),)),
        ]
        # Layers already built by a direct `episodes` call keep their weights.
        for layer, arguments in shapes:
            if layer is not None and not layer.built:
                layer.build(*arguments)
        self.built = True

    # ---------------------------------------------------------------- episodes
    def prepare(self, images):
        """Images as floats in [0, 1] with a channel axis: (batch, H, W, C)."""
        if len(images.shape) == 3:
            images = ops.expand_dims(images, -1)
        if images.dtype == "uint8":
            return ops.cast(images, self.compute_dtype) / 255.0
        return ops.cast(images, self.compute_dtype)

    def locate(self, state):
        """mu_t from h_t: the location network (on stop(h_t) for hard attention)."""
        if self.attention == "hard":
            state = ops.stop_gradient(state)
        return self.locator(state)

    def glimpse(self, images, location):
        """g_t, the glimpse network's code of the retina at `location`, and the retina."""
        retina = self.sensor(images, location)
        flat = ops.reshape(retina, (ops.shape(retina)[0], -1))
        code = self.what_layer(self.retina_layer(flat)) + self.where_layer(
            self.location_layer(location)
        )
        return ops.relu(code), retina

    def episodes(self, images, training=False, keep_retina=False, sample=True):
        """Run one episode per image row of `images` (already `prepare`d).

        With `sample=False`, hard attention looks at the policy's means
        instead of sampling (no noise is drawn: the random state is left
        as it was); soft attention always does.

        Returns a dict of tensors: "logits" (batch, classes); "means",
        "locations" and "samples" (batch, T, 2): mu_t, the (clipped) locations
        looked at and the unclipped samples (equal to the means for soft
        attention); "baselines" (batch, T); and with `keep_retina`, "retina"
        (batch, T, k, g, g, C).
        """
        batch = ops.shape(images)[0]
        state = self.core.get_initial_state(batch)
        means, locations, samples, baselines, retinas = [], [], [], [], []
        for _ in range(self.glimpses):
            hidden = state[0]
            mean = self.locate(hidden)
            if self.attention == "hard" and sample:
                noise = global_batch_draw(
                    functools.partial(keras.random.normal, dtype=mean.dtype, seed=self.noise),
                    tuple(ops.shape(mean)),
                )
                draw = ops.stop_gradient(mean + self.location_std * noise)
                location = ops.clip(draw, -1.0, 1.0)
            else:
                draw = location = mean
            if self.attention == "hard":
                baselines.append(ops.squeeze(self.baseline_layer(ops.stop_gradient(hidden)), -1))
            else:
                baselines.append(ops.zeros((batch,), mean.dtype))
            code, retina = self.glimpse(images, location)
            output, state = self.core(code, state, training=training)
            state = list(state) if isinstance(state, (list, tuple)) else [state]
            means.append(mean)
            locations.append(location)
            samples.append(draw)
            if keep_retina:
                retinas.append(retina)
        result = {
            "logits": self.classifier(output),
            "means": ops.stack(means, 1),
            "locations": ops.stack(locations, 1),
            "samples": ops.stack(samples, 1),
            "baselines": ops.stack(baselines, 1),
        }
        if keep_retina:
            result["retina"] = ops.stack(retinas, 1)
        return result

    def averaged_log_probs(self, images, episodes=None):
        """log of the class probabilities averaged over `episodes` (default `eval_samples`)."""
        count = 1 if self.attention == "soft" else (episodes or self.eval_samples)
        batch = ops.shape(images)[0]
        repeated = ops.repeat(images, count, axis=0) if count > 1 else images
        log_probs = ops.log_softmax(self.episodes(repeated)["logits"], axis=-1)
        log_probs = ops.reshape(log_probs, (batch, count, self.num_classes))
        return ops.logsumexp(log_probs, axis=1) - math.log(count)

    def call(self, images, training=False):
        return self.averaged_log_probs(self.prepare(images))

    # ----------------------------------------------------------------- losses
    def hybrid_loss(self, result, labels):
        """The loss to minimise and the figures to report, from one batch of episodes."""
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        logits = ops.cast(result["logits"], "float32")
        cross_entropy = ops.mean(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
        correct = ops.cast(ops.equal(ops.argmax(logits, -1), labels), "float32")
        figures = {"accuracy": ops.mean(correct), "reward": ops.mean(correct)}
        if self.attention == "soft":
            return cross_entropy, figures
        baselines = ops.cast(result["baselines"], "float32")
        reward = correct[:, None]  # every decision of the episode gets the final reward
        advantage = ops.stop_gradient(reward - baselines)
        variance = self.location_std**2
        means = ops.cast(result["means"], "float32")
        samples = ops.cast(result["samples"], "float32")
        log_pi = -ops.sum(ops.square(samples - means), -1) / (2.0 * variance)
        reinforce = -ops.mean(ops.sum(log_pi * advantage, 1))
        baseline_loss = ops.mean(ops.sum(ops.square(reward - baselines), 1))
        # The per-episode policy gradient at the location network's output,
        # (R - b_t)(l_t - mu_t)/sigma^2: its variance over the batch shows what the baseline buys.
        score = ops.stop_gradient(samples - means) / variance
        figures.update(
            baseline=ops.mean(baselines),
            reinforce_loss=reinforce,
            baseline_loss=baseline_loss,
            pg_variance=ops.mean(ops.var(advantage[..., None] * score, axis=0)),
            pg_variance_no_baseline=ops.mean(ops.var(reward[..., None] * score, axis=0)),
        )
        return cross_entropy + reinforce + baseline_loss, figures

    # ------------------------------------------------------------ fit / evaluate
    @property
    def metrics(self):
        return list(self._trackers.values())

    def _report(self, loss, figures):
        self._trackers["loss"].update_state(loss)
        for name, value in figures.items():
            self._trackers[name].update_state(value)
        names = ["loss", *figures]
        return {name: self._trackers[name].result() for name in names}

    def train_step(self, data):
        images, labels = data[0], data[1]
        images = self.prepare(images)
        if self.samples > 1:
            images = ops.repeat(images, self.samples, axis=0)
            labels = ops.repeat(labels, self.samples, axis=0)
        with tf.GradientTape() as tape:
            result = self.episodes(images, training=True)
            loss, figures = self.hybrid_loss(result, labels)
            # The mean over this replica's rows, a 1/replicas share of the global batch's
            # mean once the optimizer sums the replicas' gradients (as Keras scales a
            # compiled loss).
            share = loss / replica_position()[1]
            # mixed_float16: Keras's compile wrapped the optimizer in a LossScaleOptimizer.
            share = self.optimizer.scale_loss(share)
        variables = self.trainable_variables
        gradients = tape.gradient(share, variables)
        self.optimizer.apply(gradients, variables)
        return self._report(loss, figures)

    def test_step(self, data):
        images, labels = data[0], data[1]
        log_probs = ops.cast(self.averaged_log_probs(self.prepare(images)), "float32")
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(labels, log_probs, from_logits=True)
        )
        correct = ops.cast(ops.equal(ops.argmax(log_probs, -1), labels), "float32")
        self._trackers["loss"].update_state(loss)
        self._trackers["accuracy"].update_state(ops.mean(correct))
        return {name: self._trackers[name].result() for name in ("loss", "accuracy")}

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            glimpses=self.glimpses,
            patch_size=self.sensor.patch_size,
            num_scales=self.sensor.num_scales,
            scale=self.sensor.scale,
            cell=self.cell_name,
            units=self.units,
            cell_args=self.cell_args,
            glimpse_units=self.glimpse_units,
            location_units=self.location_units,
            location_std=self.location_std,
            attention=self.attention,
            samples=self.samples,
            eval_samples=self.eval_samples,
            seed=self.seed,
        )
        return config
