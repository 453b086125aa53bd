"""The primitive table: every operation the engine knows, each defined exactly once.

A row gives the forward (for floats and for numpy arrays), one local-derivative rule per input and the formula
text that `explain` prints. A rule maps ``(g, out, *inputs, **params)`` to the gradient contribution that flows
into its input, where ``g`` is the upstream gradient dL/d(out). Rules use arithmetic and the helpers below only,
so one rule runs on floats (the fast path), on numpy arrays, and on Values or Tensors when the backward pass is
itself recorded (``create_graph=True``). Broadcasting is undone once, in the core, never in a rule. An input
whose local derivative is 1 (each input of a sum) has the rule `passes_on`: its term is ``g`` itself, which the
reverse pass hands on without a call.

Formula texts name the inputs ``x`` (unary) or ``a``, ``b`` (binary), and the output ``out``. A formula that
names ``g``, the upstream gradient, is the whole branch term rather than a factor of it: matrix products do not
commute, so matmul's rules say on which side the upstream gradient goes (``g @ b^T``, ``a^T @ g``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autograd import conv
from autograd.core import Node, passes_on, raw

Rule = Callable[..., Any]


@dataclass(frozen=True, eq=False, slots=True)  # slots: the reverse pass reads rules at every node
class Primitive:
    """One operation: how to compute it, and how each input's gradient follows from the upstream one."""

    name: str
    symbol: str  # how explanations and drawings write the operation, e.g. "{a} * {b}", "tanh({x})"
    scalar: Callable[..., float] | None  # forward on Python floats (Value); None for array-only ops
    array: Callable[..., np.ndarray] | None  # forward on numpy arrays (Tensor)
    rules: tuple[Rule, ...]  # one local-derivative rule per input (variadic ops: one rule for all)
    formulas: tuple[str, ...]  # d out / d input, as text, one per rule
    domain: str = ""  # what the inputs must satisfy for a finite value, quoted when detect_anomaly stops there
    variadic: bool = False  # any number of inputs; the rule receives ``position=`` to know which one
    params: tuple[str, ...] = field(default=())  # names of the non-tensor arguments, e.g. ("axis",)
    # The unary rule in place, for ops whose gradient touches part of the input only (indexing):
    # ``add_into(total, g, out, x, **params)`` adds the contribution into ``total``, an adjoint array the
    # reverse pass owns (or None: start one), and returns it. The plain pass uses it; recorded ones use ``rules``.
    add_into: Rule | None = None

    def __post_init__(self) -> None:
        # The reverse pass takes a node of an op without parameters by its short path, which calls one rule per
        # input, of one or two inputs, with (g, out, *inputs) alone: ops that need more declare parameters.
        if not self.params and (self.variadic or self.add_into is not None or len(self.rules) > 2):
            raise ValueError(f"primitive {self.name!r}: a variadic op, an op with an in-place rule or with more "
                             "than two inputs needs parameters (the reverse pass's general path)")

    def term(self, position: int, g: Any, out: Any, inputs: Sequence[Any], params: Mapping[str, Any]) -> Any:
        """Input ``position``'s gradient contribution: its rule applied to the upstream gradient ``g``, with NaN
        and inf as values and no numpy warnings, as in the backward pass."""
        with np.errstate(all="ignore"):
            if self.variadic:
                return self.rules[0](g, out, *inputs, position=position, **params)
            return self.rules[position](g, out, *inputs, **params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


# --- helpers that rules call, each working on floats, arrays and graph nodes alike --------------------------


def as_numpy_computes(ufunc: np.ufunc, *numbers: float) -> float:
    """The IEEE answer (inf, -inf or nan) that Python's float arithmetic raises an exception for instead, as
    numpy computes it for arrays: one rule for Values and Tensors alike."""
    with np.errstate(all="ignore"):
        return float(ufunc(*numbers))


def quietly(ufunc: np.ufunc) -> Callable[..., np.ndarray]:
    """An array forward that computes NaN and inf as values, without numpy's RuntimeWarnings (for the ops
    whose inputs may leave their domain: log(-1), 1/0, ...). errstate as a decorator costs half of what a
    ``with`` block costs at every call."""
    return np.errstate(all="ignore")(ufunc)


def divide(a: Any, b: Any) -> Any:
    """a / b, where x / 0 is inf, -inf or nan as in IEEE arithmetic (Python's floats raise instead)."""
    try:
        return a / b
    except ZeroDivisionError:
        return as_numpy_computes(np.divide, a, b)


def log(x: Any) -> Any:
    """Natural log of a float, an array or a node: -inf at 0 and nan below, as IEEE arithmetic gives them (rules
    run where numpy's warnings are silenced: in the backward pass, or through Primitive.term)."""
    if isinstance(x, Node):
        return x.log()
    if isinstance(x, np.ndarray):
        return np.log(x)
    return _scalar_log(x)


def power(x: Any, exponent: Any) -> Any:
    """x ** exponent as IEEE arithmetic gives it: 0 ** negative is inf, an overflow inf, a negative base to a
    fractional power nan (Python's floats raise, or give complex numbers)."""
    if isinstance(x, float) and isinstance(exponent, (float, int)):
        return _scalar_pow(x, exponent)
    return x**exponent


def indicator(condition: Any, like: Any) -> Any:
    """A condition on raw numbers as 1.0 or 0.0, in the float type of ``like``: a constant even when the pass is
    recorded, since its own derivative is zero almost everywhere."""
    if isinstance(condition, np.ndarray):
        return condition.astype(raw(like).dtype)
    return float(condition)


def _log_base(a: Any, b: Any) -> Any:
    """log(a), for the exponent's derivative a^b * log(a), read as log(1) = 0 where a == 0 and b >= 0, as PyTorch
    does: there the output is 0 (or 1 when b = 0) and d(0^b)/db is taken as 0, not 0 * -inf = nan. For b < 0
    it stays inf * -inf = -inf."""
    return log(a + indicator((raw(a) == 0) & (raw(b) >= 0), a))


def _pow_grad_base(g: Any, out: Any, a: Any, b: Any) -> Any:
    # b * a^(b-1), except where a == b == 0: there 0 * 0^-1 would be 0 * inf = nan, and PyTorch's 0 is what
    # raising the exponent to 0 (0 * 0^0) gives. Elsewhere the exponent is untouched, second derivatives too.
    return g * b * power(a, b - 1 + indicator((raw(a) == 0) & (raw(b) == 0), a))


def sign(x: Any) -> Any:
    """-1, 0 or +1 (NaN for NaN): a constant even when recording, since its own derivative is zero almost
    everywhere."""
    x = raw(x)
    if isinstance(x, np.ndarray):
        return np.sign(x)
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0 if x == 0 else x  # NaN for NaN, as np.sign


def positive(x: Any) -> Any:
    """1 where x > 0, else 0, as a constant (relu's local derivative)."""
    return indicator(raw(x) > 0, x)


def _scalar_sigmoid(x: float) -> float:
    # 1/(1 + e^-x): nothing cancels, so both tails keep every digit (0.5*(1 + tanh(x/2)) cancelled to 0 below
    # x = -37). e^-x overflows only below x = -709, where sigmoid(x) = e^x/(1 + e^x) is e^x, 1 + e^x being 1.
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:
        return math.exp(x)


@np.errstate(over="raise")  # an overflow of e^-x (the far left tail) is rare: raised, then taken apart
def _array_sigmoid(x: np.ndarray) -> np.ndarray:
    # _scalar_sigmoid's formula, in the same steps (a 0-d Tensor gives a Value's bits); 1 as a 0-d array of x's
    # float type: numpy combines a small array with a Python float more slowly
    one = _ONE.get(x.dtype)
    if one is None:  # a boolean mask
        x, one = x.astype(np.float64), _ONE[np.dtype(np.float64)]
    try:
        e = np.exp(-x)
    except FloatingPointError:
        return _sigmoid_far_left(x, one)
    e += one
    if type(e) is not np.ndarray:  # a 0-d input gives numpy scalars
        return one / e
    return np.divide(one, e, out=e)


def _sigmoid_far_left(x: np.ndarray, one: np.ndarray) -> np.ndarray:
    """sigmoid where e^-x overflows somewhere (x below -709 in float64, -88.7 in float32, -11 in float16): e^x
    there, as for a Value; 1/(1 + e^-x) elsewhere."""
    with np.errstate(over="ignore"):
        out = one / (one + np.exp(-x))
        far = np.isinf(np.exp(-x)) & (x < 0)
        out = np.asarray(out)
        out[far] = np.exp(x[far])
    return out


def sigmoid(x: Any) -> Any:
    """The logistic function of a float, an array or a node (in a recorded pass): sigmoid's forward, for the
    rule, which needs sigmoid(-x)."""
    if isinstance(x, Node):
        return x.sigmoid()
    if isinstance(x, np.ndarray):
        return _array_sigmoid(x)
    return _scalar_sigmoid(x)


_ONE = {np.dtype(t): np.array(1.0, dtype=t) for t in (np.float16, np.float32, np.float64)}


# Scalar forwards that Python's math would refuse: the IEEE value instead, as numpy gives it for a Tensor.

def _scalar_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _scalar_log(x: float) -> float:
    return math.log(x) if x > 0 else as_numpy_computes(np.log, x)


def _scalar_sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else as_numpy_computes(np.sqrt, x)


def _scalar_pow(a: float, b: float) -> float:
    if b == 0.5:  # numpy's power takes a power of ½ as sqrt (so does PyTorch's): sqrt(-inf) is nan, sqrt(-0.0) -0.0
        return _scalar_sqrt(a)
    try:
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return as_numpy_computes(np.power, a, b)


def _scalar_relu(x: float) -> float:
    return 0.0 if x <= 0 else x  # NaN passes on, as np.maximum(nan, 0) and PyTorch's relu give it


def _tanh_grad(g: Any, out: Any, x: Any) -> Any:
    if isinstance(out, Node):  # a recorded pass: the formula as written, on the forward's own tanh node, which a
        return g - g * out * out  # drawing of the recorded pass shows (and its tails are the formula's)
    return g * _sech_squared(x)


def _sech_squared(x: Any) -> Any:
    """1 - tanh(x)², tanh's slope, as sech(x)² = (1/cosh(x))²: where tanh(x) is near ±1, 1 - tanh(x)² has lost
    every digit that the rounding of tanh(x) took (0 from x = 19 on; exact 4e-17). The reciprocal is squared, not
    cosh(x): cosh(x)² would overflow where the slope is still a subnormal number. The same steps on floats and
    arrays, so a Value and a 0-d Tensor get the same bits."""
    if isinstance(x, np.ndarray):
        s = np.reciprocal(np.cosh(x))  # cosh overflows to inf beyond |x| = 710, where the slope is 0 anyway
        return s * s
    try:
        s = 1.0 / math.cosh(x)
    except OverflowError:
        return 0.0
    return s * s


def _sigmoid_grad(g: Any, out: Any, x: Any) -> Any:
    # sigmoid(x)·(1 - sigmoid(x)) with 1 - sigmoid(x) as sigmoid(-x): where out is near 1 (x > 0), 1 - out has
    # lost every digit that the rounding of out took (0 from x = 37 on, exact e^-37)
    return g * out * sigmoid(-x)


# --- the table -----------------------------------------------------------------------------------------------
# Each rule: (g, out, *inputs, **params) -> contribution to that input.

def _binary(name, symbol, scalar, array, rule_a, rule_b, formula_a, formula_b, domain=""):
    return Primitive(name, symbol, scalar, array, (rule_a, rule_b), (formula_a, formula_b), domain)


def _unary(name, symbol, scalar, array, rule, formula, domain=""):
    return Primitive(name, symbol, scalar, array, (rule,), (formula,), domain)


ADD = _binary("add", "{a} + {b}", operator.add, np.add, passes_on, passes_on, "1", "1")
SUB = _binary("sub", "{a} - {b}", operator.sub, np.subtract, passes_on, lambda g, out, a, b: -g, "1", "-1")
MUL = _binary("mul", "{a} * {b}", operator.mul, np.multiply,
              lambda g, out, a, b: g * b, lambda g, out, a, b: g * a, "b", "a")
DIV = _binary("div", "{a} / {b}", divide, quietly(np.divide),
              lambda g, out, a, b: divide(g, b), lambda g, out, a, b: divide(-g * out, b), "1/b", "-a/b^2",
              domain="the divisor must not be zero")
POW = _binary("pow", "{a}^{b}", _scalar_pow, quietly(np.power),
              _pow_grad_base, lambda g, out, a, b: g * out * _log_base(a, b), "b*a^(b-1)", "a^b*log(a)",
              domain="a negative base needs an integer exponent, and zero a non-negative one")
NEG = _unary("neg", "-{x}", operator.neg, np.negative, lambda g, out, x: -g, "-1")
EXP = _unary("exp", "exp({x})", _scalar_exp, quietly(np.exp), lambda g, out, x: g * out, "exp(x)")
LOG = _unary("log", "log({x})", _scalar_log, quietly(np.log), lambda g, out, x: divide(g, x), "1/x",
             domain="log is defined for positive numbers only")
SQRT = _unary("sqrt", "sqrt({x})", _scalar_sqrt, quietly(np.sqrt), lambda g, out, x: g * 0.5 * power(out, -1.0),
              "1/(2*sqrt(x))",
              domain="sqrt is defined for non-negative numbers only")
TANH = _unary("tanh", "tanh({x})", math.tanh, np.tanh, _tanh_grad, "1 - tanh(x)^2")  # (computed as 4e/(1+e)^2)
SIGMOID = _unary("sigmoid", "sigmoid({x})", _scalar_sigmoid, _array_sigmoid, _sigmoid_grad,
                 "sigmoid(x)*(1 - sigmoid(x))")
RELU = _unary("relu", "relu({x})", _scalar_relu, lambda x: np.maximum(x, 0),
              lambda g, out, x: g * positive(x), "1 if x > 0 else 0")
ABS = _unary("abs", "|{x}|", abs, np.abs, lambda g, out, x: g * sign(x), "sign(x)")

SCALAR_PRIMITIVES = (ADD, SUB, MUL, DIV, POW, NEG, EXP, LOG, SQRT, TANH, SIGMOID, RELU, ABS)


# --- array-only primitives (Tensor) --------------------------------------------------------------------------
# Shape bookkeeping is written with methods that numpy arrays and Tensors share (reshape, sum, transpose,
# swapaxes, indexing, @), plus the dispatching helpers below, so these rules too can be recorded. Forwards call
# the array's own methods too (x.sum rather than np.sum): the np.* functions wrap the same methods in a layer
# of Python that costs as much as the work on a small array. Axes arrive normalised (checked, non-negative) from
# the Tensor methods that record these ops, so rules may use them as indices.

def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(x, Node):
        return x.broadcast_to(shape)
    return np.broadcast_to(x, shape)


def scatter(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """A zero array of ``shape`` with ``g`` added at ``index`` (repeated indices accumulate)."""
    if isinstance(g, Node):
        return g.scatter(index, shape)
    return _scatter_array(g, index, shape)


def _scatter_array(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic_index(index):
        out[index] = g  # a basic index names each element at most once, so plain assignment is exact
    else:
        np.add.at(out, index, g)
    return out


def _add_at(total: np.ndarray, index: Any, g: Any) -> np.ndarray:
    """Add ``g`` into ``total`` at ``index``, in place (repeated indices accumulate); return ``total``."""
    if _is_basic_index(index):
        piece = total[index]
        if type(piece) is np.ndarray:
            piece += g  # a view: adding into it adds into total
        else:  # a single element (a number, not a view)
            total[index] = piece + g
    else:
        np.add.at(total, index, g)
    return total


_BASIC_PARTS = (int, np.integer, slice)


def _is_basic_index(index: Any) -> bool:
    if type(index) is not tuple:
        return index is None or index is Ellipsis or isinstance(index, _BASIC_PARTS)
    for part in index:  # noqa: SIM110 (a loop, not all(...) of a generator: this runs once per edge)
        if not (part is None or part is Ellipsis or isinstance(part, _BASIC_PARTS)):
            return False
    return True


def _getitem_add_into(total: np.ndarray | None, g: Any, out: Any, x: Any, index: Any) -> np.ndarray:
    """GETITEM's rule in place: add ``g`` into the picked elements of the running adjoint ``total``.

    Its plain rule scatters ``g`` into a fresh zero array of the whole input, so a sequence read one step at a
    time would cost a full-size array (and a full-size sum) per step; here it costs the step.
    """
    if total is None:
        return _scatter_array(g, index, x.shape)
    if type(total) is not np.ndarray or (total.dtype is not g.dtype and total.dtype != g.dtype):
        # a numpy scalar (a 0-d sum), or a type to promote to, as total + g would
        total = np.array(total, dtype=np.promote_types(total.dtype, g.dtype))
    return _add_at(total, index, g)


def _kept(g: Any, x: Any, axis: int | tuple[int, ...] | None, keepdims: bool) -> Any:
    """Reinsert the axes a reduction removed, so ``g`` broadcasts against its input again (axes come normalised:
    None, or non-negative integers)."""
    if keepdims or axis is None and g.ndim == x.ndim:
        return g
    axes = range(x.ndim) if axis is None else (axis,) if type(axis) is int else axis
    shape = list(x.shape)
    for a in axes:
        shape[a] = 1
    return g.reshape(tuple(shape))


def _extremum_grad(g: Any, out: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    # the gradient goes to the arg-extrema, shared equally where several elements tie
    hit = raw(x) == raw(_kept(out, x, axis, keepdims))
    share = hit / hit.sum(axis=axis, keepdims=True)
    return broadcast_to(_kept(g, x, axis, keepdims), x.shape) * share.astype(raw(x).dtype)


def _inverse(permutation: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``permutation`` (numpy's argsort of it, without making an array)."""
    return tuple(sorted(range(len(permutation)), key=permutation.__getitem__))


def _swap_last(x: Any) -> Any:
    return x.swapaxes(-1, -2)


def _matmul_grad_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.ndim == b.ndim == 2:  # the common case first: this rule runs once per product per backward pass
        return g @ b.T
    if a.ndim == 2 and b.ndim == 3:  # a matrix against a stack (s, k, m): the s terms summed by one product,
        s, k, m = b.shape  # g's matrices side by side (n, s·m) times b's transposes stacked (s·m, k)
        return g.transpose(1, 0, 2).reshape(a.shape[0], s * m) @ b.transpose(0, 2, 1).reshape(s * m, k)
    if b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        return g[..., None] * b
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        return (b @ g[..., None])[..., 0]
    return g @ _swap_last(b)


def _matmul_grad_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.ndim == b.ndim == 2:
        return a.T @ g
    if b.ndim == 1:
        return (_swap_last(a) @ g[..., None])[..., 0] if a.ndim > 1 else g * a
    if a.ndim == 1:
        return a[:, None] * g[..., None, :]
    return _swap_last(a) @ g


def _concatenate(*xs: np.ndarray, axis: int, offsets: tuple[int, ...] = ()) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def _concatenate_grad(g: Any, out: Any, *xs: Any, position: int, axis: int, offsets: tuple[int, ...]) -> Any:
    # offsets: where each input starts along the axis, and where the last ends (made once by the forward, so
    # that a concatenation of T steps costs T slices on the way back, not T^2 additions)
    return g[(*_ALL * axis, slice(offsets[position], offsets[position + 1]))]


_ALL = (slice(None),)


def _mask(x: Any, condition: np.ndarray) -> Any:
    return x * condition.astype(raw(x).dtype)


MATMUL = _binary("matmul", "{a} @ {b}", None, np.matmul, _matmul_grad_a, _matmul_grad_b, "g @ b^T", "a^T @ g")
SUM = Primitive("sum", "sum({x})", None, lambda x, axis, keepdims: x.sum(axis, keepdims=keepdims),
                (lambda g, out, x, axis, keepdims: broadcast_to(_kept(g, x, axis, keepdims), x.shape),),
                ("1",), params=("axis", "keepdims"))
MAX = Primitive("max", "max({x})", None, lambda x, axis, keepdims: x.max(axis, keepdims=keepdims),
                (_extremum_grad,), ("1/k at each of the k maxima (tied elements share), else 0",),
                params=("axis", "keepdims"))
MIN = Primitive("min", "min({x})", None, lambda x, axis, keepdims: x.min(axis, keepdims=keepdims),
                (_extremum_grad,), ("1/k at each of the k minima (tied elements share), else 0",),
                params=("axis", "keepdims"))
RESHAPE = Primitive("reshape", "reshape({x})", None, lambda x, shape: x.reshape(shape),
                    (lambda g, out, x, shape: g.reshape(x.shape),), ("1 (moved)",), params=("shape",))
TRANSPOSE = Primitive("transpose", "{x}^T", None, lambda x, axes: x.transpose(axes),
                      (lambda g, out, x, axes: g.transpose(None if axes is None else _inverse(axes)),),
                      ("1 (moved)",), params=("axes",))
BROADCAST_TO = Primitive("broadcast_to", "broadcast({x})", None, lambda x, shape: np.broadcast_to(x, shape),
                         (lambda g, out, x, shape: sum_to_shape(g, x.shape),), ("1 (summed over copies)",),
                         params=("shape",))
GETITEM = Primitive("getitem", "{x}[i]", None, lambda x, index: x[index],
                    (lambda g, out, x, index: scatter(g, index, x.shape),), ("1 at the picked elements",),
                    params=("index",), add_into=_getitem_add_into)
SCATTER = Primitive("scatter", "scatter({x})", None, _scatter_array,
                    (lambda g, out, x, index, shape: g[index],), ("1 at the scattered elements",),
                    params=("index", "shape"))
CONCATENATE = Primitive("concatenate", "concat({x})", None, _concatenate, (_concatenate_grad,),
                        ("1 on its own block",), variadic=True, params=("axis", "offsets"))
WHERE = Primitive("where", "where(c, {a}, {b})", None, lambda a, b, condition: np.where(condition, a, b),
                  (lambda g, out, a, b, condition: _mask(g, condition),
                   lambda g, out, a, b, condition: _mask(g, ~condition)),
                  ("1 where c", "1 where not c"), params=("condition",))
CLIP = Primitive("clip", "clip({x})", None, lambda x, low, high: x.clip(low, high),
                 (lambda g, out, x, low, high: _mask(g, (raw(x) >= low) & (raw(x) <= high)),),
                 ("1 inside [low, high], else 0",), params=("low", "high"))


def sum_to_shape(g: Any, shape: tuple[int, ...]) -> Any:
    """Undo broadcasting: sum ``g`` over the axes along which an input of ``shape`` was stretched. A ``g`` of a
    shape that no broadcast of ``shape`` could have made is refused (ValueError), never reshaped into place."""
    if g.shape == shape:
        return g
    leading = g.ndim - len(shape)
    if leading < 0:
        raise ValueError(f"{g.shape} has fewer axes than {shape}")
    stretched = list(range(leading))
    for i, n in enumerate(shape):
        if n != g.shape[leading + i]:
            if n != 1:
                raise ValueError(f"axis {i} of {shape} has length {n}, not 1, yet became {g.shape[leading + i]}")
            stretched.append(leading + i)
    return g.sum(axis=tuple(stretched), keepdims=True).reshape(shape)


# --- functional stages: convolution, pooling, softmax with cross-entropy ---------------------------------------
# The article's other stages, each one row, so that a drawing shows one box and `explain` one formula for each.
# Their arithmetic is `autograd.conv`'s (vectorised numpy). The backward of a convolution is itself a pair of
# primitives (dL/dX and dL/dW are bilinear in their two inputs), each with rules of its own, so that a recorded
# backward pass (create_graph=True) can be differentiated again; pooling's backward is a scatter (max) or a
# primitive of its own (average). Formulas name the input ``a``, the kernel ``b`` and the upstream gradient ``g``:
# they are the whole branch term. Spatial sizes arrive checked, as tuples with one entry per spatial axis.

def run(op: Primitive, *inputs: Any, **params: Any) -> Any:
    """``op`` forward on arrays, or recorded as a node when its first input is one (a recorded backward pass)."""
    first = inputs[0]
    if isinstance(first, Node):
        return first.apply(op, *inputs[1:], **params)
    return op.array(*inputs, **params)


def _conv_forward(x: np.ndarray, weight: np.ndarray, stride: Any, padding: Any) -> np.ndarray:
    return conv.correlate(x, weight, stride, padding)


def _conv_grad_input(g: Any, out: Any, x: Any, weight: Any, stride: Any, padding: Any) -> Any:
    return run(CONV_INPUT_GRAD, g, weight, size=x.shape[2:], stride=stride, padding=padding)


def _conv_grad_weight(g: Any, out: Any, x: Any, weight: Any, stride: Any, padding: Any) -> Any:
    return run(CONV_WEIGHT_GRAD, x, g, kernel=weight.shape[2:], stride=stride, padding=padding)


_CONV_FORMULAS = ("convolve_full(g, flip(b))", "correlate(a, g)")
_CONV_PARAMS = ("stride", "padding")
CONV1D = Primitive("conv1d", "conv1d({a}, {b})", None, _conv_forward, (_conv_grad_input, _conv_grad_weight),
                   _CONV_FORMULAS, params=_CONV_PARAMS)
CONV2D = Primitive("conv2d", "conv2d({a}, {b})", None, _conv_forward, (_conv_grad_input, _conv_grad_weight),
                   _CONV_FORMULAS, params=_CONV_PARAMS)
# dL/dX = T(g, W) and dL/dW = C(X, g): for an upstream H of their result, <H, T(g, W)> = <conv(H, W), g> =
# <C(H, g), W>, and <H, C(X, g)> = <conv(X, H), g> = <T(g, H), X>; hence the rules below.
CONV_INPUT_GRAD = Primitive(
    "conv_input_grad", "convolve_full({a}, flip({b}))", None,
    lambda g, weight, size, stride, padding: conv.input_grad(g, weight, size, stride, padding),
    (lambda h, out, g, weight, size, stride, padding: run(CONV2D if len(size) == 2 else CONV1D, h, weight,
                                                          stride=stride, padding=padding),
     lambda h, out, g, weight, size, stride, padding: run(CONV_WEIGHT_GRAD, h, g, kernel=weight.shape[2:],
                                                          stride=stride, padding=padding)),
    ("conv(g, b)", "correlate(g, a)"), params=("size", "stride", "padding"))
CONV_WEIGHT_GRAD = Primitive(
    "conv_weight_grad", "correlate({a}, {b})", None,
    lambda x, g, kernel, stride, padding: conv.weight_grad(x, g, kernel, stride, padding),
    (lambda h, out, x, g, kernel, stride, padding: run(CONV_INPUT_GRAD, g, h, size=x.shape[2:], stride=stride,
                                                       padding=padding),
     lambda h, out, x, g, kernel, stride, padding: run(CONV2D if len(kernel) == 2 else CONV1D, x, h,
                                                       stride=stride, padding=padding)),
    ("convolve_full(b, flip(g))", "conv(a, g)"), params=("kernel", "stride", "padding"))


def _max_pool_grad(g: Any, out: Any, x: Any, kernel: Any, stride: Any) -> Any:
    return scatter(g, conv.max_pool_index(raw(x), kernel, stride), x.shape)


MAX_POOL2D = Primitive("max_pool2d", "max_pool2d({x})", None, conv.max_pool, (_max_pool_grad,),
                       ("1 at each window's first maximum (row-major; PyTorch's choice at ties), else 0; "
                        "summed where windows overlap",), params=("kernel", "stride"))
AVG_POOL_GRAD = Primitive(
    "avg_pool_grad", "spread({x})", None, conv.avg_pool_grad,
    (lambda h, out, g, size, kernel, stride: run(AVG_POOL2D, h, kernel=kernel, stride=stride),),
    ("avg_pool(g)",), params=("size", "kernel", "stride"))
AVG_POOL2D = Primitive(
    "avg_pool2d", "avg_pool2d({x})", None, conv.avg_pool,
    (lambda g, out, x, kernel, stride: run(AVG_POOL_GRAD, g, size=x.shape[2:], kernel=kernel, stride=stride),),
    ("1/(kernel area) from each window holding x",), params=("kernel", "stride"))


def _softmax_cross_entropy(x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, targets[..., None], axis=-1).mean()


def _softmax(x: Any) -> Any:
    if isinstance(x, Node):
        return x.softmax(axis=-1)
    exps = np.exp(x - x.max(axis=-1, keepdims=True))
    return exps / exps.sum(axis=-1, keepdims=True)


def one_hot(targets: np.ndarray, classes: int, dtype: Any) -> np.ndarray:
    """Row i holds 1 in column targets[i], else 0 (targets of any shape; classes become the last axis)."""
    return (targets[..., None] == np.arange(classes)).astype(dtype)


def _softmax_cross_entropy_grad(g: Any, out: Any, x: Any, targets: np.ndarray) -> Any:
    rows = targets.size
    return g * (_softmax(x) - one_hot(targets, x.shape[-1], raw(x).dtype)) / rows


# p = softmax(x) row by row, y the targets, N the number of rows (explain says so, with their numbers)
SOFTMAX_CROSS_ENTROPY = Primitive("softmax_cross_entropy", "cross_entropy({x}, y)", None, _softmax_cross_entropy,
                                  (_softmax_cross_entropy_grad,), ("(p - onehot(y)) / N",), params=("targets",))


def _maximum_share(a: Any, b: Any) -> Any:
    """d max(a, b) / da, as PyTorch takes it: 0 where a is smaller, 1/2 where the two tie, else 1 (a constant).
    Written from "smaller", not "larger", so that where either is NaN (and the maximum NaN) the gradient goes on
    to both, as PyTorch's does, rather than vanishing."""
    a, b = raw(a), raw(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        like = a if isinstance(a, np.ndarray) and a.dtype.kind == "f" else b
        return (1.0 - np.less(a, b) - np.equal(a, b) * 0.5).astype(np.result_type(like, np.float16))
    return 0.0 if a < b else 0.5 if a == b else 1.0


def _scalar_maximum(a: float, b: float) -> float:
    return a if a > b or a != a else b  # as numpy's maximum: NaN wins, and of equals (0.0, -0.0) the second


def _scalar_minimum(a: float, b: float) -> float:
    return a if a < b or a != a else b


MAXIMUM = _binary("maximum", "max({a}, {b})", _scalar_maximum, np.maximum,
                  lambda g, out, a, b: g * _maximum_share(a, b), lambda g, out, a, b: g * _maximum_share(b, a),
                  "0 if a < b, 1/2 if a = b, else 1", "0 if b < a, 1/2 if a = b, else 1")
MINIMUM = _binary("minimum", "min({a}, {b})", _scalar_minimum, np.minimum,
                  lambda g, out, a, b: g * _maximum_share(b, a), lambda g, out, a, b: g * _maximum_share(a, b),
                  "0 if a > b, 1/2 if a = b, else 1", "0 if b > a, 1/2 if a = b, else 1")
SCALAR_PRIMITIVES += (MAXIMUM, MINIMUM)  # Value.max and Value.min
