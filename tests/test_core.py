"""The graph core shared by Value and Tensor: walks (topological order, consumers), the reverse pass and its
records, functional and higher-order gradients on deep graphs, and the recording modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import autograd
from autograd import AnomalyError, Constant, Tensor, Value
from autograd.core import consumer_counts, current_mode, topological_order


def diamond():
    """x feeds a, b and the root directly; a feeds b: several forks and a repeated parent."""
    x = Value(0.7, label="x")
    a = x * x
    b = a.tanh() + x
    root = a * b + x
    return x, a, b, root


def test_topological_order_puts_inputs_first_and_lists_each_node_once():
    x, a, b, root = diamond()
    order = topological_order(root)
    assert order[-1] is root
    assert len(order) == len(set(order))
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[parent] < position[node]
    assert {x, a, b, root} <= set(order)


def test_consumer_counts_and_consumers_agree():
    x, a, b, root = diamond()
    counts = consumer_counts(root)
    edges = autograd.consumers(root)
    assert counts[root] == 0 and edges[root] == []
    assert counts[x] == 4  # a's two inputs, b's add, root's add
    assert counts[a] == 2  # tanh and the product
    for node, n in counts.items():
        assert len(edges[node]) == n
        for consumer, position in edges[node]:
            assert consumer.parents[position] is node


def test_backpropagate_adjoints_and_seed():
    x, a, b, root = diamond()
    result = autograd.backpropagate(root, 2.0)
    assert result.root is root
    assert result.adjoints[root] == 2.0
    x0 = 0.7
    a0 = x0 * x0
    b0 = math.tanh(a0) + x0
    # d root / d x with a = x^2, b = tanh(a) + x, root = a*b + x
    expected = 2 * x0 * b0 + a0 * ((1 - math.tanh(a0) ** 2) * 2 * x0 + 1) + 1
    assert math.isclose(result.adjoints[x], 2.0 * expected, rel_tol=1e-12)
    assert math.isclose(result.adjoints[a], 2.0 * (b0 + a0 * (1 - math.tanh(a0) ** 2)), rel_tol=1e-12)
    assert result.branches is None


def test_constants_get_no_adjoint_and_unreached_paths_are_skipped():
    x = Value(1.5)
    y = x * 3.0
    result = autograd.backpropagate(y)
    constant = y.parents[1]
    assert constant not in result.adjoints
    t = Tensor(np.ones(2))  # needs no gradient: ops on it alone are not recorded
    u = Tensor(np.ones(2), requires_grad=True)
    out = (t * 2.0 + u).sum()
    adjoints = autograd.backpropagate(out).adjoints
    assert t not in adjoints
    np.testing.assert_array_equal(adjoints[u], np.ones(2))


def test_branch_terms_sum_to_adjoints_everywhere():
    x, a, b, root = diamond()
    result = autograd.backpropagate(root, record_branches=True)
    for node in (x, a, b):
        terms = result.terms(node)
        assert len(terms) == len(autograd.consumers(root)[node])
        assert math.isclose(sum(t.term for t in terms), result.adjoints[node], rel_tol=1e-12)
        for t in terms:
            assert t.consumer.parents[t.position] is node


def test_grad_on_a_deep_chain_with_create_graph():
    # y_{i+1} = tanh(y_i), 100,000 times; first and second derivatives by forward-mode recurrences in floats
    steps, x0 = 100_000, 0.3
    x = Value(x0)
    node = x
    for _ in range(steps):
        node = node.tanh()
    y, d, s = x0, 1.0, 0.0
    for _ in range(steps):
        y = math.tanh(y)
        local = 1 - y * y
        s = -2 * y * local * d * d + local * s
        d = local * d
    g = autograd.grad(node, x, create_graph=True)
    assert math.isclose(node.data, y, rel_tol=1e-9)
    assert math.isclose(g.data, d, rel_tol=1e-9)
    assert math.isclose(autograd.grad(g, x), s, rel_tol=1e-8)
    assert len(autograd.consumers(node)) == steps + 1
    node.backward()
    autograd.zero_grad(node)
    assert x.grad == 0.0


def test_deep_tensor_chain():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    node = x
    for _ in range(50_000):
        node = node * 1.00001
    node.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, math.exp(50_000 * math.log(1.00001))), rtol=1e-9)


def test_grad_rejects_non_nodes_and_fills_zeros():
    x = Value(1.0)
    with pytest.raises(TypeError, match="int"):
        autograd.grad(x * x, [x, 3])
    t = Tensor(np.ones((2, 3)), requires_grad=True)
    other = Tensor(np.ones(4), requires_grad=True)
    gt, go = autograd.grad((t * t).sum(), [t, other])
    np.testing.assert_array_equal(gt, 2 * np.ones((2, 3)))
    np.testing.assert_array_equal(go, np.zeros(4))
    gt, go = autograd.grad((t * t).sum(), [t, other], create_graph=True)
    assert isinstance(go, Tensor) and go.shape == (4,) and not go.data.any()


def test_grad_with_grad_output_for_tensors():
    t0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    seed = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = Tensor(t0, requires_grad=True)
    np.testing.assert_allclose(autograd.grad(t * t, t, seed), 2 * t0 * seed)


def test_modes_restore_after_exceptions():
    before = current_mode()
    for context in (autograd.no_grad, autograd.detect_anomaly):
        with pytest.raises(KeyError), context():
            raise KeyError
        assert current_mode() is before
    with pytest.raises(KeyError), autograd.stage("outer"), autograd.stage("inner"):
        raise KeyError
    assert current_mode() is before and before.stage == ()


def test_no_grad_nests():
    x = Value(1.0)
    with autograd.no_grad():
        with autograd.no_grad():
            pass
        y = x * 2  # still inside the outer no_grad
    assert y.parents == ()
    assert (x * 2).parents[0] is x


def test_where_describes_label_and_stage():
    with autograd.stage("t=2"), autograd.stage("forget gate"):
        v = Value(1.0, label="f")
    assert v.where() == "node 'f' in stage 't=2 / forget gate'"
    assert Value(1.0).where() == "an unlabelled node"


def test_anomaly_error_is_arithmetic():
    assert issubclass(AnomalyError, ArithmeticError)
    with autograd.detect_anomaly(), pytest.raises(ArithmeticError):
        Value(math.nan) + 1.0


def test_anomaly_checks_gradients_with_and_without_create_graph():
    x = Value(5e-324, label="tiny")  # log is finite here, its derivative 1/x overflows
    y = x.log()
    y.label = "L"
    assert math.isfinite(y.data)
    with autograd.detect_anomaly(), pytest.raises(AnomalyError, match="log.*'L'"):
        autograd.grad(y, x)
    with autograd.detect_anomaly(), pytest.raises(AnomalyError, match="div.*backward"):
        autograd.grad(y, x, create_graph=True)  # the recorded backward op that overflows
    assert autograd.grad(y, x) == math.inf


def test_mixing_values_and_tensors_is_refused():
    with pytest.raises(TypeError):
        Tensor(np.ones(2)) * Value(2.0)


def test_central_difference_stencils_have_the_errors_their_orders_promise():
    from autograd.check import central_differences

    x = np.array([0.3, -1.2])

    def quartic() -> float:
        return float(np.sum(x**4))

    exact, eps = 4 * x**3, 1e-2
    # three points: error f'''(x) eps^2 / 6 = 4 x eps^2; five points: exact for polynomials of degree 4
    np.testing.assert_allclose(central_differences(quartic, x, eps) - exact, 4 * x * eps**2, rtol=1e-6)
    np.testing.assert_allclose(central_differences(quartic, x, eps, points=5), exact, rtol=1e-12)
    np.testing.assert_array_equal(x, [0.3, -1.2])  # restored
    with pytest.raises(ValueError, match="points must be 3 or 5"):
        central_differences(quartic, x, eps, points=4)


def test_float32_gradients_stay_float32_however_often_backward_runs():
    w = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    x = np.array([1.0, 2.0, 3.0])  # float64 data meets a float32 weight
    for _ in range(2):
        (w * x).sum().backward()
        assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, 2 * x)


def test_grad_hands_out_fresh_writable_arrays_of_each_inputs_shape():
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    b = Tensor(np.ones((2, 2)), requires_grad=True)
    seed = np.full((2, 2), 3.0)
    ga, gb = autograd.grad(a + b, [a, b], seed)
    assert ga is not gb and not np.shares_memory(ga, seed) and not np.shares_memory(ga, gb)
    (gs,) = autograd.grad(a.sum(), [a])  # sum's rule gives a broadcast (read-only) view: handed out as a copy
    gs += 1
    np.testing.assert_array_equal(gs, np.full((2, 2), 2.0))
    scalar = Tensor(2.0, requires_grad=True)
    assert isinstance(autograd.grad(scalar * scalar, scalar), np.ndarray)
    unused = Tensor(np.ones(3), requires_grad=True)
    np.testing.assert_array_equal(autograd.grad(a.sum(), unused), np.zeros(3))


def test_a_seed_is_checked_in_the_core_for_every_entry_point():
    x = Tensor(np.ones(3), requires_grad=True)
    np.testing.assert_array_equal(autograd.grad(x.sum(), x, 2.0), np.full(3, 2.0))
    with pytest.raises(ValueError, match=r"the gradient given for a tensor of shape \(3,\) has shape \(2,\)"):
        autograd.grad(x * 2, x, np.ones(2))


def test_a_pass_from_a_node_that_needs_no_gradient_is_refused():
    with pytest.raises(ValueError, match="needs no gradient and depends on nothing that does"):
        Tensor(3.0).backward()
    with pytest.raises(ValueError, match="needs no gradient"):
        Constant(2.0).backward()
    with pytest.raises(ValueError, match=r"grad\(\): .*needs no gradient"):
        autograd.grad(Tensor([1.0]).sum(), Tensor([1.0], requires_grad=True))


def test_one_stage_object_entered_inside_itself_restores_each_level():
    outer = autograd.stage("t")
    with outer:
        with outer:
            assert Value(1.0).stage == ("t", "t")
        assert Value(1.0).stage == ("t",)
    assert Value(1.0).stage == ()


def test_detect_anomaly_checks_values_computed_under_no_grad_too():
    with autograd.detect_anomaly(), autograd.no_grad(), np.errstate(divide="ignore"):
        with pytest.raises(autograd.AnomalyError, match=r"log\(array\(1,\)\) produced array\(1,\) containing -inf"):
            Tensor([0.0]).log()
        with pytest.raises(autograd.AnomalyError, match=r"exp\(1000.0\) produced inf"):
            Value(1000.0).exp()


def test_the_record_of_stage_entries_stays_bounded(monkeypatch):
    from autograd import core

    monkeypatch.setattr(core, "MAX_RECORDED_STAGES", 8)
    for i in range(20):  # a loop naming a stage after each batch
        with autograd.stage(f"batch {i}"):
            pass
    assert len(core._ENTRY_ORDER) <= 8
    assert core.entry_order(("batch 19",)) > core.entry_order(("batch 18",))
    assert core.entry_order(("batch 0",)) is None  # forgotten: listings fall back to the order a reader meets
