"""The issue's small CNN through the lens: one box per stage within the notebook's width, explain writing the
convolution's gradients as a correlation and a full convolution and the logits' as p - y, a stage expanded
into its primitives, and check_derivation on a learner's dK, dX and dlogits."""

from __future__ import annotations

import re

import numpy as np
import pytest

import autograd
from autograd import Tensor, check_derivation, conv2d, draw, explain, max_pool2d, softmax_cross_entropy
from autograd.view.draw import WIDTH_BUDGET
from autograd.view.expand import expanded


def small_cnn(seed: int = 7):
    """1x1x6x6 input, two 3x3 filters, ReLU, 2x2 max pooling, a linear layer, softmax with cross-entropy."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((1, 1, 6, 6)).round(1), requires_grad=True, label="X")
    k = Tensor((rng.standard_normal((2, 1, 3, 3)) * 0.5).round(2), requires_grad=True, label="K")
    w = Tensor((rng.standard_normal((3, 8)) * 0.5).round(2), requires_grad=True, label="W")
    y = conv2d(x, k)
    y.label = "Y"
    a = y.relu()
    a.label = "A"
    p = max_pool2d(a, 2)
    p.label = "P"
    z = p.reshape(1, 8) @ w.T
    z.label = "z"
    loss = softmax_cross_entropy(z, [2])
    loss.label = "L"
    return loss, {"X": x, "K": k, "W": w, "Y": y, "A": a, "P": p, "z": z}


def svg_width(drawing) -> int:
    svg = drawing.pipe(format="svg").decode()
    return round(float(re.search(r'<svg width="([\d.]+)pt"', svg)[1]) * 4 / 3)


@pytest.mark.parametrize("view", ["forward", "backward"])
def test_each_stage_is_one_box_and_the_drawing_fits_a_notebook(view):
    loss, _ = small_cnn()
    drawing = draw(loss, view)
    nodes = re.findall(r"^\tn\d+ \[", drawing.source, flags=re.M)
    assert len(nodes) == 8  # X, K, W and one box per stage: conv2d, relu, max_pool2d, the linear layer, the loss
    for stage in ("conv2d(X, K)", "relu(Y)", "max_pool2d(A)", "cross_entropy(z, y)"):
        assert stage in drawing.source
    assert svg_width(drawing) <= WIDTH_BUDGET


def test_explain_writes_the_kernel_gradient_as_a_correlation_and_the_inputs_as_a_full_convolution():
    loss, n = small_cnn()
    text = str(explain(loss, wrt=[n["X"], n["K"]], precision=4))
    assert "dL/dK = correlate(X, dL/dY)" in text
    assert "dL/dX = convolve_full(dL/dY, flip(K))" in text
    assert "K is used at each of the 16 positions of Y (a fork over positions)" in text
    assert "sends its dL/dP to its first maximum" in text
    # the numbers written are the engine's
    grads = autograd.grad(loss, [n["K"], n["X"]])
    assert f"max {grads[0].max():.4g}" in text and f"max {grads[1].max():.4g}" in text


def test_explain_reads_the_logits_gradient_as_p_minus_y():
    loss, n = small_cnn()
    explanation = explain(loss, wrt=n["W"])
    step = explanation.step("z")
    assert step.terms[0].formula == "(p - onehot(y)) / N"
    z = n["z"].data
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(step.adjoint, p - np.eye(3)[[2]])
    text = str(explanation)
    assert "where p = softmax(z) = [[" in text and "y = [2], N = 1" in text


def test_the_stage_expanded_shows_why_p_minus_y_holds():
    loss, n = small_cnn()
    plain = expanded(loss, "softmax_cross_entropy")
    assert plain.item() == pytest.approx(loss.item(), rel=1e-15)
    assert "softmax_cross_entropy" not in {node.op.name for node in autograd.core.topological_order(plain)
                                           if node.op is not None}
    explanation = explain(loss, wrt=n["z"], expand="softmax_cross_entropy")  # z stands for its copy
    assert explanation.steps[-1].name == "z"
    # the shifted logits fork: one branch is the picked log-probability's -onehot(y), the other p
    fork = next(step for step in explanation.steps if step.is_fork and np.shape(step.adjoint) == (1, 3))
    values = sorted((term.value for term in fork.terms), key=lambda v: v.min())
    z = n["z"].data
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(values[0], -np.eye(3)[[2]], atol=1e-15)
    np.testing.assert_allclose(values[1], p, rtol=1e-12)
    np.testing.assert_allclose(fork.adjoint, p - np.eye(3)[[2]], rtol=1e-12)


@pytest.mark.parametrize("stage", ["conv2d", "max_pool2d", "avg_pool2d", "conv1d"])
def test_expanded_stages_give_the_same_numbers_and_gradients(stage):
    rng = np.random.default_rng(0)
    if stage == "conv1d":
        x, w = Tensor(rng.standard_normal((2, 3, 9)), requires_grad=True), Tensor(rng.standard_normal((4, 3, 3)),
                                                                                 requires_grad=True)
        out = autograd.conv1d(x, w, stride=2, padding=1).tanh().sum()
    else:
        x = Tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
        w = Tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
        y = conv2d(x, w, stride=(2, 1), padding=(1, 2)).tanh()
        out = (autograd.max_pool2d(y, 2, 1) if stage == "max_pool2d" else autograd.avg_pool2d(y, (2, 3))).sum()
    plain = expanded(out, stage)
    assert plain.item() == pytest.approx(out.item(), rel=1e-12)
    for mine, theirs in zip(autograd.grad(out, [x, w]), autograd.grad(plain, [x, w])):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_expanded_refuses_what_it_cannot_expand():
    loss, _ = small_cnn()
    with pytest.raises(ValueError, match="cannot be expanded"):
        expanded(loss, "tanh")
    with pytest.raises(TypeError, match="Tensors"):
        expanded(autograd.Value(1.0) * 2, "conv2d")


def learners_backward(n: dict, targets=(2,)):
    """A learner's own CNN backward, CS231n-style, in plain numpy, one stage at a time."""
    x, k, w = n["X"].data, n["K"].data, n["W"].data
    y, a, p, z = n["Y"].data, n["A"].data, n["P"].data, n["z"].data
    probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    dz = (probs - np.eye(3)[list(targets)]) / 1  # p - y, over N = 1 row
    dp = (dz @ w).reshape(p.shape)
    da = np.zeros_like(a)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                window = a[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
                r, s = np.unravel_index(np.argmax(window), window.shape)
                da[0, c, 2 * i + r, 2 * j + s] += dp[0, c, i, j]
    dy = da * (y > 0)
    dk = np.zeros_like(k)
    dx = np.zeros_like(x)
    for f in range(2):
        for i in range(4):
            for j in range(4):
                dk[f, 0] += x[0, 0, i:i + 3, j:j + 3] * dy[0, f, i, j]  # the kernel's fork over positions
                dx[0, 0, i:i + 3, j:j + 3] += k[f, 0] * dy[0, f, i, j]
    return {"z": dz, "Y": dy, "K": dk, "X": dx}


def test_check_derivation_accepts_a_right_cnn_backward():
    loss, n = small_cnn()
    report = check_derivation(loss, learners_backward(n))
    assert report.passed and [c.name for c in report.checks] == ["z", "Y", "K", "X"], str(report)


def test_check_derivation_finds_a_kernel_gradient_that_forgot_the_fork():
    loss, n = small_cnn()
    claims = learners_backward(n)
    dy = claims["Y"]
    x = n["X"].data
    claims["K"] = np.stack([x[0, 0, 0:3, 0:3] * dy[0, f, 0, 0] for f in range(2)])[:, None]  # one position only
    report = check_derivation(loss, claims)
    assert [c.name for c in report.mismatches] == ["K"]
    assert report.first_mismatch is not None and "K" in str(report)


def test_check_derivation_finds_the_missing_division_by_n():
    rng = np.random.default_rng(3)
    z = Tensor(rng.standard_normal((4, 3)), requires_grad=True, label="z")
    targets = np.array([0, 2, 1, 1])
    loss = softmax_cross_entropy(z, targets)
    p = np.exp(z.data) / np.exp(z.data).sum(axis=1, keepdims=True)
    assert check_derivation(loss, {"z": (p - np.eye(3)[targets]) / 4}).passed
    report = check_derivation(loss, {"z": p - np.eye(3)[targets]})
    assert not report.passed and "(p - onehot(y)) / N" in str(report)
