"""How drawings and graph nodes show themselves in Jupyter.

A drawing is shown as its SVG inline in the page at its drawn size (text as large as in the file), in a frame
as wide as the column at most: a wider picture is scaled down to the column, to three quarters of its size at
most, and scrolls sideways past that; its corner can be dragged to zoom it out (it is vector graphics: text
stays sharp at any size). A drawing up to `TALL` pixels high is shown whole and the page scrolls past it, a
taller one scrolls inside a frame (a mouse wheel over a frame scrolls the frame, not the page).
Hovering shows the tooltips (the chain-rule step of an edge, the expression of a node). Beside the HTML each
output carries the same picture as a PNG: an untrusted notebook (JupyterLab strips its HTML) and GitHub show that.
A Value or Tensor shows the forward drawing of its graph when it has at most `INLINE_MAX_NODES`
nodes (`autograd.core` calls `node_bundle` through its display hook), its repr otherwise.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import graphviz

from autograd.core import Node
from autograd.view.rendering import GraphvizError, GraphvizNotFoundError, pipe

INLINE_MAX_NODES = 150  # Jupyter shows larger graphs as text: a drawing that size is better asked for
FRAME_HEIGHT = 720  # pixels: the frame a drawing taller than `TALL` scrolls in
TALL = 4000  # pixels: drawings up to this high are shown whole (the page scrolls), taller ones in a frame
SCALED_DOWN = 0.75  # of its drawn size: the smallest a drawing wider than the column is scaled to fit it


class Narrower(NamedTuple):
    """Another layout of a drawing, tried when it comes out wider than a notebook column."""

    call: str | None  # None: the same picture laid out otherwise; else the arguments of a draw() call showing less
    make: Callable[[], Drawing]
    reach: float = 0.0  # the least share of the width it brings a drawing to: not tried where it cannot fit
    packed: bool = False  # shapes packed closer: used only where no edge label then lies on a shape


class Drawing(graphviz.Digraph):
    """A `graphviz.Digraph` made by `autograd.view.draw`: Jupyter shows it inline as SVG (see the module notes),
    and ``safer`` gives the DOT of a plainer layout of it, for a Graphviz that fails on this one."""

    safer: Callable[[], str] | None = None
    writer: Any = None  # the `autograd.view.dot.DotWriter` that wrote it: its scene, for `interactive`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # narrower layouts to try when this one is wider than a notebook column (see `rendering.pipe`); None (a
        # step-through's frame, cut to the column anyway): its width is not checked
        self.narrower: list[Narrower] | None = None
        self.warned = False

    def copy(self) -> Drawing:
        duplicate = super().copy()
        duplicate.safer, duplicate.writer = self.safer, self.writer
        duplicate.narrower = None if self.narrower is None else list(self.narrower)
        return duplicate

    def interactive(self, **options: Any) -> Any:
        """The drawing as an interactive page (`autograd.view.page.Page`, which takes ``timeout=`` and
        ``limit=``): shown inline in Jupyter, or saved as one self-contained HTML file with ``.save(path)``."""
        from autograd.view.page import Page  # the page sits above this module

        return Page(self, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, str]:
        return drawing_bundle(self, include, exclude)


def drawing_bundle(drawing: graphviz.Digraph, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """What Jupyter shows for a drawing: its SVG in a frame (see `framed`), and a PNG of it for the viewers that
    do not show a notebook's HTML (an untrusted notebook in JupyterLab, GitHub); on failure, why, in one line."""
    text = {"text/plain": f"<drawing of {len(drawing.body)} DOT statements: render(drawing, 'graph.svg') "
                          "writes it to a file>"}
    if not _wanted("text/html", include, exclude):
        return text
    try:
        return {**pictures(drawing, include, exclude), **text}
    except (GraphvizNotFoundError, GraphvizError) as error:
        return {"text/plain": str(error)}


def pictures(drawing: graphviz.Digraph, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """The SVG in its frame as ``text/html``, and the same picture as a base64 ``image/png``.

    The HTML shows the PNG too, until its script puts the SVG in its place: JupyterLab shows an untrusted
    notebook's HTML rather than its PNG, with the SVG and the script stripped (an SVG's text would be left as
    a line of words), so there the PNG stays, and the SVG, kept as the text of a script element that is not
    run, leaves nothing behind."""
    frame = framed(pipe(drawing, "svg").decode("utf-8"))
    if not _wanted("image/png", include, exclude):
        return {"text/html": frame}
    png = base64.b64encode(pipe(drawing, "png")).decode("ascii")
    shown = (f'<div><img alt="the drawing" style="max-width:100%" src="data:image/png;base64,{png}"/>'
             f'<script type="text/html">{frame}</script>{_IN_PLACE}</div>')
    return {"text/html": shown, "image/png": png}


# Where scripts run (a trusted notebook), the framed SVG kept in the script element before it takes the PNG's place
_IN_PLACE = ("<script>(function (kept) { var frame = document.createElement('div'); frame.innerHTML = kept.textContent;"
             " kept.previousElementSibling.replaceWith(frame.firstElementChild); kept.remove(); })"
             "(document.currentScript.previousElementSibling);</script>")


def node_bundle(node: Node, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """What Jupyter shows for a Value or Tensor: the forward drawing of its graph, or its repr when that is not
    possible (a large graph, no ``dot``) or not wanted (a console asks for text only)."""
    from autograd.view.draw import draw  # the drawing entry point sits above this module

    text = {"text/plain": repr(node)}
    if not _wanted("text/html", include, exclude) or _larger_than(node, INLINE_MAX_NODES):
        return text
    try:
        return {**pictures(draw(node), include, exclude), **text}
    except (GraphvizNotFoundError, GraphvizError, ValueError):
        return text


def framed(svg: str) -> str:
    """An SVG inline in an HTML frame at its drawn size, or scaled down to the column's width when it is wider,
    down to `SCALED_DOWN` of its size (the whole of a picture a little too wide in view, its text still
    readable); a picture wider still scrolls sideways at that scale. Dragging the frame's corner zooms it
    out. A drawing up to `TALL` pixels high is shown whole, the page scrolls past it; a taller one scrolls
    inside a frame `FRAME_HEIGHT` pixels high."""
    svg = svg[svg.index("<svg"):]  # no XML prologue or DOCTYPE inside HTML
    size = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"', svg)
    pixels, tall = (round(float(size[1]) * 4 / 3), float(size[2]) * 4 / 3) if size else (800, 0.0)
    # width 100% of the resizable frame, the height following from the viewBox (no height="auto": not a length)
    svg = re.sub(r'(<svg[^>]*?)\swidth="[\d.]+pt"\sheight="[\d.]+pt"', r'\1 width="100%"', svg, count=1)
    frame = "max-width:100%;overflow:auto" + (f";max-height:{FRAME_HEIGHT}px" if tall > TALL else "")
    least = min(pixels, max(120, round(pixels * SCALED_DOWN)))  # its width in a column too narrow for it
    return (f'<div style="{frame}">'
            f'<div style="width:{pixels}px;min-width:{least}px;max-width:100%;resize:horizontal;overflow:hidden">'
            f'{svg}</div></div>')


def _wanted(mime: str, include: Any, exclude: Any) -> bool:
    return (include is None or mime in include) and (exclude is None or mime not in exclude)


def _larger_than(root: Node, limit: int) -> bool:
    """Whether the graph has more than ``limit`` nodes, found without walking all of a large one."""
    seen = {root}
    stack = [root]
    while stack:
        for parent in stack.pop().parents:
            if parent not in seen:
                if len(seen) >= limit:
                    return True
                seen.add(parent)
                stack.append(parent)
    return False
