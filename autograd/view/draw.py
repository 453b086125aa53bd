"""Pictures of a graph: values going forward, gradients coming back along every edge, forks adding them up.

One entry point, `draw(root, view, ...)`, returns a `graphviz.Digraph`: it shows itself in Jupyter, gives its
DOT text as ``.source`` and saves it with ``.save(path)``; only turning it into pixels needs Graphviz's
``dot`` program, through `render` (PNG, SVG or PDF, chosen by the file suffix).

- ``view="forward"``: each node as a hand derivation writes it, ``h = o * tanh(c) = 0.42`` (for a tensor:
  its shape, and its values when there are at most four, else their range and mean).
- ``view="backward"``: adds dL/d node to each node, and to each edge the gradient term it carries back, in
  red, over the local derivative that produced it (``× 0.42`` for scalars, the primitive table's formula
  for tensors): term = dL/d consumer × local derivative. A fork (a node feeding several others, including
  ``a * a``) is drawn in amber and shows its sum, ``dL/dc = 0.31 + 0.12 = 0.43``. In SVG, hovering over an
  edge shows the whole chain-rule step with symbols.

Stages become clusters; ``collapse``, ``keep`` and ``roll_up`` draw them as boxes, and ``max_nodes`` refuses
drawings that would still be too large (see `autograd.view.scene`). `autograd.view.frames.step_through` draws the
reverse pass one step at a time from the same scene.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from autograd.core import Node
from autograd.files import write_atomically
from autograd.view.notation import (
    expression,
    format_number,
    format_sum,
    gives_whole_term,
    is_constant,
    is_number,
    local_derivative,
    local_formula,
)
from autograd.view.scene import (
    Box,
    Edge,
    GraphTooLargeError,
    Link,
    Proxy,
    Scene,
    StageFilter,
    StagePath,
    Unit,
    View,
    common_stage,
    place,
    source,
)

__all__ = ["FORMATS", "DotWriter", "GraphTooLargeError", "GraphvizNotFoundError", "Progress", "brief",
           "draw", "mimebundle", "pipe", "render"]

INLINE_MAX_NODES = 150  # Jupyter shows larger graphs as text: a drawing that size is better asked for
MAX_SUM_TERMS = 4  # a fork with more branches shows "Σ n branches" instead of writing out the sum
MAX_EXPRESSION = 32  # characters of an expression or formula before it is cut short
TINY = 4  # arrays with at most this many elements are written out in full

DOT_MISSING = ("Graphviz's `dot` program is needed to render a drawing, and it is not on PATH. Install it "
               "with `sudo apt-get install graphviz` (macOS: `brew install graphviz`), or run `bash .ci/setup` "
               "in this project. The DOT source needs no `dot`: drawing.save('graph.gv') or drawing.source.")

# A restrained palette: ink for values, one red for gradients, amber for forks, blue for parameters.
FONT = "Helvetica,Arial,sans-serif"
INK = "#24292f"
MUTED = "#6e7781"
LINE = "#8c959f"
BORDER = "#57606a"
PAPER = "#ffffff"
PARAMETER_FILL, PARAMETER_BORDER = "#eaf1fb", "#4a78b0"
FORK_FILL, FORK_BORDER = "#fff3dc", "#c27c0e"
GRADIENT = "#b3412f"
PENDING = "#d5dae0"  # step-through: an edge whose gradient has not come back yet
CONSTANT_LINE = "#c4cad0"
CLUSTER_FILLS = ("#f6f8fa", "#edf0f3")  # alternating with depth, so nested stages stay apart
CLUSTER_BORDER = "#d0d7de"
BACKWARD_FILL, BACKWARD_BORDER = "#fbf1ef", "#e3bfb8"  # the stage a create_graph=True pass records into
BOX_FILL = "#e4e9ef"

LEGEND = {
    "forward": "amber: a fork (a value used more than once) · blue: an input that gets a gradient",
    "backward": "red: gradients · on an edge: × local derivative = the term it sends back · amber: a fork, "
                "the sum of its branches",
}
SHALLOW = 12  # ranks: graphs this shallow are drawn left to right whatever their breadth
CAPTION_SIZE = 12
CHARACTER_WIDTH = 0.62  # of the font size: a little above Helvetica's average, so an estimate is never short


class GraphvizNotFoundError(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program, which is not installed."""


@dataclass
class Progress:
    """A moment of the reverse pass, for a step-through frame: the edges sent back by then, and the shape whose
    step it is (None before the first)."""

    step: int
    sent_at: dict[Link, int]  # the step at which each edge sends its gradient term back
    current: Unit | None
    caption: str

    def sent(self, branch: Link) -> bool:
        return self.sent_at.get(branch, self.step + 1) <= self.step

    def fresh(self, branch: Link) -> bool:
        return self.sent_at.get(branch) == self.step


# --- numbers ------------------------------------------------------------------------------------------------

def brief(raw: Any, digits: int = 3, mean: bool = True) -> str:
    """A number; a tiny array in full; a larger one as its range and mean: ``-0.04 … 0.88, mean 0.4``
    (``all 0`` when its elements print alike).

    Numbers have ``digits`` significant digits, written as `autograd.view.explain` writes them.
    """
    if not isinstance(raw, np.ndarray):
        return format_number(raw, digits)
    if raw.size == 1:
        return format_number(raw.item(), digits)
    if raw.size == 0:
        return "empty"
    if raw.size <= TINY:
        text = np.array2string(raw, separator=", ", formatter={"all": lambda v: format_number(v, digits)})
        return " ".join(text.split())
    low, high = format_number(raw.min(), digits), format_number(raw.max(), digits)
    if low == high:
        return f"all {low}"
    return f"{low} … {high}, mean {format_number(raw.mean(), digits)}" if mean else f"{low} … {high}"


def _sum_texts(terms: list[Any], total: Any, digits: int) -> list[str]:
    """The terms of a fork's sum as written: with the digits they need to add up, by hand, to the total as
    written (`autograd.view.explain.format_sum`), a negative one after the first in brackets."""
    texts, _ = format_sum([float(term) for term in terms], float(total), digits)
    return [text if i == 0 or not text.startswith("-") else f"({text})" for i, text in enumerate(texts)]


# --- the scene as DOT ---------------------------------------------------------------------------------------

class DotWriter:
    """Writes one scene as DOT (the labels, colours and clusters), complete or at any step of the pass."""

    def __init__(self, scene: Scene, precision: int, rankdir: str) -> None:
        if rankdir not in ("auto", "LR", "RL", "TB", "BT"):
            raise ValueError(f"draw: rankdir must be 'auto', 'LR', 'RL', 'TB' or 'BT', got {rankdir!r}")
        if isinstance(precision, bool) or not isinstance(precision, int) or not 1 <= precision <= 15:
            raise ValueError(f"draw: precision is the number of significant digits, 1 to 15; got {precision!r}")
        self.scene, self.digits = scene, precision
        self.rankdir = _direction(scene) if rankdir == "auto" else rankdir
        self.spine = set(scene.spine)
        self.names = drawn_names(scene, precision)
        self.cluster_paths: dict[StagePath, tuple[str, ...]] = {}
        self.root_name = scene.names[scene.root]
        self.ids: dict[Unit, str] = {node: f"n{i}" for i, node in enumerate(scene.nodes)}
        self.ids.update({box: f"b{i}" for i, box in enumerate(scene.boxes)})
        self.ids.update({proxy: f"p{i}" for i, proxy in enumerate(scene.proxies)})

    def digraph(self, caption: str | None = None, progress: Progress | None = None,
                caption_width: int | None = None) -> graphviz.Digraph:
        """The drawing, complete or at one moment of the reverse pass; see `_caption` for ``caption_width``."""
        across = self.rankdir in ("TB", "BT")  # ranks are rows: labels are wide, so rows can be close
        graph = graphviz.Digraph(
            graph_attr={"rankdir": self.rankdir, "newrank": "true", "fontname": FONT, "fontsize": "10",
                        "bgcolor": PAPER, "pad": "0.15", "nodesep": "0.15" if across else "0.12",
                        "ranksep": "0.12" if across else "0.25", "fontcolor": MUTED, "outputorder": "edgesfirst"},
            node_attr={"fontname": FONT, "fontsize": "10", "fontcolor": INK, "shape": "box",
                       "style": "rounded,filled", "fillcolor": PAPER, "color": BORDER, "penwidth": "1.1",
                       "margin": "0.07,0.03"},
            edge_attr={"fontname": FONT, "fontsize": "9", "color": LINE, "arrowsize": "0.6",
                       "penwidth": "1.0"})
        graph.attr(label=self._caption(caption, caption_width), labelloc="t", labeljust="l")
        self.progress, self.clusters = progress, 0
        self._clusters(graph)
        for edge in self.scene.edges:
            self._edge(graph, edge)
        for box in self.scene.recurrent:
            graph.edge(self.ids[box], self.ids[box], style="dashed", color=LINE)
        return graph

    def _caption(self, caption: str | None, width: int | None = None) -> str:
        """The title or a frame's caption, over the legend. With ``width`` (characters) the caption takes the
        room of that many, so the frames of a step-through, whose captions differ, keep one layout."""
        legend = f"<FONT POINT-SIZE='8' COLOR='{MUTED}'>{_escape(LEGEND[self.scene.view])}</FONT>"
        if not caption:
            return _html(legend + "<BR ALIGN='LEFT'/>")
        text = f"<FONT POINT-SIZE='{CAPTION_SIZE}' COLOR='{INK}'>{_escape(caption)}</FONT>"
        if width is None:
            return _html(text + "<BR ALIGN='LEFT'/>" + legend + "<BR ALIGN='LEFT'/>")
        points = math.ceil(width * CAPTION_SIZE * CHARACTER_WIDTH)
        return _html(f"<TABLE BORDER='0' CELLPADDING='0' CELLSPACING='0'><TR><TD WIDTH='{points}' ALIGN='LEFT'>"
                     f"{text}</TD></TR><TR><TD ALIGN='LEFT'>{legend}</TD></TR></TABLE>")

    # --- clusters: one per stage, nested ---
    def _clusters(self, graph: graphviz.Digraph) -> None:
        scene = self.scene
        members: dict[tuple[str, ...], list[Unit]] = {}
        for unit in [*scene.nodes, *scene.proxies, *scene.boxes]:
            if unit not in scene.floating:
                members.setdefault(self._cluster_path(place(unit)), []).append(unit)
        children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for path in list(members):
            while path:  # every enclosing cluster is drawn too, even one holding no shape of its own
                parent = path[:-1]
                siblings = children.setdefault(parent, [])
                if path in siblings:
                    break
                siblings.append(path)
                path = parent
        self._cluster(graph, (), members, children)
        if scene.floating:
            self._shared_inputs(graph, [node for node in scene.nodes if node in scene.floating])

    def _shared_inputs(self, graph: graphviz.Digraph, inputs: list[Node]) -> None:
        """The inputs that every stage using them shows a copy of, as one table with their totals."""
        note = "inputs shared by several stages, each of which shows its share: the totals"
        rows = [f"<TR><TD COLSPAN='3' ALIGN='LEFT'><FONT POINT-SIZE='8' COLOR='{MUTED}'>{note}</FONT></TD></TR>"]
        for node in inputs:
            cells = [f"<B>{_escape(self.names[node])}</B>", _escape(brief(node.data, self.digits))]
            if self.scene.view == "backward":
                cells.append(self._gradient_row(node, PARAMETER_FILL))
            rows.append("<TR>" + "".join(f"<TD ALIGN='LEFT'>{cell}</TD>" for cell in cells) + "</TR>")
        table = (f"<TABLE BORDER='1' CELLBORDER='0' CELLSPACING='0' CELLPADDING='2' STYLE='ROUNDED' "
                 f"BGCOLOR='{PARAMETER_FILL}' COLOR='{PARAMETER_BORDER}'>{''.join(rows)}</TABLE>")
        graph.node("shared", _html(table), shape="plain", style="")

    def _cluster_path(self, stage: StagePath) -> tuple[str, ...]:
        """The labels of the nested clusters a stage is drawn in.

        Inside a stage of a numbered run (t=1, t=2, ...) the stages are not nested: each is a cluster of its
        own, labelled with its path, ``t=2 · layer 0 · forget gate``. The steps of a loop overlap along the
        flow (step t+1 starts from its input while step t is still computing), and a box around each step, or
        around a large part of it, would push every step beside the one before: a staircase, mostly empty.
        """
        cached = self.cluster_paths.get(stage)
        if cached is None:
            labels = list(stage)
            for depth in range(1, len(stage)):
                if self.scene.in_numbered_run(stage[:depth]):
                    labels = [*stage[:depth - 1], " · ".join(stage[depth - 1:])]
                    break
            cached = self.cluster_paths[stage] = tuple(labels)
        return cached

    def _cluster(self, graph: graphviz.Digraph, path: tuple[str, ...], members: dict[tuple[str, ...], list[Unit]],
                 children: dict[tuple[str, ...], list[tuple[str, ...]]]) -> None:
        for unit in members.get(path, ()):
            if isinstance(unit, Box):
                self._box(graph, unit)
            else:
                self._node(graph, unit)
        for child in children.get(path, ()):
            fill, border = _cluster_colours(child)
            self.clusters += 1
            with graph.subgraph(name=f"cluster_{self.clusters}") as cluster:
                cluster.attr(label=child[-1], style="rounded,filled", fillcolor=fill, color=border,
                             fontcolor=MUTED, fontsize="9", labeljust="l", margin="6")
                self._cluster(cluster, child, members, children)

    # --- shapes ---
    def _box(self, graph: graphviz.Digraph, box: Box) -> None:
        if box.repeats > 1:
            title = f"<B>{_escape(box.title)}</B>  ×{box.repeats}"
            count, attrs = f"{box.nodes:,} nodes each", {"shape": "box3d", "style": "filled"}
        else:
            title = f"<B>{_escape(box.title)}</B>"
            count, attrs = f"{box.nodes:,} nodes", {"style": "rounded,filled,dashed"}
        if self.progress is not None and self.progress.current is box:
            attrs |= {"color": GRADIENT, "penwidth": "2.6"}
        rows = [title, f"<FONT POINT-SIZE='8' COLOR='{MUTED}'>{count}</FONT>"]
        if box.shared and self.scene.view == "backward":
            rows += [self._gradient_row(copy, BOX_FILL) for copy in box.shared.values()]
        elif box.shared:
            names = [self.names[leaf] for leaf in box.shared]
            rows += [f"<FONT POINT-SIZE='8' COLOR='{FORK_BORDER}'>uses shared "
                     + _escape(", ".join(names[i:i + 4])) + "</FONT>" for i in range(0, len(names), 4)]
        if box in self.spine:
            attrs["group"] = "spine"
        label = "<BR ALIGN='LEFT'/>".join(rows) + "<BR ALIGN='LEFT'/>"
        graph.node(self.ids[box], _html(label), fillcolor=BOX_FILL, **attrs)

    def _node(self, graph: graphviz.Digraph, unit: Node | Proxy) -> None:
        """A node, or a copy of a shared input: name and expression, value, and in the backward view dL/d."""
        proxy = isinstance(unit, Proxy)
        node = unit.original if proxy else unit
        name = self.names[node]
        data = node.data
        if is_constant(node):
            text = name if np.size(data) == 1 else f"{name} {_shape(data)}"
            graph.node(self.ids[unit], _escape(text), shape="plaintext", style="", fontcolor=MUTED,
                       fontsize="9", margin="0.02", tooltip=_tooltip(f"constant {brief(data, 6)}"))
            return
        fork = self.scene.consumers[node] > 1
        if fork:
            fill, border = FORK_FILL, FORK_BORDER
        elif node.op is None and node.requires_grad:
            fill, border = PARAMETER_FILL, PARAMETER_BORDER
        else:
            fill, border = PAPER, BORDER
        heading = f"<B>{_escape(name)}</B>"
        if node.op is not None:
            heading += _escape(_shorten(f" = {expression(node, self.names)}"))
        if isinstance(data, np.ndarray):  # name = expression, shape; the values below
            heading += f"  <FONT POINT-SIZE='8' COLOR='{MUTED}'>{_escape(_shape(data))}</FONT>"
            rows = [heading, _escape(brief(data, self.digits))]
        else:  # a scalar as a hand derivation writes it: name = expression = value
            rows = [heading + _escape(f" = {brief(data, self.digits)}")]
        if proxy:
            rows[0] += f"  <FONT POINT-SIZE='8' COLOR='{FORK_BORDER}'>copy</FONT>"
        if self.scene.view == "forward" and fork and not proxy:
            rows.append(f"<FONT POINT-SIZE='8' COLOR='{FORK_BORDER}'>fork: {self.scene.consumers[node]} uses"
                        "</FONT>")
        if self.scene.view == "backward":
            gradient = self._gradient_row(unit, fill)
            # a copy of a scalar says what its stage adds, "dL/dw += 0.01": its value is on its node
            rows = [gradient] if proxy and not isinstance(data, np.ndarray) and gradient else [*rows, gradient]
        attrs = {"fillcolor": fill, "color": border}
        if fork:
            attrs["penwidth"] = "1.6"
        if proxy:
            attrs["style"] = "rounded,filled,dashed"
        if node is self.scene.root:
            attrs["penwidth"] = "2.2"
        if self.progress is not None and self.progress.current is unit:
            attrs |= {"color": GRADIENT, "penwidth": "2.8"}
        if unit in self.spine:
            attrs["group"] = "spine"  # Graphviz draws a group in a straight line
        label = "<BR ALIGN='LEFT'/>".join(row for row in rows if row) + "<BR ALIGN='LEFT'/>"
        graph.node(self.ids[unit], _html(label), tooltip=self._node_tooltip(unit), **attrs)

    def _gradient_row(self, unit: Node | Proxy, background: str) -> str:
        """``dL/dc = 0.31 + 0.12 = 0.43``, or for a copy of a shared input what its stage adds, ``+= 0.01``.

        In a step-through frame the terms not yet sent back are written in the background colour: they keep
        their place, so every frame has the same layout.
        """
        scene = self.scene
        if isinstance(unit, Proxy):
            node, relation = unit.original, "+="
            branches = [(branch, scene.term(branch)) for branch in unit.branches]
            branches = [(branch, term) for branch, term in branches if term is not None]
            total = sum((term for _, term in branches[1:]), branches[0][1]) if branches else None
        else:
            node, relation = unit, "="
            total = scene.gradient(node)
            branches = scene.terms(node)
        if total is None:
            return ""
        lhs = f"d{self.root_name}/d{self.names[node]} {relation} "
        progress = self.progress
        known = len(branches) if progress is None else sum(progress.sent(branch) for branch, _ in branches)
        if not branches:  # the root: the seed of the pass
            parts = [(lhs + brief(total, self.digits), True)]
        elif len(branches) == 1:
            parts = [(lhs, True), (brief(total, self.digits), known == 1)]
        elif len(branches) <= MAX_SUM_TERMS and not isinstance(total, np.ndarray):
            texts = _sum_texts([term for _, term in branches], total, self.digits)
            parts = [(lhs, True)] + [(("" if i == 0 else " + ") + text, i < known) for i, text in enumerate(texts)]
            parts.append((" = " + format_number(total, self.digits), known == len(branches)))
        elif relation == "+=":  # a stage's share of a shared input's gradient: the sum is what matters
            parts = [(lhs, True), (brief(total, self.digits), known == len(branches))]
        else:
            parts = [(lhs + f"Σ {len(branches)} branches", True),
                     (" = " + brief(total, self.digits), known == len(branches))]
        return _fragments(parts, GRADIENT, background)

    # --- lines ---
    def _edge(self, graph: graphviz.Digraph, edge: Edge) -> None:
        scene, progress = self.scene, self.progress
        tail, head = self.ids[edge.tail], self.ids[edge.head]
        node = source(edge.tail)
        if node is not None and is_constant(node):  # no gradient goes there: a plain line
            graph.edge(tail, head, color=CONSTANT_LINE, dir="none")
            return
        attrs = {"color": FORK_BORDER} if node is not None and scene.consumers[node] > 1 else {}
        if scene.view == "forward":
            if len(edge.branches) > 1:
                attrs |= {"label": f"{len(edge.branches)} edges", "fontcolor": MUTED}
            graph.edge(tail, head, **attrs)
            return
        attrs["dir"] = "back"  # the gradient flows from consumer to input: the arrow points at the input
        terms = [term for term in map(scene.term, edge.branches) if term is not None]
        if not terms:  # into an input that needs no gradient: nothing comes back
            graph.edge(tail, head, color=CONSTANT_LINE, dir="none")
            return
        total = sum(terms[1:], terms[0])
        sent = progress is None or all(progress.sent(b) for b in edge.branches if scene.term(b) is not None)
        if len(edge.branches) == 1:
            local, tooltip = self._local(*edge.branches[0])
        else:
            local = f"Σ {len(terms)} edges ="
            tooltip = f"the terms of {len(terms)} edges, added up: {brief(total, 6)}"
        ends = [self._cluster_path(place(edge.tail)), self._cluster_path(place(edge.head))]
        background = _cluster_colours(common_stage(ends))[0]
        breaks = "<BR/>" if self.rankdir in ("LR", "RL") else " "  # narrow along the flow, short across it
        label = (f"<FONT COLOR='{MUTED}'>{_escape(local)}</FONT>{breaks}"
                 + _fragments([(brief(total, self.digits, mean=False), sent)], GRADIENT, background))
        attrs |= {"label": _html(label), "tooltip": _tooltip(tooltip), "labeltooltip": _tooltip(tooltip)}
        if progress is not None:
            if any(progress.fresh(b) for b in edge.branches):
                attrs |= {"color": GRADIENT, "penwidth": "2.4"}
            elif not sent:
                attrs["color"] = PENDING
        graph.edge(tail, head, **attrs)

    def _local(self, consumer: Node, position: int) -> tuple[str, str]:
        """The local derivative of one edge as the label shows it (``× 0.42 =``), and the chain-rule step
        written out for the tooltip: ``dL/dy · ∂y/∂h = 0.5 · 0.42 = 0.21, where ∂y/∂h = 1 - tanh(h)^2``."""
        names = self.names
        out, x = names[consumer], names[consumer.parents[position]]
        adjoint = f"d{self.root_name}/d{out}"
        formula = local_formula(consumer, position, names, upstream=adjoint)
        value = local_derivative(consumer, position)
        upstream, term = self.scene.gradient(consumer), self.scene.term((consumer, position))
        step = f"{adjoint} · ∂{out}/∂{x} = "
        if gives_whole_term(consumer, position):  # the formula is the term itself: x^T @ dL/dz
            return f"{_shorten(formula)}:", f"{formula} = {brief(term, 6)}"
        if value is None:
            label = f"∂ {_shorten(formula)}:"
            step += f"{brief(term, 6)}, where ∂{out}/∂{x} = {formula} (applied to {brief(upstream, 6)})"
        else:
            label = f"× {format_number(value, self.digits)} ="
            step += f"{brief(upstream, 6)} · {format_number(value, 6)} = {brief(term, 6)}"
            if not is_number(formula):
                step += f", where ∂{out}/∂{x} = {formula}"
        return label, step

    def _node_tooltip(self, unit: Node | Proxy) -> str:
        node = unit.original if isinstance(unit, Proxy) else unit
        text = self.names[node]
        if node.op is not None:
            text += f" = {expression(node, self.names)}"
        text += f" = {brief(node.data, 6)}"
        if node.stage:
            text += f"  [{' / '.join(node.stage)}]"
        return _tooltip(text)


def _direction(scene: Scene) -> str:
    """"LR" (inputs on the left) for a graph that is shallow or broad, else "TB" (inputs on top).

    Labels are wide and short, so a deep graph drawn left to right becomes a strip many times wider than
    tall; drawn top to bottom, the steps of a loop stack up and the parallel parts sit side by side.
    """
    depth, breadth = scene.shape()
    return "LR" if depth <= SHALLOW or depth <= 2.5 * breadth else "TB"


def drawn_names(scene: Scene, digits: int) -> dict[Node, str]:
    """The scene's node names, with scalar constants written to the drawing's precision."""
    names = dict(scene.names)
    for node in scene.nodes:
        for parent in node.parents:
            if is_constant(parent) and np.size(parent.data) == 1:
                names[parent] = format_number(np.asarray(parent.data).item(), digits)
    return names


def _cluster_colours(path: tuple[str, ...]) -> tuple[str, str]:
    if not path:
        return PAPER, CLUSTER_BORDER
    if any("backward" in label.split(" · ") for label in path):
        return BACKWARD_FILL, BACKWARD_BORDER
    return CLUSTER_FILLS[(len(path) - 1) % len(CLUSTER_FILLS)], CLUSTER_BORDER


def _fragments(parts: list[tuple[str, bool]], colour: str, background: str) -> str:
    """Bold text in pieces, the pieces not yet known drawn in the background colour (keeping their place)."""
    return "".join(f"<FONT COLOR='{colour if shown else background}'><B>{_escape(text)}</B></FONT>"
                   for text, shown in parts)


def _html(label: str) -> str:
    """An HTML-like label for Graphviz (single quotes in the markup above read more easily in Python)."""
    return "<" + label.replace("'", '"') + ">"


def _escape(text: str) -> str:
    # single quotes are escaped too: _html turns the markup's own single quotes into double ones
    return html.escape(text, quote=True)


def _tooltip(text: str) -> str:
    return text.replace("\\", "\\\\")


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_EXPRESSION else text[:MAX_EXPRESSION - 1] + "…"


def _shape(data: np.ndarray) -> str:
    """``2×4``, with the dtype when it is not the default float64."""
    shape = "×".join(map(str, data.shape)) if data.shape else "scalar"
    return shape if data.dtype == np.float64 else f"{shape} {data.dtype}"


# --- the public entry points ------------------------------------------------------------------------------------

def draw(root: Node, view: View = "forward", *, collapse: StageFilter = None, keep: StageFilter = None,
         roll_up: bool = False, repeat_shared: bool = True, max_nodes: int = 2000, rankdir: str = "auto",
         show_constants: bool = True, precision: int = 3, title: str | None = None) -> graphviz.Digraph:
    """Draw the graph under ``root``: the forward values, or (``view="backward"``) the gradients on every edge.

    - ``collapse`` / ``keep`` / ``roll_up`` draw stages as boxes (see `autograd.view.scene`); ``repeat_shared``
      draws an input used by three or more top-level stages again in each of them.
    - ``max_nodes`` refuses larger drawings, with advice on collapsing them (`GraphTooLargeError`).
    - ``rankdir`` is Graphviz's direction: "LR" puts the inputs on the left, "TB" on top; "auto" draws left
      to right unless the graph is much deeper than it is broad.
    - ``show_constants=False`` hides the constants (their values stay in the expressions).
    - ``precision`` is the number of significant digits; ``title`` is written above the drawing.

    Building the drawing does not need Graphviz's ``dot``; rendering it (`render`, or showing it in Jupyter)
    does.
    """
    scene = Scene(root, view, collapse=collapse, keep=keep, roll_up=roll_up, repeat_shared=repeat_shared,
                  show_constants=show_constants, max_nodes=max_nodes)
    return DotWriter(scene, precision, rankdir).digraph(title)


FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".gv": "dot", ".dot": "dot"}


def render(drawing: graphviz.Digraph, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write a drawing to ``path`` as PNG, SVG or PDF (from the suffix, or ``format``); ``.gv`` is DOT text.

    Parent directories are created. The file appears complete or not at all: it is written under a
    temporary name and renamed into place.
    """
    path = Path(path)
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt not in set(FORMATS.values()):
        raise ValueError(f"render: cannot tell the format of {str(path)!r}; use a .png, .svg, .pdf or .gv "
                         "suffix, or pass format='png' / 'svg' / 'pdf' / 'dot'")
    data = drawing.source.encode() if fmt == "dot" else pipe(drawing, fmt)
    return write_atomically(path, lambda file: file.write(data))


def pipe(drawing: graphviz.Digraph, fmt: str) -> bytes:
    """Run ``dot`` on a drawing and return the bytes of the image, with a clear error if it is missing."""
    try:
        return drawing.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFoundError(DOT_MISSING) from None


def mimebundle(node: Node, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """What Jupyter shows for a Value or Tensor: the forward drawing of its graph, or text when that is not
    possible (a large graph, no ``dot``) or not wanted (a console asks for text only)."""
    text = {"text/plain": repr(node)}
    wanted = "image/svg+xml"
    if (include is not None and wanted not in include) or (exclude is not None and wanted in exclude):
        return text
    if _larger_than(node, INLINE_MAX_NODES):
        return text
    try:
        svg = pipe(draw(node), "svg").decode()
    except (GraphvizNotFoundError, graphviz.CalledProcessError):
        return text
    return {wanted: svg, **text}


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
