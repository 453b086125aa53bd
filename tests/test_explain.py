"""`autograd.view.explain`: the chain rule written out. Its terms add up to the engine's gradients, each term is the
upstream adjoint times the local derivative, the printed arithmetic checks out by hand, and the Markdown/LaTeX
is valid math for Jupyter."""

from __future__ import annotations

import doctest
import importlib
import math
import re
from contextlib import ExitStack

import numpy as np
import pytest
from conftest import reduce_to_shape
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autograd
from autograd import Constant, Tensor, Value, draw, explain
from autograd.core import topological_order
from autograd.view import notation
from autograd.view.explain import LATEX_BLOCK, MAX_STEPS, MAX_TERMS, WIDTH
from autograd.view.notation import (
    format_number,
    format_sum,
    latex_name,
    names_in,
    node_names,
    summarize,
)
from autograd.view.order import reading_order, stage_order
from lstm import LSTM, ScalarLSTM
from lstm.models.lstm import labelled_values

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers ------------------------------------------------------------------------------------------------

def edges_into(root):
    """How many times each node is an input of a node under ``root`` (its branches)."""
    counts = {}
    for node in topological_order(root):
        for parent in node.parents:
            counts[parent] = counts.get(parent, 0) + 1
    return counts


def assert_derivation_matches_engine(root, explanation, close):
    """Every node that needs a gradient has a step; the step's terms add up to the engine's gradient; each term
    is upstream adjoint × local derivative, its upstream written before it (the pass works in reverse)."""
    nodes = topological_order(root)
    assert {step.node for step in explanation.steps} == {node for node in nodes if node.requires_grad}
    position = {step.node: i for i, step in enumerate(explanation.steps)}
    branches = edges_into(root)
    for step in explanation.steps:
        close(step.adjoint, autograd.grad(root, step.node))
        if step.node is root:
            assert step.terms == ()
            close(step.adjoint, np.ones_like(root.data) if isinstance(root.data, np.ndarray) else 1.0)
            continue
        assert len(step.terms) == branches[step.node]
        total = step.terms[0].value
        for term in step.terms[1:]:
            total = total + term.value
        close(total, step.adjoint)
        for term in step.terms:
            assert term.consumer.parents[term.position] is step.node
            assert term.upstream is explanation.step(term.consumer).adjoint
            assert position[term.consumer] < position[step.node]
            assert np.shape(term.value) == np.shape(step.node.data)


def scalar_close(actual, expected):
    assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


def array_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12)


def equations(text):
    """The backward equations of a text explanation: left side -> its sides (a wrapped one joined back)."""
    lines = text.split("\nBackward", 1)[1].splitlines()[1:]
    blocks: dict[str, list[str]] = {}
    current = None
    for line in lines:
        stripped = line.strip()
        if re.match(r"d\S+/d\S+ = ", stripped):
            current = stripped.split(" = ", 1)[0]
            blocks[current] = [stripped]
        elif current and stripped.startswith(("= ", "+ ")):
            blocks[current].append(stripped)
        else:
            current = None
    return {lhs: " ".join(parts).split(" = ") for lhs, parts in blocks.items()}


def summands(side):
    return [float(text.strip("()")) for text in side.split(" + ")]


def stage_headings(text):
    forward, backward = text.split("\nBackward", 1)
    heading = re.compile(r"^  \[(.*)\]$", re.M)
    return heading.findall(forward), heading.findall(backward)


def latex_problems(math_text):
    """What would stop MathJax or LaTeX in a piece of math: unbalanced braces or environments, a raw "$",
    characters outside ASCII."""
    problems = []
    unescaped = re.sub(r"\\[{}$]", "", math_text)
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            problems.append("a } closes nothing")
            break
    if depth > 0:
        problems.append("a { is never closed")
    if "$" in unescaped:
        problems.append("a raw $ inside math")
    if not math_text.isascii():
        problems.append(f"non-ASCII: {sorted({c for c in math_text if not c.isascii()})}")
    if math_text.count(r"\begin{aligned}") != math_text.count(r"\end{aligned}"):
        problems.append("unbalanced aligned environment")
    if math_text.count(r"\left(") != math_text.count(r"\right)"):
        problems.append(r"unbalanced \left( \right)")
    return problems


def markdown_problems(markdown):
    problems = []
    for line in markdown.splitlines():
        pieces = re.split(r"(?<!\\)\$", line)
        if len(pieces) % 2 == 0:
            problems.append(f"odd number of $ in {line!r}")
        problems += [f"{problem} in {piece!r}" for piece in pieces[1::2] for problem in latex_problems(piece)]
    return problems


def latex_document_problems(latex):
    """Problems in `to_latex`'s output: display blocks, each an aligned environment short enough for MathJax."""
    blocks = latex.split("$$")
    assert blocks[0] == blocks[-1] == "" and all(between == "\n" for between in blocks[2:-1:2])
    problems = []
    for block in blocks[1::2]:
        assert block.startswith("\n\\begin{aligned}\n") and block.endswith("\n\\end{aligned}\n")
        if len(block) > LATEX_BLOCK + 100:
            problems.append(f"a block of {len(block)} characters")
        problems += latex_problems(block)
    return problems


def tanh_of_square():
    a = Value(2.0, label="a")
    return a, (a * a + 1).tanh()


def two_step_cell():
    """A small scalar LSTM-like recurrence in functional stages: gate, cell, hidden, at t=1 and t=2."""
    w, u = Value(0.5, label="w"), Value(-0.3, label="u")
    h, c = Value(0.0, label="h0"), Value(0.0, label="c0")
    for t, x in enumerate([1.0, 2.0], 1):
        with autograd.stage(f"t={t}"):
            with autograd.stage("gate"):
                f = (w * x + u * h).sigmoid()
                f.label = "f"
            with autograd.stage("cell"):
                c = f * c + (1 - f) * x
                c.label = "c"
            with autograd.stage("hidden"):
                h = c.tanh()
                h.label = "h"
    with autograd.stage("loss"):
        loss = (h - 0.5) ** 2
    return (w, u), loss


# --- numbers ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "precision", "text"), [
    (3.6317e-4, 4, "0.0003632"), (7.2634e-4, 4, "0.0007263"), (2.0, 4, "2"), (0.5, 4, "0.5"),
    (-0.0, 4, "0"), (0.0, 4, "0"), (1.5e-7, 4, "1.5e-7"), (98765.4, 4, "9.877e4"), (2.5e6, 4, "2.5e6"),
    (-1 / 3, 4, "-0.3333"), (1 / 3, 2, "0.33"), (1 / 3, 6, "0.333333"), (np.float32(0.25), 4, "0.25"),
    (math.inf, 4, "inf"), (-math.inf, 4, "-inf"), (math.nan, 4, "nan"),
])
def test_format_number_writes_significant_digits(x, precision, text):
    assert format_number(x, precision) == text


def test_a_small_fork_reads_as_correct_arithmetic():
    """The reported bug: fixed decimals printed dL/da = 0.0004 + 0.0004 = 0.0007."""
    a, root = tanh_of_square()
    text = explain(root).to_text()
    total = equations(text)["dL/da"]
    assert total[-2:] == ["0.00036317 + 0.00036317", "0.0007263"]
    assert "0.0004 " not in text
    assert format_number(math.fsum(summands(total[-2])), 4) == total[-1]
    assert total[-1] == format_number(autograd.grad(root, a))


def test_format_sum_adds_digits_only_where_needed():
    assert format_sum([0.25, 0.5], 0.75) == (["0.25", "0.5"], "0.75")
    assert format_sum([3.6317e-4, 3.6317e-4], 7.2634e-4) == (["0.00036317", "0.00036317"], "0.0007263")
    shown, total = format_sum([1.00001, -1.0], 1.00001 - 1.0)  # cancellation needs the sixth digit
    assert shown == ["1.00001", "-1"] and total == "1e-5"
    assert format_sum([math.inf, -math.inf], math.nan) == (["inf", "-inf"], "nan")


terms_strategy = st.lists(st.one_of(st.floats(-1e3, 1e3), st.floats(-1e-3, 1e-3)), min_size=2, max_size=8)


@SETTINGS
@given(terms_strategy, st.integers(1, 6))
def test_format_sum_printed_terms_add_up_to_printed_total(terms, precision):
    shown, total = format_sum(terms, math.fsum(terms), precision)
    assert total == format_number(math.fsum(terms), precision)
    assert format_number(math.fsum(float(text) for text in shown), precision) == total
    for text, term in zip(shown, terms):  # each is its term, rounded to at least `precision` digits
        exponent = math.floor(math.log10(abs(term))) if term else 0
        assert abs(float(text) - term) <= 0.5 * 10.0 ** (exponent - precision + 1) * (1 + 1e-12)


def test_precision_is_significant_digits():
    _, root = tanh_of_square()
    assert "= 0.00018 " in explain(root, precision=2).to_text()
    assert "= 0.00018158" in explain(root, precision=5).to_text()


def test_summaries_show_tiny_arrays_in_full_and_larger_ones_by_shape():
    assert summarize(np.array([1.5, -2.0])) == "[1.5, -2]"
    assert summarize(np.array([[1e-5, 2.0]])) == "[[1e-5, 2]]"
    assert summarize(np.arange(12.0).reshape(3, 4)) == "⟨3×4 min 0, mean 5.5, max 11⟩"
    assert summarize(np.array(0.125)) == "0.125"


# --- names --------------------------------------------------------------------------------------------------

def test_the_root_is_called_by_its_label_or_L():
    _, root = tanh_of_square()
    assert equations(explain(root).to_text())["dL/dL"] == ["dL/dL", "1"]
    root.label = "y"
    text = explain(root).to_text()
    assert "  dy/dy = 1" in text and "dy/da = " in text and "dL/" not in text


def test_the_root_is_not_called_L_when_another_node_is():
    a = Value(1.0, label="L")
    root = a * 3
    explanation = explain(root)
    assert explanation.names[root] == "v1" and explanation.names[a] == "L"
    assert "dv1/dL = dv1/dv1 · ∂v1/∂L = 1 · (3) = 3" in explanation.to_text()


def test_names_count_up_along_the_listing_and_shared_labels_are_numbered():
    _, loss = two_step_cell()
    explanation = explain(loss)
    assert explanation.names == node_names(loss)
    generated = [int(line.name[1:]) for line in explanation.forward if re.fullmatch(r"v\d+", line.name)]
    assert generated == list(range(1, len(generated) + 1))
    assert {"f_1", "f_2", "c_1", "c_2", "h_1", "h_2"} <= set(explanation.names.values())


def test_the_vocabulary_drawings_import_still_works():
    a = Value(2.0, label="a")
    b = a * -2.0
    order = reading_order(b)
    names = names_in(order)
    assert names[b] == "v1" and names[order[1]] == "-2"
    assert notation.expression(b, names) == "a * (-2)"
    assert notation.local_formula(b, 0, names) == "(-2)"
    assert notation.local_derivative(b, 0) == -2.0
    assert notation.is_constant(order[1]) and not notation.is_constant(a)
    assert notation.shape_text((2, 3)) == "2×3" and notation.shape_text(()) == "scalar"
    assert notation.array_stats(np.array([1.0, 3.0])) == "min 1, mean 2, max 3"


def test_the_module_example_is_what_it_prints():
    result = doctest.testmod(importlib.import_module("autograd.view.explain"))  # autograd.view.explain is the function
    assert result.attempted > 0 and result.failed == 0


# --- the derivation agrees with the engine ------------------------------------------------------------------

UNARY = {
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
    "square": lambda x: x * x,
    "neg": lambda x: -x,
    "scale": lambda x: x * -1.5,
    "exp": lambda x: x.tanh().exp(),
    "log": lambda x: (x * x + 1).log(),
    "sqrt": lambda x: (x * x + 0.5).sqrt(),
    "exponent": lambda x: 2 ** x.tanh(),  # a node used as an exponent
    "reciprocal": lambda x: 1 / (1 + x * x),
    "relu": lambda x: x.relu(),
    "abs": lambda x: abs(x),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1 + b * b),
    "pow": lambda a, b: (1 + a * a) ** b.tanh(),
}
STAGES = [(), ("p",), ("q",), ("p", "r")]

instructions = st.lists(st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY)), st.integers(0, 99),
                                  st.integers(0, 99), st.integers(0, len(STAGES) - 1)), min_size=1, max_size=14)


def build(leaves, program):
    """Run a random program: each op reads earlier nodes (often the same one twice: forks), in a random stage."""
    nodes = list(leaves)
    for name, i, j, stage in program:
        a, b = nodes[-1 - i % len(nodes)], nodes[j % len(nodes)]
        with ExitStack() as stages:
            for part in STAGES[stage]:
                stages.enter_context(autograd.stage(part))
            nodes.append(UNARY[name](a) if name in UNARY else BINARY[name](a, b))
    return nodes[-1]


@SETTINGS
@given(st.lists(st.floats(-2, 2).map(lambda v: round(v, 3)), min_size=1, max_size=3), instructions)
def test_scalar_terms_add_up_to_the_engines_gradients(values, program):
    leaves = [Value(v, label=f"x{i}") for i, v in enumerate(values)]
    root = build(leaves, program)
    explanation = explain(root, max_steps=None)
    assert_derivation_matches_engine(root, explanation, scalar_close)
    for step in explanation.steps:
        for term in step.terms:  # the local derivative is defined for every scalar op here
            assert term.local is not None
            assert term.value == pytest.approx(term.upstream * term.local, rel=1e-9, abs=1e-300)

    # what is printed: every listing is in dependency order, and each equation ends in the engine's number,
    # with fork sums a hand-checker can add up
    listed = [line.node for line in explanation.forward]
    assert all(listed.index(parent) < listed.index(line.node) for line in explanation.forward
               for parent in line.node.parents if parent in listed)
    written = equations(explanation.to_text())
    assert len(written) == len(explanation.steps)
    for step in explanation.steps:
        sides = written[f"dL/d{step.name}" if step.node is not root else "dL/dL"]
        assert sides[-1] == format_number(step.adjoint)
        if step.is_fork and len(step.terms) <= MAX_TERMS and math.isfinite(step.adjoint):
            assert format_number(math.fsum(summands(sides[-2])), 4) == sides[-1]
    assert markdown_problems(explanation.to_markdown()) == []
    assert latex_document_problems(explanation.to_latex()) == []


SHAPES = [(2, 3), (3,), (1, 3), (2, 1), ()]
ELEMENTWISE = {name: UNARY[name] for name in ("tanh", "sigmoid", "square", "neg", "scale", "log", "reciprocal")}
ELEMENTWISE_BINARY = {name: BINARY[name] for name in ("add", "sub", "mul", "div")}


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(SHAPES) - 1), st.booleans()), min_size=1, max_size=3),
       st.lists(st.tuples(st.sampled_from(sorted(ELEMENTWISE) + sorted(ELEMENTWISE_BINARY)), st.integers(0, 99),
                          st.integers(0, 99)), min_size=1, max_size=10),
       st.integers(0, 2**32 - 1))
def test_tensor_terms_are_unbroadcast_and_add_up_to_the_engines_gradients(leaf_specs, program, seed):
    rng = np.random.default_rng(seed)
    leaves = [Tensor(rng.standard_normal(SHAPES[shape]), requires_grad=needs_grad, label=f"x{i}")
              for i, (shape, needs_grad) in enumerate(leaf_specs)]
    nodes = list(leaves)
    for name, i, j in program:
        a, b = nodes[-1 - i % len(nodes)], nodes[j % len(nodes)]
        nodes.append(ELEMENTWISE[name](a) if name in ELEMENTWISE else ELEMENTWISE_BINARY[name](a, b))
    root = nodes[-1].sum()
    assume(root.requires_grad)
    explanation = explain(root, max_steps=None)
    assert_derivation_matches_engine(root, explanation, array_close)
    for step in explanation.steps:
        for term in step.terms:
            if isinstance(term.local, np.ndarray):  # elementwise: upstream × local, summed over any broadcast
                product = term.upstream * term.local
                array_close(term.value, reduce_to_shape(product, step.node.shape))
                assert term.summed == (product.shape != step.node.shape)
    assert markdown_problems(explanation.to_markdown()) == []
    assert latex_document_problems(explanation.to_latex()) == []


def test_a_forks_branches_in_a_times_a():
    a, root = tanh_of_square()
    step = explain(root).step(a)
    assert step.is_fork and [term.position for term in step.terms] == [0, 1]
    assert [term.formula for term in step.terms] == ["a", "a"]
    assert sum(term.value for term in step.terms) == autograd.grad(root, a)


def test_a_value_used_as_an_exponent():
    a, c = Value(2.0, label="a"), Value(3.0, label="c")
    explanation = explain(2 ** a * a**c)
    (term,) = [term for term in explanation.step(a).terms if term.consumer.parents[0] is not a]  # 2^a
    assert term.formula == "2^a*log(2)" and term.local == pytest.approx(4 * math.log(2))
    assert explanation.step(c).terms[0].formula == "a^c*log(a)"
    assert r"2^{a} \cdot \log(2)" in explanation.to_markdown()
    scalar_close(explanation.step(a).adjoint, autograd.grad(2 ** a * a**c, a))


def test_constants_are_written_as_numbers_and_get_no_step():
    a = Value(1.5, label="a")
    root = (a * -2.0 + 3).tanh()
    explanation = explain(root)
    text = explanation.to_text()
    assert "v1 = a * (-2) = -3" in text and "v2 = v1 + 3 = 0" in text
    assert "dL/da = dL/dv1 · ∂v1/∂a = 1 · (-2) = -2" in text
    assert len(explanation.steps) == 4 and [line.name for line in explanation.forward] == ["a", "v1", "v2", "L"]
    assert "a \\cdot (-2)" in explanation.to_markdown()
    named = Constant(4.0)
    named.label = "k"
    explanation = explain(a * named)
    assert "k = 4" in explanation.to_text()
    with pytest.raises(KeyError, match="'k'"):
        explanation.step(named)


def test_a_tensor_graph_with_matmul_sum_and_broadcasting():
    x = Tensor(np.arange(6.0).reshape(2, 3), label="x")
    w = Tensor(np.full((3, 2), 0.5), requires_grad=True, label="W")
    b = Tensor([0.1, 0.2], requires_grad=True, label="b")
    root = ((x @ w + b).tanh() * b).sum()
    explanation = explain(root)
    assert_derivation_matches_engine(root, explanation, array_close)
    terms = explanation.step(b).terms
    assert [term.value.shape for term in terms] == [(2,), (2,)] and all(term.summed for term in terms)
    text = explanation.to_text()
    assert "x = ⟨2×3 min 0, mean 2.5, max 5⟩" in text and "b = [0.1, 0.2]" in text
    assert "summed to shape 2" in text
    # a matrix product's branch term keeps its order: dL/dW = x^T @ dL/dv1, never dL/dv1 · x^T
    assert re.search(r"dL/dW = x\^T @ dL/dv1 = x\^T @ \[\[", " ".join(text.split()))
    assert "dL/dv1 · ∂v1/∂W" not in text
    assert "dL/dW" in text and "⟨3×2 min " in equations(text)["dL/dW"][-1]
    assert "x" not in [step.name for step in explanation.steps]  # x needs no gradient
    latex = explanation.to_latex()
    assert r"\langle 2 \times 3 \mid \min 0" in latex and latex_document_problems(latex) == []


def test_a_non_scalar_root_is_seeded_with_ones():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True, label="x")
    root = x * 2
    explanation = explain(root)
    array_close(explanation.step(root).adjoint, np.ones(3))
    array_close(explanation.step(x).adjoint, [2.0, 2.0, 2.0])


def test_a_create_graph_gradient_can_be_explained():
    a, c = Value(2.0, label="a"), Value(3.0, label="c")
    da = autograd.grad(a * a * c, a, create_graph=True)  # 2ac, recorded in the stage "backward"
    explanation = explain(da)
    assert_derivation_matches_engine(da, explanation, scalar_close)
    scalar_close(explanation.step(a).adjoint, 2 * c.data)
    scalar_close(explanation.step(c).adjoint, 2 * a.data)
    assert "backward" in stage_headings(explanation.to_text())[0]


def test_explaining_leaves_grad_alone():
    a, root = tanh_of_square()
    explain(root)
    assert a.grad == 0.0 and root.grad == 0.0


def test_steps_can_be_looked_up_by_node_or_name():
    a, root = tanh_of_square()
    explanation = explain(root)
    assert explanation.step("a") is explanation.step(a)
    assert explanation.step("L").node is root
    with pytest.raises(KeyError, match="'nothing'"):
        explanation.step("nothing")
    with pytest.raises(KeyError, match="outside"):
        explanation.step(Value(1.0))


# --- stages -------------------------------------------------------------------------------------------------

def test_stages_are_listed_once_each_forward_then_in_reverse():
    (w, u), loss = two_step_cell()
    reading = [node.stage for node in reading_order(loss) if node.op is not None]
    runs = [stage for i, stage in enumerate(reading) if i == 0 or stage != reading[i - 1]]
    assert len(runs) > len(set(runs))  # the reading order hops between stages: regrouping is needed
    explanation = explain(loss)
    forward, backward = stage_headings(explanation.to_text())
    stages = ["t=1 / gate", "t=1 / cell", "t=1 / hidden", "t=2 / gate", "t=2 / cell", "t=2 / hidden", "loss"]
    assert forward == ["outside any stage", *stages]
    assert backward == [*reversed(stages), "outside any stage"]
    assert_derivation_matches_engine(loss, explanation, scalar_close)
    assert [step.name for step in explanation.steps[-2:]] == ["u", "w"]  # the weights' sums over time come last
    assert len(explanation.step(w).terms) == 2


def test_stage_order_is_a_topological_order_and_keeps_graphs_without_stages():
    _, loss = two_step_cell()
    order = reading_order(loss)
    listing = stage_order(order)
    assert sorted(map(id, listing)) == sorted(map(id, order))
    seen = set()
    for node in listing:
        assert all(parent in seen for parent in node.parents)
        seen.add(node)
    _, plain = tanh_of_square()
    assert stage_order(reading_order(plain)) == reading_order(plain)


def test_stages_that_feed_each_other_both_ways_keep_the_reading_order():
    x = Value(1.0, label="x")
    with autograd.stage("A"):
        first = x * 2
    with autograd.stage("B"):
        middle = first + 1
    with autograd.stage("A"):
        root = middle * 3
    assert stage_order(reading_order(root)) == reading_order(root)
    explanation = explain(root)
    assert stage_headings(explanation.to_text())[0] == ["outside any stage", "A", "B", "A"]
    assert_derivation_matches_engine(root, explanation, scalar_close)


def test_text_lines_fit_the_width():
    _, loss = two_step_cell()
    assert max(map(len, explain(loss).to_text().splitlines())) <= WIDTH


# --- wrt= ---------------------------------------------------------------------------------------------------

def test_wrt_keeps_the_paths_from_the_given_inputs():
    a, c = Value(2.0, label="a"), Value(3.0, label="c")
    root = a * c + c
    explanation = explain(root, wrt=a)
    assert [step.name for step in explanation.steps] == ["L", "v1", "a"]
    assert [line.name for line in explanation.forward] == ["a", "c", "v1", "L"]  # c still defines v1
    assert "; only the paths from a:" in explanation.to_text()
    assert "only the paths from $a$" in explanation.to_markdown()
    with pytest.raises(KeyError):
        explanation.step(c)
    assert len(explain(root, wrt=[a, c]).steps) == 4
    scalar_close(explanation.step(a).adjoint, autograd.grad(root, a))


@pytest.mark.parametrize(("wrt", "error", "message"), [
    (lambda: Value(1.0, label="z"), ValueError, "'z' is not in the graph of 'L'"),
    (lambda: Value(1.0), ValueError, "an unlabelled Value"),
    (lambda: 3, TypeError, "takes a graph node or several, got int"),
    (lambda: [3], TypeError, "takes graph nodes, got int"),
    (lambda: [], ValueError, "wrt= is empty"),
])
def test_wrt_errors(wrt, error, message):
    _, root = tanh_of_square()
    with pytest.raises(error, match=message):
        explain(root, wrt=wrt())


def test_wrt_an_input_that_needs_no_gradient():
    x = Tensor([1.0, 2.0], label="x")
    w = Tensor([0.5, 0.5], requires_grad=True, label="w")
    with pytest.raises(ValueError, match="'x' needs no gradient"):
        explain((x * w).sum(), wrt=x)


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda root: explain(2.0), TypeError, "expected a graph node .* got float"),
    (lambda root: explain(np.ones(3)), TypeError, "got ndarray"),
    (lambda root: explain(root, format="html"), ValueError, "format must be"),
    (lambda root: explain(root, precision=0), ValueError, "significant digits, at least 1"),
    (lambda root: explain(root, precision=True), ValueError, "significant digits"),
    (lambda root: explain(root, max_steps=0), ValueError, "max_steps"),
    (lambda root: explain(Tensor([1.0]) * 2), ValueError, "depends on nothing that needs a gradient"),
    (lambda root: explain(Constant(1.0)), ValueError, "depends on nothing that needs a gradient"),
])
def test_bad_input_is_refused_clearly(call, error, message):
    _, root = tanh_of_square()
    with pytest.raises(error, match=message):
        call(root)


# --- large graphs -------------------------------------------------------------------------------------------

def test_a_large_graph_is_written_out_in_part_and_kept_whole():
    a = Value(0.5, label="a")
    x = a
    for _ in range(1000):
        x = (x * 0.999 + a).tanh()
    explanation = explain(x)
    assert len(explanation.steps) == 3001 and len(explanation.forward) == 3001
    text = explanation.to_text()
    assert "... 2,801 earlier values not written out" in text
    assert "... 2,801 more steps not written out (explain(..., max_steps=None)" in text
    assert len(text.splitlines()) < 2 * MAX_STEPS + 10
    assert equations(text)["dL/dL"] == ["dL/dL", "1"]  # it starts at the output...
    assert explanation.step(a).adjoint == pytest.approx(autograd.grad(x, a))  # ...and still knows every step
    assert markdown_problems(explanation.to_markdown()) == []
    assert len(explain(x, max_steps=None).to_text().splitlines()) > 6000


def test_a_fork_with_many_branches_is_abridged():
    a = Value(0.1, label="a")
    total = a
    for _ in range(29):
        total = total + a * a
    explanation = explain(total)
    step = explanation.step(a)
    assert len(step.terms) == 59
    sides = equations(explanation.to_text())["dL/da"]
    assert " = ".join(sides).count(f" + ... {59 - MAX_TERMS + 1} more ... + ") == 3  # symbols, products, values
    assert sides[-1] == format_number(autograd.grad(total, a))
    assert r"\cdots\ \text{48 more}\ \cdots" in explanation.to_markdown()


# --- Markdown and LaTeX -------------------------------------------------------------------------------------

def test_markdown_and_latex_of_tanh_of_a_square():
    _, root = tanh_of_square()
    explanation = explain(root)
    markdown = explanation.to_markdown()
    assert r"- $L = \tanh(v_{2}) = 0.9999$" in markdown
    assert (r"4. $\frac{d L}{d a} = \frac{d L}{d v_{1}} \cdot \frac{\partial v_{1}}{\partial a} + \frac{d L}{d v_{1}}"
            r" \cdot \frac{\partial v_{1}}{\partial a} = 0.0001816 \cdot (a = 2) + 0.0001816 \cdot (a = 2) = "
            r"0.00036317 + 0.00036317 = 0.0007263$") in markdown
    assert markdown_problems(markdown) == []
    latex = explanation.to_latex()
    assert r"\frac{d L}{d v_{2}} &= \frac{d L}{d L} \cdot \frac{\partial L}{\partial v_{2}} \\" in latex
    assert latex_document_problems(latex) == []


def test_small_numbers_are_powers_of_ten_in_latex():
    a = Value(1e-3, label="a")
    explanation = explain(a * a * 1e-4)
    assert r"2 \times 10^{-7}" in explanation.to_markdown()
    assert "e-" not in explanation.to_latex()


def test_awkward_labels_make_valid_latex():
    labels = ["x_prev", "W_io[0,1]", "a$b", "h{1}", "50%", "β", "σ_t", "Δ", "c[t=2][0]", "loss", "h_", "x^2",
              "a&b", "#1", "back\\slash", "~", "under_score_name", "two words", "v12", "1.5"]
    values = [Value(0.1 * (i + 1), label=label) for i, label in enumerate(labels)]
    total = values[0]
    for value in values[1:]:
        total = total + value * value
    total.label = "total_loss"
    with autograd.stage("odd_stage #1 {x} & $5"):
        root = total.tanh()
    explanation = explain(root)
    assert markdown_problems(explanation.to_markdown()) == []
    assert latex_document_problems(explanation.to_latex()) == []
    assert r"\_" in explanation.to_latex()


@pytest.mark.parametrize(("name", "latex"), [
    ("h", "h"), ("h_2", "h_{2}"), ("v12", "v_{12}"), ("loss", r"\mathrm{loss}"), ("W_io[0,1]", r"W_{\mathrm{io}}[0,1]"),
    ("c[t=2][0]", "c[t=2][0]"), ("-2", "(-2)"), ("(-2)", "(-2)"), ("1e-07", r"1 \times 10^{-7}"), ("β", r"\beta "),
    ("h_t_1", "h_{t_{1}}"), ("a$b", r"\text{a}\$\text{b}"), ("W_ih x + b", r"W_{\mathrm{ih}}\ x\ \text{+}\ b"),
])
def test_latex_names(name, latex):
    assert latex_name(name) == latex


def test_prose_formulas_are_text_in_latex():
    x = Tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True, label="x")
    root = (x.relu().max(axis=1) + x[0].clip(-1.0, 1.0)).sum()
    explanation = explain(root)
    markdown = explanation.to_markdown()
    assert r"\text{ if } x > 0 \text{ else } 0" in markdown
    assert r"1/k \text{ at each of the } k \text{ maxima } (\text{tied elements share}), \text{ else } 0" in markdown
    assert r"\operatorname{sum}(" in markdown and r"\operatorname{\text" not in markdown
    assert markdown_problems(markdown) == [] and latex_document_problems(explanation.to_latex()) == []
    assert_derivation_matches_engine(root, explanation, array_close)


def test_jupyter_shows_markdown_unless_latex_is_asked_for():
    _, root = tanh_of_square()
    text = explain(root)
    assert str(text) == repr(text) == text.to_text()
    assert text._repr_markdown_() == text.to_markdown() and text._repr_latex_() is None
    markdown = explain(root, format="markdown")
    assert str(markdown) == markdown.to_markdown()
    latex = explain(root, format="latex")
    assert str(latex) == latex.to_latex() == latex._repr_latex_() and latex._repr_markdown_() is None


# --- every name defined, stages in computation order -------------------------------------------------------------

def names_used(explanation):
    """The node names an explanation writes: in its forward expressions and in its adjoint equations."""
    used = set()
    for line in explanation.forward:
        if line.expression is not None:
            used.update(explanation.names[parent] for parent in line.node.parents)
    for step in explanation.steps:
        used.add(step.name)
        for term in step.terms:
            used.update(explanation.names[node] for node in (term.consumer, *term.consumer.parents))
    return used


def test_explain_defines_every_name_it_uses_even_with_wrt():
    model = ScalarLSTM(1, 1, seed=0)
    x = labelled_values(np.array([[[0.5]], [[-1.0]]]), "x")
    out, _ = model(x)
    loss = out[-1, 0, 0]
    weight = model.weight_hh_l0[1, 0]  # the forget gate's recurrent weight, on some paths only
    for explanation in (explain(loss), explain(loss, wrt=weight), explain(loss, wrt=[x[0, 0, 0], weight])):
        defined = {line.name for line in explanation.forward}
        undefined = {name for name in names_used(explanation) - defined if not notation.is_number(name)}
        assert undefined == set()
    lines = {line.name: line for line in explain(loss, wrt=weight).forward}
    off_path = [line for line in lines.values() if line.node.op is not None and line.expression is None]
    assert off_path  # the inputs of nodes on the paths that are themselves off them: written by their values
    assert all(f"{line.name} = " in explain(loss, wrt=weight).to_text() for line in off_path)


@pytest.mark.parametrize("tensor", [False, True], ids=["ScalarLSTM", "LSTM"])
def test_stages_are_listed_in_computation_order_gates_as_drawn(tensor):
    model = LSTM(1, 1, seed=0) if tensor else ScalarLSTM(1, 1, seed=0)
    out, _ = model(np.array([[[0.5]], [[-1.0]]]))
    loss = out[-1].sum() if tensor else out[-1, 0, 0]
    forward, backward = stage_headings(explain(loss, max_steps=None).to_text())
    steps = [heading.split(" / ")[0] for heading in forward if heading.startswith("t=")]
    last = [heading.split(" / ")[-1] for heading in forward if heading.split(" / ")[0] == steps[-1]]
    gates = ["input gate", "forget gate", "cell candidate", "output gate", "cell state", "hidden state"]
    assert [name for name in last if name in gates] == gates
    assert steps == sorted(steps, key=lambda name: int(name[2:]))  # time in order
    # backward, the same stages in reverse (a stage holding only given values, as t=2's input slice x[t=2],
    # has nothing to differentiate and no heading there)
    assert backward == [heading for heading in reversed(forward) if heading in backward]
    assert len(backward) >= len(forward) - 1
    from test_draw import parse
    clusters = [path[-1] for path in parse(draw(loss, collapse=None).source).clusters() if path[-1] in gates]
    assert clusters == gates * 2  # the drawing, both steps, in the same order


def test_independent_stages_are_listed_in_the_order_they_were_entered():
    # the output uses "second" before "first" (reading order would meet "second" first), and nothing links them:
    # only the record of when each stage was entered says that "first" ran first
    x = Value(0.5, label="x")
    with autograd.stage("outer"):
        with autograd.stage("first"):
            a = x.tanh()
            a.label = "a"
        with autograd.stage("second"):
            b = x.sigmoid()
            b.label = "b"
        y = b * a
    listed = [node.label for node in stage_order(reading_order(y)) if node.label in ("a", "b")]
    assert listed == ["a", "b"]
    text = str(explain(y))
    assert text.index("a = tanh(x)") < text.index("b = sigmoid(x)")
    # entered the other way round, the listing turns round with it
    with autograd.stage("outer"):
        with autograd.stage("second"):
            b = x.sigmoid()
            b.label = "b"
        with autograd.stage("first"):
            a = x.tanh()
            a.label = "a"
        y = b * a
    assert [node.label for node in stage_order(reading_order(y)) if node.label in ("a", "b")] == ["b", "a"]
