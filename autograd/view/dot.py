"""A scene written as DOT: labels, colours, clusters and the constraints that keep a picture in order.

- Each node as a hand derivation writes it, ``h = o * tanh(c)`` over ``= 0.42`` (for a tensor: its shape, and
  its values when there are at most four, else their range and mean); in the backward view with
  ``dL/dh = ...`` under it, and on each edge the local derivative and the term it sends back, in red. A fork
  (a value with several uses) is amber and shows the terms of its sum.
- Stages are nested clusters (a stage holding nothing but one other is drawn as one cluster, ``t=2 · layer 0``).
  Drawn top to bottom, the parts of a cluster (the stages and boxes in it) come one under another in
  computation order, below the inputs the stage takes in: the steps of a loop in time order, within a step
  the layers, within a layer the gates i, f, g, o, the cell state and the hidden state; what is gathered from
  the parts after them (a loss summed over several outputs) goes under the last. A stage's inputs wider
  than a row wrap onto more rows. This keeps a picture within a notebook's width: it grows downwards.
  Stacking costs Graphviz more the larger the drawing, so drawings of more than `STACK_LIMIT` shapes are left
  to Graphviz; in those, and in drawings left to right, the stages inside a step of a loop are clusters of
  their own (``t=2 · forget gate``), not nested in a cluster of the step, or Graphviz draws each step beside
  the one before.
- The conveyor of a loop (see `autograd.view.scene`) is a heavy line, kept straight.
- Every text that reaches DOT is escaped, control characters shown as visible symbols: a name cannot add
  attributes, links or nodes. No ``newrank``, no ``group``: with clusters they crash the Graphviz of Debian and
  Ubuntu ("trouble in init_rank"). The ``safe`` writer leaves out the ordering constraints too, for a retry.
"""

from __future__ import annotations

import html
import math
import os
import textwrap
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import graphviz
import numpy as np

from autograd.core import Node
from autograd.view.annotated import Link
from autograd.view.boxes import Box, StagePath, numbered
from autograd.view.display import Drawing
from autograd.view.notation import (
    brief,
    expression,
    format_number,
    gives_whole_term,
    is_constant,
    is_number,
    is_prose,
    local_formula,
    local_value,
    sum_texts,
)
from autograd.view.scene import Edge, Proxy, Scene, Unit, source

MOST_DIGITS = 15  # the precision a drawing can show at most (significant digits)

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
CONVEYOR = "#3d4b5c"
CLUSTER_FILLS = ("#f6f8fa", "#edf0f3")  # alternating with depth, so nested stages stay apart
CLUSTER_BORDER = "#d0d7de"
BACKWARD_FILL, BACKWARD_BORDER = "#fbf1ef", "#e3bfb8"  # the stage a create_graph=True pass records into
BOX_FILL = "#e4e9ef"

LEGEND = {
    "forward": "amber: a fork (a value used more than once) · blue: an input that gets a gradient",
    "backward": "red: gradients · on an edge: × local derivative = the term it sends back · amber: a fork, "
                "the sum of its branches",
}
# points: node text, edge labels and stage titles alike (13 px, readable on a projector); the small print
# (fork: 2 uses, from t=1); a title or caption
FONT_SIZE, SMALL_FONT_SIZE, CAPTION_SIZE = 10, 8, 12
LEGEND_SIZE, LEGEND_WIDTH = 10, 96  # points (13 px: readable on a projector), characters a line
LEGEND_ROOM = LEGEND_SIZE * 2  # points of height the legend takes (its lines at most two)
CAPTION_WIDTH = 84  # characters of a step-through caption's line: with the legend, within a notebook's width
CHARACTER_WIDTH = 0.62  # of the font size: a little above Helvetica's average, so an estimate is never short
MAX_SUM_TERMS = 4  # a fork with more branches shows "Σ n branches" instead of writing out the sum
MAX_EXPRESSION = 30  # characters of a node's first line before its expression is cut short
MAX_LISTED = 3  # inputs a box names; more are counted
XLABELS = False
MAX_ROW = 20  # characters of a gradient row before it goes on on a second line
# Graphviz reads no label or tooltip longer than 16,384 bytes (and a name is written several times in some): a
# name, stage or title is drawn shortened to MAX_NAME characters, and shown whole, up to MAX_WHOLE, in a tooltip;
# a tooltip keeps MAX_TOOLTIP characters (4 bytes each at most, 2 for those escaped)
MAX_NAME, MAX_WHOLE, MAX_TOOLTIP = 80, 1000, 3000
SHALLOW = 5  # ranks: graphs this shallow are drawn left to right; deeper ones top to bottom
CONVEYOR_WEIGHT = "12"  # Graphviz keeps heavier edges shorter and straighter
STACK_LIMIT = 160  # shapes: larger drawings are not stacked, which costs Graphviz 1-2 s at 300 shapes, a minute at 450
WRAP_AT, PER_ROW = 4, 2  # inputs of one shape side by side before the row wraps; shapes per row when it does
NODE_SPACING = 0.1  # inches between shapes side by side (and between the lines of a bundle of edges)
# the spacings a drawing too wide for a column is laid out with again, in turn, each with a little less than the
# least share of the width it brought a drawing to (tests/learner_graphs.py: 0.05 in, 0.84 of the width at best;
# 0.02 in, where 0.05 in did not fit, 0.80)
TIGHTER = ((0.05, 0.8), (0.02, 0.75))
STACKED_WEIGHT = "12"  # of the edges that stack parts, so they line up (at weight 0 dot may ignore them)
INPUT_ROW, INPUT_EXTRA = 480, 16  # points a row of a stage's inputs may take; characters beside a name (its value)


@dataclass
class Progress:
    """A moment of the reverse pass, for a step-through frame: the edges sent back by then, and the shape whose
    step it is (None before the first)."""

    step: int
    sent_at: dict[Link, int]  # the step at which each edge sends its gradient term back
    current: Unit | None
    caption: str

    def sent(self, link: Link) -> bool:
        return self.sent_at.get(link, self.step + 1) <= self.step

    def fresh(self, link: Link) -> bool:
        return self.sent_at.get(link) == self.step


class DotWriter:
    """Writes one scene as DOT, complete or at any step of the reverse pass; what does not change from step to
    step (names, ids, clusters, constraints) is worked out once."""

    def __init__(self, scene: Scene, precision: int = 3, rankdir: str = "auto", safe: bool = False,
                 spacing: float = NODE_SPACING) -> None:
        if rankdir not in ("auto", "LR", "RL", "TB", "BT"):
            raise ValueError(f"draw: rankdir must be 'auto', 'LR', 'RL', 'TB' or 'BT', got {rankdir!r}")
        if isinstance(precision, bool) or not isinstance(precision, int) or not 1 <= precision <= MOST_DIGITS:
            raise ValueError(f"draw: precision is the number of significant digits, 1 to {MOST_DIGITS}; got "
                             f"{precision!r}")
        self.scene, self.digits, self.safe, self.spacing = scene, precision, safe, spacing
        self.rankdir = direction(scene) if rankdir == "auto" else rankdir
        self.names = drawn_names(scene, precision)
        self.written = written_names(scene, self.names)
        self.root_name = self.names[scene.root]
        self.ids: dict[Unit, str] = {node: f"n{i}" for i, node in enumerate(scene.nodes)}
        self.ids.update({box: f"b{i}" for i, box in enumerate(scene.boxes)})
        self.ids.update({proxy: f"p{i}" for i, proxy in enumerate(scene.proxies)})
        shapes = len(scene.nodes) + len(scene.proxies) + len(scene.boxes)
        self.stacked = self.rankdir in ("TB", "BT") and not safe and shapes <= STACK_LIMIT
        self._clusters: dict[StagePath, StagePath] = {}
        self.members, self.children = self._cluster_tree()
        self.depth: dict[StagePath, int] = {(): 0}  # how deep each stage's cluster is drawn (merged ones share)
        self._depths((), 0)
        self.input_rows: list[tuple[str, str]] = []  # the inputs of a stage wrapped in rows (see `_rows`)
        self.anchors = self._stacking() if self.stacked else {}
        self.wraps = self._wrapping() if self.rankdir in ("TB", "BT") and not safe else []

    def write(self, caption: str | None = None, progress: Progress | None = None,
              caption_room: tuple[int, int] | None = None) -> Drawing:
        """The drawing, complete or at one moment of the reverse pass; see `_caption` for ``caption_room``."""
        across = self.rankdir in ("TB", "BT")  # ranks are rows: labels are wide, so rows can be close
        root = self.names[self.scene.root]
        graph = Drawing(
            name=f"{self.scene.view} graph of {root}",  # what the background says when hovered (else "%3")
            graph_attr={"tooltip": tooltip_text(f"the {self.scene.view} graph of {root}: {LEGEND[self.scene.view]}"),
                        "rankdir": self.rankdir, "fontname": FONT, "fontsize": str(FONT_SIZE), "bgcolor": PAPER,
                        "pad": "0.08", "nodesep": str(self.spacing),
                        "ranksep": "0.18" if across else "0.25", "fontcolor": MUTED, "outputorder": "edgesfirst"},
            node_attr={"fontname": FONT, "fontsize": str(FONT_SIZE), "fontcolor": INK, "shape": "box",
                       "style": "rounded,filled", "fillcolor": PAPER, "color": BORDER, "penwidth": "1.1",
                       "margin": "0.07,0.03"},
            edge_attr={"fontname": FONT, "fontsize": str(FONT_SIZE), "color": LINE, "arrowsize": "0.6",
                       "penwidth": "1.0"})
        graph.attr(label=self._caption(caption, caption_room), labelloc="t", labeljust="l")
        self._cluster(graph, (), progress, [0])
        if self.scene.floating:
            self._shared_inputs(graph)
            if across and self.scene.root in self.ids:  # under the picture, not beside it: the column is narrow
                graph.edge(self.ids[self.scene.root], "shared", style="invis")
        for edge in self.scene.edges:
            self._edge(graph, edge, progress)
        for box in self.scene.recurrent:
            graph.edge(self.ids[box], self.ids[box], style="dashed", color=LINE)
        for anchors in self.anchors.values():
            for anchor, bottoms, tops in anchors:
                for bottom in bottoms:
                    graph.edge(bottom, anchor, style="invis", weight=STACKED_WEIGHT)
                for top in tops:
                    graph.edge(anchor, top, style="invis", weight=STACKED_WEIGHT)
        for bottom, top in [*self.wraps, *self.input_rows]:
            graph.edge(bottom, top, style="invis")
        graph.writer = self  # the scene and names behind the picture, for an interactive page of it
        graph.safer = None if self.safe else lambda: DotWriter(
            self.scene, self.digits, self.rankdir, True, self.spacing).write(caption, progress, caption_room).source
        return graph

    def _caption(self, caption: str | None, room: tuple[int, int] | None = None) -> str:
        """The title or a frame's caption, over the legend. With ``room`` (characters, lines) the caption is
        wrapped to lines of that many characters and takes the room of that many lines, so the frames of a
        step-through, whose captions differ, keep one layout."""
        notice = self.scene.annotated.accumulated() if self.scene.view == "backward" and room is None else None
        legend = "<BR ALIGN='LEFT'/>".join(f"<FONT POINT-SIZE='{LEGEND_SIZE}' COLOR='{MUTED}'>{text(line)}</FONT>"
                                           for line in caption_lines(LEGEND[self.scene.view], LEGEND_WIDTH))
        if notice:  # .grad holds more than the pass drawn: said over the legend, in the gradients' colour
            legend = "<BR ALIGN='LEFT'/>".join(f"<FONT POINT-SIZE='{LEGEND_SIZE}' COLOR='{GRADIENT}'>{text(line)}"
                                               "</FONT>" for line in caption_lines(notice, LEGEND_WIDTH)) + \
                "<BR ALIGN='LEFT'/>" + legend
        caption = caption and shorten(caption, MAX_WHOLE)
        if not caption:
            return as_html(legend + "<BR ALIGN='LEFT'/>")
        if room is None:
            shown = f"<FONT POINT-SIZE='{CAPTION_SIZE}' COLOR='{INK}'>{text(caption)}</FONT>"
            return as_html(shown + "<BR ALIGN='LEFT'/>" + legend + "<BR ALIGN='LEFT'/>")
        width, lines = room
        wrapped = caption_lines(caption, width)
        wrapped += [" "] * (lines - len(wrapped))
        shown = "<BR ALIGN='LEFT'/>".join(f"<FONT POINT-SIZE='{CAPTION_SIZE}' COLOR='{INK}'>{text(line)}</FONT>"
                                          for line in wrapped)
        points = math.ceil(width * CAPTION_SIZE * CHARACTER_WIDTH)
        return as_html(f"<TABLE BORDER='0' CELLPADDING='0' CELLSPACING='0'><TR><TD WIDTH='{points}' ALIGN='LEFT'>"
                       f"{shown}</TD></TR><TR><TD ALIGN='LEFT'>{legend}</TD></TR></TABLE>")

    # --- clusters: one per stage, nested, in computation order ---
    def _cluster_tree(self) -> tuple[dict[StagePath, list[Unit]], dict[StagePath, list[StagePath]]]:
        """The shapes in each cluster and the clusters in each, in the order of the listing."""
        scene = self.scene
        self.rank: dict[StagePath, int] = {}  # each stage path, numbered in the order of the listing
        for i, node in enumerate(scene.annotated.listing):
            for depth in range(1, len(node.stage) + 1):
                self.rank.setdefault(node.stage[:depth], i)
        members: dict[StagePath, list[Unit]] = {}
        for unit in [*scene.nodes, *scene.proxies, *scene.boxes]:
            if unit not in scene.floating:
                members.setdefault(self.cluster(unit), []).append(unit)
        children: dict[StagePath, list[StagePath]] = {}
        for path in list(members):
            while path:  # every enclosing cluster is drawn too, even one holding no shape of its own
                siblings = children.setdefault(path[:-1], [])
                if path in siblings:
                    break
                siblings.append(path)
                path = path[:-1]
        for siblings in children.values():
            siblings.sort(key=self._rank)
        return members, children

    def cluster(self, unit: Unit) -> StagePath:
        """The cluster a shape is drawn in: its stage; in a drawing that is not stacked, inside a step of a loop
        the stages are not nested but each a cluster of its own, labelled with its path ("t=2 · forget
        gate"): left to itself Graphviz puts each step beside the one before, a staircase mostly empty."""
        stage = self.scene.place(unit)
        found = self._clusters.get(stage)
        if found is None:
            found = stage
            for depth in range(1, len(stage)):
                if not self.stacked and self._in_run(stage[:depth]):
                    found = (*stage[:depth - 1], " · ".join(stage[depth - 1:]))
                    self.rank.setdefault(found, self.rank.get(stage, len(self.rank)))
                    break
            self._clusters[stage] = found
        return found

    def _in_run(self, path: StagePath) -> bool:
        """Whether a stage is one of several siblings named alike but for their numbers (t=1, t=2, ...)."""
        template = numbered(path[-1])
        siblings = self.scene.substages.get(path[:-1], ())
        return "#" in template and sum(numbered(sibling[-1]) == template for sibling in siblings) > 1

    def _rank(self, item: StagePath | Box) -> int:
        return self.rank.get(item.path if isinstance(item, Box) else item, len(self.rank))

    def _depths(self, path: StagePath, depth: int) -> None:
        for child in self.children.get(path, ()):
            inner, names = self._merged(child)
            for length in range(len(child), len(inner) + 1):
                self.depth[inner[:length]] = depth + 1
            self._depths(inner, depth + 1)

    def _merged(self, path: StagePath) -> tuple[StagePath, tuple[str, ...]]:
        """A cluster that holds nothing but one other is drawn as one with it: the inner path and the labels."""
        labels = [path[-1]]
        while not self.members.get(path) and len(self.children.get(path, ())) == 1:
            path = self.children[path][0]
            labels.append(path[-1])
        return path, tuple(labels)

    def _cluster(self, graph: Any, path: StagePath, progress: Progress | None, count: list[int]) -> None:
        for anchor, _, _ in self.anchors.get(path, ()):
            graph.node(anchor, "", shape="point", width="0", height="0", style="invis")
        for unit in self.members.get(path, ()):
            if isinstance(unit, Box):
                self._box(graph, unit, progress)
            else:
                self._node(graph, unit, progress)
        for child in self.children.get(path, ()):
            inner, names = self._merged(child)
            fill, border = cluster_colours(inner, self.depth[inner])
            count[0] += 1
            with graph.subgraph(name=f"cluster_{count[0]}") as cluster:
                title = " · ".join(shorten(name, MAX_NAME) for name in names)
                cluster.attr(label=as_html(text(title)), tooltip=tooltip_text(shorten(" / ".join(inner), MAX_WHOLE)),
                             style="rounded,filled", fillcolor=fill,
                             color=border, fontcolor=MUTED, fontsize=str(FONT_SIZE), labeljust="l", margin="5")
                self._cluster(cluster, inner, progress, count)

    def _stacking(self) -> dict[StagePath, list[tuple[str, list[str], list[str]]]]:
        """What puts the parts of each cluster (the clusters and boxes in it) one under another in computation
        order, unless a later one feeds an earlier one: between two parts an invisible anchor, with invisible
        edges from the bottom shapes of the first to it and from it to the top shapes of the second. (An edge
        from each bottom shape to each top one would do the same, at many times the cost of the layout.)"""
        scene = self.scene
        inputs: dict[Unit, list[Unit]] = {}
        users: dict[Unit, list[Unit]] = {}
        feeds: set[tuple[Any, Any]] = set()
        for edge in scene.edges:
            inputs.setdefault(edge.head, []).append(edge.tail)
            users.setdefault(edge.tail, []).append(edge.head)
            common = tuple(os.path.commonprefix([scene.place(edge.tail), scene.place(edge.head)]))
            feeds.add((self._part(edge.tail, common), self._part(edge.head, common)))

        def within(unit: Unit, path: StagePath) -> bool:
            return scene.place(unit)[:len(path)] == path

        def ends(part: StagePath | Box, top: bool) -> list[Unit]:
            """The shapes at the top (or bottom) of a part: those of its own with no input (no use) in it, and
            those of its first (last) part."""
            if isinstance(part, Box):
                return [part]
            path = self._merged(part)[0]
            neighbours = inputs if top else users
            found = [unit for unit in self.members.get(path, ())
                     if not any(within(other, path) for other in neighbours.get(unit, ()))]
            parts = self._parts(path)
            if parts:
                found += ends(parts[0] if top else parts[-1], top)
            return found

        anchors: dict[StagePath, list[tuple[str, list[str], list[str]]]] = {}

        def anchor(parent: StagePath, above: list[Unit], below: list[Unit]) -> None:
            count = sum(map(len, anchors.values()))
            anchors.setdefault(parent, []).append((f"a{count}", list(dict.fromkeys(self.ids[unit] for unit in above)),
                                                   list(dict.fromkeys(self.ids[unit] for unit in below))))

        for parent in [(), *self.depth]:
            if self._merged(parent)[0] != parent if parent else False:
                continue  # drawn as one cluster with the one inside it
            parts = self._parts(parent)
            inputs_here = [unit for unit in self.members.get(parent, ()) if not isinstance(unit, Box)
                           and not any(within(other, parent) for other in inputs.get(unit, ()))]
            if parts and inputs_here and parent:  # the inputs a stage takes in go above its first part
                self.input_rows += self._rows(inputs_here)
                anchor(parent, inputs_here, ends(parts[0], True))
            for before, after in zip(parts, parts[1:]):
                if (after, before) not in feeds:
                    anchor(parent, ends(before, False), ends(after, True))
            gathered = self._gathered(parent, inputs) if parts else []
            if gathered:  # what is gathered from the parts (a loss summed over outputs) goes under the last one
                anchor(parent, ends(parts[-1], False), gathered)
        return anchors

    def _rows(self, inputs: list[Unit]) -> list[tuple[str, str]]:
        """A stage's inputs, drawn in a row above it, wrapped into rows of at most `INPUT_ROW` points (their
        names as wide as they are, plus room for the value): each input of a row goes under one of the row
        before, by an invisible edge."""
        rows: list[list[str]] = [[]]
        used = 0.0
        for unit in inputs:
            node = source(unit)
            points = 0.0 if node is None else (len(self.names[node]) + INPUT_EXTRA) * CHARACTER_WIDTH * FONT_SIZE
            if rows[-1] and used + points > INPUT_ROW:
                rows.append([])
                used = 0.0
            rows[-1].append(self.ids[unit])
            used += points
        return [(above[k % len(above)], below) for above, row in zip(rows, rows[1:]) for k, below in enumerate(row)]

    def _gathered(self, path: StagePath, inputs: dict[Unit, list[Unit]]) -> list[Unit]:
        """The shapes directly in a cluster that take an input from one of its parts and lead into none: left
        to Graphviz, each sits beside the part its first input comes from (the sum of a loss over the outputs of
        several units or steps, as wide as they are tall), where under the last part it costs no width."""
        own = {unit for unit in self.members.get(path, ()) if not isinstance(unit, Box)}

        def in_part(unit: Unit) -> bool:
            return self.scene.place(unit)[:len(path)] == path and self._part(unit, path) is not None

        leading = [edge.tail for edge in self.scene.edges if edge.tail in own and in_part(edge.head)]
        ahead = set(leading)  # the shapes of the cluster that lead into a part
        while leading:
            for tail in inputs.get(leading.pop(), ()):
                if tail in own and tail not in ahead:
                    ahead.add(tail)
                    leading.append(tail)
        return [unit for unit in self.members.get(path, ()) if unit in own and unit not in ahead
                and any(in_part(tail) for tail in inputs.get(unit, ()))]

    def _wrapping(self) -> list[tuple[str, str]]:
        """Long rows wrapped: the inputs of a shape that takes more than `WRAP_AT` of them (the products of a
        convolution written out, gathered by one stack) sit side by side in one row; each `PER_ROW`-th one's own
        chain (what only it uses, up to the shapes with no input of their own) is drawn under the chain before."""
        inputs: dict[Unit, list[Unit]] = {}
        users: Counter[Unit] = Counter()
        for edge in self.scene.edges:
            inputs.setdefault(edge.head, []).append(edge.tail)
            users[edge.tail] += 1

        def tops(unit: Unit) -> list[Unit]:
            found, stack, seen = [], [unit], {unit}
            while stack:
                here = stack.pop()
                own = [tail for tail in inputs.get(here, ()) if users[tail] == 1 and tail not in seen]
                if not own and here is not unit:
                    found.append(here)
                seen.update(own)
                stack += own
            return found

        wraps = []
        for tails in inputs.values():
            row = [tail for tail in dict.fromkeys(tails) if users[tail] == 1 and inputs.get(tail)]
            if len(row) <= WRAP_AT:
                continue
            for before, after in zip(row, row[PER_ROW:]):
                wraps += [(self.ids[before], self.ids[top]) for top in tops(after) if top in self.ids]
        return wraps

    def _parts(self, path: StagePath) -> list[StagePath | Box]:
        """The clusters and boxes directly inside a cluster, in computation order."""
        boxes = [unit for unit in self.members.get(path, ()) if isinstance(unit, Box)]
        return sorted([*self.children.get(path, ()), *boxes], key=self._rank)

    def _part(self, unit: Unit, path: StagePath) -> StagePath | Box | None:
        """The part of the cluster ``path`` that holds a shape (None: the shape is directly in it)."""
        place = self.scene.place(unit)
        if isinstance(unit, Box) and place == path:
            return unit
        return place[:len(path) + 1] if len(place) > len(path) else None

    def _shared_inputs(self, graph: Any) -> None:
        """The inputs that every stage using them shows a copy of, as one table with their totals."""
        scene = self.scene
        note = "inputs shared by several stages, each of which shows its share: the totals"
        rows = [f"<TR><TD COLSPAN='3' ALIGN='LEFT'><FONT POINT-SIZE='{SMALL_FONT_SIZE}' COLOR='{MUTED}'>{note}"
                "</FONT></TD></TR>"]
        for node in (node for node in scene.nodes if node in scene.floating):
            cells = [f"<B>{text(self.names[node])}</B>", text(brief(node.data, self.digits))]
            if scene.view == "backward":
                cells.append(self._gradient_row(node, PARAMETER_FILL, None))
            rows.append("<TR>" + "".join(f"<TD ALIGN='LEFT'>{cell}</TD>" for cell in cells) + "</TR>")
        table = (f"<TABLE BORDER='1' CELLBORDER='0' CELLSPACING='0' CELLPADDING='2' STYLE='ROUNDED' "
                 f"BGCOLOR='{PARAMETER_FILL}' COLOR='{PARAMETER_BORDER}'>{''.join(rows)}</TABLE>")
        graph.node("shared", as_html(table), shape="plain", style="")

    # --- shapes ---
    def _box(self, graph: Any, box: Box, progress: Progress | None) -> None:
        if box.repeats > 1:
            title = f"<B>{text(shorten(box.title, MAX_NAME))}</B>  ×{box.repeats}"
            count, attrs = f"{box.nodes:,} nodes each", {"shape": "box3d", "style": "filled"}
        else:
            title = f"<B>{text(shorten(box.title, MAX_NAME))}</B>"
            count, attrs = f"{box.nodes:,} nodes", {"style": "rounded,filled,dashed"}
        if progress is not None and progress.current is box:
            attrs |= {"color": GRADIENT, "penwidth": "2.6"}
        rows = [title, f"<FONT POINT-SIZE='{SMALL_FONT_SIZE}' COLOR='{MUTED}'>{count}</FONT>"]
        used, fed = list(box.inputs), list(box.outputs)
        tooltip = [f"{shorten(box.title, MAX_WHOLE)}: {count}"]
        for relation, nodes in (("uses", used), ("feeds", fed)):
            if nodes:
                names = [self._plain(node) for node in nodes]
                listed = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) \
                    if len(names) <= MAX_LISTED else f"{len(names)} values outside"
                if relation == "feeds" and self.scene.view == "backward" and all(
                        self._added(box.outputs[node]) is None or not np.any(self._added(box.outputs[node]))
                        for node in fed):
                    listed += ", which sends no gradient back"  # e.g. the outputs of steps a loss does not read
                rows.append(f"<FONT POINT-SIZE='{SMALL_FONT_SIZE}' COLOR='{FORK_BORDER}'>{relation} "
                            f"{text(listed)}</FONT>")
        for node in used:
            added = self._added(box.inputs[node])
            tooltip.append(f"uses {self.names[node]}" + ("" if added is None else
                                                         f": dL/d{self.names[node]} += {brief(added, 6)}"))
        for node in fed:
            back = self._added(box.outputs[node])
            tooltip.append(f"feeds {self._plain(node)}" + ("" if back is None else
                                                          f", which sends back {brief(back, 6)}"))
        if self.scene.view == "backward" and any(self._added(box.inputs[node]) is not None for node in used):
            rows.append(self._box_gradients(box, used, progress))
        label = "<BR ALIGN='LEFT'/>".join(rows) + "<BR ALIGN='LEFT'/>"
        graph.node(self.ids[box], as_html(label), fillcolor=BOX_FILL, tooltip=tooltip_text("\n".join(tooltip)),
                   **attrs)

    def _plain(self, node: Node) -> str:
        """A node as a box names it, in words a student finds in their code: a constant by its value, a node
        with no name of its own by how it was computed (``f[t=1] * c0``, not ``v5``)."""
        data = np.asarray(node.data)
        if is_constant(node) or (node.op is None and not node.requires_grad and data.size
                                 and np.all(data == data.flat[0])):
            return f"the constant {self.names[node]}"  # the column of ones that carries a bias, say
        if node.op is not None and not node.label:
            return shorten(expression(node, self.written), MAX_EXPRESSION)
        return self.names[node]

    def _added(self, links: list[Link]) -> Any:
        terms = [term for term in map(self.scene.term, links) if term is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def _box_gradients(self, box: Box, used: list[Node], progress: Progress | None) -> str:
        """What the box adds to the gradients of the inputs it uses: each of a few, or how many."""
        used = [node for node in used if self._added(box.inputs[node]) is not None]
        links = [link for node in used for link in box.inputs[node]]
        shown = progress is None or all(progress.sent(link) for link in links if self.scene.term(link) is not None)
        if len(used) == 1:
            node = used[0]
            parts = [(f"d{self.root_name}/d{self.names[node]} += ", True),
                     (brief(self._added(box.inputs[node]), self.digits), shown)]
        else:
            parts = [(f"adds to {len(used)} gradients", shown)]
        return fragments(parts, GRADIENT, BOX_FILL)

    def _node(self, graph: Any, unit: Node | Proxy, progress: Progress | None) -> None:
        """A node, or a copy of one: name and expression, value, and in the backward view dL/d."""
        scene = self.scene
        proxy = isinstance(unit, Proxy)
        node = unit.original if proxy else unit
        name = self.names[node]
        data = node.data
        if is_constant(node):
            shown = name if np.size(data) == 1 else f"{name} {shape_of(data)}"
            graph.node(self.ids[unit], as_html(text(shown)), shape="plaintext", style="", fontcolor=MUTED,
                       fontsize="9", margin="0.02", tooltip=tooltip_text(f"constant {brief(data, 6)}"))
            return
        fork = scene.consumers[node] > 1
        if fork:
            fill, border = FORK_FILL, FORK_BORDER
        elif node.op is None and node.requires_grad:
            fill, border = PARAMETER_FILL, PARAMETER_BORDER
        else:
            fill, border = PAPER, BORDER
        small = f"<FONT POINT-SIZE='{SMALL_FONT_SIZE}' COLOR='{{}}'>{{}}</FONT>"
        heading = f"<B>{text(name)}</B>"
        value = brief(data, self.digits)
        if proxy and unit.box is not None:  # a value brought out of a box, which holds how it was computed
            rows = [heading + text(f" = {value}") + "  " + small.format(MUTED, f"from {text(unit.box.title)}")]
        elif isinstance(data, np.ndarray):  # name = expression, shape; the values below
            if node.op is not None:
                heading += text(shorten(f" = {expression(node, self.written)}", MAX_EXPRESSION - len(name)))
            rows = [heading + "  " + small.format(MUTED, text(shape_of(data))), text(value)]
        elif node.op is not None:  # a scalar as a hand derivation writes it: name = expression = value
            written = expression(node, self.written)
            if len(f"{name} = {written} = {value}") <= MAX_ROW + 4:  # on one line when it is short
                rows = [heading + text(f" = {written} = {value}")]
            else:
                rows = [heading + text(shorten(f" = {written}", MAX_EXPRESSION - len(name))), text(f"= {value}")]
        else:
            rows = [heading + text(f" = {value}")]
        if proxy and unit.box is None:
            rows[0] += "  " + small.format(FORK_BORDER, "copy")
        if scene.view == "forward" and fork and not proxy:
            rows.append(f"<FONT POINT-SIZE='{SMALL_FONT_SIZE}' COLOR='{FORK_BORDER}'>fork: "
                        f"{scene.consumers[node]} uses</FONT>")
        if scene.view == "backward":
            gradient = self._gradient_row(unit, fill, progress)
            # a copy of an input says what its stage adds, "dL/dw += 0.01": its value is on its node
            copied_input = proxy and node.op is None and not isinstance(data, np.ndarray)
            rows = [gradient] if copied_input and gradient else [*rows, gradient]
        attrs = {"fillcolor": fill, "color": border}
        if fork:
            attrs["penwidth"] = "1.6"
        if proxy:
            attrs["style"] = "rounded,filled,dashed"
        if node is scene.root:
            attrs["penwidth"] = "2.2"
        if progress is not None and progress.current is unit:
            attrs |= {"color": GRADIENT, "penwidth": "2.8"}
        label = "<BR ALIGN='LEFT'/>".join(row for row in rows if row) + "<BR ALIGN='LEFT'/>"
        graph.node(self.ids[unit], as_html(label), tooltip=self._node_tooltip(node), **attrs)

    def _gradient_row(self, unit: Node | Proxy, background: str, progress: Progress | None) -> str:
        """``dL/dc = 0.31 + 0.12 = 0.43``, or for a copy of a shared input what its stage adds, ``+= 0.01``.

        In a step-through frame the terms not yet sent back are written in the background colour: they keep
        their place, so every frame has the same layout.
        """
        scene = self.scene
        if isinstance(unit, Proxy):
            node, relation = unit.original, "+="
            links = [link for link in unit.branches if scene.term(link) is not None]
            terms = [scene.term(link) for link in links]
            total = sum(terms[1:], terms[0]) if terms else None
        else:
            node, relation = unit, "="
            total = scene.gradient(node)
            branches = scene.terms(node)
            links, terms = [(b.consumer, b.position) for b in branches], [b.term for b in branches]
        if total is None:
            return ""
        lhs = f"d{self.root_name}/d{self.names[node]} {relation} "
        sent = [progress is None or progress.sent(link) for link in links]
        if not links:  # the root: the seed of the pass
            parts = [(lhs + brief(total, self.digits), True)]
        elif len(links) == 1:
            parts = [(lhs, True), (brief(total, self.digits), sent[0])]
        elif len(links) <= MAX_SUM_TERMS and not isinstance(total, np.ndarray):
            texts = sum_texts(terms, total, self.digits)
            parts = [(lhs, True)] + [(("" if i == 0 else " + ") + shown, known)
                                     for i, (shown, known) in enumerate(zip(texts, sent))]
            parts.append((" = " + format_number(total, self.digits), all(sent)))
        elif relation == "+=":  # a stage's share of a shared input's gradient: the sum is what matters
            parts = [(lhs, True), (brief(total, self.digits), all(sent))]
        else:
            parts = [(lhs, True), (f"Σ {len(links)} branches", True), (" = " + brief(total, self.digits), all(sent))]
        return fragments(parts, GRADIENT, background)

    # --- lines ---
    def _edge(self, graph: Any, edge: Edge, progress: Progress | None) -> None:
        scene = self.scene
        tail, head = self.ids[edge.tail], self.ids[edge.head]
        node = source(edge.tail)
        attrs: dict[str, str] = {}
        if not self.safe and any(link in scene.conveyor for link in edge.branches):
            attrs |= {"color": CONVEYOR, "penwidth": "2.6", "weight": CONVEYOR_WEIGHT}
        elif node is not None and scene.consumers[node] > 1:
            attrs["color"] = FORK_BORDER
        if node is not None and is_constant(node):  # no gradient goes there: a plain line
            graph.edge(tail, head, **({"color": CONSTANT_LINE} | attrs | {"dir": "none"}))
            return
        if scene.view == "forward":
            if len(edge.branches) > 1:
                attrs |= {"label": as_html(text(f"{len(edge.branches)} edges")), "fontcolor": MUTED}
            graph.edge(tail, head, **attrs)
            return
        attrs["dir"] = "back"  # the gradient flows from consumer to input: the arrow points at the input
        links = [link for link in edge.branches if scene.term(link) is not None]
        if not links:  # into an input that needs no gradient: nothing comes back
            graph.edge(tail, head, **({"color": CONSTANT_LINE} | attrs | {"dir": "none"}))
            return
        sent = progress is None or all(progress.sent(link) for link in links)
        background = self._background(edge)
        by_value: dict[Node, Any] = {}  # an edge into or out of a box stands for edges of several values
        for consumer, position in links:
            value, term = consumer.parents[position], scene.term((consumer, position))
            by_value[value] = term if value not in by_value else by_value[value] + term
        if len(edge.branches) == 1:
            local, tooltip = self._local(*edge.branches[0])
            rows = [(brief(by_value.popitem()[1], self.digits, mean=False), sent)]
        elif len(by_value) == 1:
            (value, total), = by_value.items()
            local = f"Σ {len(links)} edges ="
            tooltip = f"the terms of {len(links)} edges into {self.names[value]}, added up: {brief(total, 6)}"
            rows = [(brief(total, self.digits, mean=False), sent)]
        else:  # one row per value, or their number and range
            local = ""
            tooltip = "; ".join(f"d{self.root_name}/d{self.names[value]} gets {brief(total, 6)}"
                                for value, total in by_value.items())
            rows = [(f"{self.names[value]}: {brief(total, self.digits, mean=False)}", sent)
                    for value, total in by_value.items()]
            if len(rows) > 2:
                low = min(np.min(total) for total in by_value.values())
                high = max(np.max(total) for total in by_value.values())
                shown = f"{format_number(low, self.digits)} … {format_number(high, self.digits)}"
                rows = [(f"{len(rows)} values: {shown}", sent)]
        # a matrix written out goes on one line per row: across the flow, its width is the picture's
        local = "<BR/>".join(text(line) for line in (local.replace("], [", "],\n[").split("\n")
                                                      if len(local) > MAX_ROW else [local]))
        # bold text comes out wider than dot reckons it: a space after each row keeps neighbouring labels apart
        label = (f"<FONT COLOR='{MUTED}'>{local}</FONT><BR/>" if local else "") + "<BR/>".join(
            fragments([row], GRADIENT, background) + " " for row in rows)
        # Across the flow a label widens the picture by its own width, and along a chain it shifts each link
        # aside: the labels of long edges and of edges between boxes are placed once the layout is made.
        span = abs(self.scene.early.get(edge.head, 0) - self.scene.early.get(edge.tail, 0))
        beside = span > 2 and not (isinstance(edge.tail, Box) and isinstance(edge.head, Box))
        where = "xlabel" if beside and XLABELS and self.rankdir in ("TB", "BT") else "label"
        attrs |= {where: as_html(label), "tooltip": tooltip_text(tooltip), "labeltooltip": tooltip_text(tooltip)}
        if progress is not None:
            if any(progress.fresh(link) for link in edge.branches):
                attrs |= {"color": GRADIENT, "penwidth": "2.4"}
            elif not sent:
                attrs["color"] = PENDING
        graph.edge(tail, head, **attrs)

    def _background(self, edge: Edge) -> str:
        """The fill of the innermost cluster holding both ends of an edge, where its label sits."""
        ends = [self.cluster(edge.tail), self.cluster(edge.head)]
        common = tuple(os.path.commonprefix(ends))
        while common not in self.depth:
            common = common[:-1]
        return cluster_colours(common, self.depth[common])[0]

    def _local(self, consumer: Node, position: int) -> tuple[str, str]:
        """The local derivative of one edge as the label shows it (``× 0.42 =``), and the chain-rule step
        written out for the tooltip: ``dL/dy · ∂y/∂h = 0.5 · 0.42 = 0.21, where ∂y/∂h = 1 - tanh(h)^2``."""
        names, scene = self.written, self.scene
        out, x = names[consumer], names[consumer.parents[position]]
        adjoint = f"d{self.root_name}/d{self.names[consumer]}"
        term = scene.term((consumer, position))
        if consumer in scene.folded:  # an edge into plumbing folded into its consumer
            return "", f"{adjoint} taken apart by {consumer.op.name}: {brief(term, 6)} for {x}"
        formula = local_formula(consumer, position, names, upstream=adjoint)
        value = local_value(consumer, position)
        upstream = scene.gradient(consumer)
        step = f"{adjoint} · ∂{out}/∂{x} = "
        if gives_whole_term(consumer, position):  # the formula is the term itself: x^T @ dL/dz
            return f"{shorten(formula, 24)}:", f"{formula} = {brief(term, 6)}"
        if value is None and is_number(formula.strip("()")):
            value = float(formula.strip("()"))
        if value is None:  # no short form (indexing, a reduction): the tooltip says what it does
            step += f"{brief(term, 6)}, where ∂{out}/∂{x} = {formula} (applied to {brief(upstream, 6)})"
            return ("" if is_prose(formula) else f"∂ {shorten(formula, 24)}:"), step
        step += f"{brief(upstream, 6)} · {brief(value, 6)} = {brief(term, 6)}"
        if not is_number(formula):
            step += f", where ∂{out}/∂{x} = {formula}"
        if isinstance(value, np.ndarray) and value.size and np.all(value == value.flat[0]):
            return f"× {format_number(value.flat[0], self.digits)} =", step  # the same for every element: once
        return f"× {brief(value, self.digits, mean=False)} =", step

    def _node_tooltip(self, node: Node) -> str:
        shown = self.names[node]
        if node.op is not None:
            shown += f" = {expression(node, self.written)}"
        shown += f" = {brief(node.data, 6)}"
        if node.stage:
            shown += f"  [{shorten(' / '.join(node.stage), MAX_WHOLE)}]"
        whole = self.scene.names[node]
        if whole != self.names[node]:  # shortened in the picture
            shown += f"\n{shorten(whole, MAX_WHOLE)}"
        return tooltip_text(shown)


def caption_lines(caption: str, width: int) -> list[str]:
    """A caption broken between words into lines of at most ``width`` characters (a longer word stays whole)."""
    return textwrap.wrap(caption, width, break_long_words=False, break_on_hyphens=False) or [""]


def direction(scene: Scene) -> str:
    """"LR" (inputs on the left) for a shallow graph, else "TB" (inputs on top).

    A notebook column is narrow and long: drawn top to bottom, a deep graph grows downwards, its stages one
    under another, and stays readable at the column's width; drawn left to right, every rank adds to the width.
    """
    depth, _ = scene.shape()
    return "LR" if depth <= SHALLOW else "TB"


def drawn_names(scene: Scene, digits: int) -> dict[Node, str]:
    """The scene's node names, with scalar constants written to the drawing's precision."""
    names = {node: shorten(name, MAX_NAME) for node, name in scene.names.items()}
    for node in scene.nodes:
        for parent in node.parents:
            if is_constant(parent) and np.size(parent.data) == 1:
                names[parent] = format_number(np.asarray(parent.data).item(), digits)
    return names


def written_names(scene: Scene, names: dict[Node, str]) -> dict[Node, str]:
    """Names as expressions use them: a folded plumbing node is written as what it arranges (``[a | b]`` for a
    concatenation, ``a^T`` for a transpose, just ``a`` for a reshape), or by its label if it has one."""
    written = dict(names)
    for node in scene.annotated.order:  # inputs first: a chain of plumbing is written from the inside out
        if node in scene.folded and not node.label:
            inner = [written[parent] for parent in node.parents]
            if node.op.name == "concatenate":
                written[node] = "[" + " | ".join(inner) + "]"
            elif node.op.name == "transpose":
                written[node] = f"{inner[0]}^T"
            else:
                written[node] = inner[0]
    return written


def cluster_colours(path: StagePath, depth: int) -> tuple[str, str]:
    if not path:
        return PAPER, CLUSTER_BORDER
    if any("backward" in name.split(" · ") for name in path):
        return BACKWARD_FILL, BACKWARD_BORDER
    return CLUSTER_FILLS[(depth - 1) % len(CLUSTER_FILLS)], CLUSTER_BORDER


def fragments(parts: list[tuple[str, bool]], colour: str, background: str) -> str:
    """Bold text in pieces, the pieces not yet known drawn in the background colour (keeping their place).
    A row longer than `MAX_ROW` characters goes on on further lines, broken between pieces."""
    pieces, line = [], 0
    for piece, shown in parts:
        if line and line + len(piece) > MAX_ROW:
            pieces.append("<BR ALIGN='LEFT'/>")
            line = 0
        # a space at either end of a piece is a no-break space: SVG drops a plain one there ("-0.00766+ 0.029")
        spaced = piece[:len(piece) - len(piece.lstrip(" "))].replace(" ", "\u00a0") + piece.strip(" ") + \
            piece[len(piece.rstrip(" ")):].replace(" ", "\u00a0") if piece.strip(" ") else piece
        pieces.append(f"<FONT COLOR='{colour if shown else background}'><B>{text(spaced)}</B></FONT>")
        line += len(piece)
    return "".join(pieces)


# --- escaping: nothing in a name reaches DOT as syntax ---------------------------------------------------------

WORD_JOINER = "\u2060"


def visible(raw: str) -> str:
    """A text with its control and invisible formatting characters shown as symbols: a newline as ␊, NUL as ␀,
    a right-to-left override as ⟨U+202E⟩. Graphviz refuses some of them and would act on others."""
    return "".join(_visible(char) if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                   else char for char in raw)


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ ... ␟
    if code == 0x7F:
        return "␡"
    return f"⟨U+{code:04X}⟩"


def text(raw: str) -> str:
    """Any text, safe inside an HTML-like label: markup characters escaped, control characters visible, and a
    backslash followed by an invisible word joiner (Graphviz would read ``\\G`` as the graph's name even
    there, and a character reference is read before that)."""
    return html.escape(visible(raw), quote=True).replace("\\", "\\" + WORD_JOINER)


def as_html(label: str) -> str:
    """An HTML-like label for Graphviz (single quotes in the markup above read more easily in Python)."""
    return "<" + label.replace("'", '"') + ">"


def tooltip_text(raw: str) -> str:
    """A tooltip as a quoted DOT string: backslashes doubled (Graphviz would read ``\\N`` as the node's name),
    quotes escaped, control characters visible, never read as an HTML-like string; a newline of ours is
    Graphviz's line break."""
    shown = shorten("\n".join(visible(line) for line in raw.split("\n")), MAX_TOOLTIP)
    lines = [line.replace("\\", "\\\\").replace('"', '\\"') for line in shown.split("\n")]
    return graphviz.nohtml("\\n".join(lines))


def shorten(raw: str, limit: int) -> str:
    limit = max(limit, 8)
    return raw if len(raw) <= limit else raw[:limit - 1] + "…"


def shape_of(data: np.ndarray) -> str:
    """``2×4``, with the dtype when it is not the default float64."""
    shape = "×".join(map(str, data.shape)) if data.shape else "scalar"
    return shape if data.dtype == np.float64 else f"{shape} {data.dtype}"
