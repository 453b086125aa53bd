"""The reverse pass step by step: one drawing per step.

    frames = step_through(loss)          # a sequence of drawings; in Jupyter it plays as an animation
    frames[12:30]                        # a range of them, which plays on its own
    frames.slider()                      # in Jupyter: step through them by hand with a slider
    frames.save_gif("backprop.gif")      # an animation (needs Pillow: pip install "backprop-lens[plot]")
    frames.save_pngs("frames/")          # frame_000.png, frame_001.png, ...

Frame 0 is the seed, dL/dL = 1. Each later frame is one step of the reverse pass, in the order of the annotated
pass (`autograd.view.annotated`: every consumer before the nodes it consumes, the adjoint equations of
`explain` in the same order): the node being processed is outlined in red, the edges along which it sends
its gradient terms back are red, the edges still waiting are pale, and every node shows its gradient so far,
the terms of a fork appearing one by one until their sum is complete. In a collapsed drawing the steps inside
one box make one frame. All frames are drawn from one scene with the same layout, so they can be flipped
through; shown inline, each is cut to a notebook column's width around the step being taken, so its text
stays readable.
"""

from __future__ import annotations

import base64
import html
import io
import operator
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, overload

from autograd.core import Node
from autograd.files import write_atomically
from autograd.view.annotated import AnnotatedPass, Link
from autograd.view.boxes import Box, StageFilter
from autograd.view.display import Drawing
from autograd.view.dot import CAPTION_SIZE, CAPTION_WIDTH, LEGEND_ROOM, DotWriter, Progress, caption_lines
from autograd.view.notation import brief
from autograd.view.rendering import GraphvizError, GraphvizNotFoundError, pipe
from autograd.view.scene import Scene, Unit

PILLOW_MISSING = ('save_gif needs Pillow, which is not installed: pip install "backprop-lens[plot]" '
                  "(or pip install pillow). frames.save_pngs(directory) needs only Graphviz.")
INLINE_MAX_FRAMES = 40  # Jupyter animates at most this many frames inline; more are picked or saved to a file
SLIDER_MAX_FRAMES = 200  # frames a slider embeds
GIF_COLOURS = 64  # the drawings use a handful of colours; anti-aliased text needs a few dozen shades
INLINE_WIDTH, INLINE_HEIGHT = 960, 720  # pixels: a notebook column, and what fits on a screen
DPI = 96  # Graphviz's pixels per inch in PNG
MAX_NAMED = 4  # a caption names at most this many of the inputs a step sends gradients to

Item = TypeVar("Item")


class Frames(Sequence[Drawing]):
    """The frames of a step-through: ``frames[k]`` is a drawing, ``frames[a:b]`` the frames of a range,
    ``frames.captions[k]`` a caption."""

    def __init__(self, writer: DotWriter, moments: list[Progress], caption_room: tuple[int, int] | None = None
                 ) -> None:
        self.scene, self.moments = writer.scene, moments
        self._writer = writer  # one scene, one writer: worked out once, used for every frame
        if caption_room is None:  # the room every caption gets, so that all frames have one layout
            width = min(CAPTION_WIDTH, max(len(moment.caption) for moment in moments))
            caption_room = (width, max(len(caption_lines(moment.caption, width)) for moment in moments))
        self._caption_room = caption_room

    @property
    def captions(self) -> list[str]:
        return [moment.caption for moment in self.moments]

    def __len__(self) -> int:
        return len(self.moments)

    @overload
    def __getitem__(self, index: int) -> Drawing: ...

    @overload
    def __getitem__(self, index: slice) -> Frames: ...

    def __getitem__(self, index: int | slice) -> Drawing | Frames:
        if isinstance(index, slice):
            picked = self.moments[index]
            if not picked:
                raise IndexError(f"frames[{index.start}:{index.stop}:{index.step}] picks no frame of {len(self)}")
            return Frames(self._writer, picked, self._caption_room)
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"frames are picked by an integer or a slice, got {type(index).__name__} "
                            f"{index!r:.40}") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} is out of range: there are {len(self)} frames, 0 to {len(self) - 1} "
                             f"(or -{len(self)} to -1 from the end)")
        moment = self.moments[index]
        return self._writer.write(moment.caption, moment, self._caption_room)

    def __iter__(self) -> Iterator[Drawing]:
        return (self[k] for k in range(len(self)))

    def __repr__(self) -> str:
        first, last = self.moments[0].step, self.moments[-1].step
        steps = f"steps {first} to {last}" if len(self) > 1 else f"step {first}"
        return (f"<Frames: {len(self)} frames ({steps}) of the reverse pass from "
                f"{self._writer.names[self.scene.root]}>")

    # --- images ---
    def pngs(self, progress: bool = False) -> list[bytes]:
        """Every frame as PNG bytes, rendered by several ``dot`` processes at once (``progress``: say how far)."""
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            rendered = pool.map(lambda frame: pipe(frame, "png"), self)
            return list(_counted(rendered, len(self), "rendering frames") if progress else rendered)

    def save_pngs(self, directory: str | os.PathLike, progress: bool = False) -> list[Path]:
        """Write ``frame_000.png``, ``frame_001.png``, ... into ``directory`` (created if needed)."""
        directory = Path(directory)
        digits = max(3, len(str(len(self) - 1)))
        paths = [directory / f"frame_{k:0{digits}d}.png" for k in range(len(self))]
        for path, png in zip(paths, self.pngs(progress)):
            write_atomically(path, lambda file, png=png: file.write(png))
        return paths

    def save_gif(self, path: str | os.PathLike, duration: int = 900, hold_last: int = 3, progress: bool = True
                 ) -> Path:
        """Write the frames as an animated GIF that loops; each shows for ``duration`` milliseconds, the last
        ``hold_last`` times as long (so the finished pass can be read before it starts again). ``progress``
        says on stderr how many frames are rendered."""
        animation = self.gif(duration, hold_last, progress=progress)
        return write_atomically(path, lambda file: file.write(animation))

    def gif(self, duration: int = 900, hold_last: int = 3, max_width: int | None = None,
            max_height: int | None = None, progress: bool = False) -> bytes:
        """The animated GIF that `save_gif` writes, as bytes. With ``max_width`` or ``max_height`` a larger
        frame is cut to that size around the step it shows (its caption kept), not shrunk: its text stays
        readable."""
        if duration <= 0 or hold_last < 1:
            raise ValueError(f"save_gif: duration must be positive and hold_last at least 1, got {duration} "
                             f"and {hold_last}")
        images = self.images(max_width, max_height, progress)
        palette = _palette(images)
        frames = [image.quantize(palette=palette, dither=_no_dither()) for image in images]
        durations = [duration] * (len(frames) - 1) + [duration * hold_last]
        buffer = io.BytesIO()
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
                       loop=0, optimize=True)
        return buffer.getvalue()

    def images(self, max_width: int | None = None, max_height: int | None = None, progress: bool = False
               ) -> list[Any]:
        """The frames as Pillow images of one size, each cut to at most ``max_width`` x ``max_height`` pixels
        around the shape whose step it shows (the caption at the top kept)."""
        try:
            from PIL import Image
        except ImportError:
            raise ImportError(PILLOW_MISSING) from None
        images = [Image.open(io.BytesIO(png)).convert("RGB") for png in self.pngs(progress)]
        width, height = max(im.width for im in images), max(im.height for im in images)
        padded = []
        for image in images:  # equal layouts make equal sizes; pad in case Graphviz rounds differently
            canvas = Image.new("RGB", (width, height), "white")
            canvas.paste(image, (0, 0))
            padded.append(canvas)
        wide, tall = max_width is not None and width > max_width, max_height is not None and height > max_height
        if not (wide or tall):
            return padded
        window = (min(width, max_width or width), min(height, max_height or height))
        centres = _steady(self._centres(width, height), window)
        return [_cut(image, centre, window, self._caption_room[1]) for image, centre in zip(padded, centres)]

    def _centres(self, width: int, height: int) -> list[tuple[float, float]]:
        """Where each frame's step is, in pixels (the root for the seed), from one layout of the first frame."""
        places: dict[str, tuple[float, float]] = {}
        plain = pipe(self[0], "plain").decode("utf-8", errors="replace")
        lines = [line.split() for line in plain.splitlines()]
        graph_height = next((float(words[3]) for words in lines if words[:1] == ["graph"]), 0.0)
        pad = (height / DPI - graph_height) / 2  # Graphviz pads the drawing evenly on every side
        for words in lines:
            if words[:1] == ["node"] and len(words) > 3:
                places[words[1]] = ((float(words[2]) + pad) * DPI, (graph_height - float(words[3]) + pad) * DPI)
        root = self._writer.ids.get(self.scene.unit_of(self.scene.root))
        middle = (width / 2, height / 2)
        return [places.get(self._writer.ids.get(moment.current, root), middle) for moment in self.moments]

    # --- Jupyter ---
    def slider(self) -> Slider:
        """The frames with a slider that steps through them by hand in Jupyter (each frame cut to a column's
        width around its step); where scripts do not run (a notebook viewed on GitHub) the first frame shows."""
        if len(self) > SLIDER_MAX_FRAMES:
            raise ValueError(f"slider: {len(self)} frames are too many to embed; pick at most "
                             f"{SLIDER_MAX_FRAMES}, e.g. frames[:{SLIDER_MAX_FRAMES}].slider()")
        return Slider(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter plays the frames as an animation when they are few enough to render quickly, and says how
        to see them otherwise."""
        text = {"text/plain": repr(self)}
        if len(self) > INLINE_MAX_FRAMES:
            message = (f"{len(self)} frames: more than the {INLINE_MAX_FRAMES} played inline. Pick some: "
                       f"frames[{len(self) - INLINE_MAX_FRAMES}:] plays the last {INLINE_MAX_FRAMES} (any range "
                       "plays); frames.slider() steps through all of them by hand; frames[k] draws frame k; "
                       "frames.save_gif('pass.gif') writes them all.")
            return {"text/plain": f"{repr(self)}\n{message}", "text/html": f"<p>{html.escape(message)}</p>"}
        try:
            animation = base64.b64encode(self.gif(max_width=INLINE_WIDTH, max_height=INLINE_HEIGHT)).decode()
        except (ImportError, GraphvizNotFoundError, GraphvizError) as error:
            return {"text/plain": f"{repr(self)}\n{error}"}
        return {"text/html": f'<img src="data:image/gif;base64,{animation}"/>', **text}


class Slider:
    """Frames shown in Jupyter with a slider to step through them (see `Frames.slider`)."""

    def __init__(self, frames: Frames) -> None:
        self.frames = frames

    def _repr_html_(self) -> str:
        frames = self.frames
        images = frames.images(INLINE_WIDTH, INLINE_HEIGHT)
        encoded = []
        palette = _palette(images)
        for k, image in enumerate(images):
            buffer = io.BytesIO()
            image.quantize(palette=palette, dither=_no_dither()).save(buffer, format="PNG", optimize=True)
            shown = "block" if k == 0 else "none"
            encoded.append(f'<img alt="{html.escape(frames.captions[k])}" style="display:{shown}" '
                           f'src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"/>')
        script = ("var images=this.parentNode.getElementsByTagName('img');"
                  "for(var i=0;i<images.length;i++){images[i].style.display=(i==this.value)?'block':'none';}")
        return (f'<div><input type="range" min="0" max="{len(images) - 1}" value="0" step="1" '
                f'style="width:{min(INLINE_WIDTH, images[0].width)}px" oninput="{script}" '
                # JupyterLab takes the arrow keys for its own shortcuts unless an element asks to keep them
                f'data-lm-suppress-shortcuts="true" onkeydown="event.stopPropagation()"/>{"".join(encoded)}</div>')

    def __repr__(self) -> str:
        return f"<slider over {repr(self.frames)[1:-1]}>"


def step_through(root: Node, *, collapse: StageFilter = "auto", keep: StageFilter = None, roll_up: bool = False,
                 fold: bool = True, repeat_shared: bool = True, max_nodes: int = 2000, rankdir: str = "auto",
                 show_constants: bool = True, precision: int = 3) -> Frames:
    """The backward drawing of ``root`` as frames, one per step of the reverse pass (see the module notes).

    Takes `autograd.view.draw.draw`'s options (``view`` is always "backward"). The drawing is worked out once;
    each frame is built when asked for, and rendered only when saved or shown.
    """
    if not isinstance(root, Node):
        raise TypeError(f"step_through: expected a graph node (Value or Tensor), got {type(root).__name__}")
    scene = Scene(AnnotatedPass(root), "backward", collapse=collapse, keep=keep, roll_up=roll_up, fold=fold,
                  repeat_shared=repeat_shared, show_constants=show_constants, max_nodes=max_nodes)
    writer = DotWriter(scene, precision, rankdir)
    return Frames(writer, moments_of(scene, writer.names, precision))


def moments_of(scene: Scene, names: dict[Node, str], digits: int) -> list[Progress]:
    """The moments the frames show: the seed, then each step of the annotated pass (the steps inside one box,
    or of plumbing folded into a node, taken together)."""
    annotated = scene.annotated
    steps: list[tuple[Unit, list[Node]]] = []
    for node in annotated.senders:
        unit = scene.box_of.get(node.stage) or scene.folded_into.get(node, node)
        if steps and steps[-1][0] is unit and (isinstance(unit, Box) or node in scene.folded_into):
            steps[-1][1].append(node)
        else:
            steps.append((unit, [node]))
    sent_at: dict[Link, int] = {}
    for k, (_, nodes) in enumerate(steps, 1):
        for node in nodes:
            sent_at.update(dict.fromkeys(annotated.sends(node), k))
    root = names[scene.root]
    seed = f"step 0/{len(steps)}: the pass starts at {root} with d{root}/d{root} = " \
           f"{brief(scene.gradient(scene.root), digits)}"
    moments = [Progress(0, sent_at, None, seed)]
    for k, (unit, nodes) in enumerate(steps, 1):
        caption = _caption(scene, unit, nodes, names, digits)
        moments.append(Progress(k, sent_at, unit, f"step {k}/{len(steps)}: {caption}"))
    return moments


def _caption(scene: Scene, unit: Unit, nodes: list[Node], names: dict[Node, str], digits: int) -> str:
    """What one step does: ``dL/dh = 0.43 goes back to o (0.31) and c (0.12)``."""
    if isinstance(unit, Box):
        return f"the {len(nodes)} nodes inside {unit.title} send their gradients back"
    node = nodes[0]
    root = names[scene.root]
    sent = [(link[0].parents[link[1]], scene.term(link)) for node in nodes for link in scene.annotated.sends(node)
            if link[0].parents[link[1]] not in scene.folded]
    parts = [f"{names[parent]} ({brief(term, digits)})" for parent, term in sent[:MAX_NAMED]]
    if len(sent) > MAX_NAMED:
        parts.append(f"{len(sent) - MAX_NAMED} more")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"d{root}/d{names[node]} = {brief(scene.gradient(node), digits)} goes back to {listed}"


def _palette(images: list[Any]) -> Any:
    """One palette for all frames, from the first (edges still pale) and the last (all red), to be used without
    dithering: flat colours and sharp text, and frames that differ only where the pass moved compress well."""
    from PIL import Image

    first, last = images[0], images[-1]
    sample = Image.new("RGB", (first.width, first.height * 2), "white")
    sample.paste(first, (0, 0))
    sample.paste(last, (0, first.height))
    return sample.quantize(colors=GIF_COLOURS)


def _no_dither() -> Any:
    from PIL import Image

    return Image.Dither.NONE


def _steady(centres: list[tuple[float, float]], window: tuple[int, int]) -> list[tuple[float, float]]:
    """Where to centre each frame's window: where the previous one was, while the step stays in the middle of
    it; the view moves only when the pass moves on, so a viewer can follow it (and the GIF stays small)."""
    steady: list[tuple[float, float]] = []
    for x, y in centres:
        if steady:
            previous = steady[-1]
            if abs(x - previous[0]) < window[0] * 0.3 and abs(y - previous[1]) < window[1] * 0.3:
                x, y = previous
        steady.append((x, y))
    return steady


def _cut(image: Any, centre: tuple[float, float], window: tuple[int, int], lines: int = 1) -> Any:
    """The caption band at the top of a frame (``lines`` of caption and the legend) over the part of it,
    ``window`` in size, around ``centre``."""
    from PIL import Image

    width, height = window
    band = min(round((CAPTION_SIZE * lines + LEGEND_ROOM) * 1.5 * DPI / 72 + 16), height // 3)
    left = min(max(0, round(centre[0] - width / 2)), image.width - width)
    top = min(max(band, round(centre[1] - (height - band) / 2)), image.height - (height - band))
    cut = Image.new("RGB", (width, height), "white")
    cut.paste(image.crop((0, 0, width, band)), (0, 0))
    cut.paste(image.crop((left, top, left + width, top + height - band)), (0, band))
    return cut


def _counted(items: Iterable[Item], total: int, what: str) -> Iterator[Item]:
    """``items``, saying on stderr how many of ``total`` are done (with tqdm's bar when it is installed)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        yield from tqdm(items, total=total, desc=what, unit="frame", leave=False)
        return
    for done, item in enumerate(items, 1):
        print(f"\r{what}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)
        yield item

