"""Exercises in backpropagation: a small graph, its forward values, and the gradients a student fills in.

    >>> from autograd import exercise
    >>> ex = exercise("expression", seed=3)
    >>> print(ex)                        # the forward pass, and the blanks: dL/d(name) for each name
    >>> ex.grade({"a": 0.25, "b": -1.0})  # a teacher's verdict on the first wrong one, and a hint

Kinds: ``"expression"`` (a few scalar stages with a fork), ``"mlp"`` (a 2-2-2 sigmoid network with a squared
error, as in Matt Mazur's worked example), ``"rnn-step"`` (one tanh RNN step on arrays), ``"cnn-stage"``
(a convolution, ReLU, max pooling, a linear layer and softmax with cross-entropy) and ``"lstm-step"`` (one LSTM
step, `lstm.checks.step.one_step`, the same exercise as `lstm.check_step`). The same kind and seed always
give the same exercise. Every node is labelled, so every name in the task, the grade and the solution is one
the student has seen.

``grade(answers)`` checks the answers with `autograd.check_derivation` (a blank left as None is not given) and
gives hints that escalate while the same gradient stays the first wrong one: first its stage and the verdict,
then its local derivatives' formulas, then the number (the full report). ``worksheet(path)`` writes a Jupyter
notebook to hand out: the forward values, a cell of blanks, and a cell that grades them; the answers are not in
it (it rebuilds the exercise from its kind and seed). ``solution()`` is the worked derivation, `explain`'s.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autograd.core import Node, stage
from autograd.files import write_atomically
from autograd.value import Constant, Value
from autograd.view.annotated import AnnotatedPass
from autograd.view.derivation import DerivationCheck, check_derivation
from autograd.view.explain import Explanation, explain
from autograd.view.notation import expression, summarize, written_as_number

__all__ = ["Exercise", "Grade", "KINDS", "exercise"]

# A kind made by another package is built there (the core imports nothing above it): lstm-step by lstm.checks.step.
PROVIDED_BY = {"lstm-step": "lstm.checks.step"}
Builder = Callable[[np.random.Generator], tuple[Node, tuple[str, ...]]]  # (the loss, the blanks by name)
LEVELS = 3  # hints: the stage, the local derivative's formula, the number


@dataclass(frozen=True)
class Grade:
    """One grading of an exercise: the check (`DerivationCheck`) and the hint of this attempt (``level`` 1 to 3,
    0 when there is nothing wrong). ``str()`` shows the verdict and the hint without giving the number away
    before level 3."""

    check: DerivationCheck
    level: int
    hint: str | None

    @property
    def passed(self) -> bool:
        """Every blank filled, and every answer right."""
        return self.check.passed and self.check.complete

    def __bool__(self) -> bool:
        return self.passed

    def to_text(self) -> str:
        report = self.check
        first = report.first_mismatch
        if first is None:
            return report.summary() + ("" if self.hint is None else f"\nNext: {self.hint}.")
        if self.level >= LEVELS:
            return f"{report.to_text()}\nHint {LEVELS} of {LEVELS}: {self.hint}"
        lines = [report.summary(), f"First difference, going back from {report.root_name}: "
                                   f"d{report.root_name}/d{first.name}  ({_where(first.node)})"]
        if first.diagnosis is not None:
            lines.append("  " + first.diagnosis.text[0].upper() + first.diagnosis.text[1:])
        lines.append(f"Hint {self.level} of {LEVELS}: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return "```text\n" + self.to_text() + "\n```"


class Exercise:
    """A graph to backpropagate through by hand: ``root`` (the loss), ``blanks`` (the names whose dL/d(name) to
    fill in), ``values`` (every named forward value). See the module for grade, worksheet and solution."""

    def __init__(self, kind: str, seed: int, root: Node, blanks: tuple[str, ...]) -> None:
        self.kind, self.seed, self.root, self.blanks = kind, seed, root, blanks
        self._graph = AnnotatedPass(root)
        self._attempts: tuple[str | None, int] = (None, 0)  # the first wrong gradient last time, and how often

    @property
    def values(self) -> dict[str, Any]:
        names = self._graph.names
        return {names[node]: node.data for node in self._graph.listing if node.label}

    def forward_lines(self) -> list[str]:
        """The forward pass as the student sees it: ``name = expression = value``, stage by stage."""
        names, lines, current = self._graph.names, [], None
        for node in self._graph.listing:
            if written_as_number(node):  # a constant, written where it is used
                continue
            if node.stage != current and node.stage:
                lines.append(f"[{' / '.join(node.stage)}]")
            current = node.stage
            how = "" if node.op is None else f" = {expression(node, names)}"
            value = _written(node.data)
            lines.append(f"  {names[node]}{how} ={'' if value.startswith(chr(10)) else ' '}{value}")
        return lines

    def to_text(self) -> str:
        root = self._graph.names[self.root]
        return "\n".join([f"Exercise {self.kind!r}, seed {self.seed}: backpropagate from {root} by hand.",
                          "Forward pass:", *self.forward_lines(),
                          f"Fill in d{root}/dv for v in: {', '.join(self.blanks)}",
                          "(an array of the node's shape for an array; grade with .grade({name: number, ...}))"])

    def __str__(self) -> str:
        return self.to_text()

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return "```text\n" + self.to_text() + "\n```"

    def blank_answers(self) -> dict[str, None]:
        """The blanks as a dict to fill in: ``{"a": None, ...}``."""
        return dict.fromkeys(self.blanks)

    def grade(self, answers: Mapping[str, Any]) -> Grade:
        """Check your answers (by name; None for a blank not filled in yet) and give the next hint."""
        if not isinstance(answers, Mapping):
            raise TypeError(f"grade: answers must map names to gradients, got {type(answers).__name__}")
        unknown = [name for name in answers if name not in self.blanks]
        if unknown:
            raise ValueError(f"grade: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
                             f"among this exercise's blanks: {', '.join(self.blanks)}")
        given = {name: value for name, value in answers.items() if value is not None}
        report = check_derivation(self.root, given, expected=self.blanks)
        first = report.first_mismatch
        if first is None:
            self._attempts = (None, 0)
            hint = None if report.complete else f"fill in the rest: {', '.join(report.missing)}"
            return Grade(report, 0, hint)
        previous, count = self._attempts
        level = min(count + 1, LEVELS) if previous == first.name else 1
        self._attempts = (first.name, level)
        return Grade(report, level, _hint(report, level))

    def solution(self, **options: Any) -> Explanation:
        """The worked derivation: every forward value and adjoint equation (`explain`)."""
        return explain(self.root, **options)

    def worksheet(self, path: str | Path) -> Path:
        """Write a notebook to hand out: the task, a cell of blanks, a cell that grades them (no answers)."""
        path = Path(path)
        if path.suffix != ".ipynb":
            raise ValueError(f"worksheet: the path must end in .ipynb, got {str(path)!r}")
        call = f"exercise({self.kind!r}, seed={self.seed})"
        blanks = ",\n".join(f"    {name!r}: None" for name in self.blanks)
        cells = [
            _markdown(f"# Backpropagation by hand: {self.kind}, seed {self.seed}\n\n"
                      "Work backwards from the loss, stage by stage: each gradient is the sum over the node's uses "
                      "of the upstream gradient times the local derivative. Fill in every `None`, then run the "
                      "grading cell; run it again after each correction for a more detailed hint."),
            _markdown("```text\n" + "\n".join(self.forward_lines()) + "\n```"),
            _code(f"from autograd import exercise\n\nex = {call}\nex"),
            _code("answers = {\n" + blanks + ",\n}"),
            _code("ex.grade(answers)"),
        ]
        for number, cell in enumerate(cells):
            cell["id"] = f"cell-{number}"  # nbformat 4.5: every cell has an id
        notebook = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                                "name": "python3"},
                                                 "language_info": {"name": "python"}},
                    "nbformat": 4, "nbformat_minor": 5}
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        write_atomically(path, lambda handle: handle.write(text.encode()))
        return path


def exercise(kind: str, seed: int = 0) -> Exercise:
    """A new exercise of ``kind`` (`KINDS`), the same for the same seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"exercise: seed must be a non-negative integer, got {seed!r}")
    if kind in PROVIDED_BY and kind not in KINDS:
        importlib.import_module(PROVIDED_BY[kind])  # registers the kind
    if kind not in KINDS:
        raise ValueError(f"exercise: unknown kind {kind!r}; the kinds are {', '.join(sorted({*KINDS, *PROVIDED_BY}))}")
    root, blanks = KINDS[kind](np.random.default_rng(int(seed)))
    return Exercise(kind, int(seed), root, blanks)


def register(kind: str, builder: Builder) -> None:
    """Add a kind of exercise: ``builder(rng)`` returns the loss and the names of the blanks."""
    KINDS[kind] = builder


# --- the kinds -----------------------------------------------------------------------------------------------

def _number(rng: np.random.Generator, low: float = -2.0, high: float = 2.0) -> float:
    """A number a person can compute with: one decimal, never zero."""
    value = 0.0
    while value == 0.0:
        value = round(float(rng.uniform(low, high)), 1)
    return value


def _array(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Numbers a person can compute with: one decimal, between -1 and 1 (and no -0.0 to puzzle over)."""
    return np.round(rng.uniform(-1.0, 1.0, shape), 1) + 0.0


def _named(node: Node, name: str) -> Any:
    node.label = name
    return node


def _expression(rng: np.random.Generator) -> tuple[Node, tuple[str, ...]]:
    """One of three small graphs with a fork, numbers from ``rng``."""
    a, b, c = (Value(_number(rng), label=name) for name in "abc")
    form = int(rng.integers(3))
    if form == 0:  # a forks into the product and the last stage
        d = _named(a * b, "d")
        e = _named(d + c, "e")
        f = _named(e.tanh(), "f")
        root = _named(f * a, "L")
        blanks = ("f", "e", "d", "c", "b", "a")
    elif form == 1:  # a square: two equal branches
        d = _named(a + b, "d")
        e = _named(d * d, "e")
        f = _named(e * c, "f")
        root = _named(f.sigmoid(), "L")
        blanks = ("f", "e", "d", "c", "b", "a")
    else:  # a squared error with its 1/2
        z = _named(a * b + c, "z")
        y = _named(z.sigmoid(), "y")
        error = _named(y - 0.5, "e")
        square = _named(error * error, "s")
        root = _named(0.5 * square, "L")
        blanks = ("s", "e", "y", "z", "c", "b", "a")
    return root, blanks


def _mlp(rng: np.random.Generator) -> tuple[Node, tuple[str, ...]]:
    """A 2-2-2 network of sigmoids with E = ½ Σ (target - out)², named as in Mazur's worked example."""
    def weight(name: str) -> Value:
        return Value(round(float(rng.uniform(0.05, 0.6)), 2), label=name)

    i1, i2 = (Value(round(float(rng.uniform(0.0, 1.0)), 2), label=name) for name in ("i1", "i2"))
    w = {name: weight(name) for name in ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b2")}
    targets = [Constant(round(float(rng.uniform(0.0, 1.0)), 2), label=name) for name in ("target_o1", "target_o2")]
    with stage("hidden layer"):
        net_h1 = _named(w["w1"] * i1 + w["w2"] * i2 + w["b1"], "net_h1")
        net_h2 = _named(w["w3"] * i1 + w["w4"] * i2 + w["b1"], "net_h2")
        out_h1, out_h2 = _named(net_h1.sigmoid(), "out_h1"), _named(net_h2.sigmoid(), "out_h2")
    with stage("output layer"):
        net_o1 = _named(w["w5"] * out_h1 + w["w6"] * out_h2 + w["b2"], "net_o1")
        net_o2 = _named(w["w7"] * out_h1 + w["w8"] * out_h2 + w["b2"], "net_o2")
        out_o1, out_o2 = _named(net_o1.sigmoid(), "out_o1"), _named(net_o2.sigmoid(), "out_o2")
    with stage("error"):
        e1 = _named(0.5 * (targets[0] - out_o1) ** 2, "E_o1")
        e2 = _named(0.5 * (targets[1] - out_o2) ** 2, "E_o2")
        root = _named(e1 + e2, "E_total")
    blanks = ("E_o1", "E_o2", "out_o1", "out_o2", "net_o1", "net_o2", "w5", "w6", "w7", "w8", "b2",
              "out_h1", "out_h2", "net_h1", "net_h2", "w1", "w2", "w3", "w4", "b1")
    return root, blanks


def _rnn_step(rng: np.random.Generator) -> tuple[Node, tuple[str, ...]]:
    """One tanh RNN step, h = tanh(x W_ih^T + h_prev W_hh^T + b), on a batch of 2, with L = sum(h * d_h)."""
    from autograd.tensor import Tensor

    batch, inputs, hidden = 2, 2, 3

    def array(*shape: int) -> np.ndarray:
        return _array(rng, *shape)

    x = Tensor(array(batch, inputs), label="x")
    h_prev = Tensor(array(batch, hidden), requires_grad=True, label="h_prev")
    weight_ih = Tensor(array(hidden, inputs), requires_grad=True, label="W_ih")
    weight_hh = Tensor(array(hidden, hidden), requires_grad=True, label="W_hh")
    bias = Tensor(array(hidden), requires_grad=True, label="b")
    d_h = Tensor(array(batch, hidden), label="d_h")
    with stage("t=1"), stage("hidden state"):
        z = _named(x @ weight_ih.T + h_prev @ weight_hh.T + bias, "z")
        h = _named(z.tanh(), "h")
    with stage("loss"):
        root = _named((h * d_h).sum(), "L")
    return root, ("h", "z", "b", "W_hh", "W_ih", "h_prev")


def _cnn_stage(rng: np.random.Generator) -> tuple[Node, tuple[str, ...]]:
    """A small CNN's stages: a 2x2 kernel over a 5x5 image, ReLU, 2x2 max pooling, a linear layer to 3 classes
    and softmax with cross-entropy: the kernel's fork over positions, pooling's routing and p - y."""
    from autograd.functions import conv2d, max_pool2d, softmax_cross_entropy
    from autograd.tensor import Tensor

    def array(*shape: int) -> np.ndarray:
        return _array(rng, *shape)

    x = Tensor(array(1, 1, 5, 5), label="x")
    kernel = Tensor(array(1, 1, 2, 2), requires_grad=True, label="K")
    weight = Tensor(array(4, 3), requires_grad=True, label="W")
    target = int(rng.integers(3))
    with stage("convolution"):
        y = _named(conv2d(x, kernel), "Y")
    with stage("activation"):
        a = _named(y.relu(), "A")
    with stage("max pooling"):
        pooled = _named(max_pool2d(a, 2), "P")
    with stage("linear"):
        logits = _named(pooled.reshape(1, 4) @ weight, "z")
    with stage(f"loss, target class y = {target}"):  # the class is no node: the stage names it
        root = _named(softmax_cross_entropy(logits, [target]), "L")
    return root, ("z", "W", "P", "A", "Y", "K")


KINDS: dict[str, Builder] = {"expression": _expression, "mlp": _mlp, "rnn-step": _rnn_step,
                              "cnn-stage": _cnn_stage}


# --- hints and notebooks -------------------------------------------------------------------------------------

def _hint(report: DerivationCheck, level: int) -> str:
    first = report.first_mismatch
    root = report.root_name
    if level == 1:
        uses = ", ".join(sorted({b.consumer_name for b in first.branches})) or "none"
        return (f"look again at d{root}/d{first.name} ({_where(first.node)}): it is the sum over the uses of "
                f"{first.name} ({uses}) of the upstream gradient times the local derivative")
    if level == 2:
        name = first.followed or first.name
        parts = [f"{b.formula} (the whole term)" if b.whole_term else f"∂{b.consumer_name}/∂{name} = {b.formula}"
                 for b in first.branches]
        return "its local derivatives: " + "; ".join(parts)
    return f"the number: d{root}/d{first.name} = {summarize(first.engine, precision=6)}"


def _written(data: Any) -> str:
    """A forward value in full (a student computes with it), arrays row by row under their name."""
    if not isinstance(data, np.ndarray):
        return format(data, ".6g")
    text = np.array2string(data, precision=4, suppress_small=True, max_line_width=100, threshold=10_000)
    return text if data.ndim < 2 else "\n" + "\n".join("      " + line for line in text.splitlines())


def _where(node: Node) -> str:
    return f"stage {' / '.join(node.stage)}" if node.stage else "outside any stage"


def _markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(text: str) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": text}
