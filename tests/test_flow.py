"""`lstm.gradient_flow`: the per-step norms equal |dL/dh_t| and |dL/dc_t| worked out with `lstm.hand`."""

from __future__ import annotations

import numpy as np
import pytest

from autograd import Tensor, Value
from lstm import LSTM, GradientFlow, ScalarLSTM, gradient_flow, hand


def hand_state_gradients(params, x, h0, c0, d_out, d_h, d_c):
    """dL/dh_t and dL/dc_t of every layer and step, (L, T, B, H) each, from `lstm.hand` forward/backward only.

    A layer on its own is a one-layer LSTM reading the hidden sequence of the layer below; its "x" gradient is
    what reaches that sequence, so layers are handled top down. Within a layer, step t's states (h_t, c_t) are
    the initial state of the same layer run from t+1 on: that run's dL/dh0, plus the gradient arriving at
    step t from above, is dL/dh_t; its dL/dc0, plus the path through h_t = o_t * tanh(c_t), is dL/dc_t.
    """
    num_layers, (steps, batch, hidden) = h0.shape[0], d_out.shape
    _, _, cache = hand.forward(params, x, (h0, c0))
    dh, dc = np.empty((2, num_layers, steps, batch, hidden))
    from_above = d_out
    for layer in reversed(range(num_layers)):
        own = {name.replace(f"_l{layer}", "_l0"): value for name, value in params.items()
               if name.endswith(f"_l{layer}")}
        saved = cache.layers[layer]
        for t in range(steps):
            h_t, c_t = saved.output_gate[t] * saved.tanh_cell[t], saved.cell[t]
            _, _, rest = hand.forward(own, saved.inputs[t + 1:], (h_t[None], c_t[None]))
            later = hand.backward(rest, from_above[t + 1:], d_h[layer][None], d_c[layer][None])
            dh[layer, t] = from_above[t] + later["h0"][0]
            through_h_t = dh[layer, t] * saved.output_gate[t] * (1 - saved.tanh_cell[t] ** 2)
            dc[layer, t] = later["c0"][0] + through_h_t
        _, _, whole = hand.forward(own, saved.inputs, (h0[layer][None], c0[layer][None]))
        from_above = hand.backward(whole, from_above, d_h[layer][None], d_c[layer][None])["x"]
    return dh, dc


def norms(gradients):
    return np.sqrt((gradients ** 2).sum(axis=(2, 3)))


def weighted_loss(weights):
    w_out, w_h, w_c = weights

    def loss(out, state):
        h, c = state
        if isinstance(out, Tensor):
            return (out * w_out).sum() + (h * w_h).sum() + (c * w_c).sum()
        pairs = [pair for nodes, ws in zip((out, h, c), weights) for pair in zip(nodes.flat, ws.flat)]
        return sum((node * float(w) for node, w in pairs), Value(0.0))

    return loss


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("loss", ["last", "sum", "weighted"])
def test_norms_equal_the_hand_derived_state_gradients(num_layers, loss):
    rng = np.random.default_rng(num_layers)
    steps, batch, input_size, hidden = 10, 3, 2, 4
    x = rng.standard_normal((steps, batch, input_size))
    h0, c0 = rng.standard_normal((2, num_layers, batch, hidden))
    d_h, d_c = np.zeros((2, num_layers, batch, hidden))
    if loss == "last":
        d_out = np.zeros((steps, batch, hidden))
        d_out[-1] = 1.0
    elif loss == "sum":
        d_out = np.ones((steps, batch, hidden))
    else:
        d_out = rng.standard_normal((steps, batch, hidden))
        d_h, d_c = rng.standard_normal((2, num_layers, batch, hidden))
    model = LSTM(input_size, hidden, num_layers, seed=3)
    chosen = weighted_loss((d_out, d_h, d_c)) if loss == "weighted" else loss
    flow = gradient_flow(model, x, (h0, c0), loss=chosen)
    dh, dc = hand_state_gradients(model.state_dict(), x, h0, c0, d_out, d_h, d_c)
    assert flow.dh.shape == flow.dc.shape == (num_layers, steps)
    np.testing.assert_allclose(flow.dh, norms(dh), rtol=1e-10)
    np.testing.assert_allclose(flow.dc, norms(dc), rtol=1e-10)


def test_scalar_and_tensor_models_show_the_same_flow():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 2, 2))
    for loss in ("last", "sum"):
        tensor_flow = gradient_flow(LSTM(2, 3, 2), x, loss=loss)
        scalar_flow = gradient_flow(ScalarLSTM(2, 3, 2), x, loss=loss)
        np.testing.assert_allclose(scalar_flow.dh, tensor_flow.dh, rtol=1e-12)
        np.testing.assert_allclose(scalar_flow.dc, tensor_flow.dc, rtol=1e-12)


def test_a_loss_on_the_last_output_shows_the_gradient_vanishing_backwards():
    x = np.random.default_rng(0).standard_normal((40, 4, 1))
    flow = gradient_flow(LSTM(1, 8), x, loss="last")
    assert flow.dh[0, 0] < 1e-3 * flow.dh[0, -1]
    assert flow.dc[0, 0] < 1e-3 * flow.dc[0, -1]
    # with the default small weights the decay is steady: mostly downhill going back in time
    assert np.mean(np.diff(np.log(flow.dh[0])) > 0) > 0.9


def test_parameter_gradients_are_left_alone():
    model = LSTM(2, 3)
    gradient_flow(model, np.ones((4, 1, 2)))
    assert all(p.grad is None for p in model.parameters())


def test_float32_model():
    flow = gradient_flow(LSTM(2, 3, dtype=np.float32), np.ones((5, 2, 2)))
    reference = gradient_flow(LSTM(2, 3), np.ones((5, 2, 2)))
    assert flow.dh.dtype == np.float64
    np.testing.assert_allclose(flow.dh, reference.dh, rtol=1e-4)


def test_table_lists_every_step_and_layer():
    flow = gradient_flow(LSTM(2, 3, 2), np.ones((4, 1, 2)), loss="sum")
    text = str(flow)
    lines = text.splitlines()
    assert lines[0] == "gradient flow through time (loss: sum of all outputs)"
    assert lines[1].split() == ["t", "|dL/dh_t|", "l0", "|dL/dh_t|", "l1",
                                "|dL/dc_t|", "l0", "|dL/dc_t|", "l1"]
    assert len(lines) == 2 + 4
    assert float(lines[2].split()[1]) == pytest.approx(flow.dh[0, 0], rel=1e-3)


def test_plot_returns_a_figure_and_writes_a_png(tmp_path):
    flow = gradient_flow(LSTM(1, 4, 2), np.ones((6, 1, 1)))
    path = tmp_path / "plots" / "flow.png"
    figure = flow.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["flow.png"]  # written atomically: no temporary left
    axes = figure.axes[0]
    assert len(axes.lines) == 4 and axes.get_yscale() == "log"
    assert flow.plot() is not figure


def test_bad_losses_are_refused():
    model = LSTM(1, 2)
    with pytest.raises(ValueError, match="loss must be 'last', 'sum' or a function"):
        gradient_flow(model, np.ones((3, 1, 1)), loss="first")
    with pytest.raises(ValueError, match="the loss must be a scalar node"):
        gradient_flow(model, np.ones((3, 1, 1)), loss=lambda out, state: out)


def test_result_type():
    assert isinstance(gradient_flow(LSTM(1, 2), np.ones((2, 1, 1))), GradientFlow)
