"""Step-through: frames in the order of the annotated pass, their numbers, picking them, images of them that
stay legible (cut around the step, not shrunk), the GIF and its progress, and Jupyter's display."""

from __future__ import annotations

import base64
import html
import io
import re
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from test_draw import forked, gradient_row, parse, recurrent, shown

from autograd import draw, step_through
from autograd.core import topological_order
from autograd.view import frames as frames_module
from autograd.view.annotated import AnnotatedPass
from autograd.view.boxes import Box
from autograd.view.dot import GRADIENT, PENDING
from autograd.view.frames import INLINE_MAX_FRAMES, Frames
from autograd.view.rendering import pipe
from autograd.view.scene import Proxy, Scene
from lstm import ScalarLSTM


def test_frames_follow_the_annotated_pass_one_node_per_step():
    a, b, loss = forked()
    frames = step_through(loss)
    order = AnnotatedPass(loss).senders  # every consumer before what it consumes: the listing, reversed
    assert order == [node for node in reversed(AnnotatedPass(loss).listing) if node.op is not None]
    assert len(frames) == len(order) + 1
    assert [moment.current for moment in frames.moments[1:]] == order
    assert frames.captions[0] == f"step 0/{len(order)}: the pass starts at L with dL/dL = 1"
    assert frames.captions[1].startswith(f"step 1/{len(order)}: dL/dL = 1 goes back to ")
    assert all(caption.startswith(f"step {k}/{len(order)}: ") for k, caption in enumerate(frames.captions))


def test_each_frame_shows_the_gradients_so_far_and_the_node_being_processed():
    a, b, loss = forked()
    frames = step_through(loss)
    writer = frames._writer
    first, last = parse(frames[0].source), parse(frames[-1].source)
    gradient_edges = [attrs for _, _, attrs in first.edges if attrs.get("dir") == "back"]
    assert gradient_edges and all(shown(attrs["label"]) == "" for attrs in gradient_edges)  # nothing sent yet
    assert all(attrs["color"] == PENDING for attrs in gradient_edges)
    full = parse(draw(loss, "backward").source)
    assert [shown(attrs["label"]) for _, _, attrs in last.edges] == \
        [shown(attrs["label"]) for _, _, attrs in full.edges]  # at the end, every term is back
    for k in range(1, len(frames)):
        dot = parse(frames[k].source)
        current = writer.ids[frames.moments[k].current]
        assert dot.nodes[current]["color"] == GRADIENT
        fresh = [(tail, attrs) for tail, head, attrs in dot.edges if attrs.get("penwidth") == "2.4"]
        assert fresh and all(attrs["color"] == GRADIENT for _, attrs in fresh)
        assert {tail for tail, _ in fresh} <= {writer.ids[p] for p in frames.moments[k].current.parents}
    # a's four terms arrive one at a time: its row grows, term by term, to the sum
    rows = [shown(parse(frame.source).named("a")[1]["label"]) for frame in frames]  # the red text only
    sums = [row.removeprefix("dL/da = ").split(" = ")[0] for row in rows]
    counts = [sum_.count(" + ") + 1 if sum_ else 0 for sum_ in sums]
    assert rows[0] == "dL/da = " and rows[-1] == gradient_row(full.named("a")[1]["label"])
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 4
    assert any(after - before == 2 for before, after in zip(counts, counts[1:]))  # a * a sends two at once
    assert all(" = " not in row.removeprefix("dL/da = ") for row, count in zip(rows, counts) if count < 4)


def test_frames_render_to_pngs_of_one_size_and_to_an_animated_gif(tmp_path):
    from PIL import Image

    a, b, loss = forked()
    frames = step_through(loss)
    paths = frames.save_pngs(tmp_path / "frames")
    assert [path.name for path in paths] == [f"frame_{k:03d}.png" for k in range(len(frames))]
    sizes = {Image.open(path).size for path in paths}
    assert len(sizes) == 1  # one layout for every frame
    gif = frames.save_gif(tmp_path / "pass.gif", duration=500)
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == len(frames) and image.size == sizes.pop()
        assert image.info["duration"] == 500


def test_jupyter_plays_few_frames_inline_and_lists_many(monkeypatch):
    from PIL import Image

    frames = step_through(forked()[2])
    bundle = frames._repr_mimebundle_()
    encoded = re.fullmatch(r'<img src="data:image/gif;base64,([A-Za-z0-9+/=]+)"/>', bundle["text/html"])[1]
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        assert image.format == "GIF" and image.n_frames == len(frames)
    monkeypatch.setattr("autograd.view.frames.INLINE_MAX_FRAMES", len(frames) - 1)
    bundle = frames._repr_mimebundle_()
    said = bundle["text/plain"].split("\n")[1]
    assert said.startswith(f"{len(frames)} frames: more than the {len(frames) - 1} played inline. Pick some: ")
    assert "frames.slider()" in said and "frames[1:] plays the last" in said and "save_gif" in said
    assert re.sub("<[^>]+>", "", bundle["text/html"]).replace("&#x27;", "'") == said


def test_save_gif_names_the_install_command_without_pillow(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    frames = step_through(forked()[2])
    with pytest.raises(ImportError, match=r'pip install "backprop-lens\[plot\]"'):
        frames.save_gif(tmp_path / "pass.gif")
    assert not (tmp_path / "pass.gif").exists()
    with pytest.raises(ImportError, match="Pillow"):
        frames.slider()._repr_html_()


def test_in_a_collapsed_drawing_the_steps_inside_a_box_make_one_frame():
    loss = recurrent(4)
    frames = step_through(loss, collapse="t=*", keep="t=4")
    units = [moment.current for moment in frames.moments[1:]]
    assert {unit.title for unit in units if isinstance(unit, Box)} == {"t=1", "t=2", "t=3"}
    assert all(a is not b for a, b in zip(units, units[1:]))  # a box's consecutive steps make one frame
    inside = [node for node in topological_order(loss) if isinstance(frames.scene.unit_of(node), Box)]
    assert len(frames) < len(topological_order(loss)) - len(inside) / 2
    for moment in frames.moments:
        if isinstance(moment.current, Box):
            assert re.fullmatch(rf"step \d+/{len(frames) - 1}: the \d+ nodes inside {moment.current.title} send "
                                "their gradients back", moment.caption)
    assert not any(isinstance(moment.current, Proxy) for moment in frames.moments)


def test_frames_are_built_from_one_scene_and_reused(monkeypatch):
    calls = []
    original = Scene.__init__

    def counting(self, *args, **kwargs):
        calls.append(1)
        original(self, *args, **kwargs)
    monkeypatch.setattr(Scene, "__init__", counting)
    frames = step_through(recurrent(3))
    sources = [frame.source for frame in frames]
    assert calls == [1] and len(set(sources)) == len(frames)
    picked = frames[1:3]
    assert isinstance(picked, Frames) and len(picked) == 2 and calls == [1]
    assert [frame.source for frame in picked] == sources[1:3]  # the same frames, captions and layout
    assert repr(frames).startswith(f"<Frames: {len(frames)} frames (steps 0 to {len(frames) - 1})")
    assert repr(picked).startswith("<Frames: 2 frames (steps 1 to 2)")


# --- picking frames, and frames that stay legible ---------------------------------------------------------------

def smallest_lstm_loss():
    model = ScalarLSTM(input_size=1, hidden_size=1, seed=0)
    out, _ = model(np.array([[[0.5]], [[-1.0]]]))
    loss = out[-1, 0, 0]
    loss.label = "L"
    return loss


def test_the_smallest_scalar_lstm_steps_through_within_the_inline_limit():
    frames = step_through(smallest_lstm_loss())
    assert len(frames) <= INLINE_MAX_FRAMES  # the step before the last is a box: its steps make one frame
    assert sum(isinstance(moment.current, Box) for moment in frames.moments) == 1
    assert "text/html" in frames[:3]._repr_mimebundle_()


def test_frames_can_be_picked_by_range_and_stepped_through_with_a_slider():
    frames = step_through(forked()[2])
    picked = frames[2:5]
    assert [moment.step for moment in picked.moments] == [2, 3, 4]
    assert picked.captions == frames.captions[2:5]
    with pytest.raises(IndexError, match="picks no frame"):
        frames[5:2]
    page = frames.slider()._repr_html_()
    images = re.findall(r'<img alt="([^"]*)" style="display:(\w+)" src="data:image/png;base64,([^"]+)"/>', page)
    assert [alt for alt, _, _ in images] == [html.escape(caption) for caption in frames.captions]
    assert [display for _, display, _ in images] == ["block"] + ["none"] * (len(frames) - 1)
    assert f'type="range" min="0" max="{len(frames) - 1}"' in page and "oninput=" in page
    frames_module.SLIDER_MAX_FRAMES, limit = 3, frames_module.SLIDER_MAX_FRAMES
    try:
        with pytest.raises(ValueError, match=r"pick at most 3, e.g. frames\[:3\].slider\(\)"):
            frames.slider()
    finally:
        frames_module.SLIDER_MAX_FRAMES = limit


def svg_centres(svg: str) -> dict[str, tuple[float, float]]:
    """Each node's centre in the PNG's pixels, from Graphviz's SVG of the same drawing (points, translated)."""
    root = ElementTree.fromstring(svg[svg.index("<svg"):])
    namespace = "{http://www.w3.org/2000/svg}"
    graph = next(root.iter(f"{namespace}g"))
    dx, dy = map(float, re.search(r"translate\(([\d.]+) ([\d.]+)\)", graph.get("transform")).groups())
    centres = {}
    for group in root.iter(f"{namespace}g"):
        if group.get("class") == "node":
            shape = next((child for child in group.iter() if child.tag in (f"{namespace}path",
                                                                             f"{namespace}polygon")), None)
            if shape is None:  # a constant, drawn as plain text
                continue
            numbers = [float(n) for n in re.findall(r"-?[\d.]+", shape.get("d") or shape.get("points"))]
            xs, ys = numbers[0::2], numbers[1::2]
            centres[group.find(f"{namespace}title").text] = ((min(xs) + max(xs)) / 2 + dx) * 4 / 3, \
                ((min(ys) + max(ys)) / 2 + dy) * 4 / 3
    return centres


def test_inline_frames_are_cut_around_the_step_with_their_caption_not_shrunk():
    frames = step_through(smallest_lstm_loss())
    full = frames.images()
    width, height = full[0].size
    assert width > 400 and height > 300
    places = svg_centres(pipe(frames[0], "svg").decode())
    centres = frames._centres(width, height)
    for moment, (x, y) in zip(frames.moments[1:], centres[1:]):
        expected = places[frames._writer.ids[moment.current]]
        assert abs(x - expected[0]) < 3 and abs(y - expected[1]) < 3  # where the step is, to a few pixels
    cut = frames.images(400, 300)
    assert {image.size for image in cut} == {(400, 300)}
    for k in (0, 5, len(frames) - 1):
        assert cut[k].crop((0, 0, 400, 40)).tobytes() == full[k].crop((0, 0, 400, 40)).tobytes()  # the caption
        assert located(cut[k].crop((0, 100, 400, 300)), full[k])  # the rest: a piece of the frame, pixel for pixel


def located(piece, image) -> bool:
    """Whether ``piece`` appears in ``image`` as it is (not scaled)."""
    strip = piece.crop((0, 0, piece.width, 1)).tobytes()
    for top in range(image.height - piece.height + 1):
        row = image.crop((0, top, image.width, top + 1)).tobytes()
        at = row.find(strip)
        while at >= 0:
            if at % 3 == 0:
                left = at // 3
                if image.crop((left, top, left + piece.width, top + piece.height)).tobytes() == piece.tobytes():
                    return True
            at = row.find(strip, at + 1)
    return False


def test_a_gif_says_how_far_it_has_got(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # without tqdm: a plain count on stderr
    frames = step_through(forked()[2])
    frames.save_gif(tmp_path / "pass.gif")
    said = capsys.readouterr().err
    assert f"rendering frames: {len(frames)}/{len(frames)}\n" in said and "rendering frames: 1/" in said
    frames.save_gif(tmp_path / "quiet.gif", progress=False)
    assert capsys.readouterr().err == ""
