"""LSTM pictures that read at notebook width: time in order, one step under another, gates i, f, g, o, the cell
state as one heavy line, gate slices and indices as written, plumbing folded, and the width budget measured on
the real ``dot``'s layout. Also the guard's advice, worked out in near-linear time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from test_draw import parse, plain

from autograd import GraphTooLargeError, Value, draw, stage
from autograd.view.dot import CONVEYOR
from autograd.view.draw import WIDTH_BUDGET
from autograd.view.rendering import pipe
from lstm import LSTM, ScalarLSTM

GATES = ["input gate", "forget gate", "cell candidate", "output gate", "cell state", "hidden state"]


def scalar_loss(steps: int = 3, layers: int = 1, input_size: int = 1, hidden_size: int = 1):
    model = ScalarLSTM(input_size, hidden_size, layers, seed=0)
    out, _ = model(np.random.default_rng(1).standard_normal((steps, 1, input_size)))
    loss = sum(out[-1].flat)
    loss.label = "L"
    return loss


def tensor_loss(steps: int = 3):
    model = LSTM(input_size=3, hidden_size=4, seed=0)
    out, _ = model(np.random.default_rng(1).standard_normal((steps, 2, 3)))
    with stage("loss"):
        loss = out[-1].sum()
    loss.label = "L"
    return loss


def laid_out(drawing) -> dict[str, tuple[float, float]]:
    """Each node's centre in the real ``dot``'s layout (inches, y upwards)."""
    plain_layout = pipe(drawing, "plain").decode()
    return {words[1]: (float(words[2]), float(words[3])) for words in map(str.split, plain_layout.splitlines())
            if words[:1] == ["node"]}


def width_in_pixels(drawing) -> float:
    svg = pipe(drawing, "svg").decode()
    return float(re.search(r'<svg width="([\d.]+)pt"', svg)[1]) * 4 / 3  # 96 pixels per inch, 72 points


def steps_of(loss) -> list[str]:
    return sorted({node.stage[0] for node in _nodes(loss) if node.stage and node.stage[0].startswith("t=")},
                  key=lambda name: int(name[2:]))


def _nodes(root):
    from autograd.core import topological_order
    return topological_order(root)


@pytest.mark.parametrize("view", ["forward", "backward"])
@pytest.mark.parametrize("make", [scalar_loss, tensor_loss], ids=["ScalarLSTM", "LSTM"])
def test_time_runs_down_the_picture_and_each_step_reads_in_computation_order(make, view):
    loss = make()
    drawing = draw(loss, view)
    dot, places = parse(drawing.source), laid_out(drawing)
    steps = steps_of(loss)
    boxes = {plain(attrs["label"]).split("\n")[0]: key for key, attrs in dot.nodes.items() if key.startswith("b")}
    assert sorted(boxes) == steps[:-1]  # every step but the last is a box, the last in full
    heights = [places[boxes[step]][1] for step in steps[:-1]]
    focused = [places[key][1] for key in dot.nodes if any(path[:1] == (steps[-1],) or
                                                          path[:1] == (f"{steps[-1]} · layer 0",)
                                                          for path in [dot.where(key)])]
    assert heights == sorted(heights, reverse=True) and min(heights) > max(focused)  # one under another
    stages: dict[str, list[float]] = {}
    for key in dot.nodes:
        name = dot.where(key)[-1] if dot.where(key) else ""
        if name in GATES:
            stages.setdefault(name, []).append(places[key][1])
    assert list(stages) == GATES  # drawn in this order
    for above, below in zip(GATES, GATES[1:]):
        assert min(stages[above]) > max(stages[below]), (above, below)  # and laid out one under another


def test_the_cell_state_is_one_heavy_line_through_the_steps():
    loss = scalar_loss(steps=4)
    dot = parse(draw(loss, "backward").source)
    heavy = [(tail, head) for tail, head, attrs in dot.edges if attrs.get("color") == CONVEYOR]
    boxes = sorted((key for key in dot.nodes if key.startswith("b")), key=lambda key: dot.nodes[key]["label"])
    assert [(t, h) for t, h in heavy if h.startswith("b")] == list(zip(boxes, boxes[1:]))  # box to box
    into_step = [(t, h) for t, h in heavy if t == boxes[-1]]
    (_, product), = into_step  # f * c of the step before: the forget gate scales the cell state
    assert re.match(r"\S+ = f\[t=\d+[^\]]*\](\[[\d,]+\])? \* c\[t=\d+", plain(dot.nodes[product]["label"]))
    (_, cell), = [(t, h) for t, h in heavy if t == product]
    assert plain(dot.nodes[cell]["label"]).startswith("c[t=")
    assert len(heavy) == len(boxes) - 1 + 2  # one line, no branch
    forward = parse(draw(loss).source)
    assert sum(attrs.get("color") == CONVEYOR for *_, attrs in forward.edges) == len(heavy)


def test_a_tensor_lstm_names_its_gate_slices_by_index_and_folds_its_plumbing():
    loss = tensor_loss()
    dot = parse(draw(loss, "backward").source)
    labels = [plain(attrs["label"]).split("\n")[0] for attrs in dot.nodes.values()]
    slices = [re.search(r" = \S+\[(\d)\]  \d+×\d+$", label) for label in labels]
    assert [found[1] for found in slices if found] == ["0", "1", "2", "3"]  # i, f, g, o: the gate slices of z
    assert any(re.search(r"= out\[-1\]", label) for label in labels)  # the last output, as written
    assert not any(re.search(r"= (reshape|concat)\(", label) for label in labels)
    assert any(" @ " in label for label in labels)  # the product of the gates, its plumbing folded in
    unfolded = [plain(attrs["label"]) for attrs in parse(draw(loss, "backward", fold=False).source).nodes.values()]
    assert any("concat(" in label for label in unfolded) and any("reshape(" in label for label in unfolded)


@pytest.mark.parametrize(("name", "make", "view"), [
    ("ScalarLSTM 1x1, 2 steps", lambda: scalar_loss(steps=2), "backward"),
    ("ScalarLSTM 1x1, 6 steps", lambda: scalar_loss(steps=6), "backward"),
    ("ScalarLSTM 1x1, 6 steps rolled up", lambda: scalar_loss(steps=6), "rolled"),
    ("ScalarLSTM 1x1, 2 steps forward", lambda: scalar_loss(steps=2), "forward"),
    ("LSTM 3x4, 6 steps", lambda: tensor_loss(steps=6), "backward"),
    ("LSTM 3x4, 3 steps forward", lambda: tensor_loss(steps=3), "forward"),
])
def test_the_default_lstm_pictures_fit_a_notebook_column(name, make, view):
    drawing = draw(make(), "forward", roll_up=True) if view == "rolled" else draw(make(), view)
    assert width_in_pixels(drawing) <= WIDTH_BUDGET
    assert not re.search(r"\b(size|ratio)=", drawing.source)  # met at the drawn font size, not by shrinking


# --- the guard's advice in near-linear time --------------------------------------------------------------------

def many_stages(count: int, numbered: bool) -> Value:
    x = Value(0.5, label="x")
    for k in range(count):
        name = f"step {k}" if numbered else "".join(chr(97 + (k // 26 ** i) % 26) for i in range(3))
        with stage(name):
            x = (x * 0.9).tanh() + 0.01
    return x


@pytest.mark.parametrize(("numbered", "limit", "advice"), [
    (True, 500, {"collapse": "step *", "roll_up": True}),  # 1,600 boxes would be too many: one rolled-up box
    (False, 1700, {"collapse": "*"}),  # one box for each of them fits; no list of 1,600 names
    (False, 500, None),
], ids=["a loop", "distinct names", "too many names"])
def test_the_advice_for_1600_stages_takes_under_a_second(numbered, limit, advice):
    root = many_stages(1600, numbered)
    started = time.process_time()  # this process's CPU time: what the advice costs, not what other processes take
    with pytest.raises(GraphTooLargeError) as refused:
        draw(root, collapse=None, max_nodes=limit)
    assert time.process_time() - started < 1.0
    assert refused.value.options == advice
    if advice is None:
        assert "Even with every stage collapsed it would have 1,600 shapes" in str(refused.value)
    else:
        assert len(parse(draw(root, **advice, max_nodes=limit).source).nodes) <= limit


def test_a_drawing_is_the_same_in_every_process():
    # string hashing differs between processes (PYTHONHASHSEED): nothing the drawing writes may follow a set's order
    script = ("from autograd import draw\nfrom lstm.demo import DEMO_TENSOR, lstm_loss\n"
              "print(draw(lstm_loss(DEMO_TENSOR, seed=0), view='backward').source)")
    sources = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2)}
    assert len(sources) == 1 and "t=5" in sources.pop()
