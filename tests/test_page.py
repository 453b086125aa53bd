"""The interactive page (`autograd.view.page`): what it holds, and what a real browser shows of it.

The browser tests open pages in headless Chromium (see `chromium`), hover, click, move the slider and press
keys, read back what the page shows and compare it with the engine's numbers; every one of them fails on a
console error or a request for anything but the page itself.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import chromium
import numpy as np
import pytest
from learner_graphs import readme_fork as fork_example

from autograd import Tensor, Value, draw, explain, render, stage, step_through
from autograd.core import backpropagate
from autograd.view.page import Page, PageTooLargeError, page_html, script_json
from lstm.demo import DEMO_TENSOR, lstm_loss

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["</script><script>window.pwned=1</script>", '<img src=x onerror="window.pwned=1">', "it's \"q\"",
           "back\\slash\\n", "\u202eRTL\u202c", "nul\x00byte", "<!--", "]]>", "&amp;"]




def page_data(document: str) -> dict:
    start = document.index('id="page-data">') + len('id="page-data">')
    return json.loads(document[start:document.index("</script>", start)])


def numbers(text: str) -> np.ndarray:
    return np.array([float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)])


# --- the page as a file ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [*HOSTILE, "\u2028\u2029", "\ud800 lone", "", "plain"])
def test_script_json_reads_back_and_cannot_end_its_element(text):
    data = {"name": text, "nested": [text, {text: text}]}
    written = script_json(data)
    assert "</" not in written and "<!" not in written
    assert json.loads(written) == data


def test_render_html_writes_one_self_contained_page(tmp_path):
    path = render(draw(fork_example(), view="backward"), tmp_path / "graph.html")
    document = path.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in document  # the page may load nothing at all
    assert not re.search(r"\s(src|href)\s*=", document)  # nothing to fetch: no links, images, scripts or styles
    assert len(re.findall(r"<script", document)) == 2  # the data and our script, nothing else
    data = page_data(document)
    names = {node["name"] for node in data["nodes"]}
    assert {"a", "b", "c", "L"} <= names
    assert [step[0] for step in data["views"][0]["steps"]] == step_through(fork_example()).captions


def test_interactive_in_jupyter_is_the_page_in_a_frame_of_its_own():
    page = draw(fork_example(), view="backward").interactive()
    assert isinstance(page, Page)
    shown = page._repr_html_()
    assert shown.startswith("<div><iframe srcdoc=") and 'sandbox="allow-scripts"' in shown
    assert '<img alt="the drawing' in shown  # for where frames and scripts are not shown
    # the page is an attribute's (escaped) text, not the notebook's markup: one script, which removes the PNG
    assert shown.count("<script") == 1 and "&lt;script" in shown
    assert len(page) == len(page.html.encode())


def test_the_readme_lstm_page_is_under_a_megabyte():
    document = page_html(draw(lstm_loss(DEMO_TENSOR, seed=0), view="backward"))
    assert len(document.encode("utf-8")) < 1_000_000
    assert len(page_data(document)["views"]) > 1  # its boxes open in place


def test_a_page_over_its_limit_says_so_and_how_to_draw_less():
    drawing = draw(lstm_loss(DEMO_TENSOR, seed=0), view="backward")
    with pytest.raises(PageTooLargeError, match=r"more than its limit of 0.05 MB.*collapse=.*interactive\(limit="):
        drawing.interactive(limit=50_000)


def test_a_drawing_not_made_by_draw_is_refused():
    import graphviz

    with pytest.raises(TypeError, match="made by autograd.view.draw"):
        page_html(graphviz.Digraph())


def test_graph_command_writes_a_page(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lstm", "graph", "--view", "backward", "--output", "g.html"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "g.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# --- in the browser -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with chromium.chromium() as driver:
        yield driver


def open_page(driver, path: Path) -> dict:
    """Open a page and wait until its script has run; it must load without errors and fetch nothing."""
    from selenium.webdriver.support.ui import WebDriverWait

    chromium.console_errors(driver), chromium.requests(driver)  # start afresh
    driver.get(path.as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready"))
    return page_data(path.read_text(encoding="utf-8"))


def assert_clean(driver, path: Path) -> None:
    assert chromium.console_errors(driver) == []
    assert [url for url in chromium.requests(driver) if url != path.as_uri() and not url.startswith("data:")] == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


def unit_of(data: dict, name: str, view: int = 0) -> str:
    ids = [key for key, unit in data["views"][view]["units"].items()
           if "node" in unit and "copy" not in unit and data["nodes"][unit["node"]]["name"] == name]
    assert len(ids) == 1, name
    return ids[0]


def hover(driver, selector: str) -> str:
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By

    ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, selector)).perform()
    return driver.find_element(By.ID, "info").text


def click(driver, selector: str) -> str:
    from selenium.webdriver.common.by import By

    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                          driver.find_element(By.CSS_SELECTOR, selector))
    return driver.find_element(By.ID, "detail").text


@pytest.fixture(scope="module")
def fork_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "fork.html"
    return render(draw(fork_example(), view="backward"), path)


def test_hovering_a_node_shows_its_value_and_gradient(browser, fork_page):
    L = fork_example()
    L.backward()
    a = L.parents[0].parents[1]
    data = open_page(browser, fork_page)
    shown = hover(browser, f'[data-unit="{unit_of(data, "a")}"]')
    assert "scalar · float" in shown
    value, gradient = shown.split("dL/da")[0], shown.split("dL/da")[1]
    assert numbers(value)[-1] == a.data
    assert numbers(gradient)[-1] == pytest.approx(a.grad, rel=1e-5)
    assert_clean(browser, fork_page)


def test_hovering_an_edge_shows_its_local_derivative_and_term(browser, fork_page):
    L = fork_example()
    L.backward()
    c = L.parents[0].parents[0]
    a, b = c.parents
    data = open_page(browser, fork_page)
    edges = data["views"][0]["edges"]
    k = next(k for k, edge in enumerate(edges) if edge[0] == unit_of(data, "a") and edge[1] == unit_of(data, "c"))
    shown = hover(browser, f'[data-edge="{k}"]')
    assert "∂c/∂a = b" in shown
    local = shown.split("local derivative")[1].split("term =")[0]
    assert numbers(local)[-1] == b.data  # d(a*b)/da = b
    term = shown.split("term sent back to a")[1]
    assert numbers(term)[-1] == pytest.approx(c.grad * b.data, rel=1e-5)
    assert_clean(browser, fork_page)


def test_clicking_a_fork_highlights_its_branches_and_their_sum(browser, fork_page):
    L = fork_example()
    L.backward()
    a = L.parents[0].parents[1]
    data = open_page(browser, fork_page)
    detail = click(browser, f'[data-unit="{unit_of(data, "a")}"]')
    assert "fork: 2 branches add up" in detail
    assert len(browser.find_elements("css selector", "g.branch")) == 2
    total = re.search(r"dL/da = (.*) = (\S+)\n", detail)
    assert sum(numbers(total[1])) == pytest.approx(a.grad, rel=1e-4)
    assert float(total[2]) == pytest.approx(a.grad, rel=1e-5)
    assert_clean(browser, fork_page)


def test_clicking_a_node_shows_explains_lines_with_every_name_defined(browser, fork_page):
    L = fork_example()
    written = explain(L, max_steps=None).to_text()
    data = open_page(browser, fork_page)
    detail = click(browser, f'[data-unit="{unit_of(data, "c")}"]')
    lines = detail.split("explain: c\n")[1].splitlines()
    equation = [line for line in lines if line.startswith("dL/dc")]
    assert equation and all(line.strip() in written for line in lines if line.strip())
    for name in re.findall(r"[A-Za-z]\w*", equation[0].replace("dL/d", " ")):
        if name not in ("tanh",):
            assert any(line.startswith(f"{name} = ") for line in lines), name
    assert_clean(browser, fork_page)


def test_slider_and_arrow_keys_step_through_the_pass_with_its_captions(browser, fork_page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    captions = step_through(fork_example()).captions
    data = open_page(browser, fork_page)
    slider = browser.find_element(By.ID, "slider")
    caption = browser.find_element(By.ID, "caption")
    assert int(slider.get_attribute("max")) == len(captions)  # the last position: the whole pass
    slider.send_keys(Keys.HOME)  # the slider itself, moved with the keyboard
    assert caption.text == captions[0]
    body = browser.find_element(By.TAG_NAME, "body")
    for k in range(1, len(captions)):
        body.send_keys(Keys.ARROW_RIGHT)
        assert caption.text == captions[k]
        current = data["views"][0]["steps"][k][1]
        assert browser.find_elements(By.CSS_SELECTOR, "g.current")[0].get_attribute("data-unit") == current
        fresh = browser.find_elements(By.CSS_SELECTOR, "g.fresh")
        assert fresh and all(k in data["views"][0]["edges"][int(edge.get_attribute("data-edge"))][3]
                             for edge in fresh)
    body.send_keys(Keys.ARROW_LEFT)
    assert caption.text == captions[-2]
    assert_clean(browser, fork_page)


def test_search_finds_a_node_by_name(browser, fork_page):
    from selenium.webdriver.common.by import By

    data = open_page(browser, fork_page)
    browser.find_element(By.ID, "search").send_keys("v1")
    assert browser.find_element(By.ID, "found").text == "1 found"
    assert browser.find_element(By.CSS_SELECTOR, "g.found").get_attribute("data-unit") == unit_of(data, "v1")
    assert_clean(browser, fork_page)


@pytest.fixture(scope="module")
def lstm_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "lstm.html"
    return render(draw(lstm_loss(DEMO_TENSOR, seed=0), view="backward"), path)


def test_lstm_boxes_open_and_close_in_place_and_stages_are_found(browser, lstm_page):
    from selenium.webdriver.common.by import By

    data = open_page(browser, lstm_page)
    first = data["views"][0]
    box = next(key for key, unit in first["units"].items() if unit.get("box") == "t=5")
    shapes = len(browser.find_elements(By.CSS_SELECTOR, "[data-unit]"))
    click(browser, f'[data-unit="{box}"]')
    closer = browser.find_element(By.ID, "close")
    assert closer.is_displayed() and closer.text == "close t=5"
    opened = data["views"][first["units"][box]["open"]]
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-unit]")) == len(opened["units"]) > shapes
    names = {data["nodes"][unit["node"]]["name"] for unit in opened["units"].values() if "node" in unit}
    assert "c[t=5]" in names and "c[t=5]" not in {data["nodes"][u["node"]]["name"] for u in first["units"].values()
                                                  if "node" in u}
    first_inside = next(browser.find_element(By.CSS_SELECTOR, f'[data-unit="{key}"]') for key, unit
                        in opened["units"].items() if "node" in unit and data["nodes"][unit["node"]]["stage"][:1]
                        == ["t=5"])
    frame = browser.find_element(By.ID, "drawing")
    assert frame.rect["y"] <= first_inside.rect["y"] <= frame.rect["y"] + frame.rect["height"]  # opened in view
    search = browser.find_element(By.ID, "search")
    search.send_keys("forget gate")
    found = browser.find_elements(By.CSS_SELECTOR, "g.found")
    assert found and all("forget gate" in data["nodes"][opened["units"][g.get_attribute("data-unit")]["node"]]
                         ["stage"] for g in found if "node" in opened["units"][g.get_attribute("data-unit")])
    search.clear()
    closer.click()
    assert not closer.is_displayed()
    box_shape = browser.find_element(By.CSS_SELECTOR, f'[data-unit="{box}"]')
    assert frame.rect["y"] <= box_shape.rect["y"] <= frame.rect["y"] + frame.rect["height"]  # back in place
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-unit]")) == shapes
    assert_clean(browser, lstm_page)


def test_lstm_hover_shows_whole_arrays_that_match_the_engine(browser, lstm_page):
    from autograd.view.annotated import AnnotatedPass

    loss = lstm_loss(DEMO_TENSOR, seed=0)
    gradients = backpropagate(loss).adjoints  # the engine's pass, on a graph of its own
    node = next(n for n, name in AnnotatedPass(loss).names.items() if name == "c[t=6]")
    data = open_page(browser, lstm_page)
    shown = hover(browser, f'[data-unit="{unit_of(data, "c[t=6]")}"]')
    shape = f"{'×'.join(map(str, node.data.shape))} · float64"
    assert shown.count(shape) == 2  # the value's and the gradient's
    value, gradient = shown.split("dL/dc[t=6]")
    np.testing.assert_allclose(numbers(value.split(shape)[1]), node.data.ravel(), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(numbers(gradient.split(shape)[1].split("a fork")[0]), gradients[node].ravel(), rtol=1e-5,
                               atol=1e-12)
    assert_clean(browser, lstm_page)


def test_hostile_names_stay_text(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from autograd.view.dot import visible

    with stage(HOSTILE[0]):
        total = Value(0.0, label="zero")
        for k, name in enumerate(HOSTILE):
            value = Value(float(k + 1), label=name)
            total = total + value * value
    total.label = HOSTILE[1] + " total"
    path = render(draw(total, view="backward"), tmp_path / "hostile.html")
    data = open_page(browser, path)
    assert browser.execute_script("return window.pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "img, iframe, object, embed") == []
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 2
    for name in HOSTILE:
        shown = hover(browser, f'[data-unit="{unit_of(data, visible(name))}"]')
        assert shown.startswith(visible(name) + "\n")  # as the drawing writes it: NUL as ␀, RTL as ⟨U+202E⟩
        assert "stage " + visible(HOSTILE[0]) in shown
    search = browser.find_element(By.ID, "search")
    search.send_keys("<img")
    assert browser.find_element(By.ID, "found").text == "2 found"  # the value and the root
    assert browser.execute_script("return window.pwned") is None
    assert_clean(browser, path)


def test_screenshot_fits_a_thousand_pixels(browser, lstm_page, tmp_path):
    open_page(browser, lstm_page)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= chromium.WIDTH
    png = browser.get_screenshot_as_png()
    width, height = struct.unpack(">II", png[16:24])
    assert width <= 1000 and height > 300
    assert_clean(browser, lstm_page)


def test_inline_in_a_trusted_notebook_the_page_runs_in_its_frame(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path = tmp_path / "cell.html"
    shown = draw(fork_example(), view="backward").interactive()._repr_html_()
    path.write_text(f"<!DOCTYPE html><html><body>{shown}</body></html>", encoding="utf-8")
    chromium.console_errors(browser), chromium.requests(browser)
    browser.get(path.as_uri())
    assert browser.find_elements(By.TAG_NAME, "img") == []  # where scripts run, the PNG stand-in is removed
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.body.dataset.ready"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "[data-unit]")) == 5
    finally:
        browser.switch_to.default_content()
    assert chromium.console_errors(browser) == []
    assert [url for url in chromium.requests(browser) if url != path.as_uri() and not url.startswith(("data:",
            "about:srcdoc"))] == []


def test_a_drawing_inline_in_a_trusted_notebook_shows_its_svg_in_place_of_the_png(browser, tmp_path):
    # (untrusted, where the script does not run, the PNG stays: tests/test_jupyterlab.py)
    from selenium.webdriver.common.by import By

    from autograd.view.display import drawing_bundle

    path = tmp_path / "cell.html"
    bundle = drawing_bundle(draw(fork_example(), view="backward"))
    assert bundle["image/png"] in bundle["text/html"]  # the same picture, for the viewers that show no SVG
    path.write_text(f"<!DOCTYPE html><html><body>{bundle['text/html']}</body></html>", encoding="utf-8")
    chromium.console_errors(browser), chromium.requests(browser)
    browser.get(path.as_uri())
    assert browser.find_elements(By.TAG_NAME, "img") == []
    (svg,) = browser.find_elements(By.TAG_NAME, "svg")
    assert svg.size["width"] > 300 and "dL/da" in svg.text  # drawn at its size, its text as text
    assert browser.find_elements(By.CSS_SELECTOR, 'script[type="text/html"]') == []
    assert chromium.console_errors(browser) == []
    assert [url for url in chromium.requests(browser) if url != path.as_uri() and not url.startswith("data:")] == []


def test_a_forward_drawing_has_values_and_no_pass_to_step_through(browser, tmp_path):
    from selenium.webdriver.common.by import By

    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, label="x")
    with stage("layer"):
        y = (x * 2.0).tanh().sum()
    path = render(draw(y), tmp_path / "forward.html")
    data = open_page(browser, path)
    assert not browser.find_element(By.ID, "stepping").is_displayed()
    shown = hover(browser, f'[data-unit="{unit_of(data, "x")}"]')
    assert "2×3 · float64" in shown and "dL/dx" not in shown
    np.testing.assert_array_equal(numbers(shown.split("float64")[1]), np.arange(6.0))
    assert_clean(browser, path)


def test_a_large_array_is_shown_in_part_and_says_so(browser, tmp_path):
    x = Tensor(np.linspace(-1, 1, 3000), requires_grad=True, label="x")
    path = render(draw((x * x).sum(), view="backward"), tmp_path / "large.html")
    data = open_page(browser, path)
    shown = hover(browser, f'[data-unit="{unit_of(data, "x")}"]')
    assert "3,000 elements: the first and last of each row are shown" in shown
    assert "3000 · float64" in shown and "..." in shown
    assert_clean(browser, path)


def test_no_shape_shows_a_tooltip_of_its_own(browser, fork_page):
    open_page(browser, fork_page)
    titles = browser.execute_script(
        "return Array.from(document.querySelectorAll('#drawing *')).filter(function (e) {"
        "  return e.localName === 'title' || Array.from(e.attributes).some(function (a) {"
        "    return a.localName === 'title'; }); }).length")
    assert titles == 0
    assert_clean(browser, fork_page)


def test_boxes_beyond_the_pages_budget_say_how_to_draw_them(monkeypatch):
    import autograd.view.page as page

    monkeypatch.setattr(page, "MAX_OPENABLE", 2)
    data = page_data(page_html(draw(lstm_loss(DEMO_TENSOR, seed=0), view="backward")))
    boxes = {unit["box"]: unit for unit in data["views"][0]["units"].values() if "box" in unit}
    assert [title for title, unit in boxes.items() if unit["open"] is not None] == ["t=4", "t=5"]  # nearest t=6
    assert boxes["t=1"]["closed"] == "not opened in this page (it opens 2 boxes at most): draw(..., keep='t=1') " \
                                     "draws it in full"
    assert [view["opened"] for view in data["views"]] == [None, "t=4", "t=5"]


def test_every_number_comes_from_the_drawings_one_reverse_pass(monkeypatch):
    import autograd.view.annotated as annotated

    passes = []
    real = annotated.backpropagate
    monkeypatch.setattr(annotated, "backpropagate", lambda *args, **kwargs: passes.append(1) or real(*args, **kwargs))
    drawing = draw(lstm_loss(DEMO_TENSOR, seed=0), view="backward")
    page_html(drawing)  # the drawing, its boxes opened, explain's lines, the steps: all from one pass
    assert len(passes) == 1
    with pytest.raises(ValueError, match="another root"):
        explain(fork_example(), annotated=drawing.writer.scene.annotated)
    root = drawing.writer.scene.root
    with pytest.raises(ValueError, match="annotated= and expand= do not go together"):
        explain(root, annotated=drawing.writer.scene.annotated, expand="conv2d")


def test_without_a_browser_the_tests_skip_with_the_reason_and_fail_in_ci(monkeypatch):
    monkeypatch.setattr(chromium, "CHROMIUM", "/nonexistent/chromium")
    assert "install Debian's chromium package" in chromium.missing()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="browser tests cannot run in CI"):
        chromium.require()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="need headless Chromium: no /nonexistent/chromium"):
        chromium.require()


@pytest.mark.parametrize("drawn, shown, scrolls", [(800, 800, False), (1236, 1000, False), (1765, 1324, True)])
def test_a_drawing_wider_than_the_column_is_scaled_to_it_down_to_three_quarters_then_scrolls(
        browser, tmp_path, drawn, shown, scrolls):
    from selenium.webdriver.common.by import By

    from autograd.view.display import framed

    points = drawn * 3 / 4
    svg = (f'<svg width="{points}pt" height="300pt" viewBox="0 0 {points} 300" xmlns="http://www.w3.org/2000/svg">'
           f'<rect width="{points}" height="300" fill="#eee"/><text x="10" y="20">dL/dx</text></svg>')
    path = tmp_path / "column.html"
    path.write_text(f'<!DOCTYPE html><html><body style="margin:0"><div style="width:1000px">{framed(svg)}</div>'
                    "</body></html>", encoding="utf-8")
    browser.get(path.as_uri())
    (picture,) = browser.find_elements(By.TAG_NAME, "svg")
    assert abs(picture.size["width"] - shown) <= 1  # drawn size, the column's width, or three quarters
    frame = browser.execute_script("return document.body.firstElementChild.firstElementChild")
    overflow = browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", frame)
    assert overflow is scrolls
    assert chromium.console_errors(browser) == []
