"""TensorBoard itself shows the views: scripts/tensorboard_browser_check.py in headless Chromium.

Skipped where no Chromium is installed (`apt-get install chromium` provides it).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "tensorboard_browser_check.py"
CHROMIUM = next(
    (
        shutil.which(name)
        for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
        if shutil.which(name)
    ),
    None,
)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH (apt-get install chromium); the browser check needs it",
)
def test_dashboards_show_the_run_in_a_browser(tmp_path):
    shots = tmp_path / "shots"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--screenshots", str(shots), "--chromium", CHROMIUM],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
    for dashboard in ("scalars", "histograms", "images", "timeseries"):
        png = shots / f"tensorboard_{dashboard}.png"
        image = tf.io.decode_png(tf.io.read_file(str(png))).numpy()
        assert image.shape[:2] == (1000, 1400), dashboard
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50, (
            dashboard
        )  # not blank
