"""Notation: how nodes, numbers and the primitive table's formulas are written, in text and in LaTeX.

Explanations and drawings share it, so a node has one name everywhere and a number is written one way:
names come from labels, or ``v1``, ``v2``, ... in the order a reader meets the nodes (stage by stage, see
`autograd.view.order`), the root being ``L``; numbers have a given count of significant digits (`format_number`,
and for arrays `brief` in drawings, `summarize` in explanations); a local derivative is its primitive's formula
text with the operands' names filled in; an index is written as it was given (``x[0]``, ``out[-1]``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from autograd.core import Node
from autograd.view.order import reading_order, stage_order

TINY = 4  # arrays with at most this many elements are shown in full, larger ones summarised
ROOT_NAME = "L"  # what a hand derivation calls the output, when the root has no label of its own
FLOAT_DIGITS = 17  # significant digits that tell any two floats apart: more add nothing a float holds


# --- names --------------------------------------------------------------------------------------------------

def is_constant(node: Node) -> bool:
    """A leaf that needs no gradient and has no label: shown by its value, not by a name."""
    return node.op is None and not node.requires_grad and not node.label


def _scalar_of(node: Node) -> float | None:
    data = node.data
    if isinstance(data, np.ndarray):
        return data.item() if data.size == 1 else None
    return data


def node_names(root: Node) -> dict[Node, str]:
    """Stable, unique names for every node under ``root``, as explanations show them (and drawings may).

    A label used once is the name; a label shared by several nodes (``h`` at every timestep) is numbered
    (``h_1``, ``h_2``, ...); an unlabelled node is ``v1``, ``v2``, ...; a scalar constant is written as its
    value; the unlabelled root is ``L``. Numbers count up along the `stage_order` listing.
    """
    return names_in(stage_order(reading_order(root)), root_name=ROOT_NAME)


def names_in(order: Sequence[Node], *, root_name: str | None = None) -> dict[Node, str]:
    """Names for the nodes of a topological ``order`` already at hand (`reading_order` or `stage_order`),
    numbered along it: see `node_names`.

    ``root_name`` (e.g. ``"L"``) names the last node of ``order``, the root, when it has no label and no
    other node is labelled so.
    """
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

    root = order[-1] if order else None
    for node in order:
        label = node.label
        if label:
            names[node] = label if uses[label] == 1 else fresh(f"{label}_")
        elif written_as_number(node):
            names[node] = format(_scalar_of(node), ".6g")
        elif node is root and root_name and root_name not in taken:
            names[node] = root_name
        else:
            names[node] = fresh("v")
    return names


def _operand(name: str) -> str:
    # a negative constant is bracketed where it is substituted into an expression: x * (-2)
    return f"({name})" if name.startswith("-") else name


def written_as_number(node: Node) -> bool:
    return is_constant(node) and _scalar_of(node) is not None


# --- numbers ------------------------------------------------------------------------------------------------

def format_number(x: Any, precision: int = 4) -> str:
    """``x`` to ``precision`` significant digits, in exponent form when very large or small: 0.0003632, 12.5,
    1.5e-7, 2.5e6. Trailing zeros are dropped (2, not 2.000), and there is no "-0"."""
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)  # nan, inf, -inf
    mantissa, e, exponent = f"{x:.{precision}g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if e else mantissa


def format_sum(terms: Sequence[float], total: float, precision: int = 4) -> tuple[list[str], str]:
    """The terms of a sum and its total as text, the terms with as many extra digits as it takes to add up.

    Rounded one by one, terms can seem to contradict their total: 0.0003632 + 0.0003632 = 0.0007263 (the
    exact terms are 0.00036317). Here the printed terms, added by hand and rounded like the total, give the
    printed total: 0.00036317 + 0.00036317 = 0.0007263.
    """
    shown_total = format_number(total, precision)
    if all(math.isfinite(term) for term in terms):
        for digits in range(precision, FLOAT_DIGITS + 1):
            shown = [format_number(term, digits) for term in terms]
            if format_number(math.fsum(float(text) for text in shown), precision) == shown_total:
                return shown, shown_total
    return [format_number(term, precision) for term in terms], shown_total


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def array_stats(raw: np.ndarray, precision: int = 4) -> str:
    if raw.size == 0:
        return "empty"
    return (f"min {format_number(raw.min(), precision)}, mean {format_number(raw.mean(), precision)}, "
            f"max {format_number(raw.max(), precision)}")


def summarize(raw: Any, precision: int = 4, latex: bool = False) -> str:
    """A number; a tiny array in full; a larger one as ``⟨3×4 min …, mean …, max …⟩`` (or its LaTeX)."""

    def number(x: Any) -> str:
        text = format_number(x, precision)
        return latex_number(text) if latex else text

    if not isinstance(raw, np.ndarray):
        return number(raw)
    if raw.ndim == 0:
        return number(raw.item())
    if raw.size <= TINY:
        return " ".join(np.array2string(raw, separator=", ", formatter={"all": number}).split())
    if not latex:
        return f"⟨{shape_text(raw.shape)} {array_stats(raw, precision)}⟩"
    if raw.size == 0:
        return rf"\langle {latex_shape(raw.shape)}\ \text{{empty}} \rangle"
    return (rf"\langle {latex_shape(raw.shape)} \mid \min {number(raw.min())},\ "
            rf"\operatorname{{mean}} {number(raw.mean())},\ \max {number(raw.max())} \rangle")


def brief(raw: Any, digits: int = 3, mean: bool = True) -> str:
    """A number; a tiny array in full; a larger one as its range and mean: ``-0.04 … 0.88, mean 0.4``
    (``all 0`` when its elements print alike). Drawings write numbers so; explanations use `summarize`."""
    if not isinstance(raw, np.ndarray):
        return format_number(raw, digits)
    if raw.size == 1:
        return format_number(raw.item(), digits)
    if raw.size == 0:
        return "empty"
    if raw.size <= TINY:
        text = np.array2string(raw, separator=", ", formatter={"all": lambda v: format_number(v, digits)})
        return " ".join(text.split())
    low, high = format_number(raw.min(), digits), format_number(raw.max(), digits)
    if low == high:
        return f"all {low}"
    return f"{low} … {high}, mean {format_number(raw.mean(), digits)}" if mean else f"{low} … {high}"


def sum_texts(terms: Sequence[float], total: float, digits: int) -> list[str]:
    """The terms of a fork's sum as a drawing writes them: with the digits they need to add up, by hand, to the
    total as written (`format_sum`), a negative one after the first in brackets."""
    texts, _ = format_sum([float(term) for term in terms], float(total), digits)
    return [text if i == 0 or not text.startswith("-") else f"({text})" for i, text in enumerate(texts)]


# --- the primitive table's symbols and formulas, with names filled in ---------------------------------------

_VARIABLE = re.compile(r"\b(x|a|b|out|g)\b")
_VARIABLE_G = re.compile(r"\bg\b")


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
    """Substitute operand names for the variables of a formula text (whole words only, all at once)."""
    return _VARIABLE.sub(lambda m: operands.get(m.group(1), m.group(1)), template)


def expression(node: Node, names: dict[Node, str]) -> str:
    """How ``node`` was computed, in its inputs' names: ``tanh(z)``, ``a * b``, ``out[-1]``; a leaf is its own
    name."""
    op = node.op
    if op is None:
        return names[node]
    return symbol(node).format(**_operands(node, [_operand(names[parent]) for parent in node.parents]))


def symbol(node: Node) -> str:
    """The primitive's symbol for this node, its index filled in: ``{x}[i]`` with index -1 is ``{x}[-1]``."""
    text = node.op.symbol
    if "[i]" in text and "index" in node.params:
        text = text.replace("[i]", "[" + index_text(node.params["index"]).replace("{", "{{").replace("}", "}}") + "]")
    return text


def _operands(node: Node, operands: list[str]) -> dict[str, str]:
    if node.op.variadic:
        return {"x": ", ".join(operands)}
    if len(operands) == 1:
        return {"x": operands[0]}
    return {"a": operands[0], "b": operands[1]}


def index_text(index: Any) -> str:
    """An index as it was written: ``0``, ``-1``, ``1:3``, ``..., 0``, ``:, None``; an array by its values when
    it is small (``[0, 2]``), else by its shape."""
    parts = index if isinstance(index, tuple) else (index,)
    return ", ".join(_index_part(part) for part in parts) if parts else "()"


def _index_part(part: Any) -> str:
    if part is Ellipsis:
        return "..."
    if part is None:
        return "None"
    if isinstance(part, slice):
        text = ":".join("" if bound is None else str(bound) for bound in (part.start, part.stop))
        return text + ("" if part.step is None else f":{part.step}")
    if isinstance(part, np.ndarray) and part.ndim > 0:
        if part.size > TINY:
            return f"⟨{shape_text(part.shape)} {'mask' if part.dtype == bool else 'indices'}⟩"
        return "[" + ", ".join(map(str, part.tolist())) + "]"
    return str(part.item() if isinstance(part, np.generic) else part)


def local_formula(node: Node, position: int, names: dict[Node, str], upstream: str = "g") -> str:
    """The local derivative d node / d input ``position`` from the primitive table, e.g. ``1 - tanh(z)^2``;
    for a formula that is the whole branch term (see `gives_whole_term`), ``upstream`` is written for ``g``."""
    return fill(formula_template(node, position), {**operand_names(node, position, names), "g": upstream})


def gives_whole_term(node: Node, position: int) -> bool:
    """Whether the table's formula for this input is the whole branch term, in the upstream gradient ``g``
    (matmul's ``a^T @ g``), rather than a local derivative that multiplies it."""
    return _VARIABLE_G.search(formula_template(node, position)) is not None


def formula_template(node: Node, position: int) -> str:
    op = node.op
    return op.formulas[0 if op.variadic else position]


def local_derivative(node: Node, position: int) -> float | None:
    """The local derivative's value for a scalar node (None for arrays, where it is a Jacobian).

    Every rule is linear in the upstream gradient, so running it with an upstream gradient of 1 gives
    d node / d input.
    """
    if isinstance(node.data, np.ndarray):
        return None
    inputs = [parent.data for parent in node.parents]
    try:
        return float(node.op.term(position, 1.0, node.data, inputs, node.params))
    except (ArithmeticError, ValueError):
        return None


def local_value(node: Node, position: int) -> Any:
    """`local_derivative`, and for an elementwise array op its elementwise values (the Jacobian's diagonal).

    The ops with a scalar forward are the elementwise ones; on arrays their rule, given an upstream gradient
    of ones, returns d out / d input element by element, in the output's shape (before any unbroadcasting).
    Other array ops (matmul, sum, indexing) have no such short form: None.
    """
    if not isinstance(node.data, np.ndarray):
        return local_derivative(node, position)
    if node.op.scalar is None:
        return None
    inputs = [parent.data for parent in node.parents]
    with np.errstate(all="ignore"):
        return np.asarray(node.op.term(position, np.ones_like(node.data), node.data, inputs, node.params))


def is_prose(formula: str) -> bool:
    """Whether a formula text says in words what it does (``1 at the picked elements``) rather than compute."""
    return _PROSE.search(formula) is not None


def is_number(text: str) -> bool:
    """Whether a text reads as a plain number (a formula such as ``1`` or ``-2``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- LaTeX --------------------------------------------------------------------------------------------------

_LATEX_FUNCTIONS = {"tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma"}
# characters that are not themselves in math mode, as math-mode commands
_LATEX_SPECIALS = {"_": r"\_", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&", "{": r"\{", "}": r"\}",
                   "\\": r"\backslash ", "^": r"\hat{}", "~": r"\sim ", "|": r"\vert ", "<": "<", ">": ">",
                   "·": r"\cdot ", "×": r"\times ", "…": r"\ldots ", "⟨": r"\langle ", "⟩": r"\rangle ",
                   "∂": r"\partial ", "Σ": r"\Sigma ", "→": r"\to ", "−": "-"}
_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_TEXT_RUN = re.compile(r"[A-Za-z0-9 .,;:!?()\[\]/'\"=+*@-]+|.", re.DOTALL)  # what \text{} shows as it is
_INDEXED = re.compile(r"(.+?)((?:\[[A-Za-z0-9,=+\-. :]*\])+)")  # a name with indices: x[0,1], c[t=2][0]
_PROSE = re.compile(r"[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,})*(?![A-Za-z(])")  # words, not function names


def latex_text(text: str) -> str:
    """Any text, safe in math mode: plain runs in ``\\text{}``, other characters as math commands."""
    return "".join(rf"\text{{{run}}}" if len(run) > 1 or run.isascii() and run not in _LATEX_SPECIALS
                   else _latex_char(run) for run in _TEXT_RUN.findall(text))


def _latex_char(char: str) -> str:
    if char in _LATEX_SPECIALS:
        return _LATEX_SPECIALS[char]
    name = unicodedata.name(char, "")
    if name.startswith("GREEK SMALL LETTER ") and name.count(" ") == 3:
        letter = name.rsplit(" ", 1)[1].lower()
        return rf"\{letter} " if letter != "omicron" else "o"
    if name.startswith("GREEK CAPITAL LETTER ") and name.rsplit(" ", 1)[1].title() in _GREEK_CAPITALS:
        return rf"\{name.rsplit(' ', 1)[1].title()} "
    return rf"\text{{{char}}}"  # left to the renderer: MathJax shows it, a unicode LaTeX engine too


def latex_number(text: str) -> str:
    """A number written by `format_number`, as LaTeX: ``1.5e-7`` -> ``1.5 \\times 10^{-7}``."""
    if text in ("inf", "-inf"):
        return text.replace("inf", r"\infty")
    if text == "nan":
        return r"\mathrm{NaN}"
    mantissa, e, exponent = text.partition("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}" if e else text


def latex_shape(shape: tuple[int, ...]) -> str:
    return r" \times ".join(map(str, shape))


def _latex_word(word: str) -> str:
    if len(word) == 1 and word.isascii() and word.isalnum() or word.isdigit():
        return word
    if word.isalpha() and word.isascii():
        return rf"\mathrm{{{word}}}"
    return latex_text(word)


def latex_name(name: str) -> str:
    """``h`` -> ``h``, ``h_2`` and ``v12`` -> subscripts, ``loss`` -> ``\\mathrm{loss}``, ``W_io[0,1]`` ->
    ``W_{\\mathrm{io}}[0,1]``, a number as is; anything else as text that is safe in math mode."""
    bare = name[1:-1] if name.startswith("(") and name.endswith(")") else name
    if is_number(bare):
        number = latex_number(bare)
        return f"({number})" if bare.startswith("-") else number
    if indexed := _INDEXED.fullmatch(name):  # W_io[0,1] -> W_{io}[0,1]: an index reads as it is in math
        return latex_name(indexed[1]) + indexed[2]
    if " " in name.strip():  # several words, each a name: "W_ih x + b"
        return r"\ ".join(latex_name(word) for word in name.split())
    base, _, sub = name.partition("_")
    if not sub and (match := re.fullmatch(r"([A-Za-z]+?)(\d+)", name)):
        base, sub = match.groups()
    if not base or name.endswith("_"):
        return latex_text(name)
    return _latex_word(base) + (f"_{{{latex_name(sub)}}}" if sub else "")


def latex_formula(template: str, operands: dict[str, str]) -> str:
    """A local-derivative formula as LaTeX: ``1 - tanh(x)^2`` -> ``1 - \\tanh(h)^2``."""
    return latex_template(template, {variable: latex_name(name) for variable, name in operands.items()})


def latex_expression(node: Node, names: dict[Node, str]) -> str:
    """How a node was computed, as LaTeX: ``tanh({x})`` -> ``\\tanh(z)``, ``{a} @ {b}`` -> ``x W``."""
    named = _operands(node, [latex_name(names[parent]) for parent in node.parents])
    return latex_template(re.sub(r"\{(x|a|b)\}", r"\1", symbol(node).replace("{{", "{").replace("}}", "}")), named)


def _latex_function(match: re.Match) -> str:
    return _LATEX_FUNCTIONS.get(match[1], rf"\operatorname{{{match[1]}}}")


def _latex_prose(match: re.Match) -> str:
    # words such as "if", "else", "at the maximum" are text, spaced from the symbols around them
    text, before, after = match[0], match.string[match.start() - 1:match.start()], match.string[match.end():][:1]
    return r"\text{" + (" " if before not in "([" else "") + text + (" " if after not in ")]" else "") + "}"


def latex_template(template: str, operands: dict[str, str]) -> str:
    # operands go in last, through numbered slots, so that no rewriting below touches their LaTeX
    slots: list[str] = []

    def hold(match: re.Match) -> str:
        slots.append(operands.get(match.group(1), match.group(1)))
        return f"\0{len(slots) - 1}\0"

    text = _VARIABLE.sub(hold, template)
    text = re.sub(r"sqrt\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"\^\(([^()]*)\)", r"^{\1}", text)
    text = re.sub(r"\^(\0\d+\0)", r"^{\1}", text)
    text = re.sub(r"(?<![\\A-Za-z])" + _PROSE.pattern, _latex_prose, text)
    text = re.sub(r"\b([A-Za-z]{2,})(?=\()", _latex_function, text)
    text = re.sub(r" *\* *", r" \\cdot ", text).replace(" @ ", r" \, ")
    return re.sub("\0(\\d+)\0", lambda m: slots[int(m[1])], text)
