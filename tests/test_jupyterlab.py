"""A shipped notebook opened in JupyterLab in headless Chromium, untrusted as a user's download is: every
drawing in it shows as a picture.

JupyterLab shows an untrusted notebook's HTML outputs through its sanitizer (no scripts, no frames, no styles it
does not know), so what a drawing shows there is what a student who downloads the notebook sees. The server
runs with a fresh configuration and data folder (no notebook is trusted there) and no token, on a free port
of 127.0.0.1, and is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import chromium
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PICTURE_TYPES = ("image/png", "image/svg+xml", "image/gif", "image/jpeg")


def is_drawing(output: dict) -> bool:
    """Whether a stored output is a picture: an image, or HTML holding an SVG, an image or a page of one."""
    data = output.get("data", {})
    page = data.get("text/html", "")
    return any(kind in data for kind in PICTURE_TYPES) or "<svg" in page or "<img" in page or "<iframe" in page


# every shipped notebook that stores a drawing (a plot or an animation counts: it must show too)
SHOWN = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")
               if any(is_drawing(output) for cell in nbformat.read(path, as_version=4).cells
                      for output in cell.get("outputs", [])))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on the notebooks copied into a scratch folder: its URL."""
    chromium.require()
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        reason = 'JupyterLab is not installed (pip install -e ".[test]")'
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    root.mkdir()
    for name in SHOWN:
        shutil.copy(NOTEBOOKS / name, root / name)
    port = free_port()
    environment = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"),
                       JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                       JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "ws"))
    log = home / "server.log"
    with open(log, "wb") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             "--IdentityProvider.token=", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={root}",
             "--ServerApp.port_retries=0", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=environment, stdout=subprocess.DEVNULL, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def unshown_drawings(url: str, name: str) -> list[tuple[int, int, str]]:
    """The drawings among a notebook's stored outputs that show no picture when JupyterLab opens it: (code cell,
    output, the text shown instead), both counted from 1."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    stored = [cell for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells if cell.cell_type == "code"]
    expected = [[is_drawing(output) for output in cell.outputs] for cell in stored]
    assert any(any(cell) for cell in expected), f"{name} has no drawing to check"
    missing = []
    with chromium.chromium(1200, 900) as driver:
        driver.get(f"{url}/lab/tree/{name}?reset")  # ?reset: the notebook alone, not the last session's tabs
        WebDriverWait(driver, 120).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")) == len(stored))
        cells = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")
        for k, (cell, wanted) in enumerate(zip(cells, expected)):
            driver.execute_script("arguments[0].scrollIntoView()", cell)  # JupyterLab renders what is in view
            outputs = WebDriverWait(driver, 30).until(
                lambda d, cell=cell, wanted=wanted: (lambda found: found if len(found) == len(wanted) else False)(
                    cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-child .jp-OutputArea-output")))
            for j, (output, drawing) in enumerate(zip(outputs, wanted)):
                if not drawing:
                    continue
                driver.execute_script("arguments[0].scrollIntoView()", output)
                sizes = driver.execute_script(
                    "return Array.from(arguments[0].querySelectorAll('img, svg')).map(function (e) {"
                    "  var box = e.getBoundingClientRect(); return [box.width, box.height]; })", output)
                if not any(width > 50 and height > 20 for width, height in sizes):
                    missing.append((k + 1, j + 1, output.text[:80]))
    return missing


@pytest.fixture(scope="module")
def unshown(jupyterlab):
    """`unshown_drawings` of each notebook in `SHOWN`, found once."""
    return {name: unshown_drawings(jupyterlab, name) for name in SHOWN}


@pytest.mark.parametrize("name", SHOWN)
def test_every_drawing_shows_as_a_picture_in_untrusted_jupyterlab(unshown, name):
    assert unshown[name] == [], f"drawings that show no picture in untrusted JupyterLab: {unshown[name]}"


def test_the_interactive_page_shows_as_a_picture_in_untrusted_jupyterlab(unshown):
    name = "2_stages_step_through.ipynb"
    stored = [cell for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells if cell.cell_type == "code"]
    pages = [(k, j) for k, cell in enumerate(stored, 1) for j, output in enumerate(cell.outputs, 1)
             if "<iframe srcdoc=" in output.get("data", {}).get("text/html", "")]
    assert pages, f"{name} shows no interactive page"
    assert [(k, j) for k, j, _ in unshown[name] if (k, j) in pages] == []
