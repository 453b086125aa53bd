"""`lstm.compare`: the scalar and Tensor LSTMs, the hand derivation and finite differences agree."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_derivation import MISTAKES, learners_backward  # the learner of the derivation tests, with its mistakes

from lstm import compare, hand
from lstm.checks.compare import FINITE, REFERENCE, SCALAR, TENSOR, YOURS, Difference
from lstm.models.lstm import parameter_shapes

GRADIENTS = ("x", "h0", "c0")


@pytest.mark.parametrize("config", [
    dict(),  # the defaults: 1 layer, 5 steps, batch 2
    dict(input_size=2, hidden_size=3, num_layers=2, seq_len=10, batch_size=3, seed=1),
    dict(input_size=1, hidden_size=2, num_layers=2, seq_len=12, batch_size=2, seed=7),
    dict(input_size=4, hidden_size=1, num_layers=3, seq_len=10, batch_size=2, seed=3),
], ids=["defaults", "2 layers, T=10, B=3", "2 layers, T=12", "3 layers, H=1"])
def test_all_four_methods_agree(config):
    result = compare(**config)
    assert result.methods == (TENSOR, SCALAR, FINITE)
    assert result.passed, str(result)
    exact = [d for (_, method), d in result.differences.items() if method != FINITE]
    # the two engines reproduce the hand derivation to rounding, far inside the stated tolerance
    assert max(d.relative for d in exact) < 1e-12
    # the five-point stencil brings finite differences within the same 1e-9 (issue: all four agree to 1e-9)
    assert max(d.relative for (_, method), d in result.differences.items() if method == FINITE) < 1e-9
    assert set(result.settings["tolerances"].values()) == {1e-9}


def test_every_parameter_and_input_gets_a_row_for_every_method():
    result = compare(num_layers=2, seq_len=3)
    names = list(parameter_shapes(3, 4, 2))
    assert result.quantities == ("out", "h_n", "c_n", *names, *GRADIENTS)
    for quantity in (*names, *GRADIENTS):
        for method in result.methods:
            assert (quantity, method) in result.differences
    assert ("out", FINITE) not in result.differences  # finite differences give gradients only
    reference = result.results[REFERENCE]
    assert reference["x"].shape == (3, 2, 3) and reference["h0"].shape == (2, 2, 4)


def test_the_initial_state_is_not_zero_and_the_loss_reaches_everything():
    result = compare()
    for name in GRADIENTS:
        assert np.abs(result.results[REFERENCE][name]).min() > 0
    assert all(np.abs(g).max() > 0 for g in result.results[TENSOR].values())


def test_slow_methods_can_be_left_out():
    result = compare(include_scalar=False, include_finite_differences=False, seq_len=20, batch_size=4)
    assert result.methods == (TENSOR,) and result.passed
    assert SCALAR not in str(result) and FINITE not in str(result)


@settings(max_examples=10, deadline=None)
@given(input_size=st.integers(1, 4), hidden_size=st.integers(1, 4), num_layers=st.integers(1, 3),
       seq_len=st.integers(1, 15), batch_size=st.integers(1, 4), seed=st.integers(0, 1000))
def test_random_configurations_agree(input_size, hidden_size, num_layers, seq_len, batch_size, seed):
    result = compare(input_size, hidden_size, num_layers, seq_len, batch_size, seed, include_scalar=seq_len < 5,
                     include_finite_differences=seq_len < 5)
    assert result.passed, str(result)


def test_text_markdown_and_html_show_the_table():
    result = compare(seq_len=3)
    text = str(result)
    assert text.startswith("LSTM gradients against the hand derivation: input 3, hidden 4, 1 layer, 3 steps")
    for quantity in ("out", "dL/d weight_ih_l0", "dL/d bias_hh_l0", "dL/d x", "dL/d h0", "dL/d c0"):
        assert quantity in text
    for method in result.methods:
        assert method in text
    assert "tolerances: LSTM (Tensor) 1e-09, ScalarLSTM (Value) 1e-09, finite differences 1e-09" in text
    assert text.endswith("all passed")

    markdown = result.to_markdown()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(result.quantities)
    assert len({line.count("|") for line in table}) == 1  # every row has every column
    assert "| dL/d weight_hh_l0 |" in markdown

    page = result._repr_html_()
    assert page.count("<tr>") == 1 + len(result.quantities) and "</table>" in page


def test_a_failure_is_reported():
    result = compare(seq_len=2, include_scalar=False, finite_difference_tolerance=1e-14)
    assert not result.passed and not result
    assert not result.differences[("weight_hh_l0", FINITE)].passed
    assert result.differences[("weight_hh_l0", TENSOR)].passed
    assert " NO" in str(result) and str(result).endswith("SOME CHECKS FAILED")
    assert "color:#b91c1c" in result._repr_html_()


def test_difference_is_relative_for_large_arrays_and_absolute_for_small_ones():
    big = Difference.between(np.array([1000.0 + 1e-7]), np.array([1000.0]), tolerance=1e-9)
    assert big.passed and big.relative == pytest.approx(1e-10, rel=1e-3)
    small = Difference.between(np.array([1e-3 + 2e-9]), np.array([1e-3]), tolerance=1e-9)
    assert not small.passed and small.max_abs == pytest.approx(2e-9, rel=1e-6)
    assert Difference.between(np.zeros(3), np.zeros(3), 1e-9) == Difference(0.0, 0.0, 1e-9, True)


# --- a derivation of your own --------------------------------------------------------------------------------

def test_your_derivation_joins_the_table_and_is_checked_stage_by_stage():
    def mine(cache, d_out, d_h, d_c):
        return hand.backward(cache, d_out, d_h, d_c, adjoints=True)

    result = compare(num_layers=2, seq_len=3, include_scalar=False, include_finite_differences=False,
                     derivation=mine)
    assert result.methods == (TENSOR, YOURS) and result.passed
    assert all((name, YOURS) in result.differences for name in (*parameter_shapes(3, 4, 2), *GRADIENTS))
    assert result.derivation.passed and len(result.derivation.checks) == 8 + 3 + 3 * 2 * 11
    assert "your derivation: all 77 gradients it returned agree with the engine's" in str(result)


def test_a_wrong_derivation_is_reported_at_its_first_wrong_stage():
    def mine(cache, d_out, d_h, d_c):
        return learners_backward(cache, d_out, d_h, d_c, mistake=MISTAKES[1])

    result = compare(seq_len=3, include_scalar=False, include_finite_differences=False, derivation=mine)
    assert not result.passed and not result.differences[("weight_hh_l0", YOURS)].passed
    assert result.differences[("weight_hh_l0", TENSOR)].passed
    first = result.derivation.first_mismatch
    assert first.name == "h[t=2]" and first.missing == ("input gate", "cell candidate", "output gate")
    text = str(result)
    assert ("your derivation first differs at h[t=2] (stage t=2 / layer 0 / hidden state), going back from L"
            in text)
    assert "yours equals the forget gate's and outputs' branches only" in text
    assert text.endswith("SOME CHECKS FAILED") and "print(comparison.derivation)" in text
    assert "your derivation first differs at h[t=2]" in result._repr_html_()


def test_your_derivation_must_return_known_names():
    with pytest.raises(ValueError, match="no node is labelled 'dh_1'"):
        compare(seq_len=2, include_scalar=False, include_finite_differences=False,
                derivation=lambda cache, d_out, d_h, d_c: {"dh_1": np.zeros((2, 4))})
    with pytest.raises(TypeError, match="must return a dict of gradients by name"):
        compare(seq_len=2, include_scalar=False, include_finite_differences=False,
                derivation=lambda cache, d_out, d_h, d_c: d_out)
