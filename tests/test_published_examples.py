"""Reference numbers nobody here wrote: two published worked examples, reproduced to their printed precision.

1. Matt Mazur, "A Step by Step Backpropagation Example", 17 March 2015,
   https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/ : a 2-2-2 network of logistic
   units, squared error, every intermediate of the forward and the backward pass printed to about nine
   decimals, and the weights after one step of gradient descent with learning rate 0.5 (biases not updated).
   Each printed number is matched to within one unit of its last printed digit (the post rounds intermediate
   results before reusing them, so one of them, dE_o2/dout_h1 = -0.019049119, is a unit off the exact
   -0.0190491183).

2. Stanford CS231n, assignment 3 (2017 and later), ``LSTM_Captioning.ipynb``, cells "LSTM: step forward" and
   "LSTM: forward" (https://cs231n.github.io/assignments2017/assignment3/): deterministic ``np.linspace`` inputs
   and weights, the expected next_h, next_c and h printed to eight decimals, and the relative errors a correct
   implementation prints against them: next_h 5.7054130404539434e-09, next_c 5.8143123088804145e-09, h
   8.610537452106624e-08. CS231n lays an LSTM out as x @ Wx + h @ Wh + b with Wx (D, 4H) and its gate blocks in
   the order i, f, o, g; PyTorch's (and ours) is W_ih x + ... with W_ih (4H, D) and blocks i, f, g, o: the
   mapping below transposes and swaps the last two blocks, explicitly.

(Aidan Gomez's LSTM example is reproduced in test_hand.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from autograd import Value, backpropagate, check_derivation
from autograd.view.notation import local_derivative
from lstm import LSTM, hand

# --- Mazur ----------------------------------------------------------------------------------------------------

FORWARD = {"net_h1": "0.3775", "out_h1": "0.593269992", "out_h2": "0.596884378", "net_o1": "1.105905967",
           "out_o1": "0.75136507", "out_o2": "0.772928465", "E_o1": "0.274811083", "E_o2": "0.023560026",
           "E_total": "0.298371109"}
# dE_total/d(node), as the post prints them
ADJOINTS = {"out_o1": "0.74136507", "net_o1": "0.138498562", "w5": "0.082167041", "out_h1": "0.036350306",
            "w1": "0.000438568"}
LOCAL = {("out_o1", "net_o1"): "0.186815602", ("out_h1", "net_h1"): "0.241300709"}  # d out / d net
BRANCHES = {"out_h1": ("0.055399425", "-0.019049119")}  # dE_o1/dout_h1, dE_o2/dout_h1: its fork's two terms
UPDATED = {"w1": "0.149780716", "w2": "0.19956143", "w3": "0.24975114", "w4": "0.29950229",
           "w5": "0.35891648", "w6": "0.408666186", "w7": "0.511301270", "w8": "0.561370121"}


def unit(printed: str) -> float:
    """One unit of the last printed digit: 1e-9 for "0.593269992"."""
    return 10.0 ** -len(printed.split(".")[1])


def mazur_network(weights=None):
    """The post's network as Values, every node labelled with the post's name: the error and the nodes."""
    w = {f"w{k}": v for k, v in enumerate([0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55], 1)}
    w = {name: Value(value, label=name) for name, value in {**w, **(weights or {})}.items()}
    i1, i2, b1, b2 = Value(0.05, label="i1"), Value(0.10, label="i2"), Value(0.35, label="b1"), Value(0.60, label="b2")
    nodes = dict(w)

    def unit_of(name, a, wa, b, wb, bias):
        net = nodes[wa] * a + nodes[wb] * b + bias
        net.label = f"net_{name}"
        out = net.sigmoid()
        out.label = f"out_{name}"
        nodes[net.label], nodes[out.label] = net, out
        return out

    h1, h2 = unit_of("h1", i1, "w1", i2, "w2", b1), unit_of("h2", i1, "w3", i2, "w4", b1)
    o1, o2 = unit_of("o1", h1, "w5", h2, "w6", b2), unit_of("o2", h1, "w7", h2, "w8", b2)
    for name, out, target in (("E_o1", o1, 0.01), ("E_o2", o2, 0.99)):
        nodes[name] = 0.5 * (target - out) ** 2
        nodes[name].label = name
    nodes["E_total"] = nodes["E_o1"] + nodes["E_o2"]
    nodes["E_total"].label = "E_total"
    return nodes["E_total"], nodes


def test_mazur_forward_pass_to_the_printed_digits():
    _, nodes = mazur_network()
    for name, printed in FORWARD.items():
        assert nodes[name].data == pytest.approx(float(printed), abs=unit(printed)), name


def test_mazur_backward_pass_every_printed_intermediate():
    E, nodes = mazur_network()
    backprop = backpropagate(E, record_branches=True)
    for name, printed in ADJOINTS.items():
        assert backprop.adjoints[nodes[name]] == pytest.approx(float(printed), abs=unit(printed)), name
    for (out, net), printed in LOCAL.items():  # the primitive table's sigmoid rule, at this node
        assert nodes[out].parents == (nodes[net],)
        assert local_derivative(nodes[out], 0) == pytest.approx(float(printed), abs=unit(printed))
    for name, printed_terms in BRANCHES.items():
        terms = [branch.term for branch in backprop.terms(nodes[name])]
        assert terms == [pytest.approx(float(p), abs=unit(p)) for p in printed_terms]
    # his hand derivation, checked as a learner's would be: every printed adjoint agrees with the engine
    report = check_derivation(E, {name: float(printed) for name, printed in ADJOINTS.items()}, rtol=0, atol=1e-9)
    assert report.passed and len(report.checks) == len(ADJOINTS)


def test_mazur_updated_weights_after_one_step_of_gradient_descent():
    E, nodes = mazur_network()
    adjoints = backpropagate(E).adjoints
    for name, printed in UPDATED.items():
        assert nodes[name].data - 0.5 * adjoints[nodes[name]] == pytest.approx(float(printed), abs=unit(printed))


def test_mazur_error_after_one_step_is_his_codes_not_gradient_descents():
    """The post says the error falls to 0.291027924 after the update. Gradient descent as the post describes it
    (every gradient taken with the original weights) gives 0.291027774; 0.291027924 is what one gets when the
    hidden layer's gradients are taken with the already updated w5..w8, as the post's accompanying code does.
    A published number, and a reason to check numbers rather than trust them."""
    E, nodes = mazur_network()
    adjoints = backpropagate(E).adjoints
    descended = {name: nodes[name].data - 0.5 * adjoints[nodes[name]] for name in UPDATED}
    assert mazur_network(descended)[0].data == pytest.approx(0.291027774, abs=1e-9)
    out_h = [nodes["out_h1"].data, nodes["out_h2"].data]
    delta_o = [adjoints[nodes["net_o1"]], adjoints[nodes["net_o2"]]]
    w_new = np.array([[descended["w5"], descended["w6"]], [descended["w7"], descended["w8"]]])
    delta_h = (w_new.T @ delta_o) * np.multiply(out_h, np.subtract(1, out_h))
    as_coded = {**descended, **{f"w{2 * h + k + 1}": [0.15, 0.20, 0.25, 0.30][2 * h + k] - 0.5 * delta_h[h] * x
                                for h in (0, 1) for k, x in enumerate((0.05, 0.10))}}
    assert mazur_network(as_coded)[0].data == pytest.approx(0.291027924, abs=1e-9)


def test_a_learner_who_forgets_a_branch_of_out_h1_is_told_which():
    E, _ = mazur_network()
    report = check_derivation(E, {"out_o1": 0.74136507, "out_h1": 0.055399425}, atol=1e-9)
    first = report.first_mismatch
    assert first.name == "out_h1" and first.matches == ("w5 * out_h1",)
    assert first.verdict() == ("yours equals only the branch through w5 * out_h1; the branch through "
                               "w7 * out_h1 is missing")


# --- CS231n ---------------------------------------------------------------------------------------------------

def rel_error(x, y):
    """CS231n's relative error, as the assignment defines it."""
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def pytorch_layout(Wx, Wh, b, hidden):
    """CS231n's (Wx (D, 4H), Wh (H, 4H), b (4H,)), gate blocks i, f, o, g, as an nn.LSTM state dict: W_ih (4H, D),
    W_hh (4H, H), blocks i, f, g, o; the one bias goes into bias_ih, bias_hh is zero."""
    cs231n_order = {"i": 0, "f": 1, "o": 2, "g": 3}
    pytorch_blocks = [cs231n_order[gate] for gate in "ifgo"]  # [0, 1, 3, 2]

    def reorder(rows):
        return np.concatenate([rows[k * hidden:(k + 1) * hidden] for k in pytorch_blocks])

    return {"weight_ih_l0": reorder(Wx.T), "weight_hh_l0": reorder(Wh.T), "bias_ih_l0": reorder(b),
            "bias_hh_l0": np.zeros(4 * hidden)}


EXPECTED_NEXT_H = np.array([[0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
                            [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
                            [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
EXPECTED_NEXT_C = np.array([[0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
                            [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
                            [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])
EXPECTED_H = np.array([[[0.01764008, 0.01823233, 0.01882671, 0.0194232],
                        [0.11287491, 0.12146228, 0.13018446, 0.13902939],
                        [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
                       [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
                        [0.6704845, 0.69350089, 0.71486014, 0.7346449],
                        [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])


def test_cs231n_lstm_step_forward():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    state = pytorch_layout(Wx, Wh, b, H)
    _, (next_h, next_c) = LSTM.from_state_dict(state)(x[None], (prev_h[None], prev_c[None]))  # one step
    _, (hand_h, hand_c), _ = hand.forward(state, x[None], (prev_h[None], prev_c[None]))
    for ours in ((next_h.data[0], next_c.data[0]), (hand_h[0], hand_c[0])):
        np.testing.assert_allclose(ours[0], EXPECTED_NEXT_H, rtol=0, atol=5e-9)  # eight printed decimals
        np.testing.assert_allclose(ours[1], EXPECTED_NEXT_C, rtol=0, atol=5e-9)
        # the relative errors the assignment prints for a correct implementation
        assert rel_error(EXPECTED_NEXT_H, ours[0]) == pytest.approx(5.7054130404539434e-09, rel=1e-6)
        assert rel_error(EXPECTED_NEXT_C, ours[1]) == pytest.approx(5.8143123088804145e-09, rel=1e-6)


def test_cs231n_lstm_forward_over_a_sequence():
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)  # CS231n is batch first: (N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    state = pytorch_layout(Wx, Wh, b, H)
    out, _ = LSTM.from_state_dict(state)(x.transpose(1, 0, 2), (h0[None], np.zeros((1, N, H))))  # c0 = 0
    h = out.data.transpose(1, 0, 2)
    np.testing.assert_allclose(h, EXPECTED_H, rtol=0, atol=5e-9)
    assert rel_error(EXPECTED_H, h) == pytest.approx(8.610537452106624e-08, rel=1e-6)


def test_the_gate_order_matters_so_the_mapping_is_tested_too():
    """Read CS231n's blocks as if they were PyTorch's (i, f, g, o), and the numbers are far off."""
    N, D, H = 3, 4, 5
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    unmapped = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": b, "bias_hh_l0": np.zeros(4 * H)}
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev = (np.linspace(-0.3, 0.7, num=N * H).reshape(1, N, H), np.linspace(-0.4, 0.9, num=N * H).reshape(1, N, H))
    _, (next_h, _), _ = hand.forward(unmapped, x[None], prev)
    assert rel_error(EXPECTED_NEXT_H, next_h[0]) > 1e-2
