"""A teacher's verdict for each common mistake, planted in a derivation written by hand, found at the node where it
is made: one LSTM step (`check_step`), whole sequences of the Tensor and scalar LSTMs and of the RNN (with their
initial states), an MLP on Tensors with a squared error, and Matt Mazur's network on Values. Shapes are random;
a right derivation gets no verdict over many seeds, and neither does a difference no classic mistake explains.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from autograd import Tensor, Value, check_derivation
from lstm import LSTM, RNN, ScalarLSTM, hand
from lstm.checks.step import check_step
from lstm.models.lstm import labelled_values
from lstm.models.params import init_params, step_name

SEEDS = range(4)


def sizes(seed):
    """Random small sizes (input, hidden, batch, steps), the hidden size at least 2 so that a matrix differs
    from its transpose and the batch at least 2 so that a sum over it is one."""
    rng = np.random.default_rng(100 + seed)
    return tuple(int(n) for n in (rng.integers(2, 5), rng.integers(2, 5), rng.integers(2, 4), rng.integers(2, 4)))


def verdict(report):
    first = report.first_mismatch
    assert first is not None, str(report)
    assert first.diagnosis is not None, str(report)
    return first.name, first.diagnosis.kind, first.diagnosis.text


# --- one LSTM step, as check_step sets it ---------------------------------------------------------------------

def step_backward(step, d_h, d_c, mistake=None):
    """One step's backward pass by hand (`check_step`'s exercise), right or with one mistake planted."""
    hidden = step.h.shape[1]
    d_o, d_tanh_c = d_h * step.tanh_c, d_h * step.o
    d_c = d_tanh_c * (1 - step.tanh_c ** 2) + d_c
    d_f, d_i, d_g = d_c * step.c_prev, d_c * step.g, d_c * step.i
    forget_slope = step.f if mistake == "value for its derivative" else step.f * (1 - step.f)
    d_z = {"i": d_i * step.i * (1 - step.i), "f": d_f * forget_slope, "g": d_g * (1 - step.g ** 2),
           "o": d_o * step.o * (1 - step.o)}
    if mistake == "sign flipped":
        d_z["f"] = -d_z["f"]
    d_z_all = np.concatenate([d_z[gate] for gate in "ifgo"], axis=1)
    d_weight_hh = d_z_all.T @ step.h_prev
    weight_hh = step.weight_hh - 0.1 * d_weight_hh if mistake == "updated weights" else step.weight_hh
    blocks = {gate: weight_hh[k * hidden:(k + 1) * hidden] for k, gate in enumerate("ifgo")}
    gates = {"branch missing": "ifo", "branch counted twice": "iffgo"}.get(mistake, "ifgo")
    d_h_prev = sum(d_z[gate] @ blocks[gate] for gate in gates)
    d_c_prev = d_c if mistake == "taken as 1" else d_c * step.f
    d_x = d_z_all @ step.weight_ih
    claims = {"h": d_h, "tanh_c": d_tanh_c, "c": d_c, "o": d_o, "g": d_g, "f": d_f, "i": d_i,
              **{f"z_{gate}": d_z[gate] for gate in "ifgo"}}
    if mistake == "scaled":
        claims["o"] = 0.5 * d_o
    if mistake == "wrong node":
        claims["g"] = d_i  # the input gate's number written for the cell candidate's
    claims = {step.name(kind): value for kind, value in claims.items()}
    claims.update({"h0": d_h_prev, "c0": d_c_prev, "x": d_x.T if mistake == "transposed" else d_x,
                   "weight_hh_l0": d_weight_hh,
                   "bias_ih_l0": d_z_all if mistake == "not summed" else d_z_all.sum(axis=0)})
    return claims


STEP_VERDICTS = {  # the mistake: where it is found
    "sign flipped": "z_f[t=1]", "scaled": "o[t=1]", "wrong node": "g[t=1]", "value for its derivative": "z_f[t=1]",
    "branch missing": "h0", "branch counted twice": "h0", "taken as 1": "c0", "transposed": "x",
    "not summed": "bias_ih_l0", "updated weights": "h0",
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mistake", list(STEP_VERDICTS))
def test_each_mistake_in_one_lstm_step_gets_its_verdict_at_its_node(mistake, seed):
    inputs, hidden, batch, _ = sizes(seed)
    if mistake == "transposed" and inputs == batch:
        inputs += 1  # a square dL/dx would hide the transpose from the shape: told by its values instead
    report = check_step(lambda *args: step_backward(*args, mistake=mistake), input_size=inputs,
                        hidden_size=hidden, batch=batch, seed=seed)
    name, kind, text = verdict(report)
    assert (name, kind) == (STEP_VERDICTS[mistake], mistake), text
    lines = str(report).splitlines()
    assert lines[2].strip() == text[0].upper() + text[1:] + ("" if text.endswith((".", "?")) else ".")
    assert lines[3].lstrip().startswith("yours:")  # the verdict comes above the arrays


def test_the_verdicts_say_what_a_teacher_would():
    def text(mistake):
        return verdict(check_step(lambda *args: step_backward(*args, mistake=mistake)))[2]

    assert "sign flipped (-1x)" in text("sign flipped")
    assert text("scaled").startswith("yours is 0.5x the engine's everywhere: the 1/2 of the squared error")
    assert text("wrong node").startswith("yours is the engine's dL/di[t=1], another node's gradient (t=1 / layer 0 "
                                         "/ input gate)")
    assert text("branch missing") == ("yours equals the input gate's, forget gate's and output gate's branches only; "
                                      "the cell candidate's is missing")
    assert text("branch counted twice").startswith("yours counts the branch through the forget gate twice")
    assert "to be 1, where it is f[t=1]" in text("taken as 1")
    assert "to be f[t=1] itself (the value, not its derivative)" in text("value for its derivative")
    assert text("transposed").startswith("yours is transposed: shape (3, 2) where x is (2, 3)")
    assert text("not summed").startswith("yours is not summed over the batch (axis 0 of yours): shape (2, 16) "
                                         "where bias_ih_l0 is (16,)")
    assert text("not summed").endswith("(summed, yours agrees)")
    assert text("updated weights").startswith("yours is what the weights after the update give: W (made from "
                                              "weight_ih_l0, weight_hh_l0, bias_ih_l0 and bias_hh_l0) replaced by "
                                              "W - 0.1·dL/dW (a learning rate of 0.1)")


def test_a_square_array_transposed_is_told_by_its_values():
    W = Tensor(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True, label="W")
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3)), label="x")
    loss = ((x @ W).tanh() * np.arange(6.0).reshape(2, 3)).sum()
    loss.backward()
    name, kind, text = verdict(check_derivation(loss, {"W": W.grad.T}))
    assert (name, kind) == ("W", "transposed") and "W is square" in text


def test_a_broadcast_axis_not_summed_is_named():
    bias = Tensor(np.array([[0.5], [-1.0]]), requires_grad=True, label="bias")  # (2, 1), broadcast to (2, 3)
    x = Tensor(np.arange(6.0).reshape(2, 3) / 7, label="x")
    loss = ((x + bias).tanh() ** 2).sum()
    loss.backward()
    per_copy = 2 * (x.data + bias.data) * 0 + 2 * np.tanh(x.data + bias.data) * (1 - np.tanh(x.data + bias.data) ** 2)
    name, kind, text = verdict(check_derivation(loss, {"bias": per_copy}))
    assert (name, kind) == ("bias", "not summed")
    assert "the broadcast axis 1 (where bias has size 1)" in text and text.endswith("(summed, yours agrees)")


def test_a_shape_no_mistake_explains_is_still_refused():
    W = Tensor(np.ones((2, 3)), requires_grad=True, label="W")
    loss = (Tensor(np.ones((1, 2))) @ W).sum()
    with pytest.raises(ValueError, match=r"has shape \(4,\), but W is of shape \(2, 3\), and neither a transpose"):
        check_derivation(loss, {"W": np.ones(4)})


# --- whole sequences: the LSTMs and the RNN, with their initial states ----------------------------------------

def lstm_backward(cache, d_out, mistake=None, at=1):
    """A one-layer LSTM's backward pass through a whole sequence, by hand, with one mistake planted at step
    ``at`` (or none): the stage gradients by node name, and h0 and c0 (1, B, H)."""
    saved, params = cache.layers[0], cache.params
    steps, _, hidden = saved.cell.shape
    weight_hh = params["weight_hh_l0"]
    if mistake == "updated weights":
        right = lstm_backward(cache, d_out)
        weight_hh = weight_hh - 0.5 * right["dW_hh"]
    claims, d_zs = {}, [None] * steps
    d_h_next = d_c_next = 0.0
    for t in range(steps, 0, -1):
        here = t == at
        i, f, g, o = (getattr(saved, name)[t - 1] for name in ("input_gate", "forget_gate", "cell_candidate",
                                                               "output_gate"))
        tanh_c, c_prev = saved.tanh_cell[t - 1], saved.c_prev[t - 1]
        d_h = d_out[t - 1] + d_h_next
        d_o, d_tanh_c = d_h * tanh_c, d_h * o
        d_c = d_tanh_c * (1 - tanh_c ** 2) + d_c_next
        d_f, d_i, d_g = d_c * c_prev, d_c * g, d_c * i
        slope = f if here and mistake == "value for its derivative" else f * (1 - f)
        d_z = {"i": d_i * i * (1 - i), "f": d_f * slope, "g": d_g * (1 - g ** 2), "o": d_o * o * (1 - o)}
        claimed_z_f = -d_z["f"] if here and mistake == "sign flipped" else d_z["f"]
        d_zs[t - 1] = np.concatenate([d_z[gate] for gate in "ifgo"], axis=1)
        blocks = {gate: (weight_hh if here else params["weight_hh_l0"])[k * hidden:(k + 1) * hidden]
                  for k, gate in enumerate("ifgo")}
        gates = {"branch missing": "ifo", "branch counted twice": "iffgo"}.get(mistake, "ifgo") if here else "ifgo"
        d_h_next = sum(d_z[gate] @ blocks[gate] for gate in gates)
        d_c_next = d_c if here and mistake == "taken as 1" else d_c * f
        named = {"h": d_h, "tanh_c": d_tanh_c, "c": d_c, "o": 0.5 * d_o if here and mistake == "scaled" else d_o,
                 "g": d_g, "f": d_f, "i": d_i, **{f"z_{gate}": d_z[gate] for gate in "ifgo"}, "z_f": claimed_z_f}
        claims.update({step_name(kind, t): value for kind, value in named.items()})
    if mistake == "wrong node":  # step at+1's gradient written for step at's
        claims[step_name("c", at)] = claims[step_name("c", at + 1)]
    d_z_all = np.stack(d_zs)
    if mistake == "not summed":  # the bias's gradient left per step and per example
        claims["bias_hh_l0"] = d_z_all
    return {**claims, "h0": d_h_next[None], "c0": d_c_next[None],
            "dW_hh": np.tensordot(d_z_all, saved.h_prev, axes=([0, 1], [0, 1]))}


# the mistake: (the step it is planted at, the node where it is found, the same for ScalarLSTM's elements)
SEQUENCE_VERDICTS = {
    "sign flipped": (2, "z_f[t=2]"), "scaled": (2, "o[t=2]"), "value for its derivative": (2, "z_f[t=2]"),
    "branch missing": (2, "h[t=1]"), "taken as 1": (1, "c0"), "wrong node": (1, "c[t=1]"),
    "updated weights": (1, "h0"), "branch counted twice": (2, "h[t=1]"), "not summed": (None, "bias_hh_l0"),
}


def lstm_sequence(model_name, seed):
    inputs, hidden, batch, steps = sizes(seed)
    steps = max(steps, 2)
    rng = np.random.default_rng(seed)
    params = {name: 2 * array for name, array in hand.init_params(inputs, hidden, seed=seed).items()}
    x = rng.standard_normal((steps, batch, inputs))
    h0, c0 = 0.5 * rng.standard_normal((2, 1, batch, hidden))
    weights = rng.standard_normal((steps, batch, hidden))
    _, _, cache = hand.forward(params, x, (h0, c0))
    if model_name == "LSTM":
        state = tuple(Tensor(array, requires_grad=True, label=name) for array, name in ((h0, "h0"), (c0, "c0")))
        out, _ = LSTM.from_state_dict(params)(Tensor(x, label="x"), state)
        loss = (out * weights).sum()
    else:
        state = (labelled_values(h0, "h0"), labelled_values(c0, "c0"))
        out, _ = ScalarLSTM.from_state_dict(params)(x, state)
        loss = Value(0.0)
        for node, weight in zip(out.flat, weights.flat):
            loss = loss + node * float(weight)
    loss.label = "L"
    return loss, cache, weights


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("model_name", ["LSTM", "ScalarLSTM"])
@pytest.mark.parametrize("mistake", list(SEQUENCE_VERDICTS))
def test_each_mistake_in_a_whole_lstm_sequence_gets_the_verdict_one_step_gets(mistake, model_name, seed):
    loss, cache, weights = lstm_sequence(model_name, seed)
    at, where = SEQUENCE_VERDICTS[mistake]
    claims = lstm_backward(cache, weights, mistake, at)
    claims.pop("dW_hh")
    if mistake == "not summed" and model_name == "ScalarLSTM":  # per gate: the forget gate's bias b_hf
        hidden = claims["h0"].shape[-1]
        claims["b_hf"] = claims.pop("bias_hh_l0")[..., hidden:2 * hidden]
        where = "b_hf"
    name, kind, text = verdict(check_derivation(loss, claims))
    assert name.split("][")[0] + ("]" if "][" in name else "") == where or name.startswith(where + "["), text
    assert kind == mistake, text
    if mistake == "taken as 1":  # the same words as check_step's, through the view c0[0] of the Tensor model
        assert "to be 1, where it is f[t=1]" in text
    if mistake == "wrong node":
        assert "step 2's gradient, where c[t=1]" in text
    if mistake == "not summed" and model_name == "LSTM":
        assert text.startswith("yours is not summed over the time steps and the batch (axes 0 and 1 of yours)")


def test_a_missing_forget_factor_on_c0_of_a_whole_sequence_is_followed_through_the_pick():
    loss, cache, weights = lstm_sequence("LSTM", 0)
    claims = lstm_backward(cache, weights, "taken as 1", 1)
    claims.pop("dW_hh")
    report = check_derivation(loss, claims)
    first = report.first_mismatch
    assert first.name == "c0" and first.followed == "c0[0]" and first.stage == "outside any stage"
    text = str(report)
    assert "c0 reaches L only through c0[0]: yours is checked there" in text
    assert "to be 1, where it is f[t=1]" in first.diagnosis.text


def rnn_sequence(seed):
    inputs, hidden, batch, steps = sizes(seed)
    steps = max(steps, 2)
    rng = np.random.default_rng(seed)
    params = {name: 2 * array for name, array in init_params(inputs, hidden, seed=seed, blocks=1).items()}
    x = rng.standard_normal((steps, batch, inputs))
    h0 = 0.5 * rng.standard_normal((1, batch, hidden))
    weights = rng.standard_normal((steps, batch, hidden))
    out, _ = RNN.from_state_dict(params)(Tensor(x, label="x"), Tensor(h0, requires_grad=True, label="h0"))
    loss = (out * weights).sum()
    loss.label = "L"
    hs = [h0[0]]
    for t in range(steps):  # the forward pass by hand, for the hand derivation
        hs.append(np.tanh(x[t] @ params["weight_ih_l0"].T + hs[-1] @ params["weight_hh_l0"].T
                          + params["bias_ih_l0"] + params["bias_hh_l0"]))
    return loss, params, x, hs, weights


def rnn_backward(params, x, hs, d_out, mistake=None, at=1):
    steps = len(hs) - 1
    weight_hh = params["weight_hh_l0"]
    if mistake == "updated weights":
        weight_hh = weight_hh - 0.5 * rnn_backward(params, x, hs, d_out)["dW_hh"]
    claims, d_h_next, d_weight_hh = {}, 0.0, 0.0
    for t in range(steps, 0, -1):
        here = t == at
        h = hs[t]
        d_h = d_out[t - 1] + {"branch missing": 0.0, "branch counted twice": 2 * d_h_next}.get(
            mistake, d_h_next) if here else d_out[t - 1] + d_h_next
        slope = {"taken as 1": 1.0, "value for its derivative": h}.get(mistake, 1 - h ** 2) if here else 1 - h ** 2
        d_z = d_h * slope
        d_weight_hh = d_weight_hh + d_z.T @ hs[t - 1]
        claims[step_name("h", t)] = 0.5 * d_h if here and mistake == "scaled" else d_h
        claims[step_name("z", t)] = -d_z if here and mistake == "sign flipped" else d_z
        d_h_next = d_z @ (weight_hh if here else params["weight_hh_l0"])
    if mistake == "wrong node":
        claims[step_name("z", at)] = claims[step_name("z", at + 1)]
    return {**claims, "h0": d_h_next[None], "dW_hh": d_weight_hh}


RNN_VERDICTS = {  # mistake: (planted at step, found at)
    "sign flipped": (2, "z[t=2]"), "scaled": (2, "h[t=2]"), "taken as 1": (2, "z[t=2]"),
    "value for its derivative": (2, "z[t=2]"), "branch missing": (1, "h[t=1]"), "wrong node": (1, "z[t=1]"),
    "updated weights": (1, "h0"), "branch counted twice": (1, "h[t=1]"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mistake", list(RNN_VERDICTS))
def test_each_mistake_in_an_rnn_sequence_gets_its_verdict(mistake, seed):
    loss, params, x, hs, weights = rnn_sequence(seed)
    at, where = RNN_VERDICTS[mistake]
    claims = rnn_backward(params, x, hs, weights, mistake, at)
    claims.pop("dW_hh")
    name, kind, text = verdict(check_derivation(loss, claims))
    assert (name, kind) == (where, mistake), text


# --- an MLP on Tensors, with a squared error, and Mazur's network on Values --------------------------------

def mlp(seed):
    inputs, hidden, batch, outputs = sizes(seed)
    inputs = hidden + 1  # a dL/dW1 that is not square: its transpose shows in the shape
    rng = np.random.default_rng(seed)
    x, target = rng.standard_normal((batch, inputs)), rng.standard_normal((batch, outputs))
    W1, b1 = rng.standard_normal((inputs, hidden)), rng.standard_normal(hidden)
    W2, b2 = rng.standard_normal((hidden, outputs)), rng.standard_normal(outputs)
    nodes = {name: Tensor(array, requires_grad=True, label=name) for name, array in
             (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2))}
    z1 = Tensor(x, label="x") @ nodes["W1"] + nodes["b1"]
    z1.label = "z1"
    h = z1.tanh()
    h.label = "h"
    y = h @ nodes["W2"] + nodes["b2"]
    y.label = "y"
    error = y - target
    error.label = "e"
    loss = (error * error).sum()  # the squared error without its 1/2: dL/de = 2e
    loss.label = "L"
    return loss, x, target, W1, b1, W2, b2


def mlp_backward(x, target, W1, b1, W2, b2, mistake=None):
    z1 = x @ W1 + b1
    h = np.tanh(z1)
    y = h @ W2 + b2
    e = y - target
    d_e = {"scaled": e, "sign flipped": -2 * e}.get(mistake, 2 * e)
    d_y = 2 * e
    d_W2 = h.T @ d_y
    used = W2 - 0.5 * d_W2 if mistake == "updated weights" else W2
    d_h = d_y @ used.T
    d_z1 = d_h * {"taken as 1": 1.0, "value for its derivative": h}.get(mistake, 1 - h ** 2)
    d_W1 = x.T @ d_z1
    if mistake == "wrong node":
        d_h = d_y @ W2.T * (1 - h ** 2)  # the step too far: dL/dz1 written for dL/dh
    return {"e": d_e, "y": d_y, "W2": d_W2, "b2": d_y.sum(axis=0), "h": d_h, "z1": d_z1,
            "W1": d_W1.T if mistake == "transposed" else d_W1,
            "b1": d_z1 if mistake == "not summed" else d_z1.sum(axis=0)}


MLP_VERDICTS = {"scaled": "e", "sign flipped": "e", "updated weights": "h", "taken as 1": "z1",
                "value for its derivative": "z1", "transposed": "W1", "not summed": "b1", "wrong node": "h"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mistake", list(MLP_VERDICTS))
def test_each_mistake_in_an_mlp_gets_its_verdict(mistake, seed):
    loss, *arrays = mlp(seed)
    name, kind, text = verdict(check_derivation(loss, mlp_backward(*arrays, mistake=mistake)))
    assert (name, kind) == (MLP_VERDICTS[mistake], mistake), text
    if mistake == "scaled":  # e * e: one of its two equal branches
        assert text.startswith("yours is 0.5x the engine's: v4 = e * e uses e twice, and yours has one of its two "
                               "equal branches only (the 1/2 of a squared error? d(e²)/de = 2e)")


def mazur():
    """Matt Mazur's 2-2-2 network ("A Step by Step Backpropagation Example"): his weights, inputs and targets."""
    names = {"i1": 0.05, "i2": 0.10, "w1": 0.15, "w2": 0.20, "w3": 0.25, "w4": 0.30, "b1": 0.35, "w5": 0.40,
             "w6": 0.45, "w7": 0.50, "w8": 0.55, "b2": 0.60}
    v = {name: Value(number, label=name) for name, number in names.items()}
    out_h1 = (v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"]).sigmoid()
    out_h2 = (v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"]).sigmoid()
    out_h1.label, out_h2.label = "out_h1", "out_h2"
    out_o1 = (v["w5"] * out_h1 + v["w6"] * out_h2 + v["b2"]).sigmoid()
    out_o2 = (v["w7"] * out_h1 + v["w8"] * out_h2 + v["b2"]).sigmoid()
    out_o1.label, out_o2.label = "out_o1", "out_o2"
    loss = 0.5 * (0.01 - out_o1) ** 2 + 0.5 * (0.99 - out_o2) ** 2
    loss.label = "E"
    return loss, v, out_h1, out_h2, out_o1, out_o2


def test_mazurs_network_with_the_updated_weights_is_told_so():
    loss, v, out_h1, out_h2, out_o1, out_o2 = mazur()
    d_o1, d_o2 = out_o1.data - 0.01, out_o2.data - 0.99
    d_net_o1, d_net_o2 = d_o1 * out_o1.data * (1 - out_o1.data), d_o2 * out_o2.data * (1 - out_o2.data)
    d_w5, d_w7 = d_net_o1 * out_h1.data, d_net_o2 * out_h1.data
    w5, w7 = v["w5"].data - 0.5 * d_w5, v["w7"].data - 0.5 * d_w7  # the weights after the update, at rate 0.5
    d_out_h1 = d_net_o1 * w5 + d_net_o2 * w7
    report = check_derivation(loss, {"out_o1": d_o1, "out_o2": d_o2, "w5": d_w5, "w7": d_w7, "out_h1": d_out_h1})
    name, kind, text = verdict(report)
    assert (name, kind) == ("out_h1", "updated weights")
    assert "each weight w (w5 and w7) replaced by w - 0.5·dE/dw (a learning rate of 0.5)" in text
    assert "5 of 16 asked for given" in report.summary()


# --- no verdict where there is no classic mistake -----------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_a_right_derivation_gets_no_verdict_and_noise_gets_none_either(seed):
    rng = np.random.default_rng(seed)
    inputs, hidden, batch, _ = sizes(seed)
    right = check_step(step_backward, input_size=inputs, hidden_size=hidden, batch=batch, seed=seed)
    assert right.passed and right.first_mismatch is None and "all agree" in str(right)
    node = ["h[t=1]", "c[t=1]", "o[t=1]", "z_g[t=1]", "h0", "c0", "x"][seed % 7]

    def noisy(step, d_h, d_c):
        claims = step_backward(step, d_h, d_c)
        claims[node] = claims[node] + rng.standard_normal(claims[node].shape)
        return claims

    report = check_step(noisy, input_size=inputs, hidden_size=hidden, batch=batch, seed=seed)
    assert report.first_mismatch.name == node and report.first_mismatch.diagnosis is None, str(report)


@pytest.mark.parametrize("seed", range(6))
def test_whole_sequences_right_get_no_verdict(seed):
    loss, cache, weights = lstm_sequence("LSTM", seed)
    claims = lstm_backward(cache, weights)
    claims.pop("dW_hh")
    assert check_derivation(loss, claims).first_mismatch is None
    loss, params, x, hs, weights = rnn_sequence(seed)
    claims = rnn_backward(params, x, hs, weights)
    claims.pop("dW_hh")
    assert check_derivation(loss, claims).first_mismatch is None
    loss, *arrays = mlp(seed)
    assert check_derivation(loss, mlp_backward(*arrays)).first_mismatch is None


# --- partial answers ----------------------------------------------------------------------------------------

def test_a_partial_answer_says_how_many_were_given_and_is_not_green():
    def three(step, d_h, d_c):
        claims = step_backward(step, d_h, d_c)
        return {name: claims[name] for name in ("h[t=1]", "tanh_c[t=1]", "c[t=1]")}

    report = check_step(three)
    assert report.passed and not report.complete
    assert report.summary() == ("Your 3 gradients of L against the engine's (rtol 1e-06, atol 1e-09): 3 of 14 asked "
                                "for given, all agree; missing: z_i[t=1], i[t=1], z_f[t=1], f[t=1], z_g[t=1], "
                                "g[t=1], z_o[t=1], o[t=1] and 3 more.")
    assert "#166534" not in report._repr_html_() and "#92400e" in report._repr_html_()
    whole = check_step(step_backward)
    assert whole.complete and "#166534" in whole._repr_html_() and whole.summary().endswith("all agree.")
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    loss = a * b
    report = check_derivation(loss, {"a": 3.0}, expected=["a"])
    assert report.complete and report.summary().endswith("all agree.")
    with pytest.raises(ValueError, match="expected 'c', but no node that needs a gradient has that name"):
        check_derivation(loss, {"a": 3.0}, expected=["c"])


# --- notation: every name a report prints is defined in it -----------------------------------------------------

def defined_names(text):
    """The unlabelled nodes (v1, v2, ...) a report mentions, and those it defines ("use v5 = ...")."""
    import re
    mentioned = set(re.findall(r"\bv\d+\b", text))
    defined = set(re.findall(r"\buse (v\d+) = ", text)) | set(re.findall(r"\b(v\d+) = ", text))
    return mentioned, defined


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_every_name_a_report_prints_is_defined_in_it(seed):
    reports = [check_step(lambda *args, m=mistake: step_backward(*args, mistake=m), seed=seed)
               for mistake in STEP_VERDICTS]
    loss, *arrays = mlp(seed)
    reports += [check_derivation(loss, mlp_backward(*arrays, mistake=mistake)) for mistake in MLP_VERDICTS]
    loss, params, x, hs, weights = rnn_sequence(seed)
    for mistake, (at, _) in RNN_VERDICTS.items():
        claims = rnn_backward(params, x, hs, weights, mistake, at)
        claims.pop("dW_hh")
        reports.append(check_derivation(loss, claims))
    for report in reports:
        text = str(report)
        mentioned, defined = defined_names(text)
        assert mentioned <= defined, (mentioned - defined, text)
        assert "(dL/dv: the gradient of L with respect to a node v)" in text
        assert not any(" g @ " in line or "@ g" in line for line in text.splitlines()), text  # dL/dv, not g
    (matmul,) = [line for line in str(reports[len(STEP_VERDICTS) + 2]).splitlines() if "term: dL/d" in line]
    assert matmul.strip().startswith("term: dL/dv") and "@ W2^T" in matmul


def test_a_sequence_input_used_once_per_step_is_checked_at_the_step_where_it_differs():
    loss, x = lstm_sequence_with_x(1)
    loss.backward()
    claimed = x.grad.copy()
    claimed[1] *= -1  # step 2's slice, with its sign flipped
    report = check_derivation(loss, {"x": claimed})
    first = report.first_mismatch
    assert first.name == "x" and first.followed == "x[t=2]" and first.picks == len(claimed)
    assert first.diagnosis.kind == "sign flipped"
    assert f"x is used only through {len(claimed)} picks of it; yours first differs at x[t=2]" in str(report)


def lstm_sequence_with_x(seed):
    inputs, hidden, batch, steps = sizes(seed)
    rng = np.random.default_rng(seed)
    params = hand.init_params(inputs, hidden, seed=seed)
    x = Tensor(rng.standard_normal((max(steps, 2), batch, inputs)), requires_grad=True, label="x")
    out, _ = LSTM.from_state_dict(params)(x)
    loss = (out * rng.standard_normal(out.shape)).sum()
    loss.label = "L"
    return loss, x


def test_the_report_colours_read_at_4_5_to_1_on_light_and_dark_notebook_themes():
    # each coloured title carries its own pale ground, so the theme's background does not decide its contrast
    def luminance(colour):
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    reports = [check_step(lambda step, d_h, d_c: {}), check_step(lambda step, d_h, d_c: {"c0": d_c})]
    pairs = set()
    for report in reports:
        pairs |= set(re.findall(r"color:(#[0-9a-f]{6});background:(#[0-9a-f]{6})", report._repr_html_()))
    assert pairs
    for colour, ground in pairs:
        light, dark = sorted((luminance(colour), luminance(ground)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (colour, ground)
