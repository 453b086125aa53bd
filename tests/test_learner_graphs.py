"""The graphs learners build themselves (tests/learner_graphs.py), drawn through the real ``dot``, forward and
backward: no edge label under a node's box or another label, and at most a notebook column wide, or one warning
that says how wide and names a call of ``draw`` that was measured to fit. Also the stored notebooks' drawings,
which must carry a PNG for the viewers that drop a notebook's HTML."""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import warnings
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest
from learner_graphs import (
    CORPUS,
    SVG,
    WIDTH_BUDGET,
    groups,
    measure,
    measure_svg,
    readme_tensor,
    scalar_lstm,
    shape_box,
)

from autograd import draw
from autograd.view import geometry
from autograd.view.rendering import PNG_MAX, WidthWarning, pipe

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))  # every drawing stored in them
# the drawings that are still wider than a column, with the warning (measured: python tests/learner_graphs.py); every
# other one must fit without a word
WIDER = {("GRU-like cell, 2 steps", "backward"), *(
    (f"ScalarLSTM hidden {h}, {n} layer{'s' * (n > 1)}, {t} step{'s' * (t > 1)}", view)
    for h, n, t, views in [(2, 2, 2, "b"), (2, 2, 3, "b"), (3, 1, 2, "b"), (3, 1, 3, "b"), (3, 2, 1, "b"),
                           (3, 2, 2, "fb"), (3, 2, 3, "fb"), (4, 1, 2, "b"), (4, 1, 3, "b"), (4, 2, 1, "fb"),
                           (4, 2, 2, "fb"), (4, 2, 3, "fb")]
    for view in ("forward", "backward") if view[0] in views)}


@pytest.mark.parametrize("view", ["forward", "backward"])
@pytest.mark.parametrize("name", list(CORPUS))
def test_a_learner_graph_has_no_label_under_a_box_and_fits_or_says_what_fits(name, view):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        found = measure(draw(CORPUS[name](), view))
    assert found.under_nodes == [], f"edge labels under node boxes: {found.under_nodes}"
    assert found.on_labels == [], f"edge labels on each other: {found.on_labels}"
    widths = [str(warning.message) for warning in said if issubclass(warning.category, WidthWarning)]
    if found.width <= WIDTH_BUDGET:
        assert widths == []
    else:
        assert (name, view) in WIDER, f"{found.width:.0f} px"
        (message,) = widths  # said once
        assert f"{found.width:,.0f} px wide" in message
        fits = re.search(r"(draw\(root, .*\)) fits \(([\d,]+) px\)", message)
        assert fits and int(fits[2].replace(",", "")) <= WIDTH_BUDGET, message


def test_a_left_to_right_drawing_too_wide_is_laid_out_top_to_bottom_without_a_word():
    drawing = draw(readme_tensor(), "backward")
    assert "rankdir=LR" in drawing.source  # what "auto" chose from the depth alone: 1,253 px wide
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = pipe(drawing, "svg").decode()
    assert measure_svg(svg).width <= WIDTH_BUDGET
    assert "<svg" in svg and "rankdir" not in svg


def test_a_drawing_too_wide_is_laid_out_with_its_shapes_closer_together_without_a_word():
    drawing = draw(scalar_lstm(4, 1, 1), "forward")
    assert "nodesep=0.1" in drawing.source
    loose = drawing.copy()
    loose.narrower = []  # measured as it is
    with pytest.warns(WidthWarning):
        assert measure(loose).width > WIDTH_BUDGET  # 1,093 px: the fans of x and h0 into four gates
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert measure(drawing).width <= WIDTH_BUDGET  # the same picture, shapes and lines closer together


def test_a_png_the_renderer_would_cut_is_drawn_at_a_lower_resolution_and_says_so():
    from autograd import Value
    total = Value(0.0, label="start")
    for k in range(300):  # a chain 300 ranks deep, drawn left to right: about 40,000 px wide at 96 dpi
        total = total + float(k)
    drawing = draw(total, rankdir="LR", show_constants=False)
    with pytest.warns(UserWarning, match=r"over the PNG renderer's maximum of 32,767 px a side: written at \d+ dpi"):
        png = pipe(drawing, "png")
    width, height = struct.unpack(">II", png[16:24])
    assert max(width, height) < PNG_MAX and width > 10 * height  # whole, not cut


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_every_stored_drawing_carries_a_png_for_untrusted_viewers(path):
    notebook = nbformat.read(path, as_version=4)
    drawings = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            if "<svg" not in html:
                continue
            drawings += 1
            png = base64.b64decode(output["data"]["image/png"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert 'height="auto"' not in html  # not a length: browsers log an error
            assert not re.search(r"<title>(cluster_\d+|%\d+)</title>", html) or "xlink:title" in html


def test_a_scalar_lstm_of_three_units_draws_one_unit_in_full_and_boxes_the_others():
    source = draw(scalar_lstm(3, 1, 2), "backward").source
    boxes = re.findall(r"<B>(unit \d)</B>", source)
    assert sorted(boxes) == ["unit 0", "unit 1"]  # as steps are: the ones before as boxes, the last in full
    assert "label=<unit 2>" in source  # drawn in full, as a cluster


def test_a_scalar_lstm_of_two_layers_boxes_the_first_layer_and_stays_top_to_bottom():
    source = draw(scalar_lstm(3, 2, 2), "backward").source
    assert "rankdir=TB" in source  # was laid out sideways, 8,993 px wide
    boxes = sorted(re.findall(r"<B>((?:unit|layer|t=)\S*(?: \d)?)</B>", source))
    assert boxes == ["layer 0", "t=1", "unit 0", "unit 1"]  # of the step in full, one unit of the last layer
    with pytest.warns(WidthWarning):  # still wider than a column, and said so
        assert measure(draw(scalar_lstm(3, 2, 2), "backward")).width < 1.5 * WIDTH_BUDGET



def test_a_loss_gathered_from_several_units_is_drawn_under_them_not_beside():
    drawing = draw(scalar_lstm(2, 1, 1), "forward")
    svg = pipe(drawing, "svg").decode()

    root = ElementTree.fromstring(svg[svg.index("<svg"):])
    clusters = {title: shape_box(group) for title, group in groups(root, "cluster")}
    texts = {" ".join("".join(t.itertext()) for t in group.iter(f"{SVG}text")): shape_box(group)
             for _, group in groups(root, "node")}
    (step,) = [box for box in clusters.values() if box is not None and box[1] == min(b[1] for b in clusters.values())]
    sums = [box for text, box in texts.items() if text.startswith(("L ", "v")) and "+ h[t=1]" in text]
    assert len(sums) == 2  # 0 + h[0] and L = that + h[1]
    assert all(box[1] >= step[3] for box in sums), (sums, step)  # every one below the step's cluster


def test_the_inputs_of_a_stage_wider_than_a_row_are_wrapped():

    svg = pipe(draw(scalar_lstm(2, 2, 2), "forward"), "svg").decode()
    root = ElementTree.fromstring(svg[svg.index("<svg"):])
    rows = {round(shape_box(group)[1]) for _, group in groups(root, "node")
            if re.search(r"from (t=1|layer 0)", " ".join("".join(t.itertext()) for t in group.iter(f"{SVG}text")))}
    assert len(rows) == 2  # h[t=1, layer 1][0, k] and h[t=2, layer 0][0, k]: four long names, two rows


def test_after_a_second_backward_draw_and_explain_say_grad_holds_more_than_one_pass():
    from autograd import Value, explain, zero_grad
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    L = (a * b + a).tanh()
    L.backward()
    assert explain(L).notice is None and "zero_grad" not in draw(L, "backward").source  # one pass: nothing to say
    L.backward()  # a re-run cell: .grad adds up
    notice = explain(L).notice
    assert notice.startswith("note: .grad of a, b holds more than this one pass") and "zero_grad(root)" in notice
    assert str(explain(L)).splitlines()[-1].strip() == notice  # one line, at the end of the derivation
    assert "zero_grad(root)" in draw(L, "backward").source and "zero_grad" not in draw(L).source
    zero_grad(L)
    L.backward()
    assert explain(L).notice is None


def test_a_boxed_step_says_in_plain_words_what_it_feeds_and_uses():
    from learner_graphs import tensor_lstm
    source = draw(tensor_lstm(), "backward").source
    assert "feeds out[-1], which sends no gradient back" in source  # the steps before the last: L reads out[-1]
    assert "uses W and the constant 1" in source
    assert not re.search(r"(feeds|uses) v\d+", source)  # no name a student cannot find in their code


def test_clusters_and_the_background_have_tooltips_of_their_own():
    svg = pipe(draw(readme_tensor(), "backward"), "svg").decode()
    assert not re.search(r"<title>%\d+</title>", svg)
    assert re.search(r'<g id="clust1" class="cluster">.*?xlink:title="layer 1"', svg, flags=re.S)


def test_edge_labels_and_stage_titles_are_as_large_as_node_text_for_a_projector():
    svg = pipe(draw(readme_tensor(), "backward"), "svg").decode()
    root = ElementTree.fromstring(svg[svg.index("<svg"):])
    sizes = {kind: {float(text.get("font-size")) for _, group in groups(root, kind)
                    for text in group.iter(f"{SVG}text")} for kind in ("edge", "cluster", "node")}
    assert sizes["edge"] == {10.0} and sizes["cluster"] == {10.0}  # points: 13.3 px, as node text (was 12 px)
    assert max(sizes["node"]) == 10.0


@pytest.mark.parametrize("name, spacing", [("CNN 4x4, 2x2 kernel", "0.05"),
                                           ("ScalarLSTM hidden 1, 1 layer, 2 steps", "0.02"),
                                           ("ScalarLSTM hidden 3, 2 layers, 2 steps", "0.02")])
def test_the_library_sees_an_edge_label_on_a_shape_wherever_this_test_does(name, spacing):
    # layouts packed closer than the default that put a label on a node or a label, by this test's measure: the
    # library, which measures with Graphviz's own text widths taken 6% wider, must see it too, or it would use them
    packed = draw(CORPUS[name](), "backward").source.replace("nodesep=0.1", f"nodesep={spacing}")
    layout, svg = (subprocess.run(["dot", f"-T{fmt}"], input=packed.encode(), capture_output=True, check=True).stdout
                   for fmt in ("json", "svg"))
    found = measure_svg(svg.decode())
    assert found.overlaps > 0
    assert geometry.overlaps(json.loads(layout)) > 0
    assert abs(geometry.width(json.loads(layout)) - found.width) < 1.5


def test_a_layout_packed_closer_that_puts_a_label_on_a_shape_is_not_used(monkeypatch):
    monkeypatch.setattr(geometry, "overlaps", lambda layout: 1)  # as if every closer packing did
    with pytest.warns(WidthWarning, match="1,093 px wide"):
        assert measure(draw(scalar_lstm(4, 1, 1), "forward")).width > WIDTH_BUDGET
