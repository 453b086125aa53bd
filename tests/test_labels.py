"""Safe labels: whatever a name holds, it reaches the picture as text. Stage names, labels, titles and tooltips
are escaped, control characters are shown as visible symbols, and nothing in a name can add attributes, links
or nodes: checked in the SVG that the real ``dot`` makes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from autograd import Tensor, Value, draw, stage, step_through
from autograd.view.dot import text, tooltip_text, visible
from autograd.view.rendering import pipe

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

HOSTILE = [
    '<x> evil [label="X" URL="javascript:alert(1)"]',
    "a\\",
    "<a&b>",
    'q"; n0 -> n1; n9 [label="owned"',
    "\\N \\G \\L \\E",
    "<B>bold</B><BR/>",
    "nul\x00 tab\t newline\n escape\x1b[31m",
    "right-to-left \u202e override",
    "]; } digraph g { a -> b",
]


def svg_of(drawing) -> ElementTree.Element:
    return ElementTree.fromstring(pipe(drawing, "svg").decode("utf-8"))


def texts(svg: ElementTree.Element) -> str:
    """The text of a picture as a reader sees it (a backslash is followed by an invisible word joiner)."""
    return "".join("".join(element.itertext()) for element in svg.iter(f"{SVG}text")).replace("\u2060", "")


def links(svg: ElementTree.Element) -> list[str]:
    return [value for element in svg.iter() for key, value in element.attrib.items() if key.endswith("href")]


def node_count(svg: ElementTree.Element) -> int:
    return sum(1 for group in svg.iter(f"{SVG}g") if group.get("class") == "node")


def hostile_graph(name: str) -> tuple[Value, int]:
    """A small staged graph whose stage, labels and values are named ``name``; and how many nodes it has."""
    a = Value(0.5, label=name)
    with stage(name), stage(name + " inner"):
        b = (a * a).tanh()
        b.label = name + "!"
    root = b + a
    return root, 4


@pytest.mark.parametrize("name", HOSTILE, ids=lambda name: repr(name)[:24])
@pytest.mark.parametrize("view", ["forward", "backward"])
def test_a_hostile_name_is_shown_as_text_and_adds_nothing(name, view):
    root, nodes = hostile_graph(name)
    drawing = draw(root, view, title=name)
    svg = svg_of(drawing)
    assert node_count(svg) == nodes  # no node added, none lost
    assert links(svg) == []  # no link of any kind
    shown = texts(svg)
    assert visible(name) in shown and visible(name + " inner") in shown  # the cluster labels, as written
    assert visible(name + "!") in shown and visible(name) + "!" in shown
    clusters = sum(1 for group in svg.iter(f"{SVG}g") if group.get("class") == "cluster")
    assert clusters == 1  # one stage holding one other: drawn as one cluster, "name · name inner"
    assert "javascript" not in " ".join(links(svg))
    for element in svg.iter():
        assert not {"onclick", "onload", "href"} & {key.split("}")[-1] for key in element.attrib}


@pytest.mark.parametrize("name", HOSTILE[:4], ids=lambda name: repr(name)[:24])
def test_tooltips_of_hostile_names_say_exactly_what_the_names_say(name):
    root, _ = hostile_graph(name)
    svg = svg_of(draw(root, "backward"))
    titles = [element.get(f"{XLINK}title") for element in svg.iter() if element.get(f"{XLINK}title")]
    assert any(title.startswith(visible(name) + " = 0.5") for title in titles)


def test_hostile_names_in_tensors_boxes_and_frames_too():
    name = 'w"<&>\x00'
    w = Tensor(np.ones((2, 2)), requires_grad=True, label=name)
    total = None
    for t in range(1, 5):
        with stage(f"t={t} {name}"):
            step = (w * t).tanh().sum()
        total = step if total is None else total + step
    svg = svg_of(draw(total, "backward", collapse="t=*", keep=f"t=4 {name}"))
    shown = texts(svg)
    assert f"t=1 {visible(name)}" in shown and "uses " + visible(name) in shown
    assert links(svg) == []
    frames = step_through(total)
    assert node_count(svg_of(frames[1])) == node_count(svg_of(frames[0]))


def test_control_characters_are_shown_as_visible_symbols():
    assert visible("a\x00b\nc\td\x7f") == "a␀b␊c␉d␡"
    assert visible("rtl\u202eltr\u200b") == "rtl⟨U+202E⟩ltr⟨U+200B⟩"
    assert visible("plain é ∂ 🙂") == "plain é ∂ 🙂"


def test_text_is_escaped_for_html_labels_and_tooltips_for_quoted_strings():
    assert text('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert tooltip_text('a\\N "b"\nc') == 'a\\\\N \\"b\\"\\nc'  # a newline of ours is Graphviz's line break
    source = draw(hostile_graph("<t>")[0], "backward").source
    assert not re.search(r'tooltip=<', source)  # a tooltip is never read as an HTML-like string
