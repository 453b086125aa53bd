"""The LSTMs the command line and the README's figures build (`lstm.demo`), and what they cost before they are
built: node counts against real graphs, absurd sizes refused at once (nothing built, no overflow, one line),
and the README's examples built the same way as the README's code builds them."""

from __future__ import annotations

import itertools
import time
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstm.demo
import lstm.training.estimate
import lstm.training.run
from autograd import stage
from autograd.core import topological_order
from lstm import LSTM, RNN, compare, gradient_flow
from lstm.demo import (
    DEMO_FLOW,
    DEMO_SCALAR,
    DEMO_TENSOR,
    NODE_LIMIT,
    SizeError,
    Sizes,
    check_comparison,
    check_drawing,
    check_explanation,
    describe_stages,
    gradient_flows,
    lstm_loss,
    names_a_stage,
    stage_paths,
)
from lstm.training import TrainConfig


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Any model built, or comparison run, fails the test: the checks must answer from the sizes alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("built before the sizes were checked")

    for name in ("LSTM", "ScalarLSTM"):
        monkeypatch.setattr(lstm.demo, name, refuse)
    monkeypatch.setattr(lstm.training.estimate, "memory_limit", lambda: 10**9)  # the same outcome on every machine


@pytest.mark.parametrize("scalar, shape", [
    *((False, shape) for shape in itertools.product((1, 3), (1, 4), (1, 2, 3), (1, 2, 5), (1, 2))),
    *((True, shape) for shape in itertools.product((1, 3), (1, 2, 5), (1, 2), (1, 3), (1, 2))),
])
def test_node_counts_are_known_before_building(scalar, shape):
    sizes = Sizes(*shape)
    built = len(topological_order(lstm_loss(sizes, seed=0, scalar=scalar)))
    assert built <= sizes.nodes(scalar) <= 1.12 * built + 1, (sizes, built, sizes.nodes(scalar))


def test_absurd_sizes_are_refused_at_once_with_the_estimate(nothing_is_built):
    started = time.perf_counter()
    with pytest.raises(SizeError, match=r"the graph of an LSTM of these sizes would take about 1,600,014 nodes, "
                                        r"\S+ GB of memory and .* \(the limit is 50,000 nodes\): use smaller sizes$"):
        check_drawing(Sizes(seq_len=100_000), scalar=False)  # 51 s and 2.1 GB before anything was refused
    with pytest.raises(SizeError, match=r"ScalarLSTM of these sizes would take about 8\.3e\+21 nodes, .* years"):
        lstm_loss(Sizes(1, 2, 1, 10**20, 1), scalar=True)  # its inputs were made before any check
    with pytest.raises(SizeError, match=r"use smaller sizes, or the Tensor LSTM \(--tensor\)$"):
        check_drawing(Sizes(1, 2, 1, 10**20, 1), scalar=True)
    with pytest.raises(SizeError, match=r"at least one shape for each, more than --max-nodes 2,000: .*--roll-up"):
        check_drawing(Sizes(1, 2, 1, 2500, 1), scalar=False)
    with pytest.raises(SizeError, match="this process may use 1.0 GB: use smaller sizes$"):
        check_drawing(Sizes(3, 1000, 1, 10, 1000), scalar=False)  # few nodes, but large arrays
    with pytest.raises(SizeError, match=r"comparing the gradients at these sizes would take .*; this process may "
                                        "use 1.0 GB"):
        check_comparison(Sizes(seq_len=10**20), scalar=False, finite_differences=False)
    with pytest.raises(SizeError, match=r"leave them out \(--no-finite-differences\)"):
        check_comparison(Sizes(num_layers=10**99), scalar=False)  # a formula, never a loop over the layers
    with pytest.raises(SizeError, match=r"leave the ScalarLSTM out \(--no-scalar\)"):
        check_comparison(Sizes(hidden_size=300))
    with pytest.raises(SizeError, match="or explain an expression"):
        check_explanation(Sizes(hidden_size=1000))
    assert time.perf_counter() - started < 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 10**100 - 1), min_size=5, max_size=5), st.booleans(), st.booleans(), st.booleans())
def test_any_sizes_get_an_estimate_or_one_line(nothing_is_built, shape, scalar, roll_up, finite_differences):
    """Sizes of up to 100 digits each (what the command line takes): a cost within the limits, or a SizeError in
    one line, never an overflow."""
    sizes = Sizes(*shape)
    checks = {"draw": lambda: check_drawing(sizes, scalar, roll_up=roll_up),
              "explain": lambda: check_explanation(sizes),
              "compare": lambda: check_comparison(sizes, scalar=scalar, finite_differences=finite_differences)}
    for name, check in checks.items():
        try:
            cost = check()
        except SizeError as refused:
            assert "\n" not in str(refused) and len(str(refused)) < 400, str(refused)
            continue
        assert cost.memory <= 10**9 and (name == "compare" or cost.nodes <= NODE_LIMIT), (name, sizes, str(cost))


def test_the_demos_sizes_pass_their_checks():
    assert check_drawing(DEMO_SCALAR, True).nodes < 200 and check_drawing(DEMO_TENSOR, False).nodes < 200
    assert check_comparison(Sizes(seq_len=5)).seconds < 10  # compare's defaults, as the demo runs it


def test_a_pattern_that_names_no_stage_is_found():
    stages = stage_paths(lstm_loss(Sizes(1, 2, 2, 3, 1), scalar=False))
    assert ("t=1",) in stages and ("t=3", "layer 1", "forget gate") in stages and ("loss",) in stages
    for pattern in ("t=*", "t=2", "forget gate", "t=1/layer 0", "layer 1"):
        assert names_a_stage(pattern, stages), pattern
    for pattern in ("t=9", "t=0", "layer 2", "", "t=1/forget gate"):
        assert not names_a_stage(pattern, stages), pattern
    described = describe_stages(stages)
    assert {"t=1 … t=3", "layer 0 … layer 1", "forget gate", "loss"} <= set(described.split(", ")), described


def test_one_name_per_quantity_in_the_library():
    """Time steps are seq_len and sequences batch_size wherever they appear; the command line's flags are the
    same names (--seq-len, --batch-size)."""
    names = [field.name for field in fields(Sizes)]
    assert names == ["input_size", "hidden_size", "num_layers", "seq_len", "batch_size"]
    assert set(names) <= set(compare.__code__.co_varnames[:compare.__code__.co_argcount])
    assert {"hidden_size", "num_layers", "seq_len", "batch_size", "steps"} <= {f.name for f in fields(TrainConfig)}


def test_lstm_loss_is_the_readmes_example():
    """The README's code, as written there: the figure script draws lstm_loss(DEMO_TENSOR) in its place."""
    model = LSTM(input_size=3, hidden_size=4, seed=0)
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    out, _ = model(x)
    with stage("loss"):
        readme = out[-1].sum()
    built = lstm_loss(DEMO_TENSOR, seed=0)
    assert built.label == "L" and built.data == readme.data
    assert [node.stage for node in topological_order(built)] == [node.stage for node in topological_order(readme)]


def test_gradient_flows_are_notebook_fives():
    x = np.random.default_rng(0).standard_normal((30, 4, 3))
    models = {"RNN (tanh)": RNN(3, 16, seed=0), "LSTM": LSTM(3, 16, seed=0),
              "LSTM, forget bias 1": LSTM(3, 16, seed=0, forget_bias=1.0)}
    flows = gradient_flows(DEMO_FLOW, seed=0)
    assert list(flows) == list(models)
    for name, model in models.items():
        np.testing.assert_array_equal(flows[name].dh, gradient_flow(model, x, loss="last").dh)
