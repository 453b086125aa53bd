"""Published RNN tutorials reproduced with the engine: WildML's gradient check set-up and its truncated BPTT, and
Gang Chen's RNN equations checked stage by stage.

Sources:
* Denny Britz, "Recurrent Neural Networks Tutorial, Part 2 - Implementing a RNN with Python, Numpy and Theano"
  and "Part 3 - Backpropagation Through Time and Vanishing Gradients" (WildML, 2015): the model
  s_t = tanh(U x_t + W s_{t-1}), o_t = softmax(V s_t), L = -sum_t log o_t[y_t], U, V, W drawn uniform in
  ±sqrt(1/n) (n the number of columns: word_dim for U, hidden_dim for V and W) after ``np.random.seed(10)``;
  the gradient check on ``grad_check_vocab_size = 100``, ``hidden_dim = 10``, ``bptt_truncate = 1000``, input
  [0, 1, 2, 3], targets [1, 2, 3, 4], central differences with ``h = 0.001`` and a relative error
  |backprop - estimate| / (|backprop| + |estimate|) below ``error_threshold = 0.01``; and its ``bptt``
  loop, which sends each L_t back to steps t, t-1, ..., max(0, t - bptt_truncate) (``bptt_truncate = 4`` by
  default). The tutorial prints only pass/fail lines for this check ("Gradient check for parameter U passed."),
  no numbers; its printed losses come from a Reddit corpus not shipped here, so what is reproduced is the set-up,
  the pass criterion and the loop.
* Gang Chen, "A Gentle Tutorial of Recurrent Neural Network with Error Backpropagation" (arXiv:1610.02583, 2016),
  section 2: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h), z_t = softmax(W_hz h_t + b_z), L = -sum_t y_t . log z_t,
  and the gradients it derives: dL/db_z = sum_t (z_t - y_t), dL/dW_hz = sum_t (z_t - y_t) h_t^T,
  dL/dh_t = W_hz^T (z_t - y_t) + W_hh^T ((1 - h_{t+1}^2) * dL/dh_{t+1}), and with
  delta_t = (1 - h_t^2) * dL/dh_t: dL/dW_hh = sum_t delta_t h_{t-1}^T, dL/dW_xh = sum_t delta_t x_t^T,
  dL/db_h = sum_t delta_t. The paper has no numbers; its equations are tested, each stage against the engine's
  node of the same name.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograd import Tensor, check_derivation, log_softmax
from lstm import RNN, bptt
from lstm.models.params import step_name


def wildml_weights(word_dim=100, hidden_dim=10, seed=10):
    """RNNNumpy.__init__ after np.random.seed(10): U, V, W in this order, from numpy's legacy generator."""
    rng = np.random.RandomState(seed)
    U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
    V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
    W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))
    return U, V, W


def wildml_bptt(U, V, W, x, y, bptt_truncate):
    """RNNNumpy.bptt as the tutorial writes it (s[-1] is the zero initial state), ported to return dU, dV, dW."""
    T, hidden = len(y), W.shape[0]
    s = np.zeros((T + 1, hidden))
    o = np.zeros((T, V.shape[0]))
    for t in range(T):
        s[t] = np.tanh(U[:, x[t]] + W @ s[t - 1])
        e = np.exp(V @ s[t] - np.max(V @ s[t]))
        o[t] = e / e.sum()
    dU, dV, dW = np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)
    delta_o = o.copy()
    delta_o[np.arange(T), y] -= 1.0
    for t in reversed(range(T)):
        dV += np.outer(delta_o[t], s[t])
        delta_t = V.T @ delta_o[t] * (1 - s[t] ** 2)
        for step in reversed(range(max(0, t - bptt_truncate), t + 1)):
            dW += np.outer(delta_t, s[step - 1])
            dU[:, x[step]] += delta_t
            delta_t = W.T @ delta_t * (1 - s[step - 1] ** 2)
    return dU, dV, dW


def engine_rnn(U, W):
    """The tutorial's RNN as an `lstm.RNN`: U is weight_ih, W weight_hh, and no biases (the tutorial has none)."""
    hidden = W.shape[0]
    return RNN.from_state_dict({"weight_ih_l0": U, "weight_hh_l0": W, "bias_ih_l0": np.zeros(hidden),
                                "bias_hh_l0": np.zeros(hidden)})


def one_hot(ids, size):
    return np.eye(size)[ids][:, None, :]  # (T, 1, word_dim): sequence first, batch of one


X, Y = [0, 1, 2, 3], [1, 2, 3, 4]


def wildml_loss_and_grads(U, V, W):
    """L = -sum_t log o_t[y_t] through the engine: the RNN, then V and a log-softmax."""
    model = engine_rnn(U, W)
    v = Tensor(V, requires_grad=True, label="V")
    out, _ = model(one_hot(X, U.shape[1]))
    logits = out.reshape(len(X), -1) @ v.swapaxes(0, 1)
    loss = -(log_softmax(logits, axis=-1) * np.eye(V.shape[0])[Y]).sum()
    loss.backward()
    return float(loss.data), model.gradients(), v.grad, out.data.reshape(len(X), -1)


def test_wildml_gradient_check_set_up_passes_its_criterion():
    """The tutorial's check: vocabulary 100, hidden 10, bptt_truncate 1000, h = 0.001, threshold 0.01 on the
    relative error, every element of U, V, W."""
    U, V, W = wildml_weights()
    _, grads, grad_v, _ = wildml_loss_and_grads(U, V, W)
    backprop = {"U": grads["weight_ih_l0"], "V": grad_v, "W": grads["weight_hh_l0"]}
    params = {"U": U, "V": V, "W": W}
    h = 0.001
    for name, array in params.items():
        worst = 0.0
        for index in np.ndindex(array.shape):
            if name == "U" and index[1] not in X:  # columns of words not in the input: both gradients are 0
                assert backprop["U"][index] == 0.0
                continue
            original = array[index]
            array[index] = original + h
            plus = wildml_loss_and_grads(U, V, W)[0]
            array[index] = original - h
            minus = wildml_loss_and_grads(U, V, W)[0]
            array[index] = original
            estimate = (plus - minus) / (2 * h)
            both = abs(backprop[name][index]) + abs(estimate)
            worst = max(worst, abs(backprop[name][index] - estimate) / both if both else 0.0)
        assert worst < 0.01, (name, worst)  # "Gradient check for parameter {name} passed."


@pytest.mark.parametrize("bptt_truncate", [1000, 4, 1, 0])
def test_wildml_bptt_loop_is_truncated_bptt_with_truncate_plus_one_steps(bptt_truncate):
    U, V, W = wildml_weights()
    dU, dV, dW = wildml_bptt(U, V, W, X, Y, bptt_truncate)
    _, grads, grad_v, s = wildml_loss_and_grads(U, V, W)
    np.testing.assert_allclose(dV, grad_v, rtol=0, atol=1e-12)
    # dL_t/ds_t = V^T (o_t - y_t), from the forward values: the weights of bptt's linear loss terms
    o = np.exp(s @ V.T) / np.exp(s @ V.T).sum(axis=1, keepdims=True)
    weights = ((o - np.eye(V.shape[0])[Y]) @ V)[:, None, :]
    parts = bptt(engine_rnn(U, W), one_hot(X, U.shape[1]), weights=weights)
    truncated = parts.truncated(bptt_truncate + 1)  # the loop visits t, ..., t - bptt_truncate
    np.testing.assert_allclose(truncated.gradient["weight_ih_l0"], dU, rtol=0, atol=1e-12)
    np.testing.assert_allclose(truncated.gradient["weight_hh_l0"], dW, rtol=0, atol=1e-12)
    if bptt_truncate >= len(X):  # nothing truncated: the full gradient
        np.testing.assert_allclose(dW, grads["weight_hh_l0"], rtol=0, atol=1e-12)
        assert not np.any(truncated.dropped["weight_hh_l0"])
    else:
        np.testing.assert_allclose(truncated.dropped["weight_hh_l0"], grads["weight_hh_l0"] - dW, rtol=0,
                                   atol=1e-12)


def test_chen_rnn_equations_stage_by_stage():
    """Chen's section 2 on random sizes: every dL/dh_t, delta_t (the engine's z[t], the pre-activation) and
    parameter gradient from his equations, checked against the engine's nodes of the same names."""
    rng = np.random.default_rng(7)
    T, inputs, hidden, classes = 5, 3, 4, 6
    W_xh, W_hh = rng.normal(0, 0.6, (hidden, inputs)), rng.normal(0, 0.6, (hidden, hidden))
    b_h, W_hz, b_z = rng.normal(0, 0.3, hidden), rng.normal(0, 0.6, (classes, hidden)), rng.normal(0, 0.3, classes)
    x, labels = rng.standard_normal((T, inputs)), rng.integers(0, classes, T)
    y = np.eye(classes)[labels]

    # forward, his equations
    h = np.zeros((T + 1, hidden))  # h[-1] = h_0 = 0
    z = np.zeros((T, classes))
    for t in range(T):
        h[t] = np.tanh(W_hh @ h[t - 1] + W_xh @ x[t] + b_h)
        e = np.exp(W_hz @ h[t] + b_z)
        z[t] = e / e.sum()
    # backward, his equations
    d_h, delta = np.zeros((T, hidden)), np.zeros((T, hidden))
    for t in reversed(range(T)):
        d_h[t] = W_hz.T @ (z[t] - y[t]) + (W_hh.T @ delta[t + 1] if t + 1 < T else 0.0)
        delta[t] = (1 - h[t] ** 2) * d_h[t]
    his = {"weight_hh_l0": sum(np.outer(delta[t], h[t - 1]) for t in range(T)),
           "weight_ih_l0": sum(np.outer(delta[t], x[t]) for t in range(T)), "bias_ih_l0": delta.sum(axis=0),
           "bias_hh_l0": delta.sum(axis=0)}  # b_h split in PyTorch's two biases: each gets the whole gradient
    his |= {step_name("h", t + 1): d_h[t][None] for t in range(T)}
    his |= {step_name("z", t + 1): delta[t][None] for t in range(T)}

    # the engine: b_h as bias_ih, bias_hh zero; the output layer and the loss as Tensor operations
    model = RNN.from_state_dict({"weight_ih_l0": W_xh, "weight_hh_l0": W_hh, "bias_ih_l0": b_h,
                                 "bias_hh_l0": np.zeros(hidden)})
    w_hz, b_zt = Tensor(W_hz, requires_grad=True, label="W_hz"), Tensor(b_z, requires_grad=True, label="b_z")
    out, _ = model(x[:, None, :])
    logits = out.reshape(T, hidden) @ w_hz.swapaxes(0, 1) + b_zt
    loss = -(log_softmax(logits, axis=-1) * y).sum()
    loss.label = "L"
    check = check_derivation(loss, {**his, "W_hz": sum(np.outer(z[t] - y[t], h[t]) for t in range(T)),
                                    "b_z": (z - y).sum(axis=0)}, rtol=1e-10, atol=1e-12)
    assert check.first_mismatch is None, str(check)
    assert len(check.checks) == 2 * T + 6
    np.testing.assert_allclose(out.data.reshape(T, hidden), h[:T], rtol=0, atol=1e-14)
