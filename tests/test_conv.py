"""Convolution, pooling, softmax with cross-entropy and the elementwise extrema: each primitive against finite
differences (first and second order, random upstream gradients), closed forms, and PyTorch where installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import autograd
from autograd import Tensor, Value, gradcheck
from autograd.check import central_differences
from autograd.functions import (
    avg_pool2d,
    conv1d,
    conv2d,
    cross_entropy,
    max_pool2d,
    maximum,
    minimum,
    softmax_cross_entropy,
)
from autograd.primitives import MAX, MAX_POOL2D, MAXIMUM, SOFTMAX_CROSS_ENTROPY

rng = np.random.default_rng(20)


def leaf(*shape: int, label: str | None = None) -> Tensor:
    return Tensor(rng.standard_normal(shape), requires_grad=True, label=label)


def weighted(y: Tensor, seed: int = 0) -> Tensor:
    """sum(r * y) for a fixed random r: a random upstream gradient, not all ones."""
    r = np.random.default_rng(seed).standard_normal(y.shape)
    return (y * r).sum()


def second_order(f, inputs, seed: int = 1) -> bool:
    """Check the rules of the recorded backward pass (create_graph=True), mixed second derivatives included:
    S = sum_i <v_i, dL/dx_i> for random v_i, differentiated by the engine and by central differences of S (the
    plain first-order gradients at perturbed inputs)."""
    vs = [np.random.default_rng(seed + i).standard_normal(x.shape) for i, x in enumerate(inputs)]

    def s_plain() -> float:
        grads = autograd.grad(f(*inputs), inputs)
        return float(sum((g * v).sum() for g, v in zip(grads, vs)))

    grads = autograd.grad(f(*inputs), inputs, create_graph=True)
    assert all(isinstance(g, Tensor) for g in grads)
    s = sum((g * v).sum() for g, v in zip(grads, vs))
    assert np.isclose(s.item(), s_plain())
    engine = autograd.grad(s, inputs)
    for x, mine in zip(inputs, engine):
        numeric = central_differences(s_plain, x.data, eps=1e-3, points=5)
        np.testing.assert_allclose(mine, numeric, rtol=1e-6, atol=1e-8)
    return True


CONV2D_CASES = [  # (x shape, weight shape, stride, padding)
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 2)),  # batch > 1, non-square kernel, strides and paddings differ
    ((1, 1, 5, 5), (2, 1, 3, 3), 1, 0),
    ((3, 2, 6, 5), (1, 2, 2, 2), 2, 1),  # stride that leaves the last row and column out
    ((1, 2, 4, 4), (3, 2, 4, 4), 1, 0),  # kernel the size of the input
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV2D_CASES)
def test_conv2d_first_and_second_order_against_finite_differences(x_shape, w_shape, stride, padding):
    x, w, b = leaf(*x_shape, label="x"), leaf(*w_shape, label="w"), leaf(w_shape[0], label="b")

    def f(x, w, b):
        return weighted(conv2d(x, w, b, stride=stride, padding=padding).tanh())

    assert gradcheck(f, [x, w, b]), gradcheck(f, [x, w, b])
    assert second_order(f, [x, w, b])


def test_conv2d_closed_form_single_window():
    # one window: the output is sum(x * w), dL/dx = w * g and dL/dw = x * g
    x, w = leaf(1, 2, 3, 3), leaf(1, 2, 3, 3)
    y = conv2d(x, w)
    assert y.shape == (1, 1, 1, 1)
    assert np.isclose(y.item(), (x.data * w.data).sum())
    y.backward(np.array([[[[2.5]]]]))
    np.testing.assert_allclose(x.grad, 2.5 * w.data)
    np.testing.assert_allclose(w.grad, 2.5 * x.data)


def test_conv2d_shared_kernel_gradient_adds_up_over_positions():
    # the kernel forks into every output position: dL/dw is the sum of the per-position terms x_window * g_ij
    x, w = leaf(1, 1, 4, 4), leaf(1, 1, 2, 2)
    g = rng.standard_normal((1, 1, 3, 3))
    conv2d(x, w).backward(g)
    by_position = sum(x.data[0, 0, i:i + 2, j:j + 2] * g[0, 0, i, j] for i in range(3) for j in range(3))
    np.testing.assert_allclose(w.grad[0, 0], by_position)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 2)])
def test_conv1d_first_and_second_order(stride, padding):
    x, w, b = leaf(2, 3, 9), leaf(4, 3, 3), leaf(4)

    def f(x, w, b):
        return weighted(conv1d(x, w, b, stride=stride, padding=padding).tanh())

    assert gradcheck(f, [x, w, b])
    assert second_order(f, [x, w, b])


def test_conv1d_is_conv2d_on_a_row():
    x, w = leaf(2, 3, 9), leaf(4, 3, 3)
    np.testing.assert_allclose(conv1d(x, w, stride=2, padding=1).data,
                               conv2d(x.reshape(2, 3, 1, 9), w.reshape(4, 3, 1, 3), stride=(1, 2),
                                      padding=(0, 1)).data[:, :, 0])


@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("kernel, stride", [(2, None), ((2, 3), (1, 2)), (3, 1), (2, 3)])
def test_pooling_first_and_second_order(pool, kernel, stride):
    x = leaf(2, 3, 7, 8)

    def f(x):
        return weighted(pool(x, kernel, stride).tanh())

    assert gradcheck(f, [x])
    assert second_order(f, [x])


def test_max_pool_routes_the_gradient_to_the_first_maximum_of_a_window():
    # ties in the top-left window; stride 1 makes windows overlap, so an element can collect several terms
    x = Tensor([[[[1.0, 3.0, 3.0],
                  [3.0, 0.0, 2.0],
                  [1.0, 2.0, 0.0]]]], requires_grad=True)
    y = max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(y.data, [[[[3.0, 3.0], [3.0, 2.0]]]])
    y.backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    # window (0,0) ties at (0,1) and (1,0): first in row-major order is (0,1); window (0,1) ties at (0,1), (0,2);
    # window (1,1) ties at (1,2) and (2,1): (1,2) comes first
    np.testing.assert_array_equal(x.grad, [[[[0.0, 11.0, 0.0],
                                             [100.0, 0.0, 1000.0],
                                             [0.0, 0.0, 0.0]]]])
    assert "first maximum" in MAX_POOL2D.formulas[0]


def test_avg_pool_closed_form():
    x = leaf(1, 1, 4, 4)
    y = avg_pool2d(x, 2)
    np.testing.assert_allclose(y.data[0, 0], x.data[0, 0].reshape(2, 2, 2, 2).mean(axis=(1, 3)))
    y.backward(np.array([[[[4.0, 8.0], [12.0, 16.0]]]]))
    np.testing.assert_allclose(x.grad[0, 0], np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))))


def test_softmax_cross_entropy_is_p_minus_y_over_n():
    logits = leaf(5, 4)
    targets = np.array([0, 3, 1, 1, 2])
    loss = softmax_cross_entropy(logits, targets)
    assert np.isclose(loss.item(), cross_entropy(logits, targets).item())
    loss.backward()
    p = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad, (p - np.eye(4)[targets]) / 5)
    assert SOFTMAX_CROSS_ENTROPY.formulas[0].startswith("(p - onehot(y)) / N")


def test_softmax_cross_entropy_first_and_second_order_and_large_logits():
    logits = leaf(3, 2, 5)
    targets = np.array([[0, 4], [2, 2], [1, 3]])
    assert gradcheck(lambda z: softmax_cross_entropy(z * 3.0, targets), [logits])
    assert second_order(lambda z: softmax_cross_entropy(z * 3.0, targets), [logits])
    big = Tensor([[1000.0, 0.0]], requires_grad=True)
    loss = softmax_cross_entropy(big, [1])
    loss.backward()
    assert loss.item() == pytest.approx(1000.0) and np.allclose(big.grad, [[1.0, -1.0]])


def test_maximum_and_minimum_share_ties_and_pass_checks():
    a, b = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([3.0, 2.0, 1.0], requires_grad=True)
    weighted(maximum(a, b)).backward()
    r = np.random.default_rng(0).standard_normal(3)
    np.testing.assert_allclose(a.grad, r * [0.0, 0.5, 1.0])
    np.testing.assert_allclose(b.grad, r * [1.0, 0.5, 0.0])
    # x - y at least 0.1 apart everywhere, so that finite differences never straddle the kink
    y = Tensor([-0.6, -0.1, 0.3, 0.9], requires_grad=True)
    x = Tensor(y.data + rng.choice([-1, 1], (3, 4)) * rng.uniform(0.1, 0.5, (3, 4)), requires_grad=True)
    assert gradcheck(lambda x, y: weighted(maximum(x, y) * minimum(x, y) + minimum(x, 0.3)), [x, y])
    assert second_order(lambda x, y: weighted(maximum(x, y) * minimum(x, y).tanh()), [x, y])
    assert MAXIMUM.formulas[0] == "0 if a < b, 1/2 if a = b, else 1"


@pytest.mark.parametrize("kind", ["Value", "Tensor"])
def test_maximum_and_minimum_pass_the_gradient_on_to_both_inputs_at_a_nan_as_pytorch(kind):
    # PyTorch's rule masks the smaller input only, so at a NaN (no order) both inputs get the whole gradient
    for op in (maximum, minimum):
        if kind == "Value":
            a, b = Value(math.nan), Value(1.0)
        else:
            a, b = Tensor([math.nan, 2.0], requires_grad=True), Tensor([1.0, math.nan], requires_grad=True)
        out = op(a, b)
        out.backward(None if kind == "Value" else np.array([3.0, -2.0]))
        assert np.all(np.isnan(out.data))
        np.testing.assert_array_equal(a.grad, 1.0 if kind == "Value" else [3.0, -2.0])
        np.testing.assert_array_equal(b.grad, 1.0 if kind == "Value" else [3.0, -2.0])


def test_value_max_and_min():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    m = a.max(b) * b.min(1.0) + maximum(a, a)
    m.backward()
    assert m.data == 2.0 * -3.0 + 2.0
    assert a.grad == -3.0 + 1.0  # max(a, a): two halves of one gradient
    assert b.grad == 2.0
    assert gradcheck(lambda a, b: a.max(b) * minimum(b, a).tanh(), [Value(0.3), Value(-0.7)])
    assert maximum(2.0, Value(1.0)).data == 2.0


def test_reduction_max_formula_says_tied_maxima_share():
    x = Tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])
    assert "1/k at each of the k maxima" in MAX.formulas[0]


def test_float32_stays_float32():
    x = Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True, dtype=np.float32)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True, dtype=np.float32)
    y = max_pool2d(conv2d(x, w, padding=1), 2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda: conv2d(leaf(1, 3, 5, 5), leaf(2, 2, 3, 3)), "input has 3 channels"),
    (lambda: conv2d(leaf(3, 5, 5), leaf(2, 3, 3, 3)), "(N, C, H, W)"),
    (lambda: conv2d(leaf(1, 3, 2, 2), leaf(2, 3, 3, 3)), "larger than the input"),
    (lambda: conv2d(leaf(1, 3, 5, 5), leaf(2, 3, 3, 3), stride=0), "stride must be at least 1"),
    (lambda: conv2d(leaf(1, 3, 5, 5), leaf(2, 3, 3, 3), padding=(1, 2, 3)), "padding is an integer or 2"),
    (lambda: conv2d(leaf(1, 3, 5, 5), leaf(2, 3, 3, 3), leaf(3)), "bias must have shape (2,)"),
    (lambda: conv1d(leaf(1, 3, 5, 5), leaf(2, 3, 3)), "(N, C, L)"),
    (lambda: max_pool2d(leaf(1, 1, 3, 3), 4), "larger than the input"),
    (lambda: avg_pool2d(leaf(1, 1, 3, 3), 2, stride=1.5), "stride is an integer"),
    (lambda: softmax_cross_entropy(leaf(2, 3), [0, 3]), "targets must lie in [0, 3)"),
    (lambda: softmax_cross_entropy(leaf(2, 3), [0.0, 1.0]), "integer class indices"),
    (lambda: softmax_cross_entropy(leaf(0, 3), np.zeros(0, dtype=int)), "no rows"),
    (lambda: maximum(1.0, 2.0), "expected a Tensor or a Value"),
])
def test_bad_input_is_refused_with_the_op_and_shapes(call, message):
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    assert message in str(error.value)


# --- PyTorch --------------------------------------------------------------------------------------------------

def torch_grads(torch_fn, arrays, upstream):
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = torch_fn(*ts)
    out.backward(torch.tensor(upstream))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV2D_CASES)
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding):
    torch = pytest.importorskip("torch")
    x, w, b = leaf(*x_shape), leaf(*w_shape), leaf(w_shape[0])
    y = conv2d(x, w, b, stride=stride, padding=padding)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    out, grads = torch_grads(lambda x, w, b: torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding),
                             [x.data, w.data, b.data], g)
    np.testing.assert_allclose(y.data, out, atol=1e-12)
    for mine, theirs in zip([x.grad, w.grad, b.grad], grads):
        np.testing.assert_allclose(mine, theirs, atol=1e-12)


def test_conv1d_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = leaf(2, 3, 11), leaf(4, 3, 4), leaf(4)
    y = conv1d(x, w, b, stride=3, padding=2)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    out, grads = torch_grads(lambda x, w, b: torch.nn.functional.conv1d(x, w, b, stride=3, padding=2),
                             [x.data, w.data, b.data], g)
    np.testing.assert_allclose(y.data, out, atol=1e-12)
    for mine, theirs in zip([x.grad, w.grad, b.grad], grads):
        np.testing.assert_allclose(mine, theirs, atol=1e-12)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("kernel, stride", [(2, None), ((2, 3), (1, 2)), (3, 1)])
def test_pooling_matches_torch_ties_included(name, kernel, stride):
    torch = pytest.importorskip("torch")
    x = Tensor(rng.integers(0, 3, (2, 3, 7, 8)).astype(float), requires_grad=True)  # many ties
    y = {"max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d}[name](x, kernel, stride)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    out, (grad,) = torch_grads(lambda t: getattr(torch.nn.functional, name)(t, kernel, stride), [x.data], g)
    np.testing.assert_allclose(y.data, out, atol=1e-12)
    np.testing.assert_allclose(x.grad, grad, atol=1e-12)


def test_softmax_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    logits, targets = leaf(6, 5), rng.integers(0, 5, 6)
    loss = softmax_cross_entropy(logits, targets)
    loss.backward(np.array(1.7))
    t = torch.tensor(logits.data, requires_grad=True)
    reference = torch.nn.functional.cross_entropy(t, torch.tensor(targets))
    reference.backward(torch.tensor(1.7, dtype=torch.float64))
    assert math.isclose(loss.item(), reference.item(), rel_tol=1e-12)
    np.testing.assert_allclose(logits.grad, t.grad.numpy(), atol=1e-14)


def test_maximum_matches_torch_at_ties():
    torch = pytest.importorskip("torch")
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    weighted(maximum(ta, tb)).backward()
    _, (ga, gb) = torch_grads(torch.maximum, [a, b], np.random.default_rng(0).standard_normal(3))
    np.testing.assert_allclose(ta.grad, ga)
    np.testing.assert_allclose(tb.grad, gb)


def test_empty_batch_and_no_filters():
    x, w = Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True), leaf(2, 3, 3, 3)
    y = conv2d(x, w, padding=1)
    assert y.shape == (0, 2, 5, 5)
    (y.sum() + max_pool2d(x, 2).sum() + avg_pool2d(x, 2).sum()).backward()
    assert x.grad.shape == (0, 3, 5, 5) and np.array_equal(w.grad, np.zeros((2, 3, 3, 3)))
    x, w = leaf(1, 3, 5, 5), Tensor(np.zeros((0, 3, 3, 3)), requires_grad=True)
    y = conv2d(x, w)
    assert y.shape == (1, 0, 3, 3)
    y.sum().backward()
    assert np.array_equal(x.grad, np.zeros((1, 3, 5, 5)))


def test_a_backward_op_called_by_hand_refuses_a_gradient_of_the_wrong_shape():
    from autograd.primitives import CONV_INPUT_GRAD

    g, w = leaf(2, 2, 3, 2), leaf(2, 3, 3, 2)
    with pytest.raises(ValueError, match=r"does not fit an output of spatial size \(3, 3\)"):
        g.apply(CONV_INPUT_GRAD, w, size=(5, 4), stride=(2, 1), padding=(1, 0))


def test_max_pool_nan_wins_its_window_and_takes_the_gradient():
    x = Tensor([[[[1.0, np.nan], [3.0, 2.0]]]], requires_grad=True)
    y = max_pool2d(x, 2)
    y.backward(np.ones((1, 1, 1, 1)))
    assert np.isnan(y.item())
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])
