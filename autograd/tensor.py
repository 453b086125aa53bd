"""`Tensor`: a numpy array on the same graph core and the same primitive table as `Value`."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from autograd import core
from autograd.core import Node, mode, raw
from autograd.primitives import (
    ABS,
    ADD,
    BROADCAST_TO,
    CLIP,
    CONCATENATE,
    DIV,
    EXP,
    GETITEM,
    LOG,
    MATMUL,
    MAX,
    MIN,
    MUL,
    NEG,
    POW,
    RELU,
    RESHAPE,
    SCATTER,
    SIGMOID,
    SQRT,
    SUB,
    SUM,
    TANH,
    TRANSPOSE,
    WHERE,
    Primitive,
    sum_to_shape,
)

_NO_PARAMS: dict[str, Any] = {}
_FLOATS = (np.float16, np.float32, np.float64)


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """A float array from array-like input: integers and bools become float64, float32 stays float32."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, str) or (isinstance(data, numbers.Number) and not isinstance(data, numbers.Real)):
        raise TypeError(f"Tensor needs real numbers, got {type(data).__name__}: {data!r:.60}")
    array = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"Tensor needs real numbers, got an array of dtype {array.dtype} "
                        f"(from {type(data).__name__})")
    if dtype is None and array.dtype.type not in _FLOATS:
        array = array.astype(np.float64)
    elif dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"Tensor dtype must be a float type, got {np.dtype(dtype)}")
    return array


class Tensor(Node):
    """An n-dimensional array that remembers how it was computed.

    ``requires_grad=True`` marks a leaf whose gradient you want; results of ops on such tensors record their
    inputs. After ``loss.backward()`` the leaves hold ``.grad`` (an ndarray of their shape).
    """

    __slots__ = ("data", "grad", "op", "parents", "params", "label", "stage", "requires_grad")
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray + Tensor is a Tensor
    unbroadcast = staticmethod(sum_to_shape)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str | None = None
                 ) -> None:
        array = as_array(data, dtype)
        if requires_grad and isinstance(raw(data), np.ndarray) and np.may_share_memory(array, raw(data)):
            array = array.copy()  # a parameter is its own: optimizers change .data in place, not the caller's array
        self.data = array
        self.grad: np.ndarray | None = None
        self.op: Primitive | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.params = _NO_PARAMS
        self.label = label
        self.stage = mode.stage
        self.requires_grad = bool(requires_grad)

    # --- core hooks ---
    @classmethod
    def constant(cls, raw: Any) -> Tensor:
        return cls(raw)

    def seed(self, grad: Any) -> np.ndarray:
        if grad is None:
            return np.ones_like(self.data)
        grad = as_array(grad, self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"the gradient given for a tensor of shape {self.shape} has shape {grad.shape}")
        return grad

    def gradient(self, adjoint: Any) -> np.ndarray:
        # a copy: an adjoint may be the seed, a broadcast view, or shared with another input
        return np.array(np.broadcast_to(adjoint, self.shape), dtype=self.dtype)

    def zero_grad_value(self) -> None:
        return None

    # --- array facts ---
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def detach(self) -> Tensor:
        """The same numbers as a new leaf that needs no gradient (shares memory)."""
        return Tensor(self.data)

    # --- gradients ---
    def backward(self, grad: Any = None) -> None:
        """Add dself/dleaf to ``.grad`` of every leaf that requires a gradient; calls accumulate."""
        core.needs_gradient(self, "backward()")
        if grad is None and self.size != 1:
            raise ValueError(f"backward() on a tensor of shape {self.shape} needs grad= of that shape "
                             "(dL/d this tensor); reduce it to a scalar first, e.g. with .sum()")
        for node, g in core.backpropagate(self, grad, keep_inner=False).adjoints.items():
            if node.op is None and node.requires_grad:
                if node.grad is None:
                    node.grad = node.gradient(g)
                else:
                    node.grad += g  # in place: .grad is the leaf's own array, and keeps its dtype

    def zero_grad(self) -> None:
        """Forget the gradients of this tensor and of every tensor it depends on."""
        core.zero_grad(self)

    # --- arithmetic, with numpy broadcasting ---
    def __add__(self, other: Any) -> Tensor:
        return _apply(ADD, self, _lift(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return _apply(ADD, _lift(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return _apply(SUB, self, _lift(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return _apply(SUB, _lift(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return _apply(MUL, self, _lift(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return _apply(MUL, _lift(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return _apply(DIV, self, _lift(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return _apply(DIV, _lift(other, self), self)

    def __pow__(self, other: Any) -> Tensor:
        return _apply(POW, self, _lift(other, self))

    def __rpow__(self, other: Any) -> Tensor:
        return _apply(POW, _lift(other, self), self)

    def __matmul__(self, other: Any) -> Tensor:
        return _apply(MATMUL, self, _lift(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _apply(MATMUL, _lift(other, self), self)

    def __neg__(self) -> Tensor:
        return _apply(NEG, self)

    def __abs__(self) -> Tensor:
        return _apply(ABS, self)

    # comparisons give plain boolean arrays (masks, not graph nodes); == keeps identity semantics
    def __lt__(self, other: Any) -> np.ndarray:
        return self.data < raw(other)

    def __le__(self, other: Any) -> np.ndarray:
        return self.data <= raw(other)

    def __gt__(self, other: Any) -> np.ndarray:
        return self.data > raw(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return self.data >= raw(other)

    # --- elementwise functions ---
    def exp(self) -> Tensor:
        return _apply(EXP, self)

    def log(self) -> Tensor:
        return _apply(LOG, self)

    def sqrt(self) -> Tensor:
        return _apply(SQRT, self)

    def tanh(self) -> Tensor:
        return _apply(TANH, self)

    def sigmoid(self) -> Tensor:
        return _apply(SIGMOID, self)

    def relu(self) -> Tensor:
        return _apply(RELU, self)

    def abs(self) -> Tensor:
        return _apply(ABS, self)

    def clip(self, low: float | None = None, high: float | None = None) -> Tensor:
        if low is None and high is None:
            raise ValueError("clip needs at least one of low and high")
        return _apply(CLIP, self, low=-np.inf if low is None else low, high=np.inf if high is None else high)

    # --- reductions ---
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(SUM, self, axis=_axis(axis, self, "sum"), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axis = _axis(axis, self, "mean")
        count = self.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(axis, keepdims) / count

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(MAX, self, axis=_axis(axis, self, "max"), keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(MIN, self, axis=_axis(axis, self, "min"), keepdims=keepdims)

    # --- shape ---
    def reshape(self, *shape: Any) -> Tensor:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _apply(RESHAPE, self, shape=shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]  # transpose((1, 0)) and transpose(None), as numpy accepts
        return _apply(TRANSPOSE, self, axes=tuple(axes) if axes else None)

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.transpose(axes)

    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        return _apply(BROADCAST_TO, self, shape=tuple(shape))

    def __getitem__(self, index: Any) -> Tensor:
        return _apply(GETITEM, self, index=_index(index))

    def scatter(self, index: Any, shape: tuple[int, ...]) -> Tensor:
        """A zero tensor of ``shape`` with this one added at ``index`` (the adjoint of indexing)."""
        return _apply(SCATTER, self, index=_index(index), shape=tuple(shape))

    # --- composites, defined once in functions.py ---
    def softmax(self, axis: int = -1) -> Tensor:
        from autograd.functions import softmax
        return softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        from autograd.functions import log_softmax
        return log_softmax(self, axis)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, separator=", ", prefix="Tensor(")
        extras = "".join([f", op={self.op.name!r}" if self.op else "",
                          ", requires_grad=True" if self.requires_grad and self.op is None else "",
                          f", label={self.label!r}" if self.label else "",
                          f", dtype={self.dtype}" if self.dtype != np.float64 else ""])
        return f"Tensor({body}{extras})"



def _lift(x: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, Node):
        raise TypeError(f"cannot combine a Tensor with a {type(x).__name__}; use one kind of node per graph")
    if like is not None and isinstance(x, (int, float)):
        return Tensor(x, dtype=like.dtype)  # a plain number takes the tensor's float type, as in numpy
    return Tensor(x)


def _axis(axis: Any, x: Tensor, op: str) -> Any:
    if axis is None:
        return None
    single = isinstance(axis, (int, np.integer))  # the common case, spared numpy's conversions
    axes = (int(axis),) if single else tuple(int(a) for a in np.atleast_1d(axis))
    for a in axes:
        if not -x.ndim <= a < max(x.ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {x.shape}")
    return axes[0] if single or np.ndim(axis) == 0 else axes


_PLAIN_INDEX = (int, slice, type(None), type(Ellipsis))


def _index(index: Any) -> Any:
    """The index numpy should see: ints and slices as given (the common case, checked first), tensors and
    lists as integer arrays."""
    if isinstance(index, _PLAIN_INDEX):
        return index
    if isinstance(index, tuple):
        for part in index:
            if not isinstance(part, _PLAIN_INDEX):
                return tuple(part if isinstance(part, _PLAIN_INDEX) else _array_index(part) for part in index)
        return index
    return _array_index(index)


def _array_index(index: Any) -> Any:
    if isinstance(index, Tensor):  # tensors hold floats: accept whole numbers as integer indices
        index = index.data
        if not np.array_equal(index, np.round(index)):
            raise IndexError(f"a tensor used as an index must hold whole numbers, got {index!r:.60}")
        index = index.astype(np.intp)
    if isinstance(index, (list, np.ndarray)):
        index = np.asarray(index)
        if index.dtype.kind == "f":
            raise IndexError(f"tensor indices must be integers or booleans, got dtype {index.dtype}")
    return index


_new = object.__new__


def _apply(op: Primitive, a: Tensor, b: Tensor | None = None, **params: Any) -> Tensor:
    """Run a unary or binary primitive forward on arrays and record the resulting node.

    The inputs are two named arguments rather than ``*inputs``: on small arrays, packing and unpacking
    argument lists would cost as much as the numpy call itself.
    """
    try:
        data = op.array(a.data, **params) if b is None else op.array(a.data, b.data, **params)
    except ValueError as error:
        raise _shape_error(op, (a,) if b is None else (a, b), error) from None
    if b is None:
        return _record(op, data, (a,), params, a.requires_grad)
    return _record(op, data, (a, b), params, a.requires_grad or b.requires_grad)


def _record(op: Primitive, data: Any, inputs: tuple[Tensor, ...], params: dict[str, Any], needs_grad: bool
            ) -> Tensor:
    """The node holding ``data``: it remembers ``op`` and its inputs when one of them needs a gradient and
    recording is on; otherwise it is a plain leaf."""
    node = _new(Tensor)
    node.data = data if type(data) is np.ndarray else np.asarray(data)
    node.grad = node.label = None
    node.stage = mode.stage
    node.params = params or _NO_PARAMS
    if needs_grad and mode.grad_enabled:
        node.op, node.parents, node.requires_grad = op, inputs, True
    else:
        node.op, node.parents, node.requires_grad = None, (), False
    if mode.anomaly:
        core.check_value(node, op, inputs)
    return node


def _shape_error(op: Primitive, inputs: Sequence[Tensor], error: ValueError) -> ValueError:
    shapes = " and ".join(str(x.shape) for x in inputs)
    return ValueError(f"{op.name}: shapes {shapes} do not fit together ({error})")


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    inputs = tuple([_lift(t) for t in tensors])
    if not inputs:
        raise ValueError("concatenate needs at least one tensor")
    try:
        data = CONCATENATE.array(*[x.data for x in inputs], axis=axis)
    except ValueError as error:
        raise _shape_error(CONCATENATE, inputs, error) from None
    return _record(CONCATENATE, data, inputs, {"axis": axis}, any([x.requires_grad for x in inputs]))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise choice: ``a`` where ``condition`` holds, else ``b`` (the condition is a constant mask)."""
    condition = np.asarray(raw(condition), dtype=bool)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None  # a number takes its dtype
    return _apply(WHERE, _lift(a, like), _lift(b, like), condition=condition)
