"""Pictures of a graph: values going forward, gradients coming back along every edge, forks adding them up.

One entry point, `draw(root, view, ...)`, returns a `graphviz.Digraph`: it shows itself in Jupyter, gives its
DOT text as ``.source`` and saves it with ``.save(path)``; only turning it into pixels needs Graphviz's
``dot`` program, through `render` (PNG, SVG or PDF, chosen by the file suffix).

- ``view="forward"``: each node with its name, how it was computed (``h = tanh(z)``) and its value (for a
  tensor: shape, dtype and a summary).
- ``view="backward"``: adds dL/d node to each node, and to each edge the local derivative from the primitive
  table with the gradient term that flows back along it. A fork (a node feeding several stages, including
  ``a * a``) is drawn in amber and shows its sum, ``dL/dc = 0.3100 + 0.1200 = 0.4300``.

Stages (``with stage("t=2"):``) become nested clusters. Large graphs are tamed by drawing stages as boxes:

- ``collapse="t=*"`` draws every stage whose name matches as one box with its edges in and out; a pattern
  with a slash matches the whole path (``"t=*/forget gate"``); a list takes several patterns; a function
  receives the stage path (a tuple of names) and says yes or no. ``keep="t=3"`` exempts stages (with
  everything inside them) from collapsing and rolling up: ``collapse="t=*", keep="t=3"`` is all timesteps but
  one.
- ``roll_up=True`` draws a run of sibling stages whose names differ only in their numbers and whose contents
  have the same structure (``t=1`` ... ``t=20``) as a single box ``t=1 … t=20 ×20``.
- ``max_nodes`` refuses graphs that would still be too large, with a message that says how to collapse them.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import graphviz
import numpy as np

from autograd.core import Backprop, Node, backpropagate
from autograd.explain import (
    array_stats,
    expression,
    format_number,
    is_constant,
    local_derivative,
    local_formula,
    names_in,
    reading_order,
    shape_text,
    summarize,
)

View = Literal["forward", "backward"]
StagePath = tuple[str, ...]
StageFilter = str | Iterable[str] | Callable[[StagePath], bool] | None

INLINE_MAX_NODES = 150  # Jupyter shows larger graphs as text: a drawing that size is better asked for
MAX_SUM_TERMS = 4  # a fork with more branches shows "Σ n branches" instead of writing out the sum
MAX_EXPRESSION = 48  # characters of "name = expression" before it is cut short

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
CLUSTER_FILLS = ("#f6f8fa", "#edf0f3")  # alternating with depth, so nested stages stay apart
CLUSTER_BORDER = "#d0d7de"
BACKWARD_FILL, BACKWARD_BORDER = "#fbf1ef", "#e3bfb8"  # the stage a create_graph=True pass records into
BOX_FILL = "#e4e9ef"


class GraphTooLargeError(ValueError):
    """A drawing would have more than ``max_nodes`` boxes; the message says how to collapse it."""


class GraphvizNotFoundError(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program, which is not installed."""


# --- what to draw: nodes, boxes for collapsed stages, and the edges between them ----------------------------

@dataclass(eq=False)
class Box:
    """A collapsed stage, or a rolled-up run of repeated sibling stages, drawn as one box."""

    title: str
    parent: StagePath  # the stage the box sits in
    top: StagePath  # the top-level stage it belongs to
    nodes: int  # nodes inside (per stage, for a run)
    repeats: int = 1


@dataclass(eq=False)
class Proxy:
    """An input shared by several top-level stages (a weight every timestep uses), drawn again in each.

    The input's own node shows the total gradient; a proxy shows what its stage adds (``dL/dw += …``). This
    keeps every stage readable on its own, and spares Graphviz edges that would cross the whole picture.
    """

    leaf: Node
    stage: StagePath  # the innermost stage holding all of its uses in that top-level stage
    branches: list[tuple[Node, int]] = field(default_factory=list)


Unit = Node | Box | Proxy  # one shape in the picture


@dataclass(eq=False)
class Edge:
    """One line in the picture, standing for one graph edge or, into or out of a box, several."""

    tail: Unit
    head: Unit
    branches: list[tuple[Node, int]] = field(default_factory=list)  # the (consumer, input position) edges


@dataclass
class Progress:
    """How far a reverse pass has got, for step-through frames: which branch terms have been sent back."""

    sent: set[tuple[Node, int]]
    fresh: set[tuple[Node, int]]  # sent in the step being shown
    current: Unit | None  # the node (or box) being processed
    caption: str


class Scene:
    """Everything a drawing shows, worked out once; `digraph` turns it into DOT, for any step of the pass."""

    def __init__(self, root: Node, view: View = "forward", *, collapse: StageFilter = None,
                 keep: StageFilter = None, roll_up: bool = False, repeat_shared: bool = True,
                 max_nodes: int = 2000, show_constants: bool = True, precision: int = 4,
                 rankdir: str = "LR") -> None:
        if view not in ("forward", "backward"):
            raise ValueError(f"draw: view must be 'forward' or 'backward', got {view!r}")
        if not isinstance(root, Node):
            raise TypeError(f"draw: expected a graph node (Value or Tensor), got {type(root).__name__}")
        self.root, self.view, self.precision, self.rankdir = root, view, precision, rankdir
        order = reading_order(root)
        self.names = names_in(order)

        # One pass over the nodes tallies them per stage; the stage decisions work on that small table.
        tally: Counter[tuple[StagePath, str]] = Counter((node.stage, _kind(node)) for node in order)
        box_of_stage = _plan_stages(tally, _matcher(collapse), _matcher(keep), roll_up)
        self.boxes = list(dict.fromkeys(box for box in box_of_stage.values() if box is not None))

        # One pass over the edges: what is drawn and which lines join it. The uses of inputs (leaves) wait
        # until all are known, to choose between the input's own node, proxies, or hiding it.
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.consumers: Counter[Node] = Counter()  # edges out of each node: more than one is a fork
        self.recurrent: set[Box] = set()  # boxes of rolled-up runs whose stages feed one another
        merged: dict[tuple[Unit, Unit], Edge] = {}
        uses: dict[Node, list[tuple[Unit, Node, int]]] = {}

        def connect(tail: Unit, head: Unit, branch: tuple[Node, int]) -> None:
            if isinstance(tail, Box) or isinstance(head, Box):  # one line per pair, for all its branches
                edge = merged.get((tail, head))
                if edge is None:
                    edge = merged[tail, head] = Edge(tail, head)
                    self.edges.append(edge)
                edge.branches.append(branch)
            else:
                self.edges.append(Edge(tail, head, [branch]))

        for node in order:
            head = box_of_stage.get(node.stage) or node
            if head is node:
                self.nodes.append(node)
            for position, parent in enumerate(node.parents):
                self.consumers[parent] += 1
                tail = box_of_stage.get(parent.stage) or parent
                if tail is head:
                    if isinstance(head, Box) and head.repeats > 1:
                        depth = len(head.parent) + 1  # the stages of the run sit at this depth
                        if parent.stage[:depth] != node.stage[:depth]:
                            self.recurrent.add(head)
                elif tail is parent and parent.op is None:
                    uses.setdefault(parent, []).append((head, node, position))
                else:
                    connect(tail, head, (node, position))

        hidden: set[Node] = set()
        self.proxies: list[Proxy] = []
        for leaf, leaf_uses in uses.items():
            heads = {head for head, _, _ in leaf_uses}
            head = leaf_uses[0][0]
            if (not show_constants and is_constant(leaf)) or (len(heads) == 1 and isinstance(head, Box)):
                hidden.add(leaf)  # a hidden constant, or an input only one box uses: drawn inside it
                continue
            proxy_of: dict[StagePath, Proxy] = {}
            if repeat_shared and len({_top(head) for head in heads} - {()}) > 1:
                groups: dict[StagePath, list[Node]] = {}
                for head in heads:
                    if isinstance(head, Node) and head.stage:
                        groups.setdefault(head.stage[:1], []).append(head)
                for top, consumers in groups.items():
                    proxy_of[top] = Proxy(leaf, _common_stage([c.stage for c in consumers]))
                self.proxies += proxy_of.values()
            for head, node, position in leaf_uses:
                proxy = proxy_of.get(node.stage[:1]) if isinstance(head, Node) else None
                if proxy is not None:
                    proxy.branches.append((node, position))
                connect(proxy or leaf, head, (node, position))
        if hidden:
            self.nodes = [node for node in self.nodes if node not in hidden]

        drawn = len(self.nodes) + len(self.boxes) + len(self.proxies)
        if drawn > max_nodes:
            raise GraphTooLargeError(_advice(tally, drawn, max_nodes))

        self.backprop: Backprop | None = None
        self.term_of: dict[tuple[Node, int], Any] = {}
        if view == "backward":
            self.backprop = backpropagate(root, record_branches=True)
            self.term_of = {(branch.consumer, branch.position): branch.term
                            for branches in self.backprop.branches.values() for branch in branches}
        self.ids: dict[Unit, str] = {node: f"n{i}" for i, node in enumerate(self.nodes)}
        self.ids.update({box: f"s{i}" for i, box in enumerate(self.boxes)})
        self.ids.update({proxy: f"p{i}" for i, proxy in enumerate(self.proxies)})

    # --- DOT ---
    def digraph(self, progress: Progress | None = None, title: str | None = None) -> graphviz.Digraph:
        """The drawing, complete, or as it stands at one step of the reverse pass."""
        graph = graphviz.Digraph(
            graph_attr={"rankdir": self.rankdir, "newrank": "true", "fontname": FONT, "fontsize": "11",
                        "bgcolor": PAPER, "pad": "0.25", "nodesep": "0.28", "ranksep": "0.45",
                        "fontcolor": MUTED},
            node_attr={"fontname": FONT, "fontsize": "11", "fontcolor": INK, "shape": "box",
                       "style": "rounded,filled", "fillcolor": PAPER, "color": BORDER, "penwidth": "1.1",
                       "margin": "0.14,0.07"},
            edge_attr={"fontname": FONT, "fontsize": "10", "color": LINE, "arrowsize": "0.6",
                       "penwidth": "1.0"})
        caption = progress.caption if progress is not None else title
        if caption:
            graph.attr(label=caption, labelloc="t", labeljust="l", fontsize="13", fontcolor=INK)

        members: dict[StagePath, list[Unit]] = {}
        for unit in [*self.nodes, *self.proxies, *self.boxes]:
            members.setdefault(_place(unit), []).append(unit)
        children: dict[StagePath, list[StagePath]] = {}
        for path in list(members):
            while path:  # every enclosing stage is a cluster too, even one holding no node of its own
                parent = path[:-1]
                siblings = children.setdefault(parent, [])
                if path in siblings:
                    break
                siblings.append(path)
                path = parent
        self._cluster(graph, (), members, children, progress)

        for edge in self.edges:
            self._edge(graph, edge, progress)
        for box in self.recurrent:
            graph.edge(self.ids[box], self.ids[box], style="dashed", color=LINE)
        return graph

    def _cluster(self, graph: graphviz.Digraph, path: StagePath, members: dict[StagePath, list[Unit]],
                 children: dict[StagePath, list[StagePath]], progress: Progress | None) -> None:
        for unit in members.get(path, ()):
            if isinstance(unit, Box):
                self._box(graph, unit, progress)
            else:
                self._node(graph, unit, progress)
        for child in children.get(path, ()):
            fill, border = _cluster_colours(child)
            with graph.subgraph(name=f"cluster_{'/'.join(child)}") as cluster:
                cluster.attr(label=child[-1], style="rounded,filled", fillcolor=fill, color=border,
                             fontcolor=MUTED, fontsize="10", labeljust="l", margin="10")
                self._cluster(cluster, child, members, children, progress)

    def _box(self, graph: graphviz.Digraph, box: Box, progress: Progress | None) -> None:
        if box.repeats > 1:
            title = f"<B>{_escape(box.title)}</B>  ×{box.repeats}"
            count, attrs = f"{box.nodes} nodes each", {"shape": "box3d", "style": "filled"}
        else:
            title = f"<B>{_escape(box.title)}</B>"
            count, attrs = f"{box.nodes} nodes", {"style": "rounded,filled,dashed"}
        if progress is not None and progress.current is box:
            attrs |= {"color": GRADIENT, "penwidth": "2.4"}
        label = f"<{title}<BR/><FONT POINT-SIZE='9' COLOR='{MUTED}'>{count}</FONT>>"
        graph.node(self.ids[box], label.replace("'", '"'), fillcolor=BOX_FILL, **attrs)

    def _node(self, graph: graphviz.Digraph, unit: Node | Proxy, progress: Progress | None) -> None:
        """A node, or a proxy of a shared input: name and expression, value, and in the backward view dL/d."""
        proxy = isinstance(unit, Proxy)
        node = unit.leaf if proxy else unit
        name = self.names[node]
        if is_constant(node):
            text = name if np.size(node.data) == 1 else f"{name}  {_shape_and_dtype(node.data)}"
            graph.node(self.ids[unit], _escape(text), shape="plaintext", style="", fontcolor=MUTED,
                       fontsize="10", margin="0.02")
            return
        fork = self.consumers[node] > 1
        if fork:
            fill, border = FORK_FILL, FORK_BORDER
        elif node.op is None and node.requires_grad:
            fill, border = PARAMETER_FILL, PARAMETER_BORDER
        else:
            fill, border = PAPER, BORDER
        heading = f"<B>{_escape(name)}</B>"
        if proxy:
            heading += f"<FONT POINT-SIZE='9' COLOR='{FORK_BORDER}'>  shared input</FONT>"
        elif node.op is not None:
            heading += _escape(_shorten(f" = {expression(node, self.names)}"))
        rows = [heading, *self._value_rows(node.data)]
        if self.view == "forward" and fork and not proxy:
            rows.append(f"<FONT POINT-SIZE='9' COLOR='{FORK_BORDER}'>fork: {self.consumers[node]} branches</FONT>")
        if self.view == "backward":
            rows.append(self._gradient_row(unit, progress, fill))
        attrs = {"fillcolor": fill, "color": border}
        if fork:
            attrs["penwidth"] = "1.6"
        if proxy:
            attrs["style"] = "rounded,filled,dashed"
        if node is self.root:
            attrs["penwidth"] = "2"
        if progress is not None and progress.current is unit:
            attrs |= {"color": GRADIENT, "penwidth": "2.6"}
        label = "<" + "<BR ALIGN='LEFT'/>".join(row for row in rows if row) + "<BR ALIGN='LEFT'/>>"
        graph.node(self.ids[unit], label.replace("'", '"'), **attrs)

    def _value_rows(self, data: Any) -> list[str]:
        if not isinstance(data, np.ndarray):
            return [_escape(format_number(data, self.precision))]
        muted = f"<FONT POINT-SIZE='9' COLOR='{MUTED}'>{_escape(_shape_and_dtype(data))}</FONT>"
        if data.size <= 4:
            return [muted, _escape(summarize(data, self.precision))]
        return [muted, f"<FONT POINT-SIZE='10'>{_escape(array_stats(data, self.precision))}</FONT>"]

    def _gradient_row(self, unit: Node | Proxy, progress: Progress | None, background: str) -> str:
        """``dL/dc = 0.3100 + 0.1200 = 0.4300``, or for a proxy what its stage adds: ``dL/dw += 0.0100``.

        In a step-through frame the terms not yet sent back are hidden, keeping their place.
        """
        if isinstance(unit, Proxy):
            node, relation = unit.leaf, "+="
            branches = [(branch, self.term_of[branch]) for branch in unit.branches if branch in self.term_of]
            total = branches[0][1] if len(branches) == 1 else sum(term for _, term in branches)
        else:
            node, relation = unit, "="
            total = self.backprop.adjoints.get(node)
            branches = [((b.consumer, b.position), b.term) for b in self.backprop.terms(node)]
        if total is None or (relation == "+=" and not branches):
            return ""
        lhs = f"d{self.names[self.root]}/d{self.names[node]} {relation} "
        known = len(branches) if progress is None else sum(1 for b, _ in branches if b in progress.sent)
        if not branches:  # the root: the seed of the pass
            parts = [(lhs + summarize(total, self.precision), True)]
        elif len(branches) == 1:
            parts = [(lhs, True), (summarize(total, self.precision), known == 1)]
        elif len(branches) <= MAX_SUM_TERMS and not isinstance(total, np.ndarray):
            parts = [(lhs, True)]
            for i, (_, term) in enumerate(branches):
                text = format_number(term, self.precision)
                if i:
                    text = " + " + (f"({text})" if text.startswith("-") else text)
                parts.append((text, i < known))
            parts.append((" = " + format_number(total, self.precision), known == len(branches)))
        else:
            parts = [(lhs, True), (f"Σ {len(branches)} branches", known > 0),
                     (" = " + summarize(total, self.precision), known == len(branches))]
        return _fragments(parts, GRADIENT, background, bold=True)

    def _edge(self, graph: graphviz.Digraph, edge: Edge, progress: Progress | None) -> None:
        tail, head = self.ids[edge.tail], self.ids[edge.head]
        source = _source(edge.tail)
        if source is not None and is_constant(source):  # no gradient goes there: a plain line
            graph.edge(tail, head, color="#c4cad0", dir="none")
            return
        fork = source is not None and self.consumers[source] > 1
        attrs = {"color": FORK_BORDER} if fork else {}
        if self.view == "forward":
            if len(edge.branches) > 1:
                attrs |= {"label": f"×{len(edge.branches)}", "fontcolor": MUTED}
            graph.edge(tail, head, **attrs)
            return

        attrs["dir"] = "back"  # the gradient flows from consumer to input: the arrow points at the input
        terms = [self.term_of[b] for b in edge.branches if b in self.term_of]
        if not terms:
            graph.edge(tail, head, **attrs)
            return
        sent = progress is None or all(b in progress.sent for b in edge.branches if b in self.term_of)
        total = terms[0] if len(terms) == 1 else sum(terms[1:], terms[0])
        explanation = self._local_text(*edge.branches[0]) if len(edge.branches) == 1 else f"Σ {len(terms)} branches"
        background = self._edge_background(edge)
        label = (f"<FONT COLOR='{MUTED}'>{_escape(explanation)}</FONT><BR/>"
                 + _fragments([(summarize(total, self.precision), sent)], GRADIENT, background, bold=True))
        attrs["label"] = "<" + label.replace("'", '"') + ">"
        if progress is not None:
            if any(b in progress.fresh for b in edge.branches):
                attrs |= {"color": GRADIENT, "penwidth": "2.4"}
            elif not sent:
                attrs["color"] = PENDING
        graph.edge(tail, head, **attrs)

    def _local_text(self, consumer: Node, position: int) -> str:
        """``∂y/∂h = 1 - tanh(h)^2 = 0.4200``: the local derivative of one edge, from the primitive table."""
        formula = local_formula(consumer, position, self.names)
        text = f"∂{self.names[consumer]}/∂{self.names[consumer.parents[position]]} = {formula}"
        value = local_derivative(consumer, position)
        if value is not None and not _is_number(formula):
            text += f" = {format_number(value, self.precision)}"
        return text

    def _edge_background(self, edge: Edge) -> str:
        # a label sits in the innermost cluster holding both ends; hidden text takes that cluster's colour
        common = _common_stage([_place(edge.tail), _place(edge.head)])
        return _cluster_colours(common)[0] if common else PAPER


def _place(unit: Unit) -> StagePath:
    """The stage (cluster) a shape is drawn in."""
    if isinstance(unit, Box):
        return unit.parent
    return unit.stage


def _source(unit: Unit) -> Node | None:
    """The graph node a shape stands for (None for a box)."""
    if isinstance(unit, Proxy):
        return unit.leaf
    return None if isinstance(unit, Box) else unit


def _top(unit: Node | Box) -> StagePath:
    return unit.top if isinstance(unit, Box) else unit.stage[:1]


def _common_stage(stages: list[StagePath]) -> StagePath:
    return tuple(os.path.commonprefix(stages))


def _kind(node: Node) -> str:
    """What the stage tally counts: the op, or the kind of leaf."""
    if node.op is not None:
        return node.op.name
    return "constant" if is_constant(node) else "leaf"


def _cluster_colours(path: StagePath) -> tuple[str, str]:
    if "backward" in path:
        return BACKWARD_FILL, BACKWARD_BORDER
    return CLUSTER_FILLS[(len(path) - 1) % len(CLUSTER_FILLS)], CLUSTER_BORDER


def _fragments(parts: list[tuple[str, bool]], colour: str, background: str, bold: bool = False) -> str:
    """Text in pieces, the pieces not yet known drawn in the background colour.

    Hidden pieces keep their place, so every frame of a step-through has the same layout.
    """
    out = []
    for text, shown in parts:
        piece = _escape(text)
        if bold and shown:
            piece = f"<B>{piece}</B>"
        out.append(f"<FONT COLOR='{colour if shown else background}'>{piece}</FONT>")
    return "".join(out)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_EXPRESSION else text[:MAX_EXPRESSION - 1] + "…"


def _shape_and_dtype(data: np.ndarray) -> str:
    return f"{shape_text(data.shape)} {data.dtype}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- which stages become boxes --------------------------------------------------------------------------------

def _matcher(spec: StageFilter) -> Callable[[StagePath], bool]:
    """A stage filter as a predicate on stage paths: patterns match the stage's name, or with "/" its path."""
    if spec is None:
        return lambda path: False
    if callable(spec):
        return spec
    patterns = [spec] if isinstance(spec, str) else list(spec)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"draw: stage patterns must be strings, got {pattern!r}")

    def matches(path: StagePath) -> bool:
        return any(fnmatchcase("/".join(path) if "/" in pattern else path[-1], pattern) for pattern in patterns)
    return matches


def _plan_stages(tally: Counter[tuple[StagePath, str]], collapse: Callable[[StagePath], bool],
                 keep: Callable[[StagePath], bool], roll_up: bool) -> dict[StagePath, Box | None]:
    """For every stage path that holds nodes, the box it is drawn in (None: drawn in full).

    Works top-down on the tree of stages, so the outermost decision wins: a kept stage is drawn in full with
    everything inside it; otherwise a stage in a rolled-up run, or one that matches ``collapse``, is a box.
    """
    size: Counter[StagePath] = Counter()
    shape: dict[StagePath, Counter] = {}  # for roll-up: (path inside the stage, op) -> count
    children: dict[StagePath, list[StagePath]] = {}
    for (stage, kind), count in tally.items():  # in order of first appearance
        for depth in range(len(stage), 0, -1):
            path = stage[:depth]
            size[path] += count
            shape.setdefault(path, Counter())[stage[depth:], kind] += count
            siblings = children.setdefault(path[:-1], [])
            if path not in siblings:
                siblings.append(path)

    box_of: dict[StagePath, Box | None] = {stage: None for stage, _ in tally}

    def fill(path: StagePath, box: Box) -> None:
        if path in box_of:
            box_of[path] = box
        for child in children.get(path, ()):
            fill(child, box)

    pending = [()]
    while pending:
        parent = pending.pop()
        runs = _runs(children.get(parent, []), shape, keep) if roll_up else {}
        for path in children.get(parent, []):
            if keep(path):
                continue  # drawn in full, and everything inside it too
            run = runs.get(path)
            if run is not None:
                fill(path, run)
            elif collapse(path):
                fill(path, Box(path[-1], parent, path[:1], size[path]))
            else:
                pending.append(path)
    return box_of


def _runs(siblings: list[StagePath], shape: dict[StagePath, Counter],
          keep: Callable[[StagePath], bool]) -> dict[StagePath, Box]:
    """Rolled-up runs among sibling stages: names equal but for their numbers, consecutive, same structure."""
    families: dict[str, list[StagePath]] = {}
    for path in siblings:
        families.setdefault(re.sub(r"\d+", "#", path[-1]), []).append(path)
    runs: dict[StagePath, Box] = {}
    for template, family in families.items():
        if "#" not in template or len(family) < 2:
            continue
        family.sort(key=lambda path: [int(n) for n in re.findall(r"\d+", path[-1])])
        run: list[StagePath] = []
        for path in [*family, None]:  # None closes the last run
            if run and (path is None or keep(path) or shape[path] != shape[run[0]]):
                if len(run) > 1:
                    box = Box(f"{run[0][-1]} … {run[-1][-1]}", run[0][:-1], run[0][:1],
                              sum(shape[run[0]].values()), len(run))
                    runs.update(dict.fromkeys(run, box))
                run = []
            if path is not None and not keep(path):
                run.append(path)
    return runs


def _advice(tally: Counter[tuple[StagePath, str]], drawn: int, max_nodes: int) -> str:
    """Why a drawing is refused, and how to collapse it into one that is not."""
    tops: Counter[str] = Counter()
    for (stage, _), count in tally.items():
        tops[stage[0] if stage else ""] += count
    named = [name for name in tops if name]
    message = (f"draw: this drawing would have {drawn:,} shapes, more than max_nodes={max_nodes:,}; Graphviz "
               "would take very long and the picture would be unreadable. ")
    if not named:
        return message + ("It has no stages to collapse: record the computation inside `with stage('name'):` "
                          "blocks, draw a smaller part, or raise max_nodes.")
    families = Counter(re.sub(r"\d+", "*", name) for name in named)
    repeated = [family for family, members in families.items() if members > 1 and "*" in family]
    listing = ", ".join(f"{name} ({tops[name]:,} nodes)" for name in named[:6]) + \
        (f", … ({len(named) - 6} more)" if len(named) > 6 else "")
    if repeated:
        last = [name for name in named if re.sub(r"\d+", "*", name) == repeated[0]][-1]
        advice = (f"collapse stages into boxes, e.g. draw(root, collapse={repeated[0]!r}, keep={last!r}) "
                  f"to show one of them in full, or roll_up=True to draw the repeats as one box")
    else:
        advice = f"collapse stages into boxes, e.g. draw(root, collapse={named[0]!r}) or collapse='*'"
    return message + f"Top-level stages: {listing}. To draw it, {advice}; or raise max_nodes."


# --- the public entry points ------------------------------------------------------------------------------------

def draw(root: Node, view: View = "forward", *, collapse: StageFilter = None, keep: StageFilter = None,
         roll_up: bool = False, repeat_shared: bool = True, max_nodes: int = 2000, rankdir: str = "LR",
         show_constants: bool = True, precision: int = 4, title: str | None = None) -> graphviz.Digraph:
    """Draw the graph under ``root``: the forward values, or (``view="backward"``) the gradients on every edge.

    ``collapse`` / ``keep`` / ``roll_up`` draw stages as boxes (see the module's documentation);
    ``max_nodes`` refuses larger drawings with advice; ``rankdir`` is Graphviz's direction ("LR": inputs on
    the left, "TB": on top); ``show_constants=False`` hides the constants (their values stay in the
    expressions); ``precision`` is the number of decimals. Building the drawing does not need Graphviz's
    ``dot``; rendering it (`render`, or showing it in Jupyter) does.
    """
    scene = Scene(root, view, collapse=collapse, keep=keep, roll_up=roll_up, repeat_shared=repeat_shared,
                  max_nodes=max_nodes, show_constants=show_constants, precision=precision, rankdir=rankdir)
    return scene.digraph(title=title)


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
                         "suffix, or pass format='png' / 'svg' / 'pdf'")
    data = drawing.source.encode() if fmt == "dot" else pipe(drawing, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


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
