"""Pictures of a graph: values going forward, gradients coming back along every edge, forks adding them up.

One entry point, `draw(root, view, ...)`, returns a `graphviz.Digraph` (an `autograd.view.display.Drawing`):
it shows itself in Jupyter, gives its DOT text as ``.source`` and saves it with ``.save(path)``; only turning
it into pixels needs Graphviz's ``dot`` program, through `autograd.view.rendering.render` (PNG, SVG or PDF,
chosen by the file suffix).

- ``view="forward"``: each node as a hand derivation writes it, ``h = o * tanh(c)``, ``= 0.42`` (for a
  tensor: its shape, and its values when there are at most four, else their range and mean).
- ``view="backward"``: adds dL/d node to each node, and to each edge the gradient term it carries back, in
  red, after the local derivative that produced it (``× 0.42 =`` for scalars and elementwise ops, the
  primitive table's formula for matrix products): term = dL/d consumer × local derivative. A fork (a node
  feeding several others, including ``a * a``) is drawn in amber and shows its sum, ``dL/dc = 0.31 + 0.12 =
  0.43``. In SVG, hovering over an edge shows the whole chain-rule step with symbols.

How the drawing is worked out: `autograd.view.annotated` (the graph ordered and named, and its reverse pass),
`autograd.view.boxes` (which stages are boxes, the size guard), `autograd.view.scene` (what is shown),
`autograd.view.dot` (how it is written). A picture meant for a notebook stays within about 1,000 pixels of
width: a loop draws one step in full and the others as boxes (and a large step one unit), stages are stacked
top to bottom.
"""

from __future__ import annotations

from autograd.core import Node
from autograd.view.annotated import AnnotatedPass
from autograd.view.boxes import StageFilter, literal, numbered
from autograd.view.display import Drawing, Narrower
from autograd.view.dot import TIGHTER, DotWriter
from autograd.view.rendering import WIDTH_BUDGET
from autograd.view.scene import Scene, View

__all__ = ["WIDTH_BUDGET", "draw"]


def draw(root: Node, view: View = "forward", *, collapse: StageFilter = "auto", keep: StageFilter = None,
         roll_up: bool = False, fold: bool = True, repeat_shared: bool = True, max_nodes: int = 2000,
         rankdir: str = "auto", show_constants: bool = True, precision: int = 3, title: str | None = None
         ) -> Drawing:
    """Draw the graph under ``root``: the forward values, or (``view="backward"``) the gradients on every edge.

    - ``collapse`` / ``keep`` / ``roll_up`` draw stages as boxes (see `autograd.view.boxes`). By default
      (``collapse="auto"``) a loop of more than a few dozen nodes is drawn with one step in full, the one
      ``keep`` names or else the last, and every other step as a box; ``collapse=None`` draws every node.
    - ``fold=False`` draws index plumbing (reshape, transpose, concatenate) as nodes of its own instead of
      folding it into its consumer.
    - ``repeat_shared`` draws an input used by three or more top-level stages again in each of them.
    - ``max_nodes`` refuses larger drawings, with advice on collapsing them (`GraphTooLargeError`).
    - ``rankdir`` is Graphviz's direction: "LR" puts the inputs on the left, "TB" on top; "auto" draws left
      to right only graphs a few steps deep.
    - ``show_constants=False`` hides the constants (their values stay in the expressions).
    - ``precision`` is the number of significant digits; ``title`` is written above the drawing.

    Building the drawing does not need Graphviz's ``dot``; rendering it (`render`, or showing it in Jupyter)
    does. Rendered wider than a notebook column (`WIDTH_BUDGET` pixels), a drawing left to right by "auto" is
    laid out top to bottom instead, and then with its shapes closer together (`TIGHTER`); one still too wide
    is kept as first laid out, with one warning naming a call that fits.
    """
    if not isinstance(root, Node):
        raise TypeError(f"draw: expected a graph node (Value or Tensor), got {type(root).__name__}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"draw: title must be a string or None, got {type(title).__name__}: {title!r:.60}")
    scene = Scene(AnnotatedPass(root), view, collapse=collapse, keep=keep, roll_up=roll_up, fold=fold,
                  repeat_shared=repeat_shared, show_constants=show_constants, max_nodes=max_nodes)
    writer = DotWriter(scene, precision, rankdir)
    drawing = writer.write(title)
    drawing.narrower = []  # a drawing is made for a column: its width is checked when it is rendered
    # the same picture laid out narrower, used without a word: top to bottom, then with shapes closer together
    direction = "TB" if rankdir == "auto" else writer.rankdir
    if rankdir == "auto" and writer.rankdir == "LR":
        drawing.narrower.append(Narrower(None, lambda: DotWriter(scene, precision, "TB").write(title)))
    for spacing, reach in TIGHTER:
        drawing.narrower.append(Narrower(None, lambda spacing=spacing: DotWriter(
            scene, precision, direction, spacing=spacing).write(title), reach, packed=True))
    options = dict(fold=fold, repeat_shared=repeat_shared, max_nodes=max_nodes, show_constants=show_constants,
                   precision=precision, title=title)
    steps = scene.loop
    pattern = None if steps is None else "/".join([*map(literal, steps[0][:-1]),
                                                   numbered(literal(steps[0][-1])).replace("#", "*")])
    if pattern is not None and collapse not in ("*", pattern):  # every step a box
        drawing.narrower.append(Narrower(f"{view!r}, collapse={pattern!r}",
                                         lambda: draw(root, view, collapse=pattern, **options)))
    elif any(node.stage for node in scene.nodes) and collapse != "*":  # every top-level stage a box
        drawing.narrower.append(Narrower(f"{view!r}, collapse='*'", lambda: draw(root, view, collapse="*", **options)))
    return drawing
