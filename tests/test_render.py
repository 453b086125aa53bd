"""Rendering on every Graphviz: the whole matrix of small ScalarLSTMs through the real ``dot``, and what happens
when ``dot`` fails (its output kept, or one retry with a plainer layout, one warning), hangs (a timeout) or is
missing: one line that says what to do, never ``dot``'s raw output."""

from __future__ import annotations

import itertools
import os
import stat
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from autograd import GraphTooLargeError, Value, draw, stage
from autograd.view import rendering as render_module
from autograd.view.rendering import GraphvizError, GraphvizTimeout, GraphvizWarning, pipe, render, run_dot
from lstm import ScalarLSTM
from lstm.cli import main

OPTIONS = {"default": {}, "in full": {"collapse": None}, "rolled up": {"roll_up": True}}
SIZES = list(itertools.product(range(1, 4), range(1, 4), range(1, 4), (1, 2), (1, 2), ("forward", "backward")))


def scalar_lstm_loss(input_size: int, hidden_size: int, steps: int, layers: int, batch: int) -> Value:
    model = ScalarLSTM(input_size, hidden_size, layers, seed=0)
    out, _ = model(np.random.default_rng(1).standard_normal((steps, batch, input_size)))
    loss = sum(out[-1].flat)
    loss.label = "L"
    return loss


def lay_out(sizes: tuple) -> list[str]:
    """Draw one ScalarLSTM with each of the options and have the real ``dot`` lay each drawing out (``-Tdot``
    does all of the layout, without pixels; a drawing refused as too large is drawn as its advice says, and
    one that is the same as another is laid out once). The problems, one line each."""
    *shape, view = sizes
    loss = scalar_lstm_loss(*shape)
    problems, done = [], set()
    for option, given in OPTIONS.items():
        try:
            drawing = draw(loss, view, **given)
        except GraphTooLargeError as refused:
            if refused.options is None:
                problems.append(f"{sizes} {option}: refused without advice: {refused}")
                continue
            drawing = draw(loss, view, **refused.options)
        if drawing.source in done:
            continue
        done.add(drawing.source)
        with warnings.catch_warnings():
            warnings.simplefilter("error", GraphvizWarning)  # a retry counts as a failure here
            try:
                run_dot(drawing.source, "dot", timeout=120)
            except Exception as error:  # noqa: BLE001 (every failure is reported with its case)
                problems.append(f"{sizes} {option}: {type(error).__name__}: {error}")
    return problems


def test_every_small_scalar_lstm_lays_out_through_the_real_dot():
    """Inputs and hidden sizes 1 to 3, 1 to 3 steps, 1 or 2 layers, batch 1 or 2, both views, drawn by default
    (steps but the last as boxes), in full and rolled up: 648 drawings, in two processes at once."""
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        problems = [problem for found in pool.map(lay_out, SIZES) for problem in found]
    assert not problems, f"{len(problems)} of {len(SIZES) * len(OPTIONS)} failed:\n" + "\n".join(problems[:20])


# --- a dot that fails, hangs or is missing ------------------------------------------------------------------------

FAKE_DOT = '''#!{python}
import sys, time
if "-V" in sys.argv:
    sys.stderr.write("dot - graphviz version 2.43.0 (0)\\n")
    sys.exit(0)
source = sys.stdin.read()
behaviour = {behaviour!r}
if behaviour == "hang":
    time.sleep(30)
if behaviour == "fail with output" or behaviour == "fail unless plain" and "style=invis" in source:
    if behaviour == "fail with output":
        sys.stdout.write("<svg>drawn anyway</svg>")
        sys.stdout.flush()
    sys.stderr.write("Error: trouble in init_rank\\n\\t%0 6\\n\\t%0 14\\n" + "\\t%0 2\\n" * 70)
    sys.exit(1)
if behaviour == "fail":
    sys.stderr.write("Error: trouble in init_rank\\n" + "\\t%0 2\\n" * 70)
    sys.exit(1)
sys.stdout.write("<svg>plain</svg>" if "style=invis" not in source else "<svg>stacked</svg>")
'''


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """Put a ``dot`` that behaves as asked first on PATH."""
    def install(behaviour: str) -> None:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        script = folder / "dot"
        script.write_text(FAKE_DOT.format(python=sys.executable, behaviour=behaviour))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        render_module.dot.cache_clear()
    yield install
    render_module.dot.cache_clear()


def stacked_drawing():
    """A drawing with stages stacked one under another (ordering constraints in its DOT)."""
    x = Value(0.3, label="x")
    for t in range(1, 3):
        with stage(f"t={t}"):
            with stage("a"):
                y = (x * 2).tanh() * 3 + 1
            with stage("b"):
                x = (y * x).sigmoid() * 2 - 1
    drawing = draw(x, "backward", rankdir="TB")
    assert "style=invis" in drawing.source
    return drawing


def one_line(text: str) -> bool:
    return "\n" not in text and "b'" not in text and "%0" not in text


def test_when_dot_fails_the_drawing_is_laid_out_again_without_its_constraints(fake_dot):
    fake_dot("fail unless plain")
    with pytest.warns(GraphvizWarning) as said:
        assert pipe(stacked_drawing(), "svg") == b"<svg>plain</svg>"
    (warning,) = said
    message = str(warning.message)
    assert one_line(message) and "Graphviz's dot 2.43.0" in message and "(trouble in init_rank)" in message
    assert "drawn again without ordering its stages" in message


def test_when_dot_fails_but_drew_the_picture_it_is_kept(fake_dot):
    fake_dot("fail with output")
    with pytest.warns(GraphvizWarning, match="reported a problem .trouble in init_rank. but drew the picture"):
        assert pipe(stacked_drawing(), "svg") == b"<svg>drawn anyway</svg>"


def test_a_dot_that_fails_gives_one_line_with_advice(fake_dot, tmp_path):
    fake_dot("fail")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphvizWarning)  # no warning that it was drawn again: it was not
        with pytest.raises(GraphvizError) as failed:
            render(stacked_drawing(), tmp_path / "graph.svg")
    message = str(failed.value)
    assert one_line(message) and failed.value.reason == "trouble in init_rank"
    assert message.startswith("Graphviz's dot 2.43.0 could not lay out this drawing (trouble in init_rank): ")
    assert "collapse=" in message and "Tensor LSTM" in message
    assert not (tmp_path / "graph.svg").exists()
    bundle = stacked_drawing()._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and one_line(bundle["text/plain"])


def test_a_dot_that_hangs_is_stopped_at_the_timeout(fake_dot, monkeypatch):
    fake_dot("hang")
    started = time.perf_counter()
    with pytest.raises(GraphvizTimeout, match=r"took longer than 0.5 s .* allow it longer \(timeout=") as failed:
        pipe(stacked_drawing(), "svg", timeout=0.5)
    assert time.perf_counter() - started < 10 and one_line(str(failed.value))
    monkeypatch.setattr(render_module, "DOT_TIMEOUT", 0.5)  # the default, settable
    with pytest.raises(GraphvizError, match="took longer than 0.5 s"):
        pipe(stacked_drawing(), "svg")


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), "60", True])
def test_a_timeout_that_is_not_a_positive_number_is_refused(fake_dot, timeout):
    fake_dot("plain")
    with pytest.raises(ValueError, match=r"render: timeout is a positive number of seconds .*, got"):
        pipe(stacked_drawing(), "svg", timeout=timeout)


@pytest.mark.parametrize("timeout", [float("inf"), 1e308, 1e7])
def test_a_timeout_too_long_to_wait_for_means_none(fake_dot, timeout):
    fake_dot("plain")  # the system's wait overflows at 1e308 s, and inf is not a number of seconds to it
    assert pipe(stacked_drawing(), "svg", timeout=timeout) == b"<svg>stacked</svg>"


def test_the_command_line_stops_a_hung_dot_at_its_timeout(fake_dot, tmp_path, capsys):
    fake_dot("hang")
    started = time.perf_counter()
    status = main(["graph", "--timeout", "0.5", "--output", str(tmp_path / "graph.svg")])
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and time.perf_counter() - started < 10
    assert error.startswith("backprop-lens: error: Graphviz's dot could not draw ")
    assert "(no layout after 0.5 s)" in error
    assert error.endswith("or allow it longer with --timeout SECONDS")
    assert not (tmp_path / "graph.svg").exists()
    for refused in ("0", "-1", "nan", "x"):
        assert main(["graph", "--timeout", refused, "--output", str(tmp_path / "graph.svg")]) == 2
        assert "argument --timeout: must be a positive number of seconds" in capsys.readouterr().err
    fake_dot("plain")
    assert main(["graph", "--timeout", "inf", "--output", str(tmp_path / "graph.svg")]) == 0
    assert (tmp_path / "graph.svg").read_bytes() == b"<svg>stacked</svg>"


def test_the_command_line_says_what_to_do_on_one_line(fake_dot, tmp_path, capsys):
    fake_dot("fail")
    status = main(["graph", "--output", str(tmp_path / "graph.svg")])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert [line.split(":")[1].strip() for line in error] == ["error"]
    assert all(one_line(line) for line in error)
    assert "(trouble in init_rank)" in error[0] and "--collapse 't=*'" in error[0] and "--tensor" in error[0]
    fake_dot("fail unless plain")
    assert main(["graph", "--output", str(tmp_path / "graph.svg")]) == 0
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("backprop-lens: warning: Graphviz's dot 2.43.0 could not lay out")
    assert Path(tmp_path / "graph.svg").read_bytes() == b"<svg>plain</svg>"
