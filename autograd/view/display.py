"""How drawings and graph nodes show themselves in Jupyter.

A drawing is shown as its SVG inline in the page, inside a frame that scrolls when the picture is wider or
taller than the notebook's column, and that can be dragged by its corner to zoom the picture in or out (it is
vector graphics: text stays sharp at any size); hovering shows the tooltips (the chain-rule step of an edge,
the expression of a node). An image tag would shrink a wide picture until its text is unreadable and lose
the tooltips. A Value or Tensor shows the forward drawing of its graph when it has at most `INLINE_MAX_NODES`
nodes (`autograd.core` calls `node_bundle` through its display hook), its repr otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import graphviz

from autograd.core import Node
from autograd.view.rendering import GraphvizError, GraphvizNotFoundError, pipe

INLINE_MAX_NODES = 150  # Jupyter shows larger graphs as text: a drawing that size is better asked for
FRAME_HEIGHT = 720  # pixels: a drawing taller than this scrolls inside its frame


class Drawing(graphviz.Digraph):
    """A `graphviz.Digraph` made by `autograd.view.draw`: Jupyter shows it inline as SVG (see the module notes),
    and ``safer`` gives the DOT of a plainer layout of it, for a Graphviz that fails on this one."""

    safer: Callable[[], str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # narrower layouts to try when this one is wider than a notebook column: (None, same picture laid out
        # otherwise) or (the arguments of a draw() call that shows less, that drawing); see `rendering.pipe`
        self.narrower: list[tuple[str | None, Callable[[], Drawing]]] = []
        self.warned = False

    def copy(self) -> Drawing:
        duplicate = super().copy()
        duplicate.safer, duplicate.narrower = self.safer, list(self.narrower)
        return duplicate

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, str]:
        return drawing_bundle(self, include, exclude)


def drawing_bundle(drawing: graphviz.Digraph, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """What Jupyter shows for a drawing: its SVG in a scrolling, zoomable frame; on failure, why, in one line."""
    text = {"text/plain": f"<drawing of {len(drawing.body)} DOT statements: render(drawing, 'graph.svg') "
                          "writes it to a file>"}
    if not _wanted("text/html", include, exclude):
        return text
    try:
        svg = pipe(drawing, "svg").decode("utf-8")
    except (GraphvizNotFoundError, GraphvizError) as error:
        return {"text/plain": str(error)}
    return {"text/html": framed(svg), **text}


def node_bundle(node: Node, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """What Jupyter shows for a Value or Tensor: the forward drawing of its graph, or its repr when that is not
    possible (a large graph, no ``dot``) or not wanted (a console asks for text only)."""
    from autograd.view.draw import draw  # the drawing entry point sits above this module

    text = {"text/plain": repr(node)}
    if not _wanted("text/html", include, exclude) or _larger_than(node, INLINE_MAX_NODES):
        return text
    try:
        svg = pipe(draw(node), "svg").decode("utf-8")
    except (GraphvizNotFoundError, GraphvizError, ValueError):
        return text
    return {"text/html": framed(svg), **text}


def framed(svg: str) -> str:
    """An SVG inline in an HTML frame that scrolls, and zooms when its corner is dragged."""
    svg = svg[svg.index("<svg"):]  # no XML prologue or DOCTYPE inside HTML
    width = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', svg)
    pixels = round(float(width[1]) * 4 / 3) if width else 800  # Graphviz's points at 96 pixels per inch
    svg = re.sub(r'(<svg[^>]*?)\swidth="[\d.]+pt"\sheight="[\d.]+pt"', r'\1 width="100%" height="auto"', svg, count=1)
    return (f'<div style="max-width:100%;max-height:{FRAME_HEIGHT}px;overflow:auto">'
            f'<div style="width:{pixels}px;min-width:120px;resize:horizontal;overflow:hidden">{svg}</div></div>')


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
