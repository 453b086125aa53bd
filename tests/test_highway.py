"""Notebook 5's account of the cell state's highway, statement by statement: every number its text quotes is
recomputed here and looked up in the text, and every claim is checked on these numbers (and, where it is a
claim about models rather than one draw, for two more seeds)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from lstm import GRU, LSTM, RNN, bptt, gradient_flow, hand

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "5_training_gradient_flow.ipynb"


def measure(seed: int) -> dict[str, float]:
    """The numbers notebook 5 prints (its first code cell and its BPTT cell), for one seed."""
    x = np.random.default_rng(seed).standard_normal((30, 4, 3))
    models = {"RNN": RNN(3, 16, seed=seed), "GRU": GRU(3, 16, seed=seed), "LSTM": LSTM(3, 16, seed=seed),
              "LSTM f1": LSTM(3, 16, seed=seed, forget_bias=1.0), "LSTM f3": LSTM(3, 16, seed=seed, forget_bias=3.0),
              "GRU u3": GRU(3, 16, seed=seed, update_bias=3.0)}
    numbers: dict[str, float] = {}
    for name, model in models.items():
        flow = gradient_flow(model, x, loss="last")
        numbers[f"{name} h"] = flow.dh[0, 0] / flow.dh[0, -1]
        if isinstance(model, LSTM):
            forget = hand.forward(model.state_dict(), x)[2].layers[0].forget_gate
            numbers[f"{name} c"] = flow.dc[0, 0] / flow.dc[0, -1]
            numbers[f"{name} gate"] = forget.mean()
            numbers[f"{name} road"] = np.prod(forget[1:], axis=0).mean()
            numbers[f"{name} c above h"] = bool(np.all(flow.dc[0, :-1] > flow.dh[0, :-1]))
        if isinstance(model, GRU):
            update = hand.gru.forward(model.state_dict(), x)[2].layers[0].update
            numbers[f"{name} gate"] = update.mean()
            numbers[f"{name} road"] = np.prod(update[1:], axis=0).mean()
        if name != "LSTM f1":
            run = bptt(model, x)
            numbers[f"{name} reach"] = run.reach[-1, 0] / run.reach[-1, -1]
            numbers[f"{name} dropped"] = (np.linalg.norm(run.truncated(10).dropped["weight_hh_l0"])
                                          / np.linalg.norm(run.gradient["weight_hh_l0"]))
    return numbers


@pytest.fixture(scope="module")
def numbers():
    return measure(0)


@pytest.fixture(scope="module")
def text():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def quoted(text: str, *values: str) -> None:
    for value in values:
        assert value in text, f"notebook 5 should quote {value}"


def test_with_gates_near_one_half_no_model_keeps_its_gradient(numbers, text):
    n = numbers
    quoted(text, f"mean forget gate is\n  {n['LSTM gate']:.2f}", f"mean update gate {n['GRU gate']:.2f}",
           f"RNN keeps {n['RNN h']:.1e}", f"GRU\n  {n['GRU h']:.1e}", f"LSTM {n['LSTM h']:.1e} in $h$",
           f"{n['LSTM c']:.1e} in $c$", f"is {n['LSTM road']:.1e}")
    assert abs(n["LSTM gate"] - 0.5) < 0.02 and abs(n["GRU gate"] - 0.5) < 0.02
    assert max(n["RNN h"], n["GRU h"], n["LSTM h"], n["LSTM c"], n["LSTM road"]) < 1e-5  # no model keeps it
    assert n["LSTM c"] / n["LSTM h"] < 10  # "c fades within a factor of ten of h"


def test_with_forget_gates_near_one_the_cell_state_carries_the_gradient(numbers, text):
    n = numbers
    quoted(text, f"mean forget gate\n  is {n['LSTM f3 gate']:.2f}", f"keeps {n['LSTM f3 road']:.1e}",
           f"$c$ keeps {n['LSTM f3 c']:.1e}", f"$h$ keeps {n['LSTM f3 h']:.1e}")
    assert n["LSTM f3 gate"] > 0.9 and n["LSTM f3 road"] > 0.1
    assert n["LSTM f3 c"] > 10 * n["LSTM f3 h"]  # "more than ten times less"
    assert n["LSTM f3 c above h"]


def test_the_grus_road_is_h_itself(numbers, text):
    n = numbers
    quoted(text, f"mean update gate {n['GRU u3 gate']:.2f}", f"update gates\n  is {n['GRU u3 road']:.1e}",
           f"$h$ keeps {n['GRU u3 h']:.1e}")
    assert n["GRU u3 gate"] > 0.9 and n["GRU u3 h"] > 0.1


def test_forget_bias_1_is_in_between(numbers, text):
    n = numbers
    more_h, more_c = n["LSTM f1 h"] / n["LSTM h"], n["LSTM f1 c"] / n["LSTM c"]
    quoted(text, f"keeps {n['LSTM f1 h']:.1e} in $h$ and {n['LSTM f1 c']:.1e} in $c$",
           f"{more_h:,.0f} and {more_c:,.0f} times more")
    assert n["LSTM f1 h"] * 10 < n["LSTM f3 h"] and n["LSTM f1 c"] * 10 < n["LSTM f3 c"]


def test_bptt_bottom_row_is_the_flow_and_truncation_costs_most_where_the_gradient_travels(numbers, text):
    n = numbers
    for name in ("RNN", "LSTM", "LSTM f3"):
        assert n[f"{name} reach"] == pytest.approx(n[f"{name} h"], rel=1e-9)
    quoted(text, f"{n['RNN h']:.1e} for the RNN, {n['LSTM h']:.1e} for the LSTM, {n['LSTM f3 h']:.1e} with",
           f"drops {n['RNN dropped']:.2%}", f"and {n['LSTM dropped']:.2%} for the LSTM",
           f"but {n['LSTM f3 dropped']:.2%} for the LSTM", f"and {n['GRU u3 dropped']:.2%} for the GRU")
    assert min(n["LSTM f3 dropped"], n["GRU u3 dropped"]) > 10 * max(n["RNN dropped"], n["LSTM dropped"])


def test_the_quoted_ratios_are_printed_by_the_notebook(numbers):
    """The text quotes the printed output, not a second computation: the first cell's output holds them."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    n = numbers
    for value in (f"h kept {n['RNN h']:.1e}", f"c kept {n['LSTM f3 c']:.1e}", f"road (product of u) "
                  f"{n['GRU u3 road']:.1e}", f"drops {n['LSTM f3 dropped']:.2%}"):
        assert value in printed


@pytest.mark.parametrize("seed", [1, 2])
def test_the_claims_about_the_models_hold_for_other_draws(seed):
    n = measure(seed)
    assert max(n["RNN h"], n["GRU h"], n["LSTM h"], n["LSTM c"]) < 1e-5 and n["LSTM c"] / n["LSTM h"] < 10
    assert n["LSTM f3 c"] > 10 * n["LSTM f3 h"] and n["LSTM f3 c above h"] and n["GRU u3 h"] > 0.1
    assert n["LSTM f1 h"] > 1e3 * n["LSTM h"] and n["LSTM f1 c"] > 1e3 * n["LSTM c"]
    assert min(n["LSTM f3 dropped"], n["GRU u3 dropped"]) > 10 * max(n["RNN dropped"], n["LSTM dropped"])
