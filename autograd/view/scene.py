"""What a drawing shows, worked out once: the nodes drawn, the stages drawn as boxes, the lines between them,
and for the backward view the numbers of one reverse pass. `autograd.view.draw` turns a scene into DOT; a
step-through draws the same scene once per step of the pass.

Stages (``with stage("t=2"):``) are drawn as nested clusters. Large graphs are tamed by drawing stages as
boxes:

- ``collapse="t=*"`` draws every stage whose name matches as one box with its edges in and out; a pattern
  with a slash matches the whole path (``"t=*/forget gate"``); a list takes several patterns; a function
  receives the stage path (a tuple of names) and says yes or no. ``keep="t=3"`` exempts stages (with
  everything inside them): ``collapse="t=*", keep="t=3"`` is all time steps but one.
- ``roll_up=True`` draws a run of sibling stages whose names differ only in their numbers and whose contents
  have the same structure (``t=1`` ... ``t=20``) as a single box ``t=1 … t=20 ×20``.
- ``max_nodes`` refuses a drawing with more shapes than that, before any layout starts, with advice on how
  to collapse it that has been checked to fit.

An input (a leaf) used by three or more top-level stages, like a weight every time step uses, is drawn again
in each of them as a copy that shows what that stage adds to its gradient; its own node keeps the total. This
keeps every stage readable on its own and spares edges across the whole picture. For the same reason a value
used by several boxes of one loop is listed in each box, and any other edge that would cross many ranks is
drawn from a copy of its tail placed beside its head.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal, NamedTuple

from autograd.core import Backprop, Node, backpropagate
from autograd.view.notation import ROOT_NAME, is_constant, names_in, reading_order, stage_order

View = Literal["forward", "backward"]
StagePath = tuple[str, ...]
StageFilter = str | Iterable[str] | Callable[[StagePath], bool] | None
Link = tuple[Node, int]  # a graph edge, named by its consumer and the input position it enters


class GraphTooLargeError(ValueError):
    """A drawing would have more than ``max_nodes`` shapes.

    The message says how to collapse it; ``options`` holds that advice as keyword arguments for `draw`
    (checked to fit under the limit), or None when no collapsing is enough.
    """

    def __init__(self, message: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.options = options


# --- the shapes of a drawing and the lines between them -------------------------------------------------------

@dataclass(eq=False)
class Box:
    """A collapsed stage, or a rolled-up run of repeated sibling stages, drawn as one box."""

    title: str
    parent: StagePath  # the stage the box sits in
    top: StagePath  # the top-level stage it belongs to
    nodes: int  # nodes inside (per stage, for a run)
    repeats: int = 1
    shared: dict[Node, Proxy] = field(default_factory=dict)  # values it uses that other boxes of its loop use
    # too: listed in the box with what it adds to their gradients, instead of a line from each


@dataclass(eq=False)
class Proxy:
    """A node drawn again where it is used: an input shared by several top-level stages, in each of them (see
    the module notes), or a value listed in a box. It shows what those uses add to the node's gradient."""

    original: Node
    stage: StagePath  # where it is drawn: the innermost stage holding all of those uses
    branches: list[Link] = field(default_factory=list)


Unit = Node | Box | Proxy  # one shape in the picture


@dataclass(eq=False)
class Edge:
    """One line in the picture, standing for one graph edge or, into or out of a box, several."""

    tail: Unit
    head: Unit
    branches: list[Link] = field(default_factory=list)


def place(unit: Unit) -> StagePath:
    """The stage (cluster) a shape is drawn in."""
    return unit.parent if isinstance(unit, Box) else unit.stage


def source(unit: Unit) -> Node | None:
    """The graph node a shape stands for (None for a box)."""
    if isinstance(unit, Proxy):
        return unit.original
    return None if isinstance(unit, Box) else unit


def common_stage(stages: Iterable[StagePath]) -> StagePath:
    return tuple(os.path.commonprefix(list(stages)))


# --- the scene ------------------------------------------------------------------------------------------------

class Scene:
    """Everything a drawing shows, worked out once; `autograd.view.draw` writes it as DOT for any step of the pass."""

    def __init__(self, root: Node, view: View = "forward", *, collapse: StageFilter = None,
                 keep: StageFilter = None, roll_up: bool = False, repeat_shared: bool = True,
                 show_constants: bool = True, max_nodes: int = 2000) -> None:
        if not isinstance(root, Node):
            raise TypeError(f"draw: expected a graph node (Value or Tensor), got {type(root).__name__}")
        if view not in ("forward", "backward"):
            raise ValueError(f"draw: view must be 'forward' or 'backward', got {view!r}")
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise ValueError(f"draw: max_nodes must be a positive integer, got {max_nodes!r}")
        self.root, self.view = root, view
        order = reading_order(root)
        census = Census(order, show_constants, repeat_shared)
        self.box_of = census.plan(collapse, keep, roll_up)
        shapes = census.shapes(self.box_of)
        if shapes > max_nodes:
            options = {"collapse": collapse, "keep": keep, "roll_up": roll_up}
            raise GraphTooLargeError(*advice(census, shapes, max_nodes, view, options))
        # as `autograd.view.explain` names them (`node_names`), so the two can be read side by side; from the order
        # already at hand rather than a second walk of the graph
        self.names = names_in(stage_order(order), root_name=ROOT_NAME)
        self.consumers = census.consumers  # edges out of each node: more than one is a fork
        self.substages = census.plans.children  # the tree of stages (the root is ())
        self.boxes = list(dict.fromkeys(box for box in self.box_of.values() if box is not None))
        copies = self._copy_shared_inputs(census)
        self._connect(order, copies)
        self._list_in_boxes()
        self.early, self.late = self._ranks()
        self._copy_far_tails()
        self.spine = self._spine()
        joined = {edge.tail for edge in self.edges}
        self.floating = {leaf for leaf in copies if leaf not in joined}  # drawn apart, in a table of totals
        self.backprop: Backprop | None = None
        if view == "backward":
            self.backprop = backpropagate(root, record_branches=True)
        self._terms: dict[Node, dict[Link, Any]] = {}
        self._families: dict[StagePath, Counter[str]] = {}

    def _copy_shared_inputs(self, census: Census) -> dict[Node, dict[StagePath, Proxy]]:
        """Where each input is drawn: the copies of shared inputs, by top-level stage (see `Census.placement`);
        the inputs drawn nowhere are remembered in ``self.hidden``."""
        box_of = self.box_of
        self.proxies: list[Proxy] = []
        self.hidden: set[Node] = set()
        copies: dict[Node, dict[StagePath, Proxy]] = {}
        for leaf, stages in census.use_stages.items():
            if box_of[leaf.stage] is not None:
                continue  # inside a box
            placement = census.placement(stages, leaf, box_of)
            if placement is None:
                self.hidden.add(leaf)
            elif placement.shared:
                copies[leaf] = {}
                for top in sorted(placement.copies):
                    inside = [stage for stage in stages if stage[:1] == top and box_of[stage] is None]
                    copies[leaf][top] = Proxy(leaf, common_stage(inside))
                self.proxies += copies[leaf].values()
        return copies

    def _connect(self, order: list[Node], copies: dict[Node, dict[StagePath, Proxy]]) -> None:
        """One pass over the edges: the nodes drawn in full, and the lines between shapes (one line for all
        the edges between a box and another shape)."""
        box_of = self.box_of
        self.nodes: list[Node] = []  # in reading order
        self.edges: list[Edge] = []
        self.recurrent: set[Box] = set()  # boxes of rolled-up runs whose stages feed one another
        merged: dict[tuple[Unit, Unit], Edge] = {}
        for node in order:
            head = box_of[node.stage] or node
            if head is node and node not in self.hidden:
                self.nodes.append(node)
            for position, parent in enumerate(node.parents):
                tail = box_of[parent.stage] or parent
                if tail is head:
                    if isinstance(head, Box) and head.repeats > 1:
                        depth = len(head.parent) + 1  # the stages of the run sit at this depth
                        if parent.stage[:depth] != node.stage[:depth]:
                            self.recurrent.add(head)
                    continue
                if parent in self.hidden:
                    continue
                if parent in copies and head is node:
                    copy = copies[parent].get(node.stage[:1])
                    if copy is not None:
                        copy.branches.append((node, position))
                        tail = copy
                if isinstance(tail, Box) or isinstance(head, Box):
                    edge = merged.get((tail, head))
                    if edge is None:
                        edge = merged[tail, head] = Edge(tail, head)
                        self.edges.append(edge)
                    edge.branches.append((node, position))
                else:
                    self.edges.append(Edge(tail, head, [(node, position)]))

    def _list_in_boxes(self) -> None:
        """A value that several boxes of one loop use (a weight every time step needs) is listed in each box,
        with what the box adds to its gradient, instead of a line from it to each box across the picture."""
        into_boxes: dict[Unit, list[Edge]] = {}
        for edge in self.edges:
            if isinstance(edge.head, Box) and not isinstance(edge.tail, Box):
                into_boxes.setdefault(edge.tail, []).append(edge)
        listed: set[Edge] = set()
        for tail, edges in into_boxes.items():
            runs = Counter(_run_of(edge.head) for edge in edges)
            for edge in edges:
                if runs[_run_of(edge.head)] > 1 and "#" in _run_of(edge.head):
                    edge.head.shared[tail] = Proxy(tail, edge.head.parent, edge.branches)
                    listed.add(edge)
        if listed:
            self.edges = [edge for edge in self.edges if edge not in listed]

    def _copy_far_tails(self) -> None:
        """An edge that stretches across many ranks (h_t of every step feeding the outputs gathered after the
        last one) is drawn from a copy of its tail placed beside its head, one copy per top-level stage.
        Graphviz routes a long edge through a chain of hidden nodes, one per rank, and a few dozen long edges
        make a layout of a few hundred shapes take minutes. An edge counts as long only if it is long both
        with every shape as early as it can be and with every shape as late as it can be: Graphviz keeps
        edges short, and one of the two is usually close to what it does."""
        early, late = self.early, self.late
        copies: dict[tuple[Node, StagePath], Proxy] = {}
        for edge in self.edges:
            tail, head = edge.tail, edge.head
            if isinstance(tail, Node) and min(early[head] - early[tail], late[head] - late[tail]) > LONG_EDGE:
                where = place(head)
                copy = copies.get((tail, where[:1]))
                if copy is None:
                    copy = copies[tail, where[:1]] = Proxy(tail, where)
                    self.proxies.append(copy)
                copy.stage = common_stage([copy.stage, where])
                copy.branches += edge.branches
                edge.tail = copy

    def _spine(self) -> list[Unit]:
        """The longest chain of shapes into the root (through an LSTM: the cell state from step to step).

        Drawn in a straight line, it keeps the steps of a loop one under the other; left to itself, Graphviz
        tends to shift each step a little further aside, into a staircase that is mostly empty space.
        """
        inputs: dict[Unit, list[Unit]] = {}
        for edge in self.edges:
            inputs.setdefault(edge.head, []).append(edge.tail)
        early = self.early  # ranked before the copies of far tails, which start no long chain
        spine: list[Unit] = [self.unit_of(self.root)]
        while inputs.get(spine[-1]):
            longest = max(inputs[spine[-1]], key=lambda unit: early.get(unit, 0))
            if longest in spine:  # boxes can feed one another both ways
                break
            spine.append(longest)
        return spine

    def shape(self) -> tuple[int, int]:
        """How deep (ranks) and how broad (shapes in the fullest rank) the drawing is, roughly."""
        counts = Counter(rank for unit, rank in self.late.items() if unit not in self.floating)
        return len(counts), max(counts.values(), default=0)

    def _ranks(self) -> tuple[dict[Unit, int], dict[Unit, int]]:
        """Each shape's rank (its column, drawn left to right) with every shape as early as its inputs allow,
        and with every shape as late as its uses allow (just before the first)."""
        inputs: dict[Unit, list[Unit]] = {}
        users: dict[Unit, list[Unit]] = {}
        for edge in self.edges:
            inputs.setdefault(edge.head, []).append(edge.tail)
            users.setdefault(edge.tail, []).append(edge.head)
        units = [*self.nodes, *self.boxes, *self.proxies]
        waiting = {unit: len(inputs.get(unit, ())) for unit in units}
        ready = [unit for unit in units if not waiting[unit]]
        order: list[Unit] = []
        while ready:
            unit = ready.pop()
            order.append(unit)
            for user in users.get(unit, ()):
                waiting[user] -= 1
                if not waiting[user]:
                    ready.append(user)
        order += [unit for unit in units if waiting[unit]]  # shapes on a cycle (boxes can make one) go last
        early: dict[Unit, int] = {}
        for unit in order:
            early[unit] = 1 + max((early[tail] for tail in inputs.get(unit, ()) if tail in early), default=-1)
        late = dict(early)
        for unit in reversed(order):
            if unit in users:
                late[unit] = min(late[user] for user in users[unit]) - 1
        return early, late

    # --- the numbers of the reverse pass (backward view) ---
    def gradient(self, node: Node) -> Any:
        """dL/d node from the scene's reverse pass (None where no gradient reaches it)."""
        return self.backprop.adjoints.get(node) if self.backprop else None

    def terms(self, node: Node) -> list[tuple[Link, Any]]:
        """The gradient terms that came back along each edge out of ``node``, in the order they arrived."""
        if self.backprop is None:
            return []
        return [((b.consumer, b.position), b.term) for b in self.backprop.terms(node)]

    def term(self, branch: Link) -> Any:
        """The gradient term sent back along one edge (None if none was: its input needs no gradient)."""
        consumer, position = branch
        parent = consumer.parents[position]
        terms = self._terms.get(parent)
        if terms is None:
            terms = self._terms[parent] = dict(self.terms(parent))
        return terms.get(branch)

    def in_numbered_run(self, path: StagePath) -> bool:
        """Whether a stage is one of several siblings named alike but for their numbers (t=1, t=2, ...)."""
        families = self._families.get(path[:-1])
        if families is None:
            siblings = self.substages.get(path[:-1], ())
            families = self._families[path[:-1]] = Counter(_numbered(sibling[-1]) for sibling in siblings)
        template = _numbered(path[-1])
        return "#" in template and families[template] > 1

    def unit_of(self, node: Node) -> Unit:
        """The shape a node is drawn as or inside of (a hidden input counts as itself)."""
        return self.box_of.get(node.stage) or node


# --- counting shapes for any choice of boxes, and the advice when there are too many -----------------------

class Census:
    """The graph tallied by stage: enough to plan boxes and count the shapes without walking it again."""

    def __init__(self, order: list[Node], show_constants: bool = True, repeat_shared: bool = True) -> None:
        self.show_constants, self.repeat_shared = show_constants, repeat_shared
        self.tally: Counter[tuple[StagePath, str]] = Counter()
        self.consumers: Counter[Node] = Counter()
        use_stages: dict[Node, set[StagePath]] = {}
        for node in order:
            self.tally[node.stage, _kind(node)] += 1
            for parent in node.parents:
                self.consumers[parent] += 1
                if parent.op is None:
                    use_stages.setdefault(parent, set()).add(node.stage)
        self.use_stages = use_stages  # the stages of each input's consumers
        self.lone_leaf = order[0] if len(order) == 1 else None  # a graph of one node, an input
        self.plans = _StageTree(self.tally)

    def plan(self, collapse: StageFilter, keep: StageFilter, roll_up: bool) -> dict[StagePath, Box | None]:
        return self.plans.plan(_matcher(collapse, "collapse"), _matcher(keep, "keep"), roll_up)

    def placement(self, stages: set[StagePath], leaf: Node, box_of: dict[StagePath, Box | None]
                  ) -> Placement | None:
        """Where an input used in these stages is drawn (None: nowhere)."""
        if not self.show_constants and is_constant(leaf):
            return None  # its value stays readable in the expressions that use it
        boxes = {box_of[stage] for stage in stages}
        if len(boxes) == 1 and None not in boxes:
            return None  # used inside one box only: it is part of what the box stands for
        tops = {box_of[stage].top if box_of[stage] else stage[:1] for stage in stages} - {()}
        if not self.repeat_shared or len(tops) < SHARED:
            return Placement(set(), False)
        return Placement({stage[:1] for stage in stages if stage and box_of[stage] is None}, True)

    def shapes(self, box_of: dict[StagePath, Box | None]) -> int:
        """How many shapes a drawing with these boxes has: nodes in full, boxes, inputs and their copies.

        The copies drawn for long edges are not counted: they make a layout cheaper, not dearer.
        """
        count = sum(n for (stage, kind), n in self.tally.items()
                    if box_of[stage] is None and kind not in LEAF_KINDS)
        count += len({box for box in box_of.values() if box is not None})
        for leaf, stages in self.use_stages.items():
            if box_of[leaf.stage] is None:
                placement = self.placement(stages, leaf, box_of)
                count += 0 if placement is None else 1 + len(placement.copies)
        if self.lone_leaf is not None and box_of[self.lone_leaf.stage] is None:
            count += 1
        return count


LEAF_KINDS = ("leaf", "constant")
LONG_EDGE = 16  # ranks an edge may cross before it is drawn from a copy of its tail
SHARED = 3  # top-level stages that must use an input before each of them draws a copy of it


class Placement(NamedTuple):
    """Where an input is drawn: its own node, and when it is shared by ``SHARED`` or more top-level stages, a
    copy in each of them that draws its uses in full."""

    copies: set[StagePath]  # the top-level stages that draw a copy
    shared: bool


def _run_of(box: Box) -> str:
    """The stage name of a box with its numbers replaced: the boxes of one loop share it (t=#), even when the
    loop is cut into blocks (block=#/t=#)."""
    return _numbered(box.title)


def _numbered(name: str) -> str:
    """A stage name with its numbers replaced by "#": stages of one loop share it (t=1, t=2 -> t=#)."""
    return re.sub(r"\d+", "#", name)


def _kind(node: Node) -> str:
    """What the stage tally counts: the op, or the kind of leaf."""
    if node.op is not None:
        return node.op.name
    return "constant" if is_constant(node) else "leaf"


def advice(census: Census, shapes: int, max_nodes: int, view: View, given: dict[str, Any]
           ) -> tuple[str, dict[str, Any] | None]:
    """Why a drawing is refused, and options for `draw` that collapse it under the limit (None if none do)."""
    message = (f"draw: this drawing would have {shapes:,} shapes, more than max_nodes={max_nodes:,}; Graphviz "
               "would take very long and the picture would be unreadable. ")
    tops: Counter[str] = Counter()
    for (stage, _), count in census.tally.items():
        if stage:
            tops[stage[0]] += count
    if not tops:
        return message + ("The graph has no stages to collapse: record the computation inside "
                          "`with stage('name'):` blocks, draw a smaller part, or raise max_nodes."), None
    listing = ", ".join(f"{name} ({count:,} nodes)" for name, count in list(tops.items())[:6])
    if len(tops) > 6:
        listing += f", … ({len(tops) - 6} more)"
    message += f"Top-level stages: {listing}. "
    options = _fitting_options(census, tops, max_nodes)
    if options is None:
        unstaged = sum(n for (stage, kind), n in census.tally.items() if not stage and kind not in LEAF_KINDS)
        return message + (f"Even with every stage collapsed it would be too large ({unstaged:,} nodes are "
                          "outside any stage): record them inside `with stage('name'):` blocks, draw a smaller "
                          "part, or raise max_nodes."), None
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    note = " (instead of the collapse/keep/roll_up given)" if any(given.values()) else ""
    return message + (f"This one fits: draw(root, {view!r}, {arguments}){note}; "
                      "or collapse other stages, or raise max_nodes."), options


def _fitting_options(census: Census, tops: Counter[str], max_nodes: int) -> dict[str, Any] | None:
    """Collapse the largest top-level stages (a numbered family as one pattern) until the drawing fits; then
    try to keep the last stage of the largest family in full, which shows one step of a loop in detail."""
    pattern = {name: _numbered(_literal(name)).replace("#", "*") for name in tops}
    family_sizes = Counter(pattern.values())
    groups: Counter[str] = Counter()
    members: dict[str, list[str]] = {}
    for name, count in tops.items():
        group = pattern[name] if "*" in pattern[name] and family_sizes[pattern[name]] > 1 else _literal(name)
        groups[group] += count
        members.setdefault(group, []).append(name)
    chosen: list[str] = []
    for group, _ in groups.most_common():
        chosen.append(group)
        collapse = chosen[0] if len(chosen) == 1 else list(chosen)
        if census.shapes(census.plan(collapse, None, False)) <= max_nodes:
            families = [g for g in chosen if len(members[g]) > 1]
            if families:
                last = max(members[families[0]], key=lambda name: [int(n) for n in re.findall(r"\d+", name)])
                if census.shapes(census.plan(collapse, _literal(last), False)) <= max_nodes:
                    return {"collapse": collapse, "keep": _literal(last)}
            return {"collapse": collapse}
    for collapse in (chosen[0] if len(chosen) == 1 else list(chosen), "*"):
        if census.shapes(census.plan(collapse, None, True)) <= max_nodes:
            return {"collapse": collapse, "roll_up": True}
    return None


def _literal(name: str) -> str:
    """A stage name as a pattern that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", name)


# --- which stages become boxes ------------------------------------------------------------------------------

def _matcher(spec: StageFilter, argument: str) -> Callable[[StagePath], bool]:
    """A stage filter as a predicate on stage paths: patterns match the stage's name, or with "/" its path."""
    if spec is None:
        return lambda path: False
    if callable(spec):
        return spec
    patterns = [spec] if isinstance(spec, str) else list(spec) if isinstance(spec, Iterable) else [spec]
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"draw: {argument}= takes stage-name patterns (strings), a list of them or a "
                            f"function of the stage path; got {pattern!r}")

    def matches(path: StagePath) -> bool:
        return any(fnmatchcase("/".join(path) if "/" in pattern else path[-1], pattern) for pattern in patterns)
    return matches


class _StageTree:
    """The tree of stages with their sizes, from the tally; `plan` decides which stages become boxes."""

    def __init__(self, tally: Counter[tuple[StagePath, str]]) -> None:
        self.tally = tally
        self.stages = {stage for stage, _ in tally}
        self.size: Counter[StagePath] = Counter()
        self.children: dict[StagePath, list[StagePath]] = {}
        for (stage, _), count in tally.items():  # in order of first appearance
            for depth in range(len(stage), 0, -1):
                path = stage[:depth]
                if path not in self.size:
                    self.children.setdefault(path[:-1], []).append(path)
                self.size[path] += count
        self._contents: dict[StagePath, Counter[tuple[StagePath, str]]] | None = None

    @property
    def contents(self) -> dict[StagePath, Counter[tuple[StagePath, str]]]:
        """What each stage holds, as (path inside it, op) -> count: stages with equal contents roll up."""
        if self._contents is None:
            self._contents = {path: Counter() for path in self.size}
            for (stage, kind), count in self.tally.items():
                inside = tuple(_numbered(name) for name in stage)  # t=101 inside block=2 is like t=1 in block=1
                for depth in range(len(stage), 0, -1):
                    self._contents[stage[:depth]][inside[depth:], kind] += count
        return self._contents

    def plan(self, collapse: Callable[[StagePath], bool], keep: Callable[[StagePath], bool],
             roll_up: bool) -> dict[StagePath, Box | None]:
        """For every stage path that holds nodes, the box it is drawn in (None: drawn in full).

        Works top-down, so the outermost decision wins: a kept stage is drawn in full with everything inside
        it; otherwise a stage in a rolled-up run, or one that matches ``collapse``, is a box.
        """
        box_of: dict[StagePath, Box | None] = dict.fromkeys(self.stages)
        pending: list[StagePath] = [()]
        while pending:
            parent = pending.pop()
            siblings = self.children.get(parent, [])
            runs = self._runs(siblings, keep) if roll_up else {}
            for path in siblings:
                if keep(path):
                    continue  # drawn in full, and everything inside it too
                box = runs.get(path)
                if box is None and collapse(path):
                    box = Box(path[-1], parent, path[:1], self.size[path])
                if box is None:
                    pending.append(path)
                else:
                    self._fill(path, box, box_of)
        return box_of

    def _fill(self, path: StagePath, box: Box, box_of: dict[StagePath, Box | None]) -> None:
        stack = [path]
        while stack:
            path = stack.pop()
            if path in box_of:
                box_of[path] = box
            stack += self.children.get(path, ())

    def _runs(self, siblings: list[StagePath], keep: Callable[[StagePath], bool]) -> dict[StagePath, Box]:
        """Rolled-up runs among sibling stages: names equal but for their numbers, consecutive, same contents."""
        families: dict[str, list[StagePath]] = {}
        for path in siblings:
            families.setdefault(_numbered(path[-1]), []).append(path)
        runs: dict[StagePath, Box] = {}
        for template, family in families.items():
            if "#" not in template or len(family) < 2:
                continue
            family.sort(key=lambda path: [int(n) for n in re.findall(r"\d+", path[-1])])
            run: list[StagePath] = []
            for path in [*family, None]:  # None closes the last run
                if run and (path is None or keep(path) or self.contents[path] != self.contents[run[0]]):
                    if len(run) > 1:
                        box = Box(f"{run[0][-1]} … {run[-1][-1]}", run[0][:-1], run[0][:1],
                                  self.size[run[0]], len(run))
                        runs.update(dict.fromkeys(run, box))
                    run = []
                if path is not None and not keep(path):
                    run.append(path)
        return runs
