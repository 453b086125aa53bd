"""The reverse pass step by step: one drawing per step, in the order the engine runs it.

    frames = step_through(loss)          # a sequence of graphviz.Digraph, each shown inline in Jupyter
    frames.save_gif("backprop.gif")      # an animation (needs Pillow: pip install "backprop-lens[plot]")
    frames.save_pngs("frames/")          # frame_000.png, frame_001.png, ...

Frame 0 is the seed, dL/dL = 1. Each later frame is one step of the engine's reverse pass, in its own order
(every consumer before the nodes it consumes): the node being processed is outlined in red, the edges along
which it sends its gradient terms back are red, the edges still waiting are pale, and every node shows its
gradient so far, the terms of a fork appearing one by one until their sum is complete. In a collapsed drawing
the steps inside one box make one frame. All frames are drawn from one scene with the same layout, so they
can be flipped through.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, overload

import graphviz

from autograd.core import Node, topological_order
from autograd.files import write_atomically
from autograd.view.draw import DotWriter, GraphvizNotFoundError, Progress, brief, pipe
from autograd.view.scene import Box, Link, Scene, StageFilter, Unit

PILLOW_MISSING = ('save_gif needs Pillow, which is not installed: pip install "backprop-lens[plot]" '
                  "(or pip install pillow). frames.save_pngs(directory) needs only Graphviz.")
INLINE_MAX_FRAMES = 40  # Jupyter animates at most this many frames inline; more are better saved to a file
GIF_COLOURS = 64  # the drawings use a handful of colours; anti-aliased text needs a few dozen shades
INLINE_WIDTH = 960  # pixels: a notebook column; the saved GIF keeps full size
MAX_NAMED = 4  # a caption names at most this many of the inputs a step sends gradients to


class Frames(Sequence[graphviz.Digraph]):
    """The frames of a step-through: ``frames[k]`` is a `graphviz.Digraph`, ``frames.captions[k]`` its caption."""

    def __init__(self, writer: DotWriter, moments: list[Progress]) -> None:
        self.scene, self.moments = writer.scene, moments
        self._writer = writer  # one scene, one writer: worked out once, used for every frame
        self._caption_width = max(len(moment.caption) for moment in moments)

    @property
    def captions(self) -> list[str]:
        return [moment.caption for moment in self.moments]

    def __len__(self) -> int:
        return len(self.moments)

    @overload
    def __getitem__(self, index: int) -> graphviz.Digraph: ...

    @overload
    def __getitem__(self, index: slice) -> list[graphviz.Digraph]: ...

    def __getitem__(self, index: int | slice) -> graphviz.Digraph | list[graphviz.Digraph]:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        moment = self.moments[index]
        return self._writer.digraph(moment.caption, moment, self._caption_width)

    def __iter__(self) -> Iterator[graphviz.Digraph]:
        return (self[k] for k in range(len(self)))

    def __repr__(self) -> str:
        return f"<Frames: {len(self)} frames of the reverse pass from {self.scene.names[self.scene.root]}>"

    def pngs(self) -> list[bytes]:
        """Every frame as PNG bytes, rendered by several ``dot`` processes at once."""
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            return list(pool.map(lambda frame: pipe(frame, "png"), self))

    def save_pngs(self, directory: str | os.PathLike) -> list[Path]:
        """Write ``frame_000.png``, ``frame_001.png``, ... into ``directory`` (created if needed)."""
        directory = Path(directory)
        digits = max(3, len(str(len(self) - 1)))
        paths = [directory / f"frame_{k:0{digits}d}.png" for k in range(len(self))]
        for path, png in zip(paths, self.pngs()):
            write_atomically(path, lambda file, png=png: file.write(png))
        return paths

    def save_gif(self, path: str | os.PathLike, duration: int = 900, hold_last: int = 3) -> Path:
        """Write the frames as an animated GIF that loops; each shows for ``duration`` milliseconds, the last
        ``hold_last`` times as long (so the finished pass can be read before it starts again)."""
        animation = self.gif(duration, hold_last)
        return write_atomically(path, lambda file: file.write(animation))

    def gif(self, duration: int = 900, hold_last: int = 3, max_width: int | None = None) -> bytes:
        """The animated GIF that `save_gif` writes, as bytes; ``max_width`` scales wider frames down."""
        try:
            from PIL import Image
        except ImportError:
            raise ImportError(PILLOW_MISSING) from None
        if duration <= 0 or hold_last < 1:
            raise ValueError(f"save_gif: duration must be positive and hold_last at least 1, got {duration} "
                             f"and {hold_last}")
        images = [Image.open(io.BytesIO(png)).convert("RGB") for png in self.pngs()]
        width, height = max(im.width for im in images), max(im.height for im in images)
        padded = []
        for image in images:  # equal layouts make equal sizes; pad in case Graphviz rounds differently
            canvas = Image.new("RGB", (width, height), "white")
            canvas.paste(image, (0, 0))
            padded.append(canvas)
        if max_width is not None and width > max_width:
            size = (max_width, max(1, round(height * max_width / width)))
            padded = [image.resize(size, Image.LANCZOS) for image in padded]
        # One palette for all frames, from the first (edges still pale) and the last (all red), without
        # dithering: flat colours and sharp text, and frames that differ only where the pass moved compress well
        first, last = padded[0], padded[-1]
        sample = Image.new("RGB", (first.width, first.height * 2), "white")
        sample.paste(first, (0, 0))
        sample.paste(last, (0, first.height))
        palette = sample.quantize(colors=GIF_COLOURS)
        padded = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in padded]
        durations = [duration] * (len(padded) - 1) + [duration * hold_last]
        buffer = io.BytesIO()
        padded[0].save(buffer, format="GIF", save_all=True, append_images=padded[1:], duration=durations,
                       loop=0, optimize=True)
        return buffer.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter plays the frames as an animation when they are few enough to render quickly."""
        text = {"text/plain": repr(self)}
        if len(self) > INLINE_MAX_FRAMES:
            return text
        try:
            animation = base64.b64encode(self.gif(max_width=INLINE_WIDTH)).decode()
        except (ImportError, GraphvizNotFoundError, graphviz.CalledProcessError):
            return text
        return {"text/html": f'<img src="data:image/gif;base64,{animation}" style="max-width:100%"/>', **text}


def step_through(root: Node, *, collapse: StageFilter = None, keep: StageFilter = None, roll_up: bool = False,
                 repeat_shared: bool = True, max_nodes: int = 2000, rankdir: str = "auto",
                 show_constants: bool = True, precision: int = 3) -> Frames:
    """The backward drawing of ``root`` as frames, one per step of the reverse pass (see the module notes).

    Takes `autograd.view.draw`'s options (``view`` is always "backward"). The drawing is worked out once; each
    frame is built when asked for, and rendered only when saved or shown.
    """
    scene = Scene(root, "backward", collapse=collapse, keep=keep, roll_up=roll_up, repeat_shared=repeat_shared,
                  show_constants=show_constants, max_nodes=max_nodes)
    writer = DotWriter(scene, precision, rankdir)
    return Frames(writer, _moments(scene, writer.names, precision))


def _moments(scene: Scene, names: dict[Node, str], digits: int) -> list[Progress]:
    """The moments the frames show: the seed, then each step of the engine's reverse pass (the steps inside
    one box taken together)."""
    sends: dict[Node, list[Link]] = {}
    for branches in scene.backprop.branches.values():
        for branch in branches:
            sends.setdefault(branch.consumer, []).append((branch.consumer, branch.position))
    steps: list[tuple[Unit, list[Node]]] = []
    for node in reversed(topological_order(scene.root)):  # the engine's order
        if node in sends:
            unit = scene.unit_of(node)
            if steps and isinstance(unit, Box) and steps[-1][0] is unit:
                steps[-1][1].append(node)
            else:
                steps.append((unit, [node]))
    sent_at: dict[Link, int] = {}
    for k, (_, nodes) in enumerate(steps, 1):
        for node in nodes:
            sent_at.update(dict.fromkeys(sends[node], k))

    root = names[scene.root]
    seed = f"step 0/{len(steps)}: the pass starts at {root} with d{root}/d{root} = " \
           f"{brief(scene.gradient(scene.root), digits)}"
    moments = [Progress(0, sent_at, None, seed)]
    for k, (unit, nodes) in enumerate(steps, 1):
        caption = _caption(scene, unit, nodes, sends[nodes[0]], names, digits)
        moments.append(Progress(k, sent_at, unit, f"step {k}/{len(steps)}: {caption}"))
    return moments


def _caption(scene: Scene, unit: Unit, nodes: list[Node], sends: list[Link], names: dict[Node, str],
             digits: int) -> str:
    """What one step does: ``dL/dh = 0.43 goes back to o (0.31) and c (0.12)``."""
    if isinstance(unit, Box):
        return f"the {len(nodes)} nodes inside {unit.title} send their gradients back"
    node = nodes[0]
    root = names[scene.root]
    sent = [(consumer.parents[position], scene.term((consumer, position)))
            for consumer, position in sorted(sends, key=lambda branch: branch[1])]
    parts = [f"{names[parent]} ({brief(term, digits)})" for parent, term in sent[:MAX_NAMED]]
    if len(sent) > MAX_NAMED:
        parts.append(f"{len(sent) - MAX_NAMED} more")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"d{root}/d{names[node]} = {brief(scene.gradient(node), digits)} goes back to {listed}"
