"""`autograd.check_derivation`: a derivation by hand checked against the engine, its first mistake located.

The planted mistakes are the three classics of an LSTM's backward pass: sigmoid' written as the sigmoid itself, a
missing branch of the fork on h_{t-1}, and c_{t-1}'s gradient without the forget gate's factor. Each is found at
the node where it is made, on the scalar LSTM and on the Tensor LSTM, with the reason said.
"""

from __future__ import annotations

import builtins
import re
from pathlib import Path

import numpy as np
import pytest

from autograd import Tensor, Value, check_derivation
from autograd.view.boxes import GraphTooLargeError
from autograd.view.derivation import DerivationCheck
from lstm import LSTM, ScalarLSTM, hand
from lstm.checks.step import check_step
from lstm.models.lstm import labelled_values
from lstm.models.params import step_name

MISTAKES = ("sigmoid is its own derivative", "one branch of the fork on h_{t-1}", "no forget factor on c_{t-1}")


def learners_backward(cache, d_out, d_h_n=None, d_c_n=None, mistake=None):
    """A one-layer LSTM's backward pass as a learner writes it, stage by stage, with one classic mistake or none,
    with `hand.backward`'s signature: the parameters' gradients, "x", "h0", "c0", and every stage's gradient by
    its node name. The mistakes are planted in step T (sigmoid), and in what step T sends back to step T-1 (the
    fork on h_{T-1}, the forget factor on c_{T-1})."""
    saved, params = cache.layers[0], cache.params
    steps, _, hidden = saved.cell.shape
    blocks = {name: {gate: params[f"{name}_l0"][k * hidden:(k + 1) * hidden] for k, gate in enumerate("ifgo")}
              for name in ("weight_ih", "weight_hh")}
    claims = {}
    d_h_next = 0.0 if d_h_n is None else d_h_n[0]
    d_c_next = 0.0 if d_c_n is None else d_c_n[0]
    d_zs = [None] * steps
    for t in range(steps, 0, -1):
        i, f, g, o = (getattr(saved, name)[t - 1] for name in ("input_gate", "forget_gate", "cell_candidate",
                                                               "output_gate"))
        tanh_c, c_prev = saved.tanh_cell[t - 1], saved.c_prev[t - 1]
        d_h = d_out[t - 1] + d_h_next
        d_o, d_tanh_c = d_h * tanh_c, d_h * o
        d_c = d_tanh_c * (1 - tanh_c ** 2) + d_c_next
        d_f, d_i, d_g = d_c * c_prev, d_c * g, d_c * i
        forget_slope = f if mistake == MISTAKES[0] and t == steps else f * (1 - f)
        d_z = {"i": d_i * i * (1 - i), "f": d_f * forget_slope, "g": d_g * (1 - g ** 2), "o": d_o * o * (1 - o)}
        d_zs[t - 1] = np.concatenate([d_z[gate] for gate in "ifgo"], axis=1)
        gates = "f" if mistake == MISTAKES[1] and t == steps else "ifgo"
        d_h_next = sum(d_z[gate] @ blocks["weight_hh"][gate] for gate in gates)
        d_c_next = d_c if mistake == MISTAKES[2] and t == steps else d_c * f
        named = {"h": d_h, "tanh_c": d_tanh_c, "c": d_c, "o": d_o, "g": d_g, "f": d_f, "i": d_i,
                 **{f"z_{gate}": d_z[gate] for gate in "ifgo"}}
        claims.update({step_name(kind, t): value for kind, value in named.items()})
    d_z_all = np.stack(d_zs)
    d_bias = d_z_all.sum(axis=(0, 1))
    return {"weight_ih_l0": np.tensordot(d_z_all, saved.inputs, axes=([0, 1], [0, 1])),
            "weight_hh_l0": np.tensordot(d_z_all, saved.h_prev, axes=([0, 1], [0, 1])),
            "bias_ih_l0": d_bias, "bias_hh_l0": d_bias, "x": d_z_all @ params["weight_ih_l0"],
            "h0": d_h_next[None], "c0": d_c_next[None], **claims}


def stages_of(claims):
    """The stage gradients only: the scalar LSTM labels its parameters and inputs element by element."""
    return {name: value for name, value in claims.items() if "[t=" in name}


def lstm_graph(model_name, steps=3):
    """A one-layer LSTM over ``steps`` steps, its loss L = sum(out * W) and the cache of the same forward pass."""
    rng = np.random.default_rng(7)
    params = {name: 2 * array for name, array in hand.init_params(2, 2, seed=3).items()}  # gates away from 1/2
    x, weights = rng.standard_normal((steps, 2, 2)), rng.standard_normal((steps, 2, 2))
    _, _, cache = hand.forward(params, x)
    if model_name == "LSTM":
        out, _ = LSTM.from_state_dict(params)(Tensor(x, requires_grad=True, label="x"))
        loss = (out * weights).sum()
    else:
        out, _ = ScalarLSTM.from_state_dict(params)(labelled_values(x, "x", time_first=True))
        loss = Value(0.0)
        for node, weight in zip(out.flat, weights.flat):
            loss = loss + node * float(weight)
    loss.label = "L"
    return loss, cache, weights


@pytest.mark.parametrize("model_name", ["LSTM", "ScalarLSTM"])
def test_a_right_derivation_passes_at_every_stage(model_name):
    loss, cache, weights = lstm_graph(model_name)
    stages = {name: value for name, value in learners_backward(cache, weights).items() if "[t=" in name}
    report = check_derivation(loss, stages, rtol=1e-10, atol=1e-12)
    assert report.passed and report.first_mismatch is None and bool(report)
    expected = 3 * 11 * (1 if model_name == "LSTM" else 4)  # steps x named stages (x elements, for Values)
    assert len(report.checks) == expected
    assert "all agree" in str(report)


@pytest.mark.parametrize("model_name", ["LSTM", "ScalarLSTM"])
def test_sigmoid_written_as_its_own_derivative_is_found_at_the_forget_gates_pre_activation(model_name):
    loss, cache, weights = lstm_graph(model_name)
    report = check_derivation(loss, stages_of(learners_backward(cache, weights, mistake=MISTAKES[0])))
    first = report.first_mismatch
    element = "" if model_name == "LSTM" else first.name[len("z_f[t=3]"):]
    assert first.name == "z_f[t=3]" + element
    assert first.stage == "t=3 / layer 0 / forget gate"
    (branch,) = first.branches
    assert branch.consumer_name == f"f[t=3]{element}" and branch.formula.startswith("sigmoid(z_f[t=3]")
    assert first.hint == (f"yours takes the local derivative ∂f[t=3]{element}/∂z_f[t=3]{element} to be "
                          f"f[t=3]{element} itself (the value, not its derivative), where it is {branch.formula} = "
                          f"{first.hint.rsplit(' = ', 1)[1]}")
    # everything the loss reaches before it agrees; what comes after it is wrong because of it
    names = [check.name for check in report.checks]
    before = names[:names.index(first.name)]
    assert before and all(report.check(name).agrees for name in before)
    assert any(name.startswith("h[t=2]") for name in (check.name for check in report.mismatches))


@pytest.mark.parametrize("model_name", ["LSTM", "ScalarLSTM"])
def test_a_missing_branch_of_the_fork_on_h_is_found_and_the_branches_named(model_name):
    loss, cache, weights = lstm_graph(model_name)
    report = check_derivation(loss, stages_of(learners_backward(cache, weights, mistake=MISTAKES[1])))
    first = report.first_mismatch
    assert first.name.startswith("h[t=2]") and first.stage == "t=2 / layer 0 / hidden state"
    gates = ("input gate", "forget gate", "cell candidate", "output gate")
    names = [group.name for group in first.groups]
    assert sorted(set(names) & set(gates)) == sorted(gates) and len(names) == 5  # the gates, and the loss
    (loss_branch,) = set(names) - set(gates)
    assert set(first.matches) == {loss_branch, "forget gate"}
    assert set(first.missing) == {"input gate", "cell candidate", "output gate"}
    verdict = first.verdict()
    if model_name == "LSTM":  # one product for the four gates: the branches are found behind it
        assert {group.via for group in first.groups if group.name in gates} == {("[x, h, 1][t=3]", "z[t=3]")}
        assert loss_branch == "outputs"  # a stage: the verdict says whose branches
        assert verdict == ("yours equals the forget gate's and outputs' branches only; the input gate's, "
                           "cell candidate's and output gate's are missing")
    else:  # the loss of this test is outside any stage: its use is named by how it was computed
        assert loss_branch == f"{first.name} * ({-1.28954})"
        assert verdict == (f"yours equals only the branches through the forget gate and {loss_branch}; those "
                           "through the input gate, the cell candidate and the output gate are missing")


@pytest.mark.parametrize("model_name", ["LSTM", "ScalarLSTM"])
def test_a_missing_forget_factor_on_the_previous_cell_state_is_found(model_name):
    loss, cache, weights = lstm_graph(model_name)
    report = check_derivation(loss, stages_of(learners_backward(cache, weights, mistake=MISTAKES[2])))
    first = report.first_mismatch
    assert first.name.startswith("c[t=2]") and first.stage == "t=2 / layer 0 / cell state"
    assert first.matches is None  # not a missing branch: a wrong factor on one
    assert "to be 1, where it is f[t=3]" in first.hint and "if its other branches are right" in first.hint
    assert {branch.consumer.stage for branch in first.branches} == {("t=2", "layer 0", "hidden state"),
                                                                    ("t=3", "layer 0", "cell state")}


def right_step(step, d_h, d_c, mistake=None):
    """One step's backward pass for `check_step`, right, or with one of the three mistakes."""
    hidden = step.h.shape[1]
    d_o, d_tanh_c = d_h * step.tanh_c, d_h * step.o
    d_c = d_tanh_c * (1 - step.tanh_c ** 2) + d_c
    d_f, d_i, d_g = d_c * step.c_prev, d_c * step.g, d_c * step.i

    def slope(s):
        return s if mistake == MISTAKES[0] else s * (1 - s)

    d_z = {"i": d_i * slope(step.i), "f": d_f * slope(step.f), "g": d_g * (1 - step.g ** 2), "o": d_o * slope(step.o)}
    blocks = {gate: step.weight_hh[k * hidden:(k + 1) * hidden] for k, gate in enumerate("ifgo")}
    gates = "f" if mistake == MISTAKES[1] else "ifgo"
    d_h_prev = sum(d_z[gate] @ blocks[gate] for gate in gates)
    d_c_prev = d_c if mistake == MISTAKES[2] else d_c * step.f
    d_x = sum(d_z[gate] @ step.weight_ih[k * hidden:(k + 1) * hidden] for k, gate in enumerate("ifgo"))
    named = {"h": d_h, "tanh_c": d_tanh_c, "c": d_c, "o": d_o, "g": d_g, "f": d_f, "i": d_i,
             **{f"z_{gate}": d_z[gate] for gate in "ifgo"}}
    return {**{step.name(kind): value for kind, value in named.items()}, "h0": d_h_prev, "c0": d_c_prev, "x": d_x}


def test_check_step_passes_a_right_step_and_locates_each_mistake():
    assert check_step(right_step).passed
    assert len(check_step(right_step).checks) == 14
    sigmoid = check_step(lambda *args: right_step(*args, mistake=MISTAKES[0])).first_mismatch
    assert sigmoid.name in {"z_i[t=1]", "z_f[t=1]", "z_o[t=1]"} and "itself" in sigmoid.hint
    fork = check_step(lambda *args: right_step(*args, mistake=MISTAKES[1])).first_mismatch
    assert fork.name == "h0" and fork.matches == ("forget gate",)
    assert fork.verdict().startswith("yours equals the forget gate's branch only; the ")
    assert set(fork.missing) == {"input gate", "cell candidate", "output gate"}
    forget = check_step(lambda *args: right_step(*args, mistake=MISTAKES[2])).first_mismatch
    assert forget.name == "c0" and "to be 1, where it is f[t=1]" in forget.hint


def test_check_step_needs_a_dict():
    with pytest.raises(TypeError, match="must return a dict"):
        check_step(lambda step, d_h, d_c: d_h)


# --- on any graph --------------------------------------------------------------------------------------------

def fork_graph():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = (c + a).tanh()
    L.label = "L"
    return a, b, c, L


def test_a_fork_missing_a_branch_on_values():
    a, b, c, L = fork_graph()
    L.backward()
    d_c = c.grad
    report = check_derivation(L, {c: d_c, "a": d_c * b.data})  # only the branch through c = a * b
    first = report.first_mismatch
    assert first.name == "a" and first.matches == ("c",) and first.missing == ("c + a",)
    assert first.verdict() == "yours equals only the branch through c; the branch through c + a is missing"
    text = str(report)
    assert text.startswith("Your 2 gradients of L against the engine's (rtol 1e-06, atol 1e-09): 2 of 3 asked for "
                           "given, 1 agree, 1 differs; missing: b.")
    assert "First difference, going back from L: dL/da  (outside any stage)" in text
    assert "use c = a * b (outside any stage):" in text and "∂c/∂a = b = -3" in text


def test_right_numbers_agree_within_the_tolerances_and_not_outside_them():
    a, b, c, L = fork_graph()
    L.backward()
    assert check_derivation(L, {"a": a.grad * (1 + 1e-8), "b": b.grad}).passed
    assert not check_derivation(L, {"a": a.grad * (1 + 1e-4)}).passed
    assert check_derivation(L, {"a": a.grad * (1 + 1e-4)}, rtol=1e-3).passed


def test_unknown_repeated_and_misshapen_claims_are_refused_clearly():
    a, b, c, L = fork_graph()
    with pytest.raises(ValueError, match=r"no node is labelled 'cc'; labels like it: 'c'"):
        check_derivation(L, {"cc": 1.0})
    twins = Value(1.0, label="w") * Value(2.0, label="w")
    twins.label = "L"
    with pytest.raises(ValueError, match=r"the label 'w' names 2 nodes"):
        check_derivation(twins, {"w": 1.0})
    with pytest.raises(ValueError, match=r"your dL/da has shape \(2,\), but a is a scalar"):
        check_derivation(L, {"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="is not in the graph"):
        check_derivation(L, {Value(1.0, label="elsewhere"): 1.0})
    with pytest.raises(ValueError, match="claimed twice"):
        check_derivation(L, {"a": 1.0, a: 1.0})
    with pytest.raises(TypeError, match="keyed by nodes or labels"):
        check_derivation(L, {3: 1.0})
    with pytest.raises(ValueError, match="rtol must be a non-negative number"):
        check_derivation(L, {}, rtol=-1)
    W = Tensor(np.ones((2, 3)), requires_grad=True, label="W")
    x = Tensor(np.ones((1, 2)), label="x")
    loss = (x @ W).sum()
    with pytest.raises(ValueError, match=r"your dL/dW has shape \(3, 3\), but W is of shape \(2, 3\), and neither"):
        check_derivation(loss, {"W": np.ones((3, 3))})
    with pytest.raises(ValueError, match="'x' needs no gradient"):
        check_derivation(loss, {"x": np.ones((1, 2))})


def test_an_array_claimed_for_numbered_scalar_nodes_is_spread_over_them():
    loss, cache, weights = lstm_graph("ScalarLSTM", steps=2)
    claims = learners_backward(cache, weights)
    report = check_derivation(loss, {"c[t=1]": claims["c[t=1]"]})
    assert report.passed
    assert {check.name for check in report.checks} == {f"c[t=1][{b},{j}]" for b in (0, 1) for j in (0, 1)}
    with pytest.raises(ValueError, match=r"needs one node labelled c\[t=1\]\[2,0\]"):
        check_derivation(loss, {"c[t=1]": np.zeros((3, 2))})


def test_broadcast_inputs_are_checked_at_their_own_shape():
    W = Tensor(np.array([[0.5, -1.0], [2.0, 0.25]]), requires_grad=True, label="W")
    bias = Tensor(np.array([0.1, -0.2]), requires_grad=True, label="bias")
    x = Tensor(np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]), label="x")
    y = (x @ W + bias).tanh()
    y.label = "y"
    loss = (y * y).sum()
    loss.backward()
    d_z = 2 * y.data * (1 - y.data ** 2)
    assert check_derivation(loss, {"y": 2 * y.data, "bias": d_z.sum(axis=0), "W": x.data.T @ d_z}).passed
    report = check_derivation(loss, {"bias": d_z[0]})  # one row's share only: the sum over the batch is missing
    assert report.first_mismatch.name == "bias" and "bias" in str(report)


def test_text_markdown_and_html():
    report = check_step(lambda *args: right_step(*args, mistake=MISTAKES[1]))
    assert isinstance(report, DerivationCheck)
    text = str(report)
    assert "First difference, going back from L: dL/dh0" in text
    assert "its branches, by the stage each leads into:" in text
    assert "Yours equals the forget gate's branch only;" in text
    markdown = report._repr_markdown_()
    assert markdown.startswith("**Your 14 gradients of L") and "> **Yours equals the forget gate" in markdown
    page = report._repr_html_()
    assert "color:#b91c1c" in page and "Yours equals the forget gate&#x27;s branch only" in page
    assert "color:#166534" in check_step(right_step)._repr_html_()


def test_the_readme_shows_what_check_step_prints_for_its_example():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    source = re.search(r"^def my_step_backward.*?(?=\n\n)", readme, re.S | re.M)[0]
    namespace: dict = {}
    exec(compile(source, "README", "exec"), namespace)
    shown = next(block for block in re.findall(r"```text\n(.*?)```", readme, re.S) if block.startswith("Your "))
    assert str(check_step(namespace["my_step_backward"])) == shown.rstrip("\n")


def test_the_walk_goes_from_the_loss_back_so_the_latest_stage_is_reported_first():
    loss, cache, weights = lstm_graph("LSTM")
    claims = stages_of(learners_backward(cache, weights))
    claims["z_f[t=1]"] = claims["z_f[t=1]"] + 1.0  # two independent slips: one early in time, one late
    claims["tanh_c[t=3]"] = claims["tanh_c[t=3]"] * 2.0
    report = check_derivation(loss, claims)
    assert report.first_mismatch.name == "tanh_c[t=3]"
    assert {check.name for check in report.mismatches} >= {"tanh_c[t=3]", "z_f[t=1]"}
    names = [check.name for check in report.checks]
    assert names.index("h[t=3]") < names.index("c[t=3]") < names.index("h[t=2]") < names.index("z_i[t=1]")


# --- size: linear work, and a guard ---------------------------------------------------------------------------

def wide_fork(uses):
    """x used ``uses`` times, each use a product of its own: one fork of that width."""
    x = Value(0.5, label="x")
    loss = Value(0.0)
    for k in range(uses):
        loss = loss + x * float(k % 7 + 1)
    loss.label = "L"
    return x, loss


def test_a_wide_fork_is_explained_with_work_linear_in_its_width(monkeypatch):
    # Counted, not timed: the items every sum() of the check adds up. Quadratic work (each branch's "other
    # branches" summed anew, as before) adds width² terms; linear work a few per branch.
    counted = []
    for uses in (200, 800):
        x, loss = wide_fork(uses)
        loss.backward()
        items = [0]

        def counting_sum(iterable, start=0, items=items):
            for item in iterable:
                items[0] += 1
                start = start + item
            return start

        with monkeypatch.context() as patch:
            patch.setattr(builtins, "sum", counting_sum)
            report = check_derivation(loss, {"x": x.grad + 1.0})
        assert report.first_mismatch.name == "x" and len(report.first_mismatch.branches) == uses
        counted.append(items[0])
    assert counted[1] <= 6 * counted[0]  # four times the width: about four times the sums, not sixteen


def test_a_graph_larger_than_max_nodes_is_refused_before_the_reverse_pass():
    x, loss = wide_fork(50)
    with pytest.raises(GraphTooLargeError, match=r"this graph has 1\d\d nodes, more than max_nodes=100; .*raise "
                                                  "max_nodes"):
        check_derivation(loss, {"x": 1.0}, max_nodes=100)
    assert check_derivation(loss, {"x": 1.0}, max_nodes=1000).first_mismatch.name == "x"
    for bad in (0, -1, 2.5, True, "many"):
        with pytest.raises(ValueError, match="max_nodes must be a positive integer"):
            check_derivation(loss, {}, max_nodes=bad)
