"""The interactive page (issue #23): its size, the time to make it, and the time a browser takes to make it usable.

Run: python benchmarks/bench_page.py [--out DIR]   (needs Graphviz's `dot`; the load times need headless Chromium,
Debian's chromium and chromium-driver, and selenium, as the browser tests do; pages go to a temporary directory
unless --out is given)

Targets: the README's LSTM graph's page under 1 MB and interactive in under 1 s. "Interactive" is the moment the
page's script has shown the drawing and listens for the mouse (it writes the milliseconds since the page was
asked for into ``<body data-ready>``); each load time is the best of three loads in a fresh tab. The screenshot is
taken in a window 1,000 pixels wide and its width printed.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks" / "figures"))

from render import fork_example  # noqa: E402

from autograd import draw, render  # noqa: E402
from lstm.demo import DEMO_TENSOR, lstm_loss  # noqa: E402

REPEATS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="directory for the pages and the screenshot")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="where to write the screenshot (the README's is notebooks/figures/lstm_page.png)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-page-"))
    graphs = {"fork (README's first example)": (fork_example(), "fork.html"),
              "LSTM (README's six steps)": (lstm_loss(DEMO_TENSOR, seed=0), "lstm.html")}
    pages = {}
    for title, (root, name) in graphs.items():
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            path = render(draw(root, view="backward"), out / name)
            best = min(best, time.perf_counter() - start)
        pages[title] = path
        print(f"{title}: {path.stat().st_size:,} bytes, made in {best:.2f} s (draw, dot for every view, data)")
    import chromium

    reason = chromium.missing()
    if reason is not None:
        print(f"load times not measured: {reason}")
        return
    with chromium.chromium() as driver:
        for title, path in pages.items():
            times = []
            for _ in range(REPEATS):
                driver.get("about:blank")
                driver.get(path.as_uri())
                ready = None
                while ready is None:
                    ready = driver.execute_script("return document.body && document.body.dataset.ready")
                times.append(float(ready))
            print(f"{title}: interactive {min(times):.0f} ms after it was asked for (best of {REPEATS})")
        shot = args.screenshot or out / "lstm_page.png"
        driver.get(pages["LSTM (README's six steps)"].as_uri())
        stage_for_screenshot(driver)
        png = driver.get_screenshot_as_png()
        shot.write_bytes(png)
        width, height = struct.unpack(">II", png[16:24])
        print(f"screenshot of the LSTM page in a 1,000 px window: {width} x {height} px ({shot})")


def stage_for_screenshot(driver) -> None:
    """The page as the README shows it: half way through the reverse pass, the fork z[t=6] clicked (its four
    branches highlighted, their sum and explain's lines in the panel)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    fork = next(element for element in driver.find_elements(By.CSS_SELECTOR, "[data-unit]")
                if element.text.startswith("z[t=6]"))
    slider = driver.find_element(By.ID, "slider")
    slider.send_keys(Keys.HOME)
    for _ in range(8):
        slider.send_keys(Keys.ARROW_RIGHT)
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));"
                          "var frame = document.getElementById('drawing');"
                          "frame.scrollTop += arguments[0].getBoundingClientRect().top"
                          " - frame.getBoundingClientRect().top - 40;", fork)


if __name__ == "__main__":
    main()
