"""A drawing as an interactive page: one self-contained HTML file, nothing fetched, no build step.

    render(draw(L, view="backward"), "graph.html")     # or draw(...).interactive().save("graph.html")
    draw(L, view="backward").interactive()             # in Jupyter: the page inline

The page shows the drawing that Graphviz's ``dot`` lays out (the same SVG as ``render(..., "graph.svg")``),
fitted to the window. Hovering a node shows its value and gradient in full (with shape and dtype), an edge its
local derivative and the term it sends back; clicking a node shows the lines `explain` writes for it (every
name in them defined) and, at a fork, its branches highlighted with their sum. A slider and the arrow keys step
through the reverse pass in `step_through`'s order, with its captions; clicking a box opens that stage in place
(the drawing laid out again with it kept), and a search box finds a node or a stage by name.

Every number and formula is worked out here, in Python, from the drawing's own scene (`autograd.view.scene`, its
annotated pass) and written into the page as data; the script only shows it. Names are data too: the data is JSON
escaped for a script element and the script writes it with ``textContent``, never as markup; the page's content
security policy forbids loading anything.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from autograd.core import Node
from autograd.files import write_atomically
from autograd.view.annotated import Link
from autograd.view.boxes import Box, GraphTooLargeError, literal, matcher
from autograd.view.dot import DotWriter, visible
from autograd.view.explain import Explanation, explain
from autograd.view.frames import moments_of
from autograd.view.notation import (
    expression,
    format_number,
    gives_whole_term,
    local_formula,
    local_value,
    shape_text,
    sum_texts,
    summarize,
)
from autograd.view.rendering import GraphvizError, pipe
from autograd.view.scene import Proxy, Scene, Unit, source

PAGE_LIMIT = 8_000_000  # bytes: a larger page is refused with advice on drawing less
DIGITS = 6  # significant digits of the numbers in the page's arrays
ARRAY_ELEMENTS = 2000  # elements of one array written out in full; larger ones show their first and last few
MAX_OPENABLE = 12  # boxes a page lays out opened in advance (each is one more layout by dot)
OPEN_BUDGET = 1_500_000  # bytes of SVG a page spends on its boxes opened
EXPLAIN_DIGITS = 4  # explain's own default precision
FRAME_HEIGHT = 720  # pixels: the page's height inline in Jupyter
POLICY = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
          "base-uri 'none'; form-action 'none'")


class PageTooLargeError(ValueError):
    """The page of a drawing would be larger than its limit; the message says how to draw less."""


class Page:
    """A drawing as one self-contained interactive HTML page (see the module notes): ``.html`` is its text,
    ``.save(path)`` writes it, and Jupyter shows it inline."""

    def __init__(self, drawing: Any, *, timeout: float | None = None, limit: int = PAGE_LIMIT) -> None:
        self.html = page_html(drawing, timeout=timeout, limit=limit)
        self._drawing, self._timeout = drawing, timeout

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` (all or nothing, parent directories created)."""
        data = self.html.encode("utf-8")
        return write_atomically(Path(path), lambda file: file.write(data))

    def __len__(self) -> int:
        return len(self.html.encode("utf-8"))

    def _repr_html_(self) -> str:
        """The page in a frame of its own (its script and styles cannot touch the notebook, nor the notebook's
        the page), and the drawing as a PNG for where frames and scripts are not shown: an untrusted notebook
        in JupyterLab, GitHub. Where scripts run, the script after them removes the PNG."""
        png = base64.b64encode(pipe(self._drawing, "png", timeout=self._timeout)).decode("ascii")
        return (f'<div><iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'style="width:100%;height:{FRAME_HEIGHT}px;border:1px solid #d0d7de" title="interactive drawing">'
                f'</iframe><img alt="the drawing (open the notebook trusted for the interactive page)" '
                f'style="max-width:100%" src="data:image/png;base64,{png}"/></div>'
                "<script>document.currentScript.previousElementSibling.querySelector('img').remove();</script>")

    def __repr__(self) -> str:
        return f"<interactive page of a drawing, {len(self):,} bytes: .save('graph.html') writes it>"


def page_html(drawing: Any, *, timeout: float | None = None, limit: int = PAGE_LIMIT) -> str:
    """The page of a drawing made by `autograd.view.draw` (see the module notes), as HTML text.
    `PageTooLargeError` when it would be larger than ``limit`` bytes."""
    writer = getattr(drawing, "writer", None)
    if not isinstance(writer, DotWriter):
        raise TypeError(f"page: expected a drawing made by autograd.view.draw, got {type(drawing).__name__}")
    data = _PageData(writer).build(drawing, timeout, limit)
    document = _document(data)
    size = len(document.encode("utf-8"))
    if size > limit:
        raise PageTooLargeError(_too_large(size, limit, writer.scene))
    return document


def _too_large(size: int, limit: int, scene: Scene) -> str:
    return (f"page: this drawing makes a page of {size / 1e6:.1f} MB, more than its limit of {limit / 1e6:g} MB "
            f"({len(scene.nodes):,} nodes drawn). Draw less: collapse stages into boxes (draw(..., "
            "collapse='t=*'), or roll_up=True), draw the loss of fewer steps or smaller sizes, or raise the limit "
            "(drawing.interactive(limit=...)); render(drawing, 'graph.svg') draws it without the page.")


def array_text(raw: Any, digits: int = DIGITS) -> dict[str, str]:
    """A value or gradient as the page shows it: every element (up to `ARRAY_ELEMENTS`), its shape and dtype."""
    if not isinstance(raw, np.ndarray):
        return {"shape": "scalar", "dtype": type(raw).__name__, "text": format_number(raw, digits)}
    text = np.array2string(raw, separator=", ", threshold=ARRAY_ELEMENTS, edgeitems=6, max_line_width=96,
                           formatter={"all": lambda v: format_number(v, digits)})
    shown = {"shape": shape_text(raw.shape), "dtype": str(raw.dtype), "text": text}
    if raw.size > ARRAY_ELEMENTS:
        shown["note"] = f"{raw.size:,} elements: the first and last of each row are shown"
    return shown


class _PageData:
    """The page's data: the nodes and edges of the graph once, and each view (the drawing, and the drawing with
    one box opened) as its SVG with the shapes and lines in it."""

    def __init__(self, writer: DotWriter) -> None:
        self.writer, self.scene = writer, writer.scene
        self.annotated = self.scene.annotated
        self.backward = self.scene.view == "backward"
        self.root_name = visible(writer.root_name)
        self.names = {node: visible(name) for node, name in writer.names.items()}
        self.node_ids: dict[Node, int] = {}
        self.nodes: list[dict[str, Any]] = []
        self.link_ids: dict[Link, int] = {}
        self.links: list[dict[str, Any]] = []
        self.explanation = self._explanation()

    def build(self, drawing: Any, timeout: float | None, limit: int) -> dict[str, Any]:
        first = _svg(drawing, timeout)
        # Each box opened is one more layout, of about one and a half times the drawing's size: as many as fit
        # the budget, the boxes nearest the end of the graph (the step drawn in full) first.
        room = min(MAX_OPENABLE, int(OPEN_BUDGET / (1.5 * len(first))))
        chosen = self.scene.boxes[::-1][:room]
        writers = [(writer, box) for writer, box in ((self._opened(box), box) for box in chosen) if writer]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            svgs = list(pool.map(lambda each: _svg(each[0].write(), timeout, required=False), writers))
        views = [self._view(self.writer, first)]
        size = len(first)
        for (writer, box), svg in sorted(zip(writers, svgs), key=lambda item: self.scene.boxes.index(item[0][1])):
            size += len(svg or "")
            if svg is None or size > limit:  # an opened box is left out, not the page
                continue
            view = self._view(writer, svg)
            view["opened"] = visible(" / ".join(box.path))
            views[0]["units"][self.writer.ids[box]]["open"] = len(views)
            views.append(view)
        for box in self.scene.boxes:
            unit = views[0]["units"][self.writer.ids[box]]
            if unit["open"] is None:
                unit["closed"] = (f"not opened in this page (it opens {len(views) - 1} boxes at most): "
                                  f"draw(..., keep={literal(box.path[-1])!r}) draws it in full")
        return {"root": self.root_name, "backward": self.backward, "digits": DIGITS,
                "nodes": self.nodes, "links": self.links, "views": views}

    def _opened(self, box: Box) -> DotWriter | None:
        """The scene drawn again with one box's stage kept in full (None if that drawing would be refused)."""
        options = dict(self.scene.options)
        kept, path = matcher(options["keep"], "keep"), box.path
        options["keep"] = lambda stage: kept(stage) or stage == path
        try:
            scene = Scene(self.annotated, self.scene.view, **options)
        except GraphTooLargeError:
            return None
        return DotWriter(scene, self.writer.digits, self.writer.rankdir)

    def _explanation(self) -> Explanation | None:
        if not self.backward or not self.scene.root.requires_grad:
            return None
        explanation = explain(self.scene.root, precision=EXPLAIN_DIGITS, max_steps=None, annotated=self.annotated)
        self.forward_lines = {line.name: line for line in explanation.forward}
        return explanation

    # --- the graph: each node and edge once ---
    def node_id(self, node: Node) -> int:
        found = self.node_ids.get(node)
        if found is None:
            found = self.node_ids[node] = len(self.nodes)
            self.nodes.append({})  # its place, before its record names other nodes (which take places too)
            self.nodes[found] = self._node(node)
        return found

    def _node(self, node: Node) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.names[node], "stage": [visible(name) for name in node.stage],
                                  "value": array_text(node.data)}
        if node.op is not None:
            record["expr"] = visible(expression(node, self.writer.written))
        if not self.backward:
            return record
        gradient = self.scene.gradient(node)
        if gradient is not None:
            record["grad"] = array_text(gradient)
        branches = self.scene.terms(node)
        if len(branches) > 1:  # a fork: its branches and their sum
            record["branches"] = [self.link_id((branch.consumer, branch.position)) for branch in branches]
            terms = [branch.term for branch in branches]
            if not isinstance(gradient, np.ndarray):
                shown = " + ".join(sum_texts(terms, gradient, DIGITS))
                record["sum"] = f"d{self.root_name}/d{self.names[node]} = {shown} = {format_number(gradient, DIGITS)}"
        lines = self._explain(node)
        if lines:
            record["explain"] = lines
        return record

    def _explain(self, node: Node) -> list[str]:
        """The lines `explain` writes for a node: the names its equation uses, defined, then the equation."""
        if self.explanation is None:
            return []
        try:
            step = self.explanation.step(node)
        except KeyError:
            return []
        used = [step.name]
        for term in step.terms:
            used += [term.operands.get("out", ""), *term.operands.values()]
        definitions = []
        for name in dict.fromkeys(used):
            line = self.forward_lines.get(name)
            if line is None:
                continue
            value = summarize(line.node.data, EXPLAIN_DIGITS)
            shown = f"{line.name} = " + (f"{line.expression} = " if line.expression is not None else "") + value
            definitions.append(visible(shown))
        return definitions + [""] + [visible(line) for line in self.explanation.step_lines(step)]

    def link_id(self, link: Link) -> int:
        found = self.link_ids.get(link)
        if found is None:
            found = self.link_ids[link] = len(self.links)
            self.links.append({})
            self.links[found] = self._link(link)
        return found

    def _link(self, link: Link) -> dict[str, Any]:
        consumer, position = link
        value = consumer.parents[position]
        record: dict[str, Any] = {"input": self.node_id(value), "consumer": self.node_id(consumer)}
        if not self.backward:
            return record
        names = self.writer.written
        out, x = visible(names[consumer]), visible(names[value])
        adjoint = f"d{self.root_name}/d{self.names[consumer]}"
        if consumer in self.scene.folded:
            record["formula"] = f"{adjoint} taken apart by {consumer.op.name}, for {x}"
        elif gives_whole_term(consumer, position):
            record["formula"] = visible(f"term = {local_formula(consumer, position, names, upstream=adjoint)}")
        else:
            record["formula"] = visible(f"∂{out}/∂{x} = {local_formula(consumer, position, names)}")
            record["rule"] = f"term = {adjoint} · ∂{out}/∂{x}"
            local = local_value(consumer, position)
            if local is not None:
                record["local"] = array_text(local)
        term = self.scene.term(link)
        if term is not None:
            record["term"] = array_text(term)
        return record

    # --- one view: a drawing, its shapes and lines ---
    def _view(self, writer: DotWriter, svg: str) -> dict[str, Any]:
        scene, ids = writer.scene, writer.ids
        moments = moments_of(scene, writer.names, writer.digits) if self.backward else []
        sent_at = moments[0].sent_at if moments else {}
        folded: dict[Node, list[Node]] = {}
        for node, into in scene.folded_into.items():
            folded.setdefault(into, []).append(node)
        inside: dict[Box, list[Node]] = {}
        for node in scene.annotated.listing:
            box = scene.box_of.get(node.stage)
            if box is not None:
                inside.setdefault(box, []).append(node)
        units: dict[str, dict[str, Any]] = {}
        for unit in [*scene.nodes, *scene.proxies, *scene.boxes]:
            if unit in scene.floating:
                continue  # drawn in the table of shared inputs
            members = inside.get(unit, []) if isinstance(unit, Box) else folded.get(source(unit), [])
            units[ids[unit]] = self._unit(scene, unit, sent_at, members)
        if scene.floating:  # `DotWriter._shared_inputs`: one table of the inputs every stage shows a copy of
            units["shared"] = {"shared": [self.node_id(node) for node in scene.nodes if node in scene.floating]}
        edges = []
        for edge in scene.edges:
            links = [self.link_id(link) for link in edge.branches]
            steps = sorted({sent_at[link] for link in edge.branches if link in sent_at})
            edges.append([ids[edge.tail], ids[edge.head], links, steps])
        steps = [[visible(moment.caption), ids.get(moment.current) if moment.current is not None else None]
                 for moment in moments]
        return {"svg": svg, "units": units, "edges": edges, "steps": steps, "opened": None}

    def _unit(self, scene: Scene, unit: Unit, sent_at: dict[Link, int], members: list[Node]) -> dict[str, Any]:
        """A shape: the node it shows (or, for a box, the nodes inside), with what the panel says of it."""
        if isinstance(unit, Box):
            return {"box": visible(unit.title), "path": [visible(name) for name in unit.path], "size": unit.nodes,
                    "repeats": unit.repeats, "members": [self.node_id(node) for node in members], "open": None}
        node = source(unit)
        record: dict[str, Any] = {"node": self.node_id(node)}
        if isinstance(unit, Proxy):
            record["copy"] = visible(" / ".join(unit.stage)) or "outside any stage"
            links = [link for link in unit.branches if scene.term(link) is not None]
            if links:
                terms = [scene.term(link) for link in links]
                record["adds"] = array_text(sum(terms[1:], terms[0]))
                record["done"] = max((sent_at.get(link, 0) for link in links), default=0)
        elif self.backward:
            links = [(branch.consumer, branch.position) for branch in scene.terms(node)]
            record["done"] = max((sent_at.get(link, 0) for link in links), default=0)
        if members:  # folded plumbing drawn in this node
            record["members"] = [self.node_id(member) for member in members]
        return record


def _svg(drawing: Any, timeout: float | None, required: bool = True) -> str | None:
    """A drawing as SVG text for the page; None, unless ``required``, when dot could not lay it out."""
    try:
        svg = pipe(drawing, "svg", timeout=timeout).decode("utf-8")
    except GraphvizError:
        if required:
            raise
        return None
    svg = svg[svg.index("<svg"):]  # no XML prologue or DOCTYPE
    svg = re.sub(r"<!--.*?-->\n?", "", svg, flags=re.DOTALL)  # dot's comments repeat each shape's id
    return re.sub(r'\sxlink:title="[^"]*"', "", svg)  # the page's panel says more than a tooltip would


def _asset(name: str) -> str:
    return resources.files("autograd.view").joinpath(name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """Data as JSON that is safe inside an HTML script element, and that a JSON parser reads back unchanged.

    In a script element HTML looks only for ``</`` (the end tag) and ``<!--`` (which changes how it looks
    for the end tag): every ``</`` is written ``<\\/`` and every ``<!`` as ``\\u003c!``, JSON escapes of the same
    characters. Lone surrogates, which UTF-8 cannot encode, are escaped too."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("</", "<\\/").replace("<!", "\\u003c!")
    return re.sub("[\ud800-\udfff]", lambda match: f"\\u{ord(match[0]):04x}", text)


def _document(data: dict[str, Any]) -> str:
    script, style = _asset("page.js"), _asset("page.css")
    assert "</" not in script and "</" not in style  # our own assets: nothing in them ends their element
    title = html.escape(f"Backward graph of {data['root']}" if data["backward"] else f"Graph of {data['root']}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header id="bar">
  <input id="search" type="search" placeholder="find a node or stage" aria-label="find a node or stage">
  <span id="found"></span>
  <span id="stepping"><input id="slider" type="range" min="0" max="0" value="0" aria-label="step of the reverse pass">
  <span id="caption"></span></span>
  <button id="close" type="button" hidden>close the box</button>
  <button id="zoom" type="button">fit the whole drawing</button>
</header>
<main>
  <div id="drawing" tabindex="0"></div>
  <aside id="panel"><div id="info"><p class="hint">Hover a node or an edge; click a node.</p></div>
  <div id="detail"></div></aside>
</main>
<script type="application/json" id="page-data">{script_json(data)}</script>
<script>{script}</script>
</body>
</html>
"""
