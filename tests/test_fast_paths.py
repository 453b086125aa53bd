"""The reverse pass's shortcuts (issue 14) give the answers of the plain chain rule: sums at forks added in place
only into arrays the pass owns, gradients handed to ``.grad`` without a copy only when no one else holds them,
Values' gradients added as the pass goes (and not at all when detect_anomaly stops it), and primitives that
need the general path say so."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import autograd
from autograd import AnomalyError, Tensor, Value
from autograd import tensor as tensor_module
from autograd.primitives import CONCATENATE, MUL, TANH, Primitive


def test_a_sum_passed_on_to_two_inputs_is_not_added_into_when_one_of_them_gets_more():
    # p is used twice, so its adjoint is a sum the pass owns; p = q + r hands that same array to q and r as their
    # first term; q gets another term from the loss, which must not be added into the array r and p still hold
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    q, r = x * 2.0, x * 3.0
    p = q + r
    loss = (p + p + q).sum()
    adjoints = autograd.backpropagate(loss).adjoints
    np.testing.assert_array_equal(adjoints[p], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(adjoints[r], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(adjoints[q], np.full((2, 3), 3.0))
    loss.backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 3.0 * 2 + 2.0 * 3))


def test_a_weight_used_at_every_step_gathers_its_terms_in_place_to_the_right_sum():
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    xs = [rng.standard_normal((2, 3)) for _ in range(5)]
    g = rng.standard_normal((2, 3))
    h = Tensor(xs[0])
    for x in xs[1:]:
        h = (h @ w).tanh() + x
    h.backward(g)
    # the same product by hand, step by step
    states = [xs[0]]
    for x in xs[1:]:
        states.append(np.tanh(states[-1] @ w.data) + x)
    expected, d_h = np.zeros((3, 3)), g
    for step in range(len(xs) - 1, 0, -1):
        d_pre = d_h * (1 - np.tanh(states[step - 1] @ w.data) ** 2)
        expected += states[step - 1].T @ d_pre
        d_h = d_pre @ w.data.T
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)


def test_leaves_fed_the_same_array_get_gradients_of_their_own():
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    b = Tensor(np.ones((2, 2)), requires_grad=True)
    t = a + b
    (t + t).sum().backward()  # a and b both receive t's adjoint, one array
    assert a.grad is not b.grad
    a.grad += 1.0
    np.testing.assert_array_equal(b.grad, np.full((2, 2), 2.0))


def test_a_gradient_handed_over_without_a_copy_keeps_accumulating():
    a = Tensor(np.ones(3), requires_grad=True)
    loss = (a * 2.0 + a * 3.0).sum()  # a's adjoint is a sum the pass made for it alone
    loss.backward()
    np.testing.assert_array_equal(a.grad, np.full(3, 5.0))
    loss.backward()
    np.testing.assert_array_equal(a.grad, np.full(3, 10.0))
    assert a.grad.dtype == np.float64


def test_float32_leaves_keep_float32_gradients_through_owned_sums():
    a = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (a * np.float32(2) + a * np.float32(3)).sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_array_equal(a.grad, np.full(3, 5.0, dtype=np.float32))


def test_values_get_their_gradients_as_the_pass_goes_and_calls_accumulate():
    x = Value(2.0)
    y = x * x
    z = y * 3.0 + y
    z.backward()
    assert (x.grad, y.grad, z.grad) == (16.0, 4.0, 1.0)
    z.backward()
    assert (x.grad, y.grad, z.grad) == (32.0, 8.0, 2.0)


def test_a_pass_stopped_by_detect_anomaly_leaves_every_grad_as_it_was():
    x = Value(0.0)
    y = x.sqrt()  # 0: finite; its derivative 1 / (2 sqrt(0)) is not
    z = y * 2.0
    loss = z + 1.0
    with autograd.detect_anomaly(), pytest.raises(AnomalyError):
        loss.backward()
    assert (x.grad, y.grad, z.grad, loss.grad) == (0.0, 0.0, 0.0, 0.0)
    x.data = 4.0  # now a pass that detect_anomaly lets through: every node gets its gradient, as without it
    y = x.sqrt()
    z = y * 2.0
    loss = z + 1.0
    with autograd.detect_anomaly():
        loss.backward()
    assert (x.grad, y.grad, z.grad, loss.grad) == (0.5, 2.0, 1.0, 1.0)


def test_a_long_concatenation_gives_each_input_its_own_block():
    pieces = [Tensor(np.full((1, 2), float(k)), requires_grad=True) for k in range(300)]
    out = autograd.concatenate(pieces, axis=0)
    weights = np.arange(600.0).reshape(300, 2)
    (out * weights).sum().backward()
    for k in (0, 1, 150, 299):
        np.testing.assert_array_equal(pieces[k].grad, weights[k:k + 1])
    assert out.params["offsets"][-1] == 300


def test_a_primitive_that_needs_keyword_arguments_must_declare_parameters():
    with pytest.raises(ValueError, match="needs parameters"):
        Primitive("join", "join({x})", None, CONCATENATE.array, CONCATENATE.rules, CONCATENATE.formulas,
                  variadic=True)


@pytest.mark.parametrize("record_branches", [False, True], ids=["plain pass", "recorded pass"])
def test_one_and_two_input_ops_without_parameters_refuse_a_term_of_the_wrong_shape(record_branches):
    # the plain pass writes these ops out (no loop over inputs): its shape check must hold there too
    x = Tensor(np.ones((2, 3)), requires_grad=True, label="x")
    y = Tensor(np.ones((2, 3)), requires_grad=True)
    squashed = dataclasses.replace(TANH, rules=(lambda g, out, x: g.sum(axis=0),))
    lopsided = dataclasses.replace(MUL, rules=(MUL.rules[0], lambda g, out, a, b: g[:1]))
    for node, position, shape in ((tensor_module._apply(squashed, x), 0, r"\(3,\)"),
                                  (tensor_module._apply(lopsided, x, y), 1, r"\(1, 3\)")):
        with pytest.raises(ValueError, match=rf"input {position} has shape {shape}.*\(2, 3\)"):
            autograd.backpropagate(node.sum(), record_branches=record_branches)


def test_the_plain_pass_gives_the_recorded_passes_gradients_on_a_mixed_graph():
    # every path of the plain array pass (one and two inputs, a broadcast, a sum handed on, an in-place rule, a
    # variadic op, an input that needs no gradient) against the general loop of a recorded pass
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    bias = Tensor(rng.standard_normal(3), requires_grad=True)
    fixed = Tensor(rng.standard_normal((4, 3)))
    h = (x @ w + bias).tanh()
    joined = autograd.concatenate([h, fixed, h.sigmoid() * fixed], axis=0)
    loss = ((joined[::2] - joined[1::2]) / (1.0 + joined[:6] * joined[:6])).sum() + (h[0] * h[1]).sum()
    plain = autograd.backpropagate(loss).adjoints
    recorded = autograd.backpropagate(loss, record_branches=True).adjoints
    assert set(plain) == set(recorded)
    for node in (x, w, bias, h, joined):
        np.testing.assert_allclose(plain[node], recorded[node], rtol=1e-13, atol=1e-14)
