"""The GRU: model on Tensors (`lstm.GRU`), hand derivation (`lstm.hand.gru`), `compare_gru`, `check_gru_step`,
and agreement with ``torch.nn.GRU`` (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

import lstm
from autograd import Tensor, check_derivation
from lstm import GRU, check_gru_step, compare_gru
from lstm.hand import gru as hand_gru
from lstm.models.params import GATES, GRU_GATES, GRU_STEP_NODES, STEP_NODES, init_params, step_name


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def problem(input_size=3, hidden_size=4, num_layers=2, steps=5, batch=2, seed=0, scale=2.0):
    """Weights scaled up from the init so the gates are not all near 0.5; random x, h0 and loss weights."""
    params = {k: v * scale for k, v in init_params(input_size, hidden_size, num_layers, seed, blocks=3).items()}
    rng = np.random.default_rng(seed + 100)
    x = rng.standard_normal((steps, batch, input_size))
    h0 = rng.standard_normal((num_layers, batch, hidden_size))
    w_out = rng.standard_normal((steps, batch, hidden_size))
    w_h = rng.standard_normal((num_layers, batch, hidden_size))
    return params, x, h0, w_out, w_h


def engine(params, x, h0, w_out, w_h):
    model = GRU.from_state_dict(params)
    xt, ht = Tensor(x, requires_grad=True, label="x"), Tensor(h0, requires_grad=True, label="h0")
    out, h_n = model(xt, ht)
    loss = (out * w_out).sum() + (h_n * w_h).sum()
    loss.label = "L"
    loss.backward()
    return out.data, h_n.data, {**model.gradients(), "x": xt.grad, "h0": ht.grad}, loss


def test_names_are_pytorch_layout_and_do_not_collide_with_the_lstm():
    model = GRU(3, 4, num_layers=2)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {"weight_ih_l0": (12, 3), "weight_hh_l0": (12, 4), "bias_ih_l0": (12,), "bias_hh_l0": (12,),
                      "weight_ih_l1": (12, 4), "weight_hh_l1": (12, 4), "bias_ih_l1": (12,), "bias_hh_l1": (12,)}
    assert [gate.stage for gate in GRU_GATES] == ["reset gate", "update gate", "candidate"]  # nn.GRU: r, z, n
    lstm_names, gru_names = set(STEP_NODES) - {"h"}, set(GRU_STEP_NODES) - {"h"}
    assert not lstm_names & gru_names  # only h is shared: the hidden state, which is the same thing
    assert [gate.pre_activation for gate in GATES] == ["z_i", "z_f", "z_g", "z_o"]


def test_forward_is_the_nn_gru_equations_step_by_step():
    """Written straight from torch.nn.GRU's documented equations, b_hn inside the reset product."""
    params, x, h0, _, _ = problem(num_layers=1)
    out, h_n = GRU.from_state_dict(params)(x, h0)
    w_i, w_h, b_i, b_h = (params[f"{kind}_l0"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    H = 4
    r_, z_, n_ = (slice(k * H, (k + 1) * H) for k in range(3))
    h = h0[0]
    for t in range(x.shape[0]):
        r = sigmoid(x[t] @ w_i[r_].T + b_i[r_] + h @ w_h[r_].T + b_h[r_])
        z = sigmoid(x[t] @ w_i[z_].T + b_i[z_] + h @ w_h[z_].T + b_h[z_])
        n = np.tanh(x[t] @ w_i[n_].T + b_i[n_] + r * (h @ w_h[n_].T + b_h[n_]))
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(out.data[t], h, rtol=0, atol=1e-14)
    np.testing.assert_allclose(h_n.data[0], h, rtol=0, atol=1e-14)


def test_moving_b_hn_out_of_the_reset_product_changes_the_output():
    """Where b_hn sits matters: with it added outside r * (...) (a common paper variant) the numbers differ."""
    params, x, h0, _, _ = problem(num_layers=1)
    out = GRU.from_state_dict(params)(x, h0)[0].data
    moved = dict(params)
    moved["bias_ih_l0"] = params["bias_ih_l0"].copy()
    moved["bias_hh_l0"] = params["bias_hh_l0"].copy()
    moved["bias_ih_l0"][8:] += moved["bias_hh_l0"][8:]
    moved["bias_hh_l0"][8:] = 0.0
    assert np.max(np.abs(GRU.from_state_dict(moved)(x, h0)[0].data - out)) > 1e-3


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_hand_derivation_equals_the_engine_and_every_stage_adjoint(num_layers):
    params, x, h0, w_out, w_h = problem(num_layers=num_layers)
    out, h_n, grads, loss = engine(params, x, h0, w_out, w_h)
    out_h, h_n_h, cache = hand_gru.forward(params, x, h0)
    mine = hand_gru.backward(cache, w_out, w_h, adjoints=True)
    assert np.max(np.abs(out_h - out)) <= 1e-13 and np.max(np.abs(h_n_h - h_n)) <= 1e-13
    for name, value in grads.items():
        np.testing.assert_allclose(mine[name], value, rtol=0, atol=1e-12, err_msg=name)
    check = check_derivation(loss, mine, rtol=1e-10, atol=1e-12)
    assert check.first_mismatch is None
    names = {step_name(kind, t, layer, num_layers) for kind in GRU_STEP_NODES for t in range(1, 6)
             for layer in range(num_layers)}
    assert names <= set(mine) and len(check.checks) == len(names) + len(params) + 2


def test_a_wrong_stage_is_named_by_the_stage_check():
    """The hand derivation with d n = d h * u (the two branches of the update swapped) fails at n[t=5]."""
    params, x, h0, w_out, w_h = problem(num_layers=1)
    *_, loss = engine(params, x, h0, w_out, w_h)
    _, _, cache = hand_gru.forward(params, x, h0)
    mine = hand_gru.backward(cache, w_out, w_h, adjoints=True)
    u, d_h = cache.layers[0].update[-1], mine["h[t=5]"]
    wrong = {"h[t=5]": d_h, "n[t=5]": d_h * u}
    assert check_derivation(loss, wrong, rtol=1e-10, atol=1e-12).first_mismatch.name == "n[t=5]"


def test_gradients_match_finite_differences_through_compare_gru():
    comparison = compare_gru(input_size=2, hidden_size=3, num_layers=2, seq_len=4, batch_size=2, seed=3)
    assert comparison.passed, str(comparison)
    assert comparison.methods == ("GRU (Tensor)", "finite differences")
    assert "GRU gradients" in comparison.title() and "sum(h_n * W_h)" in comparison.notes()[0]
    assert "c_n" not in comparison.quantities


def test_compare_gru_names_the_first_wrong_stage_of_your_derivation():
    def forgot_the_direct_branch(cache, d_out, d_h):
        """d h_{t-1} without the u * h_{t-1} branch of its fork, at every step."""
        grads = hand_gru.backward(cache, d_out, d_h, adjoints=True)
        grads["h0"] = grads["h0"] - grads["h[t=1]"] * cache.layers[0].update[0]
        return grads

    comparison = compare_gru(derivation=forgot_the_direct_branch, include_finite_differences=False)
    assert not comparison.passed
    assert comparison.differences[("h0", "your derivation")].passed is False
    assert comparison.differences[("x", "your derivation")].passed is True
    assert comparison.derivation.first_mismatch.name == "h0"


def test_check_gru_step_accepts_the_right_step_and_names_a_wrong_one():
    def right(step, d_h):
        d_n = d_h * (1 - step.u)
        d_u = d_h * (step.h_prev - step.n)
        d_a_n = d_n * (1 - step.n ** 2)
        d_r = d_a_n * step.hn
        d_hn = d_a_n * step.r
        d_a_u = d_u * step.u * (1 - step.u)
        d_a_r = d_r * step.r * (1 - step.r)
        d_gh = np.concatenate([d_a_r, d_a_u, d_hn], axis=1)
        return {"h[t=1]": d_h, "n[t=1]": d_n, "u[t=1]": d_u, "a_n[t=1]": d_a_n, "r_hn[t=1]": d_a_n,
                "hn[t=1]": d_hn, "r[t=1]": d_r, "a_u[t=1]": d_a_u, "a_r[t=1]": d_a_r,
                "h0": d_h * step.u + d_gh @ step.weight_hh}

    assert check_gru_step(right).first_mismatch is None

    def tanh_derivative_forgotten(step, d_h):
        grads = right(step, d_h)
        grads["a_n[t=1]"] = grads["n[t=1]"]
        return grads

    assert check_gru_step(tanh_derivative_forgotten).first_mismatch.name == "a_n[t=1]"


def test_bad_inputs_are_refused_with_the_shapes():
    model = GRU(3, 4)
    with pytest.raises(ValueError, match=r"x has 2 features"):
        model(np.zeros((2, 1, 2)))
    with pytest.raises(ValueError, match=r"h0 has shape \(1, 2, 4\)"):
        model(np.zeros((2, 1, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="params is missing 'weight_ih_l0'"):
        GRU.from_state_dict({})
    with pytest.raises(ValueError, match=r"expected \(12, 4\)"):
        GRU.from_state_dict({**model.state_dict(), "weight_hh_l0": np.zeros((16, 4))})
    with pytest.raises(ValueError, match=r"x must be \(T, B, 3\)"):
        hand_gru.forward(model.state_dict(), np.zeros((2, 1, 5)))


def test_float32_gru_tracks_float64():
    params, x, h0, _, _ = problem()
    out64 = GRU.from_state_dict(params)(x, h0)[0].data
    out32 = GRU.from_state_dict(params, dtype=np.float32)(x, h0)[0]
    assert out32.dtype == np.float32 and np.max(np.abs(out32.data - out64)) < 1e-5


def test_exported_from_the_package():
    assert lstm.GRU is GRU and lstm.hand.gru is hand_gru and callable(lstm.compare_gru)


# --- torch.nn.GRU: the reference (skipped without torch) ---------------------------------------------------

def torch_gru(params, x, h0, w_out, w_h):
    torch = pytest.importorskip("torch", reason="torch is not installed; the GRU is compared with nn.GRU only "
                                                "where it is")
    num_layers = sum(name.startswith("weight_ih") for name in params)
    input_size, hidden_size = params["weight_ih_l0"].shape[1], params["weight_hh_l0"].shape[1]
    module = torch.nn.GRU(input_size, hidden_size, num_layers).double()
    with torch.no_grad():
        for name, value in params.items():
            getattr(module, name).copy_(torch.from_numpy(value))
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(h0, requires_grad=True)
    out, h_n = module(xt, ht)
    ((out * torch.from_numpy(w_out)).sum() + (h_n * torch.from_numpy(w_h)).sum()).backward()
    grads = {name: getattr(module, name).grad.numpy() for name in params}
    return out.detach().numpy(), h_n.detach().numpy(), {**grads, "x": xt.grad.numpy(), "h0": ht.grad.numpy()}


# PyTorch's own GRU cases, ported: the nn.GRU documentation's example (GRU(10, 20, 2) on input (5, 3, 10) with
# h0 (2, 3, 20)); test_nn.py's test_RNN_cell sizes (input (3, 10), hidden 20, six steps), run as one-layer
# sequences; and the small multi-layer sizes of test_nn.py's RNN gradcheck tests (input 3, hidden 5, 2 layers).
TORCH_CASES = [dict(input_size=10, hidden_size=20, num_layers=2, steps=5, batch=3),
               dict(input_size=10, hidden_size=20, num_layers=1, steps=6, batch=3),
               dict(input_size=3, hidden_size=5, num_layers=2, steps=4, batch=2),
               dict(input_size=1, hidden_size=1, num_layers=1, steps=1, batch=1)]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_equal_to_torch_nn_gru_to_1e_12_in_float64(case):
    params, x, h0, w_out, w_h = problem(**case, scale=1.0)
    expected_out, expected_h, expected = torch_gru(params, x, h0, w_out, w_h)
    out, h_n, grads, _ = engine(params, x, h0, w_out, w_h)
    out_h, h_n_h, cache = hand_gru.forward(params, x, h0)
    mine = hand_gru.backward(cache, w_out, w_h)
    for value in (out, out_h):
        np.testing.assert_allclose(value, expected_out, rtol=0, atol=1e-12)
    for value in (h_n, h_n_h):
        np.testing.assert_allclose(value, expected_h, rtol=0, atol=1e-12)
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value, rtol=0, atol=1e-12, err_msg=f"engine {name}")
        np.testing.assert_allclose(mine[name], value, rtol=0, atol=1e-12, err_msg=f"hand {name}")


def test_zero_h0_is_the_same_as_none_as_in_torch():
    """test_nn.py's test_rnn_initial_hidden_state: an explicit zero initial state equals the default one."""
    params, x, _, _, _ = problem()
    model = GRU.from_state_dict(params)
    np.testing.assert_array_equal(model(x)[0].data, model(x, np.zeros((2, 2, 4)))[0].data)
