"""A teacher's verdict on a wrong gradient: which common mistake turns the engine's number into yours.

`autograd.check_derivation` finds the first claimed node, going back from the loss, whose gradient differs from
the engine's; this module says why, in one line, when the difference is one of the classics:

* a shape: yours is the engine's transposed, or not summed over the batch or a broadcast axis;
* a fork: a branch missing, or one counted twice (``c * c`` has two branches, both through one product);
* a local derivative taken as 1, or a value written for its derivative (sigmoid' as the sigmoid);
* the sign flipped, or the whole gradient scaled by a constant (the 1/2 of a squared error, a batch mean);
* gradients from the updated weights (Mazur's example computed with w5 after its step);
* the right number at the wrong node: another stage's or another step's gradient.

Each test costs one pass over the node's branches, or over the graph for the last one: the whole check stays
linear in the graph's size. A node used only through a view of it (``c0[0]``, a reshape) is followed to that
view, so a whole sequence's c0 gets the verdict its step's c_{t-1} gets.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from autograd.core import Node
from autograd.view.annotated import AnnotatedPass
from autograd.view.notation import expression, gives_whole_term, local_formula, local_value, summarize

MAX_GROUPS = 12  # the fork branches whose subsets are searched: 4,096 sums at most
MAX_PATH = 6  # how far a use is followed, within its stage, to a further fork
VIEWS = frozenset({"getitem", "reshape", "transpose"})  # ops that only pick or rearrange elements

__all__ = ["Branch", "Check", "Group", "Mismatch", "Verdict", "explain", "fit_shape"]


@dataclass(frozen=True)
class Verdict:
    """One common mistake, recognised: ``kind`` names it (``"sign flipped"``, ``"branch missing"`` ...),
    ``text`` says it in one line."""

    kind: str
    text: str


@dataclass(frozen=True)
class Check:
    """One claimed node: your dL/d(node), the engine's, and whether they agree within the tolerances.

    ``shape_verdict`` is set when your array has another shape than the node's and a common mistake explains it
    (then ``fitted`` is yours brought to the node's shape: summed, or transposed back)."""

    node: Node
    name: str
    yours: Any
    engine: Any
    agrees: bool
    shape_verdict: Verdict | None = None
    fitted: Any = None

    @property
    def stage(self) -> str:
        return " / ".join(self.node.stage) or "outside any stage"

    @property
    def max_difference(self) -> float:
        yours = self.yours if self.fitted is None else self.fitted
        return float(np.max(np.abs(np.asarray(yours) - np.asarray(self.engine)), initial=0.0))


@dataclass(frozen=True)
class Branch:
    """One use of the mismatched node: what comes back along it is ``upstream`` times the local derivative.

    ``consumer`` is the node that uses it (as its input ``position``), ``expression`` how it was computed;
    ``upstream`` the engine's dL/d(consumer),
    ``upstream_yours`` yours when you claimed it; ``formula`` the local derivative as the primitive table writes
    it (or, where ``whole_term`` is true, as for a matrix product, the whole term in dL/d(consumer)), ``local``
    its value (None where it is no elementwise factor) and ``term`` the engine's contribution along this branch.
    """

    consumer: Node
    consumer_name: str
    expression: str  # how the consumer was computed: f[t=1] * c0
    position: int
    upstream: Any
    upstream_yours: Any
    formula: str
    local: Any
    term: Any
    whole_term: bool = False
    operands: tuple[str, ...] = ()  # how the consumer's other unnamed inputs were computed: "v1 = x @ W1"


@dataclass(frozen=True)
class Group:
    """The branches of a fork that lead into one stage (``name`` is the stage's, ``staged`` is true) or, for a use
    outside any stage, that one use (``name`` is its label or how it was computed), with what they send back in
    total; ``via`` lists the nodes passed on the way to a further fork, when a use was followed to one."""

    name: str
    term: Any
    via: tuple[str, ...] = ()
    staged: bool = True


@dataclass(frozen=True)
class Mismatch:
    """The first claimed node where your number differs from the engine's, with what a reader needs to see why.

    ``groups`` are its fork's branches as the report names them, ``matches`` the names of those whose sum your
    number equals (None when no subset does, or the node has a single branch), ``hint`` a sentence on a local
    derivative your number seems to have used instead of the right one (or None), ``diagnosis`` the one-line
    verdict (a `Verdict`, or None when no common mistake explains the difference). When the node is used only
    through a view of it (``c0[0]``), ``followed`` is that view's name: the branches, groups and verdict are
    the view's, yours taken at its elements.
    """

    check: Check
    branches: tuple[Branch, ...]
    groups: tuple[Group, ...]
    matches: tuple[str, ...] | None
    hint: str | None
    diagnosis: Verdict | None = None
    followed: str | None = None
    picks: int = 1  # how many views of the node there are, when it was followed to one of them

    @property
    def node(self) -> Node:
        return self.check.node

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def stage(self) -> str:
        return self.check.stage

    @property
    def yours(self) -> Any:
        return self.check.yours

    @property
    def engine(self) -> Any:
        return self.check.engine

    @property
    def missing(self) -> tuple[str, ...]:
        """The branches your number leaves out, when it equals a subset of them."""
        if self.matches is None:
            return ()
        return tuple(group.name for group in self.groups if group.name not in self.matches)

    def verdict(self) -> str | None:
        """The subset your number adds up to, in words, when there is one."""
        if self.matches is None:
            return None
        return _subset_words(self.groups, self.matches)


# --- shapes: diagnosed where a mistake explains them ---------------------------------------------------------

def fit_shape(yours: np.ndarray, engine: np.ndarray, name: str, rtol: float, atol: float
              ) -> tuple[Verdict, np.ndarray] | None:
    """Your array of another shape than the engine's, explained: transposed, or not summed over the batch
    (extra leading axes) or over a broadcast axis (where the node has size 1). Returns the verdict and yours
    brought to the node's shape, or None when neither explains it (it may still differ in value)."""
    want = engine.shape
    if yours.ndim == 2 and yours.shape[::-1] == want and yours.shape != want:
        agrees = "agrees" if _close(yours.T, engine, rtol, atol) else "still differs"
        return Verdict("transposed", f"yours is transposed: shape {yours.shape} where {name} is {want} (a "
                                     f"product's factor taken without its transpose, or the factors swapped? "
                                     f"yours.T {agrees})"), yours.T
    extra = yours.ndim - len(want)
    if extra < 0 or yours.size <= engine.size:
        return None
    lead = tuple(range(extra))
    tail = yours.shape[extra:]
    if len(tail) != len(want) or any(t != w and w != 1 for t, w in zip(tail, want)):
        return None
    broadcast = tuple(extra + k for k, (t, w) in enumerate(zip(tail, want)) if t != w)
    fitted = yours.sum(axis=lead + broadcast).reshape(want)
    parts = []
    if lead:
        # sequence first, as the models here: (T, B, ·) has the time steps, then the batch, in front
        parts.append({1: "the batch (axis 0 of yours)", 2: "the time steps and the batch (axes 0 and 1 of yours)"}
                     .get(extra, f"its leading axes {', '.join(map(str, lead))}"))
    if broadcast:
        parts.append(f"the broadcast {'axis' if len(broadcast) == 1 else 'axes'} "
                     f"{', '.join(map(str, broadcast))} (where {name} has size 1)")
    sums = "yours agrees" if _close(fitted, engine, rtol, atol) else "yours still differs"
    return Verdict("not summed", f"yours is not summed over {' and '.join(parts)}: shape {yours.shape} where "
                                f"{name} is {want}; {name} is used once per copy there, so its gradient adds up "
                                f"every copy's share (summed, {sums})"), fitted


# --- the explanation ---------------------------------------------------------------------------------------

def explain(check: Check, graph: AnnotatedPass, claims: Mapping[Node, Any], rtol: float, atol: float) -> Mismatch:
    """Why ``check`` differs: its branches as the report shows them, and the verdict."""
    names = graph.names
    adjoints = graph.backprop.adjoints
    node, yours = check.node, np.asarray(check.yours if check.fitted is None else check.fitted, dtype=float)
    followed, picks = None, 1
    if check.shape_verdict is None:
        node, yours, followed, picks = _through_views(node, yours, graph, claims, rtol, atol)
        if followed is not None:
            names = {**names, node: followed}
    branches = _branches(node, graph, names, claims)
    groups = _groups(node, branches, graph, names)
    engine = np.asarray(adjoints.get(node, np.zeros(np.shape(node.data))), dtype=float)
    name = names[node]

    def equal(value: Any) -> bool:
        return _close(yours, value, rtol, atol)

    matches = _subset(groups, yours, equal)
    if matches is None and len(groups) == 1 and len(branches) > 1:  # c * c: one stage, two uses
        by_use = tuple(Group(f"{b.consumer_name} (input {b.position + 1})", b.term, (), False) for b in branches)
        found = _subset(by_use, yours, equal)
        if found is not None:
            groups, matches = by_use, found
            square = len(branches) == 2 and len(found) == 1 and _close(branches[0].term, branches[1].term, 0, 0)
            if square and check.shape_verdict is None:  # x * x: one of its two equal branches is half of it
                return Mismatch(check, branches, groups, matches, None, _square(branches[0], name), followed,
                                picks)
    local = None if matches is not None else _hint(node, name, yours, engine, branches, names, equal)
    # the most specific first: a fork's subset, a local derivative, then what the whole number says
    tests: tuple[Callable[[], Verdict | None], ...] = (
        lambda: check.shape_verdict,
        lambda: None if matches is None else Verdict("branch missing", _subset_words(groups, matches)),
        lambda: _twice(groups, yours, engine, equal),
        lambda: local,
        lambda: _sign(yours, engine, equal),
        lambda: _scale(yours, engine, equal, nice_only=True),
        lambda: _updated_weights(node, yours, engine, branches, graph, names, equal),
        lambda: _wrong_node(node, name, yours, engine, graph, equal),
        lambda: _scale(yours, engine, equal, nice_only=False),
        lambda: _transposed(yours, engine, name, equal),
    )
    diagnosis = next((verdict for test in tests if (verdict := test()) is not None), None)
    hint = None if local is None else local.text
    return Mismatch(check, branches, groups, matches, hint, diagnosis, followed, picks)


def _close(yours: Any, value: Any, rtol: float, atol: float) -> bool:
    value = np.asarray(value, dtype=float)
    return np.shape(yours) == np.shape(value) and bool(np.all(np.abs(yours - value) <= atol + rtol * np.abs(value)))


def _through_views(node: Node, yours: np.ndarray, graph: AnnotatedPass, claims: Mapping[Node, Any], rtol: float,
                   atol: float) -> tuple[Node, np.ndarray, str | None, int]:
    """A node used only through views of it (``c0[0]`` in a whole sequence) is explained at the view whose
    elements of yours differ: its forward op applied to yours gives yours there. Returns that view, yours there,
    its name and how many views the node has (x of a sequence has one per step)."""
    adjoints = graph.backprop.adjoints
    followed, picks = None, 1
    for _ in range(MAX_PATH):
        uses = graph.terms(node)
        if not uses or any(use.consumer.op.name not in VIEWS or use.consumer in claims for use in uses):
            break
        if len(uses) > 1 and any(use.consumer.op.name != "getitem" for use in uses):
            break  # only picks of parts of it split yours among its uses
        step = None
        for use in uses:
            consumer = use.consumer
            mapped = np.asarray(consumer.op.array(yours, **consumer.params), dtype=float)
            if not _close(mapped, adjoints.get(consumer, np.zeros(np.shape(consumer.data))), rtol, atol):
                step = (consumer, mapped)
                break
        if step is None:
            break
        consumer, yours = step
        picks = len(uses) if followed is None else picks
        followed = consumer.label or expression(consumer, {**graph.names, **({node: followed} if followed else {})})
        node = consumer
    return node, yours, followed, picks


def _branches(node: Node, graph: AnnotatedPass, names: dict[Node, str], claims: Mapping[Node, Any]
              ) -> tuple[Branch, ...]:
    adjoints = graph.backprop.adjoints
    found = []
    for b in graph.backprop.terms(node):
        consumer = b.consumer
        whole = gives_whole_term(consumer, b.position)
        formula = local_formula(consumer, b.position, names, upstream=_adjoint(graph, names[consumer]))
        operands = tuple(dict.fromkeys(f"{names[parent]} = {expression(parent, names)}" for parent in consumer.parents
                                       if parent is not node and parent.op is not None and not parent.label))
        found.append(Branch(consumer, names[consumer], expression(consumer, names), b.position, adjoints[consumer],
                            claims.get(consumer), formula, local_value(consumer, b.position),
                            np.asarray(b.term, dtype=float), whole, operands))
    return tuple(found)


def _groups(node: Node, branches: Sequence[Branch], graph: AnnotatedPass, names: dict[Node, str]
            ) -> tuple[Group, ...]:
    """The branches of ``node`` by the stage they lead into: a use is followed, through single uses within its
    stage, to a further fork whose uses all lie in that stage, and split there; uses in one stage add up."""
    backprop = graph.backprop
    pieces: list[tuple[Node, Any, tuple[str, ...]]] = []  # (the use that names it, its term, the path's names)
    for branch in branches:
        path = [(branch.consumer, branch.position)]
        current = branch.consumer
        while len(path) <= MAX_PATH and len(uses := backprop.terms(current)) == 1:
            following, position = uses[0].consumer, uses[0].position
            if following.stage != branch.consumer.stage:
                break
            path.append((following, position))
            current = following
        ends = [(b.consumer, b.position) for b in backprop.terms(current)]
        inside = len(ends) > 1 and all(user.stage[:len(current.stage)] == current.stage and user.stage != current.stage
                                       for user, _ in ends)
        if not inside:
            pieces.append((branch.consumer, branch.term, ()))
            continue
        via = tuple(names[step] for step, _ in path)
        for fork_branch in backprop.terms(current):
            term = _carry_back(fork_branch.term, path, node)
            pieces.append((fork_branch.consumer, term, via))
    position = graph._position
    pieces.sort(key=lambda piece: position[piece[0]])  # in forward order: the gates as they were computed
    keys: list[tuple[str, ...]] = []
    totals: dict[tuple[str, ...], Any] = {}
    vias: dict[tuple[str, ...], tuple[str, ...]] = {}
    unstaged: dict[tuple[str, ...], str] = {}  # a use outside any stage: by its label, or how it was computed
    for user, term, via in pieces:
        key = user.stage
        if not key:
            key = (f"\0{names[user]}",)  # apart from any stage's name
            unstaged[key] = user.label or expression(user, names)
        if key not in totals:
            keys.append(key)
            totals[key] = np.zeros(np.shape(node.data))
            vias[key] = via
        totals[key] = totals[key] + np.asarray(term, dtype=float)
    labels = {**_distinct_tails([key for key in keys if key not in unstaged]), **unstaged}
    return tuple(Group(labels[key], totals[key], vias[key], key not in unstaged) for key in keys)


def _carry_back(term: Any, path: Sequence[tuple[Node, int]], node: Node) -> Any:
    """A gradient arriving at the last node of ``path`` carried back along it to ``node``, each step by the
    primitive table's rule (every rule is linear in the upstream gradient)."""
    g = term
    chain = [node] + [step for step, _ in path]
    for index in range(len(path) - 1, -1, -1):
        consumer, position = path[index]
        parent = chain[index]
        g = consumer.op.term(position, g, consumer.data, [p.data for p in consumer.parents], consumer.params)
        fit = type(consumer).unbroadcast
        if fit is not None and np.shape(g) != np.shape(parent.data):
            g = fit(g, np.shape(parent.data))
    return g


def _distinct_tails(keys: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Each stage path by its shortest tail that tells the paths apart: "forget gate", "layer 1 / input gate"."""
    if len(keys) == 1:
        return {keys[0]: keys[0][-1]}
    longest = max((len(key) for key in keys), default=0)
    for size in range(1, longest + 1):
        tails = {key: " / ".join(key[-size:]) for key in keys}
        if len(set(tails.values())) == len(keys):
            return tails
    return {key: " / ".join(key) for key in keys}


# --- the verdicts, one test each ---------------------------------------------------------------------------

def _subset(groups: Sequence[Group], yours: np.ndarray, equal: Callable[[Any], bool]) -> tuple[str, ...] | None:
    """The names of the groups whose terms add up to yours: every subset when they are few (most branches
    first), else the whole but one, or none."""
    if len(groups) < 2:
        return None
    zero = np.zeros(np.shape(yours))
    if len(groups) <= MAX_GROUPS:
        for size in range(len(groups) - 1, -1, -1):
            for subset in itertools.combinations(groups, size):
                if equal(sum((group.term for group in subset), zero)):
                    return tuple(group.name for group in subset)
        return None
    total = sum((group.term for group in groups), zero)
    for k, group in enumerate(groups):  # one missing: the total less its term (linear in the fork's width)
        if equal(total - group.term):
            return tuple(other.name for j, other in enumerate(groups) if j != k)
    return () if equal(zero) else None


def _square(branch: Branch, name: str) -> Verdict:
    return Verdict("scaled", f"yours is 0.5x the engine's: {branch.consumer_name} = {branch.expression} uses {name} "
                             "twice, and yours has one of its two equal branches only (the 1/2 of a squared "
                             f"error? d({name}²)/d{name} = 2{name})")


def _subset_words(groups: Sequence[Group], matches: Sequence[str]) -> str:
    if not matches:
        return "yours is zero: every branch is missing"
    missing = [group.name for group in groups if group.name not in matches]
    one, missing_one = len(matches) == 1, len(missing) == 1
    if all(group.staged for group in groups):  # "the forget gate's branch only"
        return (f"yours equals the {_listing(_possessive(name) for name in matches)} "
                f"{'branch' if one else 'branches'} only; the "
                f"{_listing(_possessive(name) for name in missing)} {'is' if missing_one else 'are'} missing")
    staged = {group.name: group.staged for group in groups}

    def through(names: Sequence[str]) -> str:
        return _listing(f"the {name}" if staged[name] else name for name in names)

    return (f"yours equals only the {'branch' if one else 'branches'} through {through(matches)}; "
            f"{'the branch' if missing_one else 'those'} through {through(missing)} "
            f"{'is' if missing_one else 'are'} missing")


def _twice(groups: Sequence[Group], yours: np.ndarray, engine: np.ndarray, equal: Callable[[Any], bool]
           ) -> Verdict | None:
    if len(groups) < 2:
        return None
    for group in groups:
        if np.any(np.asarray(group.term) != 0) and equal(engine + group.term):
            where = f"the {group.name}" if group.staged else group.name
            return Verdict("branch counted twice", f"yours counts the branch through {where} twice: it equals "
                                                   "the engine's plus that branch's term once more")
    return None


def _hint(node: Node, name: str, yours: np.ndarray, engine: np.ndarray, branches: Sequence[Branch],
          names: dict[Node, str], equal: Callable[[Any], bool]) -> Verdict | None:
    """What your number takes one branch's local derivative to be, if the others are right and it is something
    recognisable in place of the derivative (the others' sum is the total less this branch's term: one pass)."""
    for branch in branches:
        if branch.local is None or np.shape(branch.upstream) != np.shape(yours):
            continue
        others = engine - branch.term
        upstream = np.asarray(branch.upstream, dtype=float)
        usable = np.abs(upstream) > 1e-12 * max(1.0, float(np.max(np.abs(upstream), initial=0.0)))
        if not np.any(usable):
            continue
        implied = np.where(usable, (yours - others) / np.where(usable, upstream, 1.0), 0.0)
        local = np.broadcast_to(np.asarray(branch.local, dtype=float), np.shape(implied))
        for kind, description, candidate in _candidates(branch, node, names):
            candidate = np.broadcast_to(np.asarray(candidate, dtype=float), np.shape(implied))
            if np.allclose(implied[usable], candidate[usable], rtol=1e-6, atol=1e-9) and not np.allclose(
                    candidate[usable], local[usable], rtol=1e-6, atol=1e-9):
                where = "" if len(branches) == 1 else (
                    f" on the branch through {branch.consumer_name} (if its other branches are right)")
                return Verdict(kind, f"yours takes the local derivative ∂{branch.consumer_name}/∂{name}{where} "
                                     f"to be {description}, where it is {branch.formula} = "
                                     f"{summarize(branch.local)}")
    return None


def _candidates(branch: Branch, node: Node, names: dict[Node, str]) -> list[tuple[str, str, Any]]:
    """Numbers that a mistaken local derivative often is, as (verdict kind, words, value): 1, or a value in place
    of the derivative."""
    consumer, value = branch.consumer, "value for its derivative"
    found = [("taken as 1", "1", 1.0),
             (value, f"{names[consumer]} itself (the value, not its derivative)", consumer.data)]
    for position, parent in enumerate(consumer.parents):
        if position != branch.position or parent is not node:
            found.append((value, f"{names[parent]} (the value of another input)", parent.data))
    return found


def _sign(yours: np.ndarray, engine: np.ndarray, equal: Callable[[Any], bool]) -> Verdict | None:
    if np.any(engine != 0) and equal(-engine):
        return Verdict("sign flipped", "yours is the engine's with the sign flipped (-1x): a minus lost or added, "
                                       "e.g. d(a - b)/db = -1, or the loss's derivative written (t - y) for (y - t)?")
    return None


def _scale(yours: np.ndarray, engine: np.ndarray, equal: Callable[[Any], bool], nice_only: bool) -> Verdict | None:
    """Yours a constant multiple of the engine's: any factor on an array of several nonzero numbers, a simple
    fraction (1/2, 3, 1/4 ...) or the batch size on a single number."""
    nonzero = engine != 0
    if not np.any(nonzero) or np.any((yours != 0) & ~nonzero):
        return None
    factor = float(np.sum(yours * engine) / np.sum(engine * engine))
    if factor in (0.0, 1.0) or factor == -1.0 or not equal(factor * engine):
        return None
    batch = engine.shape[0] if engine.ndim >= 2 else None
    fraction = Fraction(factor).limit_denominator(8)
    nice = abs(float(fraction) - factor) <= 1e-9 * abs(factor) and max(abs(fraction.numerator),
                                                                       fraction.denominator) <= 8
    by_batch = batch is not None and batch > 1 and any(abs(factor - k) <= 1e-9 * abs(k) for k in (batch, 1 / batch))
    if nice_only and not (nice or by_batch):
        return None
    if not nice_only and np.count_nonzero(nonzero) < 2:
        return None
    shown = (f"{float(fraction):g}" if fraction.denominator in (1, 2, 4, 5, 8) else f"{fraction}") if nice \
        else f"{factor:.4g}"
    why = {Fraction(1, 2): ": the 1/2 of the squared error (d(½e²)/de = e, d(e²)/de = 2e)?",
           Fraction(2): ": a ½ dropped (the squared error's), or a branch counted twice?",
           Fraction(-1, 2): ": the 1/2 of a squared error and a sign?"}.get(fraction, "")
    if by_batch and not why:
        why = (f": the mean over the batch of {batch} (divided by {batch} once too often, or not at all)?")
    return Verdict("scaled", f"yours is {shown}x the engine's everywhere{why or ': a constant factor off'}")


def _updated_weights(node: Node, yours: np.ndarray, engine: np.ndarray, branches: Sequence[Branch],
                     graph: AnnotatedPass, names: dict[Node, str], equal: Callable[[Any], bool]) -> Verdict | None:
    """Yours as the engine's with each weight w on the way (an input of a product that needs a gradient) replaced
    by w - lr·dL/dw, for one learning rate lr > 0: the gradient computed after the update."""
    adjoints = graph.backprop.adjoints
    shift = np.zeros(np.shape(yours))
    weights: list[str] = []
    for branch in branches:
        path = [(branch.consumer, branch.position)]
        current = branch.consumer
        while not _weight_of(current, path[-1][1], adjoints) and len(path) <= MAX_PATH:
            uses = graph.backprop.terms(current)
            if len(uses) != 1:
                break
            path.append((uses[0].consumer, uses[0].position))
            current = uses[0].consumer
        found = _weight_of(current, path[-1][1], adjoints)
        if not found:
            continue
        position, weight = found
        inputs = [p.data for p in current.parents]
        g = adjoints[current]
        at = path[-1][1]
        swapped = list(inputs)
        swapped[position] = np.asarray(adjoints[weight], dtype=float) if isinstance(inputs[position], np.ndarray) \
            else float(adjoints[weight])
        term = current.op.term(at, g, current.data, swapped, current.params)
        fit = type(current).unbroadcast
        parent_shape = np.shape(current.parents[at].data)
        if fit is not None and np.shape(term) != parent_shape:
            term = fit(term, parent_shape)
        shift = shift + np.asarray(_carry_back(term, path[:-1], node) if len(path) > 1 else term, dtype=float)
        if names[weight] not in weights:
            weights.append(names[weight] + _made_from(weight, names))
    if not weights or not np.any(shift != 0):
        return None
    lr = -float(np.sum((yours - engine) * shift) / np.sum(shift * shift))
    if not lr > 0 or not equal(engine - lr * shift):
        return None
    if np.size(yours) == 1 and not _round(lr):
        return None  # on a single number any difference fits some rate: only a rate a person picks is believed
    if len(weights) == 1:
        (w,) = weights
        short = w.split(" (")[0]
        replaced = f"{w} replaced by {short} - {lr:.4g}·{_adjoint(graph, short)}"
    else:
        listed = _listing(weights[:4]) + (f" and {len(weights) - 4} more" if len(weights) > 4 else "")
        replaced = f"each weight w ({listed}) replaced by w - {lr:.4g}·{_adjoint(graph, 'w')}"
    return Verdict("updated weights", f"yours is what the weights after the update give: {replaced} (a learning "
                                      f"rate of {lr:.4g}); backpropagate with the weights of the forward pass, "
                                      "and update after")


def _weight_of(node: Node, position: int, adjoints: Mapping[Node, Any]) -> tuple[int, Node] | None:
    """A product's other input that needs a gradient (a weight), as (its position, it)."""
    if node.op is None or node.op.name not in ("mul", "matmul") or len(node.parents) != 2:
        return None
    other = 1 - position
    weight = node.parents[other]
    if weight is node.parents[position] or not weight.requires_grad or weight not in adjoints:
        return None
    return other, weight


def _made_from(weight: Node, names: dict[Node, str], most: int = 64) -> str:
    """" (made from weight_ih_l0 and weight_hh_l0)" for a weight computed from parameters; "" for a parameter."""
    if weight.op is None:
        return ""
    leaves, seen, todo = [], {weight}, [weight]
    while todo and len(seen) < most:
        for parent in todo.pop().parents:
            if parent in seen or not parent.requires_grad:
                continue
            seen.add(parent)
            (leaves if parent.op is None else todo).append(parent)
    return f" (made from {_listing([names[leaf] for leaf in leaves])})" if leaves else ""


def _round(x: float) -> bool:
    """A learning rate a person picks: one or two significant digits."""
    exponent = np.floor(np.log10(x))
    mantissa = x / 10 ** exponent
    return abs(mantissa * 10 - round(mantissa * 10)) <= 1e-6 * mantissa * 10


_STEP = re.compile(r"t=(\d+)")


def _wrong_node(node: Node, name: str, yours: np.ndarray, engine: np.ndarray, graph: AnnotatedPass,
                equal: Callable[[Any], bool]) -> Verdict | None:
    """Yours equal to another node's gradient (of the same shape): the same stage at another step first, then
    any other stage. Zero and ±1 on a single number prove nothing and are skipped."""
    if np.size(yours) == 1 and (abs(float(yours.reshape(-1)[0])) in (0.0, 1.0)):
        return None
    if not np.any(yours != 0):
        return None
    adjoints, names = graph.backprop.adjoints, graph.names
    pattern = _STEP.sub("t=*", name)
    same_stage_other_step, other = None, None
    for candidate in reversed(graph.listing):
        if candidate is node or candidate.op is None and not candidate.requires_grad:
            continue
        adjoint = adjoints.get(candidate)
        if adjoint is None or np.shape(adjoint) != np.shape(yours) or not equal(adjoint) or _close(
                np.asarray(adjoint, dtype=float), engine, 0.0, 0.0):
            continue
        cname = names[candidate]
        if _STEP.search(cname) and _STEP.sub("t=*", cname) == pattern:
            same_stage_other_step = candidate
            break
        if other is None:
            other = candidate
    found = same_stage_other_step if same_stage_other_step is not None else other
    if found is None:
        return None
    cname = names[found]
    if found is same_stage_other_step:
        theirs, mine = _STEP.search(cname)[1], _STEP.search(name)[1]
        return Verdict("wrong node", f"yours is the engine's {_adjoint(graph, cname)}: step {theirs}'s gradient, "
                                     f"where {name} is "
                                     f"step {mine}'s (the right number at the wrong step)")
    where = " / ".join(found.stage) or "outside any stage"
    return Verdict("wrong node", f"yours is the engine's {_adjoint(graph, cname)}, another node's gradient "
                                 f"({where}), not {_adjoint(graph, name)}'s (the right number at the wrong node)")


def _transposed(yours: np.ndarray, engine: np.ndarray, name: str, equal: Callable[[Any], bool]) -> Verdict | None:
    if engine.ndim == 2 and engine.shape[0] == engine.shape[1] > 1 and equal(engine.T) and not equal(engine):
        return Verdict("transposed", f"yours is the engine's transposed ({name} is square, so the shape did not "
                                     "tell): a product's factor taken without its transpose?")
    return None


def _adjoint(graph: AnnotatedPass, name: str) -> str:
    """dL/d(name), the loss called by its name: dE/dw5."""
    return f"d{graph.names[graph.root]}/d{name}"


# --- words ---------------------------------------------------------------------------------------------------

def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _listing(words: Iterable[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
