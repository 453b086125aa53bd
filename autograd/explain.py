"""The chain rule written out as a hand derivation: every adjoint as a sum over branches, symbols and numbers.

    >>> print(explain(loss))
    Forward, stage by stage:
      a = 2.0000
      q = a * a = 4.0000
      ...
    Backward, in reverse (a fork adds up the gradients of its branches):
      dL/dL = 1.0000
      dL/dq = dL/dL · ∂L/∂q = 1.0000 · (1) = 1.0000
      dL/da = dL/dq · ∂q/∂a + dL/dq · ∂q/∂a = 1.0000 · (a = 2.0000) + 1.0000 · (a = 2.0000) = ...

Every number comes from one reverse pass of the engine with its branch terms recorded, so what is written
is what the engine computed. This module is also the vocabulary that drawings share: node names, number
formatting and local-derivative formulas with the operands' names substituted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autograd.core import Node, backpropagate

Format = Literal["text", "markdown", "latex"]
TINY = 4  # arrays with at most this many elements are shown in full, larger ones summarised
WIDTH = 100  # text lines longer than this are broken at their "=" signs


# --- names --------------------------------------------------------------------------------------------------

def is_constant(node: Node) -> bool:
    """A leaf that needs no gradient and has no label: shown by its value, not by a name."""
    return node.op is None and not node.requires_grad and not node.label


def _scalar_of(node: Node) -> float | None:
    data = node.data
    if isinstance(data, np.ndarray):
        return data.item() if data.size == 1 else None
    return data


def reading_order(root: Node) -> list[Node]:
    """The nodes under ``root``, each after its inputs, explored first input first.

    Any topological order would do for the chain rule; this one follows the order in which code usually
    writes a computation, so listings read like the program and generated names count up along it.
    """
    order: list[Node] = []
    expanded: set[Node] = set()
    stack: list[Node | None] = [root]
    while stack:
        node = stack.pop()
        if node is None:  # the marker under which a node waited for its inputs
            order.append(stack.pop())
        elif node not in expanded:
            expanded.add(node)
            stack += (node, None)
            stack += [parent for parent in reversed(node.parents) if parent not in expanded]
    return order


def node_names(root: Node) -> dict[Node, str]:
    """Stable, unique names for every node under ``root``, as drawings and explanations show them.

    A label used once is the name; a label shared by several nodes (``h`` at every timestep) is numbered in
    reading order (``h_1``, ``h_2``, ...); an unlabelled node is ``v1``, ``v2``, ... in reading order; a
    scalar constant is written as its value.
    """
    return names_in(reading_order(root))


def names_in(order: Sequence[Node]) -> dict[Node, str]:
    """`node_names` for a `reading_order` already at hand."""
    uses = Counter(node.label for node in order if node.label)
    taken = set(uses)
    numbered: Counter[str] = Counter()
    names: dict[Node, str] = {}

    def fresh(prefix: str) -> str:
        while True:
            numbered[prefix] += 1
            candidate = f"{prefix}{numbered[prefix]}"
            if candidate not in taken:
                taken.add(candidate)
                return candidate

    for node in order:
        label = node.label
        if label:
            names[node] = label if uses[label] == 1 else fresh(f"{label}_")
        elif _written_as_number(node):
            names[node] = format(_scalar_of(node), ".6g")
        else:
            names[node] = fresh("v")
    return names


def _operand(name: str) -> str:
    # a negative constant is bracketed where it is substituted into an expression: x * (-2)
    return f"({name})" if name.startswith("-") else name


# --- numbers ------------------------------------------------------------------------------------------------

def format_number(x: Any, precision: int = 4) -> str:
    """Fixed decimals, switching to exponent form for very large or very small magnitudes."""
    x = float(x)
    if x == 0:
        return f"{0.0:.{precision}f}"  # never "-0.0000"
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e6 or abs(x) < 10.0**-precision:
        return f"{x:.{precision}e}"
    return f"{x:.{precision}f}"


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def summarize(raw: Any, precision: int = 4) -> str:
    """A number; a tiny array in full; a larger one as ``⟨3×4 min …, mean …, max …⟩``."""
    if not isinstance(raw, np.ndarray):
        return format_number(raw, precision)
    if raw.ndim == 0:
        return format_number(raw.item(), precision)
    if raw.size <= TINY:
        text = np.array2string(raw, separator=", ",
                               formatter={"all": lambda v: format_number(v, precision)})
        return " ".join(text.split())
    return f"⟨{shape_text(raw.shape)} {array_stats(raw, precision)}⟩"


def array_stats(raw: np.ndarray, precision: int = 4) -> str:
    if raw.size == 0:
        return "empty"
    return (f"min {format_number(raw.min(), precision)}, mean {format_number(raw.mean(), precision)}, "
            f"max {format_number(raw.max(), precision)}")


# --- the primitive table's symbols and formulas, with names filled in ---------------------------------------

_VARIABLE = re.compile(r"\b(x|a|b|out)\b")


def operand_names(node: Node, position: int, names: dict[Node, str]) -> dict[str, str]:
    """What ``x``, ``a``, ``b`` and ``out`` stand for in the formula of ``node``'s input ``position``."""
    parents = node.parents
    named = {"out": names[node]}
    if node.op.variadic or len(parents) == 1:
        named["x"] = _operand(names[parents[position]])
    if len(parents) == 2:
        named["a"], named["b"] = _operand(names[parents[0]]), _operand(names[parents[1]])
    return named


def fill(template: str, operands: dict[str, str]) -> str:
    """Substitute operand names for the variables of a formula text (whole words only)."""
    return _VARIABLE.sub(lambda m: operands.get(m.group(1), m.group(1)), template)


def expression(node: Node, names: dict[Node, str]) -> str:
    """How ``node`` was computed, in its inputs' names: ``tanh(z)``, ``a * b``; a leaf is its own name."""
    op = node.op
    if op is None:
        return names[node]
    operands = [_operand(names[parent]) for parent in node.parents]
    if op.variadic:
        return op.symbol.format(x=", ".join(operands))
    if len(operands) == 1:
        return op.symbol.format(x=operands[0])
    return op.symbol.format(a=operands[0], b=operands[1])


def local_formula(node: Node, position: int, names: dict[Node, str]) -> str:
    """The local derivative d node / d input ``position`` from the primitive table, e.g. ``1 - tanh(z)^2``."""
    op = node.op
    template = op.formulas[0 if op.variadic else position]
    return fill(template, operand_names(node, position, names))


def local_derivative(node: Node, position: int) -> float | None:
    """The local derivative's value for a scalar node (None for arrays, where it is a Jacobian).

    Every rule is linear in the upstream gradient, so running it with an upstream gradient of 1 gives
    d node / d input.
    """
    if isinstance(node.data, np.ndarray):
        return None
    op = node.op
    inputs = [parent.data for parent in node.parents]
    try:
        if op.variadic:
            return float(op.rules[0](1.0, node.data, *inputs, position=position, **node.params))
        return float(op.rules[position](1.0, node.data, *inputs, **node.params))
    except (ArithmeticError, ValueError):
        return None


# --- the derivation -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """One branch of a node's adjoint: ``upstream`` (dL/d consumer) times the local derivative: ``value``."""

    consumer: Node
    position: int  # which input of the consumer the node is
    upstream: Any  # dL/d consumer
    template: str  # the local derivative as the primitive table writes it (in x / a, b / out)
    operands: dict[str, str]  # what the template's variables stand for
    local: float | None  # the local derivative's value (scalars only)
    value: Any  # the engine's contribution along this branch

    @property
    def formula(self) -> str:
        return fill(self.template, self.operands)


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
    expression: str | None  # None for a leaf
    stage: tuple[str, ...]


class Explanation:
    """A derivation: ``.forward`` (the values, in stages) and ``.steps`` (the adjoints, in reverse order).

    ``str()`` gives it in the chosen format; notebooks display it as that format; ``to_text()``,
    ``to_markdown()`` and ``to_latex()`` give any of them.
    """

    def __init__(self, root: Node, names: dict[Node, str], forward: list[ForwardLine], steps: list[Step],
                 precision: int, format: Format) -> None:
        self.root, self.names, self.forward, self.steps = root, names, forward, steps
        self.precision, self.format = precision, format

    def step(self, node: Node) -> Step:
        """The step of one node (KeyError if the derivation has none for it)."""
        for step in self.steps:
            if step.node is node:
                return step
        raise KeyError(f"no step for {self.names.get(node, node)!r} in this derivation")

    def to_text(self) -> str:
        style = _TextStyle(self.names, self.root, self.precision)
        lines = ["Forward, stage by stage:"]
        lines += [f"  {text}" for _, text in _forward_lines(self.forward, style)]
        lines.append("Backward, in reverse (a fork adds up the gradients of its branches):")
        for step in self.steps:
            parts = _equation(step, style)
            one_line = " = ".join(parts)
            if len(one_line) + 2 <= WIDTH:
                lines.append(f"  {one_line}")
            else:  # one "=" per line, aligned under the first
                indent = " " * (len(parts[0]) + 2)
                lines.append(f"  {parts[0]} = {parts[1]}")
                lines += [f"{indent} = {part}" for part in parts[2:]]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        style = _LatexStyle(self.names, self.root, self.precision)
        lines = ["**Forward**, stage by stage:", ""]
        for is_stage, text in _forward_lines(self.forward, style):
            lines.append(f"- *{text[6:-1]}*" if is_stage else f"- ${text}$")  # stage: \text{...} -> *...*
        lines += ["", "**Backward**, in reverse (a fork adds up the gradients of its branches):", ""]
        for number, step in enumerate(self.steps, 1):
            note = f" *(fork: {len(step.terms)} branches)*" if step.is_fork else ""
            lines.append(f"{number}. ${' = '.join(_equation(step, style))}${note}")
        return "\n".join(lines)

    def to_latex(self) -> str:
        style = _LatexStyle(self.names, self.root, self.precision)
        rows = [r"&\textbf{Forward, stage by stage}"]
        for is_stage, text in _forward_lines(self.forward, style):
            rows.append(f"&{text}" if is_stage else text.replace(" = ", " &= ", 1))
        rows.append(r"&\textbf{Backward, in reverse (a fork adds up the gradients of its branches)}")
        for step in self.steps:
            parts = _equation(step, style)
            rows.append(f"{parts[0]} &= {parts[1]}")
            rows += [f"&= {part}" for part in parts[2:]]
        return "$$\n\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n$$"

    def __str__(self) -> str:
        return {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex}[self.format]()

    def __repr__(self) -> str:
        return self.to_text()

    # Jupyter shows the chosen format only: None tells it the other representations are not offered.
    def _repr_markdown_(self) -> str | None:
        return self.to_markdown() if self.format == "markdown" else None

    def _repr_latex_(self) -> str | None:
        return self.to_latex() if self.format == "latex" else None


def explain(root: Node, wrt: Node | Iterable[Node] | None = None, *, precision: int = 4,
            format: Format = "text") -> Explanation:
    """Write out backpropagation from ``root`` as a hand derivation would, with the engine's numbers.

    Each step is one node's adjoint equation, in reverse topological order: ``dL/dh = dL/dy · ∂y/∂h = ...``,
    and at a fork the sum over its branches. The local derivatives are the primitive table's formulas with
    the operands' names substituted. ``wrt`` keeps only the nodes on paths from the given inputs to ``root``.
    ``format`` ("text", "markdown" or "latex") picks what ``str()`` returns and what a notebook displays.
    """
    if format not in ("text", "markdown", "latex"):
        raise ValueError(f"explain: format must be 'text', 'markdown' or 'latex', got {format!r}")
    order = reading_order(root)
    names = names_in(order)
    on_path = _on_paths(order, root, wrt, names)
    backprop = backpropagate(root, record_branches=True)
    adjoints = backprop.adjoints

    steps = []
    for node in reversed(order):
        if node not in on_path or node not in adjoints or not node.requires_grad:
            continue
        terms = tuple(
            Term(branch.consumer, branch.position, adjoints[branch.consumer],
                 branch.consumer.op.formulas[0 if branch.consumer.op.variadic else branch.position],
                 operand_names(branch.consumer, branch.position, names),
                 local_derivative(branch.consumer, branch.position), branch.term)
            for branch in backprop.terms(node))
        steps.append(Step(node, names[node], adjoints[node], terms))

    mentioned = set(on_path)
    for node in on_path:
        mentioned.update(node.parents)
    forward = [ForwardLine(node, names[node], expression(node, names) if node.op else None, node.stage)
               for node in order if node in mentioned and not _written_as_number(node)]
    return Explanation(root, names, forward, steps, precision, format)


def _written_as_number(node: Node) -> bool:
    return is_constant(node) and _scalar_of(node) is not None


def _on_paths(order: list[Node], root: Node, wrt: Node | Iterable[Node] | None,
              names: dict[Node, str]) -> set[Node]:
    """The nodes that depend on any of ``wrt`` (all nodes when it is None): one pass in topological order."""
    if wrt is None:
        return set(order)
    sources = {wrt} if isinstance(wrt, Node) else set(wrt)
    for source in sources:
        if not isinstance(source, Node):
            raise TypeError(f"explain: wrt= takes graph nodes, got {type(source).__name__}")
    on_path = set()
    for node in order:
        if node in sources or any(parent in on_path for parent in node.parents):
            on_path.add(node)
    if root not in on_path:
        missing = ", ".join(repr(names.get(s, s.label or "an outside node")) for s in sources)
        raise ValueError(f"explain: {names[root]!r} does not depend on {missing}, so there is nothing to "
                         "derive (its gradient there is zero)")
    return on_path


# --- writing it out, as text or as LaTeX --------------------------------------------------------------------

class _TextStyle:
    times = " · "

    def __init__(self, names: dict[Node, str], root: Node, precision: int) -> None:
        self.names, self.root, self.precision = names, names[root], precision

    def name(self, name: str) -> str:
        return name

    def number(self, x: Any) -> str:
        return summarize(x, self.precision)

    def adjoint(self, name: str) -> str:
        return f"d{self.root}/d{name}"

    def partial(self, out: str, x: str) -> str:
        return f"∂{out}/∂{x}"

    def formula(self, term: Term) -> str:
        return term.formula

    def expression(self, node: Node) -> str:
        return expression(node, self.names)

    def stage(self, stage: tuple[str, ...]) -> str:
        return f"[{' / '.join(stage)}]" if stage else "[outside any stage]"


class _LatexStyle(_TextStyle):
    times = r" \cdot "

    def name(self, name: str) -> str:
        return latex_name(name)

    def number(self, x: Any) -> str:
        text = summarize(x, self.precision)
        if not _is_number(text):
            return _latex_text(text)
        mantissa, _, exponent = text.partition("e")  # 1.5000e-07 -> 1.5000 \times 10^{-7}
        return rf"{mantissa} \times 10^{{{int(exponent)}}}" if exponent else text

    def adjoint(self, name: str) -> str:
        return rf"\frac{{d {latex_name(self.root)}}}{{d {latex_name(name)}}}"

    def partial(self, out: str, x: str) -> str:
        return rf"\frac{{\partial {latex_name(out)}}}{{\partial {latex_name(x)}}}"

    def formula(self, term: Term) -> str:
        return latex_formula(term.template, term.operands)

    def expression(self, node: Node) -> str:
        return latex_expression(node, self.names)

    def stage(self, stage: tuple[str, ...]) -> str:
        return _latex_text(super().stage(stage))


def _forward_lines(forward: list[ForwardLine], style: _TextStyle) -> list[tuple[bool, str]]:
    """The forward values as (is a stage heading, text) pairs, with a heading wherever the stage changes."""
    lines: list[tuple[bool, str]] = []
    current: tuple[str, ...] = ()
    for line in forward:
        if line.stage != current:
            lines.append((True, style.stage(line.stage)))
            current = line.stage
        value = style.number(line.node.data)
        if line.expression is None:
            lines.append((False, f"{style.name(line.name)} = {value}"))
        else:
            lines.append((False, f"{style.name(line.name)} = {style.expression(line.node)} = {value}"))
    return lines


def _equation(step: Step, style: _TextStyle) -> list[str]:
    """The sides of one adjoint equation: dL/dn = symbols = numbers [= branch values] = result."""
    lhs = style.adjoint(step.name)
    if not step.terms:  # the root: the seed of the reverse pass
        return [lhs, style.number(step.adjoint)]
    names = [_consumer_name(term) for term in step.terms]
    symbols = " + ".join(style.adjoint(consumer) + style.times + style.partial(consumer, step.name)
                         for consumer in names)
    numbers = _sum([style.number(term.upstream) + style.times + _local(term, style) for term in step.terms])
    parts = [lhs, symbols, numbers]
    if step.is_fork:
        parts.append(_sum([style.number(term.value) for term in step.terms]))
    parts.append(style.number(step.adjoint))
    return parts


def _sum(terms: list[str]) -> str:
    """``a + b + c``, with a negative term after the first bracketed: ``1.0 + (-2.0)``."""
    return " + ".join(term if i == 0 or not term.startswith("-") else f"({term})"
                      for i, term in enumerate(terms))


def _consumer_name(term: Term) -> str:
    return term.operands["out"]


def _local(term: Term, style: _TextStyle) -> str:
    formula = style.formula(term)
    if term.local is None or _is_number(term.formula):
        return f"({formula})"
    return f"({formula} = {style.number(term.local)})"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- LaTeX --------------------------------------------------------------------------------------------------

_LATEX_FUNCTIONS = {"tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma"}
_LATEX_SPECIALS = {c: "\\" + c for c in "#$%&_{}"} | {"\\": r"\backslash{}", "^": r"\^{}", "~": r"\~{}"}
_PROSE = re.compile(r"\b[A-Za-z]{2,}\b(?!\()")  # a word that is not a function name: "1 if x > 0 else 0"


def _latex_text(text: str) -> str:
    return r"\text{" + "".join(_LATEX_SPECIALS.get(c, c) for c in text) + "}"


def _latex_word(word: str) -> str:
    if len(word) == 1 and word.isalnum() or word.isdigit():
        return word
    if word.isalpha() and word.isascii():
        return rf"\mathrm{{{word}}}"
    return _latex_text(word)


def latex_name(name: str) -> str:
    """``h`` -> ``h``, ``h_2`` and ``v12`` -> subscripts, ``loss`` -> ``\\mathrm{loss}``, a number as is."""
    bare = name[1:-1] if name.startswith("(") and name.endswith(")") else name
    if _is_number(bare):
        return f"({bare})" if bare.startswith("-") else bare
    base, _, sub = name.partition("_")
    if not sub and (match := re.fullmatch(r"([A-Za-z]+?)(\d+)", name)):
        base, sub = match.groups()
    if not base:
        return _latex_text(name)
    return _latex_word(base) + (f"_{{{_latex_word(sub)}}}" if sub else "")


def latex_formula(template: str, operands: dict[str, str]) -> str:
    """A local-derivative formula as LaTeX: ``1 - tanh(x)^2`` -> ``1 - \\tanh(h)^2``."""
    if _PROSE.search(_VARIABLE.sub("", template)):  # prose such as "1 if x > 0 else 0" stays text
        return _latex_text(fill(template, operands))
    return _latex(template, {variable: latex_name(name) for variable, name in operands.items()})


def latex_expression(node: Node, names: dict[Node, str]) -> str:
    """How a node was computed, as LaTeX: ``tanh({x})`` -> ``\\tanh(z)``, ``{a} @ {b}`` -> ``x W``."""
    operands = [latex_name(names[parent]) for parent in node.parents]
    op = node.op
    if op.variadic:
        named = {"x": ", ".join(operands)}
    elif len(operands) == 1:
        named = {"x": operands[0]}
    else:
        named = {"a": operands[0], "b": operands[1]}
    return _latex(re.sub(r"\{(x|a|b)\}", r"\1", op.symbol), named)


def _latex_function(match: re.Match) -> str:
    return _LATEX_FUNCTIONS.get(match[1], rf"\operatorname{{{match[1]}}}")


def _latex(template: str, operands: dict[str, str]) -> str:
    # operands go in last, through numbered slots, so that no rewriting below touches their LaTeX
    slots: list[str] = []

    def hold(match: re.Match) -> str:
        slots.append(operands.get(match.group(1), match.group(1)))
        return f"\0{len(slots) - 1}\0"

    text = _VARIABLE.sub(hold, template)
    text = re.sub(r"sqrt\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"\^\(([^()]*)\)", r"^{\1}", text)
    text = re.sub(r"\^(\0\d+\0)", r"^{\1}", text)
    text = re.sub(r"\b([A-Za-z]{2,})(?=\()", _latex_function, text)
    text = re.sub(r" *\* *", r" \\cdot ", text).replace(" @ ", r" \, ")
    return re.sub("\0(\\d+)\0", lambda m: slots[int(m[1])], text)
