"""Which stages a drawing shows as boxes, and the guard that refuses drawings too large to lay out.

- ``collapse="t=*"`` draws every stage whose name matches as one box; a pattern with a slash matches the whole
  path (``"t=*/forget gate"``); a list takes several patterns; a function receives the stage path (a tuple of
  names) and says yes or no. ``keep="t=3"`` exempts stages (with everything inside them).
- ``collapse="auto"`` (the default): in a graph of more than `AUTO_SHAPES` shapes with a loop, that is a run of
  sibling stages named alike but for their numbers (``t=1``, ``t=2``, ...), every step but one is a box: the
  one named by ``keep``, else the last; and while what is left in full is still large (a ScalarLSTM of
  several units or layers), every unit of a layer but the last is a box too, then every layer but the last.
- ``roll_up=True`` draws a run of such siblings whose contents have the same structure as one box
  ``t=1 … t=20 ×20``.
- ``max_nodes`` refuses a drawing with more shapes than that, before any layout starts, with advice on how to
  collapse it that has been checked to fit. Working the advice out costs a few counts of the graph's stages,
  each linear in their number.

Everything here works on a `Census`, the graph tallied by stage in one walk, so no plan walks the graph again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any, NamedTuple

from autograd.core import Node
from autograd.view.notation import is_constant

StagePath = tuple[str, ...]
StageFilter = str | Iterable[str] | Callable[[StagePath], bool] | None
Link = tuple[Node, int]

AUTO_SHAPES = 40  # shapes a drawing of a loop may have before "auto" draws all steps but one as boxes
UNIT_SHAPES = 90  # shapes drawn in full before "auto" draws all units (then all layers) but the last as boxes
LEAF_KINDS = ("leaf", "constant")
PLUMBING = frozenset({"reshape", "transpose", "concatenate"})  # ops that only move elements (see the scene)
SHARED = 2  # top-level stages that must use an input before each of them draws a copy of it
MAX_LISTED = 6  # stages an advice names one by one; more are collapsed with one pattern


class GraphTooLargeError(ValueError):
    """A drawing would have more than ``max_nodes`` shapes.

    The message says how to collapse it; ``options`` holds that advice as keyword arguments for `draw`
    (checked to fit under the limit), or None when no collapsing is enough.
    """

    def __init__(self, message: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.options = options


@dataclass(eq=False)
class Box:
    """A collapsed stage, or a rolled-up run of repeated sibling stages, drawn as one box."""

    title: str
    path: StagePath  # the stage it stands for (the first of a run)
    parent: StagePath  # the stage the box sits in
    top: StagePath  # the top-level stage it belongs to
    nodes: int  # nodes inside (per stage, for a run)
    repeats: int = 1
    # inputs from outside that the box summarises instead of drawing a line from each (parameters every step of
    # a loop uses): each with the edges through which the box's nodes use it; and the nodes outside that several
    # boxes of its loop feed (the outputs gathered after the loop), with the edges into them
    inputs: dict[Node, list[Link]] = field(default_factory=dict)
    outputs: dict[Node, list[Link]] = field(default_factory=dict)


class Placement(NamedTuple):
    """Where an input is drawn: its own node, and when it is shared by `SHARED` or more top-level stages, a
    copy in each of them that draws its uses in full."""

    copies: set[StagePath]  # the top-level stages that draw a copy
    shared: bool


# --- names of stages and patterns -----------------------------------------------------------------------------

def numbered(name: str) -> str:
    """A stage name with its numbers replaced by "#": stages of one loop share it (t=1, t=2 -> t=#)."""
    return re.sub(r"\d+", "#", name)


def numbers(name: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", name)]


def literal(name: str) -> str:
    """A stage name as a pattern that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def matcher(spec: StageFilter, argument: str) -> Callable[[StagePath], bool]:
    """A stage filter as a predicate on stage paths: patterns match the stage's name, or with "/" its path.

    Patterns are compiled into one regular expression per kind (name or path), so a list of many patterns
    costs one match per stage, not one per pattern.
    """
    if spec is None:
        return lambda path: False
    if callable(spec):
        return spec
    patterns = [spec] if isinstance(spec, str) else list(spec) if isinstance(spec, Iterable) else [spec]
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"draw: {argument}= takes stage-name patterns (strings), a list of them or a "
                            f"function of the stage path; got {pattern!r}")
    names = _compiled([pattern for pattern in patterns if "/" not in pattern])
    paths = _compiled([pattern for pattern in patterns if "/" in pattern])

    def matches(path: StagePath) -> bool:
        return names(path[-1]) or paths("/".join(path))
    return matches


def _compiled(patterns: list[str]) -> Callable[[str], bool]:
    """Whether a text matches any of the patterns: one set lookup for the literal ones (as `literal` writes a
    name), one regular expression for the rest."""
    exact, wild = set(), []
    for pattern in patterns:
        unescaped = re.sub(r"\[([*?\[])\]", r"\1", pattern)
        if re.search(r"[*?\[]", re.sub(r"\[[*?\[]\]", "", pattern)):
            wild.append(pattern)
        else:
            exact.add(unescaped)
    regex = re.compile("|".join(f"(?:{translate(pattern)})" for pattern in wild), re.DOTALL) if wild else None
    return lambda text: text in exact or regex is not None and regex.match(text) is not None


# --- the census ---------------------------------------------------------------------------------------------

class Census:
    """The graph tallied by stage: enough to plan boxes and count the shapes without walking it again."""

    def __init__(self, order: list[Node], show_constants: bool = True, repeat_shared: bool = True,
                 fold: bool = True) -> None:
        self.show_constants, self.repeat_shared, self.fold = show_constants, repeat_shared, fold
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
        self.tree = StageTree(self.tally)

    def plan(self, collapse: StageFilter, keep: StageFilter, roll_up: bool) -> dict[StagePath, Box | None]:
        return self.tree.plan(matcher(collapse, "collapse"), matcher(keep, "keep"), roll_up)

    def placement(self, stages: set[StagePath], leaf: Node, box_of: dict[StagePath, Box | None]
                  ) -> Placement | None:
        """Where an input used in these stages is drawn (None: nowhere)."""
        if not self.show_constants and is_constant(leaf):
            return None  # its value stays readable in the expressions that use it
        drawn = [stage for stage in stages if box_of[stage] is None]
        boxes = {box_of[stage] for stage in stages} - {None}
        if not drawn and (len(boxes) == 1 or all(self.in_loop(box) for box in boxes)):
            return None  # part of what its box stands for, or of the steps of a loop (each box says it uses it)
        tops = {stage[:1] for stage in drawn} - {()}
        if not self.repeat_shared or len(tops) < SHARED:
            return Placement(set(), False)
        return Placement(tops, True)

    def shapes(self, box_of: dict[StagePath, Box | None]) -> int:
        """How many shapes a drawing with these boxes has: nodes in full, boxes, inputs and their copies.

        The copies drawn for long edges are not counted: they make a layout cheaper, not dearer. Nor are the
        index plumbing nodes folded into their consumers (when ``fold``).
        """
        skipped = LEAF_KINDS + tuple(PLUMBING) if self.fold else LEAF_KINDS
        count = sum(n for (stage, kind), n in self.tally.items() if box_of[stage] is None and kind not in skipped)
        count += len({box for box in box_of.values() if box is not None})
        for leaf, stages in self.use_stages.items():
            if box_of[leaf.stage] is None:
                placement = self.placement(stages, leaf, box_of)
                count += 0 if placement is None else 1 + len(placement.copies)
        if self.lone_leaf is not None and box_of[self.lone_leaf.stage] is None:
            count += 1
        return count

    def in_loop(self, box: Box) -> bool:
        """Whether a box stands for steps of a loop: a rolled-up run, or one of several stages named alike."""
        if box.repeats > 1:
            return True
        template = numbered(box.title)
        siblings = self.tree.children.get(box.parent, ())
        return "#" in template and sum(numbered(sibling[-1]) == template for sibling in siblings) > 1

    def loop(self) -> list[StagePath] | None:
        """The steps of the graph's main loop: the largest run of sibling stages named alike but for their
        numbers (``t=1``, ``t=2``, ...; the shallowest wins a tie), in numeric order; None if there is none."""
        best: tuple[int, int] | None = None
        steps: list[StagePath] | None = None
        for parent, children in self.tree.children.items():
            families: dict[str, list[StagePath]] = {}
            for path in children:
                families.setdefault(numbered(path[-1]), []).append(path)
            for template, family in families.items():
                if "#" in template and len(family) > 1:
                    score = (sum(self.tree.size[path] for path in family), -len(parent))
                    if best is None or score > best:
                        best, steps = score, sorted(family, key=lambda path: numbers(path[-1]))
        return steps


def _kind(node: Node) -> str:
    """What the stage tally counts: the op, or the kind of leaf."""
    if node.op is not None:
        return node.op.name
    return "constant" if is_constant(node) else "leaf"


def resolve(census: Census, collapse: StageFilter, keep: StageFilter) -> tuple[StageFilter, StageFilter]:
    """``collapse="auto"`` made concrete: every step of the loop but the one kept (the last, unless ``keep``
    names others) as boxes, when the drawing in full would have more than `AUTO_SHAPES` shapes; and while what
    is left in full still has more than `UNIT_SHAPES`, inside it every member but the last of each family of
    stages named alike, innermost first: the units of a layer (``unit 0``, ``unit 1``, ...), then the layers
    of a step, the way steps are."""
    if not (isinstance(collapse, str) and collapse == "auto"):
        return collapse, keep
    steps = census.loop()
    full = census.shapes(census.plan(None, None, False))
    chosen: StageFilter = None
    shapes, depth = full, len(steps[0]) if steps else 0
    if steps is not None and full > AUTO_SHAPES:
        chosen = "/".join([*map(literal, steps[0][:-1]), numbered(literal(steps[0][-1])).replace("#", "*")])
        keep = keep if keep is not None else literal(steps[-1][-1])
        shapes = census.shapes(census.plan(chosen, keep, False))
    boxed: set[StagePath] = set()
    for level in census.tree.family_levels(set(steps or ())):
        if shapes <= UNIT_SHAPES:
            break
        boxed |= level
        shapes = census.shapes(census.plan(_with_boxes(chosen, keep, depth, boxed), None, False))
    if not boxed:
        return chosen, keep
    return _with_boxes(chosen, keep, depth, boxed), None


def _with_boxes(steps: StageFilter, keep: StageFilter, depth: int, boxed: set[StagePath]
                ) -> Callable[[StagePath], bool]:
    """A collapse filter: the steps a pattern names (at their depth, less those kept), and these stages."""
    is_step, kept = matcher(steps, "collapse"), matcher(keep, "keep")
    return lambda path: path in boxed or len(path) == depth and is_step(path) and not kept(path)


# --- the tree of stages, and which of them become boxes ----------------------------------------------------------

class StageTree:
    """The tree of stages with their sizes, from the tally; `plan` decides which stages become boxes."""

    def __init__(self, tally: Counter[tuple[StagePath, str]]) -> None:
        self.tally = tally
        self.stages = dict.fromkeys(stage for stage, _ in tally)  # in order of first appearance: drawings do not vary
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
                inside = tuple(numbered(name) for name in stage)  # t=101 inside block=2 is like t=1 in block=1
                for depth in range(len(stage), 0, -1):
                    self._contents[stage[:depth]][inside[depth:], kind] += count
        return self._contents

    def family_levels(self, loop: set[StagePath]) -> list[set[StagePath]]:
        """The stages drawn as boxes when the members of families are, level by level, innermost first: in each
        family of sibling stages named alike but for their numbers (other than the loop's steps), every member
        but the last (as steps). The units of a layer are one level, the layers of a step the next."""
        levels: dict[int, set[StagePath]] = {}
        for children in self.children.values():
            grouped: dict[str, list[StagePath]] = {}
            for path in children:
                if path not in loop:
                    grouped.setdefault(numbered(path[-1]), []).append(path)
            for template, family in grouped.items():
                if "#" in template and len(family) > 1:
                    ordered = sorted(family, key=lambda path: numbers(path[-1]))
                    levels.setdefault(len(family[0]), set()).update(ordered[:-1])
        return [levels[depth] for depth in sorted(levels, reverse=True)]

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
                    box = Box(path[-1], path, parent, path[:1], self.size[path])
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
            families.setdefault(numbered(path[-1]), []).append(path)
        runs: dict[StagePath, Box] = {}
        for template, family in families.items():
            if "#" not in template or len(family) < 2:
                continue
            family.sort(key=lambda path: numbers(path[-1]))
            run: list[StagePath] = []
            for path in [*family, None]:  # None closes the last run
                if run and (path is None or keep(path) or self.contents[path] != self.contents[run[0]]):
                    if len(run) > 1:
                        box = Box(f"{run[0][-1]} … {run[-1][-1]}", run[0], run[0][:-1], run[0][:1],
                                  self.size[run[0]], len(run))
                        runs.update(dict.fromkeys(run, box))
                    run = []
                if path is not None and not keep(path):
                    run.append(path)
        return runs


# --- the guard's advice -------------------------------------------------------------------------------------------

def advice(census: Census, shapes: int, max_nodes: int, view: str, given: dict[str, Any]
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
        least = census.shapes(census.plan("*", None, True))
        return message + (f"Even with every stage collapsed it would have {least:,} shapes ({len(tops):,} "
                          f"top-level stages, {unstaged:,} nodes outside any stage): group the stages inside "
                          "fewer `with stage('name'):` blocks, draw a smaller part, or raise max_nodes."), None
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    note = " (instead of the collapse/keep/roll_up given)" if any(value not in (None, False, "auto")
                                                                   for value in given.values()) else ""
    return message + (f"This one fits: draw(root, {view!r}, {arguments}){note}; "
                      "or collapse other stages, or raise max_nodes."), options


def _fitting_options(census: Census, tops: Counter[str], max_nodes: int) -> dict[str, Any] | None:
    """Collapse the fewest of the largest top-level stages (a numbered family as one pattern) that make the
    drawing fit; then try to keep the last stage of the largest family in full, which shows one step of a loop
    in detail. The fewest is found by bisection: collapsing more never draws more shapes."""
    pattern = {name: numbered(literal(name)).replace("#", "*") for name in tops}
    family_sizes = Counter(pattern.values())
    groups: Counter[str] = Counter()
    members: dict[str, list[str]] = {}
    for name, count in tops.items():
        group = pattern[name] if "*" in pattern[name] and family_sizes[pattern[name]] > 1 else literal(name)
        groups[group] += count
        members.setdefault(group, []).append(name)
    ranked = [group for group, _ in groups.most_common()]

    def collapsing(count: int) -> str | list[str]:
        return ranked[0] if count == 1 else ranked[:count]

    def fits(collapse: StageFilter, keep: StageFilter = None, roll_up: bool = False) -> bool:
        return census.shapes(census.plan(collapse, keep, roll_up)) <= max_nodes

    low, high = 1, len(ranked)
    if fits(collapsing(high)):
        while low < high:  # the smallest count that fits
            middle = (low + high) // 2
            if fits(collapsing(middle)):
                high = middle
            else:
                low = middle + 1
        collapse: str | list[str] = collapsing(low) if low <= MAX_LISTED or not fits("*") else "*"
        families = [group for group in ranked[:low] if len(members[group]) > 1]
        if families and collapse != "*":
            last = max(members[families[0]], key=numbers)
            if fits(collapse, literal(last)):
                return {"collapse": collapse, "keep": literal(last)}
        return {"collapse": collapse}
    for collapse in (collapsing(len(ranked)), "*"):
        if fits(collapse, None, True):
            return {"collapse": collapse, "roll_up": True}
    return None
