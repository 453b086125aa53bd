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

Above the arrays, a teacher's one-line verdict names the mistake when it is a common one (see
`autograd.view.verdicts`): a sign flipped, a constant factor, a transposed or unsummed array, a fork branch missing
or counted twice, a local derivative taken as 1 or written as a value, the right number at the wrong node or step,
gradients from the updated weights. An array of the wrong shape that one of them explains is diagnosed, not
refused.

Nodes you did not claim are skipped, and counted: the report says how many of the gradients asked for
(``expected``: by default every labelled node that needs a gradient) were given, and is green only when all were.
The check is linear in the graph's size; a graph of more than ``max_nodes`` nodes is refused before the reverse
pass (`GraphTooLargeError`), as `draw` refuses a drawing too large to lay out.

A label that names no node, or several, is an error, as is a number of the wrong shape that no common mistake
explains. Labels of scalar nodes that number the elements of an array, ``h[t=1][0,2]`` as the
`lstm.ScalarLSTM` writes them, can be claimed all at once: ``{"h[t=1]": array}``.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from autograd.core import Node, check_root
from autograd.view.annotated import AnnotatedPass
from autograd.view.boxes import GraphTooLargeError
from autograd.view.notation import is_number, summarize
from autograd.view.verdicts import Branch, Check, Group, Mismatch, Verdict, explain, fit_shape

MAX_USES_SHOWN = 6  # a fork of more uses is shown by its branches' stages only
MAX_NAMES_SHOWN = 8  # names listed one by one in a summary line
MAX_NODES = 200_000  # the default size guard: a graph this large takes seconds, larger ones minutes

__all__ = ["Branch", "Check", "DerivationCheck", "Group", "Mismatch", "Verdict", "check_derivation"]

_ELEMENT = re.compile(r"\[\d+(?:,\d+)*\]$")  # h[t=1][0,2]: one element of h[t=1], as ScalarLSTM labels it


class DerivationCheck:
    """Your gradients checked against the engine's, in the order a derivation by hand meets them.

    ``checks`` (every claim, in that order), ``mismatches`` (those that differ), ``first_mismatch`` (a
    `Mismatch`, or None) and ``passed`` (no claim differs); ``expected`` (the names of the gradients asked
    for), ``missing`` (those not given) and ``complete``. ``str()`` gives the report as text; Jupyter shows it
    as HTML, green only when every asked-for gradient was given and agrees.
    """

    def __init__(self, root_name: str, checks: list[Check], first_mismatch: Mismatch | None, rtol: float,
                 atol: float, expected: Sequence[str] = (), missing: Sequence[str] = ()) -> None:
        self.root_name, self.checks, self.first_mismatch = root_name, checks, first_mismatch
        self.rtol, self.atol = rtol, atol
        self.expected, self.missing = tuple(expected), tuple(missing)

    @property
    def mismatches(self) -> list[Check]:
        return [check for check in self.checks if not check.agrees]

    @property
    def passed(self) -> bool:
        return self.first_mismatch is None

    @property
    def complete(self) -> bool:
        """Every gradient asked for was given."""
        return not self.missing

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
        verdict = "all agree" if not wrong else f"{count - wrong} agree, {wrong} differ{'s' * (wrong == 1)}"
        if not self.missing:
            return head + verdict + "."
        asked = len(self.expected)
        return (head + f"{asked - len(self.missing)} of {asked} asked for given, {verdict}; missing: "
                + _shortened(self.missing) + ".")

    def _lines(self) -> list[tuple[str, str]]:
        """The report as (kind, text) lines: "title", "head", "verdict" (the one-line diagnosis), "line",
        "math" (a formula), "note"."""
        lines = [("title", self.summary())]
        first = self.first_mismatch
        if first is None:
            return lines
        d = self._adjoint
        lines.append(("head", f"First difference, going back from {self.root_name}: {d(first.name)}  "
                              f"({_where(first.node)})"))
        if first.diagnosis is not None:
            lines.append(("verdict", _sentence(first.diagnosis.text)))
        lines.append(("line", f"yours:  {summarize(first.yours)}"))
        lines.append(("line", f"engine: {summarize(first.engine)}"))
        lines.append(("line", f"largest difference: {summarize(first.check.max_difference)}"))
        name = first.name
        if first.followed is not None:
            name = first.followed
            how = (f"reaches {self.root_name} only through {name}" if first.picks == 1 else
                   f"is used only through {first.picks} picks of it; yours first differs at {name}")
            lines.append(("line", f"{first.name} {how}: yours is checked there, at its elements"))
        lines.append(("line", f"({d('v')}: the gradient of {self.root_name} with respect to a node v)"))
        if len(first.branches) == 1:
            (branch,) = first.branches
            rhs = (branch.formula if branch.whole_term
                   else f"{d(branch.consumer_name)} · ∂{branch.consumer_name}/∂{name}")
            lines.append(("math", f"{d(name)} = {rhs}"))
        else:
            lines.append(("math", f"{d(name)} = the sum over its {len(first.branches)} uses u of "
                                  f"{d('u')} · ∂u/∂{name}:"))
        if len(first.branches) <= MAX_USES_SHOWN:
            for branch in first.branches:
                lines += self._branch_lines(name, branch)
        if len(first.groups) > 1 and (len(first.groups) != len(first.branches)
                                      or any(group.via for group in first.groups)):
            lines.append(("line", "its branches, by the stage each leads into:"))
            for group in first.groups:
                via = f" (through {' → '.join(group.via)})" if group.via else ""
                lines.append(("line", f"  {group.name}{via}: {summarize(group.term)}"))
        shown = first.diagnosis.text if first.diagnosis is not None else None
        for sentence in (first.verdict(), first.hint):
            if sentence and sentence != shown:
                lines.append(("note", _sentence(sentence)))
        later = [check.name for check in self.mismatches if check.node is not first.node]
        if later:
            lines.append(("line", f"Differ after it (often because of it): {_shortened(later)}."))
        return lines

    def _branch_lines(self, name: str, branch: Branch) -> list[tuple[str, str]]:
        d = self._adjoint
        whose = "you did not claim it: the engine's" if branch.upstream_yours is None else "yours agrees"
        use = f"{branch.consumer_name} = {branch.expression}"
        defined = f", where {'; '.join(branch.operands)}" if branch.operands else ""
        lines = [("line", f"use {use} ({_where(branch.consumer)}){defined}:"),
                 ("line", f"  {d(branch.consumer_name)} = {summarize(branch.upstream)}  ({whose})")]
        if branch.whole_term:  # a product's term is no elementwise factor: the table writes it whole
            lines.append(("line", f"  term: {branch.formula} = {summarize(branch.term)}"))
            return lines
        constant = is_number(branch.formula.strip("()"))  # a number is its own value: written once
        local = branch.formula + ("" if branch.local is None or constant else f" = {summarize(branch.local)}")
        lines.append(("line", f"  ∂{branch.consumer_name}/∂{name} = {local}"))
        lines.append(("line", f"  term: {summarize(branch.term)}"))
        return lines

    def _adjoint(self, name: str) -> str:
        return f"d{self.root_name}/d{name}"

    def to_text(self) -> str:
        indent = {"title": "", "head": "", "verdict": "  ", "line": "  ", "math": "  ", "note": "  "}
        return "\n".join(indent[kind] + text for kind, text in self._lines())

    def to_markdown(self) -> str:
        out = []
        for kind, text in self._lines():
            if kind in ("title", "head"):
                out.append(f"**{_markdown(text)}**\n")
            elif kind == "verdict":
                out.append(f"> **{_markdown(text)}**\n")
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
                # each colour on a pale ground of its own, at least 4.5:1 on a light or a dark notebook theme
                colour, ground = ("#166534", "#f0fdf4") if self.passed and self.complete else (
                    ("#92400e", "#fffbeb") if self.passed else ("#b91c1c", "#fef2f2"))  # amber: not all given
                parts.append(f'<p style="color:{colour};background:{ground};padding:2px 6px;font-weight:bold">'
                             f'{escaped}</p>')
            elif kind == "head":
                parts.append(f"<p><b>{escaped}</b></p>")
            elif kind == "verdict":
                parts.append(f'<p style="border-left:3px solid #b91c1c;padding-left:8px"><b>{escaped}</b></p>')
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

def check_derivation(root: Node, claimed: Mapping[Node | str, Any], *, rtol: float = 1e-6, atol: float = 1e-9,
                     expected: Iterable[Node | str] | None = None, max_nodes: int = MAX_NODES) -> DerivationCheck:
    """Check your dL/d(node) numbers against the engine's and explain the first that differs (see the module).

    ``root`` is the scalar loss L; ``claimed`` maps nodes or labels to your gradients. A number agrees when
    ``|yours - engine| <= atol + rtol * |engine|`` everywhere. ``expected`` names the gradients asked for (nodes
    or labels; by default every labelled node that needs one); ``max_nodes`` refuses larger graphs.
    """
    if not isinstance(root, Node):
        raise TypeError(f"check_derivation: expected a graph node (a Value or Tensor), got {type(root).__name__}")
    if not isinstance(claimed, Mapping):
        raise TypeError(f"check_derivation: claimed must map nodes or labels to gradients, got "
                        f"{type(claimed).__name__}")
    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
            raise ValueError(f"check_derivation: {name} must be a non-negative number, got {tolerance!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"check_derivation: max_nodes must be a positive integer, got {max_nodes!r}")
    if np.size(root.data) != 1:
        raise ValueError(f"check_derivation: the root must be a scalar loss L, got shape {np.shape(root.data)}; "
                         "reduce it first, e.g. with .sum()")
    check_root(root, None, "check_derivation", "grad")
    graph = AnnotatedPass(root)  # the order, names and reverse pass that drawings and explain read too
    listing, names = graph.listing, graph.names
    if len(listing) > max_nodes:
        raise GraphTooLargeError(f"check_derivation: this graph has {len(listing):,} nodes, more than "
                                 f"max_nodes={max_nodes:,}; check a smaller part (fewer steps, a smaller batch), "
                                 "or raise max_nodes (the check takes about a second per 30,000 nodes)")
    adjoints = graph.backprop.adjoints
    claims, fitted = _resolve(claimed, listing, names, adjoints, rtol, atol)

    checks = []
    for node in reversed(listing):
        if node not in claims:
            continue
        yours = claims[node]
        engine = _engine_adjoint(node, adjoints, names)
        if node in fitted:
            verdict, fit = fitted[node]
            checks.append(Check(node, names[node], yours, _as_shown(node, engine), False, verdict, fit))
            continue
        agrees = bool(np.all(np.abs(np.asarray(yours) - engine) <= atol + rtol * np.abs(engine)))
        checks.append(Check(node, names[node], yours, _as_shown(node, engine), agrees))
    first = next((check for check in checks if not check.agrees), None)
    mismatch = None if first is None else explain(first, graph, claims, rtol, atol)
    asked = _asked(root, listing, names, expected)
    missing = [unit for unit, nodes in asked.items() if not all(node in claims for node in nodes)]
    return DerivationCheck(names[root], checks, mismatch, rtol, atol, list(asked), missing)


def _asked(root: Node, listing: Sequence[Node], names: dict[Node, str], expected: Iterable[Node | str] | None
           ) -> dict[str, list[Node]]:
    """The gradients asked for, by name, each with its nodes (a ScalarLSTM's ``h[t=1]`` is its elements')."""
    units: dict[str, list[Node]] = {}
    for node in listing:
        if node is root or not node.label or not node.requires_grad:
            continue
        units.setdefault(names[node], []).append(node)
        element = _ELEMENT.sub("", node.label)
        if element != node.label:
            units.setdefault(element, []).append(node)
    if expected is None:
        plain = {name: nodes for name, nodes in units.items() if not _ELEMENT.search(name)}
        return plain
    if isinstance(expected, (str, Node)):
        raise TypeError("check_derivation: expected must be a collection of nodes or labels, not one")
    chosen: dict[str, list[Node]] = {}
    for item in expected:
        if isinstance(item, Node):
            if item not in names:
                raise ValueError(f"check_derivation: an expected node ({item.label or 'unlabelled'}) is not in "
                                 "the graph")
            chosen[names[item]] = [item]
        elif isinstance(item, str):
            if item not in units:
                close = difflib.get_close_matches(item, list(units), n=3, cutoff=0.6)
                hint = f"; names like it: {', '.join(map(repr, close))}" if close else ""
                raise ValueError(f"check_derivation: expected {item!r}, but no node that needs a gradient has "
                                 f"that name{hint}")
            chosen[item] = units[item]
        else:
            raise TypeError(f"check_derivation: expected holds nodes or labels, got {type(item).__name__}")
    return chosen


def _resolve(claimed: Mapping[Any, Any], listing: Sequence[Node], names: dict[Node, str],
             adjoints: Mapping[Node, Any], rtol: float, atol: float
             ) -> tuple[dict[Node, Any], dict[Node, tuple[Verdict, np.ndarray]]]:
    """Your claims by node, each checked for shape (a shape a common mistake explains is kept, with its verdict
    and yours brought to the node's shape); labels looked up (one node each), or spread over the elements they
    number."""
    by_label: dict[str, list[Node]] = {}
    for node in listing:
        if node.label:
            by_label.setdefault(node.label, []).append(node)
    claims: dict[Node, Any] = {}
    fitted: dict[Node, tuple[Verdict, np.ndarray]] = {}

    def claim(node: Node, value: Any, key: str) -> None:
        if node in claims:
            raise ValueError(f"check_derivation: {names[node]!r} is claimed twice (the second time as {key})")
        claims[node], fit = _checked_value(node, value, names[node], adjoints, rtol, atol)
        if fit is not None:
            fitted[node] = fit

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
                elements, verdict = _elements(key, value, by_label, adjoints, rtol, atol)
                for node, element in elements:
                    claim(node, element, repr(key))
                    if verdict is not None:  # an array of another shape, explained: each element is its sum
                        fitted[node] = (verdict, np.asarray(element))
        else:
            raise TypeError(f"check_derivation: claims are keyed by nodes or labels, got {type(key).__name__} "
                            f"{key!r}")
    return claims, fitted


def _elements(key: str, value: Any, by_label: dict[str, list[Node]], adjoints: Mapping[Node, Any], rtol: float,
              atol: float) -> tuple[list[tuple[Node, float]], Verdict | None]:
    """An array claimed for a label that names no node, spread over the scalar nodes labelled ``key[i,j]``; an
    array of another shape than theirs that a common mistake explains is brought to it (with the verdict)."""
    array = np.asarray(value, dtype=float) if not isinstance(value, Node) else None
    pattern = re.compile(re.escape(key) + r"\[(\d+(?:,\d+)*)\]")
    numbered = {match[1]: nodes for label, nodes in by_label.items() if (match := pattern.fullmatch(label))}
    verdict = None
    if numbered and array is not None and array.ndim:
        grid = _grid(numbered)
        if grid is not None and grid.shape != array.shape:
            engine = np.array([float(adjoints.get(node, 0.0)) for node in grid.flat]).reshape(grid.shape)
            fit = fit_shape(array, engine, key, rtol, atol)
            if fit is not None:
                verdict, array = fit
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
        return pairs, verdict
    close = difflib.get_close_matches(key, list(by_label), n=3, cutoff=0.6)
    hint = f"; labels like it: {', '.join(map(repr, close))}" if close else ""
    raise ValueError(f"check_derivation: no node is labelled {key!r}{hint}")


def _grid(numbered: Mapping[str, list[Node]]) -> np.ndarray | None:
    """The nodes numbered ``[i,j]`` as an object array of their shape, when they fill one (one node each)."""
    indices = {tuple(int(part) for part in text.split(",")): nodes for text, nodes in numbered.items()}
    if any(len(nodes) != 1 for nodes in indices.values()) or len({len(index) for index in indices}) != 1:
        return None
    shape = tuple(max(column) + 1 for column in zip(*indices))
    if int(np.prod(shape)) != len(indices):
        return None
    grid = np.empty(shape, dtype=object)
    for index, (node,) in indices.items():
        grid[index] = node
    return grid


def _checked_value(node: Node, value: Any, name: str, adjoints: Mapping[Node, Any], rtol: float, atol: float
                   ) -> tuple[Any, tuple[Verdict, np.ndarray] | None]:
    """Your number as a float (for a Value) or a float array of the node's shape (for a Tensor), or of another
    shape that a common mistake explains (with the verdict and yours brought to the node's shape)."""
    if isinstance(value, Node):
        value = value.data
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"check_derivation: your dL/d{name} must be a number or an array of numbers, got "
                        f"{type(value).__name__}") from None
    shape = np.shape(node.data)
    if array.shape != shape:
        adjoint = adjoints.get(node)
        if isinstance(node.data, np.ndarray) and node.requires_grad:
            engine = np.zeros(shape) if adjoint is None else np.asarray(adjoint, dtype=float)
            fit = fit_shape(array, engine, name, rtol, atol)
            if fit is not None:
                return array, fit
        node_shape = "a scalar" if not shape else f"of shape {shape}"
        raise ValueError(f"check_derivation: your dL/d{name} has shape {array.shape}, but {name} is "
                         f"{node_shape}, and neither a transpose nor a sum over a batch or broadcast axis "
                         "explains it")
    return (float(array) if not isinstance(node.data, np.ndarray) else array), None


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


# --- words and text ----------------------------------------------------------------------------------------

def _shortened(names: Sequence[str]) -> str:
    return ", ".join(names[:MAX_NAMES_SHOWN]) + (
        f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else "")


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "?")) else ".")


def _where(node: Node) -> str:
    """"stage t=1 / layer 0 / cell state", or "outside any stage"."""
    return f"stage {' / '.join(node.stage)}" if node.stage else "outside any stage"


def _markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)

