"""Regression tests for issue 18 at the edges: labels past Graphviz's token limit, a `dot` that cannot be run,
Ctrl-C while the command line starts, ``--output /dev/stdout``, NFKC names in ``explain``, and the library's
size guards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autograd import Tensor, Value, stage
from autograd.view import draw, render, step_through
from autograd.view.rendering import GraphvizNotFoundError

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def environment(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1", **extra}


# --- 6. a label longer than Graphviz's 16,384-byte token limit ------------------------------------------------------

@pytest.mark.parametrize("label", ["a" * 6000, "é" * 6000, "𝐚" * 17000, '&\\"<' * 5000, "\u202e" * 6000])
@pytest.mark.parametrize("view", ["forward", "backward"])
def test_a_name_past_graphvizs_token_limit_is_drawn_shortened_and_whole_in_its_tooltip(tmp_path, label, view):
    # a 6,000-character label could not be drawn: "longer than 16384?", and the advice was "draw fewer shapes"
    with stage("s" * 7000):
        a = Value(1.5, label=label)
        L = a * a
    L.label = "L"
    drawing = draw(L, view=view, title="t" * 20000)
    assert max(len(line.encode()) for line in drawing.source.splitlines()) < 16384
    svg = render(drawing, tmp_path / "long.svg").read_text()
    assert "…" in svg
    if label == "a" * 6000:  # the tooltip holds the name whole, up to 1,000 characters
        assert "a" * 999 in svg


def test_a_long_tensor_name_in_a_step_through_frame_is_drawn(tmp_path):
    x = Tensor(np.ones(3), requires_grad=True, label="x" * 17000)
    L = (x * x).sum()
    L.label = "L" * 9000
    frames = step_through(L)
    assert render(frames[1], tmp_path / "frame.svg").read_text().startswith("<?xml")


# --- 7. a `dot` on PATH that cannot be run ---------------------------------------------------------------------------

@pytest.fixture
def unrunnable_dot(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    dot = folder / "dot"
    dot.write_text("#!/bin/sh\necho never\n")
    dot.chmod(0o644)  # there, but not executable
    return folder


def test_a_dot_that_is_not_executable_is_named_as_such(unrunnable_dot, tmp_path, monkeypatch):
    # it was "g.svg: Permission denied", naming the output file
    monkeypatch.setenv("PATH", str(unrunnable_dot))
    a = Value(1.0, label="a")
    with pytest.raises(GraphvizNotFoundError, match=rf"`dot` program on PATH \({unrunnable_dot / 'dot'}\) cannot "
                                                    r"be run: Permission denied. Make it executable"):
        render(draw(a * a), tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_the_command_line_names_a_dot_that_is_not_executable(unrunnable_dot, tmp_path):
    result = subprocess.run([sys.executable, "-m", "lstm", "graph", "--output", "g.svg"], cwd=tmp_path,
                            env=environment(PATH=str(unrunnable_dot)), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"backprop-lens: error: Graphviz's `dot` program on PATH "
                                          f"({unrunnable_dot / 'dot'}) cannot be run: Permission denied. Make it "
                                          "executable (chmod +x), or put a working Graphviz first on PATH (sudo "
                                          "apt-get install graphviz)."]


# --- 10. Ctrl-C while the command line starts; --output /dev/stdout ----------------------------------------------

STARTING = """
import os, signal, sys
sys.argv[0] = "backprop-lens"  # as the console script starts
import lstm                    # the package: the command's handler is in place from its first line
{more}
os.kill(os.getpid(), signal.SIGINT)
print("not reached")
"""


@pytest.mark.parametrize("more", ["", "import lstm.cli"])
def test_ctrl_c_while_the_command_line_imports_is_one_line_and_status_130(more):
    # a Ctrl-C in the first 0.3 s (the imports) printed a traceback
    result = subprocess.run([sys.executable, "-c", STARTING.format(more=more)], env=environment(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "backprop-lens: interrupted\n"
    assert "not reached" not in result.stdout


def test_ctrl_c_after_the_command_line_started_is_a_keyboard_interrupt_again():
    code = ("import os, signal, sys; sys.argv[0] = 'backprop-lens'; import lstm.cli\n"
            "from unittest import mock\n"
            "with mock.patch.object(lstm.cli, 'build_parser', side_effect=KeyboardInterrupt):\n"
            "    status = lstm.cli.main(['demo'])\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "sys.exit(status)\n")
    result = subprocess.run([sys.executable, "-c", code], env=environment(), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "backprop-lens: interrupted\n"


def test_importing_lstm_as_a_library_leaves_ctrl_c_alone():
    code = "import signal, lstm; assert signal.getsignal(signal.SIGINT) is signal.default_int_handler"
    result = subprocess.run([sys.executable, "-c", code], env=environment(), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr


def test_graph_output_to_dev_stdout_writes_the_picture_to_standard_output(tmp_path):
    # it wrote a regular file named /dev/stdout.svg (or failed to)
    result = subprocess.run([sys.executable, "-m", "lstm", "graph", "--output", "/dev/stdout", "--format", "svg"],
                            cwd=tmp_path, env=environment(), capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"<?xml") and result.stdout.rstrip().endswith(b"</svg>")
    assert not Path("/dev/stdout.svg").exists()


def test_graph_output_without_a_suffix_still_gets_the_formats(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lstm", "graph", "--output", "picture", "--format", "dot"],
                            cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "picture.gv").read_text().startswith("digraph")


# --- 8. explain's NAME=VALUE pairs read as Python reads names (NFKC) ------------------------------------------------

def test_a_name_given_as_python_spells_it_in_the_expression_is_the_same_name():
    from lstm.expression import assignments, expression_value

    # explain '𝐚*b' 𝐚=1 b=2 said 𝐚 was not in the expression (Python reads 𝐚 in the expression as a)
    root = expression_value("𝐚*b", assignments(["𝐚=1", "b=2"]))
    assert root.data == 2.0
    assert expression_value("ﬁ + 𝐚", assignments(["ﬁ=2", "ａ=3"])).data == 5.0
    assert assignments(["𝐚=1"]) == {"a": 1.0}


def test_two_names_that_python_reads_as_one_are_refused():
    from lstm.expression import ExpressionError, assignments

    with pytest.raises(ExpressionError, match=r"^𝐚 and a are one name to Python, a \(it reads names normalised to "
                                              r"NFKC\): give it once$"):
        assignments(["𝐚=1", "a=2"])
    with pytest.raises(ExpressionError, match=r"^a is given twice$"):
        assignments(["a=1", "a=2"])


def test_explain_on_the_command_line_takes_a_unicode_name(capsys):
    from lstm.cli import main

    assert main(["explain", "𝐚*b", "𝐚=1", "b=2"]) == 0
    assert "b = 2" in capsys.readouterr().out
    assert main(["explain", "𝐚*b", "𝐚=1", "a=1", "b=2"]) == 2
    assert capsys.readouterr().err == ("backprop-lens: error: 𝐚 and a are one name to Python, a (it reads names "
                                       "normalised to NFKC): give it once\n")


# --- 10. the library's compare is guarded as the command line is ---------------------------------------------------

@pytest.mark.parametrize("options", [dict(), dict(include_scalar=False, include_finite_differences=False)])
def test_compare_refuses_sizes_it_cannot_finish_at_once(options):
    from lstm import compare
    from lstm.demo import SizeError

    # compare(seq_len=10**7) grew to 6 GB in 30 s; the command line refused the same in 0.25 s. Refused from the
    # estimate, before anything is built (or this test would not end)
    with pytest.raises(SizeError, match=r"would take about [\d,]+ nodes"):
        compare(seq_len=10**7, **options)


@pytest.mark.parametrize("name, size", [("seq_len", 0), ("hidden_size", -1), ("batch_size", 2.5),
                                        ("num_layers", True)])
def test_compare_refuses_sizes_that_are_not_positive_integers(name, size):
    from lstm import compare

    with pytest.raises(ValueError, match=rf"compare: {name} must be a positive integer, got {size!r}"):
        compare(**{name: size})
