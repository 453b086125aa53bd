"""Where the shapes and edge labels of a laid-out drawing are, from ``dot``'s JSON output, and which labels lie on
a shape or on another label.

Graphviz keeps an edge label clear of the shapes when it has room; packed tighter to fit a notebook's column (the
narrower layouts of `autograd.view.draw`) it sometimes does not, and such a layout is not used. The sizes are
Graphviz's own: a shape's box from its position, width and height, a label's from the position and width of each
of its lines of text (from the baseline, 0.2 of the font size below it to 0.8 above), taken `WIDER` than
Graphviz measured it.
"""

from __future__ import annotations

from typing import Any

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in points

TOLERANCE = 1.0  # points: boxes that meet by less do not overlap
WIDER = 1.06  # text drawn in a browser's font can run this much wider than Graphviz measured it
DESCENT, ASCENT = 0.2, 0.8  # of the font size, below and above a line's baseline


def width(layout: dict[str, Any]) -> float:
    """The drawing's width in pixels at 96 dpi, its padding included (as the SVG's width)."""
    x0, _, x1, _ = (float(n) for n in layout["bb"].split(","))
    return (x1 - x0 + 2 * 72 * float(layout.get("pad", 0.0555))) * 4 / 3


def overlaps(layout: dict[str, Any]) -> int:
    """How many edge labels lie on a shape's box or on another edge label's."""
    shapes = [_shape(node) for node in layout.get("objects", ())
              if "pos" in node and "invis" not in node.get("style", "")]
    labels = [box for edge in layout.get("edges", ()) if (box := _text(edge.get("_ldraw_", ()))) is not None]
    return (sum(_meet(label, shape) for label in labels for shape in shapes)
            + sum(_meet(label, other) for k, label in enumerate(labels) for other in labels[k + 1:]))


def _shape(node: dict[str, Any]) -> Box:
    x, y = (float(n) for n in node["pos"].split(","))
    half_width, half_height = float(node["width"]) * 36, float(node["height"]) * 36  # inches to points, halved
    return x - half_width, y - half_height, x + half_width, y + half_height


def _text(operations: list[dict[str, Any]]) -> Box | None:
    """The box around every line of text that drawing operations write (None: they write none)."""
    boxes, size = [], 14.0  # Graphviz's default font size until an F operation sets one
    for operation in operations:
        if operation["op"] == "F":
            size = operation["size"]
        elif operation["op"] == "T" and operation["text"].strip():
            (x, y), line = operation["pt"], operation["width"] * WIDER
            start = {"l": x, "c": x - line / 2, "r": x - line}[operation["align"]]
            boxes.append((start, y - DESCENT * size, start + line, y + ASCENT * size))
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _meet(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > TOLERANCE and min(a[3], b[3]) - max(a[1], b[1]) > TOLERANCE
