"""Turning a drawing into a file with Graphviz's ``dot`` program, on every Graphviz people have.

`render` writes PNG, SVG or PDF (``.gv``: the DOT text, which needs no ``dot``; ``.html``: an interactive page,
see `autograd.view.page`), all or nothing; `pipe` gives the bytes. ``dot`` runs under a timeout (`DOT_TIMEOUT`
seconds, or ``timeout=``). Some releases of ``dot`` (Debian's and Ubuntu's 2.42 and 2.43 among them) fail on
some layouts with clusters: when ``dot`` fails but wrote its output anyway, the output is kept; when it wrote
nothing, a drawing made by `autograd.view.draw` is laid out once more without its ordering constraints. Either
way one warning says so. A failure that remains is a `GraphvizError` with one line of explanation and advice,
never ``dot``'s raw output.

A drawing made for a notebook's column (`autograd.view.draw`) is measured once laid out: wider than
`WIDTH_BUDGET` pixels, it is laid out again in the narrower ways it carries (top to bottom instead of left
to right, then its shapes closer together, used only where no edge label then lies on a shape: see
`autograd.view.geometry`), and when none fits, one `WidthWarning` says how wide it is and which call of
``draw`` fits. A PNG over the renderer's maximum (`PNG_MAX` pixels a side), which ``dot``
would cut, is drawn at a lower resolution instead, with one warning that says so.
"""

from __future__ import annotations

import functools
import json
import os
import re
import struct
import subprocess
import warnings
from pathlib import Path
from typing import Any

from autograd.files import write_atomically
from autograd.view import geometry

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".gv": "dot", ".dot": "dot", ".html": "html"}
DOT_TIMEOUT = 60.0  # seconds: a layout that takes longer is stopped with an error (set it, or pass timeout=)
NO_LIMIT = 1e6  # seconds: a longer timeout (inf, 1e308) means none, as the system's wait cannot count that far

DOT_MISSING = ("Graphviz's `dot` program is needed to render a drawing, and it is not on PATH. Install it "
               "with `sudo apt-get install graphviz` (macOS: `brew install graphviz`), or run `bash .ci/setup` "
               "in this project. The DOT source needs no `dot`: drawing.save('graph.gv') or drawing.source.")
WIDTH_BUDGET = 1000  # pixels (96 per inch, text at its drawn size): the width of a notebook column
PNG_MAX = 32767  # pixels a side: cairo's limit; dot cuts a larger PNG
ADVICE = "draw fewer shapes: collapse stages (collapse='t=*'), or draw the Tensor LSTM instead of the ScalarLSTM"


class GraphvizNotFoundError(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program, which is not installed."""


class GraphvizNotRunnableError(GraphvizNotFoundError):
    """A file named ``dot`` is on PATH, but it cannot be run (not executable, or not a program)."""


class GraphvizError(RuntimeError):
    """``dot`` failed, or took longer than its timeout. ``reason`` is ``dot``'s own one-line account."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class GraphvizTimeout(GraphvizError):
    """``dot`` ran past its timeout and was stopped."""


class GraphvizWarning(UserWarning):
    """``dot`` failed on a layout, and the picture was kept or drawn again (see the module notes)."""


class WidthWarning(GraphvizWarning):
    """A drawing is wider than a notebook's column, and no narrower layout of it fits (see the module notes)."""


class _Failed(Exception):
    def __init__(self, reason: str, output: bytes) -> None:
        super().__init__(reason)
        self.reason, self.output = reason, output


def render(drawing: Any, path: str | os.PathLike, format: str | None = None, *, timeout: float | None = None
           ) -> Path:
    """Write a drawing to ``path`` as PNG, SVG or PDF (from the suffix, or ``format``); ``.gv`` is DOT text,
    ``.html`` an interactive page of it (`autograd.view.page`).

    Parent directories are created. The file appears complete or not at all: it is written under a
    temporary name and renamed into place. ``timeout`` (seconds) bounds ``dot``'s work (`DOT_TIMEOUT`).
    """
    if not isinstance(getattr(drawing, "source", None), str):
        raise TypeError(f"render: expected a drawing (what draw() returns, or a graphviz graph), got "
                        f"{type(drawing).__name__}: {drawing!r:.60}")
    path = Path(path)
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt not in set(FORMATS.values()):
        raise ValueError(f"render: cannot tell the format of {str(path)!r}; use a .png, .svg, .pdf, .gv or .html "
                         "suffix, or pass format='png' / 'svg' / 'pdf' / 'dot' / 'html'")
    if fmt == "html":
        from autograd.view.page import page_html  # the page is built on this module

        data = page_html(drawing, timeout=timeout).encode("utf-8")
    else:
        data = drawing.source.encode() if fmt == "dot" else pipe(drawing, fmt, timeout=timeout)
    return write_atomically(path, lambda file: file.write(data))


def pipe(drawing: Any, fmt: str, *, timeout: float | None = None) -> bytes:
    """Run ``dot`` on a drawing (a `graphviz.Digraph`) and return the bytes of the image (see the module notes).
    """
    output = _laid_out(drawing, fmt, timeout)
    if fmt == "png":
        output = _within_png_limit(drawing, output, timeout)
    narrower = getattr(drawing, "narrower", None)
    width = pixels(output, fmt)
    if narrower is None or width is None or width <= WIDTH_BUDGET:
        return output
    advised = None
    for call, make, reach, packed in narrower:
        if call is None and width * reach > WIDTH_BUDGET:
            continue  # it cannot come out narrow enough: not worth a layout
        other = make()
        if packed:  # measured first, and not used if it puts an edge label on a shape
            layout = json.loads(_laid_out(other, "json", timeout))
            if geometry.width(layout) > WIDTH_BUDGET or geometry.overlaps(layout):
                continue
        again = pipe(other, fmt, timeout=timeout) if call is None else b""
        if call is None and (pixels(again, fmt) or 0) <= WIDTH_BUDGET:
            return again  # the same picture, laid out to fit: nothing to say
        if call is not None and advised is None:
            other.warned = True  # measured here, said here: tried in its own same-picture layouts only
            other.narrower = [option for option in other.narrower or () if option.call is None]
            found = pixels(pipe(other, "svg", timeout=timeout), "svg") or 0
            advised = (call, found) if found <= WIDTH_BUDGET else None
    if not getattr(drawing, "warned", False):
        drawing.warned = True
        fits = (f"draw(root, {advised[0]}) fits ({advised[1]:,.0f} px)" if advised else
                "collapse more stages (collapse=, keep=) or draw a part of the graph")
        _warn(f"this drawing is {width:,.0f} px wide at 96 dpi, wider than a notebook column "
              f"({WIDTH_BUDGET:,} px); {fits}", WidthWarning)
    return output


def pixels(output: bytes, fmt: str) -> float | None:
    """The width of an image in pixels at 96 dpi (SVG: its points x 4/3; PNG: its header), None for others."""
    if fmt == "svg":
        found = re.search(rb'<svg width="([\d.]+)pt"', output)
        return float(found[1]) * 4 / 3 if found else None
    if fmt == "png" and output[:8] == b"\x89PNG\r\n\x1a\n":
        return float(struct.unpack(">I", output[16:20])[0])
    return None


def _within_png_limit(drawing: Any, output: bytes, timeout: float | None) -> bytes:
    """A PNG that ``dot`` would cut at `PNG_MAX` pixels, drawn again at the resolution that keeps it whole."""
    if output[:8] != b"\x89PNG\r\n\x1a\n" or max(struct.unpack(">II", output[16:24])) < PNG_MAX - 2:
        return output  # (cairo stops a pixel or two short of its maximum)
    first = _laid_out(drawing, "plain", timeout).split(b"\n", 1)[0].split()  # graph scale width height (inches)
    width, height = float(first[2]) * 96, float(first[3]) * 96
    if max(width, height) < PNG_MAX - 2:
        return output
    dpi = int(96 * (PNG_MAX - 1) / max(width, height))
    _warn(f"this drawing is {width:,.0f} x {height:,.0f} px at 96 dpi, over the PNG renderer's maximum of "
          f"{PNG_MAX:,} px a side: written at {dpi} dpi instead, its text small; an SVG keeps it sharp")
    return _laid_out(drawing, "png", timeout, [f"-Gdpi={dpi}"])


def _laid_out(drawing: Any, fmt: str, timeout: float | None, options: list[str] | None = None) -> bytes:
    """``dot``'s output for a drawing; when ``dot`` fails, what it drew anyway or the safer layout, warned."""
    try:
        return run_dot(drawing.source, fmt, timeout, options)
    except _Failed as failure:
        first = failure
    if first.output:
        _warn(f"{dot()} reported a problem ({first.reason}) but drew the picture; it may be imperfect")
        return first.output
    safer = getattr(drawing, "safer", None)
    if safer is None:
        raise _error(first)
    try:
        output = run_dot(safer(), fmt, timeout, options)
    except _Failed as again:
        if not again.output:
            raise _error(again) from None
        output = again.output
    _warn(f"{dot()} could not lay out this drawing ({first.reason}); it was drawn again without ordering "
          "its stages")
    return output


def run_dot(source: str, fmt: str, timeout: float | None = None, options: list[str] | None = None) -> bytes:
    """``dot -T<fmt>`` on a DOT text: its output, or `_Failed` (with whatever it wrote) when it exits with an
    error; GraphvizNotFoundError when there is no ``dot``, GraphvizTimeout when it runs past the timeout."""
    limit = _seconds(DOT_TIMEOUT if timeout is None else timeout)
    try:
        done = subprocess.run(["dot", f"-T{fmt}", *(options or ())], input=source.encode("utf-8"), capture_output=True,
                              timeout=None if limit > NO_LIMIT else limit, check=False)
    except FileNotFoundError:
        raise GraphvizNotFoundError(DOT_MISSING) from None
    except OSError as error:  # a `dot` that is there but cannot be run: not executable, or not a program
        raise GraphvizNotRunnableError(f"Graphviz's `dot` program on PATH ({_dot_on_path()}) cannot be run: "
                                       f"{error.strerror or error}. Make it executable (chmod +x), or put a "
                                       "working Graphviz first on PATH (sudo apt-get install graphviz).") from None
    except subprocess.TimeoutExpired:
        raise GraphvizTimeout(f"{dot()} took longer than {limit:g} s to lay out this drawing and was "
                              f"stopped: {ADVICE}; or allow it longer (timeout=, or "
                              "autograd.view.rendering.DOT_TIMEOUT)", f"no layout after {limit:g} s") from None
    if done.returncode != 0:
        raise _Failed(_reason(done.stderr), done.stdout)
    return done.stdout


def _dot_on_path() -> str:
    """The first file named ``dot`` on PATH, as the system would try it (executable or not)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = Path(folder or ".") / "dot"
        if candidate.is_file():
            return str(candidate)
    return "dot"


def _seconds(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"render: timeout is a positive number of seconds (inf for none), got {timeout!r}")
    return float(timeout)


def _reason(stderr: bytes) -> str:
    """``dot``'s complaint in one line: its first error, else its first line, else that it said nothing."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    line = (errors or lines or ["it gave no reason"])[0]
    line = line.split(":", 1)[1].strip() if line.lower().startswith("error:") else line
    return line if len(line) <= 120 else line[:119] + "…"


def _error(failure: _Failed) -> GraphvizError:
    return GraphvizError(f"{dot()} could not lay out this drawing ({failure.reason}): {ADVICE}", failure.reason)


@functools.cache
def dot() -> str:
    """``dot`` as messages name it, with its version: "Graphviz's dot 2.43.0"."""
    try:
        done = subprocess.run(["dot", "-V"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "Graphviz's dot"
    words = done.stderr.decode("utf-8", errors="replace").split()
    return " ".join(["Graphviz's dot", *(word for word in words if word[:1].isdigit())][:2])


def _warn(message: str, kind: type[Warning] = GraphvizWarning) -> None:
    warnings.warn(message, kind, stacklevel=5)
