"""`lstm.RNN`: a plain tanh RNN from the same primitives and conventions as the LSTM, and its gradient flow."""

from __future__ import annotations

import numpy as np
import pytest

from autograd import Tensor, consumers, gradcheck
from lstm import LSTM, RNN, gradient_flow, params
from lstm.checks.flow import plot_flows


def reference_forward(state, x, h0):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), layer by layer, written straight from nn.RNN's equation."""
    sequence, finals = x, []
    for layer in range(h0.shape[0]):
        w_ih, w_hh = state[f"weight_ih_l{layer}"], state[f"weight_hh_l{layer}"]
        b = state[f"bias_ih_l{layer}"] + state[f"bias_hh_l{layer}"]
        h, outputs = h0[layer], []
        for x_t in sequence:
            h = np.tanh(x_t @ w_ih.T + h @ w_hh.T + b)
            outputs.append(h)
        sequence = np.stack(outputs)
        finals.append(h)
    return sequence, np.stack(finals)


def test_parameters_follow_pytorch_nn_rnn_and_the_shared_initialisation():
    model = RNN(3, 4, num_layers=2, seed=5)
    assert {name: p.shape for name, p in model.named_parameters()} == params.parameter_shapes(3, 4, 2, blocks=1)
    assert model.weight_ih_l0.shape == (4, 3) and model.weight_ih_l1.shape == (4, 4)
    drawn = params.init_params(3, 4, 2, seed=5, blocks=1)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, drawn[name])
    again = RNN.from_state_dict(model.state_dict())
    assert (again.input_size, again.hidden_size, again.num_layers) == (3, 4, 2)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_forward_matches_the_equation(num_layers):
    rng = np.random.default_rng(num_layers)
    model = RNN(3, 4, num_layers, seed=1)
    x, h0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((num_layers, 2, 4))
    out, h_n = model(x, h0)
    expected_out, expected_h = reference_forward(model.state_dict(), x, h0)
    np.testing.assert_allclose(out.data, expected_out, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n.data, expected_h, rtol=1e-13, atol=1e-15)
    zeros_out, _ = model(x)
    np.testing.assert_allclose(zeros_out.data, reference_forward(model.state_dict(), x, 0 * h0)[0], rtol=1e-13)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    model = RNN(2, 3, num_layers=2, seed=2)
    x = Tensor(rng.standard_normal((4, 2, 2)), requires_grad=True, label="x")
    h0 = Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True, label="h0")
    weights = rng.standard_normal((4, 2, 3))

    def loss(x, h0, *parameters):
        out, h_n = model(x, h0)
        return (out * weights).sum() + (h_n * h_n).sum()

    result = gradcheck(loss, [x, h0, *model.parameters()], atol=1e-8, rtol=1e-6)
    assert result.passed, str(result)


def test_steps_layers_and_names_follow_the_lstm_conventions():
    model = RNN(2, 3, num_layers=2)
    x = Tensor(np.ones((3, 2, 2)), requires_grad=True, label="x")
    out, h_n = model(x)
    edges = consumers(out.sum() + h_n.sum())
    by_label = {node.label: node for node in edges if node.label}
    assert {"x", "h[t=1, layer 0]", "z[t=3, layer 1]", "h[t=3, layer 1]", "out", "h_n", "W_l1"} <= set(by_label)
    assert by_label["W_l1"].stage == ("layer 1", "weights") and by_label["W_l1"].shape == (3 + 3 + 1, 3)
    assert by_label["h[t=2, layer 0]"].stage == ("t=2", "layer 0", "hidden state")
    assert by_label["h[t=2, layer 0]"].op.name == "tanh" and by_label["h[t=2, layer 0]"].parents[0].label == \
        "z[t=2, layer 0]"
    assert not any(node.stage[:1] == ("t=0",) for node in edges)


def test_bad_state_is_refused():
    with pytest.raises(ValueError, match=r"RNN: h0 has shape \(1, 2, 3\), expected .* \(2, 2, 3\)"):
        RNN(2, 3, num_layers=2)(np.ones((3, 2, 2)), np.zeros((1, 2, 3)))


def test_gradient_flow_of_the_rnn_is_dh_only_and_equals_the_recurrence_worked_by_hand():
    rng = np.random.default_rng(4)
    model = RNN(2, 5, seed=3)
    x = rng.standard_normal((8, 3, 2))
    flow = gradient_flow(model, x, loss="last")
    assert flow.dc is None and "dL/dc_t" not in str(flow)
    # dL/dh_T = 1 (the loss sums the last output); dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) @ W_hh
    out, _ = model(x)
    h, w_hh = out.data, model.weight_hh_l0.data
    d_h = np.ones_like(h[-1])
    expected = [np.linalg.norm(d_h)]
    for t in range(len(h) - 1, 0, -1):
        d_h = (d_h * (1 - h[t] ** 2)) @ w_hh
        expected.append(np.linalg.norm(d_h))
    np.testing.assert_allclose(flow.dh[0], expected[::-1], rtol=1e-12)
    assert len(plot_flows({"RNN": flow}).axes[0].lines) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_open_forget_gates_keep_thousands_of_times_more_of_the_gradient(seed):
    """With PyTorch's initialisation and a loss on the last output, over 30 steps the plain RNN and the LSTM both
    keep almost nothing of the gradient (their forget gates sit near sigmoid(0) = 1/2); the LSTM whose forget gates
    start open (bias 1) keeps over a thousand times more, in h and in c (notebook 5 prints 2,143 and 3,034 times;
    tests/test_highway.py checks its whole account)."""
    x = np.random.default_rng(seed).standard_normal((30, 4, 3))
    flows = {"RNN": gradient_flow(RNN(3, 16, seed=seed), x), "LSTM": gradient_flow(LSTM(3, 16, seed=seed), x),
             "LSTM, forget bias 1": gradient_flow(LSTM(3, 16, seed=seed, forget_bias=1.0), x)}
    kept = {name: flow.dh[0, 0] / flow.dh[0, -1] for name, flow in flows.items()}
    kept_c = {name: flow.dc[0, 0] / flow.dc[0, -1] for name, flow in flows.items() if flow.dc is not None}
    assert kept["RNN"] < 1e-5 and kept["LSTM"] < 1e-5
    assert kept["LSTM, forget bias 1"] > 1e3 * max(kept["RNN"], kept["LSTM"])
    assert kept_c["LSTM, forget bias 1"] > 1e3 * kept_c["LSTM"]
    figure = plot_flows(flows)
    assert len(figure.axes[0].lines) == 5 and figure.axes[0].get_yscale() == "log"


@pytest.mark.parametrize("num_layers", [1, 2])
def test_hand_derivation_equals_the_engine_at_every_named_stage(num_layers):
    """lstm.hand.rnn against the engine: outputs, every gradient, and h[t], z[t] stage by stage."""
    from autograd import Tensor, check_derivation
    from lstm.hand import rnn as hand_rnn

    rng = np.random.default_rng(num_layers)
    model = RNN(3, 4, num_layers, seed=5)
    x, h0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((num_layers, 2, 4))
    w_out, w_h = rng.standard_normal((5, 2, 4)), rng.standard_normal((num_layers, 2, 4))
    xt, ht = Tensor(x, requires_grad=True, label="x"), Tensor(h0, requires_grad=True, label="h0")
    out, h_n = model(xt, ht)
    loss = (out * w_out).sum() + (h_n * w_h).sum()
    loss.backward()
    mine_out, mine_h, cache = hand_rnn.forward(model.state_dict(), x, h0)
    mine = hand_rnn.backward(cache, w_out, w_h, adjoints=True)
    np.testing.assert_allclose(mine_out, out.data, rtol=0, atol=1e-14)
    np.testing.assert_allclose(mine_h, h_n.data, rtol=0, atol=1e-14)
    for name, grad in {**model.gradients(), "x": xt.grad, "h0": ht.grad}.items():
        np.testing.assert_allclose(mine[name], grad, rtol=0, atol=1e-12, err_msg=name)
    check = check_derivation(loss, mine, rtol=1e-10, atol=1e-12)
    assert check.first_mismatch is None and len(check.checks) == 2 * 5 * num_layers + 4 * num_layers + 2


def test_equal_to_torch_nn_rnn_to_1e_12_in_float64():
    """The model and lstm.hand.rnn against torch.nn.RNN (tanh), two layers (skipped without torch)."""
    torch = pytest.importorskip("torch", reason="torch is not installed; the RNN is compared with nn.RNN only where "
                                                "it is")
    from autograd import Tensor
    from lstm.hand import rnn as hand_rnn

    rng = np.random.default_rng(3)
    model = RNN(3, 5, 2, seed=2)
    x, h0, w_out = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 2, 5)), rng.standard_normal((4, 2, 5))
    module = torch.nn.RNN(3, 5, 2).double()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            getattr(module, name).copy_(torch.from_numpy(value))
    xt_torch = torch.tensor(x, requires_grad=True)
    out_torch, _ = module(xt_torch, torch.tensor(h0))
    (out_torch * torch.from_numpy(w_out)).sum().backward()
    xt = Tensor(x, requires_grad=True)
    out, _ = model(xt, h0)
    (out * w_out).sum().backward()
    _, _, cache = hand_rnn.forward(model.state_dict(), x, h0)
    mine = hand_rnn.backward(cache, w_out)
    np.testing.assert_allclose(out.data, out_torch.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(xt.grad, xt_torch.grad.numpy(), rtol=0, atol=1e-12)
    for name, grad in model.gradients().items():
        expected = getattr(module, name).grad.numpy()
        np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(mine[name], expected, rtol=0, atol=1e-12, err_msg=name)
