"""The command line under random arguments: whatever hypothesis types, every subcommand ends with a status the
module's docstring documents (0; 1 for a failed check, a file that cannot be written, a diverging run; 2 for a
request it refuses: the others, 130, 141 and 143, need a signal or a closed pipe, and test_cli sends them), says
so in one line on stderr, and never shows a traceback.

Commands run in-process through ``lstm.cli.main`` (an escaping exception *is* the traceback), each in a fresh
scratch directory holding a file, a directory, a small checkpoint and a damaged one. Sizes are anything the
parser takes, up to 100-digit numbers: ``graph``, ``compare``, ``explain`` and ``train`` refuse what cannot
finish from an estimate, before building anything, against a memory limit fixed at 1 GB (so the outcome does
not depend on the machine), and what they accept is small enough to take a fraction of a second. Drawings of
more than 150 shapes are written as DOT text (``--output big.gv``): Graphviz's ``dot`` 2.43 may take a minute to
lay one of 1,500 out, or fail with "trouble in init_rank". ``demo`` takes seconds whatever it is given, so it is
given only arguments it refuses (test_cli runs it whole).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lstm.training.estimate
import lstm.training.run
from lstm.cli import main
from lstm.expression import FUNCTIONS
from lstm.training import TrainConfig, train

# A warning printed by Python or numpy is not one line of ours either.
pytestmark = pytest.mark.filterwarnings("error")

# What a user might type where a number goes: the parser must refuse each of these, or take it as meant.
ODD_NUMBERS = ["0", "-1", "1.5", "nan", "inf", "-inf", "1e400", "", " ", "x", "0x10", "1_0", "2e0", "+2", "1e-3",
               "\u0662"]
HUGE_NUMBERS = ["99999999999999999999", "1e10", "123456789", "1e99"]
PATHS = ["out", "a/b/c", "file", "file/below", "dir", "/dev/null"]
FORMATS = ["png", "svg", "pdf", "dot", "gif", "PNG"]

small = st.integers(1, 3).map(str)
odd = st.sampled_from(ODD_NUMBERS)
huge = st.sampled_from(HUGE_NUMBERS)
size = st.one_of(small, odd)
any_size = st.one_of(small, odd, huge)
fraction = st.one_of(st.sampled_from(["0.5", "1e-9", "1e9", "0.005", "1e308", "5e-324"]), odd)
path = st.sampled_from(PATHS)
text = st.text(max_size=8)

# A train run small enough to finish in well under a second; the fuzzed options come after and override it.
TRAIN_BASE = ["--hidden-size", "2", "--embedding-size", "2", "--seq-len", "16", "--batch-size", "2", "--steps",
              "2", "--eval-interval", "1", "--sample-length", "5"]
# Drawings of at most 150 shapes (the default allows 2,000, which dot may take a minute to lay out).
GRAPH_BASE = ["--max-nodes", "150"]
TRAIN_CONFIG = TrainConfig(hidden_size=2, embedding_size=2, seq_len=16, batch_size=2, steps=2, eval_interval=1)


def options(spec: dict[str, st.SearchStrategy[str] | None], max_size: int = 6) -> st.SearchStrategy[list[str]]:
    """Lists of flags from ``spec`` (None: a flag without a value) with values, in any order, repeats allowed,
    now and then with a stray token among them."""
    flag = st.sampled_from(sorted(spec)).flatmap(
        lambda name: st.just([name]) if spec[name] is None else spec[name].map(lambda value: [name, value]))
    stray = text.map(lambda token: [token])
    return st.lists(st.one_of(flag, flag, flag, stray), max_size=max_size).map(
        lambda parts: [token for part in parts for token in part])


# LSTM sizes: absurd ones too; --steps (optimizer steps, train's) is refused with a hint, --batch is short for
# --batch-size.
SIZES = {"--input-size": any_size, "--hidden-size": any_size, "--layers": any_size, "--seq-len": any_size,
         "--batch-size": any_size, "--batch": size, "--seed": any_size, "--steps": st.one_of(small, st.just("--"))}

TRAIN = {"--hidden-size": any_size, "--layers": any_size, "--embedding-size": any_size, "--seq-len": any_size,
         "--batch-size": any_size, "--steps": any_size, "--lr": fraction, "--clip-norm": fraction,
         "--seed": any_size, "--eval-interval": any_size, "--dtype": st.sampled_from(["float32", "float64", "int8"]),
         "--corpus": st.sampled_from(["devils_dictionary", "../etc/passwd"]), "--out": path,
         "--checkpoint": st.sampled_from(["saved.npz", "damaged.npz", "new.npz", "file", "dir", "/dev/null",
                                          "file/below"]),
         "--resume": None, "--overwrite": None, "--override-config": None,
         "--prompt": st.one_of(st.sampled_from(["LOVE, n. ", "The "]), text),
         "--sample-length": st.one_of(st.integers(0, 20).map(str), odd, huge),
         "--temperature": st.one_of(fraction, st.just("0"))}

GRAPH = {**SIZES, "--tensor": None, "--scalar": None, "--view": st.sampled_from(["forward", "backward", "up"]),
         "--collapse": st.sampled_from(["auto", "none", "t=*", "t=0", "zzz", "[", ""]),
         "--keep": st.sampled_from(["t=1", "*", ""]), "--roll-up": None,
         "--precision": st.one_of(st.integers(1, 30).map(str), odd, huge),
         "--max-nodes": st.one_of(small, odd, st.just("150")),
         "--timeout": fraction,
         "--format": st.sampled_from(FORMATS),
         "--output": st.tuples(path, st.sampled_from([".png", ".svg", ".gv", ".txt", ""])).map("".join)}

COMPARE = {**SIZES, "--tolerance": fraction, "--fd-tolerance": fraction, "--eps": fraction, "--no-scalar": None,
           "--no-finite-differences": None, "--format": st.sampled_from(["text", "markdown", "html"])}

EXPLAIN = {**SIZES, "--format": st.sampled_from(["text", "markdown", "latex", "tex"]),
           "--precision": st.one_of(st.integers(1, 30).map(str), odd, huge)}

leaf = st.sampled_from(["a", "b", "2", "0", "-1", "1e308", "x", "a"])
expression = st.one_of(
    st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(FUNCTIONS), inner).map(lambda t: f"{t[0]}({t[1]})")), max_leaves=6),
    text)
assignments = st.lists(st.sampled_from(["a=2", "b=-3", "a=0", "b=1e308", "a=-1", "b=0.5", "c=1", "=1", "a", "a=x"]),
                       max_size=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of TRAIN_BASE's run, so that ``--resume`` has something to go on with."""
    path = tmp_path_factory.mktemp("saved") / "saved.npz"
    train(replace(TRAIN_CONFIG, checkpoint=str(path)), verbose=False)
    return path


@contextlib.contextmanager
def scratch(checkpoint: Path) -> Iterator[Path]:
    """A fresh working directory with a file, a directory, the checkpoint and a damaged copy of it."""
    directory = Path(tempfile.mkdtemp(prefix="fuzz-"))
    (directory / "file").write_text("a file where a directory may be wanted")
    (directory / "dir").mkdir()
    shutil.copy(checkpoint, directory / "saved.npz")
    (directory / "damaged.npz").write_bytes(checkpoint.read_bytes()[:1000])
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield directory
    finally:
        os.chdir(previous)
        shutil.rmtree(directory)


def run(argv: list[str], checkpoint: Path) -> None:
    """Run the command line and check how it ended: a status of 0, 1 or 2 and only our own lines on stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with scratch(checkpoint), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(argv)  # an exception escaping here is the traceback a user would see
    lines = stderr.getvalue().splitlines()
    assert status in (0, 1, 2), (argv, status, lines)
    assert all(line.startswith(("backprop-lens: warning: ", "backprop-lens: error: ")) for line in lines), (argv,
                                                                                                            lines)
    errors = [line for line in lines if line.startswith("backprop-lens: error: ")]
    if status == 2 or (status == 1 and argv[0] != "compare"):
        assert len(errors) == 1, (argv, status, lines)
    if status == 0:
        assert errors == [], (argv, lines)


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def fixed_memory(monkeypatch):
    """Sizes are refused against 1 GB, whatever this machine has: every huge number is then refused, none trains
    or samples for hours."""
    monkeypatch.setattr(lstm.training.estimate, "memory_limit", lambda: 10**9)


@fuzz(40)
@given(options(TRAIN, max_size=5))
def test_train(checkpoint, fixed_memory, argv):
    run(["train", *TRAIN_BASE, *argv], checkpoint)


@fuzz(60)
@given(expression, assignments, options(EXPLAIN, max_size=3))
def test_explain(checkpoint, expression, values, argv):
    run(["explain", expression, *values, *argv], checkpoint)


@fuzz(20)
@given(options(EXPLAIN, max_size=4))
def test_explain_an_lstm(checkpoint, fixed_memory, argv):
    run(["explain", *argv], checkpoint)


@fuzz(20)
@given(options(GRAPH))
def test_graph(checkpoint, fixed_memory, argv):
    run(["graph", *GRAPH_BASE, *argv], checkpoint)


@fuzz(10)
@given(options({"--tensor": None, "--seq-len": st.sampled_from(["40", "300"]), "--hidden-size": small,
                "--layers": small, "--view": st.sampled_from(["forward", "backward"]), "--collapse":
                    st.sampled_from(["auto", "none", "t=*", "t=1*"]), "--roll-up": None,
                "--max-nodes": st.sampled_from(["150", "2000", "1e9"])}, max_size=5))
def test_graph_large_drawings(checkpoint, fixed_memory, argv):
    run(["graph", "--output", "big.gv", *argv], checkpoint)


@fuzz(25)
@given(options(COMPARE))
def test_compare(checkpoint, fixed_memory, argv):
    run(["compare", *argv], checkpoint)


@fuzz(10)
@given(st.one_of(st.tuples(st.just("--seed"), odd), st.tuples(st.just("--out"), st.just("file/below"))),
       options({"--seed": small, "--out": path}, max_size=2))
def test_demo_refusals(checkpoint, refused, argv):
    run(["demo", *argv, *refused], checkpoint)


@fuzz(20)
@given(st.lists(st.one_of(text, st.sampled_from(["--help", "-h", "graph", "explain", "--", "-"])), max_size=4))
def test_anything_at_all(checkpoint, argv):
    assume(not argv or argv[0] not in ("train", "demo"))  # their defaults run for a minute; fuzzed above
    run(argv, checkpoint)
