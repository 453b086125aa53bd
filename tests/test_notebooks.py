"""The notebooks run top to bottom on a real Jupyter kernel, and are committed with their outputs."""

from __future__ import annotations

import base64
import io
import os
import re
import runpy
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograd.view.draw import WIDTH_BUDGET

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_seven_notebooks_are_there():
    assert [path.stem.split("_")[0] for path in NOTEBOOKS] == ["1", "2", "3", "4", "5", "6", "7"]


def picture_widths(outputs) -> list[int]:
    """The width in pixels of every picture among a notebook's outputs, as a notebook shows it: a drawing's inline
    SVG at its natural size (96 pixels per inch), an image's pixels."""
    widths = []
    for output in outputs:
        data = output.get("data", {})
        page = data.get("text/html", "")
        widths += [int(width) for width in re.findall(r'<div style="width:(\d+)px;min-width', page)]
        for encoded in re.findall(r'src="data:image/(?:gif|png);base64,([^"]+)"', page):
            from PIL import Image
            with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
                widths.append(image.width)
        if "image/svg+xml" in data:
            widths.append(round(float(re.search(r'<svg width="([\d.]+)pt"', data["image/svg+xml"])[1]) * 4 / 3))
    return widths


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_with_every_cell_run_in_order_and_no_errors(path):
    cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert not [output for cell in cells for output in cell.outputs if output.output_type == "error"]
    assert sum(bool(cell.outputs) for cell in cells) >= len(cells) - 1  # they read well without running
    assert all(width <= WIDTH_BUDGET for width in picture_widths(output for cell in cells for output in cell.outputs))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_runs_top_to_bottom(path, tmp_path, monkeypatch):
    # the kernel is this interpreter's (the project's environment), with notebook plotting, in a scratch folder
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    widths = picture_widths(outputs)
    assert all(width <= WIDTH_BUDGET for width in widths), widths  # every picture fits a notebook's column


def test_the_readme_pictures_render_from_the_readme_examples(tmp_path):
    script = runpy.run_path(str(Path(__file__).parent.parent / "notebooks" / "figures" / "render.py"))
    written = script["main"](tmp_path)
    assert [path.name for path in written] == ["fork_backward.svg", "fork_step_through.gif",
                                               "lstm_backward.svg", "gradient_flow.png", "cnn_backward.svg"]
    for path in written:
        assert path.read_bytes()[:6] in (b"<?xml ", b"GIF89a", b"\x89PNG\r\n")
    for name in ("fork_backward.svg", "lstm_backward.svg", "cnn_backward.svg"):
        width = re.search(r'<svg width="([\d.]+)pt"', (tmp_path / name).read_text())[1]
        assert float(width) * 4 / 3 <= WIDTH_BUDGET  # at its natural size, in pixels
    svg = ElementTree.parse(tmp_path / "fork_backward.svg")
    texts = [text.text.replace("\u00a0", " ") for text in svg.iter("{http://www.w3.org/2000/svg}text")]
    start = texts.index("dL/da = ")  # the fork's row, in pieces: its two branch terms and their sum
    assert "".join(texts[start:start + 4]) == "dL/da = 0.00134 + (-0.00402) = -0.00268"
