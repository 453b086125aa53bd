"""Check a derivation done by hand against the engine, and point to the first stage where it goes wrong.

    >>> from autograd import Value, check_derivation
    >>> x = Value(0.5, label="x"); s = x.sigmoid(); s.label = "s"; L = s * s; L.label = "L"
    >>> report = check_derivation(L, {"s": 2 * s.data, "x": 2 * s.data * s.data})   # s' written as s
    >>> report.first_mismatch.name
    'x'

``claimed`` maps nodes, or their labels, to your dL/d(node): a number for a Value, an array of the node's shape
for a Tensor. One reverse pass of the engine, with each fork's branch terms recorded, gives the true numbers;
your claims are visited in reverse order, stage by stage, as a derivation by hand goes from the loss back to the
inputs, and the first one that differs is explained: the engine's number and yours, the upstream gradient of
every use of the node, the local derivative from the primitive table (its formula and its value), and

* at a fork, which of its branches your number adds up to ("yours equals the forget gate's branch only; the
  input gate's, cell candidate's and output gate's are missing"), branches being named by the stage of the use
  they come from. Where a use leads, within its stage, to a further fork (the Tensor LSTM's h_{t-1} goes into
  one product [x, h, 1] @ W whose result z then forks into the four gates), the branch is split there;
* where one branch is wrong, what your number takes that branch's local derivative to be, when it is something
  recognisable: 1, or the value of the output or of another input in place of the derivative (sigmoid' written
  as the sigmoid itself).

Nodes you did not claim are skipped. A label that names no node, or several, is an error, as is a number of
the wrong shape. Labels of scalar nodes that number the elements of an array, ``h[t=1][0,2]`` as the
`lstm.ScalarLSTM` writes them, can be claimed all at once: ``{"h[t=1]": array}``.
"""

from __future__ import annotations

import difflib
import html
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograd.core import Backprop, Node, check_root
from autograd.view.annotated import AnnotatedPass
from autograd.view.notation import (
    expression,
    is_number,
    local_formula,
    local_value,
    summarize,
)

MAX_GROUPS = 12  # the fork branches whose subsets are searched: 4,096 sums at most
MAX_PATH = 6  # how far a use is followed, within its stage, to a further fork
MAX_USES_SHOWN = 6  # a fork of more uses is shown by its branches' stages only

__all__ = ["Branch", "Check", "DerivationCheck", "Group", "Mismatch", "check_derivation"]


@dataclass(frozen=True)
class Check:
    """One claimed node: your dL/d(node), the engine's, and whether they agree within the tolerances."""

    node: Node
    name: str
    yours: Any
    engine: Any
    agrees: bool

    @property
    def stage(self) -> str:
        return " / ".join(self.node.stage) or "outside any stage"

    @property
    def max_difference(self) -> float:
        return float(np.max(np.abs(np.asarray(self.yours) - np.asarray(self.engine)), initial=0.0))


@dataclass(frozen=True)
class Branch:
    """One use of the mismatched node: what comes back along it is ``upstream`` times the local derivative.

    ``consumer`` is the node that uses it (as its input ``position``), ``expression`` how it was computed;
    ``upstream`` the engine's dL/d(consumer),
    ``upstream_yours`` yours when you claimed it; ``formula`` the local derivative as the primitive table writes
    it, ``local`` its value (None where it is no elementwise factor, as for a matrix product) and ``term`` the
    engine's contribution along this branch.
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
    derivative your number seems to have used instead of the right one (or None).
    """

    check: Check
    branches: tuple[Branch, ...]
    groups: tuple[Group, ...]
    matches: tuple[str, ...] | None
    hint: str | None

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
        if not self.matches:
            return "yours is zero: every branch is missing"
        one, missing_one = len(self.matches) == 1, len(self.missing) == 1
        if all(group.staged for group in self.groups):  # "the forget gate's branch only"
            return (f"yours equals the {_listing(_possessive(name) for name in self.matches)} "
                    f"{'branch' if one else 'branches'} only; the "
                    f"{_listing(_possessive(name) for name in self.missing)} {'is' if missing_one else 'are'} missing")
        staged = {group.name: group.staged for group in self.groups}

        def through(names: Sequence[str]) -> str:
            return _listing(f"the {name}" if staged[name] else name for name in names)

        return (f"yours equals only the {'branch' if one else 'branches'} through {through(self.matches)}; "
                f"{'the branch' if missing_one else 'those'} through {through(self.missing)} "
                f"{'is' if missing_one else 'are'} missing")


class DerivationCheck:
    """Your gradients checked against the engine's, in the order a derivation by hand meets them.

    ``checks`` (every claim, in that order), ``mismatches`` (those that differ), ``first_mismatch`` (a
    `Mismatch`, or None) and ``passed``. ``str()`` gives the report as text; Jupyter shows it as HTML.
    """

    def __init__(self, root_name: str, checks: list[Check], first_mismatch: Mismatch | None, rtol: float,
                 atol: float) -> None:
        self.root_name, self.checks, self.first_mismatch = root_name, checks, first_mismatch
        self.rtol, self.atol = rtol, atol

    @property
    def mismatches(self) -> list[Check]:
        return [check for check in self.checks if not check.agrees]

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None

    def __bool__(self) -> bool:
        return self.passed

    def check(self, name: str) -> Check:
        """The check of the claimed node of this name (KeyError if you did not claim it)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"you claimed no node named {name!r}")

    # --- writing it out ---
    def summary(self) -> str:
        count, wrong = len(self.checks), len(self.mismatches)
        head = (f"Your {count} gradient{'s' if count != 1 else ''} of {self.root_name} against the engine's "
                f"(rtol {self.rtol:g}, atol {self.atol:g}): ")
        return head + ("all agree." if not wrong else f"{count - wrong} agree, {wrong} differ{'s' * (wrong == 1)}.")

    def _lines(self) -> list[tuple[str, str]]:
        """The report as (kind, text) lines: "title", "head", "line", "math" (a formula), "note"."""
        lines = [("title", self.summary())]
        first = self.first_mismatch
        if first is None:
            return lines
        d = self._adjoint
        lines.append(("head", f"First difference, going back from {self.root_name}: {d(first.name)}  "
                              f"({_where(first.node)})"))
        lines.append(("line", f"yours:  {summarize(first.yours)}"))
        lines.append(("line", f"engine: {summarize(first.engine)}"))
        lines.append(("line", f"largest difference: {summarize(first.check.max_difference)}"))
        if len(first.branches) == 1:
            (branch,) = first.branches
            lines.append(("math", f"{d(first.name)} = {d(branch.consumer_name)} · "
                                  f"∂{branch.consumer_name}/∂{first.name}"))
        else:
            lines.append(("math", f"{d(first.name)} = the sum over its {len(first.branches)} uses u of "
                                  f"{d('u')} · ∂u/∂{first.name}:"))
        if len(first.branches) <= MAX_USES_SHOWN:
            for branch in first.branches:
                lines += self._branch_lines(first, branch)
        if len(first.groups) > 1 and (len(first.groups) != len(first.branches)
                                      or any(group.via for group in first.groups)):
            lines.append(("line", "its branches, by the stage each leads into:"))
            for group in first.groups:
                via = f" (through {' → '.join(group.via)})" if group.via else ""
                lines.append(("line", f"  {group.name}{via}: {summarize(group.term)}"))
        for sentence in (first.verdict(), first.hint):
            if sentence:
                lines.append(("note", sentence[0].upper() + sentence[1:] + "."))
        later = [check.name for check in self.mismatches if check.node is not first.node]
        if later:
            shown = ", ".join(later[:8]) + (f" and {len(later) - 8} more" if len(later) > 8 else "")
            lines.append(("line", f"Differ after it (often because of it): {shown}."))
        return lines

    def _branch_lines(self, first: Mismatch, branch: Branch) -> list[tuple[str, str]]:
        d = self._adjoint
        whose = "you did not claim it: the engine's" if branch.upstream_yours is None else "yours agrees"
        use = f"{branch.consumer_name} = {branch.expression}"
        lines = [("line", f"use {use} ({_where(branch.consumer)}):"),
                 ("line", f"  {d(branch.consumer_name)} = {summarize(branch.upstream)}  ({whose})")]
        constant = is_number(branch.formula.strip("()"))  # a number is its own value: written once
        local = branch.formula + ("" if branch.local is None or constant else f" = {summarize(branch.local)}")
        lines.append(("line", f"  ∂{branch.consumer_name}/∂{first.name} = {local}"))
        lines.append(("line", f"  term: {summarize(branch.term)}"))
        return lines

    def _adjoint(self, name: str) -> str:
        return f"d{self.root_name}/d{name}"

    def to_text(self) -> str:
        indent = {"title": "", "head": "", "line": "  ", "math": "  ", "note": "  "}
        return "\n".join(indent[kind] + text for kind, text in self._lines())

    def to_markdown(self) -> str:
        out = []
        for kind, text in self._lines():
            if kind in ("title", "head"):
                out.append(f"**{_markdown(text)}**\n")
            elif kind == "math":
                out.append(f"- `{text}`")
            elif kind == "note":
                out.append(f"\n> {_markdown(text)}\n")
            else:
                out.append(f"- `{text.strip()}`" if text.startswith("  ") else f"- {_markdown(text)}")
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        parts = []
        for kind, text in self._lines():
            escaped = html.escape(text)
            if kind == "title":
                colour = "#15803d" if self.passed else "#b91c1c"
                parts.append(f'<p style="color:{colour};font-weight:bold">{escaped}</p>')
            elif kind == "head":
                parts.append(f"<p><b>{escaped}</b></p>")
            elif kind == "note":
                parts.append(f'<p style="border-left:3px solid #b91c1c;padding-left:8px">{escaped}</p>')
            else:
                parts.append(f'<pre style="margin:0">{escaped}</pre>')
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()


# --- the check ----------------------------------------------------------------------------------------------

def check_derivation(root: Node, claimed: Mapping[Node | str, Any], *, rtol: float = 1e-6, atol: float = 1e-9
                     ) -> DerivationCheck:
    """Check your dL/d(node) numbers against the engine's and explain the first that differs (see the module).

    ``root`` is the scalar loss L; ``claimed`` maps nodes or
    labels to your gradients. A number agrees when ``|yours - engine| <= atol + rtol * |engine|`` everywhere.
    """
    if not isinstance(root, Node):
        raise TypeError(f"check_derivation: expected a graph node (a Value or Tensor), got {type(root).__name__}")
    if not isinstance(claimed, Mapping):
        raise TypeError(f"check_derivation: claimed must map nodes or labels to gradients, got "
                        f"{type(claimed).__name__}")
    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
            raise ValueError(f"check_derivation: {name} must be a non-negative number, got {tolerance!r}")
    if np.size(root.data) != 1:
        raise ValueError(f"check_derivation: the root must be a scalar loss L, got shape {np.shape(root.data)}; "
                         "reduce it first, e.g. with .sum()")
    check_root(root, None, "check_derivation", "grad")
    graph = AnnotatedPass(root)  # the order, names and reverse pass that drawings and explain read too
    listing, names = graph.listing, graph.names
    claims = _resolve(claimed, listing, names)
    backprop = graph.backprop
    adjoints = backprop.adjoints

    checks = []
    for node in reversed(listing):
        if node not in claims:
            continue
        yours = claims[node]
        engine = _engine_adjoint(node, adjoints, names)
        agrees = bool(np.all(np.abs(np.asarray(yours) - engine) <= atol + rtol * np.abs(engine)))
        checks.append(Check(node, names[node], yours, _as_shown(node, engine), agrees))
    first = next((check for check in checks if not check.agrees), None)
    mismatch = None if first is None else _explain(first, backprop, listing, names, claims, rtol, atol)
    return DerivationCheck(names[root], checks, mismatch, rtol, atol)


def _resolve(claimed: Mapping[Any, Any], listing: Sequence[Node], names: dict[Node, str]) -> dict[Node, Any]:
    """Your claims by node, each checked for shape; labels looked up (one node each), or spread over the
    elements they number."""
    by_label: dict[str, list[Node]] = {}
    for node in listing:
        if node.label:
            by_label.setdefault(node.label, []).append(node)
    claims: dict[Node, Any] = {}

    def claim(node: Node, value: Any, key: str) -> None:
        if node in claims:
            raise ValueError(f"check_derivation: {names[node]!r} is claimed twice (the second time as {key})")
        claims[node] = _checked_value(node, value, names[node])

    for key, value in claimed.items():
        if isinstance(key, Node):
            if key not in names:
                shown = repr(key.label) if key.label else f"an unlabelled {type(key).__name__}"
                raise ValueError(f"check_derivation: the claimed node {shown} is not in the graph of "
                                 f"{names[listing[-1]]!r}")
            claim(key, value, repr(names[key]))
        elif isinstance(key, str):
            nodes = by_label.get(key, [])
            if len(nodes) == 1:
                claim(nodes[0], value, repr(key))
            elif len(nodes) > 1:
                stages = sorted({" / ".join(node.stage) or "outside any stage" for node in nodes})
                raise ValueError(f"check_derivation: the label {key!r} names {len(nodes)} nodes (in "
                                 f"{'; '.join(stages[:5])}{' ...' if len(stages) > 5 else ''}); claim the node "
                                 "itself, or give them different labels")
            else:
                for node, element in _elements(key, value, by_label):
                    claim(node, element, repr(key))
        else:
            raise TypeError(f"check_derivation: claims are keyed by nodes or labels, got {type(key).__name__} "
                            f"{key!r}")
    return claims


def _elements(key: str, value: Any, by_label: dict[str, list[Node]]) -> list[tuple[Node, float]]:
    """An array claimed for a label that names no node, spread over the scalar nodes labelled ``key[i,j]``."""
    array = np.asarray(value, dtype=float) if not isinstance(value, Node) else None
    pattern = re.compile(re.escape(key) + r"\[(\d+(?:,\d+)*)\]")
    numbered = {match[1]: nodes for label, nodes in by_label.items() if (match := pattern.fullmatch(label))}
    if numbered and array is not None and array.ndim:
        pairs = []
        for index in np.ndindex(array.shape):
            nodes = numbered.get(",".join(map(str, index)), [])
            if len(nodes) != 1:
                raise ValueError(f"check_derivation: your {array.shape} array for {key!r} needs one node "
                                 f"labelled {key}[{','.join(map(str, index))}]; the graph has {len(nodes)}")
            pairs.append((nodes[0], float(array[index])))
        if len(pairs) != len(numbered):
            raise ValueError(f"check_derivation: the graph numbers {len(numbered)} elements of {key!r}, your "
                             f"array has shape {array.shape} ({array.size} elements)")
        return pairs
    close = difflib.get_close_matches(key, list(by_label), n=3, cutoff=0.6)
    hint = f"; labels like it: {', '.join(map(repr, close))}" if close else ""
    raise ValueError(f"check_derivation: no node is labelled {key!r}{hint}")


def _checked_value(node: Node, value: Any, name: str) -> Any:
    """Your number as a float (for a Value) or a float array of the node's shape (for a Tensor)."""
    if isinstance(value, Node):
        value = value.data
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"check_derivation: your dL/d{name} must be a number or an array of numbers, got "
                        f"{type(value).__name__}") from None
    shape = np.shape(node.data)
    if array.shape != shape:
        node_shape = "a scalar" if not shape else f"of shape {shape}"
        raise ValueError(f"check_derivation: your dL/d{name} has shape {array.shape}, but {name} is "
                         f"{node_shape}")
    return float(array) if not isinstance(node.data, np.ndarray) else array


def _engine_adjoint(node: Node, adjoints: dict[Node, Any], names: dict[Node, str]) -> np.ndarray:
    if not node.requires_grad:
        raise ValueError(f"check_derivation: {names[node]!r} needs no gradient (a constant, or a Tensor without "
                         "requires_grad=True), so the engine computes none to check yours against")
    adjoint = adjoints.get(node)
    if adjoint is None:  # reached only through inputs that need no gradient: L does not depend on it there
        return np.zeros(np.shape(node.data))
    return np.asarray(adjoint, dtype=float)


def _as_shown(node: Node, engine: np.ndarray) -> Any:
    return float(engine) if not isinstance(node.data, np.ndarray) else engine


# --- explaining a mismatch -----------------------------------------------------------------------------------

def _explain(check: Check, backprop: Backprop, listing: Sequence[Node], names: dict[Node, str],
             claims: dict[Node, Any], rtol: float, atol: float) -> Mismatch:
    node = check.node
    adjoints = backprop.adjoints
    recorded = backprop.terms(node)
    branches = tuple(
        Branch(b.consumer, names[b.consumer], expression(b.consumer, names), b.position, adjoints[b.consumer],
               claims.get(b.consumer),
               local_formula(b.consumer, b.position, names), local_value(b.consumer, b.position),
               np.asarray(b.term, dtype=float))
        for b in recorded)
    groups = _groups(node, branches, backprop, listing, names)
    yours = np.asarray(check.yours, dtype=float)

    def equal(value: Any) -> bool:
        return bool(np.all(np.abs(yours - value) <= atol + rtol * np.abs(value)))

    matches = None
    if 1 < len(groups) <= MAX_GROUPS:
        zero = np.zeros(np.shape(yours))
        for size in range(len(groups) - 1, -1, -1):  # the most branches first
            for subset in itertools.combinations(groups, size):
                if equal(sum((group.term for group in subset), zero)):
                    matches = tuple(group.name for group in subset)
                    break
            if matches is not None:
                break
    hint = None if matches is not None else _hint(check, branches, names, equal)
    return Mismatch(check, branches, groups, matches, hint)


def _groups(node: Node, branches: Sequence[Branch], backprop: Backprop, listing: Sequence[Node],
            names: dict[Node, str]) -> tuple[Group, ...]:
    """The branches of ``node`` by the stage they lead into: a use is followed, through single uses within its
    stage, to a further fork whose uses all lie in that stage, and split there; uses in one stage add up."""
    uses: dict[Node, list[tuple[Node, int]]] = {}
    for consumer in listing:
        for position, parent in enumerate(consumer.parents):
            uses.setdefault(parent, []).append((consumer, position))
    pieces: list[tuple[Node, Any, tuple[str, ...]]] = []  # (the use that names it, its term, the path's names)
    for branch in branches:
        path = [(branch.consumer, branch.position)]
        current = branch.consumer
        while len(path) <= MAX_PATH and len(uses.get(current, [])) == 1:
            (following, position), = uses[current]
            if following.stage != branch.consumer.stage:
                break
            path.append((following, position))
            current = following
        ends = uses.get(current, [])
        inside = len(ends) > 1 and all(user.stage[:len(current.stage)] == current.stage and user.stage != current.stage
                                       for user, _ in ends)
        if not inside:
            pieces.append((branch.consumer, branch.term, ()))
            continue
        via = tuple(names[step] for step, _ in path)
        for fork_branch in backprop.terms(current):
            term = _carry_back(fork_branch.term, path, node)
            pieces.append((fork_branch.consumer, term, via))
    position = {user: index for index, user in enumerate(listing)}
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


def _hint(check: Check, branches: Sequence[Branch], names: dict[Node, str], equal: Any) -> str | None:
    """What your number takes one branch's local derivative to be, if the others are right and it is something
    recognisable in place of the derivative."""
    yours = np.asarray(check.yours, dtype=float)
    for index, branch in enumerate(branches):
        if branch.local is None or np.shape(branch.upstream) != np.shape(yours):
            continue
        others = sum((other.term for k, other in enumerate(branches) if k != index), np.zeros(np.shape(yours)))
        upstream = np.asarray(branch.upstream, dtype=float)
        usable = np.abs(upstream) > 1e-12 * max(1.0, float(np.max(np.abs(upstream), initial=0.0)))
        if not np.any(usable):
            continue
        implied = np.where(usable, (yours - others) / np.where(usable, upstream, 1.0), 0.0)
        for description, candidate in _candidates(branch, check.node, names):
            candidate = np.broadcast_to(np.asarray(candidate, dtype=float), np.shape(implied))
            if np.allclose(implied[usable], candidate[usable], rtol=1e-6, atol=1e-9) and not np.allclose(
                    candidate[usable], np.broadcast_to(branch.local, np.shape(implied))[usable], rtol=1e-6,
                    atol=1e-9):
                where = "" if len(branches) == 1 else (
                    f" on the branch through {branch.consumer_name} (if its other branches are right)")
                return (f"yours takes the local derivative ∂{branch.consumer_name}/∂{check.name}{where} to be "
                        f"{description}, where it is {branch.formula} = {summarize(branch.local)}")
    return None


def _candidates(branch: Branch, node: Node, names: dict[Node, str]) -> list[tuple[str, Any]]:
    """Numbers that a mistaken local derivative often is: 1, or a value in place of the derivative."""
    consumer = branch.consumer
    found = [("1", 1.0), (f"{names[consumer]} itself (the value, not its derivative)", consumer.data)]
    for position, parent in enumerate(consumer.parents):
        if position != branch.position or parent is not node:
            found.append((f"{names[parent]} (the value of another input)", parent.data))
    return found


# --- words and text ----------------------------------------------------------------------------------------

def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _listing(words: Iterable[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _where(node: Node) -> str:
    """"stage t=1 / layer 0 / cell state", or "outside any stage"."""
    return f"stage {' / '.join(node.stage)}" if node.stage else "outside any stage"


def _markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)

