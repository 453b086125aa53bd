"""BPTT taken apart (`lstm.bptt`): step contributions that add up to .grad, the T x T reach matrix |dL_t/dh_k|,
and truncated BPTT, each checked against an independent computation with the engine."""

from __future__ import annotations

import numpy as np
import pytest

from autograd import Tensor
from lstm import GRU, LSTM, RNN, bptt
from lstm.checks.bptt import plot_reach

T, B, INPUT, H = 6, 2, 3, 4
MODELS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def setup(kind, num_layers, seed=0):
    rng = np.random.default_rng(seed)
    model = MODELS[kind](INPUT, H, num_layers, seed=seed + 1)
    x = rng.standard_normal((T, B, INPUT))
    shape = (num_layers, B, H)
    state = (rng.standard_normal(shape), rng.standard_normal(shape)) if kind == "LSTM" else rng.standard_normal(shape)
    weights = rng.standard_normal((T, B, H))  # random upstream gradients, never all ones
    return model, x, state, weights


def engine_gradient(model, x, state, weights):
    fresh = type(model).from_state_dict(model.state_dict())
    out = fresh(x, state)[0]
    (out * weights).sum().backward()
    return fresh.gradients()


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", list(MODELS))
def test_step_contributions_sum_to_grad_within_1e_12(kind, num_layers):
    model, x, state, weights = setup(kind, num_layers)
    parts = bptt(model, x, state, weights)
    grads = engine_gradient(model, x, state, weights)
    assert set(parts.contributions) == set(grads)
    for name, grad in grads.items():
        assert parts.contributions[name].shape == (T, *grad.shape)
        assert np.max(np.abs(parts.contributions[name].sum(axis=0) - grad)) <= 1e-12, name
        assert np.max(np.abs(parts.gradient[name] - grad)) <= 1e-12, name
        # a step's use of W cannot change an earlier loss term
        upper = np.triu(np.ones((T, T), dtype=bool), 1)
        assert not np.any(parts.by_loss[name][upper])
    assert all(p.grad is None or not np.any(p.grad) for p in model.parameters())  # .grad left untouched


def test_rnn_last_step_contribution_is_the_one_step_outer_product():
    """Step T's use of W_hh is reached by L_T only: dL_T/dz_T = w_T * (1 - h_T^2), times h_{T-1}."""
    model, x, state, weights = setup("RNN", 1)
    run = model.unroll(x, state)
    h_last, h_before = run.hidden[0][-1].data, run.hidden[0][-2].data
    d_z = weights[-1] * (1 - h_last ** 2)
    parts = bptt(model, x, state, weights)
    np.testing.assert_allclose(parts.contributions["weight_hh_l0"][-1], d_z.T @ h_before, rtol=0, atol=1e-14)
    np.testing.assert_allclose(parts.contributions["weight_ih_l0"][-1], d_z.T @ x[-1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind", list(MODELS))
def test_reach_matrix_is_dlt_dhk_computed_from_step_k_on(kind):
    """|dL_t/dh_k| against an independent pass: the model restarted at step k + 1 from h_k as a leaf."""
    model, x, state, weights = setup(kind, 1)
    parts = bptt(model, x, state, weights)
    run = model.unroll(x, state)
    assert not np.any(np.triu(parts.reach, 1))
    for t in range(1, T + 1):
        assert parts.reach[t - 1, t - 1] == pytest.approx(np.linalg.norm(weights[t - 1]), rel=1e-12)
        for k in range(1, t):
            h_k = Tensor(run.hidden[0][k - 1].data[None], requires_grad=True)
            restart = (h_k, run.cell[0][k - 1].data[None]) if kind == "LSTM" else h_k
            out = type(model).from_state_dict(model.state_dict())(x[k:t], restart)[0]
            (out[-1] * weights[t - 1]).sum().backward()
            assert parts.reach[t - 1, k - 1] == pytest.approx(np.linalg.norm(h_k.grad), rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("k", [1, 2, 4])
def test_truncated_bptt_is_each_loss_sent_back_k_steps(kind, k):
    """Truncation against a direct computation: L_t differentiated through steps t-k+1 ... t only, the state
    before them a constant; and the dropped part is the full gradient minus it."""
    model, x, state, weights = setup(kind, 1)
    parts = bptt(model, x, state, weights)
    truncated = parts.truncated(k)
    run = model.unroll(x, state)
    expected = {name: np.zeros(p.shape) for name, p in model.named_parameters()}
    for t in range(1, T + 1):
        start = max(0, t - k)  # steps start+1 ... t are differentiated
        if start == 0:
            restart = state
        elif kind == "LSTM":
            restart = (run.hidden[0][start - 1].data[None], run.cell[0][start - 1].data[None])
        else:
            restart = run.hidden[0][start - 1].data[None]
        fresh = type(model).from_state_dict(model.state_dict())
        out = fresh(x[start:t], restart)[0]
        (out[-1] * weights[t - 1]).sum().backward()
        for name, grad in fresh.gradients().items():
            expected[name] += grad
    full = engine_gradient(model, x, state, weights)
    for name in expected:
        np.testing.assert_allclose(truncated.gradient[name], expected[name], rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(truncated.dropped[name], full[name] - expected[name], rtol=0, atol=1e-12)
    if k == 1:  # truncating at one step does drop something: the recurrence matters
        assert np.max(np.abs(truncated.dropped["weight_hh_l0"])) > 1e-3


def test_truncation_at_t_steps_drops_nothing_and_bad_k_is_refused():
    model, x, state, weights = setup("GRU", 1)
    parts = bptt(model, x, state, weights)
    assert all(not np.any(d) for d in parts.truncated(T).dropped.values())
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            parts.truncated(bad)


def test_bad_arguments_are_refused():
    model, x, state, weights = setup("RNN", 1)
    with pytest.raises(ValueError, match=r"weights must have the outputs' shape \(6, 2, 4\)"):
        bptt(model, x, state, weights[:3])
    with pytest.raises(TypeError, match="LSTM, RNN or GRU"):
        bptt(object(), x)
    with pytest.raises(ValueError, match="layer 3 out of range"):
        bptt(model, x, state, weights, layer=3)


def test_reach_prints_as_a_lower_triangle():
    model, x, state, weights = setup("LSTM", 1)
    text = str(bptt(model, x, state, weights))
    lines = text.splitlines()
    assert lines[0].startswith("LSTM: |dL_t/dh_k|") and len(lines) == T + 2
    assert len(lines[2].split()) == 2 and len(lines[-1].split()) == T + 1


def test_heat_map_fits_in_1000_px(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    runs = {}
    for kind in MODELS:
        model, x, state, weights = setup(kind, 1)
        runs[kind] = bptt(model, x, state, weights)
    path = tmp_path / "reach.png"
    plot_reach(runs, path)
    width, height = Image.open(path).size
    assert width <= 1000 and height <= 1000
