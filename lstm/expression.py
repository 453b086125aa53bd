"""The little language of ``explain``'s expressions: numbers, names, + - * / ** and a few functions.

    root = expression_value("tanh(a*b + c)", assignments(["a=2", "b=-3", "c=1"]))   # a Value named L

The text is parsed with Python's parser and evaluated on our own stack, never executed: anything but the
language above is refused, and a sum of thousands of terms (nested thousands deep) is no deeper for us than one
term. Every mistake is an `ExpressionError` whose message quotes the part of the text it is about.
"""

from __future__ import annotations

import ast
import operator
import unicodedata
from collections.abc import Sequence
from typing import Any

from autograd import Value, detect_anomaly

__all__ = ["FUNCTIONS", "PAIR_FUNCTIONS", "ExpressionError", "assignments", "expression_value", "quoted"]

OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
             ast.Pow: operator.pow}
FUNCTIONS = ("tanh", "sigmoid", "exp", "log", "relu", "sqrt", "abs")
PAIR_FUNCTIONS = ("max", "min")  # of two arguments: Value.max(other), Value.min(other)


class ExpressionError(ValueError):
    """An expression or a NAME=VALUE that cannot be read or evaluated."""


def quoted(text: str, limit: int = 60) -> str:
    """``text`` in quotes for an error message, shortened in the middle when long."""
    return repr(text if len(text) <= limit else f"{text[:limit // 2]} ... {text[-limit // 2:]}")


def assignments(pairs: Sequence[str]) -> dict[str, float]:
    """``["a=2", "b=-3"]`` as ``{"a": 2.0, "b": -3.0}``; ExpressionError for anything else, or a name twice.

    Names are read as Python reads identifiers, normalised to NFKC (``𝐚`` and ``ａ`` are ``a``): as the names in
    the expression are, so that ``'𝐚*b' 𝐚=1 b=2`` means what it says, and ``𝐚=1 a=2`` is one name given twice.
    """
    values: dict[str, float] = {}
    given: dict[str, str] = {}  # each name as it was typed
    for pair in pairs:
        name, equals, number = (part.strip() for part in pair.partition("="))
        try:
            value = float(number)
        except ValueError:
            equals = ""
        if not equals or not name.isidentifier():
            raise ExpressionError(f"expected NAME=VALUE with a number, got {quoted(pair)}")
        typed, name = name, unicodedata.normalize("NFKC", name)
        if name in values:
            if given[name] == typed:
                raise ExpressionError(f"{name} is given twice")
            raise ExpressionError(f"{given[name]} and {typed} are one name to Python, {name} (it reads names "
                                  "normalised to NFKC): give it once")
        values[name], given[name] = value, typed
    return values


def expression_value(text: str, values: dict[str, float]) -> Value:
    """Evaluate ``text`` on Values named after its variables (each given in ``values``); the root is named L."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        hint = " (the expression comes first, then NAME=VALUE)" if "=" in text else ""
        raise ExpressionError(f"cannot read the expression {quoted(text)}: {error.msg}{hint}") from None
    except RecursionError:  # Python's parser stops at a depth of some thousands (a sum of 5,000 terms)
        raise ExpressionError(f"the expression {quoted(text)} is nested too deeply for Python's parser: use "
                              "fewer terms or parentheses") from None
    except ValueError as error:  # e.g. a NUL character
        raise ExpressionError(f"cannot read the expression {quoted(text)}: {error}") from None
    leaves = {name: Value(number, label=name) for name, number in values.items()}

    def operands(node: ast.AST) -> list[ast.AST]:
        """The parts ``node`` is computed from; ExpressionError for anything but the little language."""
        if isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and type(node.value) in (int, float)):
            return []
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return [node.operand]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords and (
                node.func.id in FUNCTIONS and len(node.args) == 1
                or node.func.id in PAIR_FUNCTIONS and len(node.args) == 2):
            return node.args
        part = ast.get_source_segment(text, node) or type(node).__name__
        raise ExpressionError(f"cannot explain {quoted(part)}: use numbers, names, + - * / ** and "
                              f"{', '.join(FUNCTIONS)}, {', '.join(f'{name}(a, b)' for name in PAIR_FUNCTIONS)}")

    def apply(node: ast.AST, arguments: list[Any]) -> Any:
        if isinstance(node, ast.Constant):
            return float(node.value)  # a float overflows where an int would grow without end: 9**9**9
        if isinstance(node, ast.Name):
            if node.id not in leaves:
                raise ExpressionError(f"{node.id!r} has no value: add {node.id}=NUMBER after the expression")
            return leaves[node.id]
        if isinstance(node, ast.BinOp):
            return OPERATORS[type(node.op)](*arguments)
        if isinstance(node, ast.UnaryOp):
            return -arguments[0] if isinstance(node.op, ast.USub) else arguments[0]
        first, *others = arguments
        return getattr(first if isinstance(first, Value) else Value(first), node.func.id)(*others)

    def evaluate(tree: ast.AST) -> Any:
        """Children before parents, left to right, on a stack of our own: a sum of thousands of terms nests
        thousands deep, past Python's recursion limit."""
        results: list[Any] = []
        pending: list[tuple[ast.AST, bool]] = [(tree, False)]
        while pending:
            node, ready = pending.pop()
            parts = operands(node)
            if not ready:
                pending.append((node, True))
                pending.extend((part, False) for part in reversed(parts))
                continue
            first = len(results) - len(parts)
            arguments = results[first:]
            del results[first:]
            results.append(apply(node, arguments))
        return results[0]

    unused = sorted(set(values) - {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    if unused:
        raise ExpressionError(f"{', '.join(unused)} not in the expression {quoted(text)}")
    try:
        with detect_anomaly():  # the engine computes log(-1) as nan: here it is a mistake to report
            root = evaluate(tree)
    except ExpressionError:
        raise
    except (ValueError, ArithmeticError) as error:
        raise ExpressionError(f"cannot evaluate {quoted(text)}: {error}") from None
    if not isinstance(root, Value) or not leaves:
        raise ExpressionError(f"the expression {quoted(text)} has no variables to differentiate by, e.g. 'a*b' "
                              "a=2 b=3")
    root.label = root.label or "L"
    return root
