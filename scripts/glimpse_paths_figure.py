"""Draw the README's picture of glimpse paths: where a trained RAM looks on test digits.

Loads a glimpse_mnist run (its config.toml and model.keras, the best
checkpoint's model), rebuilds the run's test split from the same seed, and
draws the first `--count` test images with the glimpse boxes at the location
policy's means, step by step (early to late along viridis), the path joining
them, and below each the patches the retina read (columns: steps; rows:
scales, finest on top). Titles read 'label -> prediction' (green when right, red when wrong).

    python scripts/glimpse_paths_figure.py --run-dir tensorboard_logs/glimpse_mnist/<stamp>
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from rnnzoo.recipes import glimpse_mnist  # noqa: E402
from rnnzoo.tensorboard import images  # noqa: E402
from rnnzoo.tensorboard.attention import glimpse_picture  # noqa: E402
from rnnzoo.training import config as config_io  # noqa: E402
from rnnzoo.training.rundir import MODEL_FILE, RunDirectory  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="a finished glimpse_mnist run")
    parser.add_argument("--count", type=int, default=8, help="test images drawn (default 8)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "glimpse_paths.png"))
    args = parser.parse_args(argv)

    run = RunDirectory(args.run_dir).require("the figure")
    config = config_io.load(glimpse_mnist.GlimpseConfig, run.config_path)
    data = glimpse_mnist.prepare_data(config)
    model = keras.saving.load_model(run.file(MODEL_FILE))
    test_images, test_labels = (array[: args.count] for array in data.splits["test"])
    picture, record = glimpse_picture(model, test_images, test_labels)
    right = int((record["predictions"] == test_labels).sum())
    caption = (
        f"RAM ON {glimpse_mnist.describe_dataset(config).upper()}: {config.glimpses} GLIMPSES, "
        f"{config.attention.upper()} ATTENTION, MEAN LOCATIONS; {right}/{len(test_labels)} RIGHT"
    )
    images.write_png(args.out, images.titled(picture, caption))
    print(f"wrote {args.out}: {caption.lower()}")


if __name__ == "__main__":
    main()
