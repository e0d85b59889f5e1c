"""Check that TensorBoard shows an rnnzoo run: its HTTP API, then its dashboards in Chromium.

    python scripts/tensorboard_browser_check.py --screenshots /tmp/shots
    python scripts/tensorboard_browser_check.py --logdir runs/x/views --screenshots /tmp/shots

Without --logdir, it first trains a tiny model (Embedding -> LSTM -> GRU ->
Dense, a few steps) with `RecurrentTensorBoard` logging every view into a
temporary directory. Then it

1. starts `tensorboard --logdir DIR --host 127.0.0.1 --port <free port>` as a
   subprocess (always stopped at the end);
2. asks TensorBoard's HTTP API which tags its scalars, histograms and images
   dashboards will show (`/data/plugin/<plugin>/tags`) and checks that every
   view of the run is there, and that one image comes back as a PNG;
3. opens the scalars, histograms, images and time-series dashboards in
   headless Chromium, saves a screenshot of each into --screenshots, and
   checks the rendered time-series page (`--dump-dom`) lists every tag group.

Exit status 0 when everything is there; otherwise it prints what is missing
and exits 1. Exit status 2: Chromium or TensorBoard could not be started.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
# Tag groups each dashboard must show for a run made by RecurrentTensorBoard.
EXPECTED_GROUPS = {
    "scalars": (
        "batch/",
        "gradient_norm/",
        "optimizer/",
        "gradient_over_time/",
        "gate_saturation/",
    ),
    "histograms": ("weights/", "gradients/", "gates/"),
    "images": ("gradient_over_time/", "activations/"),
}


def find_chromium():
    """Path of a Chromium/Chrome executable, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_demo_run(log_dir):
    """Train a tiny model for 4 steps with every view on; events go to `log_dir`."""
    import keras
    import numpy as np

    import rnnzoo
    from rnnzoo.tensorboard import RecurrentTensorBoard

    keras.utils.set_random_seed(0)
    vocab, steps = 7, 12
    model = keras.Sequential(
        [
            keras.Input((steps,), dtype="int32"),
            keras.layers.Embedding(vocab, 6),
            rnnzoo.layers.LSTM(8, return_sequences=True, name="lstm"),
            rnnzoo.layers.GRU(8, return_sequences=True, name="gru"),
            keras.layers.Dense(vocab),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.random.default_rng(0).integers(0, vocab, (16, steps))
    y = np.roll(x, 1, axis=1)
    callback = RecurrentTensorBoard(
        log_dir,
        probe_data=(x[:4], y[:4]),
        scalars_every=1,
        histograms_every=1,
        gradient_over_time_every=1,
        gates_every=1,
        activations_every=1,
    )
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[callback], verbose=0)
    callback.close()


def get_json(base, path):
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return json.loads(response.read().decode("utf-8"))


def start_tensorboard(log_dir, port):
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(log_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--reload_interval",
        "1",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_serving(base, process, timeout):
    """Wait for TensorBoard to list at least one run with data; return the runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"tensorboard exited with {process.returncode}: {process.stderr.read()[-2000:]}"
            )
        try:
            runs = get_json(base, "/data/runs")
            tags = get_json(base, "/data/plugin/scalars/tags")
            if runs and any(tags.values()):
                return runs
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"tensorboard did not serve data within {timeout} s")


def check_api(base, expected):
    """(problems, tags by plugin) from TensorBoard's tag lists, plus one image fetched back."""
    problems, found = [], {}
    for plugin, groups in expected.items():
        by_run = get_json(base, f"/data/plugin/{plugin}/tags")
        tags = sorted({tag for run_tags in by_run.values() for tag in run_tags})
        found[plugin] = tags
        for group in groups:
            if not any(tag.startswith(group) for tag in tags):
                problems.append(f"{plugin} dashboard has no {group}* tag (it has {tags[:8]}...)")
    image_tags = get_json(base, "/data/plugin/images/tags")
    for run, tags in image_tags.items():
        for tag in list(tags)[:1]:
            query = urllib.parse.urlencode({"run": run, "tag": tag, "sample": 0})
            entries = get_json(base, f"/data/plugin/images/images?{query}")
            if not entries:
                problems.append(f"image {tag} of run {run!r} has no entries")
                continue
            with urllib.request.urlopen(
                f"{base}/data/plugin/images/individualImage?{entries[-1]['query']}", timeout=30
            ) as response:
                if not response.read(8).startswith(b"\x89PNG"):
                    problems.append(f"image {tag} of run {run!r} is not a PNG")
    return problems, found


def run_chromium(chromium, arguments, timeout):
    with tempfile.TemporaryDirectory() as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def check_browser(chromium, base, screenshots, timeout, expected, tag_filter=""):
    """Screenshot each dashboard; check the rendered Time Series page names every tag group.

    The scalars, histograms and images dashboards draw inside shadow DOM,
    which `--dump-dom` does not print, so the text check reads the Time Series
    dashboard, which shows the same tags grouped by their first component.
    """
    problems = []
    os.makedirs(screenshots, exist_ok=True)
    budget = "--virtual-time-budget=20000"
    suffix = f"&tagFilter={urllib.parse.quote(tag_filter)}" if tag_filter else ""
    for dashboard in (*expected, "timeseries"):
        png = os.path.join(screenshots, f"tensorboard_{dashboard}.png")
        arguments = [budget, "--window-size=1400,1000", f"--screenshot={png}"]
        if dashboard == "timeseries":
            arguments.append("--dump-dom")
        # The tag filter narrows the screenshots, not the Time Series check.
        url = f"{base}/#{dashboard}" + ("" if dashboard == "timeseries" else suffix)
        result = run_chromium(chromium, [*arguments, url], timeout)
        if not os.path.exists(png) or os.path.getsize(png) < 1000:
            problems.append(f"no screenshot of the {dashboard} dashboard: {result.stderr[-500:]}")
        if dashboard == "timeseries":
            groups = sorted({g.rstrip("/") for gs in expected.values() for g in gs})
            missing = [group for group in groups if f'title="{group}"' not in result.stdout]
            if missing:
                problems.append(f"the rendered Time Series dashboard has no tag group {missing}")
    return problems


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--logdir", help="TensorBoard directory of a run (default: make a tiny demo run)"
    )
    parser.add_argument(
        "--screenshots", default="tensorboard_screenshots", help="folder for the PNG screenshots"
    )
    parser.add_argument(
        "--chromium", default=None, help="Chromium executable (default: found on PATH)"
    )
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for each server or browser"
    )
    parser.add_argument(
        "--expect",
        default=",".join(EXPECTED_GROUPS),
        help="dashboards whose tag groups must be there (comma-separated; default all of them)",
    )
    parser.add_argument(
        "--tag-filter", default="", help="show only tags matching this regex in the screenshots"
    )
    args = parser.parse_args()

    chromium = args.chromium or find_chromium()
    if chromium is None:
        print(
            f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}); "
            "install it, e.g. apt-get install chromium"
        )
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        log_dir = args.logdir
        if log_dir is None:
            log_dir = os.path.join(scratch, "run")
            make_demo_run(log_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        tensorboard = start_tensorboard(log_dir, port)
        try:
            try:
                runs = wait_until_serving(base, tensorboard, args.timeout)
            except RuntimeError as error:
                print(error)
                return 2
            expected = {
                plugin: EXPECTED_GROUPS[plugin] for plugin in args.expect.split(",") if plugin
            }
            problems, found = check_api(base, expected)
            print(f"runs: {runs}")
            for plugin, tags in found.items():
                print(f"{plugin}: {len(tags)} tags")
            problems += check_browser(
                chromium, base, args.screenshots, args.timeout, expected, args.tag_filter
            )
        finally:
            tensorboard.terminate()
            try:
                tensorboard.wait(timeout=15)
            except subprocess.TimeoutExpired:
                tensorboard.kill()
                tensorboard.wait()
    for problem in problems:
        print("MISSING:", problem)
    print("screenshots in", os.path.abspath(args.screenshots))
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
