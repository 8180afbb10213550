"""End to end in a real browser: the launcher serves the dashboard, headless Chromium opens a
sample, clicks a sentence and sees its map drawn over both views.

Needs Debian's ``chromium`` (``apt-get install chromium chromium-driver``; ``.ci/run`` installs it)
and the ``playwright`` Python package, which drives that browser (no browser download). The
screenshot is kept in the test's folder and copied to ``runs/screenshots/dashboard.png``.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medvl import DRAFT_NOTICE

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed (apt-get install chromium chromium-driver)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test drives Chromium with playwright")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAUNCH = "import sys; from medvl.dashboard import run_dashboard; sys.exit(run_dashboard(port=int(sys.argv[1])))"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "runs" / "screenshots"
WAIT_MS = 60_000  # for the model to load and draft (the first time, in a fresh process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dashboard exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the dashboard did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    """The dashboard served by its launcher on a free local port, stopped afterwards."""
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/_stcore/health", server)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def coloured_pixels(png: bytes) -> np.ndarray:
    """Where the colour map painted (grey pixels have red equal to blue)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return np.abs(rgb[..., 0] - rgb[..., 2]) > 60


def coloured_share(png: bytes) -> float:
    """The share of pixels the colour map painted."""
    return float(coloured_pixels(png).mean())


def keep_screenshot(screenshot: Path) -> None:
    """Copy the screenshot to runs/screenshots/ where that folder can be written."""
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, SCREENSHOTS / screenshot.name)
    except OSError:
        pass


def test_clicking_a_sentence_draws_its_map_over_the_views(dashboard, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1100},
        )
        try:
            page = browser.new_page()
            page.goto(dashboard)
            sync_api.expect(page.get_by_text(DRAFT_NOTICE).first).to_be_visible(timeout=WAIT_MS)

            page.get_by_role("combobox", name="Sample").click()
            page.get_by_role("option", name="chest-xray").click()
            sentences = page.locator('[class*="st-key-sentence-"] [data-testid="stRadioOption"]')
            sync_api.expect(sentences.nth(1)).to_be_visible(timeout=WAIT_MS)
            plain = page.locator('img[alt="frontal view"]')
            sync_api.expect(plain).to_be_visible()
            before = coloured_share(plain.screenshot())

            sentences.filter(has_text="pleural effusion").first.click()  # the sample's finding
            overlays = page.locator('img[alt$="map overlay"]')
            sync_api.expect(overlays).to_have_count(2, timeout=WAIT_MS)
            sync_api.expect(page.locator("[data-medvl-overlay]")).to_be_visible()
            page.wait_for_load_state("networkidle")
            painted = coloured_pixels(overlays.first.screenshot())
            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=screenshot, full_page=True)
            keep_screenshot(screenshot)
        finally:
            browser.close()

    assert before < 0.001  # a radiograph alone is grey
    assert painted.mean() > 0.003  # the map paints where the sentence came from: the right
    rows, cols = np.nonzero(painted)  # costophrenic angle, low on the image's left (patient's right)
    assert rows.mean() > 0.5 * painted.shape[0] and cols.mean() < 0.5 * painted.shape[1]
