"""`Value`: a scalar graph node with micrograd's surface, built on the primitive table and the shared core."""

from __future__ import annotations

import numbers
from typing import Any

from autograd import core
from autograd.core import Node, mode
from autograd.primitives import (
    ABS,
    ADD,
    DIV,
    EXP,
    LOG,
    MUL,
    NEG,
    POW,
    RELU,
    SIGMOID,
    SQRT,
    SUB,
    TANH,
    Primitive,
)

_NO_PARAMS: dict[str, Any] = {}


def _as_float(data: Any) -> float:
    # bool and int are numbers here (micrograd accepts them); complex and strings are not
    if type(data) is int or isinstance(data, numbers.Real):
        return float(data)
    raise TypeError(f"Value needs a real number, got {type(data).__name__}: {data!r:.60}")


class Value(Node):
    """A scalar that remembers how it was computed.

    >>> a = Value(2.0, label="a"); b = a * a + 1; b.backward(); a.grad
    4.0
    """

    __slots__ = ("data", "grad", "op", "_a", "_b", "label", "stage")
    # two parent slots instead of a tuple: a scalar op has at most two inputs, and this keeps a node small
    requires_grad = True
    params = _NO_PARAMS

    def __init__(self, data: Any, label: str | None = None) -> None:
        self.data = data if type(data) is float else _as_float(data)
        self.grad = 0.0
        self.op: Primitive | None = None
        self._a = self._b = None
        self.label = label
        self.stage = mode.stage

    @property
    def parents(self) -> tuple[Value, ...]:
        a, b = self._a, self._b
        return () if a is None else (a,) if b is None else (a, b)

    # --- core hooks ---
    @classmethod
    def constant(cls, raw: Any) -> Value:
        return Constant(raw)

    def seed(self, grad: Any) -> float:
        return 1.0 if grad is None else _as_float(grad)

    def gradient(self, adjoint: Any) -> float:
        return float(adjoint)

    def zero_grad_value(self) -> float:
        return 0.0

    # --- gradients ---
    def backward(self, grad: float = 1.0) -> None:
        """Add dself/dnode to ``.grad`` of every node this one depends on; calls accumulate, as in PyTorch."""
        core.needs_gradient(self, "backward()")
        for node, g in core.backpropagate(self, grad).adjoints.items():
            node.grad += g

    def zero_grad(self) -> None:
        """Set ``.grad`` to 0 on this node and every node it depends on."""
        core.zero_grad(self)

    # --- arithmetic: each operator is one row of the primitive table ---
    def __add__(self, other: Any) -> Value:
        return _apply(ADD, self, _lift(other))

    def __radd__(self, other: Any) -> Value:
        return _apply(ADD, _lift(other), self)

    def __sub__(self, other: Any) -> Value:
        return _apply(SUB, self, _lift(other))

    def __rsub__(self, other: Any) -> Value:
        return _apply(SUB, _lift(other), self)

    def __mul__(self, other: Any) -> Value:
        return _apply(MUL, self, _lift(other))

    def __rmul__(self, other: Any) -> Value:
        return _apply(MUL, _lift(other), self)

    def __truediv__(self, other: Any) -> Value:
        return _apply(DIV, self, _lift(other))

    def __rtruediv__(self, other: Any) -> Value:
        return _apply(DIV, _lift(other), self)

    def __pow__(self, other: Any) -> Value:
        return _apply(POW, self, _lift(other))

    def __rpow__(self, other: Any) -> Value:
        return _apply(POW, _lift(other), self)

    def __neg__(self) -> Value:
        return _apply(NEG, self)

    def __abs__(self) -> Value:
        return _apply(ABS, self)

    def abs(self) -> Value:
        return _apply(ABS, self)

    def relu(self) -> Value:
        return _apply(RELU, self)

    def tanh(self) -> Value:
        return _apply(TANH, self)

    def sigmoid(self) -> Value:
        return _apply(SIGMOID, self)

    def exp(self) -> Value:
        return _apply(EXP, self)

    def log(self) -> Value:
        return _apply(LOG, self)

    def sqrt(self) -> Value:
        return _apply(SQRT, self)

    # Comparisons read the numbers and give a plain bool (for masks and control flow); == stays identity,
    # so Values can be dictionary keys and graph sets stay correct.
    def __lt__(self, other: Any) -> bool:
        return self.data < _number(other)

    def __le__(self, other: Any) -> bool:
        return self.data <= _number(other)

    def __gt__(self, other: Any) -> bool:
        return self.data > _number(other)

    def __ge__(self, other: Any) -> bool:
        return self.data >= _number(other)

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        parts = [f"data={self.data:.6g}", f"grad={self.grad:.6g}" if isinstance(self.grad, float)
                 else f"grad={self.grad!r}"]
        if self.op is not None:
            parts.append(f"op={self.op.name!r}")
        if self.label:
            parts.append(f"label={self.label!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class Constant(Value):
    """A plain number that entered the graph as an operand (``x * 2``): a leaf that needs no gradient."""

    __slots__ = ()
    requires_grad = False


def _lift(x: Any) -> Value:
    return x if isinstance(x, Value) else Constant(x)


def _number(x: Any) -> float:
    return x.data if isinstance(x, Value) else x


_new = object.__new__


def _apply(op: Primitive, a: Value, b: Value | None = None) -> Value:
    """Run one primitive forward on floats and record the resulting node."""
    try:
        data = op.scalar(a.data) if b is None else op.scalar(a.data, b.data)
    except (ValueError, ZeroDivisionError):
        raise _domain_error(op, a, b) from None
    node = _new(Value)
    node.data = data
    node.grad = 0.0
    node.label = None
    node.stage = mode.stage
    if mode.grad_enabled:
        node.op, node._a, node._b = op, a, b
    else:
        node.op = node._a = node._b = None
    if mode.anomaly:
        core.check_value(node, op, (a,) if b is None else (a, b))
    return node


def _domain_error(op: Primitive, a: Value, b: Value | None) -> ValueError:
    operands = (a,) if b is None else (a, b)
    where = [x.where() for x in operands if x.label or x.stage]
    shown = op.symbol.format(x=a.data, a=a.data, b=b.data if b is not None else None)
    return ValueError(f"{op.name}: {op.domain}; got {shown}" + (f" ({', '.join(where)})" if where else ""))
