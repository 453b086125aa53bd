"""One regression test per defect that running other engines' test suites against ours found (issue 10).

Each was written first, seen failing, then fixed: a silently wrong gradient, an error from deep inside, or a rule
that disagreed with numpy's semantics or PyTorch's gradients."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import autograd
from autograd import Tensor, Value
from autograd import tensor as tensor_module
from autograd.primitives import TRANSPOSE

RNG = np.random.default_rng(10)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


# --- 1. transpose with negative axes; wrong-shaped gradient terms ---------------------------------------------

@pytest.mark.parametrize("axes", [(1, -1, 0), (-1, -3, -2), (0, -1, 1), (-3, 1, 2)])
def test_transpose_with_negative_axes_sends_each_gradient_back_to_its_element(axes):
    x0 = randn(2, 3, 4)
    x = Tensor(x0, requires_grad=True)
    y = x.transpose(axes)
    np.testing.assert_array_equal(y.data, x0.transpose(axes))
    w = randn(*y.shape)  # a random upstream gradient: all-ones hid this defect
    (y * w).sum().backward()
    np.testing.assert_array_equal(x.grad, w.transpose(np.argsort(np.array(axes) % 3)))


def test_transpose_refuses_axes_that_are_not_a_permutation():
    x = Tensor(np.ones((2, 3, 4)))
    for axes in [(0, 0, 1), (0, 1), (0, 1, 3), (0, 1, -4), (0.0, 1, 2)]:
        with pytest.raises((ValueError, TypeError), match=r"transpose.*\(2, 3, 4\)"):
            x.transpose(axes)


def test_the_core_refuses_a_gradient_term_of_a_shape_no_broadcast_could_make():
    # a rule that forgets to invert the permutation: its term has the input's size but not its shape
    forgetful = dataclasses.replace(TRANSPOSE, rules=(lambda g, out, x, axes: g.transpose(axes),))
    x = Tensor(randn(2, 3, 4), requires_grad=True, label="x")
    y = tensor_module._apply(forgetful, x, axes=(1, 2, 0))
    with pytest.raises(ValueError, match=r"transpose.*input 0.*\(4, 2, 3\).*\(2, 3, 4\)"):
        (y * randn(3, 4, 2)).sum().backward()
    # a term that only looks like a broadcast of the input (a 1 where the input has 2) is refused as well
    summed = dataclasses.replace(TRANSPOSE, rules=(lambda g, out, x, axes: g.sum(axis=2, keepdims=True)
                                                   .transpose((2, 0, 1)),))
    y = tensor_module._apply(summed, x, axes=(1, 2, 0))
    with pytest.raises(ValueError, match=r"transpose.*\(1, 3, 4\).*\(2, 3, 4\)"):
        y.sum().backward()


# --- 2. pow at a zero base and at overflow ---------------------------------------------------------------------

def test_d_x_to_the_zero_at_zero_is_zero():
    x = Value(0.0)
    (x**0.0).backward()
    assert x.grad == 0.0
    a, b = Value(0.0), Value(0.0)
    (a**b).backward()
    assert a.grad == 0.0 and b.grad == 0.0  # PyTorch: 0 where the exponent is 0; 0 where base 0, exponent >= 0
    t = Tensor([0.0, 2.0], requires_grad=True)
    (t**0.0).sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])


@pytest.mark.parametrize("exponent, expected", [(-1.0, -math.inf), (-2.5, -math.inf), (0.0, 0.0), (1.5, 0.0)])
def test_d_zero_to_the_y_by_y_follows_pytorch(exponent, expected):
    base, y = Value(0.0), Value(exponent)
    (base**y).backward()
    assert y.grad == expected
    t = Tensor(exponent, requires_grad=True)
    (0.0**t).backward()
    assert float(t.grad) == expected


def test_a_power_that_overflows_has_an_infinite_gradient_not_an_exception():
    x = Value(10.0)
    y = x**400.0
    assert y.data == math.inf
    y.backward()
    assert x.grad == math.inf
    b = Value(400.0)
    (Value(10.0) ** b).backward()
    assert b.grad == math.inf
    x = Value(-10.0)
    (x**401.0).backward()  # an odd power of a negative base: -inf forward, +inf slope (401 * (-10)^400)
    assert x.grad == math.inf


# --- 3. reductions on 0-d tensors; axes that are not integers -------------------------------------------------

@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [0, -1, (0,), (-1,)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_of_a_zero_dimensional_tensor_over_axis_0_or_minus_1(name, axis, keepdims):
    x = Tensor(2.5, requires_grad=True)
    y = getattr(x, name)(axis=axis, keepdims=keepdims)
    assert y.shape == () and float(y.data) == 2.5  # PyTorch's convention: a 0-d tensor has one dimension to reduce
    (y * 3.0).backward()
    assert float(x.grad) == 3.0


def test_softmax_of_a_zero_dimensional_tensor():
    x = Tensor(2.0, requires_grad=True)
    y = x.softmax()
    assert float(y.data) == 1.0
    y.backward()
    assert float(x.grad) == 0.0
    assert float(x.log_softmax(axis=0).data) == 0.0


@pytest.mark.parametrize("axis", [0.7, "0", True, [0.0], 1, -2])
def test_reductions_refuse_axes_that_are_not_in_range_integers(axis):
    x = Tensor(np.ones(3))
    for name in ("sum", "mean", "max", "min"):
        with pytest.raises((TypeError, ValueError), match=name):
            getattr(x, name)(axis=axis)
    with pytest.raises((TypeError, ValueError), match="sum"):
        Tensor(2.0).sum(axis=axis)


# --- 4. stack's axis --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [77, 3, -4])
def test_stack_refuses_an_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=rf"stack: axis {axis} is out of range"):
        autograd.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 3)))], axis=axis)


# --- 5. boolean masks as indices ---------------------------------------------------------------------------------

def test_a_boolean_tensor_indexes_as_a_mask():
    x0 = randn(3, 2)
    x = Tensor(x0, requires_grad=True)
    mask = Tensor([True, False, True])
    assert mask.dtype == np.bool_
    y = x[mask]
    np.testing.assert_array_equal(y.data, x0[[0, 2]])
    w = randn(2, 2)
    (y * w).sum().backward()
    np.testing.assert_array_equal(x.grad, [w[0], [0.0, 0.0], w[1]])


@pytest.mark.parametrize("mask", [[True, False], np.array([True, False, True, True]), Tensor([False, True])])
def test_a_mask_of_the_wrong_length_is_refused(mask):
    x = Tensor(np.ones(3), label="x")
    with pytest.raises(IndexError, match=r"getitem.*node 'x'.*\(3,\)"):
        x[mask]


def test_a_boolean_tensor_needs_no_gradient():
    with pytest.raises(TypeError, match="bool"):
        Tensor([True, False], requires_grad=True)


# --- 6. float32 times a boolean mask ----------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [np.array([True, False, True]), Tensor([True, False, True])])
def test_float32_times_a_boolean_mask_stays_float32(mask):
    x = Tensor(np.array([1.5, 2.5, 3.5], dtype=np.float32), requires_grad=True)
    for y in (x * mask, mask * x):
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y.data, [1.5, 0.0, 3.5])
    (x * mask).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])


# --- 7. a Value graph recorded under no_grad ----------------------------------------------------------------------

def test_backward_through_a_value_computed_under_no_grad_is_refused_as_for_tensors():
    x = Value(2.0)
    with autograd.no_grad():
        y = x * x
    with pytest.raises(ValueError, match="needs no gradient"):
        y.backward()
    assert x.grad == 0.0
    t = Tensor(2.0, requires_grad=True)
    with autograd.no_grad():
        u = t * t
    with pytest.raises(ValueError, match="needs no gradient"):
        u.backward()


# --- 8. grad() of a non-scalar -----------------------------------------------------------------------------------

def test_grad_of_a_non_scalar_needs_grad_output_as_backward_does():
    x = Tensor(randn(3), requires_grad=True)
    y = x * 2.0
    with pytest.raises(ValueError, match=r"grad\(\).*shape \(3,\).*grad_output"):
        autograd.grad(y, x)
    with pytest.raises(ValueError, match=r"backward\(\).*shape \(3,\)"):
        y.backward()
    g = randn(3)
    np.testing.assert_array_equal(autograd.grad(y, x, g), 2.0 * g)
    np.testing.assert_array_equal(autograd.grad(y.sum(), x), np.full(3, 2.0))


# --- 9. gradients handed to the user are plain numbers -------------------------------------------------------------

def test_a_node_given_as_the_seed_still_gives_plain_gradients():
    x = Value(3.0)
    y = x * x
    y.backward(Value(2.0))
    assert type(x.grad) is float and x.grad == 12.0
    assert type(autograd.grad(y, x, Value(2.0))) is float
    t = Tensor(randn(3), requires_grad=True)
    u = t * 3.0
    u.backward(Tensor(np.ones(3)))
    assert type(t.grad) is np.ndarray
    assert type(autograd.grad(u, t, Tensor(np.ones(3)))) is np.ndarray
    # with create_graph a seed node is part of the recorded pass, and the gradients are nodes
    seed = Value(2.0)
    g = autograd.grad(y, x, seed, create_graph=True)
    assert isinstance(g, Value) and g.data == 12.0
    assert autograd.grad(g, seed) == 6.0


# --- 10. errors that name the problem ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed, error, fragment", [
    (np.ones(2), ValueError, r"backward\(\).*shape \(3,\).*\(2,\)"),
    ("one", TypeError, r"backward\(\).*str"),
    (Value(1.0), TypeError, r"Tensor and Value"),
])
def test_a_bad_tensor_seed_is_named(seed, error, fragment):
    y = Tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(error, match=fragment):
        y.backward(seed)


@pytest.mark.parametrize("seed, error, fragment", [
    ("one", TypeError, r"backward\(\).*str"),
    (np.ones(2), TypeError, r"backward\(\).*shape \(2,\)"),
    (Tensor(1.0), TypeError, r"Tensor and Value"),
])
def test_a_bad_value_seed_is_named(seed, error, fragment):
    y = Value(1.0) * 2.0
    with pytest.raises(error, match=fragment):
        y.backward(seed)


def test_swapaxes_out_of_range_is_named():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"swapaxes: axis 7 is out of range for a tensor of shape \(2, 3\)"):
        x.swapaxes(0, 7)
    np.testing.assert_array_equal(x.swapaxes(-1, 0).data, np.ones((3, 2)))


def test_grad_of_something_that_is_not_a_node_is_named():
    x = Value(1.0)
    with pytest.raises(TypeError, match=r"grad\(\).*float"):
        autograd.grad(x * x, 3.0)


def test_an_integer_too_large_for_a_float_is_named():
    with pytest.raises(OverflowError, match="Value.*too large"):
        Value(10**400)
    with pytest.raises(OverflowError, match="Tensor.*too large"):
        Tensor([1, 10**400])
    assert Tensor([2**70]).data[0] == 2.0**70  # beyond int64, within float range: fine


@pytest.mark.parametrize("make", [lambda label: Value(1.0, label=label), lambda label: Tensor(1.0, label=label)])
def test_a_label_must_be_a_string(make):
    with pytest.raises(TypeError, match="label.*int"):
        make(3)
    node = make("ok")
    with pytest.raises(TypeError, match="label.*int"):
        node.label = 3
    node.label = None
    assert node.label is None


def test_indexing_out_of_range_names_the_node_and_its_shape():
    x = Tensor(np.ones((2, 3)), label="x")
    with pytest.raises(IndexError, match=r"getitem.*node 'x'.*\(2, 3\)"):
        x[5]
    with pytest.raises(IndexError, match=r"getitem.*\(2, 3\)"):
        x[:, [0, 3]]


def test_value_with_tensor_and_tensor_with_value_give_one_message():
    v, t = Value(1.0), Tensor(np.ones(2))
    messages = set()
    for make in (lambda: v + t, lambda: t + v, lambda: v * t, lambda: t * v, lambda: v - t, lambda: t / v):
        with pytest.raises(TypeError) as info:
            make()
        messages.add(str(info.value).split(": ", 1)[1])
    assert len(messages) == 1 and "Tensor and Value" in messages.pop()


def test_a_zero_dimensional_array_is_a_number_to_a_value_on_either_side():
    a = Value(2.0)
    for y in (a * np.array(3.0), np.array(3.0) * a, a * np.float32(3.0), np.float64(3.0) * a):
        assert type(y) is Value and y.data == 6.0
    (a * np.array(3.0)).backward()
    assert a.grad == 3.0


def test_an_array_with_a_value_is_refused_rather_than_an_object_array():
    a = Value(2.0)
    for make in (lambda: np.array([1.0, 2.0]) * a, lambda: a * np.array([1.0, 2.0]), lambda: a + np.ones((1,))):
        with pytest.raises(TypeError, match=r"Value.*shape"):
            make()


def test_truth_value_of_a_tensor_follows_numpy():
    assert not Tensor([0.0]) and Tensor([2.0]) and not Tensor(0.0) and Tensor([[1.0]])
    for several in (Tensor([1.0, 2.0]), Tensor(np.ones((2, 2))), Tensor(np.ones(0))):
        with pytest.raises(ValueError, match=r"truth value.*shape"):
            bool(several)


# --- 11. one domain policy for Value and Tensor ---------------------------------------------------------------------

DOMAIN = [
    ("log(-1)", lambda x: x.log(), -1.0, math.nan),
    ("log(0)", lambda x: x.log(), 0.0, -math.inf),
    ("sqrt(-1)", lambda x: x.sqrt(), -1.0, math.nan),
    ("1/0", lambda x: 1.0 / x, 0.0, math.inf),
    ("-1/0", lambda x: -1.0 / x, 0.0, -math.inf),
    ("0/0", lambda x: x / x, 0.0, math.nan),
    ("0**-1", lambda x: x**-1.0, 0.0, math.inf),
    ("(-8)**(1/3)", lambda x: x ** (1 / 3), -8.0, math.nan),
    ("exp(1000)", lambda x: x.exp(), 1000.0, math.inf),
]


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("name, f, x0, expected", DOMAIN, ids=[d[0] for d in DOMAIN])
def test_values_and_tensors_compute_out_of_domain_inputs_alike_and_quietly(name, f, x0, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy either
        v, t = Value(x0), Tensor(x0, requires_grad=True)
        out_v, out_t = f(v), f(t)
        assert same(out_v.data, expected) and same(float(out_t.data), expected)
        out_v.backward()
        out_t.backward()
        assert same(v.grad, float(t.grad))  # the same gradient, whatever IEEE arithmetic makes of it


@pytest.mark.parametrize("name, f, x0, expected", DOMAIN, ids=[d[0] for d in DOMAIN])
def test_detect_anomaly_stops_both_kinds_at_the_first_non_finite_value(name, f, x0, expected):
    for node in (Value(x0, label="x"), Tensor(x0, requires_grad=True, label="x")):
        with autograd.detect_anomaly(), pytest.raises(autograd.AnomalyError, match=r"produced (nan|-?inf)"):
            f(node)
