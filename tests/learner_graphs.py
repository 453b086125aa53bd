"""The graphs learners build themselves, and how their drawings are measured.

The corpus: Mazur's 2-2-2 network, a small MLP on a batch, a small CNN built by hand from slices, products and
sums (max pooling from reshape, transpose and max; cross-entropy from `autograd.functions`) and one built from
the library's stages (the README's: conv2d, max_pool2d, softmax_cross_entropy), an RNN cell and a
GRU-like cell built from primitives, ScalarLSTMs of 1-4 units, 1-2 layers and 1-3 steps, the Tensor LSTM, and the
README's pictures. Each builder returns the loss, ready to draw.

Measured from the SVG that the real ``dot`` writes:

- width: the ``<svg width="...pt">`` in pixels at 96 dpi (x 4/3); at most `WIDTH_BUDGET` (1,000 px).
- overlaps: every edge label's box (the union of its text lines) against every node's box (the bounding box of
  its polygon, path or ellipse) and against every other edge label's box. Text extents are estimated with
  stated font metrics (`WIDTHS`: DejaVu Sans's, the font ``dot`` uses for Helvetica here), the line from 0.8 em
  above its baseline to 0.2 em below; boxes that meet by less than `TOLERANCE` points do not count.

    python tests/learner_graphs.py        # prints each drawing's width, overlaps and time
"""

from __future__ import annotations

import re
import runpy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograd import Tensor, Value, stage  # noqa: E402
from autograd.functions import cross_entropy, stack  # noqa: E402
from autograd.view.rendering import pipe  # noqa: E402
from lstm import ScalarLSTM  # noqa: E402

WIDTH_BUDGET = 1000  # pixels at 96 dpi
# DejaVu Sans, the font dot finds for Helvetica here and lays the labels out with, in em: digits 0.636; space, ".",
# "," 0.318; brackets 0.39; "-" 0.361; "=" and "×" 0.838; any other character 0.62 (its letters' mean, rounded
# up); bold text 1.09 times as wide (DejaVu Sans Bold's digits are 0.696)
WIDTHS = {**dict.fromkeys("0123456789", 0.636), **dict.fromkeys(" .,:;", 0.318), **dict.fromkeys("[]()", 0.39),
          "-": 0.361, "=": 0.838, "×": 0.838}
OTHER, BOLD = 0.62, 1.09
ASCENT, DESCENT = 0.8, 0.2  # of the font size, above and below the baseline
TOLERANCE = 1.0  # points: boxes that meet by less do not overlap


# --- the corpus ---------------------------------------------------------------------------------------------------

def mazur() -> Value:
    """Matt Mazur's 2-2-2 network with the weights of his post (tests/test_published_examples.py)."""
    w = {f"w{k}": Value(v, label=f"w{k}") for k, v in enumerate([0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55], 1)}
    i1, i2, b1, b2 = Value(0.05, label="i1"), Value(0.10, label="i2"), Value(0.35, label="b1"), Value(0.60, label="b2")

    def unit(name, a, wa, b, wb, bias):
        net = w[wa] * a + w[wb] * b + bias
        net.label = f"net_{name}"
        out = net.sigmoid()
        out.label = f"out_{name}"
        return out

    h1, h2 = unit("h1", i1, "w1", i2, "w2", b1), unit("h2", i1, "w3", i2, "w4", b1)
    o1, o2 = unit("o1", h1, "w5", h2, "w6", b2), unit("o2", h1, "w7", h2, "w8", b2)
    e1, e2 = 0.5 * (0.01 - o1) ** 2, 0.5 * (0.99 - o2) ** 2
    e1.label, e2.label = "E_o1", "E_o2"
    total = e1 + e2
    total.label = "E_total"
    return total


def mlp_batch() -> Tensor:
    """A two-layer MLP on a batch of four, mean squared error."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)), label="x")
    W1 = Tensor(rng.standard_normal((3, 5)) * 0.5, requires_grad=True, label="W1")
    b1 = Tensor(np.zeros(5), requires_grad=True, label="b1")
    W2 = Tensor(rng.standard_normal((5, 2)) * 0.5, requires_grad=True, label="W2")
    b2 = Tensor(np.zeros(2), requires_grad=True, label="b2")
    y = Tensor(rng.standard_normal((4, 2)), label="y")
    h = (x @ W1 + b1).tanh()
    h.label = "h"
    out = h @ W2 + b2
    out.label = "out"
    loss = ((out - y) ** 2).mean()
    loss.label = "L"
    return loss


def cnn() -> Tensor:
    """A 2x2 kernel over a 4x4 image as a learner writes it (a slice, a product and a sum per position), a bias
    and relu, 2x2 max pooling from reshape, transpose and max, a linear layer and cross-entropy."""
    rng = np.random.default_rng(0)
    image = Tensor(rng.standard_normal((4, 4)), label="image")
    K = Tensor(rng.standard_normal((2, 2)) * 0.5, requires_grad=True, label="K")
    b = Tensor(0.1, requires_grad=True, label="b")
    with stage("convolution"):
        rows = [stack([(image[i:i + 2, j:j + 2] * K).sum() for j in range(3)]) for i in range(3)]
        feature = (stack(rows) + b).relu()
    feature.label = "feature"
    with stage("max pooling"):
        pooled = feature[:2, :2].reshape(1, 2, 1, 2).transpose(0, 2, 1, 3).reshape(1, 4).max(axis=1)
    pooled.label = "pooled"
    W = Tensor(rng.standard_normal((1, 3)), requires_grad=True, label="W")
    with stage("classifier"):
        logits = pooled.reshape(1, 1) @ W
    logits.label = "logits"
    loss = cross_entropy(logits, [2])
    loss.label = "L"
    return loss


def rnn(steps: int = 3) -> Tensor:
    """A tanh RNN cell written by hand, h = tanh(x W + h U + b), over a few steps; the loss on the last h."""
    rng = np.random.default_rng(0)
    W = Tensor(rng.standard_normal((2, 3)) * 0.5, requires_grad=True, label="W")
    U = Tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True, label="U")
    b = Tensor(np.zeros(3), requires_grad=True, label="b")
    h = Tensor(np.zeros((1, 3)), label="h0")
    for t in range(1, steps + 1):
        x = Tensor(rng.standard_normal((1, 2)), label=f"x{t}")
        with stage(f"t={t}"):
            h = (x @ W + h @ U + b).tanh()
        h.label = f"h{t}"
    loss = h.sum()
    loss.label = "L"
    return loss


def gru(steps: int = 2) -> Tensor:
    """A GRU-like cell from primitives: update gate z, reset gate r, candidate n, h = (1 - z) * n + z * h."""
    rng = np.random.default_rng(1)
    weights = {gate: (Tensor(rng.standard_normal((2, 3)) * 0.5, requires_grad=True, label=f"W_{gate}"),
                      Tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True, label=f"U_{gate}"))
               for gate in "zrn"}
    h = Tensor(np.zeros((1, 3)), label="h0")
    for t in range(1, steps + 1):
        x = Tensor(rng.standard_normal((1, 2)), label=f"x{t}")
        with stage(f"t={t}"):
            with stage("update gate"):
                z = (x @ weights["z"][0] + h @ weights["z"][1]).sigmoid()
            with stage("reset gate"):
                r = (x @ weights["r"][0] + h @ weights["r"][1]).sigmoid()
            with stage("candidate"):
                n = (x @ weights["n"][0] + (r * h) @ weights["n"][1]).tanh()
            with stage("hidden state"):
                h = (1 - z) * n + z * h
        z.label, r.label, n.label, h.label = f"z{t}", f"r{t}", f"n{t}", f"h{t}"
    loss = h.sum()
    loss.label = "L"
    return loss


def scalar_lstm(hidden: int, layers: int, steps: int) -> Value:
    model = ScalarLSTM(1, hidden, layers, seed=0)
    out, _ = model(np.random.default_rng(1).standard_normal((steps, 1, 1)))
    loss = sum(out[-1].flat)
    loss.label = "L"
    return loss


def tensor_lstm(steps: int = 6) -> Tensor:
    """The README's LSTM example (lstm.demo's DEMO_TENSOR)."""
    from lstm.demo import DEMO_TENSOR, Sizes, lstm_loss
    sizes = DEMO_TENSOR if steps == DEMO_TENSOR.seq_len else Sizes(**{**DEMO_TENSOR.__dict__, "seq_len": steps})
    return lstm_loss(sizes, seed=0)


# the README's own examples, as notebooks/figures/render.py draws them for it
README_EXAMPLES = runpy.run_path(str(Path(__file__).resolve().parent.parent / "notebooks" / "figures" / "render.py"))
readme_fork: Callable[[], Value] = README_EXAMPLES["fork_example"]
readme_cnn: Callable[[], Tensor] = README_EXAMPLES["cnn_example"]  # conv2d, max_pool2d, softmax_cross_entropy


def readme_tensor() -> Tensor:
    """The README's "rest of the engine" example, rendered there as loss.svg."""
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    W = Tensor([[0.5], [-0.5]], requires_grad=True, label="W")
    b = Tensor([0.1], requires_grad=True, label="b")
    with stage("layer 1"):
        y = (x @ W + b).tanh()
    return y.sum()


# ScalarLSTM sizes: hidden 1-4, 1-2 layers, 1-3 steps, every one of the 24
SCALAR_SIZES = [(hidden, layers, steps) for hidden in (1, 2, 3, 4) for layers in (1, 2) for steps in (1, 2, 3)]

CORPUS: dict[str, Callable[[], object]] = {
    "Mazur 2-2-2": mazur,
    "MLP, batch of 4": mlp_batch,
    "CNN 4x4, 2x2 kernel": cnn,
    "CNN 6x6, two 3x3 filters, the library's stages (README)": readme_cnn,
    "RNN cell, 3 steps": rnn,
    "GRU-like cell, 2 steps": gru,
    **{f"ScalarLSTM hidden {h}, {n} layer{'s' * (n > 1)}, {t} step{'s' * (t > 1)}":
       (lambda h=h, n=n, t=t: scalar_lstm(h, n, t)) for h, n, t in SCALAR_SIZES},
    "Tensor LSTM, 6 steps (README)": tensor_lstm,
    "README fork": readme_fork,
    "README Tensor (loss.svg)": readme_tensor,
}


# --- measuring ----------------------------------------------------------------------------------------------------

@dataclass
class Measure:
    width: float  # pixels at 96 dpi
    height: float
    under_nodes: list[tuple[str, str]]  # (edge label, node) pairs that overlap
    on_labels: list[tuple[str, str]]  # pairs of edge labels that overlap
    seconds: float = 0.0

    @property
    def overlaps(self) -> int:
        return len(self.under_nodes) + len(self.on_labels)


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def _bounds(points: list[float]) -> Box:
    xs, ys = points[0::2], points[1::2]
    return min(xs), min(ys), max(xs), max(ys)


SVG = "{http://www.w3.org/2000/svg}"


def shape_box(group: ElementTree.Element) -> Box | None:
    """The box of a node: its first polygon, path or ellipse (an HTML table's outer one comes first)."""
    for element in group.iter():
        tag = element.tag.removeprefix(SVG)
        if tag == "ellipse":
            cx, cy, rx, ry = (float(element.get(key)) for key in ("cx", "cy", "rx", "ry"))
            return cx - rx, cy - ry, cx + rx, cy + ry
        if tag in ("polygon", "path") and element.get("fill", "none") != "none":
            return _bounds(_numbers(element.get("points") or element.get("d")))
    return None


def _text_box(group: ElementTree.Element) -> Box | None:
    """The box of all the text in a group (an edge's labels), from the stated font metrics."""
    boxes = []
    for element in group.iter(f"{SVG}text"):
        x, y, size = float(element.get("x")), float(element.get("y")), float(element.get("font-size"))
        shown = "".join(element.itertext()).strip()  # what shows: no spaces at the ends
        width = sum(WIDTHS.get(char, OTHER) for char in shown) * size * (BOLD if element.get("font-weight") else 1)
        x0 = {"start": x, "middle": x - width / 2, "end": x - width}[element.get("text-anchor", "start")]
        boxes.append((x0, y - ASCENT * size, x0 + width, y + DESCENT * size))
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _meet(a: Box, b: Box) -> bool:
    return (min(a[2], b[2]) - max(a[0], b[0]) > TOLERANCE) and (min(a[3], b[3]) - max(a[1], b[1]) > TOLERANCE)


def groups(root: ElementTree.Element, kind: str) -> list[tuple[str, ElementTree.Element]]:
    """(title, element) of each ``<g class="kind">``."""
    return [(group.findtext(f"{SVG}title") or "?", group) for group in root.iter(f"{SVG}g")
            if group.get("class") == kind]


def measure_svg(svg: str) -> Measure:
    root = ElementTree.fromstring(svg[svg.index("<svg"):])
    width, height = (float(root.get(key).removesuffix("pt")) * 4 / 3 for key in ("width", "height"))
    nodes = [(title, box) for title, group in groups(root, "node")  # a plain-text node: its text
             if (box := shape_box(group) or _text_box(group)) is not None]
    labels = [(title, box) for title, group in groups(root, "edge") if (box := _text_box(group)) is not None]
    under = [(label, node) for label, box in labels for node, shape in nodes if _meet(box, shape)]
    on = [(labels[i][0], labels[j][0]) for i in range(len(labels)) for j in range(i + 1, len(labels))
          if _meet(labels[i][1], labels[j][1])]
    return Measure(width, height, under, on)


def measure(drawing) -> Measure:
    start = time.perf_counter()
    svg = pipe(drawing, "svg").decode()
    found = measure_svg(svg)
    found.seconds = time.perf_counter() - start
    return found


if __name__ == "__main__":
    import warnings

    from autograd import draw
    warnings.simplefilter("ignore")
    worst = 0.0
    for name, make in CORPUS.items():
        for view in ("forward", "backward"):
            start = time.perf_counter()
            drawing = draw(make(), view)
            found = measure(drawing)
            seconds = time.perf_counter() - start
            worst = max(worst, seconds)
            print(f"{name:45} {view:8} {found.width:7.0f} x {found.height:6.0f} px  "
                  f"label/node {len(found.under_nodes):3}  label/label {len(found.on_labels):3}  {seconds:5.2f} s",
                  flush=True)
    print(f"slowest: {worst:.2f} s")
