"""`Tensor`: a numpy array on the same graph core and the same primitive table as `Value`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autograd import core
from autograd.core import Node, current_mode, mixing_error, raw
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
    """An array of real numbers from array-like input: integers become float64, float32 stays float32, and
    booleans stay booleans (a mask, to select or multiply with; it never needs a gradient)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, str) or (isinstance(data, numbers.Number) and not isinstance(data, numbers.Real)):
        raise TypeError(f"Tensor needs real numbers, got {type(data).__name__}: {data!r:.60}")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Tensor dtype must be a float type, got {dtype}")
        if type(data) is float:  # a number lifted into an op with a tensor (x * 2.0): real, checked by its type
            return np.asarray(data, dtype=dtype)
    # the numbers are read as they are, and checked, before any conversion to ``dtype``: numpy would turn complex
    # numbers into their real parts (with a warning) and strings into the numbers they spell
    try:
        array = np.asarray(data)
        kind = array.dtype.kind
        if kind == "O" and all(type(x) is int for x in array.flat):  # integers beyond int64
            array, kind = array.astype(np.float64), "f"
    except OverflowError:
        raise OverflowError("Tensor: an integer in the input is too large for a float (at most about "
                            "1.8e308)") from None
    if kind not in "fiub":
        raise TypeError(f"Tensor needs real numbers, got an array of dtype {array.dtype} "
                        f"(from {type(data).__name__})")
    if dtype is None:
        if kind in "iu" or kind == "f" and array.dtype.type not in _FLOATS:
            array = array.astype(np.float64)
    elif array.dtype != dtype:
        array = array.astype(dtype)
    return array


def _operator(op: Primitive, reflected: bool = False) -> Callable[[Tensor, Any], Tensor]:
    """The method for ``a <op> b`` (``reflected``: for ``b <op> a``, with the Tensor on the right): the whole
    forward step in one call, since on small arrays each Python call costs about as much as numpy's work."""
    array = op.array

    def method(self: Tensor, other: Any) -> Tensor:
        if not isinstance(other, Tensor):
            other = _lift(other, self, op)
        a, b = (other, self) if reflected else (self, other)
        try:
            data = array(a.data, b.data)
        except (ValueError, IndexError, TypeError) as error:
            raise _input_error(op, (a, b), error) from None
        return _record(op, data, (a, b), _NO_PARAMS, a.requires_grad or b.requires_grad)

    method.__qualname__ = f"Tensor.{op.name}"
    method.__doc__ = f"{op.symbol.format(a='a', b='b')}, with numpy broadcasting (the primitive {op.name!r})"
    return method


def _function(op: Primitive) -> Callable[[Tensor], Tensor]:
    """The method for an elementwise function of one tensor (``x.tanh()``), in one call as `_operator`."""
    array = op.array

    def method(self: Tensor) -> Tensor:
        try:
            data = array(self.data)
        except (ValueError, IndexError, TypeError) as error:
            raise _input_error(op, (self,), error) from None
        return _record(op, data, (self,), _NO_PARAMS, self.requires_grad)

    method.__qualname__ = f"Tensor.{op.name}"
    method.__doc__ = f"{op.symbol.format(x='x')}, elementwise (the primitive {op.name!r})"
    return method


class Tensor(Node):
    """An n-dimensional array that remembers how it was computed.

    ``requires_grad=True`` marks a leaf whose gradient you want; results of ops on such tensors record their
    inputs. After ``loss.backward()`` the leaves hold ``.grad`` (an ndarray of their shape). Integers become
    float64; booleans stay booleans, a mask to index or multiply with (float32 * mask stays float32).
    """

    __slots__ = ("data", "grad", "op", "parents", "params", "_label", "stage", "requires_grad")
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray + Tensor is a Tensor
    unbroadcast = staticmethod(sum_to_shape)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str | None = None
                 ) -> None:
        array = as_array(data, dtype)
        if requires_grad:
            if array.dtype.kind != "f":
                raise TypeError(f"a Tensor of dtype {array.dtype} cannot require a gradient: booleans are masks, "
                                "and only floats are differentiated")
            if isinstance(raw(data), np.ndarray) and np.may_share_memory(array, raw(data)):
                array = array.copy()  # a parameter is its own: optimizers change .data in place, not the caller's
        self.data = array
        self.grad: np.ndarray | None = None
        self.op: Primitive | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.params = _NO_PARAMS
        self._label = None if label is None else core.check_label(label)
        self.stage = current_mode().stage
        self.requires_grad = bool(requires_grad)

    # --- core hooks ---
    @classmethod
    def constant(cls, raw: Any) -> Tensor:
        return cls(raw)

    def seed(self, grad: Any) -> np.ndarray:
        if grad is None:
            return np.ones_like(self.data)
        if type(grad) is np.ndarray and grad.dtype == self.data.dtype and grad.shape == self.data.shape:
            return grad  # the common case, checked first
        if isinstance(grad, Node) and not isinstance(grad, Tensor):
            raise mixing_error("the upstream gradient", self, grad)
        try:
            grad = as_array(grad, self.dtype)
        except (TypeError, ValueError):
            raise TypeError(f"the gradient given for a tensor of shape {self.shape} must be real numbers of that "
                            f"shape, got {type(grad).__name__}: {grad!r:.60}") from None
        if grad.shape != self.shape:
            raise ValueError(f"the gradient given for a tensor of shape {self.shape} has shape {grad.shape}")
        return grad

    def gradient(self, adjoint: Any) -> np.ndarray:
        # a copy: an adjoint may be the seed, a broadcast view, or shared with another input
        dtype = self.data.dtype
        if type(adjoint) is np.ndarray and adjoint.shape == self.data.shape and adjoint.dtype == dtype:
            return adjoint.copy()  # the common case, checked first
        return np.array(np.broadcast_to(adjoint, self.data.shape), dtype=dtype if dtype.kind == "f" else np.float64)

    def zero_grad_value(self) -> None:
        return None

    def add_to_grad(self, g: Any, fresh: bool = False) -> None:
        if self.grad is None:
            self.grad = g if fresh and g.dtype == self.data.dtype else self.gradient(g)
        else:
            self.grad += g  # in place: .grad is the leaf's own array, and keeps its dtype

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

    def __bool__(self) -> bool:
        if self.size != 1:  # as numpy: a single element has a truth value, several do not
            raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous; use "
                             ".data.any() or .data.all()")
        return bool(self.data)

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
        core.backward(self, grad, every_node=False)

    def zero_grad(self) -> None:
        """Forget the gradients of this tensor and of every tensor it depends on."""
        core.zero_grad(self)

    # --- arithmetic, with numpy broadcasting: each operator is one row of the primitive table ---
    __add__, __radd__ = _operator(ADD), _operator(ADD, reflected=True)
    __sub__, __rsub__ = _operator(SUB), _operator(SUB, reflected=True)
    __mul__, __rmul__ = _operator(MUL), _operator(MUL, reflected=True)
    __truediv__, __rtruediv__ = _operator(DIV), _operator(DIV, reflected=True)
    __pow__, __rpow__ = _operator(POW), _operator(POW, reflected=True)
    __matmul__, __rmatmul__ = _operator(MATMUL), _operator(MATMUL, reflected=True)
    __neg__ = _function(NEG)
    __abs__ = _function(ABS)

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
    exp = _function(EXP)
    log = _function(LOG)
    sqrt = _function(SQRT)
    tanh = _function(TANH)
    sigmoid = _function(SIGMOID)
    relu = _function(RELU)
    abs = _function(ABS)

    def clip(self, low: float | None = None, high: float | None = None) -> Tensor:
        if low is None and high is None:
            raise ValueError("clip needs at least one of low and high")
        return _apply(CLIP, self, low=-np.inf if low is None else low, high=np.inf if high is None else high)

    # --- reductions ---
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(SUM, self, axis=reduction_axes(axis, self, "sum"), keepdims=bool(keepdims))

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axis = reduction_axes(axis, self, "mean")
        count = self.size if axis is None else math.prod(self.shape[a] for a in _as_tuple(axis))
        return self.sum(axis, keepdims) / count

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(MAX, self, axis=reduction_axes(axis, self, "max"), keepdims=bool(keepdims))

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _apply(MIN, self, axis=reduction_axes(axis, self, "min"), keepdims=bool(keepdims))

    # --- shape ---
    def reshape(self, *shape: Any) -> Tensor:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _apply(RESHAPE, self, shape=shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]  # transpose((1, 0)) and transpose(None), as numpy accepts
        return _apply(TRANSPOSE, self, axes=_permutation(axes, self) if axes else None)

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axes = list(range(self.ndim))
        a, b = (normal_axis(axis, self.ndim, "swapaxes", self) for axis in (axis1, axis2))
        axes[a], axes[b] = axes[b], axes[a]
        return _apply(TRANSPOSE, self, axes=tuple(axes))

    def broadcast_to(self, shape: tuple[int, ...]) -> Tensor:
        return _apply(BROADCAST_TO, self, shape=tuple(shape))

    def __getitem__(self, index: Any) -> Tensor:
        index = _index(index)
        try:  # _apply written out: a step of a sequence model reads several pieces
            data = GETITEM.array(self.data, index)
        except (ValueError, IndexError, TypeError) as error:
            raise _input_error(GETITEM, (self,), error) from None
        return _record(GETITEM, data, (self,), {"index": index}, self.requires_grad)

    def scatter(self, index: Any, shape: tuple[int, ...]) -> Tensor:
        """A zero tensor of ``shape`` with this one added at ``index`` (the adjoint of indexing)."""
        return _apply(SCATTER, self, index=_index(index), shape=tuple(shape))

    def apply(self, op: Primitive, *others: Any, **params: Any) -> Tensor:
        """Run the primitive ``op`` with this tensor as its first input and record the node: how a rule makes
        the primitives of its own backward when the backward pass is recorded (``create_graph=True``)."""
        inputs = (self, *[_lift(other, self, op) for other in others])
        try:
            data = op.array(*[x.data for x in inputs], **params)
        except (ValueError, IndexError, TypeError) as error:
            raise _input_error(op, inputs, error) from None
        return _record(op, data, inputs, params, any(x.requires_grad for x in inputs))

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



def _lift(x: Any, like: Tensor | None, op: Primitive) -> Tensor:
    """An operand of ``op`` as a Tensor; a plain number takes the float type of ``like``, as in numpy."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, Node):
        raise mixing_error(op.name, Tensor, x)  # (``like`` may be None: concatenate, stack, where)
    if like is not None and isinstance(x, (int, float)) and like.data.dtype.kind == "f":
        return Tensor(x, dtype=like.data.dtype)
    return Tensor(x)


# --- axes: checked and made non-negative once, here, so that rules can use them as indices -------------------

def _is_integer(axis: Any) -> bool:
    return isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_))


def normal_axis(axis: Any, ndim: int, op: str, x: Any) -> int:
    """``axis`` as an index in [0, ndim), refused unless it is an integer in [-ndim, ndim) (``x`` says what the
    axes belong to, for the message: a tensor or a text)."""
    if _is_integer(axis) and -ndim <= axis < ndim:
        return int(axis) % ndim
    what = f"a tensor of shape {x.shape}" if isinstance(x, Tensor) else x
    if not _is_integer(axis):
        raise TypeError(f"{op}: an axis is an integer, got {type(axis).__name__} {axis!r:.40} (for {what})")
    raise ValueError(f"{op}: axis {axis} is out of range for {what}")


def reduction_axes(axis: Any, x: Tensor, op: str) -> int | tuple[int, ...] | None:
    """A reduction's axes: None (all), one integer, or a tuple of distinct integers, each in [0, ndim). A 0-d
    tensor may name its one pseudo-axis, 0 or -1, which reduces nothing (PyTorch's convention, numpy's for sum
    and max)."""
    if type(axis) is int and -x.ndim <= axis < x.ndim:  # the common case, checked first
        return axis % x.ndim
    if axis is None:
        return None
    if not (_is_integer(axis) or isinstance(axis, (tuple, list))):
        raise TypeError(f"{op}: axis is an integer or a tuple of integers, got {type(axis).__name__} "
                        f"{axis!r:.40} (for a tensor of shape {x.shape})")
    axes = tuple(normal_axis(a, max(x.ndim, 1), op, x) for a in _as_tuple(axis))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: axis {axis} names an axis twice (for a tensor of shape {x.shape})")
    if x.ndim == 0:
        return ()
    return axes[0] if _is_integer(axis) else axes


def _as_tuple(axis: Any) -> tuple[Any, ...]:
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


def _permutation(axes: Sequence[Any], x: Tensor) -> tuple[int, ...]:
    """Transpose's axes: a permutation of all of them, negative ones counted from the end as numpy does."""
    permutation = tuple(normal_axis(a, x.ndim, "transpose", x) for a in _as_tuple(axes))
    if sorted(permutation) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of the {x.ndim} axes of a tensor "
                         f"of shape {x.shape}")
    return permutation


_PLAIN_INDEX = (int, slice, type(None), type(Ellipsis))


def _index(index: Any) -> Any:
    """The index numpy should see: ints and slices as given (the common case, checked first), lists and tensors
    as arrays: integer indices, or boolean masks."""
    if isinstance(index, _PLAIN_INDEX):
        return index
    if isinstance(index, tuple):
        for part in index:
            if not isinstance(part, _PLAIN_INDEX):
                return tuple(part if isinstance(part, _PLAIN_INDEX) else _array_index(part) for part in index)
        return index
    return _array_index(index)


def _array_index(index: Any) -> Any:
    if isinstance(index, Tensor):  # a boolean tensor is a mask; floats must be whole numbers
        index = index.data
        if index.dtype.kind == "f":
            if not np.array_equal(index, np.round(index)):
                raise IndexError(f"a tensor used as an index must hold whole numbers or booleans, got "
                                 f"{index!r:.60}")
            index = index.astype(np.intp)
    if isinstance(index, list):
        index = np.asarray(index) if index else np.array([], dtype=np.intp)  # x[[]] picks nothing, as in numpy
    if isinstance(index, np.ndarray) and index.dtype.kind == "f":
        raise IndexError(f"tensor indices must be integers or booleans, got dtype {index.dtype}")
    return index


_new = object.__new__


def _apply(op: Primitive, a: Tensor, b: Tensor | None = None, **params: Any) -> Tensor:
    """Run a unary or binary primitive that takes parameters (an axis, an index, a shape) forward on arrays and
    record the resulting node. (The operators and elementwise functions have methods of their own, made by
    `_operator` and `_function`.)"""
    try:
        data = op.array(a.data, **params) if b is None else op.array(a.data, b.data, **params)
    except (ValueError, IndexError, TypeError) as error:
        raise _input_error(op, (a,) if b is None else (a, b), error) from None
    if b is None:
        return _record(op, data, (a,), params, a.requires_grad)
    return _record(op, data, (a, b), params, a.requires_grad or b.requires_grad)


def _record(op: Primitive, data: Any, inputs: tuple[Tensor, ...], params: dict[str, Any], needs_grad: bool
            ) -> Tensor:
    """The node holding ``data``: it remembers ``op`` and its inputs when one of them needs a gradient and
    recording is on (in this thread or task); otherwise it is a plain leaf."""
    node = _new(Tensor)
    node.data = data if type(data) is np.ndarray else np.asarray(data)
    node.grad = node._label = None
    mode = current_mode()
    node.stage = mode.stage
    node.params = params or _NO_PARAMS
    if needs_grad and mode.grad_enabled:
        node.op, node.parents, node.requires_grad = op, inputs, True
    else:
        node.op, node.parents, node.requires_grad = None, (), False
    if mode.anomaly:
        core.check_value(node, op, inputs)
    return node


def _input_error(op: Primitive, inputs: Sequence[Tensor], error: Exception) -> Exception:
    """numpy's complaint about an op's inputs, with the op, the inputs' shapes and any names prefixed."""
    described = " and ".join(f"{x.where()} of shape {x.shape}" if x.label or x.stage else
                             f"a tensor of shape {x.shape}" for x in inputs)
    kind = next(k for k in (ValueError, IndexError, TypeError) if isinstance(error, k))
    return kind(f"{op.name} of {described}: {error}")


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    inputs = tuple([t if isinstance(t, Tensor) else _lift(t, None, CONCATENATE) for t in tensors])
    if not inputs:
        raise ValueError("concatenate needs at least one tensor")
    ndim = inputs[0].ndim
    axis = axis % ndim if type(axis) is int and -ndim <= axis < ndim else normal_axis(axis, ndim, "concatenate",
                                                                                         inputs[0])
    try:
        data = CONCATENATE.array(*[x.data for x in inputs], axis=axis)
    except ValueError as error:
        raise _input_error(CONCATENATE, inputs, error) from None
    needs_grad, offsets = False, [0]
    for x in inputs:  # one loop for both: this runs once per step of a sequence model
        needs_grad = needs_grad or x.requires_grad
        offsets.append(offsets[-1] + x.data.shape[axis])
    return _record(CONCATENATE, data, inputs, {"axis": axis, "offsets": tuple(offsets)}, needs_grad)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise choice: ``a`` where ``condition`` holds, else ``b`` (the condition is a constant mask)."""
    condition = np.asarray(raw(condition), dtype=bool)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None  # a number takes its dtype
    return _apply(WHERE, _lift(a, like, WHERE), _lift(b, like, WHERE), condition=condition)
