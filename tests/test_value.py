"""The scalar engine (`Value`): micrograd's surface, every primitive against closed forms and finite
differences, forks, deep graphs, accumulation, functional and higher-order gradients, branch terms, gradcheck,
bad input, anomaly detection and stages."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
from conftest import scalar_numeric_derivative

import autograd
from autograd import AnomalyError, Constant, Value
from autograd import value as value_module
from autograd.primitives import DIV, LOG, POW, RELU, SQRT, TANH


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# --- surface ------------------------------------------------------------------------------------------------

def test_micrograd_surface():
    a = Value(2.0)
    assert a.data == 2.0 and isinstance(a.data, float)
    assert a.grad == 0.0
    assert a.label is None
    assert a.op is None and a.parents == ()
    b = Value(3, label="b")
    assert b.data == 3.0 and isinstance(b.data, float) and b.label == "b"
    c = a * b + 1
    c.backward()
    assert c.data == 7.0
    assert a.grad == 3.0 and b.grad == 2.0 and c.grad == 1.0


def test_int_and_bool_become_floats():
    assert Value(True).data == 1.0 and type(Value(True).data) is float
    assert Value(7).data == 7.0 and type(Value(7).data) is float


# Each row: (name, function of Values or floats, derivative with respect to x in closed form, point)
BINARY_WITH_NUMBER = [
    ("x + 3", lambda x: x + 3, lambda x: 1.0, 0.7),
    ("3 + x", lambda x: 3 + x, lambda x: 1.0, 0.7),
    ("x - 3", lambda x: x - 3, lambda x: 1.0, 0.7),
    ("3 - x", lambda x: 3 - x, lambda x: -1.0, 0.7),
    ("x * 3", lambda x: x * 3, lambda x: 3.0, 0.7),
    ("3 * x", lambda x: 3 * x, lambda x: 3.0, 0.7),
    ("x / 3", lambda x: x / 3, lambda x: 1 / 3, 0.7),
    ("3 / x", lambda x: 3 / x, lambda x: -3 / x**2, 0.7),
    ("x ** 3", lambda x: x**3, lambda x: 3 * x**2, 0.7),
    ("x ** 3 (negative base)", lambda x: x**3, lambda x: 3 * x**2, -1.3),
    ("x ** -2", lambda x: x**-2, lambda x: -2 * x**-3, 1.3),
    ("x ** 0.5", lambda x: x**0.5, lambda x: 0.5 * x**-0.5, 2.0),
    ("3 ** x", lambda x: 3**x, lambda x: 3**x * math.log(3), 0.7),
    ("-x", lambda x: -x, lambda x: -1.0, 0.7),
    ("x + 2.5 * x", lambda x: x + 2.5 * x, lambda x: 3.5, 0.7),
]

UNARY = [
    ("relu +", lambda x: x.relu(), lambda x: max(x, 0.0), lambda x: 1.0, 0.8),
    ("relu -", lambda x: x.relu(), lambda x: max(x, 0.0), lambda x: 0.0, -0.8),
    ("tanh", lambda x: x.tanh(), math.tanh, lambda x: 1 - math.tanh(x) ** 2, 0.6),
    ("exp", lambda x: x.exp(), math.exp, math.exp, 0.6),
    ("log", lambda x: x.log(), math.log, lambda x: 1 / x, 0.6),
    ("sigmoid", lambda x: x.sigmoid(), sigmoid, lambda x: sigmoid(x) * (1 - sigmoid(x)), -0.9),
    ("sigmoid large", lambda x: x.sigmoid(), sigmoid, lambda x: sigmoid(x) * (1 - sigmoid(x)), 30.0),
    ("sqrt", lambda x: x.sqrt(), math.sqrt, lambda x: 0.5 / math.sqrt(x), 2.5),
    ("abs +", lambda x: x.abs(), abs, lambda x: 1.0, 0.4),
    ("abs -", lambda x: abs(x), abs, lambda x: -1.0, -0.4),
]


@pytest.mark.parametrize("name, f, derivative, x0", BINARY_WITH_NUMBER,
                         ids=[r[0] for r in BINARY_WITH_NUMBER])
def test_arithmetic_with_numbers(name, f, derivative, x0):
    x = Value(x0)
    y = f(x)
    assert isinstance(y, Value)
    assert close(y.data, f(x0))  # forward matches plain float arithmetic
    y.backward()
    assert close(x.grad, derivative(x0), rel=1e-12)  # closed form
    assert close(x.grad, scalar_numeric_derivative(f, x0), rel=1e-6, abs_=1e-8)  # finite differences


@pytest.mark.parametrize("name, method, forward, derivative, x0", UNARY, ids=[r[0] for r in UNARY])
def test_unary_functions(name, method, forward, derivative, x0):
    x = Value(x0)
    y = method(x)
    assert close(y.data, forward(x0), rel=1e-12)
    y.backward()
    assert close(x.grad, derivative(x0), rel=1e-10, abs_=1e-14)
    assert close(x.grad, scalar_numeric_derivative(forward, x0), rel=1e-6, abs_=1e-8)


def test_binary_ops_between_values():
    a0, b0 = 1.7, -0.6
    cases = [
        (lambda a, b: a + b, (1.0, 1.0)),
        (lambda a, b: a - b, (1.0, -1.0)),
        (lambda a, b: a * b, (b0, a0)),
        (lambda a, b: a / b, (1 / b0, -a0 / b0**2)),
    ]
    for f, (da, db) in cases:
        a, b = Value(a0), Value(b0)
        out = f(a, b)
        assert close(out.data, f(a0, b0))
        out.backward()
        assert close(a.grad, da) and close(b.grad, db)
        assert close(a.grad, scalar_numeric_derivative(lambda t, f=f: f(t, b0), a0), rel=1e-6)
        assert close(b.grad, scalar_numeric_derivative(lambda t, f=f: f(a0, t), b0), rel=1e-6)


def test_value_as_exponent():
    a0, b0 = 1.8, 2.3
    a, b = Value(a0), Value(b0)
    out = a**b
    assert close(out.data, a0**b0)
    out.backward()
    assert close(a.grad, b0 * a0 ** (b0 - 1))
    assert close(b.grad, a0**b0 * math.log(a0))
    assert close(b.grad, scalar_numeric_derivative(lambda t: a0**t, b0), rel=1e-6)


def test_plain_numbers_enter_as_constants():
    x = Value(2.0)
    y = 5 - x
    left, right = y.parents
    assert isinstance(left, Constant) and left.data == 5.0 and not left.requires_grad
    assert right is x
    y.backward()
    assert left.grad == 0.0  # constants receive no gradient
    assert x.grad == -1.0


# --- graph structure: ops, parents in order, forks ---------------------------------------------------------

def test_nodes_keep_op_and_parents_in_order_with_repeats():
    a, b = Value(2.0, label="a"), Value(5.0, label="b")
    square = a * a
    assert square.op.name == "mul"
    assert square.parents == (a, a) and square.parents[0] is a and square.parents[1] is a
    diff = b - a
    assert diff.op.name == "sub" and diff.parents[0] is b and diff.parents[1] is a
    t = a.tanh()
    assert t.op.name == "tanh" and t.parents == (a,)
    edges = autograd.consumers(square)[a]
    assert len(edges) == 2
    assert [e[0] for e in edges] == [square, square]
    assert sorted(e[1] for e in edges) == [0, 1]
    square.backward()
    assert a.grad == 2 * 2.0


def test_consumers_at_a_fork_across_nodes():
    a = Value(0.3, label="a")
    u, v = a.tanh(), a.exp()
    root = u * v + a
    edges = autograd.consumers(root)[a]
    product = root.parents[0]
    assert sorted((id(c), pos) for c, pos in edges) == sorted([(id(u), 0), (id(v), 0), (id(root), 1)])
    assert product.parents == (u, v)
    assert autograd.consumers(root)[root] == []
    root.backward()
    expected = (1 - math.tanh(0.3) ** 2) * math.exp(0.3) + math.tanh(0.3) * math.exp(0.3) + 1
    assert close(a.grad, expected)


def test_iterative_topological_order_on_a_million_op_chain():
    steps, k = 1_000_000, 1.000001
    limit = sys.getrecursionlimit()
    x = Value(0.5)
    node = x
    for _ in range(steps):
        node = node * k
    node.backward()
    expected = math.exp(steps * math.log(k))  # d/dx (x * k^N) = k^N, computed independently
    assert close(node.data, 0.5 * expected, rel=1e-9)
    assert close(x.grad, expected, rel=1e-9)
    assert sys.getrecursionlimit() == limit  # no recursion-limit tricks


# --- accumulation, zero_grad, functional grad ---------------------------------------------------------------

def test_backward_accumulates_across_calls():
    x = Value(1.5)
    y = x * x * x
    y.backward()
    assert close(x.grad, 3 * 1.5**2)
    y.backward()
    assert close(x.grad, 2 * 3 * 1.5**2)
    z = x.exp()
    z.backward()
    assert close(x.grad, 2 * 3 * 1.5**2 + math.exp(1.5))


def test_zero_grad_resets_every_node():
    x, w = Value(1.5), Value(-2.0)
    h = (x * w).tanh()
    y = h * h
    y.backward()
    assert x.grad != 0.0 and w.grad != 0.0 and h.grad != 0.0
    y.zero_grad()
    assert x.grad == 0.0 and w.grad == 0.0 and h.grad == 0.0 and y.grad == 0.0
    y.backward()
    y2 = x * 2
    autograd.zero_grad([y, y2])
    assert x.grad == 0.0 and w.grad == 0.0


def test_functional_grad_does_not_touch_grad():
    x, y = Value(0.4), Value(-1.1)
    x.grad = 7.0  # pre-existing value must survive
    f = x * y + x.tanh()
    gx, gy = autograd.grad(f, [x, y])
    assert close(gx, -1.1 + 1 - math.tanh(0.4) ** 2)
    assert close(gy, 0.4)
    assert x.grad == 7.0 and y.grad == 0.0 and f.grad == 0.0
    single = autograd.grad(f, y)
    assert isinstance(single, float) and close(single, 0.4)
    unrelated = Value(3.0)
    assert autograd.grad(f, [unrelated]) == [0.0]
    with pytest.raises(TypeError, match="float"):
        autograd.grad(f, [1.0])


def test_grad_output_scales():
    x = Value(2.0)
    y = x * x
    assert close(autograd.grad(y, x, 3.0), 3.0 * 4.0)


# --- higher-order derivatives -------------------------------------------------------------------------------

SECOND_DERIVATIVES = [
    ("tanh", lambda x: x.tanh(), lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2), 0.7),
    ("exp", lambda x: x.exp(), math.exp, 0.7),
    ("x**3", lambda x: x**3, lambda x: 6 * x, 0.7),
    ("log", lambda x: x.log(), lambda x: -1 / x**2, 0.7),
    ("sigmoid", lambda x: x.sigmoid(), lambda x: sigmoid(x) * (1 - sigmoid(x)) * (1 - 2 * sigmoid(x)), 0.7),
    ("sqrt", lambda x: x.sqrt(), lambda x: -0.25 * x**-1.5, 1.7),
    ("1/x", lambda x: 1 / x, lambda x: 2 / x**3, 1.7),
    ("x*exp(x)", lambda x: x * x.exp(), lambda x: (x + 2) * math.exp(x), 0.3),
    ("x**x", lambda x: x**x, lambda x: x**x * ((math.log(x) + 1) ** 2 + 1 / x), 1.3),
    ("2**x", lambda x: 2**x, lambda x: 2**x * math.log(2) ** 2, 1.3),
    ("relu(x)*x", lambda x: x.relu() * x, lambda x: 2.0, 1.3),
]


@pytest.mark.parametrize("name, f, second, x0", SECOND_DERIVATIVES, ids=[r[0] for r in SECOND_DERIVATIVES])
def test_second_derivatives(name, f, second, x0):
    x = Value(x0)
    first = autograd.grad(f(x), x, create_graph=True)
    assert isinstance(first, Value)
    first_numeric = scalar_numeric_derivative(lambda t: f(Value(t)).data, x0)
    assert close(first.data, first_numeric, rel=1e-6)
    d2 = autograd.grad(first, x)
    assert close(d2, second(x0), rel=1e-9, abs_=1e-12)
    # and .backward() on the first derivative gives the same, accumulating into x.grad
    first.backward()
    assert close(x.grad, second(x0), rel=1e-9, abs_=1e-12)


def test_third_derivative_and_mixed_partials():
    x, y = Value(0.9), Value(-0.4)
    dx = autograd.grad(x**3 * y, x, create_graph=True)
    dxx = autograd.grad(dx, x, create_graph=True)
    dxxx = autograd.grad(dxx, x)
    assert close(dxxx, 6 * -0.4)
    dxy = autograd.grad(dx, y)
    assert close(dxy, 3 * 0.9**2)
    # product rule at a fork: f = x*y*x
    f = x * y * x
    gx, gy = autograd.grad(f, [x, y], create_graph=True)
    assert close(autograd.grad(gx, x), 2 * -0.4)
    assert close(autograd.grad(gx, y), 2 * 0.9)
    assert close(autograd.grad(gy, x), 2 * 0.9)
    assert autograd.grad(gy, y) == 0.0  # gy = x*x does not depend on y


def test_hessian_vector_product():
    # f(x, y) = x^2 y + exp(x y); H v computed as grad(grad(f) . v)
    x0, y0 = 0.6, -0.8
    v = (0.3, -1.2)
    x, y = Value(x0), Value(y0)
    f = x * x * y + (x * y).exp()
    gx, gy = autograd.grad(f, [x, y], create_graph=True)
    hv = autograd.grad(gx * v[0] + gy * v[1], [x, y])
    e = math.exp(x0 * y0)
    hxx = 2 * y0 + y0 * y0 * e
    hxy = 2 * x0 + e + x0 * y0 * e
    hyy = x0 * x0 * e
    assert close(hv[0], hxx * v[0] + hxy * v[1])
    assert close(hv[1], hxy * v[0] + hyy * v[1])


def test_create_graph_records_in_backward_stage():
    x = Value(0.5)
    g = autograd.grad(x.tanh(), x, create_graph=True)
    assert g.stage[-1] == "backward"
    assert g.op is not None  # a graph node, not a detached number
    unrelated = autograd.grad(x.tanh(), Value(1.0), create_graph=True)
    assert isinstance(unrelated, Value) and unrelated.data == 0.0


# --- per-branch terms ---------------------------------------------------------------------------------------

def test_branch_terms_sum_to_adjoint():
    a0 = 0.45
    a = Value(a0, label="a")
    square = a * a
    t = a.tanh()
    root = square + t * 2.0
    result = autograd.backpropagate(root, record_branches=True)
    terms = result.terms(a)
    assert len(terms) == 3
    by_edge = {(id(b.consumer), b.position): b.term for b in terms}
    assert close(by_edge[(id(square), 0)], a0)  # d(a*a)/d(first a) = second a
    assert close(by_edge[(id(square), 1)], a0)
    assert close(by_edge[(id(t), 0)], 2.0 * (1 - math.tanh(a0) ** 2))
    assert all(isinstance(b, autograd.Branch) for b in terms)
    assert close(sum(b.term for b in terms), result.adjoints[a])
    assert close(result.adjoints[a], 2 * a0 + 2 * (1 - math.tanh(a0) ** 2))
    assert result.terms(root) == []
    for node in result.adjoints:
        if node is not root and node.requires_grad:
            assert close(sum(b.term for b in result.terms(node)), result.adjoints[node])


def test_terms_need_record_branches():
    a = Value(1.0)
    result = autograd.backpropagate(a * a)
    with pytest.raises(ValueError, match="record_branches"):
        result.terms(a)


# --- gradcheck ----------------------------------------------------------------------------------------------

def test_gradcheck_passes_with_per_input_errors():
    a, b = Value(0.8, label="a"), Value(-1.3, label="b")
    result = autograd.gradcheck(lambda a, b: (a * b).tanh() + a.exp() / (1 + b * b), [a, b])
    assert result.passed and bool(result)
    assert [c.label for c in result.inputs] == ["a", "b"]
    assert [c.index for c in result.inputs] == [0, 1]
    for check in result.inputs:
        assert check.max_abs_error < 1e-8
        assert check.passed
    assert "a" in str(result) and "yes" in str(result)
    assert a.data == 0.8 and b.data == -1.3  # inputs restored


def test_gradcheck_flags_a_wrong_rule():
    # a copy of tanh's row with a wrong derivative (1 - x^2 instead of 1 - tanh(x)^2), applied directly;
    # the shared table is not modified
    wrong_tanh = dataclasses.replace(TANH, rules=(lambda g, out, x: g * (1 - x * x),))
    x = Value(0.9, label="x")
    result = autograd.gradcheck(lambda x: value_module._apply(wrong_tanh, x), [x])
    assert not result.passed and not bool(result)
    check = result.inputs[0]
    assert not check.passed
    assert math.isclose(float(check.analytic), 1 - 0.81, rel_tol=1e-12)
    assert math.isclose(float(check.numeric), 1 - math.tanh(0.9) ** 2, rel_tol=1e-6)
    assert math.isclose(check.max_abs_error, abs((1 - 0.81) - (1 - math.tanh(0.9) ** 2)), rel_tol=1e-5)
    assert "NO" in str(result)
    with pytest.raises(AssertionError, match="gradcheck failed"):
        autograd.gradcheck(lambda x: value_module._apply(wrong_tanh, x), [x], raise_on_failure=True)
    # the real tanh still passes
    assert autograd.gradcheck(lambda x: x.tanh(), [x]).passed
    assert TANH.rules[0] is not wrong_tanh.rules[0]


def test_gradcheck_at_a_kink():
    x = Value(0.0)
    result = autograd.gradcheck(lambda x: x.relu(), [x])
    # one-sided slopes 0 and 1: central differences give 0.5, the rule gives 0
    check = result.inputs[0]
    assert not result.passed
    assert float(check.analytic) == 0.0
    assert math.isclose(float(check.numeric), 0.5, rel_tol=1e-9)
    assert math.isclose(check.max_abs_error, 0.5, rel_tol=1e-9)
    # a loose enough tolerance accepts it: the pass/fail logic follows atol + rtol * |numeric|
    assert autograd.gradcheck(lambda x: x.relu(), [x], atol=0.6).passed
    assert not autograd.gradcheck(lambda x: x.relu(), [x], atol=0.4).passed
    assert RELU.rules[0](1.0, 0.0, 0.0) == 0.0


def test_gradcheck_rejects_non_nodes():
    with pytest.raises(TypeError):
        autograd.gradcheck(lambda x: x, [1.0])


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, type_name", [("2.0", "str"), (None, "NoneType"), ([1.0], "list"),
                                            (1 + 2j, "complex"), ({}, "dict")])
def test_value_of_non_number_raises_type_error(bad, type_name):
    with pytest.raises(TypeError, match=type_name):
        Value(bad)


def test_arithmetic_with_non_number_raises_type_error():
    with pytest.raises(TypeError, match="str"):
        Value(1.0) + "a"
    with pytest.raises(TypeError, match="complex"):
        Value(1.0) * 1j


@pytest.mark.parametrize("make, op, shown, value", [
    (lambda v: v.log(), "log", "-2.0", "nan"),
    (lambda v: v.log(), "log", "0.0", "-inf"),
    (lambda v: v.sqrt(), "sqrt", "-2.0", "nan"),
    (lambda v: v**-1, "pow", "0.0", "inf"),
    (lambda v: v**-0.5, "pow", "0.0", "inf"),
    (lambda v: v**0.5, "pow", "-2.0", "nan"),
    (lambda v: 1.0 / v, "div", "0.0", "inf"),
    (lambda v: Value(3.0) / v, "div", "0.0", "inf"),
])
def test_out_of_domain_values_are_ieee_values_and_detect_anomaly_names_op_value_label_and_domain(make, op, shown,
                                                                                                 value):
    v = Value(float(shown), label="culprit")
    assert repr(make(v).data) == value
    with autograd.detect_anomaly(), pytest.raises(AnomalyError) as info:
        make(v)
    message = str(info.value)
    assert message.startswith(op) and f"culprit={shown}" in message and f"produced {value}" in message
    primitive = {"log": LOG, "sqrt": SQRT, "pow": POW, "div": DIV}[op]
    assert primitive.domain in message


def test_anomaly_names_stage():
    with autograd.stage("t=3"), autograd.detect_anomaly(), pytest.raises(AnomalyError, match="t=3"):
        Value(-1.0).log()


def test_non_finite_values_are_allowed():
    assert Value(1000.0).exp().data == math.inf
    assert (Value(10.0) ** 400).data == math.inf
    assert (Value(-10.0) ** 401).data == -math.inf
    assert math.isnan((Value(math.inf) - math.inf).data)
    assert (Value(-1000.0).exp()).data == 0.0


# --- anomaly detection --------------------------------------------------------------------------------------

def test_detect_anomaly_raises_at_the_first_bad_forward_op():
    x = Value(1000.0, label="x")
    with autograd.detect_anomaly(), autograd.stage("encoder"):
        with pytest.raises(AnomalyError) as info:
            y = x * 2.0  # fine
            y.exp()  # inf: the first bad op
        message = str(info.value)
        assert "exp" in message and "2000.0" in message and "inf" in message
        assert "encoder" in message
    assert isinstance(info.value, ArithmeticError)
    assert Value(1000.0).exp().data == math.inf  # outside the context again: allowed


def test_detect_anomaly_nan_forward():
    with autograd.detect_anomaly(), pytest.raises(AnomalyError, match="sub"):
        Value(math.inf) - Value(math.inf)


def test_detect_anomaly_raises_on_a_non_finite_gradient_naming_label():
    x = Value(0.0, label="x")
    y = x.sqrt()  # sqrt(0) = 0 is a fine value, but its derivative is infinite
    y.label = "root of x"
    with autograd.detect_anomaly(), pytest.raises(AnomalyError) as info:
        y.backward()
    message = str(info.value)
    assert "sqrt" in message and "root of x" in message
    # without the context the gradient is simply inf
    y.backward()
    assert x.grad == math.inf


def test_detect_anomaly_restores_after_errors():
    with pytest.raises(AnomalyError), autograd.detect_anomaly():
        Value(1e308) * 10.0
    assert (Value(1e308) * 10.0).data == math.inf


# --- stages and no_grad -------------------------------------------------------------------------------------

def test_stages_tag_nodes():
    x = Value(0.5, label="x")
    with autograd.stage("t=1"):
        h = x * 2.0
        with autograd.stage("forget gate") as current:
            assert current == ("t=1", "forget gate")
            f = h.sigmoid()
            leaf = Value(1.0)
        after = f + 1.0
    outside = after * 1.0
    assert x.stage == ()
    assert h.stage == ("t=1",)
    assert f.stage == ("t=1", "forget gate")
    assert leaf.stage == ("t=1", "forget gate")
    assert after.stage == ("t=1",)
    assert outside.stage == ()


def test_stage_restored_after_exception_and_validates_name():
    with pytest.raises(RuntimeError), autograd.stage("a"):
        raise RuntimeError
    assert Value(1.0).stage == ()
    with pytest.raises(TypeError), autograd.stage(""):
        pass
    with pytest.raises(TypeError), autograd.stage(3):
        pass


def test_no_grad_results_have_no_parents():
    x = Value(2.0)
    with autograd.no_grad():
        y = (x * x).tanh()
    assert y.op is None and y.parents == () and not y.requires_grad
    assert close(y.data, math.tanh(4.0))
    with pytest.raises(ValueError, match="needs no gradient"):
        y.backward()
    z = x * x
    assert z.parents == (x, x)  # recording resumes


def test_comparisons_and_identity():
    a, b = Value(1.0), Value(1.0)
    assert a != b and a == a  # identity equality: usable as dict keys
    assert len({a, b}) == 2
    assert (a < 2) and (a <= b) and not (a > b) and (b >= a)
    assert float(Value(2.5)) == 2.5


def test_exponent_gradient_at_zero_base():
    # d(0^b)/db = 0 for b > 0 (the rule's a^b * log(a) must not turn into 0 * -inf = nan)
    a, b = Value(0.0), Value(2.0)
    (a**b).backward()
    assert a.grad == 0.0 and b.grad == 0.0
    a, b = Value(0.0), Value(1.0)
    (a**b).backward()
    assert a.grad == 1.0 and b.grad == 0.0


def test_second_derivatives_of_a_power_in_both_inputs():
    a0, b0 = 1.5, 2.5
    a, b = Value(a0), Value(b0)
    ga, gb = autograd.grad(a**b, [a, b], create_graph=True)
    haa, hab = autograd.grad(ga, [a, b])
    hba, hbb = autograd.grad(gb, [a, b])
    assert close(haa, b0 * (b0 - 1) * a0 ** (b0 - 2))
    assert close(hab, a0 ** (b0 - 1) * (1 + b0 * math.log(a0)))
    assert close(hba, hab)
    assert close(hbb, a0**b0 * math.log(a0) ** 2)


def test_sqrt_gradient_at_zero_is_infinite():
    x = Value(0.0)
    x.sqrt().backward()
    assert x.grad == math.inf


@pytest.mark.parametrize("compute, why", [
    (lambda: Value(2.0) ** 1e10, "an overflow: the result is too large for a float"),
    (lambda: Value(1000.0).exp(), "an overflow"),
    (lambda: Value(0.0) ** -1.0, "zero a non-negative one"),
    (lambda: Value(1.0) / 0.0, "the divisor must not be zero"),
    (lambda: Value(-1.0).log(), "log is defined for positive numbers only"),
])
def test_detect_anomaly_says_whether_a_value_overflowed_or_left_the_domain(compute, why):
    with autograd.detect_anomaly(), pytest.raises(AnomalyError) as raised:
        compute()
    assert why in str(raised.value)
    if "overflow" in why:
        assert "domain" not in str(raised.value) and "base" not in str(raised.value)
