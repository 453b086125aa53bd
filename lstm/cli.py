"""The ``backprop-lens`` command (also ``python -m lstm``): demo, graph, compare, explain and train.

Every subcommand has ``--help``. Problems are reported on one line, ``backprop-lens: error: ...``, never as
a traceback: a bad argument, a missing, damaged or mismatched checkpoint, or sizes too large to draw or to
train exit with status 2; a file that cannot be written, a missing Graphviz or a diverging training run with 1.
`compare` (and `demo`) exit with 1 when a check fails; a `train` stopped by SIGINT (Ctrl-C) or SIGTERM saves
its checkpoint and exits with 130 or 143. When the reader of the output goes away (``| head``), the command
stops quietly with 141, as Unix tools do. Every file is written atomically: it appears complete, or the old
one stays; a device or FIFO given as a path is written to, never replaced.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import importlib.util
import math
import operator
import os
import shlex
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from autograd import Value, detect_anomaly, stage
from autograd.core import Node
from autograd.files import make_directories, write_atomically
from autograd.view.boxes import AUTO_SHAPES, GraphTooLargeError
from autograd.view.draw import draw
from autograd.view.explain import explain
from autograd.view.rendering import FORMATS, GraphvizError, GraphvizNotFoundError, GraphvizWarning, render
from lstm.checkpoint import CheckpointError, load_checkpoint
from lstm.compare import compare
from lstm.data import DEFAULT_CORPUS, available_corpora
from lstm.flow import gradient_flow
from lstm.model import LSTM, ScalarLSTM, parameter_shapes
from lstm.train import (
    DTYPES,
    ConfigError,
    TrainConfig,
    TrainingDiverged,
    check_run_size,
    check_sample_size,
    checkpoint_layout,
    duration,
    prepare_data,
    sample,
    train,
)

PROG = "backprop-lens"
AUTO_COLLAPSE_NODES = AUTO_SHAPES  # above this many shapes, `--collapse auto` draws all but the last step as boxes
SCALAR_NODE_LIMIT = 50_000  # a ScalarLSTM this large takes long to build and cannot be drawn or read anyway
FINITE_DIFFERENCE_LIMIT = 250_000  # cell steps of finite differences: at about 40 us each, some 10 seconds
WARN_SECONDS = 3600  # a run or a sample estimated to take longer gets a warning with the estimate


class UsageError(Exception):
    """A request that cannot be carried out as asked; reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line on stderr (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(_fail(f"{message} (see {self.prog} --help)", 2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a bad argument already reported
        return exit.code if isinstance(exit.code, int) else 2
    try:
        # Numbers that leave the floats show as inf or nan in what a command prints, or end it with one line (a
        # diverged run, a failed check); numpy's warnings about them would be lines of another kind.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            status = args.run(args)
        sys.stdout.flush()  # here, so that a reader that went away is noticed while it can still be handled
        return status
    except BrokenPipeError as error:
        if error.filename is not None:  # a FIFO given as an output, not our standard output
            return _fail(f"{error.filename}: {error.strerror}", 1)
        return _quiet_after_broken_pipe()
    except (UsageError, CheckpointError, ConfigError) as error:
        return _fail(error, 2)
    except (GraphvizNotFoundError, TrainingDiverged) as error:
        return _fail(error, 1)
    except GraphvizError as error:  # dot itself failed or ran out of time (render_to says what to do)
        return _fail(error, 1)
    except OSError as error:  # e.g. an --out directory that cannot be written
        return _fail(f"{error.filename}: {error.strerror or error}" if error.filename else error, 1)
    except MemoryError:
        return _fail("out of memory: use smaller sizes", 1)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _fail(error: Any, status: int) -> int:
    message = " ".join(str(error).split())  # one line, whatever the message
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def _quiet_after_broken_pipe() -> int:
    """The reader of our output went away (``| head``): stop without a word, as Unix tools do, with the status
    a shell reports for them (128 + SIGPIPE)."""
    try:
        # What is still buffered can never be written; pointing stdout at /dev/null keeps Python from
        # complaining about it at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # a stdout without a descriptor (a notebook, a test's capture)
        pass
    return 128 + signal.SIGPIPE


# --- the parser -------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Make backpropagation visible: an autograd engine whose graphs "
                     "you can see, and an LSTM built on it.")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        return sub

    demo = command("demo", run_demo, "Draw a tiny LSTM's forward and backward graphs, check its gradients "
                   "four ways and measure the gradient flow through time.")
    demo.add_argument("--out", default="out/demo", help=_default("directory for the files"))
    demo.add_argument("--seed", type=_non_negative_int, default=0, metavar="N",
                      help=_default("seed of weights and inputs"))

    graph = command("graph", run_graph, "Draw an LSTM's computation graph for L = the sum of its last "
                    "output: forward (values) or backward (gradients on every edge).")
    kind = graph.add_mutually_exclusive_group()
    kind.add_argument("--scalar", dest="scalar", action="store_true", default=True,
                      help="ScalarLSTM: one node per number (the default)")
    kind.add_argument("--tensor", dest="scalar", action="store_false", help="LSTM: one node per array")
    _add_lstm_sizes(graph, input_size=1, hidden_size=2, steps=2, batch=1)
    graph.add_argument("--view", choices=("forward", "backward"), default="forward", help=_default(""))
    graph.add_argument("--collapse", default="auto", metavar="PATTERN",
                       help=_default("draw the stages matching PATTERN (e.g. 't=*') as boxes; 'auto' boxes "
                                     f"all time steps but the last in graphs of over {AUTO_COLLAPSE_NODES} "
                                     "nodes; 'none' draws every node"))
    graph.add_argument("--keep", metavar="PATTERN", help="stages to draw in full although --collapse matches")
    graph.add_argument("--roll-up", action="store_true",
                       help="draw a run of repeated stages (t=0, t=1, ...) as one box marked with its count")
    graph.add_argument("--precision", type=_positive_int, default=3, metavar="N",
                       help=_default("significant digits shown"))
    graph.add_argument("--max-nodes", type=_positive_int, default=2000, metavar="N",
                       help=_default("refuse drawings larger than this"))
    graph.add_argument("--format", choices=("png", "svg", "pdf", "dot"),
                       help="image format (default: from the --output suffix, else png)")
    graph.add_argument("--output", metavar="PATH", help="file to write (default: out/graph_VIEW.FORMAT)")

    check = command("compare", run_compare, "Compare an LSTM's gradients from the engine (Tensor and "
                    "scalar) and finite differences with the hand derivation; exit status 1 if a check "
                    "fails.")
    _add_lstm_sizes(check, input_size=3, hidden_size=4, steps=5, batch=2)
    check.add_argument("--tolerance", type=_positive_float, default=1e-9, metavar="X",
                       help=_default("tolerance for the engine's gradients"))
    check.add_argument("--fd-tolerance", type=_positive_float, default=1e-9, metavar="X",
                       help=_default("tolerance for finite differences"))
    check.add_argument("--eps", type=_positive_float, default=1e-3, metavar="X",
                       help=_default("finite-difference step (of a five-point stencil)"))
    check.add_argument("--no-scalar", dest="scalar", action="store_false", help="leave out the ScalarLSTM")
    check.add_argument("--no-finite-differences", dest="finite", action="store_false",
                       help="leave out finite differences")
    check.add_argument("--format", choices=("text", "markdown"), default="text", help=_default(""))

    why = command("explain", run_explain, "Write out the chain rule, node by node, for a small expression "
                  "(e.g. 'tanh(a*b + c)' a=2 b=-3 c=1) or, without one, for a tiny ScalarLSTM.")
    why.add_argument("expression", nargs="?",
                     help=f"numbers, names, + - * / ** and the functions {', '.join(_FUNCTIONS)}")
    why.add_argument("values", nargs="*", metavar="NAME=VALUE", help="a value for each name in it")
    _add_lstm_sizes(why, input_size=1, hidden_size=1, steps=1, batch=1)
    why.add_argument("--format", choices=("text", "markdown", "latex"), default="text", help=_default(""))
    why.add_argument("--precision", type=_digits, default=4, metavar="N",
                     help=_default("significant digits shown, 1 to 17 (a float has no more)"))

    learn = command("train", run_train, "Train a character-level LSTM language model on the shipped text "
                    "and measure it against the unigram baseline; writes a checkpoint, the loss curve and a "
                    "sample. Ctrl-C (SIGINT) or SIGTERM stops after the current step and saves (exit status "
                    "130 or 143); after SIGKILL, --resume goes on from the last checkpoint.")
    _add_train_config(learn)
    learn.add_argument("--out", default="out/train", help=_default("directory for the files"))
    learn.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default: OUT/checkpoint.npz)")
    learn.add_argument("--resume", action="store_true",
                       help="go on with the run saved in the checkpoint, with its settings; settings given here "
                            "must agree with them")
    learn.add_argument("--override-config", action="store_true",
                       help="with --resume: go on with the settings given here where they differ from the "
                            f"checkpoint's ({', '.join(_adjustable_flags())}); "
                            "sizes, --dtype and --corpus cannot change")
    learn.add_argument("--overwrite", action="store_true", help="start afresh, replacing the checkpoint")
    learn.add_argument("--prompt", default="LOVE, n. ", help=_default("text the sample starts from"))
    learn.add_argument("--sample-length", type=_non_negative_int, default=400, metavar="N",
                       help=_default("characters to sample"))
    learn.add_argument("--temperature", type=_non_negative_float, default=0.8, metavar="X",
                       help=_default("sampling temperature; 0 always takes the likeliest character"))
    return parser


def _default(text: str) -> str:
    return f"{text} (default: %(default)s)".lstrip()


def _add_lstm_sizes(parser: argparse.ArgumentParser, *, input_size: int, hidden_size: int, steps: int,
                    batch: int) -> None:
    sizes = parser.add_argument_group("LSTM")
    for flag, default, text in (("--input-size", input_size, "features per step"),
                                ("--hidden-size", hidden_size, "hidden units"), ("--layers", 1, "layers"),
                                ("--steps", steps, "time steps"), ("--batch", batch, "sequences")):
        sizes.add_argument(flag, type=_positive_int, default=default, metavar="N", help=_default(text))
    sizes.add_argument("--seed", type=_non_negative_int, default=0, metavar="N",
                       help=_default("seed of weights and inputs"))


def _add_train_config(parser: argparse.ArgumentParser) -> None:
    """The TrainConfig flags. They default to None, so that a resumed run can tell what was given."""
    default = TrainConfig()
    config = parser.add_argument_group("model and training")
    for flag, kind, text in _CONFIG_FLAGS:
        field = _config_field(flag)
        config.add_argument(flag, dest=field, type=kind, metavar="N" if kind is not _positive_float else "X",
                            help=f"{text} (default: {getattr(default, field)})")
    config.add_argument("--dtype", choices=DTYPES, help=f"float type (default: {default.dtype})")
    config.add_argument("--corpus", choices=available_corpora(),
                        help=f"shipped text (default: {DEFAULT_CORPUS})")


_FLAGS = {"--layers": "num_layers"}


def _config_field(flag: str) -> str:
    return _FLAGS.get(flag, flag[2:].replace("-", "_"))


def _adjustable_flags() -> list[str]:
    """The flags of the settings that --override-config lets a resumed run change."""
    return [flag for flag, _, _ in _CONFIG_FLAGS if _config_field(flag) in TrainConfig.ADJUSTABLE]


def _number(kind: Callable[[str], Any], test: Callable[[Any], bool], wanted: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, ArithmeticError):
            value = None
        if value is None or not test(value):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {shown!r}")
        return value

    return parse


def _integer(text: str) -> int:
    """An integer, also in scientific notation when it is one exactly (1e6, 2.5e3); at most 100 digits."""
    number = Decimal(text)  # InvalidOperation (an ArithmeticError) if not a number
    if not number.is_finite() or number != number.to_integral_value() or number.adjusted() >= 100:
        raise ValueError(f"not an integer of at most 100 digits: {text!r}")
    return int(number)


_positive_int = _number(_integer, lambda n: n > 0, "a positive integer")
_non_negative_int = _number(_integer, lambda n: n >= 0, "a non-negative integer")
_digits = _number(_integer, lambda n: 1 <= n <= 17, "a number of significant digits from 1 to 17")
_positive_float = _number(float, lambda x: math.isfinite(x) and x > 0, "a positive number")
_non_negative_float = _number(float, lambda x: math.isfinite(x) and x >= 0, "a non-negative number")

_CONFIG_FLAGS = (("--hidden-size", _positive_int, "LSTM hidden units"),
                 ("--layers", _positive_int, "stacked LSTM layers"),
                 ("--embedding-size", _positive_int, "character embedding width"),
                 ("--seq-len", _positive_int, "characters per training sequence"),
                 ("--batch-size", _positive_int, "sequences per step"),
                 ("--steps", _positive_int, "training steps in all, resumed ones included"),
                 ("--lr", _positive_float, "Adam's learning rate"),
                 ("--clip-norm", _positive_float, "clip gradients to this global norm"),
                 ("--seed", _non_negative_int, "seed of the weights and the batches"),
                 ("--eval-interval", _positive_int, "steps between validations and checkpoints"))


# --- demo ---------------------------------------------------------------------------------------------------

def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    print("1. A ScalarLSTM (input 1, hidden 1, 2 steps): every number is a node; L = sum of the last output.\n"
          "   The first step is drawn as a box, the last in full.")
    scalar_loss = lstm_loss(True, input_size=1, hidden_size=1, layers=1, steps=2, batch=1, seed=args.seed)
    for view in ("forward", "backward"):
        written += save_drawing(draw_lstm(scalar_loss, view), out / f"scalar_{view}", ("png", "svg"))

    print("2. The Tensor LSTM (input 3, hidden 4, batch 2, 6 steps): every step but the last as a box.")
    tensor_loss = lstm_loss(False, input_size=3, hidden_size=4, layers=1, steps=6, batch=2, seed=args.seed)
    for view in ("forward", "backward"):
        written += save_drawing(draw_lstm(tensor_loss, view), out / f"lstm_{view}", ("png", "svg"))

    print("\n3. The same gradients four ways:\n")
    comparison = compare(seed=args.seed)
    print(comparison)

    print("\n4. How far the gradient reaches back in time (LSTM, input 3, hidden 8, 20 steps):\n")
    x = np.random.default_rng(args.seed + 1).standard_normal((20, 2, 3))
    flow = gradient_flow(LSTM(3, 8, seed=args.seed), x, loss="last")
    print(flow)
    if can_plot():
        written.append(out / "gradient_flow.png")
        flow.plot(written[-1])

    print("\nFiles:")
    for path in written:
        print(f"  {path}")
    return 0 if comparison.passed else 1


# --- graph --------------------------------------------------------------------------------------------------

def run_graph(args: argparse.Namespace) -> int:
    path, fmt = _graph_output(args.output, args.format, args.view)
    loss = lstm_loss(args.scalar, args.input_size, args.hidden_size, args.layers, args.steps, args.batch,
                     args.seed)
    try:
        drawing = draw_lstm(loss, args.view, args.collapse, args.keep, args.max_nodes, args.roll_up,
                            args.precision)
    except GraphTooLargeError as error:
        raise UsageError(f"{error} On the command line: --collapse PATTERN, --keep PATTERN, --roll-up or "
                         "--max-nodes N.") from None
    print(render_to(drawing, path, fmt))
    return 0


def _graph_output(output: str | None, fmt: str | None, view: str) -> tuple[Path, str]:
    """The file to write and its format, from --output and --format, which must agree."""
    extension = {"dot": "gv"}
    if output is None:
        fmt = fmt or "png"
        return Path("out") / f"graph_{view}.{extension.get(fmt, fmt)}", fmt
    path = Path(output)
    implied = FORMATS.get(path.suffix.lower())
    if fmt is None and implied is None:
        raise UsageError(f"cannot tell the format of {output!r}: end it in .png, .svg, .pdf or .gv, "
                         "or give --format")
    if fmt is not None and implied is not None and implied != fmt:
        raise UsageError(f"--output {output!r} does not match --format {fmt}")
    if implied is None:
        path = path.with_name(f"{path.name}.{extension.get(fmt, fmt)}")
    return path, fmt or implied


def lstm_loss(scalar: bool, input_size: int, hidden_size: int, layers: int, steps: int, batch: int,
              seed: int) -> Node:
    """L = the sum of the last output of a freshly made LSTM on random inputs: a root to draw or explain."""
    x = np.random.default_rng(seed + 1).standard_normal((steps, batch, input_size))
    if scalar:
        check_scalar_size(input_size, hidden_size, layers, steps, batch, instead="--tensor")
        out, _ = ScalarLSTM(input_size, hidden_size, layers, seed=seed)(x)
        with stage("loss"):
            loss = functools.reduce(operator.add, out[-1].flat)
    else:
        out, _ = LSTM(input_size, hidden_size, layers, seed=seed)(x)
        with stage("loss"):
            loss = out[-1].sum()
    loss.label = "L"
    return loss


def check_scalar_size(input_size: int, hidden_size: int, layers: int, steps: int, batch: int, instead: str
                      ) -> None:
    """Refuse a ScalarLSTM too large to build quickly, naming the option that avoids it."""
    nodes = _scalar_nodes(input_size, hidden_size, layers, steps, batch)
    if nodes > SCALAR_NODE_LIMIT:
        raise UsageError(f"a ScalarLSTM of these sizes has about {nodes:,} nodes (the limit is "
                         f"{SCALAR_NODE_LIMIT:,}): use smaller sizes, or {instead}")


def _scalar_nodes(input_size: int, hidden_size: int, layers: int, steps: int, batch: int) -> int:
    """Roughly how many Values a ScalarLSTM builds: per gate unit and step a multiply and an add per input.

    A formula, not a loop over the layers: the sizes may be absurd (``--layers 99999999999999999999``).
    """

    def layer(inputs: int) -> int:
        return 4 * hidden_size * (2 * (inputs + hidden_size) + 2) + 5 * hidden_size

    return (layer(input_size) + (layers - 1) * layer(hidden_size)) * steps * batch


def draw_lstm(root: Node, view: str, collapse: str | None = "auto", keep: str | None = None,
              max_nodes: int = 2000, roll_up: bool = False, precision: int = 4) -> Any:
    """`autograd.view.draw.draw`; ``collapse="auto"`` boxes all time steps but one (``keep``, else the last) when
    the graph is large, and "none" draws every node."""
    return draw(root, view, collapse=None if collapse == "none" else collapse, keep=keep, roll_up=roll_up,
                max_nodes=max_nodes, precision=precision)


def render_to(drawing: Any, path: Path, fmt: str) -> Path:
    """`autograd.view.rendering.render`, with an OSError that names ``path`` rather than its temporary file, the
    command line's advice when ``dot`` fails, and its warnings on one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GraphvizWarning)
        try:
            return render(drawing, path, fmt)
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from None
        except GraphvizError as error:
            raise GraphvizError(f"Graphviz's dot could not draw {path} ({error.reason}): draw fewer shapes with "
                                "--collapse 't=*' (or --roll-up), or the Tensor LSTM with --tensor",
                                error.reason) from None
        finally:
            for warning in caught:
                print(f"{PROG}: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)


def save_drawing(drawing: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Render to ``stem.png``, ``stem.svg``...; without Graphviz's ``dot``, write the DOT source instead."""
    try:
        return [render_to(drawing, stem.with_name(f"{stem.name}.{fmt}"), fmt) for fmt in formats]
    except GraphvizNotFoundError:
        path = render_to(drawing, stem.with_name(f"{stem.name}.gv"), "dot")
        print(f"   Graphviz's `dot` is not installed, so {path} holds the DOT source "
              "(sudo apt-get install graphviz for pictures)")
        return [path]


# --- compare ------------------------------------------------------------------------------------------------

def run_compare(args: argparse.Namespace) -> int:
    if args.scalar:
        check_scalar_size(args.input_size, args.hidden_size, args.layers, args.steps, args.batch,
                          instead="--no-scalar")
    if args.finite:
        numbers = sum(int(np.prod(shape)) for shape in parameter_shapes(args.input_size, args.hidden_size,
                                                                          args.layers).values())
        numbers += args.steps * args.batch * args.input_size + 2 * args.layers * args.batch * args.hidden_size
        work = 4 * numbers * args.steps * args.layers  # four forward passes per number, one cell per step
        if work > FINITE_DIFFERENCE_LIMIT:
            raise UsageError(f"finite differences at these sizes would run {4 * numbers:,} forward passes of "
                             f"{args.steps} steps (about {work // 25_000} s): use smaller sizes, or "
                             "--no-finite-differences")
    comparison = compare(args.input_size, args.hidden_size, args.layers, args.steps, args.batch, args.seed,
                         include_scalar=args.scalar, include_finite_differences=args.finite,
                         tolerance=args.tolerance, finite_difference_tolerance=args.fd_tolerance,
                         eps=args.eps)
    print(comparison.to_markdown() if args.format == "markdown" else comparison)
    return 0 if comparison.passed else 1


# --- explain ------------------------------------------------------------------------------------------------

def run_explain(args: argparse.Namespace) -> int:
    if args.expression is None:
        check_scalar_size(args.input_size, args.hidden_size, args.layers, args.steps, args.batch,
                          instead="explain an expression")
        root = lstm_loss(True, args.input_size, args.hidden_size, args.layers, args.steps, args.batch,
                         args.seed)
    else:
        root = expression_value(args.expression, _assignments(args.values))
    try:
        text = explain(root, precision=args.precision, format=args.format)
    except ArithmeticError as error:  # a local derivative that a rule cannot compute at these values
        what = _quoted(args.expression) if args.expression is not None else "this LSTM"
        reason = "a number is too large for a float" if isinstance(error, OverflowError) else error
        raise UsageError(f"cannot differentiate {what} at these values: {reason}") from None
    print(text)
    return 0


def _assignments(pairs: Sequence[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for pair in pairs:
        name, equals, number = (part.strip() for part in pair.partition("="))
        try:
            value = float(number)
        except ValueError:
            equals = ""
        if not equals or not name.isidentifier():
            raise UsageError(f"expected NAME=VALUE with a number, got {_quoted(pair)}")
        if name in values:
            raise UsageError(f"{name} is given twice")
        values[name] = value
    return values


def _quoted(text: str, limit: int = 60) -> str:
    """``text`` in quotes for an error message, shortened in the middle when long."""
    return repr(text if len(text) <= limit else f"{text[:limit // 2]} ... {text[-limit // 2:]}")


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}
_FUNCTIONS = ("tanh", "sigmoid", "exp", "log", "relu", "sqrt", "abs")


def expression_value(text: str, values: dict[str, float]) -> Value:
    """Evaluate a small arithmetic expression on Values named after its variables; the root is named L.

    Only numbers, names, + - * / ** and calls of the functions in ``_FUNCTIONS`` are allowed: the text is
    parsed, never executed.
    """
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        hint = " (the expression comes first, then NAME=VALUE)" if "=" in text else ""
        raise UsageError(f"cannot read the expression {_quoted(text)}: {error.msg}{hint}") from None
    except RecursionError:  # Python's parser stops at a depth of some thousands (a sum of 5,000 terms)
        raise UsageError(f"the expression {_quoted(text)} is nested too deeply for Python's parser: use "
                         "fewer terms or parentheses") from None
    except ValueError as error:  # e.g. a NUL character
        raise UsageError(f"cannot read the expression {_quoted(text)}: {error}") from None
    leaves = {name: Value(number, label=name) for name, number in values.items()}

    def operands(node: ast.AST) -> list[ast.AST]:
        """The parts ``node`` is computed from; UsageError for anything but the little language above."""
        if isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and type(node.value) in (int, float)):
            return []
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return [node.operand]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and len(node.args) == 1 and not node.keywords):
            return [node.args[0]]
        part = ast.get_source_segment(text, node) or type(node).__name__
        raise UsageError(f"cannot explain {_quoted(part)}: use numbers, names, + - * / ** and "
                         f"{', '.join(_FUNCTIONS)}")

    def apply(node: ast.AST, arguments: list[Any]) -> Any:
        if isinstance(node, ast.Constant):
            return float(node.value)  # a float overflows where an int would grow without end: 9**9**9
        if isinstance(node, ast.Name):
            if node.id not in leaves:
                raise UsageError(f"{node.id!r} has no value: add {node.id}=NUMBER after the expression")
            return leaves[node.id]
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](*arguments)
        if isinstance(node, ast.UnaryOp):
            return -arguments[0] if isinstance(node.op, ast.USub) else arguments[0]
        argument = arguments[0]
        return getattr(argument if isinstance(argument, Value) else Value(argument), node.func.id)()

    def evaluate(tree: ast.AST) -> Any:
        """Children before parents, left to right, on a stack of our own: a sum of thousands of terms nests
        thousands deep, past Python's recursion limit."""
        results: list[Any] = []
        pending: list[tuple[ast.AST, bool]] = [(tree, False)]
        while pending:
            node, ready = pending.pop()
            parts = operands(node)
            if not ready:
                pending.append((node, True))
                pending.extend((part, False) for part in reversed(parts))
                continue
            first = len(results) - len(parts)
            arguments = results[first:]
            del results[first:]
            results.append(apply(node, arguments))
        return results[0]

    unused = sorted(set(values) - {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    if unused:
        raise UsageError(f"{', '.join(unused)} not in the expression {_quoted(text)}")
    try:
        with detect_anomaly():  # the engine computes log(-1) as nan: here it is a mistake to report
            root = evaluate(tree)
    except (ValueError, ArithmeticError) as error:
        raise UsageError(f"cannot evaluate {_quoted(text)}: {error}") from None
    if not isinstance(root, Value) or not leaves:
        raise UsageError(f"the expression {_quoted(text)} has no variables to differentiate by, e.g. 'a*b' a=2 "
                         "b=3")
    root.label = root.label or "L"
    return root


# --- train --------------------------------------------------------------------------------------------------

def run_train(args: argparse.Namespace) -> int:
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other")
    if args.override_config and not args.resume:
        raise UsageError("--override-config only applies with --resume: a fresh run takes the settings given")
    out = Path(args.out)
    checkpoint = Path(args.checkpoint) if args.checkpoint else out / "checkpoint.npz"
    config, done = _train_config(args, checkpoint)
    vocab, _, _ = prepare_data(config)
    # Everything that can be found wrong is found now, not after minutes of training.
    estimate = check_run_size(config, vocab.size)
    check_sample_size(args.sample_length)
    if not args.prompt:
        raise UsageError("--prompt must not be empty: the model needs at least one character to go on from")
    unknown = sorted(set(args.prompt) - set(vocab.chars))
    if unknown:
        raise UsageError(f"the prompt has characters the corpus does not: {''.join(unknown)!r}")
    if checkpoint.is_dir():
        raise UsageError(f"the checkpoint path {checkpoint} is a directory")
    if checkpoint.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"{checkpoint} already exists: go on with it (--resume), replace it (--overwrite), or "
                         "choose another --out or --checkpoint")
    for directory in {out, checkpoint.parent}:
        _check_writable(directory)
    training = estimate.step_seconds * max(config.steps - done, 0)
    if training > WARN_SECONDS:
        _warn(f"{config.steps - done:,} steps will take about {duration(training)} (about "
              f"{duration(estimate.step_seconds)} each); Ctrl-C or SIGTERM stops after a step and saves")
    sampling = estimate.sample_seconds * args.sample_length
    if sampling > WARN_SECONDS:
        _warn(f"a sample of {args.sample_length:,} characters will take about {duration(sampling)} after training")

    started = time.perf_counter()
    result = train(config, resume=args.resume, overwrite=args.overwrite, override_config=args.override_config)
    wall_time = time.perf_counter() - started
    if result.stopped_by is not None:
        where = f"--out {shlex.quote(str(out))}" + (f" --checkpoint {shlex.quote(str(checkpoint))}"
                                                     if args.checkpoint else "")
        print(f"stopped at step {result.step}; go on with: {PROG} train --resume {where}")
        return 128 + result.stopped_by

    recent = result.history.train_loss[-config.eval_interval:]
    gain = result.unigram_loss - result.val_loss
    verdict = (f"{gain:.3f} below it: that much the model learned from context" if gain > 0
               else "not below it yet: the model has learned less than the character frequencies")
    print(f"\nafter {result.step} steps: validation loss {result.val_loss:.3f} nats per character (training "
          f"{np.mean(recent):.3f}, mean of the last {len(recent)} batches); unigram baseline "
          f"{result.unigram_loss:.3f}, {verdict}")
    if result.chars_per_second:
        print(f"training speed {result.chars_per_second:,.0f} characters per second; wall time "
              f"{wall_time:.1f} s")
    written = [checkpoint]
    if can_plot():
        written.append(result.plot(out / "loss.png"))
    text = args.prompt + sample(result.model, result.vocab, args.prompt, args.sample_length, args.temperature,
                                np.random.default_rng(config.seed))
    written.append(write_atomically(out / "sample.txt", lambda file: file.write(text.encode() + b"\n")))
    print(f"\nSample (temperature {args.temperature:g}):\n\n{text}\n")
    print("Files:\n" + "\n".join(f"  {path}" for path in written))
    return 0


def _train_config(args: argparse.Namespace, checkpoint: Path) -> tuple[TrainConfig, int]:
    """The flags given, over the checkpoint's settings when resuming, over the defaults; and the step the
    checkpoint has reached (0 for a fresh run)."""
    flags = {field.name: getattr(args, field.name, None) for field in dataclasses.fields(TrainConfig)
             if field.name != "checkpoint"}
    given = {name: value for name, value in flags.items() if value is not None}
    if not args.resume:
        return TrainConfig(**given, checkpoint=str(checkpoint)), 0
    saved = load_checkpoint(checkpoint, checkpoint_layout)  # its configuration is checked there
    return TrainConfig.from_dict({**saved.config, **given, "checkpoint": str(checkpoint)}), saved.step


def _check_writable(directory: Path) -> None:
    """Create ``directory`` and make sure a file can be written in it; OSError (naming it) if not."""
    make_directories(directory)
    with tempfile.TemporaryFile(dir=directory):
        pass


def can_plot() -> bool:
    """Whether matplotlib (an optional dependency) is installed; says what is missing when it is not."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    print("   (matplotlib is not installed, so no plot: pip install 'backprop-lens[plot]')")
    return False
