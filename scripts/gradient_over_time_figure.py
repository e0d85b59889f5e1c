"""Draw the README's picture of ∂L/∂h_t over time: a tanh RNN's gradient dies away, an LSTM's holds.

Both models learn the adding problem (Hochreiter & Schmidhuber 1997) with
T = 100 steps: the input is a sequence of (value, marker) pairs, values
uniform in [0, 1], two markers set (one among the first 10 steps, one in the
second half), and the target is the sum of the two marked values, read at
the last step. Predicting the mean (~1) gives a mean squared error of about
0.17; getting below that needs the first marked value, up to 99 steps back.

Each model trains with `RecurrentTensorBoard` logging the gradient-over-time
view every few steps (the TensorBoard runs land in --log-dir), and the
picture is made from what that view computed:

    top:    history images, rows = training steps (first at the top),
            columns = t, colour = log10 ‖∂L/∂h_t‖ on one shared scale;
    bottom: log10 ‖∂L/∂h_t‖ against t at the first (grey) and last (blue)
            logged step.

    python scripts/gradient_over_time_figure.py            # ~1-2 minutes on 2 cores
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import rnnzoo  # noqa: E402
from rnnzoo.tensorboard import RecurrentTensorBoard, images, summaries  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CAPTION = (
    "LOG10 |DL/DH_T| ON THE ADDING PROBLEM, T = 100, LOSS AT THE LAST STEP",
    "TOP: ROWS = TRAINING STEPS (FIRST AT THE TOP), COLUMNS = T",
    "BOTTOM: FIRST (GREY) AND LAST (BLUE) LOGGED STEP",
    "",
)


def adding_problem(count, steps, rng):
    """(inputs (count, steps, 2), targets (count,)) of the adding problem."""
    values = rng.uniform(0.0, 1.0, (count, steps))
    markers = np.zeros((count, steps))
    first = rng.integers(0, 10, count)
    second = rng.integers(steps // 2, steps, count)
    rows = np.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1).astype("float32"), targets.astype("float32")


def train(cell, data, probe_batch, args, log_dir):
    """Train one model; return its callback (which holds the gradient-over-time history)."""
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(
        [
            keras.Input((args.steps, 2)),
            # The same layer name in both runs: TensorBoard puts their views side by side.
            rnnzoo.layers.get(cell)(args.units, name="rnn"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(args.learning_rate, global_clipnorm=1.0), "mse")
    callback = RecurrentTensorBoard(
        log_dir,
        probe_data=probe_batch,
        scalars_every=args.every,
        histograms_every=0,
        gradient_over_time_every=args.every,
        gates_every=0,
        activations_every=4 * args.every,
        probe_examples=len(probe_batch[0]),
        history_rows=10_000,
    )
    start = time.perf_counter()
    history = model.fit(
        *data, batch_size=args.batch_size, epochs=args.epochs, callbacks=[callback], verbose=0
    )
    print(
        f"{cell}: final training MSE {history.history['loss'][-1]:.4f} "
        f"({time.perf_counter() - start:.0f} s), "
        f"{len(callback.history[model.layers[0].name])} probe rows"
    )
    return callback, model.layers[0].name


def figure(panels, vmin):
    """The picture: one column per (title, history) panel, history image above curves."""
    columns = []
    for title, history in panels:
        history = np.maximum(history, 10.0**vmin)
        log_history = summaries.log10(history)
        heat = images.heatmap(
            log_history, vmin=vmin, vmax=0.0, min_height=240, min_width=300, max_pixel=3
        )
        curve = images.line_plot(
            [log_history[0], log_history[-1]],
            colours=[(170, 170, 170), (31, 119, 180)],
            height=180,
            width=heat.shape[1],
            y_range=(vmin, 0.0),
            x_labels=("T=0", f"{history.shape[1] - 1}"),
        )
        columns.append(images.titled(images.above(heat, curve, gap=12), title))
    picture = columns[0]
    for column in columns[1:]:
        picture = images.beside(picture, column, gap=24)
    for line in reversed(CAPTION):
        picture = images.titled(picture, line)
    return images.beside(
        images.canvas(picture.shape[0], 8), images.above(images.canvas(8, 8), picture, gap=0), gap=0
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100, help="sequence length T")
    parser.add_argument("--units", type=int, default=32, help="hidden units of both models")
    parser.add_argument("--epochs", type=int, default=16, help="passes over the training set")
    parser.add_argument("--examples", type=int, default=4096, help="training sequences")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per training step")
    parser.add_argument("--learning-rate", type=float, default=1e-2, help="Adam's learning rate")
    parser.add_argument(
        "--every", type=int, default=8, help="log the gradient-over-time view every this many steps"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the weights and the data")
    parser.add_argument(
        "--log-dir", default="/tmp/rnnzoo_gradient_over_time", help="TensorBoard runs go here"
    )
    parser.add_argument(
        "--output",
        default=str(ROOT / "docs" / "images" / "gradient_over_time.png"),
        help="PNG to write",
    )
    parser.add_argument(
        "--vmin", type=float, default=-12.0, help="lowest log10 norm on the colour scale"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    data = adding_problem(args.examples, args.steps, rng)
    probe_batch = adding_problem(32, args.steps, rng)
    panels = []
    for cell, title in (("vanilla", "TANH RNN"), ("lstm", "LSTM")):
        callback, layer = train(cell, data, probe_batch, args, os.path.join(args.log_dir, cell))
        history = np.stack(callback.history[layer])
        ratio = summaries.log10(history[-1][0] / history[-1][-1])
        print(f"{cell}: log10 |dL/dh_0| / |dL/dh_T| at the last logged step = {ratio:.1f}")
        panels.append((title, history))
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    images.write_png(args.output, figure(panels, args.vmin))
    print(f"wrote {args.output}; TensorBoard runs in {args.log_dir}")


if __name__ == "__main__":
    main()
