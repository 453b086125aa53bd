"""Drawings: the DOT they write (nodes, clusters, fork sums, edge labels, boxes, the guard and its advice), the
images Graphviz makes of them, the step-through frames, and what happens without Graphviz's `dot`.

The DOT text is parsed back (a small parser for what the `graphviz` package writes) and its numbers are
checked against the engine's own reverse pass.
"""

from __future__ import annotations

import ast
import html
import math
import os
import re
import struct
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

import numpy as np
import pytest

import autograd
from autograd import GraphTooLargeError, GraphvizNotFoundError, Tensor, Value, draw, render, stage
from autograd.core import backpropagate, grad, topological_order
from autograd.view.annotated import AnnotatedPass
from autograd.view.boxes import Box
from autograd.view.display import node_bundle
from autograd.view.dot import BACKWARD_FILL, FORK_BORDER, GRADIENT, DotWriter
from autograd.view.notation import format_number, local_derivative
from autograd.view.scene import Scene
from autograd.view.scene import source as source_of

# --- reading DOT back ---------------------------------------------------------------------------------------


@dataclass
class Cluster:
    label: str | None
    attrs: dict[str, str] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    children: list[Cluster] = field(default_factory=list)

    def walk(self, path: tuple[str, ...] = ()):
        yield path, self
        for child in self.children:
            yield from child.walk((*path, child.label))


@dataclass
class Dot:
    graph: dict[str, str]
    nodes: dict[str, dict[str, str]]
    edges: list[tuple[str, str, dict[str, str]]]
    root: Cluster

    def clusters(self) -> dict[tuple[str, ...], Cluster]:
        return {path: cluster for path, cluster in self.root.walk() if path}

    def where(self, node_id: str) -> tuple[str, ...]:
        return next(path for path, cluster in self.root.walk() if node_id in cluster.members)

    def named(self, name: str) -> tuple[str, dict[str, str]]:
        """The node whose label starts with ``name`` in bold (a node's own name)."""
        found = [(key, attrs) for key, attrs in self.nodes.items()
                 if attrs.get("label", "").startswith(f"<B>{name}</B>")]
        assert len(found) == 1, f"{len(found)} nodes named {name!r}"
        return found[0]

    def between(self, tail: str, head: str) -> list[dict[str, str]]:
        return [attrs for t, h, attrs in self.edges if (t, h) == (tail, head)]


def parse(source: str) -> Dot:
    root = Cluster(None)
    stack = [root]
    dot = Dot({}, {}, [], root)
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("digraph") or not line:
            continue
        if line.startswith("subgraph"):
            cluster = Cluster(None)
            stack[-1].children.append(cluster)
            stack.append(cluster)
        elif line == "}":
            stack.pop()
        elif line.startswith("graph ["):
            dot.graph.update(attributes(line[len("graph ["):-1]))
        elif line.startswith(("node [", "edge [")):
            continue
        elif match := re.fullmatch(r"(\w+) -> (\w+)(?: \[(.*)\])?", line):
            dot.edges.append((match[1], match[2], attributes(match[3] or "")))
        elif match := re.fullmatch(r"(\w+) \[(.*)\]", line):
            dot.nodes[match[1]] = attributes(match[2])
            stack[-1].members.append(match[1])
        else:
            attrs = attributes(line)
            target = dot.graph if len(stack) == 1 else stack[-1].attrs
            target.update(attrs)
            if len(stack) > 1 and "label" in attrs:
                stack[-1].label = attrs["label"]
    return dot


def attributes(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        equals = text.index("=", i)
        key, i = text[i:equals], equals + 1
        if text[i] == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            attrs[key], i = text[i + 1:j].replace('\\"', '"'), j + 1
        elif text[i] == "<":
            depth, j = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            attrs[key], i = text[i + 1:j - 1], j
        else:
            j = text.find(" ", i)
            j = len(text) if j < 0 else j
            attrs[key], i = text[i:j], j
    return attrs


def plain(label: str) -> str:
    """The text of an HTML-like label, one line per <BR/> (a no-break space read as a space)."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<BR[^>]*/>", "\n", label))).replace("\u00a0", " ").strip()


def shown(label: str) -> str:
    """The text of a label in the gradient colour only (what a step-through frame shows of the numbers)."""
    return "".join(html.unescape(text).replace("\u00a0", " ") for colour, text in
                   re.findall(r'<FONT COLOR="([^"]+)"><B>([^<]*)</B></FONT>', label) if colour == GRADIENT)


def gradient_row(label: str) -> str:
    """The gradient row of a node's label, its lines (a long row goes on on further lines) joined."""
    lines = plain(label).split("\n")
    start = next(i for i, line in enumerate(lines) if re.match(r"d[^/\s]+/d", line))
    return "".join(lines[start:])


def engine(root):
    return backpropagate(root, record_branches=True)


def scene(root, view="forward", **options):
    return Scene(AnnotatedPass(root), view, **options)


# --- graphs ---------------------------------------------------------------------------------------------------

def forked() -> tuple[Value, Value, Value]:
    """a forks four ways (twice into a * a); b feeds one product."""
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    q = a * a
    loss = (q.tanh() + a) * (q + a * b)
    loss.label = "L"
    return a, b, loss


def recurrent(steps: int) -> Value:
    """A small recurrent net in stages "t=1", ... (each with "gate" and "cell" inside, and a loss added to a
    running total): the weights w, u, b are used by every step, h forks into the next step and the loss."""
    w, u, b = Value(0.5, label="w"), Value(-0.8, label="u"), Value(0.1, label="b")
    h = Value(0.0, label="h0")
    total = None
    for t in range(1, steps + 1):
        x = Value(math.sin(t), label=f"x{t}")
        with stage(f"t={t}"):
            with stage("gate"):
                z = (w * x + u * h + b).sigmoid()
            with stage("cell"):
                h = (z * h + (1 - z) * x).tanh()
                h.label = "h"
            loss = (h - 0.5) ** 2
            total = loss if total is None else total + loss
    total.label = "L"
    return total


def shapes(dot: Dot) -> int:
    return len(dot.nodes)


# --- forward view ----------------------------------------------------------------------------------------------

def test_forward_view_writes_each_node_as_name_expression_and_value():
    a, b, loss = forked()
    dot = parse(draw(loss).source)
    _, node_a = dot.named("a")
    assert plain(node_a["label"]).startswith("a = 0.7")
    texts = [plain(attrs["label"]) for attrs in dot.nodes.values()]
    assert any(text.startswith("v1 = a * a = 0.49") for text in texts)  # short: on one line
    assert any(text.startswith("L = ") for text in texts)
    assert len(dot.nodes) == len(topological_order(loss))  # every node once, no constants here
    assert "fork: 4 uses" in plain(node_a["label"]) and node_a["color"] == FORK_BORDER
    assert not any("dL/" in text for text in texts)  # no gradients in the forward view


def test_tensor_nodes_show_shape_and_a_summary_and_tiny_arrays_in_full():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)), label="x")
    w1 = Tensor(rng.standard_normal((3, 5)), requires_grad=True, label="W1")
    b1 = Tensor(np.array([0.5, -0.25]), requires_grad=True, label="b1")
    w2 = Tensor(rng.standard_normal((5, 2)), requires_grad=True, label="W2")
    loss = ((x @ w1).relu() @ w2 + b1).sum()
    loss.label = "L"
    dot = parse(draw(loss, "backward").source)
    lines = plain(dot.named("W1")[1]["label"]).split("\n")
    assert lines[0] == "W1  3×5"
    low, high = format_number(w1.data.min(), 3), format_number(w1.data.max(), 3)
    assert lines[1] == f"{low} … {high}, mean {format_number(w1.data.mean(), 3)}"
    gradient = engine(loss).adjoints[w1]
    assert gradient_row(dot.named("W1")[1]["label"]).startswith(f"dL/dW1 = {format_number(gradient.min(), 3)} … ")
    assert plain(dot.named("b1")[1]["label"]).split("\n")[1] == "[0.5, -0.25]"  # two elements: in full
    assert gradient_row(dot.named("b1")[1]["label"]) == "dL/db1 = [4, 4]"  # one per row of x


# --- backward view: the numbers on nodes and edges ------------------------------------------------------------

def test_a_fork_shows_its_branch_terms_adding_up_to_the_engines_gradient():
    a, _, loss = forked()
    dot = parse(draw(loss, "backward").source)
    _, node = dot.named("a")
    match = re.fullmatch(r"dL/da = (.+) = (\S+)", gradient_row(node["label"]))
    terms = [float(text.strip("()")) for text in match[1].split(" + ")]
    branches = engine(loss).terms(a)
    assert len(terms) == len(branches) == 4
    # in the order the annotated pass sends them: the consumer listed last first
    assert terms == pytest.approx([b.term for b in AnnotatedPass(loss).terms(a)], rel=5e-3)
    assert sorted(terms) == pytest.approx(sorted(b.term for b in branches), rel=5e-3)
    assert match[2] == format_number(engine(loss).adjoints[a], 3)
    assert format_number(math.fsum(terms), 3) == match[2]  # the written terms add up to the written total
    assert node["color"] == FORK_BORDER


def test_a_fork_of_many_branches_writes_their_number_instead():
    x = Value(0.3, label="x")
    loss = sum((x * k for k in range(1, 7)), Value(0.0, label="zero"))
    loss.label = "L"
    row = gradient_row(parse(draw(loss, "backward").source).named("x")[1]["label"])
    assert row == f"dL/dx = Σ 6 branches = {format_number(21.0, 3)}"


def test_every_edge_carries_the_local_derivative_and_the_term_the_engine_sent_back():
    a, b, loss = forked()
    shown = scene(loss, "backward")
    writer = DotWriter(shown, 3, "LR")
    dot = parse(writer.write().source)
    terms = {(br.consumer, br.position): br.term for branches in engine(loss).branches.values() for br in branches}
    checked = 0
    for edge in shown.edges:
        (consumer, position), = edge.branches
        labels = [plain(attrs["label"]) for attrs in dot.between(writer.ids[edge.tail], writer.ids[edge.head])]
        expected = (f"× {format_number(local_derivative(consumer, position), 3)} =\n"
                    f"{format_number(terms[consumer, position], 3)}")
        assert expected in labels
        checked += 1
    assert checked == len(dot.edges) == 11
    assert all(attrs["dir"] == "back" for _, _, attrs in dot.edges)  # arrows point the way gradients flow
    tooltip = dot.between(writer.ids[a], writer.ids[next(n for n in shown.nodes if n.parents == (a, b))])
    assert tooltip[0]["tooltip"].startswith("dL/dv") and "where ∂v" in tooltip[0]["tooltip"]


def test_a_matrix_products_edges_write_the_term_in_order_with_the_upstream_gradient():
    x = Tensor(np.ones((2, 3)), requires_grad=True, label="x")
    w = Tensor(np.full((3, 4), 0.5), requires_grad=True, label="W")
    z = x @ w
    z.label = "z"
    loss = z.sum()
    dot = parse(draw(loss, "backward").source)
    z_id, x_id, w_id = (dot.named(name)[0] for name in ("z", "x", "W"))
    (to_x,), (to_w,) = dot.between(x_id, z_id), dot.between(w_id, z_id)
    assert plain(to_x["label"]).startswith("dL/dz @ W^T:") and plain(to_w["label"]).startswith("x^T @ dL/dz:")
    assert to_w["tooltip"] == "x^T @ dL/dz = all 2"  # each element of dL/dW sums a column of ones: 2


def test_precision_is_the_number_of_significant_digits():
    x = Value(1 / 3, label="x")
    loss = (x * x).tanh()
    for digits in (2, 5):
        text = plain(parse(draw(loss, precision=digits).source).named("x")[1]["label"])
        assert text.split("\n")[0] == f"x = {format_number(1 / 3, digits)}"
    assert format_number(1 / 3, 5) == "0.33333"


def test_a_graph_recorded_by_create_graph_is_drawn_as_the_backward_computation():
    x = Value(0.5, label="x")
    y = (x * x).tanh()
    slope = grad(y, x, create_graph=True)
    slope.label = "dy_dx"
    dot = parse(draw(slope, "backward").source)
    backward = dot.clusters()[("backward",)]
    assert backward.attrs["fillcolor"] == BACKWARD_FILL and backward.members
    assert any("tanh" in plain(dot.nodes[key]["label"]) for key in dot.nodes)  # the forward pass it reuses
    # the drawing's dL/dx is the second derivative, d/dx [(1 - tanh(x^2)^2) 2x]
    first = lambda v: (1 - math.tanh(v * v) ** 2) * 2 * v  # noqa: E731
    second = (first(0.5 + 1e-6) - first(0.5 - 1e-6)) / 2e-6
    row = gradient_row(dot.named("x")[1]["label"])
    assert float(row.rsplit(" = ", 1)[1]) == pytest.approx(second, rel=5e-3)


def test_constants_can_be_hidden_and_stay_readable_in_expressions():
    a = Value(1.5, label="a")
    loss = a * 2 + 1
    with_constants = parse(draw(loss).source)
    without = parse(draw(loss, show_constants=False).source)
    assert sorted(attrs["label"] for attrs in with_constants.nodes.values() if attrs.get("shape") == "plaintext") \
        == ["1", "2"]
    assert not any(attrs.get("shape") == "plaintext" for attrs in without.nodes.values())
    assert any("a * 2" in plain(attrs["label"]) for attrs in without.nodes.values())


# --- stages: clusters, boxes, roll-up, shared inputs ---------------------------------------------------------

def test_stages_become_nested_clusters_one_under_another_in_computation_order():
    a = Value(2.0, label="a")
    with stage("model"), stage("layer 1"):
        hidden = (a * 3).tanh()
        hidden.label = "hidden"
    loss = recurrent(2) + hidden
    writer = DotWriter(scene(loss, collapse=None), 3, "TB")
    dot = parse(writer.write().source)
    clusters = dot.clusters()
    assert ("model · layer 1",) in clusters  # a stage holding only one other is drawn as one cluster with it
    assert dot.where(dot.named("hidden")[0]) == ("model · layer 1",)
    assert {("t=1",), ("t=1", "gate"), ("t=1", "cell"), ("t=2", "gate")} <= set(clusters)
    # t=1 comes above t=2, and within a step "gate" above "cell": invisible edges from the bottom of one to an
    # invisible anchor, and from it to the top of the next, which Graphviz keeps pointing down
    anchors: dict[str, tuple[set, set]] = {}
    for tail, head, attrs in dot.edges:
        if attrs.get("style") == "invis" and "a" in (tail[0], head[0]):  # (not the one that puts "shared" below)
            if head.startswith("a"):
                anchors.setdefault(head, (set(), set()))[0].add(dot.where(tail))
            else:
                anchors.setdefault(tail, (set(), set()))[1].add(dot.where(head))
    assert sum(len(found) for found in writer.anchors.values()) == len(anchors)
    stacked = [(above, below) for aboves, belows in anchors.values() for above in aboves for below in belows]
    assert any(above[:1] == ("t=1",) and below[:1] == ("t=2",) for above, below in stacked)
    assert (("t=1", "gate"), ("t=1", "cell")) in stacked
    assert not any(above[:1] == ("t=2",) and below[:1] == ("t=1",) for above, below in stacked)


def test_collapse_draws_matching_stages_as_boxes_and_keep_exempts_one():
    loss = recurrent(4)
    shown = scene(loss, "backward", collapse="t=*", keep="t=3")
    writer = DotWriter(shown, 3, "LR")
    dot = parse(writer.write().source)
    titles = sorted(box.title for box in shown.boxes)
    assert titles == ["t=1", "t=2", "t=4"]
    for box in shown.boxes:
        label = plain(dot.nodes[writer.ids[box]]["label"])
        assert label.startswith(f"{box.title}\n{box.nodes} nodes")
    assert ("t=3 · gate",) in dot.clusters()  # the kept step in full (left to right: a cluster per stage in it)
    # between boxes one line stands for all their edges, with what comes back to each value the line carries
    terms = {(br.consumer, br.position): br.term for branches in engine(loss).branches.values() for br in branches}
    merged = [edge for edge in shown.edges if isinstance(edge.tail, Box) and isinstance(edge.head, Box)]
    assert merged
    for edge in merged:
        (attrs,) = dot.between(writer.ids[edge.tail], writer.ids[edge.head])
        per_value = {}
        for consumer, position in edge.branches:
            value = consumer.parents[position]
            per_value[value] = per_value.get(value, 0.0) + terms[consumer, position]
        rows = [row.rstrip() for row in plain(attrs["label"]).split("\n")]  # (a space after a row spaces labels)
        assert rows == [f"{writer.names[value]}: {format_number(total, 3)}" for value, total in per_value.items()]


def test_collapse_auto_draws_every_step_of_a_loop_but_the_last_as_a_box():
    loss = recurrent(5)
    shown = scene(loss, "backward")
    assert sorted(box.title for box in shown.boxes) == ["t=1", "t=2", "t=3", "t=4"]
    assert {node.stage[0] for node in shown.nodes if node.stage} == {"t=5"}
    kept = scene(loss, "backward", keep="t=2")
    assert sorted(box.title for box in kept.boxes) == ["t=1", "t=3", "t=4", "t=5"]
    assert scene(loss, collapse=None).boxes == []
    assert scene(recurrent(1), "backward").boxes == []  # one step is no loop
    x = Value(0.5, label="x")
    with stage("t=1"):
        y = x * 2
    with stage("t=2"):
        y = y * 3
    assert scene(y).boxes == []  # a loop this small is drawn in full


def test_a_loop_box_summarises_the_inputs_it_uses_and_the_step_in_full_draws_them_with_their_totals():
    loss = recurrent(4)
    shown = scene(loss, "backward", collapse="t=*", keep="t=3")
    w = next(node for node in shown.names if shown.names[node] == "w")
    assert all(w in box.inputs for box in shown.boxes)  # no line from w into each box
    assert not any(edge.tail is w and isinstance(edge.head, Box) for edge in shown.edges)
    assert w in shown.nodes and shown.place(w) == ("t=3", "gate")  # drawn where the step in full uses it
    added = [shown.term(link) for box in shown.boxes for link in box.inputs[w]]
    added += [shown.term((consumer, position)) for consumer in shown.nodes
              for position, parent in enumerate(consumer.parents) if parent is w]
    assert math.fsum(added) == pytest.approx(engine(loss).adjoints[w])
    writer = DotWriter(shown, 3, "LR")
    dot = parse(writer.write().source)
    box = next(box for box in shown.boxes if box.title == "t=1")
    label = plain(dot.nodes[writer.ids[box]]["label"])
    assert {shown.names[node] for node in box.inputs} == {"w", "u", "b", "x1", "h0"}
    assert "uses 5 values outside" in label and "adds to 5 gradients" in label
    assert f"dL/dw += {format_number(sum(shown.term(b) for b in box.inputs[w]), 6)}" in dot.nodes[
        writer.ids[box]]["tooltip"]
    total = format_number(engine(loss).adjoints[w], 3)
    assert gradient_row(dot.named("w")[1]["label"]).endswith(f"= {total}")


def test_inputs_shared_by_many_steps_in_full_are_copied_into_each_with_a_table_of_totals():
    loss = recurrent(4)
    shown = scene(loss, "backward", collapse=None)
    w = next(node for node in shown.names if shown.names[node] == "w")
    copies = [proxy for proxy in shown.proxies if proxy.original is w]
    assert sorted(copy.stage for copy in copies) == [("t=1", "gate"), ("t=2", "gate"), ("t=3", "gate"),
                                                     ("t=4", "gate")]
    added = [shown.term(branch) for copy in copies for branch in copy.branches]
    assert math.fsum(added) == pytest.approx(engine(loss).adjoints[w])
    dot = parse(DotWriter(shown, 3, "TB").write().source)
    total = format_number(engine(loss).adjoints[w], 3)
    assert w in shown.floating and re.search(rf"w0\.5dL/dw = [^=]+ = {total}u", plain(dot.nodes["shared"]["label"]))


def test_a_value_from_a_box_that_forks_into_the_step_in_full_is_drawn_there_with_its_sum():
    loss = recurrent(3)
    shown = scene(loss, "backward")  # t=1 and t=2 are boxes; h of t=2 feeds t=3 three times
    (copy,) = [proxy for proxy in shown.proxies if proxy.box is not None]
    assert copy.box.title == "t=2" and copy.original.label == "h" and len(copy.branches) == 2  # u * h, z * h
    assert [edge.head for edge in shown.edges if edge.tail is copy] == [link[0] for link in copy.branches]
    (into,) = [edge for edge in shown.edges if edge.head is copy]
    assert into.tail is copy.box and into.branches == copy.branches
    writer = DotWriter(shown, 3, "TB")
    label = plain(parse(writer.write().source).nodes[writer.ids[copy]]["label"])
    assert label.startswith(f"{writer.names[copy.original]} = ") and "from t=2" in label
    total = sum(shown.term(link) for link in copy.branches)
    assert label.replace("\n", "").endswith(f"= {format_number(total, 3)}")


def test_roll_up_draws_a_run_of_alike_steps_as_one_box_that_feeds_itself():
    shown = scene(recurrent(6), roll_up=True, collapse=None)
    dot = parse(DotWriter(shown, 3, "LR").write().source)
    (box,) = shown.boxes  # t=1 differs (no running total yet); t=2 … t=6 are alike
    assert (box.title, box.repeats) == ("t=2 … t=6", 5)
    (node,) = [attrs for attrs in dot.nodes.values() if attrs.get("shape") == "box3d"]
    assert plain(node["label"]).startswith("t=2 … t=6  ×5\n")
    assert "uses 8 values outside" in plain(node["label"])  # w, u, b, x2 … x6: summarised, no line from each
    assert [attrs["style"] for t, h, attrs in dot.edges if t == h] == ["dashed"]  # step t feeds step t+1
    assert not any(isinstance(edge.head, Box) and source_of(edge.tail) in box.inputs for edge in shown.edges)


def test_an_edge_across_many_ranks_is_drawn_from_a_copy_beside_its_head():
    x = Value(0.4, label="x")
    y = x
    for _ in range(40):
        y = (y * 0.9).tanh()
    loss = y + x
    loss.label = "L"
    shown = scene(loss, "backward")
    (copy,) = [proxy for proxy in shown.proxies if proxy.original is x]
    assert copy.branches == [(loss, 1)]
    assert not any(edge.tail is x and edge.head is loss for edge in shown.edges)
    label = plain(parse(DotWriter(shown, 3, "TB").write().source).nodes["p0"]["label"])
    assert label == "dL/dx += 1"  # a copy says what its stage adds; x = 0.4 is on its own node


def test_auto_direction_draws_shallow_graphs_left_to_right_and_deep_ones_top_down():
    _, _, small = forked()
    assert parse(draw(small).source).graph["rankdir"] == "LR"
    assert parse(draw(recurrent(6)).source).graph["rankdir"] == "TB"
    assert parse(draw(recurrent(6), rankdir="LR").source).graph["rankdir"] == "LR"


def test_index_plumbing_folds_into_its_consumer_unless_asked_for():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, label="x")
    y = Tensor(np.ones((2, 2)), requires_grad=True, label="y")
    joined = autograd.concatenate([x, y], axis=1).reshape(5, 2).T  # plumbing: concatenate, reshape, transpose
    loss = (joined * 2.0).sum()
    loss.label = "L"
    folded = scene(loss, "backward")
    assert {node.op.name for node in folded.folded} == {"concatenate", "reshape", "transpose"}
    assert not folded.folded & set(folded.nodes)
    dot = parse(draw(loss, "backward").source)
    product = next(attrs for attrs in dot.nodes.values() if " * 2" in plain(attrs["label"]))
    assert plain(product["label"]).split("\n")[0].endswith("= [x | y]^T * 2  2×5")
    x_id, product_id = dot.named("x")[0], next(key for key, attrs in dot.nodes.items() if attrs is product)
    (into,) = dot.between(x_id, product_id)  # x goes straight into the product, its gradient on the line
    assert plain(into["label"]) == "all 2"
    assert "taken apart by concatenate" in into["tooltip"]
    unfolded = parse(draw(loss, "backward", fold=False).source)
    assert len(unfolded.nodes) == len(dot.nodes) + 3


def test_an_index_is_written_as_it_was_given():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True, label="x")
    picks = [x[-1], x[0, 1:3], x[..., ::2], x[:, None, 0], x[[0, 1], 0, 2]]
    texts = [plain(parse(draw(pick).source).nodes["n1"]["label"]).split("  ")[0] for pick in picks]
    assert texts == ["L = x[-1]", "L = x[0, 1:3]", "L = x[..., ::2]", "L = x[:, None, 0]", "L = x[[0, 1], 0, 2]"]


# --- the guard and its advice ------------------------------------------------------------------------------------

def advice_in(message: str) -> tuple[str, dict]:
    """The view and keyword arguments of the ``draw(root, ...)`` call an error message advises."""
    match = re.search(r"draw\(root, (.*?)\); or", message)
    call = ast.parse(f"f({match[1]})").body[0].value
    return ast.literal_eval(call.args[0]), {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def test_a_graph_larger_than_max_nodes_is_refused_with_advice_that_works():
    loss = recurrent(30)
    with pytest.raises(GraphTooLargeError) as refused:
        draw(loss, "backward", max_nodes=150, collapse=None)
    message = str(refused.value)
    assert "max_nodes=150" in message and "t=1 (" in message
    view, options = advice_in(message)
    assert (view, options) == ("backward", refused.value.options)
    assert options == {"collapse": "t=*", "keep": "t=30"}
    assert shapes(parse(draw(loss, view, max_nodes=150, **options).source)) <= 150


def test_the_advice_collapses_a_large_stage_beside_a_numbered_run_when_it_must():
    w = Value(0.5, label="w")
    parts = []
    for block in range(1, 5):
        with stage(f"block={block}"):
            part = w * block
            for _ in range(12):
                part = (part * w).tanh()
            parts.append(part)
    with stage("total"):
        loss = parts[0]
        for k in range(60):
            loss = loss + parts[k % 4] * 0.5
    loss.label = "L"
    with pytest.raises(GraphTooLargeError) as refused:
        draw(loss, max_nodes=40)
    view, options = advice_in(str(refused.value))
    assert options == {"collapse": ["total", "block=*"], "keep": "block=4"} == refused.value.options
    assert shapes(parse(draw(loss, view, max_nodes=40, **options).source)) <= 40


def test_the_advice_says_when_there_is_nothing_to_collapse():
    x = Value(0.1, label="x")
    for _ in range(30):
        x = x.tanh() + 0.1
    with pytest.raises(GraphTooLargeError, match="no stages to collapse") as refused:
        draw(x, max_nodes=20)
    assert refused.value.options is None
    with stage("a"):
        y = x * 2
    with pytest.raises(GraphTooLargeError, match="outside any stage") as refused:
        draw(y, max_nodes=20)
    assert refused.value.options is None


def test_the_guard_refuses_before_the_reverse_pass():
    loss = recurrent(300)
    calls = []
    original = autograd.view.annotated.backpropagate
    autograd.view.annotated.backpropagate = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    try:
        with pytest.raises(GraphTooLargeError):
            draw(loss, "backward", collapse=None)
    finally:
        autograd.view.annotated.backpropagate = original
    assert calls == []


@pytest.mark.parametrize(("options", "problem"), [
    ({"view": "sideways"}, "view must be"),
    ({"rankdir": "XY"}, "rankdir must be"),
    ({"precision": 0}, "significant digits"),
    ({"max_nodes": 0}, "max_nodes must be"),
])
def test_bad_options_are_named(options, problem):
    with pytest.raises(ValueError, match=problem):
        draw(forked()[2], **options)


def test_bad_roots_and_patterns_are_named():
    with pytest.raises(TypeError, match="expected a graph node"):
        draw(3.0)
    with pytest.raises(TypeError, match="collapse= takes stage-name patterns"):
        draw(recurrent(2), collapse=[1])


# --- rendering ---------------------------------------------------------------------------------------------------

def test_render_writes_a_valid_png_svg_pdf_and_dot_text(tmp_path):
    _, _, loss = forked()
    drawing = draw(loss, "backward")
    png = render(drawing, tmp_path / "graph.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 200 < width < 3000 and 50 < height < 2000  # readable, not a poster
    svg = ElementTree.parse(render(drawing, tmp_path / "graph.svg"))
    groups = svg.getroot().iter("{http://www.w3.org/2000/svg}g")
    assert sum(1 for g in groups if g.get("class") == "node") == len(parse(drawing.source).nodes)
    assert render(drawing, tmp_path / "graph.pdf").read_bytes()[:5] == b"%PDF-"
    assert render(drawing, tmp_path / "graph.gv").read_text() == drawing.source
    assert render(drawing, tmp_path / "graph.out", format="svg").read_text().lstrip().startswith("<?xml")
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temporary one
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "graph.gv", "graph.out", "graph.pdf", "graph.png", "graph.svg"]  # no temporary files left behind


def test_render_names_an_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format"):
        render(draw(forked()[2]), tmp_path / "graph.jpeg")


def no_dot_on_path(monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_without_dot_rendering_names_the_install_command_and_dot_text_still_saves(monkeypatch, tmp_path):
    no_dot_on_path(monkeypatch, tmp_path)
    drawing = draw(forked()[2], "backward")  # drawing needs no dot
    with pytest.raises(GraphvizNotFoundError, match=r"apt-get install graphviz"):
        render(drawing, tmp_path / "graph.png")
    assert not (tmp_path / "graph.png").exists()
    assert render(drawing, tmp_path / "graph.gv").read_text() == drawing.source
    assert list(node_bundle(forked()[2])) == ["text/plain"]
    assert "apt-get install graphviz" in drawing._repr_mimebundle_()["text/plain"]


def test_values_tensors_and_drawings_display_inline_in_jupyter_as_svg_with_their_tooltips():
    _, _, loss = forked()
    bundle = loss._repr_mimebundle_()
    assert bundle["text/plain"] == repr(loss)
    html_svg = bundle["text/html"]
    assert html_svg.startswith("<div") and "overflow:auto" in html_svg and "resize:horizontal" in html_svg
    svg = ElementTree.fromstring(html_svg[html_svg.index("<svg"):html_svg.rindex("</svg>") + 6])
    titles = [element.get("{http://www.w3.org/1999/xlink}title") for element in svg.iter("{http://www.w3.org/2000/svg}a")]
    assert "a = 0.7" in titles  # the tooltips are there: inline SVG, not an image
    assert svg.get("width") == "100%"
    tensor = (Tensor(np.ones((2, 2)), requires_grad=True, label="T") * 2).sum()
    assert "<svg" in tensor._repr_mimebundle_()["text/html"]
    assert list(loss._repr_mimebundle_(include={"text/plain"})) == ["text/plain"]
    assert list(recurrent(20)._repr_mimebundle_()) == ["text/plain"]  # too large to show unasked
    assert "<svg" in draw(loss)._repr_mimebundle_()["text/html"]
