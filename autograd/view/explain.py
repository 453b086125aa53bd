"""The chain rule written out as a hand derivation: every adjoint as a sum over branches, symbols and numbers.

    >>> from autograd import Value, explain
    >>> a = Value(2.0, label="a")
    >>> print(explain((a * a + 1).tanh()))
    Forward:
      a = 2
      v1 = a * a = 4
      v2 = v1 + 1 = 5
      L = tanh(v2) = 0.9999
    Backward, in reverse order: dL/dn = Σ dL/du · ∂u/∂n over the uses u of n (a fork has several):
      dL/dL = 1
      dL/dv2 = dL/dL · ∂L/∂v2 = 1 · (1 - tanh(v2)^2 = 0.0001816) = 0.0001816
      dL/dv1 = dL/dv2 · ∂v2/∂v1 = 0.0001816 · (1) = 0.0001816
      dL/da = dL/dv1 · ∂v1/∂a + dL/dv1 · ∂v1/∂a
            = 0.0001816 · (a = 2) + 0.0001816 · (a = 2)
            = 0.00036317 + 0.00036317
            = 0.0007263

The forward pass is listed stage by stage (``with autograd.stage("t=1"):``), the stages in computation order
(an LSTM's gates as i, f, g, o, as drawings show them), then the reverse pass node by node in the opposite
order, each local derivative being the primitive table's formula with the operands' names filled in. Every
number comes from one reverse pass of the engine with its branch terms recorded (`autograd.view.annotated`, as
drawings and step-throughs read it), so what is written is what the engine computed. Numbers have
``precision`` significant digits; the terms of a sum get more where fewer would make them not add up to the
printed total (as 0.0003632 + 0.0003632 = 0.0007263 would not).

How nodes, numbers and formulas are written is `autograd.view.notation`'s, shared with the drawings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autograd.core import Node
from autograd.view.annotated import AnnotatedPass
from autograd.view.expand import expansion
from autograd.view.notation import (
    expression,
    fill,
    format_sum,
    formula_template,
    gives_whole_term,
    is_number,
    latex_expression,
    latex_formula,
    latex_name,
    latex_number,
    latex_template,
    latex_text,
    local_value,
    operand_names,
    shape_text,
    summarize,
    written_as_number,
)

Format = Literal["text", "markdown", "latex"]
WIDTH = 110  # text lines longer than this are broken at their "=" signs, and long sums at their "+" signs
LATEX_ROW = 240  # characters of LaTeX source on one row of an aligned equation before a sum is broken
LATEX_BLOCK = 3000  # characters of LaTeX in one formula: MathJax refuses more than 5,120, macros expanded
MAX_TERMS = 12  # a fork of more branches is written out as its first 9, "... n more ...", and its last 2
MAX_STEPS = 200  # forward values and backward steps written out by default; `.steps` always has them all


# --- the derivation -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """One branch of a node's adjoint: ``upstream`` (dL/d consumer) times the local derivative: ``value``."""

    consumer: Node
    position: int  # which input of the consumer the node is
    upstream: Any  # dL/d consumer
    template: str  # the local derivative as the primitive table writes it (in x / a, b / out)
    operands: dict[str, str]  # what the template's variables stand for
    local: Any  # the local derivative's value: a float, an array for elementwise array ops, else None
    value: Any  # the engine's contribution along this branch

    @property
    def formula(self) -> str:
        return fill(self.template, self.operands)

    @property
    def whole(self) -> bool:
        """The formula names the upstream gradient ``g``: it is the whole branch term (matmul's ``a^T @ g``),
        not a factor that multiplies the upstream gradient."""
        return gives_whole_term(self.consumer, self.position)

    @property
    def summed(self) -> bool:
        """The input was broadcast in this op: its term is upstream × local summed back to the input's shape."""
        return isinstance(self.local, np.ndarray) and np.shape(self.local) != np.shape(self.value)


@dataclass(frozen=True)
class Step:
    """The adjoint equation of one node: dL/d node is the sum of its branch terms (the seed, for the root)."""

    node: Node
    name: str
    adjoint: Any  # the engine's dL/d node
    terms: tuple[Term, ...]

    @property
    def is_fork(self) -> bool:
        return len(self.terms) > 1


@dataclass(frozen=True)
class ForwardLine:
    """One value of the forward pass: ``name = expression = value``, in its stage."""

    node: Node
    name: str
    expression: str | None  # None for a leaf, and for a value off the paths explained (written by its value)
    stage: tuple[str, ...]


class Explanation:
    """A derivation: ``.forward`` (the values, stage by stage) and ``.steps`` (the adjoints, in reverse order).

    ``str()`` gives it in the chosen format, ``to_text()``, ``to_markdown()`` and ``to_latex()`` in any;
    Jupyter displays it as Markdown (as LaTeX when that is the chosen format). Each rendering writes out at
    most ``max_steps`` forward values and backward steps; ``.steps`` holds them all.
    """

    def __init__(self, root: Node, names: dict[Node, str], forward: list[ForwardLine], steps: list[Step],
                 precision: int, format: Format, *, max_steps: int | None = MAX_STEPS,
                 sources: Sequence[Node] = (), notice: str | None = None) -> None:
        self.root, self.names, self.forward, self.steps = root, names, forward, steps
        self.notice = notice  # one line when .grad holds more than this pass (AnnotatedPass.accumulated)
        self.precision, self.format, self.max_steps, self.sources = precision, format, max_steps, sources
        self._step_of = {step.node: step for step in steps}
        self._step_named = {step.name: step for step in steps}
        self._staged = any(line.stage for line in forward)

    def step(self, node: Node | str) -> Step:
        """The step of one node, or of the node with this name (KeyError if the derivation has none)."""
        step = self._step_named.get(node) if isinstance(node, str) else self._step_of.get(node)
        if step is None:
            shown = node if isinstance(node, str) else self.names.get(node, node.label or "an outside node")
            raise KeyError(f"no step for {shown!r} in this derivation (it needs no gradient, is off the paths "
                           "kept by wrt=, or is not in the graph)")
        return step

    def step_lines(self, step: Step) -> list[str]:
        """One step's adjoint equation as `to_text` writes it, in lines (without the first line's indent)."""
        return _wrap(_equation(step, _TextStyle(self)), "", WIDTH)

    def to_text(self) -> str:
        style = _TextStyle(self)
        indent = "    " if self._staged else "  "
        root = self.names[self.root]
        lines = []
        for kind, item in self._items(style):
            if kind == "forward":
                lines.append("Forward, stage by stage:" if self._staged else "Forward:")
            elif kind == "backward":
                lines.append(f"Backward, in reverse order: d{root}/dn = Σ d{root}/du · ∂u/∂n over the uses u of n "
                             f"(a fork has several){self._only('text')}:")
            elif kind == "stage":
                lines.append(f"  [{item}]")
            elif kind == "step":
                lines += _wrap(item, indent, WIDTH)
            else:  # a value or a note
                lines.append(indent + item)
        return "\n".join(lines)

    def to_markdown(self) -> str:
        style = _LatexStyle(self)
        lines: list[str] = []

        def paragraph(text: str) -> None:  # a line with blank lines around it, never two blank lines in a row
            lines.extend(([""] if lines and lines[-1] else []) + [text, ""])

        number = 0
        for kind, item in self._items(style):
            if kind == "forward":
                paragraph(f"**Forward**{', stage by stage' if self._staged else ''}:")
            elif kind == "backward":
                paragraph(rf"**Backward**, in reverse order: ${style.adjoint('n')} = \sum_u {style.adjoint('u')} "
                          rf"\cdot {style.partial('u', 'n')}$ over the uses $u$ of $n$ (a fork has several)"
                          f"{self._only('markdown')}:")
            elif kind == "stage":
                paragraph(f"*{_markdown_escape(item)}*")
            elif kind == "value":
                lines.append(f"- ${item}$")
            elif kind == "step":
                number += 1
                lines.append(f"{number}. {_markdown_math(item)}")
            else:
                lines.append(f"- *{_markdown_escape(item)}*")
        return "\n".join(lines).strip("\n")

    def to_latex(self) -> str:
        """Display math: ``$$\\begin{aligned} ... \\end{aligned}$$`` blocks, as many as MathJax's size limit
        needs (see `LATEX_BLOCK`), each stage heading in the block of its first line."""
        style = _LatexStyle(self)
        units: list[list[str]] = []  # rows that stay in one block: a value, an equation, with any heading before
        heading: list[str] = []
        for kind, item in self._items(style):
            if kind == "forward":
                heading.append(r"&\textbf{Forward" + (", stage by stage}" if self._staged else "}"))
            elif kind == "backward":
                heading.append(rf"&\textbf{{Backward, in reverse order:}}\ {style.adjoint('n')} = \sum_u "
                               rf"{style.adjoint('u')} \cdot {style.partial('u', 'n')}"
                               rf"\text{{ over the uses }} u \text{{ of }} n{self._only('latex')}")
            elif kind == "stage":
                heading.append(rf"&\textit{{stage}}\ {latex_text(item)}")
            else:
                if kind == "step":
                    rows = _latex_rows(item)
                elif kind == "value":
                    rows = [item.replace(" = ", " &= ", 1)]
                else:  # a note
                    rows = [f"&{latex_text(item)}"]
                units.append(heading + rows)
                heading = []
        if heading:
            units.append(heading)
        return "\n".join("$$\n\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n$$"
                         for rows in _latex_blocks(units))

    def __str__(self) -> str:
        return {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex}[self.format]()

    def __repr__(self) -> str:
        return self.to_text()

    # A notebook renders Markdown (with inline LaTeX) unless LaTeX was asked for; print() gives the chosen format.
    def _repr_markdown_(self) -> str | None:
        return None if self.format == "latex" else self.to_markdown()

    def _repr_latex_(self) -> str | None:
        return self.to_latex() if self.format == "latex" else None

    def _only(self, flavour: str) -> str:
        """The note in the backward heading when ``wrt=`` kept some paths only ("text", "markdown", "latex")."""
        if not self.sources:
            return ""
        if flavour == "text":
            return f"; only the paths from {', '.join(self.names[source] for source in self.sources)}"
        listing = ", ".join(latex_name(self.names[source]) for source in self.sources)
        if flavour == "latex":
            return rf"\text{{; only the paths from }} {listing}"
        return f"; only the paths from ${listing}$"

    def _items(self, style: _TextStyle) -> Iterator[tuple[str, Any]]:
        """The document as (kind, content): "forward" and "backward" open the two parts, "stage" (its path as
        text) wherever the stage changes, then a "value" (its line) or "step" (its equation's sides) each, and
        a "note" where some are not written out: the forward values furthest from the output, and the backward
        steps furthest from it, so that what is shown meets in the middle."""
        limit = self.max_steps
        values = self.forward if limit is None else self.forward[-limit:]
        steps = self.steps if limit is None else self.steps[:limit]
        yield "forward", None
        if len(values) < len(self.forward):
            yield "note", f"... {len(self.forward) - len(values):,} earlier values not written out"
        current: tuple[str, ...] | None = None if self._staged else ()
        for line in values:
            if line.stage != current:
                current = line.stage
                yield "stage", _stage_text(current)
            value = style.number(line.node.data)
            if line.expression is None:
                yield "value", f"{style.name(line.name)} = {value}"
            else:
                yield "value", f"{style.name(line.name)} = {style.expression(line.node)} = {value}"
        yield "backward", None
        current = None if self._staged else ()
        for step in steps:
            if step.node.stage != current:
                current = step.node.stage
                yield "stage", _stage_text(current)
            yield "step", _equation(step, style)
            for term in step.terms:
                note = _stage_note(term, self.names[self.root], self.precision)
                if note:
                    yield "note", note
        if len(steps) < len(self.steps):
            yield "note", (f"... {len(self.steps) - len(steps):,} more steps not written out "
                           "(explain(..., max_steps=None) writes them all; .steps holds them all)")
        if self.notice:
            yield "note", self.notice


def explain(root: Node, wrt: Node | Iterable[Node] | None = None, *, precision: int = 4,
            format: Format = "text", max_steps: int | None = MAX_STEPS,
            expand: str | Iterable[str] | None = None, annotated: AnnotatedPass | None = None) -> Explanation:
    """Write out backpropagation from ``root`` as a hand derivation would, with the engine's numbers.

    First the forward values, stage by stage; then each node's adjoint equation, in reverse order:
    ``dL/dh = dL/dy · ∂y/∂h = ...``, and at a fork the sum over its branches. The local derivatives are the
    primitive table's formulas with the operands' names substituted. The root is called by its label, or
    ``L``; a non-scalar root is seeded with ones (L is then the sum of its elements).

    ``wrt`` (a node or several) keeps only the nodes on paths from them to ``root``. ``precision`` is the
    number of significant digits. ``format`` ("text", "markdown" or "latex") picks what ``str()`` returns.
    ``max_steps`` bounds how many values and steps the renderings write out (None: all); the structured
    `Explanation.steps` always has every step. ``expand`` names functional stages (``"softmax_cross_entropy"``,
    ``"conv2d"``, ...; see `autograd.view.expand`) to write out as the plain primitives they stand for: the
    derivation of a copy of the graph over the same leaves (nodes named in ``wrt`` stand for their copies).
    ``annotated``: the root's annotated pass, when one is at hand (a drawing's), so that the derivation is
    written from the very pass the drawing shows (not with ``expand``, which derives a copy).
    """
    if not isinstance(root, Node):
        raise TypeError(f"explain: expected a graph node (a Value or Tensor), got {type(root).__name__}")
    if format not in ("text", "markdown", "latex"):
        raise ValueError(f"explain: format must be 'text', 'markdown' or 'latex', got {format!r}")
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
        raise ValueError(f"explain: precision is a number of significant digits, at least 1; got {precision!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"explain: max_steps must be a positive integer or None, got {max_steps!r}")
    if annotated is not None and (annotated.root is not root or expand is not None):
        raise ValueError("explain: annotated= is the annotated pass of another root" if annotated.root is not root
                         else "explain: annotated= and expand= do not go together: expand derives a copy")
    if expand is not None:  # the derivation of the copy; nodes named in wrt= by their copies
        copies = expansion(root, expand)
        root = copies[root]
        wrt = wrt if wrt is None else [copies.get(node, node) for node in _sources(wrt)]
    if annotated is None:
        annotated = AnnotatedPass(root)
    listing, names = annotated.listing, annotated.names
    if not root.requires_grad:
        raise ValueError(f"explain: {names[root]!r} depends on nothing that needs a gradient, so there is "
                         "nothing to derive")
    sources = _sources(wrt)
    on_path = _on_paths(annotated.order, root, sources, names)
    adjoints = annotated.backprop.adjoints

    steps = []
    for node in reversed(listing):
        if node not in on_path or node not in adjoints or not node.requires_grad:
            continue
        terms = tuple(
            Term(branch.consumer, branch.position, adjoints[branch.consumer],
                 formula_template(branch.consumer, branch.position),
                 operand_names(branch.consumer, branch.position, names),
                 local_value(branch.consumer, branch.position), branch.term)
            for branch in annotated.terms(node))
        steps.append(Step(node, names[node], adjoints[node], terms))

    # Every name the derivation uses is defined: the nodes on the paths by how they were computed, the other
    # inputs of those nodes by their values alone (what made them is off the paths asked for).
    mentioned = set(on_path)
    for node in on_path:
        mentioned.update(node.parents)
    forward = [ForwardLine(node, names[node], expression(node, names) if node.op and node in on_path else None,
                           node.stage)
               for node in listing if node in mentioned and not written_as_number(node)]
    return Explanation(root, names, forward, steps, precision, format, max_steps=max_steps, sources=sources,
                       notice=annotated.accumulated())


def _sources(wrt: Node | Iterable[Node] | None) -> list[Node]:
    if wrt is None:
        return []
    if isinstance(wrt, Node):
        sources = [wrt]
    elif isinstance(wrt, Iterable) and not isinstance(wrt, str):
        sources = list(wrt)
    else:
        raise TypeError(f"explain: wrt= takes a graph node or several, got {type(wrt).__name__}")
    for source in sources:
        if not isinstance(source, Node):
            raise TypeError(f"explain: wrt= takes graph nodes, got {type(source).__name__}")
    if not sources:
        raise ValueError("explain: wrt= is empty; leave it out to explain every node")
    return list(dict.fromkeys(sources))


def _on_paths(order: list[Node], root: Node, sources: list[Node], names: dict[Node, str]) -> set[Node]:
    """The nodes that depend on any of ``sources`` (all nodes when there are none), in one pass."""
    if not sources:
        return set(order)
    root_name = names[root]
    for source in sources:
        if source not in names:
            shown = f"{source.label!r}" if source.label else f"(an unlabelled {type(source).__name__})"
            raise ValueError(f"explain: wrt= {shown} is not in the graph of {root_name!r}, which therefore "
                             "does not depend on it (its gradient there is zero)")
        if not source.requires_grad:
            raise ValueError(f"explain: wrt= {names[source]!r} needs no gradient (it is a constant, or a Tensor "
                             "without requires_grad=True), so no gradient flows back to it")
    wanted = set(sources)
    on_path = set()
    for node in order:
        if node in wanted or any(parent in on_path for parent in node.parents):
            on_path.add(node)
    return on_path


# --- writing it out, as text or as LaTeX --------------------------------------------------------------------

class _TextStyle:
    times = " · "

    def __init__(self, explanation: Explanation) -> None:
        self.names, self.precision = explanation.names, explanation.precision
        self.root = self.names[explanation.root]

    def name(self, name: str) -> str:
        return name

    def number(self, x: Any) -> str:
        return summarize(x, self.precision)

    def scalar(self, text: str) -> str:
        """A number already written by `format_number`."""
        return text

    def adjoint(self, name: str) -> str:
        return f"d{self.root}/d{name}"

    def partial(self, out: str, x: str) -> str:
        return f"∂{out}/∂{x}"

    def formula(self, term: Term) -> str:
        return term.formula

    def whole(self, term: Term, upstream: str) -> str:
        """A formula that is the whole branch term, with ``upstream`` written for ``g``."""
        return fill(term.template, {**term.operands, "g": upstream})

    def expression(self, node: Node) -> str:
        return expression(node, self.names)

    def summed(self, product: str, shape: tuple[int, ...]) -> str:
        return f"({product}, summed to {_shape_phrase(shape)})"

    def more(self, count: int) -> str:
        return f"... {count:,} more ..."


class _LatexStyle(_TextStyle):
    times = r" \cdot "

    def name(self, name: str) -> str:
        return latex_name(name)

    def number(self, x: Any) -> str:
        return summarize(x, self.precision, latex=True)

    def scalar(self, text: str) -> str:
        return latex_number(text)

    def adjoint(self, name: str) -> str:
        return rf"\frac{{d {latex_name(self.root)}}}{{d {latex_name(name)}}}"

    def partial(self, out: str, x: str) -> str:
        return rf"\frac{{\partial {latex_name(out)}}}{{\partial {latex_name(x)}}}"

    def formula(self, term: Term) -> str:
        return latex_formula(term.template, term.operands)

    def whole(self, term: Term, upstream: str) -> str:
        named = {variable: latex_name(name) for variable, name in term.operands.items()}
        return latex_template(term.template, {**named, "g": upstream})

    def expression(self, node: Node) -> str:
        return latex_expression(node, self.names)

    def summed(self, product: str, shape: tuple[int, ...]) -> str:
        return rf"\left({product},\ \text{{summed to {_shape_phrase(shape, latex=True)}}}\right)"

    def more(self, count: int) -> str:
        return rf"\cdots\ \text{{{count:,} more}}\ \cdots"


def _stage_note(term: Term, root: str, precision: int) -> str | None:
    """What a functional stage's formula means, in words and with its numbers: p and y for p - y, the fork of a
    kernel over the output positions, where pooling sends the gradient. None for other ops."""
    op, names = term.consumer.op.name, term.operands
    out, adjoint = names["out"], f"d{root}/d{names['out']}"
    if op == "softmax_cross_entropy":
        logits = term.consumer.parents[0].data
        targets = term.consumer.params["targets"]
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        return (f"where p = softmax({names['x']}) = {summarize(p, precision)}, y = {summarize(targets, precision)}, "
                f"N = {targets.size}: the predicted probabilities minus the one-hot targets, averaged over the rows")
    if op in ("conv1d", "conv2d") and term.position == 1:
        positions = int(np.prod(term.consumer.data.shape[2:]))
        return (f"{names['b']} is used at each of the {positions} positions of {out} (a fork over positions): "
                f"correlate({names['a']}, {adjoint}) adds up one term per position, the window of {names['a']} "
                f"there times {adjoint} there (and over the batch)")
    if op in ("conv1d", "conv2d"):
        return (f"convolve_full({adjoint}, flip({names['b']})): each element of {names['a']} collects {adjoint} "
                f"times the kernel entry that met it, from every window that covers it")
    if op == "max_pool2d":
        return (f"each window of {names['x']} sends its {adjoint} to its first maximum (row-major, as PyTorch "
                f"does at ties); its other elements get 0")
    if op == "avg_pool2d":
        return f"each element of {names['x']} gets {adjoint} / (window area) from every window that holds it"
    return None


def _shape_phrase(shape: tuple[int, ...], latex: bool = False) -> str:
    if not shape:
        return "a scalar"
    return "shape " + ("x".join(map(str, shape)) if latex else shape_text(shape))


def _stage_text(stage: tuple[str, ...]) -> str:
    return " / ".join(stage) if stage else "outside any stage"


def _equation(step: Step, style: _TextStyle) -> list[list[str]]:
    """The sides of one adjoint equation, each a list of summands: dL/dn = symbols = numbers [= branch values]
    = result. A fork of more than `MAX_TERMS` branches is abridged to its first and last few."""
    lhs = [style.adjoint(step.name)]
    if not step.terms:  # the root: the seed of the reverse pass
        return [lhs, [style.number(step.adjoint)]]
    terms = step.terms
    left_out = len(terms) - MAX_TERMS + 1 if len(terms) > MAX_TERMS else 0
    if left_out:
        terms = terms[:MAX_TERMS - 3] + terms[-2:]

    def abridged(summands: list[str]) -> list[str]:
        return summands[:-2] + [style.more(left_out)] + summands[-2:] if left_out else summands

    symbols = [style.whole(term, style.adjoint(term.operands["out"])) if term.whole else
               style.adjoint(term.operands["out"]) + style.times + style.partial(term.operands["out"], step.name)
               for term in terms]
    parts = [lhs, abridged(symbols), abridged([_product(term, style) for term in terms])]
    values = [term.value for term in terms]
    if not step.is_fork:
        parts.append([style.number(step.adjoint)])
    elif not left_out and all(isinstance(value, float) for value in values) and isinstance(step.adjoint, float):
        shown, total = format_sum(values, step.adjoint, style.precision)
        parts += [[style.scalar(text) for text in shown], [style.scalar(total)]]
    else:
        parts += [abridged([style.number(value) for value in values]), [style.number(step.adjoint)]]
    return parts


def _product(term: Term, style: _TextStyle) -> str:
    """``upstream · (local formula = its value)``, the chain rule along one branch."""
    if term.whole:
        product = style.whole(term, style.number(term.upstream))
        return style.summed(product, np.shape(term.value)) if term.summed else product
    local = style.formula(term)
    if is_number(term.formula.strip("()")):  # a constant, (-2) among them: written once, bracketed once
        local = local[1:-1] if local.startswith("(") and local.endswith(")") else local
    elif term.local is not None:
        local = f"{local} = {style.number(term.local)}"
    product = f"{style.number(term.upstream)}{style.times}({local})"
    return style.summed(product, np.shape(term.value)) if term.summed else product


def _sum(summands: list[str]) -> str:
    """``a + b + c``, with a negative summand after the first bracketed: ``1.0 + (-2.0)``."""
    return " + ".join(_bracketed(summand, i) for i, summand in enumerate(summands))


def _bracketed(summand: str, position: int) -> str:
    return f"({summand})" if position and summand.startswith("-") else summand


def _wrap(parts: list[list[str]], indent: str, width: int) -> list[str]:
    """One line if it fits; else one side per line, aligned at the first "=", long sums broken at "+"."""
    sides = [_sum(part) for part in parts]
    line = indent + " = ".join(sides)
    if len(line) <= width:
        return [line]
    lead = indent + sides[0] + " = "
    rest = " " * (len(lead) - 2) + "= "
    lines: list[str] = []
    for i, part in enumerate(parts[1:]):
        prefix = lead if i == 0 else rest
        line = prefix + _bracketed(part[0], 0)
        for position, summand in enumerate(part[1:], 1):
            summand = _bracketed(summand, position)
            if len(line) + 3 + len(summand) > width:
                lines.append(line)
                line = " " * len(prefix) + "+ " + summand
            else:
                line += " + " + summand
        lines.append(line)
    return lines


def _markdown_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)


def _markdown_math(parts: list[list[str]]) -> str:
    """One adjoint equation as Markdown math: inline, or an aligned block when it is long, or several of them
    one under the other when one would be too long for MathJax."""
    inline = " = ".join(_sum(part) for part in parts)
    if len(inline) <= LATEX_ROW:
        return f"${inline}$"
    return "<br>".join(r"$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"
                       for rows in _latex_blocks([_latex_rows(parts)]))


def _latex_blocks(units: list[list[str]]) -> list[list[str]]:
    """Rows packed into blocks of at most `LATEX_BLOCK` characters, a unit split only if it alone is larger."""
    blocks: list[list[str]] = []
    rows: list[str] = []
    size = 0
    for unit in units:
        if rows and size + sum(len(row) + 4 for row in unit) > LATEX_BLOCK:
            blocks.append(rows)
            rows, size = [], 0
        for row in unit:
            if rows and size + len(row) + 4 > LATEX_BLOCK:
                blocks.append(rows)
                rows, size = [], 0
            rows.append(row)
            size += len(row) + 4  # with its " \\\n"
    return [*blocks, rows] if rows else blocks


def _latex_rows(parts: list[list[str]]) -> list[str]:
    """Rows of an aligned equation: the first side and "&= ..." for each other, long sums over several rows."""
    rows: list[str] = []
    for i, part in enumerate(parts[1:]):
        row = (f"{parts[0][0]} &= " if i == 0 else "&= ") + _bracketed(part[0], 0)
        for position, summand in enumerate(part[1:], 1):
            summand = _bracketed(summand, position)
            if len(row) + len(summand) > LATEX_ROW:
                rows.append(row)
                row = r"&\quad + " + summand
            else:
                row += " + " + summand
        rows.append(row)
    return rows

