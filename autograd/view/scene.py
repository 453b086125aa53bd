"""What a drawing shows, worked out once: the shapes, where each sits, the lines between them, and for the
backward view the numbers of one reverse pass (an `autograd.view.annotated.AnnotatedPass`). `autograd.view.dot`
writes a scene as DOT; a step-through writes the same scene once per step of the pass.

- Stages (``with stage("t=2"):``) are clusters; `autograd.view.boxes` decides which of them are boxes.
- Index plumbing, an op that only moves elements (reshape, transpose, concatenate) and feeds one consumer, is
  folded into that consumer (``fold=True``): its inputs are drawn going straight into the consumer, whose
  expression shows the arrangement (``[x[0] | h[t=1] | 1] @ W``), unless it has a name of its own.
- An input (a leaf) is drawn inside the innermost stage that holds all its drawn uses. One used by three or
  more top-level stages, like a weight every time step uses, is drawn again in each of them as a copy that
  shows what that stage adds to its gradient; its own node, in a table apart, keeps the total. An input that
  a step of a loop drawn as a box uses (its weights, its slice of the input) is summarised in the box instead
  of a line into it from each.
- Any other edge that would cross many ranks is drawn from a copy of its tail placed beside its head.
- In a loop (steps ``t=1``, ``t=2``, ...) the values carried from step to step along the shortest path through
  each step (in an LSTM the cell state, through ``f * c`` and ``c = f * c + i * g``; in a ScalarLSTM one such
  path per element) are the conveyor: drawn as heavy, straight lines through the steps.
- A value computed in a box that several shapes outside use (the hidden state of the step before, into the
  four gates) is drawn once more where those uses are, so its fork and the sum of its branches show.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from autograd.core import Branch, Node
from autograd.view.annotated import AnnotatedPass, Link
from autograd.view.boxes import (
    PLUMBING,
    Box,
    Census,
    GraphTooLargeError,
    StageFilter,
    StagePath,
    advice,
    numbered,
    resolve,
)
from autograd.view.order import topological_sort

View = Literal["forward", "backward"]

LONG_EDGE = 16  # ranks an edge may cross before it is drawn from a copy of its tail


@dataclass(eq=False)
class Proxy:
    """A node drawn again where it is used: an input shared by several top-level stages, in each of them, or the
    tail of a long edge, beside its head. It shows what those uses add to the node's gradient."""

    original: Node
    stage: StagePath  # where it is drawn: the innermost stage holding all of those uses
    branches: list[Link] = field(default_factory=list)
    box: Box | None = None  # the box it is computed in, for a value brought out of one


Unit = Node | Box | Proxy  # one shape in the picture


@dataclass(eq=False)
class Edge:
    """One line in the picture, standing for one graph edge or, into or out of a box, several. An edge into a
    node through folded plumbing stands for the edge into the plumbing."""

    tail: Unit
    head: Unit
    branches: list[Link] = field(default_factory=list)


def source(unit: Unit) -> Node | None:
    """The graph node a shape stands for (None for a box)."""
    if isinstance(unit, Proxy):
        return unit.original
    return None if isinstance(unit, Box) else unit


def common_stage(stages: Iterable[StagePath]) -> StagePath:
    return tuple(os.path.commonprefix(list(stages)))


def _shortest_chains(ends: set[Node], entering: Callable[[Node], bool], inside: Callable[[Node], bool]
                     ) -> list[list[Node]]:
    """The shortest chains of nodes from an ``entering`` one through ``inside`` ones to one of ``ends`` (a search
    backwards from all the ends at once, level by level), each with the entering one first: all that are as
    short as the shortest (in a scalar LSTM, one per element of the cell state)."""
    towards: dict[Node, Node | None] = dict.fromkeys(ends)
    level = list(ends)
    while level:
        found, following = [], []
        for node in level:
            for parent in node.parents:
                if entering(parent):
                    chain = [parent, node]
                    while towards[chain[-1]] is not None:
                        chain.append(towards[chain[-1]])
                    found.append(chain)
                elif parent not in towards and inside(parent):
                    towards[parent] = node
                    following.append(parent)
        if found:
            return found
        level = following
    return []


def _same_chain(before: list[Node], step: list[Node]) -> list[Node] | None:
    """In a step, the chain that does what ``before`` did in the step before it: from the value ``before`` carried
    in, through consumers of the same ops."""
    members = set(step)
    users: dict[Node, list[Node]] = {}
    for node in step:
        for parent in node.parents:
            users.setdefault(parent, []).append(node)
    chain = [before[-1]]
    for previous in before[1:]:
        following = [user for user in users.get(chain[-1], ()) if user.op is previous.op and user in members]
        if not following:
            return None
        chain.append(following[0])
    return chain


class Scene:
    """Everything a drawing shows, worked out once; `autograd.view.dot` writes it for any step of the pass."""

    def __init__(self, annotated: AnnotatedPass, view: View = "forward", *, collapse: StageFilter = "auto",
                 keep: StageFilter = None, roll_up: bool = False, repeat_shared: bool = True,
                 show_constants: bool = True, max_nodes: int = 2000, fold: bool = True) -> None:
        if view not in ("forward", "backward"):
            raise ValueError(f"draw: view must be 'forward' or 'backward', got {view!r}")
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise ValueError(f"draw: max_nodes must be a positive integer, got {max_nodes!r}")
        self.annotated, self.root, self.view = annotated, annotated.root, view
        order = annotated.order
        census = Census(order, show_constants, repeat_shared, fold)
        given = {"collapse": collapse, "keep": keep, "roll_up": roll_up}
        collapse, keep = resolve(census, collapse, keep)
        # what the scene was drawn with, so that a page can draw it again with one box opened
        self.options = {"collapse": collapse, "keep": keep, "roll_up": roll_up, "repeat_shared": repeat_shared,
                        "show_constants": show_constants, "max_nodes": max_nodes, "fold": fold}
        self.box_of = census.plan(collapse, keep, roll_up)
        shapes = census.shapes(self.box_of)
        if shapes > max_nodes:
            raise GraphTooLargeError(*advice(census, shapes, max_nodes, view, given))
        self.names = annotated.names
        self.consumers = census.consumers  # edges out of each node: more than one is a fork
        self.substages = census.tree.children  # the tree of stages (the root is ())
        self.boxes = list(dict.fromkeys(box for box in self.box_of.values() if box is not None))
        self.folded_into = self._fold(order) if fold else {}  # folded plumbing -> the node it is drawn in
        self.folded = set(self.folded_into)
        self.where: dict[Unit, StagePath] = {}  # where inputs are drawn, when not in their own stage
        copies = self._place_inputs(census)
        self._connect(order, copies)
        self._summarise_in_boxes(census)
        self._bring_in()
        self.early, self.late = self._ranks()
        self._copy_far_tails()
        self.loop = census.loop()
        self.conveyor = self._conveyor(order)
        joined = {edge.tail for edge in self.edges}
        self.floating = {leaf for leaf in copies if leaf not in joined}  # drawn apart, in a table of totals

    # --- where things are ---
    def place(self, unit: Unit) -> StagePath:
        """The stage (cluster) a shape is drawn in."""
        if isinstance(unit, Box):
            return unit.parent
        return self.where.get(unit, unit.stage)

    def unit_of(self, node: Node) -> Unit:
        """The shape a node is drawn as or inside of (a folded or hidden node counts as itself)."""
        return self.box_of.get(node.stage) or node

    def _fold(self, order: list[Node]) -> dict[Node, Node]:
        """The plumbing nodes drawn as part of their one consumer (see the module notes), each with the node it
        is drawn in (the consumer, or the one that consumer is drawn in)."""
        consumer: dict[Node, Node] = {}
        for node in order:
            for parent in node.parents:
                consumer[parent] = node
        box_of = self.box_of
        folded: dict[Node, Node] = {}
        for node in reversed(order):  # consumers first, so a chain of plumbing folds into where its end goes
            if (node.op is not None and node.op.name in PLUMBING and node is not self.root
                    and self.consumers[node] == 1 and box_of[node.stage] is None
                    and box_of[consumer[node].stage] is None):
                folded[node] = folded.get(consumer[node], consumer[node])
        return folded

    def _place_inputs(self, census: Census) -> dict[Node, dict[StagePath, Proxy]]:
        """Where each input is drawn (see `Census.placement`): inside the stage of its drawn uses, or as copies
        in each top-level stage that uses it; the inputs drawn nowhere are remembered in ``self.hidden``."""
        box_of = self.box_of
        self.proxies: list[Proxy] = []
        self.hidden: set[Node] = set()
        copies: dict[Node, dict[StagePath, Proxy]] = {}
        for leaf, stages in census.use_stages.items():
            if box_of[leaf.stage] is not None:
                continue  # inside a box
            placement = census.placement(stages, leaf, box_of)
            drawn = [stage for stage in stages if box_of[stage] is None]
            if placement is None:
                self.hidden.add(leaf)
            elif placement.shared:
                copies[leaf] = {}
                for top in sorted(placement.copies):
                    copies[leaf][top] = Proxy(leaf, common_stage([stage for stage in drawn if stage[:1] == top]))
                self.proxies += copies[leaf].values()
            elif not leaf.stage:
                self.where[leaf] = common_stage(drawn)
        return copies

    def _connect(self, order: list[Node], copies: dict[Node, dict[StagePath, Proxy]]) -> None:
        """One pass over the edges: the nodes drawn in full, and the lines between shapes (one line for all
        the edges between a box and another shape; a line through folded plumbing for its edge)."""
        box_of, folded = self.box_of, self.folded
        self.nodes: list[Node] = []  # in reading order
        self.edges: list[Edge] = []
        self.recurrent: set[Box] = set()  # boxes of rolled-up runs whose stages feed one another
        merged: dict[tuple[Unit, Unit], Edge] = {}
        for node in order:
            if node in folded:
                continue
            head = box_of[node.stage] or node
            if head is node and node not in self.hidden:
                self.nodes.append(node)
            for parent, link in self._inputs(node, head):
                tail = box_of[parent.stage] or parent
                if tail is head:
                    if isinstance(head, Box) and head.repeats > 1:
                        depth = len(head.parent) + 1  # the stages of the run sit at this depth
                        if parent.stage[:depth] != node.stage[:depth]:
                            self.recurrent.add(head)
                    continue
                if parent in self.hidden:
                    if isinstance(head, Box):  # an input drawn nowhere: the box says it uses it
                        head.inputs.setdefault(parent, []).append(link)
                    continue
                if parent in copies and head is node:
                    copy = copies[parent].get(node.stage[:1])
                    if copy is not None:
                        copy.branches.append(link)
                        tail = copy
                if isinstance(tail, Box) or isinstance(head, Box):
                    edge = merged.get((tail, head))
                    if edge is None:
                        edge = merged[tail, head] = Edge(tail, head)
                        self.edges.append(edge)
                    edge.branches.append(link)
                else:
                    self.edges.append(Edge(tail, head, [link]))

    def _inputs(self, node: Node, head: Unit) -> list[tuple[Node, Link]]:
        """A node's inputs with the edge each comes in by, looking through folded plumbing to what it moves."""
        if head is not node:
            return [(parent, (node, position)) for position, parent in enumerate(node.parents)]
        found: list[tuple[Node, Link]] = []
        stack = [(parent, (node, position)) for position, parent in reversed(list(enumerate(node.parents)))]
        while stack:
            parent, link = stack.pop()
            if parent in self.folded:
                stack += [(inner, (parent, position)) for position, inner in reversed(list(enumerate(parent.parents)))]
            else:
                found.append((parent, link))
        return found

    def _summarise_in_boxes(self, census: Census) -> None:
        """An input that a step of a loop drawn as a box uses from outside (its weights, its slice of the input)
        is summarised in the box, and so is a value several boxes of one loop use, or a node several of them
        feed (the outputs gathered after the loop), instead of a line across the picture from or to each box."""
        into_boxes: dict[Unit, list[Edge]] = {}
        out_of_boxes: dict[Unit, list[Edge]] = {}
        for edge in self.edges:
            if isinstance(edge.head, Box) and not isinstance(edge.tail, Box):
                into_boxes.setdefault(edge.tail, []).append(edge)
            elif isinstance(edge.tail, Box) and not isinstance(edge.head, Box):
                out_of_boxes.setdefault(edge.head, []).append(edge)
        listed: set[Edge] = set()
        for tail, edges in into_boxes.items():
            node = source(tail)
            runs = Counter(numbered(edge.head.title) for edge in edges)
            for edge in edges:
                if census.in_loop(edge.head) and (node.op is None or runs[numbered(edge.head.title)] > 1):
                    edge.head.inputs.setdefault(node, []).extend(edge.branches)
                    listed.add(edge)
        for head, edges in out_of_boxes.items():
            runs = Counter(numbered(edge.tail.title) for edge in edges)
            for edge in edges:
                if census.in_loop(edge.tail) and runs[numbered(edge.tail.title)] > 1:
                    edge.tail.outputs.setdefault(source(head), []).extend(edge.branches)
                    listed.add(edge)
        if listed:
            self.edges = [edge for edge in self.edges if edge not in listed]

    def _bring_in(self) -> None:
        """A value computed inside a box that several shapes outside use (the hidden state of the step before,
        into the four gates of the step drawn in full) is drawn once more where those uses are, so its fork and
        the sum of its branches show there: one line from the box to the copy, and from the copy to each use."""
        uses: dict[tuple[Box, Node], list[tuple[Edge, Link]]] = {}
        for edge in self.edges:
            if isinstance(edge.tail, Box) and not isinstance(edge.head, Box):
                for link in edge.branches:
                    uses.setdefault((edge.tail, link[0].parents[link[1]]), []).append((edge, link))
        for (box, value), found in uses.items():
            heads = {edge.head for edge, _ in found}
            if len(heads) < 2:
                continue
            copy = Proxy(value, common_stage(self.place(head) for head in heads), [link for _, link in found], box)
            self.proxies.append(copy)
            for edge, link in found:
                edge.branches.remove(link)
                self.edges.append(Edge(copy, edge.head, [link]))
            self.edges.append(Edge(box, copy, list(copy.branches)))
        self.edges = [edge for edge in self.edges if edge.branches]

    def _ranks(self) -> tuple[dict[Unit, int], dict[Unit, int]]:
        """Each shape's rank (its row, or column) with every shape as early as its inputs allow, and with
        every shape as late as its uses allow (just before the first)."""
        inputs: dict[Unit, list[Unit]] = {}
        users: dict[Unit, list[Unit]] = {}
        for edge in self.edges:
            inputs.setdefault(edge.head, []).append(edge.tail)
            users.setdefault(edge.tail, []).append(edge.head)
        order, cyclic = topological_sort([*self.nodes, *self.boxes, *self.proxies], inputs)
        order += cyclic  # shapes on a cycle (boxes can make one) go last
        early: dict[Unit, int] = {}
        for unit in order:
            early[unit] = 1 + max((early[tail] for tail in inputs.get(unit, ()) if tail in early), default=-1)
        late = dict(early)
        for unit in reversed(order):
            if unit in users:
                late[unit] = min(late[user] for user in users[unit]) - 1
        return early, late

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
                where = self.place(head)
                copy = copies.get((tail, where[:1]))
                if copy is None:
                    copy = copies[tail, where[:1]] = Proxy(tail, where)
                    self.proxies.append(copy)
                copy.stage = common_stage([copy.stage, where])
                copy.branches += edge.branches
                edge.tail = copy

    def _conveyor(self, order: list[Node]) -> set[Link]:
        """The edges of the conveyor (see the module notes): in each step of the loop, the shortest path from a
        value carried in (from the step before; into the first step, from outside or from a leaf of its own) to
        one carried on to the next step; in the last step, which carries nothing on, the path that does what
        the one before it did."""
        if self.loop is None:
            return set()
        depth = len(self.loop[0])
        index = {path: k for k, path in enumerate(self.loop)}
        step_of = {node: index.get(node.stage[:depth]) for node in order}
        carried: dict[int, set[Node]] = {}  # carried[k]: the values that step k + 1 takes from step k
        for node in order:
            k = step_of[node]
            if k:
                carried.setdefault(k - 1, set()).update(parent for parent in node.parents if step_of[parent] == k - 1)
        links: set[Link] = set()
        chains: list[list[Node]] = []
        for k in range(len(self.loop)):
            if k in carried:
                def entering(node: Node, k: int = k) -> bool:
                    before = step_of[node]
                    return before == k - 1 if k else before is None or before == 0 and node.op is None
                chains = _shortest_chains(carried[k], entering, lambda node, k=k: step_of[node] == k)
            else:
                step = [node for node in order if step_of[node] == k]
                chains = [chain for chain in (_same_chain(before, step) for before in chains) if chain]
            for chain in chains:
                links.update((node, node.parents.index(previous)) for previous, node in zip(chain, chain[1:]))
        return links

    def shape(self) -> tuple[int, int]:
        """How deep (ranks) and how broad (shapes in the fullest rank) the drawing is, roughly."""
        counts = Counter(rank for unit, rank in self.late.items() if unit not in self.floating)
        return len(counts), max(counts.values(), default=0)

    # --- the numbers of the reverse pass (backward view) ---
    def gradient(self, node: Node) -> Any:
        """dL/d node from the reverse pass (None where no gradient reaches it, or in the forward view)."""
        return self.annotated.gradient(node) if self.view == "backward" else None

    def terms(self, node: Node) -> list[Branch]:
        """The gradient terms that came back along each edge out of ``node``, in the order they were sent."""
        return self.annotated.terms(node) if self.view == "backward" else []

    def term(self, link: Link) -> Any:
        """The gradient term sent back along one edge (None if none was: its input needs no gradient)."""
        return self.annotated.term(link) if self.view == "backward" else None
