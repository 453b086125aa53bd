"""Accuracy in the tails and agreement on special values.

sigmoid, forward and backward, in float32 and float64, is measured in ulps against the exact logistic function
(mpmath at 200 bits) over the whole range where it is neither 0 nor 1 in that type; and every unary and binary
primitive of the table gives, for a Value and for a 0-d Tensor, the same value and the same gradient, bit for
bit (NaN for NaN), over the special values: ±0, ±tiny, ±huge, ±inf, NaN and the sigmoid tails.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from autograd import Tensor, Value, grad, maximum, minimum
from autograd.primitives import SCALAR_PRIMITIVES

mpmath = pytest.importorskip("mpmath")  # a test dependency (the [test] extra): exact references
mpmath.mp.prec = 200


def _sigmoid_exact(x):
    return 1 / (1 + mpmath.exp(-x))


def ulps(got: float, exact, dtype: type) -> float:
    """|got - exact| in units of the spacing of ``dtype`` at ``exact`` (the subnormal spacing near 0)."""
    nearest = np.array(float(exact), dtype=dtype)  # exact rounded to the type
    spacing = np.spacing(np.abs(nearest)) if nearest != 0 else np.finfo(dtype).smallest_subnormal
    return float(abs(mpmath.mpf(float(got)) - exact) / mpmath.mpf(float(spacing)))


def _grid(dtype: type) -> np.ndarray:
    """x from where sigmoid(x) underflows to 0 up to where it rounds to 1, densely, and logarithmically near 0."""
    low, high = {np.float64: (-745.0, 38.0), np.float32: (-104.0, 17.5)}[dtype]
    rng = np.random.default_rng(7)
    return np.concatenate([np.linspace(low, high, 1500), rng.uniform(low, high, 1500),
                           -np.logspace(-40, np.log10(-low), 200), np.logspace(-40, np.log10(high), 200),
                           [-0.0, 0.0]]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_exact_to_a_few_ulps_forward_and_backward_over_the_whole_range(dtype):
    # 0.5 * (1 + tanh(x/2)) lost the left tail: float32 sigmoid(-17) was 5.96e-08 (exact 4.14e-08), sigmoid(-20)
    # was 0; float64 sigmoid(-40) was 0; and out * (1 - out) lost the right tail of the derivative
    xs = _grid(dtype)
    g = np.random.default_rng(3).uniform(-2, 2, xs.shape).astype(dtype)  # a random upstream gradient
    x = Tensor(xs, requires_grad=True)
    out = x.sigmoid()
    out.backward(g)
    forward, backward = [], []
    for xi, oi, di, gi in zip(xs, out.data, x.grad, g):
        exact_x = mpmath.mpf(float(xi))
        s = _sigmoid_exact(exact_x)
        forward.append(ulps(oi, s, dtype))
        backward.append(ulps(di, mpmath.mpf(float(gi)) * s * _sigmoid_exact(-exact_x), dtype))
    worst_forward, worst_backward = max(forward), max(backward)
    assert worst_forward <= 3, (worst_forward, xs[int(np.argmax(forward))])
    assert worst_backward <= 5, (worst_backward, xs[int(np.argmax(backward))])


@pytest.mark.parametrize("x", [-10.0, -40.0, -100.0, -700.0, -720.0, -745.0, 20.0, 37.0, 40.0, 700.0])
def test_value_sigmoid_tails_are_exact(x):
    v = Value(x)
    s = v.sigmoid()
    s.backward()
    exact = _sigmoid_exact(mpmath.mpf(x))
    assert ulps(s.data, exact, np.float64) <= 2
    assert ulps(v.grad, exact * _sigmoid_exact(-mpmath.mpf(x)), np.float64) <= 3


def test_log_of_sigmoid_keeps_both_tails():
    # log(sigmoid(-40)) was log(0) = -inf with a NaN gradient; exact: about -40 and 1. On the right its
    # derivative, sigmoid(-x), was 0 from x = 37 on
    for node in (Value(-40.0), Tensor(-40.0, requires_grad=True), Tensor(np.float32(-40.0), requires_grad=True)):
        y = node.sigmoid().log()
        y.backward()
        assert math.isclose(float(y.data), -40.0, rel_tol=1e-6)
        assert math.isclose(float(node.grad), 1.0, rel_tol=1e-6)
    for node in (Value(40.0), Tensor(40.0, requires_grad=True)):
        node.sigmoid().log().backward()
        assert ulps(float(node.grad), _sigmoid_exact(mpmath.mpf(-40)), np.float64) <= 3


def test_float32_sigmoid_left_tail_quoted_in_the_issue():
    got = Tensor(np.float32([-10, -17, -20])).sigmoid().data
    np.testing.assert_allclose(got, [4.5398e-05, 4.1399e-08, 2.0612e-09], rtol=1e-4)


def test_sigmoid_keeps_the_float_type_and_takes_the_overflowing_tail_elementwise():
    for dtype in (np.float16, np.float32, np.float64):
        xs = np.array([-800, -100, -20, -1, 0, 1, 20, 100], dtype=dtype)
        out = Tensor(xs).sigmoid().data
        assert out.dtype == dtype
        exact = [float(_sigmoid_exact(mpmath.mpf(float(x)))) for x in xs]
        np.testing.assert_allclose(out.astype(np.float64), np.array(exact, dtype=dtype).astype(np.float64),
                                   rtol=2e-3 if dtype == np.float16 else 1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_slope_is_exact_to_a_few_ulps_in_both_tails(dtype):
    # g·(1 - out²) lost the tails: 0 from x = 19 on in float64 (9 in float32), and thousands of ulps before
    high = {np.float64: 372.0, np.float32: 51.0}[dtype]  # beyond, the slope underflows to 0
    rng = np.random.default_rng(5)
    xs = np.concatenate([np.linspace(-high, high, 1201), rng.uniform(-high, high, 600)]).astype(dtype)
    g = rng.uniform(-2, 2, xs.shape).astype(dtype)
    x = Tensor(xs, requires_grad=True)
    x.tanh().backward(g)
    errors = [ulps(d, mpmath.mpf(float(gi)) * mpmath.sech(mpmath.mpf(float(xi))) ** 2, dtype)
              for d, xi, gi in zip(x.grad, xs, g)]
    assert max(errors) <= 5, (max(errors), xs[int(np.argmax(errors))])
    v = Value(20.0)
    v.tanh().backward()
    assert ulps(v.grad, mpmath.sech(mpmath.mpf(20)) ** 2, np.float64) <= 5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_near_zero_keeps_its_digits(dtype):
    xs = np.array([1e-30, -1e-20, 1e-8, -3e-5, 5e-324 if dtype == np.float64 else 1e-45], dtype=dtype)
    x = Tensor(xs, requires_grad=True)
    t = x.tanh()
    t.backward(np.ones_like(xs))
    for got, d, xi in zip(t.data, x.grad, xs):
        exact_x = mpmath.mpf(float(xi))
        assert ulps(got, mpmath.tanh(exact_x), dtype) <= 1
        assert ulps(d, 1 - mpmath.tanh(exact_x) ** 2, dtype) <= 2


# --- Value and 0-d Tensor agree bit for bit on special values ---------------------------------------------------

TINY = 5e-324
MIN_NORMAL = float(np.finfo(np.float64).tiny)
HUGE = float(np.finfo(np.float64).max)
SPECIAL = [0.0, -0.0, TINY, -TINY, MIN_NORMAL, -MIN_NORMAL, HUGE, -HUGE, math.inf, -math.inf, math.nan,
           1.0, -1.0, 0.5, -2.0, 3.0, -40.0, 40.0, -720.0, 720.0, 1e-300, -1e300]


def _same(a: float, b: float) -> bool:
    """Equal bit for bit (0.0 and -0.0 differ), or both NaN."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _run(kind, op, inputs, g):
    nodes = [Value(x) for x in inputs] if kind == "Value" else [Tensor(x, requires_grad=True) for x in inputs]
    method = _METHODS[op.name]
    out = method(*nodes)
    grads = grad(out, nodes, g if kind == "Value" else np.float64(g))
    return float(out.data), [float(d) for d in grads]


_METHODS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b, "neg": lambda x: -x, "exp": lambda x: x.exp(), "log": lambda x: x.log(),
    "sqrt": lambda x: x.sqrt(), "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(), "abs": lambda x: abs(x),
    "maximum": lambda a, b: maximum(a, b), "minimum": lambda a, b: minimum(a, b),
}
UNARY = [op for op in SCALAR_PRIMITIVES if len(op.rules) == 1]
BINARY = [op for op in SCALAR_PRIMITIVES if len(op.rules) == 2]


def test_every_scalar_primitive_is_covered():
    assert {op.name for op in SCALAR_PRIMITIVES} == set(_METHODS)


def _check_same(op, inputs, g):
    value_out, value_grads = _run("Value", op, inputs, g)
    tensor_out, tensor_grads = _run("Tensor", op, inputs, g)
    assert _same(value_out, tensor_out), (op.name, inputs, "value", value_out, tensor_out)
    for k, (a, b) in enumerate(zip(value_grads, tensor_grads)):
        assert _same(a, b), (op.name, inputs, f"gradient {k}", a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op", UNARY, ids=lambda op: op.name)
def test_value_and_0d_tensor_agree_on_special_values_unary(op):
    for x, g in itertools.product(SPECIAL, (1.0, -0.75)):
        _check_same(op, [x], g)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.name)
def test_value_and_0d_tensor_agree_on_special_values_binary(op):
    for a, b in itertools.product(SPECIAL, SPECIAL):
        _check_same(op, [a, b], 0.625)


def test_relu_passes_nan_on_as_numpy_and_pytorch_do():
    assert math.isnan(Value(math.nan).relu().data)
    assert math.isnan(Tensor([math.nan]).relu().data[0])


def test_negative_infinity_to_a_fractional_power_is_nan_as_numpy():
    assert math.isnan((Value(-math.inf) ** 0.5).data)
    assert math.isnan(float((Tensor(-math.inf) ** 0.5).data))
