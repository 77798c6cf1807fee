"""The widget panel in a real browser: JupyterLab + Chromium, driven by Playwright.

nbval executes cells but never renders a widget; this test does what a user
does: open notebook 01, run it, press Run on the panel, watch the preview
change, press Stop, choose another preset and see the sliders follow it,
then Run and Stop again. A screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from nst_helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "01_vanilla_resnet_nst.ipynb"
ARTIFACTS = ROOT / "test-artifacts"

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (CI installs it: apt-get install chromium)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A headless JupyterLab on localhost serving a *copy* of notebook 01, so autosave never touches the repo."""
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp_path / NOTEBOOK)
    port = _free_port()
    env = {**os.environ, "NSTKIT_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(tmp_path / ".runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--allow-root", "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(server.pid, signal.SIGKILL)
        pytest.fail("JupyterLab did not start within 60 s")
    yield url
    os.killpg(server.pid, signal.SIGTERM)  # the server and its kernels
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def test_panel_runs_previews_and_stops_in_chromium(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{jupyterlab}/lab/tree/{NOTEBOOK}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            # A fresh lab may ask which kernel to use; its dialog swallows clicks until answered.
            try:
                page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=5_000)
            except Exception:
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            run_button = page.locator(".jupyter-widgets button", has_text="Run").first
            stop_button = page.locator(".jupyter-widgets button", has_text="Stop").first
            run_button.wait_for(timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            preview = page.locator(".widget-image").first
            before = preview.get_attribute("src")

            run_button.click()
            sources = {before}
            deadline = time.time() + 90
            while len(sources) < 3 and time.time() < deadline:  # two distinct previews after the start
                source = preview.get_attribute("src")
                if source:
                    sources.add(source)
                page.wait_for_timeout(200)
            assert len(sources) >= 3, "the preview image never updated"
            assert stop_button.is_enabled()

            stop_button.click()
            status = page.locator(".widget-label", has_text="stopped:").first
            status.wait_for(timeout=60_000)
            text = status.inner_text()
            steps_run = int(text.split("stopped:")[1].split("steps")[0])
            assert 0 < steps_run < 1000, text
            assert "random" in text  # the panel says which weights made the picture
            expect(run_button).to_be_enabled(timeout=10_000)  # widget state arrives after the label

            # Choosing a preset moves the sliders to its values: vanilla's style weight 1e6 becomes robust's 1e7.
            style_weight = page.locator(".widget-hslider", has_text="style weight").locator(".widget-readout").first
            before_weight = style_weight.inner_text()
            page.locator(".widget-dropdown", has_text="preset").locator("select").first.select_option("robust")
            deadline = time.time() + 20
            while style_weight.inner_text() == before_weight and time.time() < deadline:
                page.wait_for_timeout(100)
            assert (float(before_weight), float(style_weight.inner_text())) == (1e6, 1e7)  # readout "1.00e+6"

            # A second run after Stop: it starts, previews, and stops again.
            run_button.click()
            first_preview = preview.get_attribute("src")
            deadline = time.time() + 90
            while preview.get_attribute("src") == first_preview and time.time() < deadline:
                page.wait_for_timeout(200)
            assert preview.get_attribute("src") != first_preview, "the second run never updated the preview"
            stop_button.click()
            page.locator(".widget-label", has_text="stopped:").first.wait_for(timeout=60_000)
            expect(run_button).to_be_enabled(timeout=10_000)  # widget state arrives after the label
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_panel.png"), full_page=True)
            browser.close()
