"""`Value`: a scalar graph node with micrograd's surface, built on the primitive table and the shared core."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from autograd import core
from autograd.core import Node, current_mode, mixing_error
from autograd.primitives import (
    ABS,
    ADD,
    DIV,
    EXP,
    LOG,
    MAXIMUM,
    MINIMUM,
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
    """A real number as a float: bool and int too (micrograd accepts them), and 0-d numpy arrays; not complex
    numbers, strings, or arrays of several numbers."""
    if type(data) is int or isinstance(data, numbers.Real):
        try:
            return float(data)
        except OverflowError:
            raise OverflowError(f"Value: the integer {'-' if data < 0 else ''}1e{math.log10(abs(data)):.0f} is too "
                                "large for a float (at most about 1.8e308)") from None
    if isinstance(data, np.ndarray) and data.ndim:
        raise TypeError(f"a Value holds one number, got an array of shape {data.shape}; use a Tensor for arrays "
                        "of numbers (and combine the Values of an object array one by one)")
    if isinstance(data, (np.ndarray, np.bool_)) and data.dtype.kind in "fiub":
        return float(data)
    if isinstance(data, Node) and not isinstance(data, Value):
        raise mixing_error("Value", data, Value)
    raise TypeError(f"Value needs a real number, got {type(data).__name__}: {data!r:.60}")


class Value(Node):
    """A scalar that remembers how it was computed.

    >>> a = Value(2.0, label="a"); b = a * a + 1; b.backward(); a.grad
    4.0
    """

    __slots__ = ("data", "grad", "op", "_a", "_b", "_label", "stage")
    # two parent slots instead of a tuple: a scalar op has at most two inputs, and this keeps a node small
    requires_grad = True
    params = _NO_PARAMS
    __array_ufunc__ = None  # numpy defers to our reflected operators: no object arrays of Values

    def __init__(self, data: Any, label: str | None = None) -> None:
        self.data = data if type(data) is float else _as_float(data)
        self.grad = 0.0
        self.op: Primitive | None = None
        self._a = self._b = None
        self.label = label
        self.stage = current_mode().stage

    @property
    def parents(self) -> tuple[Value, ...]:
        a, b = self._a, self._b
        return () if a is None else (a,) if b is None else (a, b)

    # --- core hooks ---
    @classmethod
    def constant(cls, raw: Any) -> Value:
        return Constant(raw)

    def seed(self, grad: Any) -> float:
        if grad is None:
            return 1.0
        if isinstance(grad, Node) and not isinstance(grad, Value):
            raise mixing_error("the upstream gradient", self, grad)
        try:
            return _as_float(core.raw(grad))
        except TypeError as error:
            raise TypeError(f"the gradient given for a Value must be a number: {error}") from None

    def gradient(self, adjoint: Any) -> float:
        return float(adjoint)

    def zero_grad_value(self) -> float:
        return 0.0

    def add_to_grad(self, g: Any, fresh: bool = False) -> None:
        self.grad += g

    # --- gradients ---
    def backward(self, grad: float = 1.0) -> None:
        """Add dself/dnode to ``.grad`` of every node this one depends on; calls accumulate, as in PyTorch."""
        core.backward(self, grad, every_node=True)

    def zero_grad(self) -> None:
        """Set ``.grad`` to 0 on this node and every node it depends on."""
        core.zero_grad(self)

    # --- arithmetic: each operator is one row of the primitive table ---
    # (a Value operand is tested for here rather than in _lift: these lines are every scalar op's hot path)
    def __add__(self, other: Any) -> Value:
        return _apply(ADD, self, other if isinstance(other, Value) else _lift(other, ADD))

    def __radd__(self, other: Any) -> Value:
        return _apply(ADD, other if isinstance(other, Value) else _lift(other, ADD), self)

    def __sub__(self, other: Any) -> Value:
        return _apply(SUB, self, other if isinstance(other, Value) else _lift(other, SUB))

    def __rsub__(self, other: Any) -> Value:
        return _apply(SUB, other if isinstance(other, Value) else _lift(other, SUB), self)

    def __mul__(self, other: Any) -> Value:
        return _apply(MUL, self, other if isinstance(other, Value) else _lift(other, MUL))

    def __rmul__(self, other: Any) -> Value:
        return _apply(MUL, other if isinstance(other, Value) else _lift(other, MUL), self)

    def __truediv__(self, other: Any) -> Value:
        return _apply(DIV, self, other if isinstance(other, Value) else _lift(other, DIV))

    def __rtruediv__(self, other: Any) -> Value:
        return _apply(DIV, other if isinstance(other, Value) else _lift(other, DIV), self)

    def __pow__(self, other: Any) -> Value:
        return _apply(POW, self, other if isinstance(other, Value) else _lift(other, POW))

    def __rpow__(self, other: Any) -> Value:
        return _apply(POW, other if isinstance(other, Value) else _lift(other, POW), self)

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

    def max(self, other: Any) -> Value:
        """The larger of the two, as a node (Python's ``max(a, b)`` returns one of them instead): each gets
        the gradient where it is larger, half of it where they tie (PyTorch's choice)."""
        return _apply(MAXIMUM, self, other if isinstance(other, Value) else _lift(other, MAXIMUM))

    def min(self, other: Any) -> Value:
        """The smaller of the two, as a node; ties share the gradient as in `max`."""
        return _apply(MINIMUM, self, other if isinstance(other, Value) else _lift(other, MINIMUM))

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
    """A plain number that entered the graph as an operand (``x * 2``), or a result computed under no_grad: a
    leaf that needs no gradient."""

    __slots__ = ()
    requires_grad = False


def _lift(x: Any, op: Primitive) -> Value:
    """An operand of ``op`` that is not a Value, as one: a number (or 0-d array) becomes a Constant."""
    if isinstance(x, Node):
        raise mixing_error(op.name, x, Value)
    try:
        return Constant(x)
    except TypeError as error:
        raise TypeError(f"{op.name}: {error}") from None


def _number(x: Any) -> float:
    return x.data if isinstance(x, Value) else x


_new = object.__new__


def _apply(op: Primitive, a: Value, b: Value | None = None) -> Value:
    """Run one primitive forward on floats and record the resulting node (a Constant under no_grad: a leaf
    that needs no gradient, as a Tensor computed there is). Values outside an op's domain come out as IEEE
    arithmetic gives them (nan, inf), as for Tensors; `detect_anomaly` stops at the first."""
    data = op.scalar(a.data) if b is None else op.scalar(a.data, b.data)
    mode = current_mode()
    if mode.grad_enabled:
        node = _new(Value)
        node.op, node._a, node._b = op, a, b
    else:
        node = _new(Constant)
        node.op = node._a = node._b = None
    node.data = data
    node.grad = 0.0
    node._label = None
    node.stage = mode.stage
    if mode.anomaly:
        core.check_value(node, op, (a,) if b is None else (a, b))
    return node
