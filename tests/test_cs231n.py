"""Stanford CS231n's checks for convolution, max pooling and the softmax loss, reproduced with our stages.

Where each number comes from (the assignments as students download them; one public copy cited):

1. Assignment 2 (2017), ``assignment2/ConvolutionalNetworks.ipynb``, in github.com/Burton2000/CS231n-2017 (commit
   aaa6b7d66315662cb4b75dcfe6d2e4d6dd38624b), cell "Convolution: Naive forward pass": x (2, 3, 4, 4) =
   linspace(-0.1, 0.5), w (3, 3, 4, 4) = linspace(-0.2, 0.3), b = linspace(-0.1, 0.2, 3), stride 2, pad 1, and
   the ``correct_out`` printed to eight decimals ("difference should be around 2e-8"; the notebook's own run
   prints 2.21214764175e-08).
2. The same notebook, "Max pooling: Naive forward": x (2, 3, 4, 4) = linspace(-0.3, 0.4), 2x2 windows, stride
   2, and its ``correct_out`` ("difference should be around 1e-8").
3. The same notebook's backward checks, "Convolution: Naive backward pass" (np.random.seed(231); x (4, 3, 5, 5),
   w (2, 3, 3, 3), b (2,), dout (4, 2, 5, 5), stride 1, pad 1; "errors should be around 1e-9") and "Max
   pooling: Naive backward" (seed 231; x (3, 2, 8, 8), dout (3, 2, 4, 4); "error should be around 1e-12"):
   the analytic gradients against ``eval_numerical_gradient_array`` (central differences, h = 1e-5), as
   ``cs231n/gradient_check.py`` computes them, written out below.
4. Assignment 1 (2017), ``assignment1/softmax.ipynb`` in the same repository: with W = randn(3073, 10) * 0.0001
   the loss "should be something close to -log(0.1)" = 2.302585 (its run prints 2.398232 on CIFAR-10's dev
   set). CIFAR-10 is not here: the same shapes with standard normal pixels, 500 rows.
"""

from __future__ import annotations

import numpy as np

from autograd import Tensor, conv2d, max_pool2d, softmax_cross_entropy


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """CS231n's relative error, as its notebooks define it."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient_array(f, x: np.ndarray, df: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """CS231n's numeric gradient of sum(f(x) * df), one element at a time (cs231n/gradient_check.py)."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


CONV_CORRECT_OUT = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                              [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                              [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                             [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                              [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                              [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])

POOL_CORRECT_OUT = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                              [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                              [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                             [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                              [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                              [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])


def test_conv_forward_naive_correct_out():
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out = conv2d(Tensor(x), Tensor(w), Tensor(b), stride=2, padding=1).data
    error = rel_error(out, CONV_CORRECT_OUT)
    assert f"{error:.6e}" == "2.212148e-08"  # the difference the notebook's own run prints: 2.21214764175e-08
    assert np.abs(out - CONV_CORRECT_OUT).max() <= 5e-9  # each number to its last printed digit


def test_max_pool_forward_naive_correct_out():
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out = max_pool2d(Tensor(x), 2, stride=2).data
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7
    assert np.abs(out - POOL_CORRECT_OUT).max() <= 5e-9


def test_conv_backward_naive_numeric_check():
    np.random.seed(231)  # CS231n's seed and order of draws (numpy's legacy generator, stable across versions)
    x = np.random.randn(4, 3, 5, 5)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2)
    dout = np.random.randn(4, 2, 5, 5)

    def forward(x, w, b):
        return conv2d(Tensor(x), Tensor(w), Tensor(b), stride=1, padding=1).data

    dx_num = eval_numerical_gradient_array(lambda x: forward(x, w, b), x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: forward(x, w, b), w, dout)
    db_num = eval_numerical_gradient_array(lambda b: forward(x, w, b), b, dout)
    tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    conv2d(tx, tw, tb, stride=1, padding=1).backward(dout)
    errors = [rel_error(tx.grad, dx_num), rel_error(tw.grad, dw_num), rel_error(tb.grad, db_num)]
    assert max(errors) < 1e-8, errors  # "around 1e-9"


def test_max_pool_backward_naive_numeric_check():
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 8)
    dout = np.random.randn(3, 2, 4, 4)
    dx_num = eval_numerical_gradient_array(lambda x: max_pool2d(Tensor(x), 2, stride=2).data, x, dout)
    tx = Tensor(x, requires_grad=True)
    max_pool2d(tx, 2, stride=2).backward(dout)
    assert rel_error(tx.grad, dx_num) < 1e-11  # "around 1e-12"


def test_softmax_sanity_check_loss_near_minus_log_a_tenth():
    rng = np.random.default_rng(231)
    x_dev = np.hstack([rng.standard_normal((500, 3072)), np.ones((500, 1))])  # pixels, then the bias column
    y_dev = rng.integers(0, 10, 500)
    w = Tensor(rng.standard_normal((3073, 10)) * 0.0001, requires_grad=True)
    loss = softmax_cross_entropy(Tensor(x_dev) @ w, y_dev)
    assert abs(loss.item() - -np.log(0.1)) < 0.05, loss.item()
    loss.backward()
    # the gradient CS231n's softmax_loss_vectorized computes: X^T (p - onehot(y)) / N
    scores = x_dev @ w.data
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(w.grad, x_dev.T @ (p - np.eye(10)[y_dev]) / 500, rtol=1e-10, atol=1e-14)
