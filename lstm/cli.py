"""The ``backprop-lens`` command (also ``python -m lstm``): demo, graph, compare, explain, train and exercise.

The command line parses, calls the library and prints: the LSTMs it builds and what they cost come from
`lstm.demo`, expressions from `lstm.expression`, training and every check of it from `lstm.training`. One name per
quantity, as in the library: ``--seq-len`` is time steps (every command), ``--steps`` optimizer steps (``train``).

Every subcommand has ``--help``. A problem is said in one line, ``backprop-lens: error: ...``, never as a
traceback. Exit statuses: 0 done; 1 a check of ``compare`` (or ``demo``) failed, a file could not be written,
Graphviz is missing or failed, or a training run diverged; 2 a request that cannot be carried out as asked: a bad
argument, a path of the wrong kind (under a regular file, or a directory), sizes too large (refused from an
estimate, before anything is built), a missing, damaged or mismatched checkpoint; 130 or 143 a ``train`` stopped
by SIGINT (Ctrl-C) or SIGTERM, after saving its checkpoint; 141 the reader of the output went away (``| head``),
as Unix tools do. Every file is written atomically: it appears complete, or the old one stays; a device or FIFO
given as a path is written to, never replaced.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import math
import os
import re
import shlex
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import lstm
from autograd.files import make_directories, write_atomically
from autograd.view.boxes import AUTO_SHAPES, GraphTooLargeError
from autograd.view.dot import MOST_DIGITS
from autograd.view.draw import draw
from autograd.view.explain import explain
from autograd.view.notation import FLOAT_DIGITS
from autograd.view.page import PageTooLargeError
from autograd.view.rendering import (
    DOT_TIMEOUT,
    FORMATS,
    GraphvizError,
    GraphvizNotFoundError,
    GraphvizNotRunnableError,
    GraphvizTimeout,
    GraphvizWarning,
    render,
)
from lstm.checks.compare import compare
from lstm.checks.flow import plot_flows
from lstm.demo import (
    DEMO_FLOW,
    DEMO_SCALAR,
    DEMO_TENSOR,
    SizeError,
    Sizes,
    check_comparison,
    check_drawing,
    check_explanation,
    describe_stages,
    gradient_flows,
    lstm_loss,
    names_a_stage,
    stage_paths,
)
from lstm.expression import FUNCTIONS, PAIR_FUNCTIONS, ExpressionError, assignments, expression_value, quoted
from lstm.training import (
    DTYPES,
    MODELS,
    ConfigError,
    TrainConfig,
    TrainingDiverged,
    check_prompt,
    check_sample_size,
    check_writable,
    duration,
    prepare_run,
    sample,
)
from lstm.training.checkpoint import CheckpointError
from lstm.training.data import DEFAULT_CORPUS, available_corpora

PROG = "backprop-lens"
WARN_SECONDS = {"train": 3600, "compare": 60}  # work estimated to take longer is announced, with the estimate
TIME_STEPS = "--seq-len"
STANDARD_OUTPUT = ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


class UsageError(Exception):
    """A request that cannot be carried out as asked; reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line on stderr (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(_fail(f"{message} (see {self.prog} --help)", 2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    try:
        if signal.getsignal(signal.SIGINT) is lstm._interrupted_while_starting:  # (a no-op if imported as a library)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on: KeyboardInterrupt, below
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit:  # --help, or a bad argument already reported
            return exit.code if isinstance(exit.code, int) else 2
    except KeyboardInterrupt:
        return _interrupted()
    try:
        # Numbers that leave the floats show as inf or nan in what a command prints, or end it with one line (a
        # diverged run, a failed check); numpy's warnings about them would be lines of another kind.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            status = args.run(args)
        sys.stdout.flush()  # here, so that a reader that went away is noticed while it can still be handled
        return status
    except BrokenPipeError as error:
        if error.filename is not None:  # a FIFO given as an output, not our standard output
            return _fail(_with_path(error), 1)
        return _quiet_after_broken_pipe()
    except (UsageError, SizeError, ExpressionError, CheckpointError, ConfigError) as error:
        return _fail(error, 2)
    except (NotADirectoryError, IsADirectoryError) as error:  # a path of the wrong kind: the user's to change
        return _fail(_with_path(error), 2)
    except (GraphvizNotFoundError, GraphvizError, TrainingDiverged) as error:
        return _fail(error, 1)
    except OSError as error:  # a file that cannot be written: no permission, a full disk
        return _fail(_with_path(error), 1)
    except MemoryError:
        return _fail("out of memory: use smaller sizes", 1)
    except KeyboardInterrupt:
        return _interrupted()


def _interrupted() -> int:
    print(f"{PROG}: interrupted", file=sys.stderr)
    return 130


def _fail(error: Any, status: int) -> int:
    message = " ".join(str(error).split())  # one line, whatever the message
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _with_path(error: OSError) -> str:
    return f"{error.filename}: {error.strerror or error}" if error.filename else str(error)


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
                     "you can see, and an LSTM built on it. Each command has --help.")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        return sub

    demo = command("demo", run_demo, "Draw a tiny LSTM's forward and backward graphs, check its gradients "
                   "four ways and measure the gradient flow through time.")
    demo.add_argument("--out", default="out/demo", metavar="DIR", help=_default("directory for the files"))
    demo.add_argument("--seed", type=_non_negative_int, default=0, metavar="N",
                      help=_default("seed of weights and inputs"))

    graph = command("graph", run_graph, "Draw an LSTM's computation graph for L = the sum of its last "
                    "output: forward (values) or backward (gradients on every edge).")
    kind = _add_lstm_sizes(graph, Sizes(1, 1, 1, 2, 1)).add_mutually_exclusive_group()
    kind.add_argument("--scalar", dest="scalar", action="store_true", default=True,
                      help="a ScalarLSTM: one node per number (the default)")
    kind.add_argument("--tensor", dest="scalar", action="store_false", help="an LSTM of Tensors: one node per array")
    drawing = graph.add_argument_group("drawing")
    drawing.add_argument("--view", choices=("forward", "backward"), default="forward",
                         help=_default("values, or gradients on every edge"))
    drawing.add_argument("--collapse", default="auto", metavar="PATTERN",
                         help=_default("draw the stages matching PATTERN (e.g. 't=*') as boxes; 'auto' boxes all "
                                       f"time steps but the last in graphs of over {AUTO_SHAPES} shapes; 'none' "
                                       "draws every node"))
    drawing.add_argument("--keep", metavar="PATTERN", help="stages to draw in full although --collapse matches")
    drawing.add_argument("--roll-up", action="store_true",
                         help="draw a run of repeated stages (t=1, t=2, ...) as one box marked with its count")
    drawing.add_argument("--precision", type=_digits(MOST_DIGITS), default=3, metavar="N",
                         help=_default(f"significant digits shown, 1 to {MOST_DIGITS}"))
    drawing.add_argument("--max-nodes", type=_positive_int, default=2000, metavar="N",
                         help=_default("refuse drawings of more shapes than this"))
    drawing.add_argument("--format", choices=("png", "svg", "pdf", "dot", "html"),
                         help="image format (default: from the --output suffix, else png); dot needs no Graphviz; "
                              "html: an interactive page in one file")
    drawing.add_argument("--output", metavar="PATH", help="file to write (default: out/graph_VIEW.FORMAT)")
    drawing.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                         help=f"stop Graphviz's dot after this long; inf: never (default: {DOT_TIMEOUT:g})")

    check = command("compare", run_compare, "Compare an LSTM's gradients from the engine (Tensor and "
                    "scalar) and finite differences with the hand derivation; exit status 1 if a check "
                    "fails.")
    _add_lstm_sizes(check, Sizes(3, 4, 1, 5, 2))
    checks = check.add_argument_group("checks")
    checks.add_argument("--tolerance", type=_positive_float, default=1e-9, metavar="X",
                        help=_default("tolerance for the engine's gradients"))
    checks.add_argument("--fd-tolerance", type=_positive_float, default=1e-9, metavar="X",
                        help=_default("tolerance for finite differences"))
    checks.add_argument("--eps", type=_positive_float, default=1e-3, metavar="X",
                        help=_default("finite-difference step (of a five-point stencil)"))
    checks.add_argument("--no-scalar", dest="scalar", action="store_false", help="leave out the ScalarLSTM")
    checks.add_argument("--no-finite-differences", dest="finite", action="store_false",
                        help="leave out finite differences")
    check.add_argument("--format", choices=("text", "markdown"), default="text",
                       help=_default("how the table is written"))

    why = command("explain", run_explain, "Write out the chain rule, node by node, for a small expression "
                  "(e.g. 'tanh(a*b + c)' a=2 b=-3 c=1) or, without one, for a tiny ScalarLSTM.")
    why.add_argument("expression", nargs="?",
                     help=f"numbers, names, + - * / ** and the functions {', '.join(FUNCTIONS)} and "
                          f"{', '.join(f'{name}(a, b)' for name in PAIR_FUNCTIONS)}")
    why.add_argument("values", nargs="*", metavar="NAME=VALUE", help="a value for each name in it")
    why.add_argument("--format", choices=("text", "markdown", "latex"), default="text",
                     help=_default("how the derivation is written"))
    why.add_argument("--precision", type=_digits(FLOAT_DIGITS), default=4, metavar="N",
                     help=_default(f"significant digits shown, 1 to {FLOAT_DIGITS} (a float has no more)"))
    _add_lstm_sizes(why, Sizes(1, 1, 1, 1, 1), "LSTM (without an expression)")

    learn = command("train", run_train, "Train a character-level LSTM (or GRU, RNN) language model on a text "
                    "and measure it against the unigram baseline; writes a checkpoint, the loss curve and a "
                    "sample. Ctrl-C (SIGINT) or SIGTERM stops after the current step and saves (exit status "
                    "130 or 143); after SIGKILL, --resume goes on from the last checkpoint.")
    _add_train_config(learn)
    files = learn.add_argument_group("files and resuming")
    files.add_argument("--out", default="out/train", metavar="DIR", help=_default("directory for the files"))
    files.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default: OUT/checkpoint.npz)")
    files.add_argument("--resume", action="store_true",
                       help="go on with the run saved in the checkpoint, with its settings; settings given here "
                            "must agree with them")
    files.add_argument("--override-config", action="store_true",
                       help="with --resume: go on with the settings given here where they differ from the "
                            f"checkpoint's ({', '.join(_adjustable_flags())}); "
                            "sizes, --dtype and --corpus cannot change")
    files.add_argument("--overwrite", action="store_true", help="start afresh, replacing the checkpoint")
    sampling = learn.add_argument_group("sample")
    sampling.add_argument("--prompt", default="LOVE, n. ", help=_default("text the sample starts from"))
    sampling.add_argument("--sample-length", type=_non_negative_int, default=400, metavar="N",
                          help=_default("characters to sample"))
    sampling.add_argument("--temperature", type=_non_negative_float, default=0.8, metavar="X",
                          help=_default("sampling temperature; 0 always takes the likeliest character"))
    _add_exercise(command)
    return parser


def _default(text: str) -> str:
    return f"{text} (default: %(default)s)".lstrip()


class _Renamed(argparse.Action):
    """A flag that means something else in another command: refused with the flag to use here (``--steps``
    counts optimizer steps in ``train``; time steps are ``--seq-len`` everywhere)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs="?", help=argparse.SUPPRESS)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string} counts optimizer steps (in train); time steps are {TIME_STEPS}")


_SIZE_FLAGS = {"input_size": ("--input-size", "features per step"), "hidden_size": ("--hidden-size", "hidden units"),
               "num_layers": ("--layers", "layers"), "seq_len": (TIME_STEPS, "time steps"),
               "batch_size": ("--batch-size", "sequences")}


def _add_lstm_sizes(parser: argparse.ArgumentParser, default: Sizes, title: str = "LSTM") -> Any:
    """The flags of `lstm.demo.Sizes` (and --seed), with ``default``'s values; returns their group."""
    sizes = parser.add_argument_group(title)
    for field, (flag, text) in _SIZE_FLAGS.items():
        sizes.add_argument(flag, dest=field, type=_positive_int, default=getattr(default, field), metavar="N",
                           help=_default(text))
    sizes.add_argument("--seed", type=_non_negative_int, default=0, metavar="N",
                       help=_default("seed of weights and inputs"))
    sizes.add_argument("--steps", action=_Renamed)
    return sizes


def _sizes(args: argparse.Namespace) -> Sizes:
    return Sizes(**{field: getattr(args, field) for field in _SIZE_FLAGS})


def _add_train_config(parser: argparse.ArgumentParser) -> None:
    """The TrainConfig flags. They default to None, so that a resumed run can tell what was given."""
    default = TrainConfig()
    config = parser.add_argument_group("model and training")
    for flag, kind, text in _CONFIG_FLAGS:
        field = _config_field(flag)
        config.add_argument(flag, dest=field, type=kind, metavar="N" if kind is not _positive_float else "X",
                            help=f"{text} (default: {getattr(default, field)})")
    config.add_argument("--dtype", choices=DTYPES, help=f"float type (default: {default.dtype})")
    config.add_argument("--corpus", metavar="NAME|PATH",
                        help=f"a shipped text ({', '.join(available_corpora())}) or the path of a UTF-8 text file "
                             f"(default: {DEFAULT_CORPUS})")
    config.add_argument("--model", choices=tuple(MODELS), help=f"the recurrent layer (default: {default.model})")


def _config_field(flag: str) -> str:
    return "num_layers" if flag == "--layers" else flag[2:].replace("-", "_")


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


def _digits(most: int) -> Callable[[str], int]:
    """A number of significant digits, 1 to ``most`` (what the library allows: one place says it)."""
    return _number(_integer, lambda n: 1 <= n <= most, f"a number of significant digits from 1 to {most}")


_positive_int = _number(_integer, lambda n: n > 0, "a positive integer")
_non_negative_int = _number(_integer, lambda n: n >= 0, "a non-negative integer")
_positive_float = _number(float, lambda x: math.isfinite(x) and x > 0, "a positive number")
_non_negative_float = _number(float, lambda x: math.isfinite(x) and x >= 0, "a non-negative number")
_seconds = _number(float, lambda x: x > 0, "a positive number of seconds (inf for no limit)")

_CONFIG_FLAGS = (("--hidden-size", _positive_int, "LSTM hidden units"),
                 ("--layers", _positive_int, "stacked LSTM layers"),
                 ("--embedding-size", _positive_int, "character embedding width"),
                 (TIME_STEPS, _positive_int, "time steps: characters per training sequence"),
                 ("--batch-size", _positive_int, "sequences per step"),
                 ("--steps", _positive_int, "optimizer steps (updates) in all, resumed ones included"),
                 ("--lr", _positive_float, "Adam's learning rate"),
                 ("--clip-norm", _positive_float, "clip gradients to this global norm"),
                 ("--seed", _non_negative_int, "seed of the weights and the batches"),
                 ("--eval-interval", _positive_int, "steps between validations and checkpoints"))


# --- demo ---------------------------------------------------------------------------------------------------

def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    make_directories(out)
    written: list[Path] = []

    print(f"1. A ScalarLSTM ({DEMO_SCALAR}): every number is a node; L = the sum of the last output.\n"
          "   The first step is drawn as a box, the last in full.")
    scalar_loss = lstm_loss(DEMO_SCALAR, args.seed, scalar=True)
    for view in ("forward", "backward"):
        written += save_drawing(draw(scalar_loss, view), out / f"scalar_{view}", ("png", "svg"))

    print(f"2. The Tensor LSTM ({DEMO_TENSOR}): every step but the last as a box.")
    tensor_loss = lstm_loss(DEMO_TENSOR, args.seed)
    for view in ("forward", "backward"):
        written += save_drawing(draw(tensor_loss, view), out / f"lstm_{view}", ("png", "svg"))

    print("\n3. The same gradients four ways:\n")
    comparison = compare(seed=args.seed)
    print(comparison)

    print(f"\n4. How far the gradient reaches back in time (LSTM, {DEMO_FLOW}):\n")
    flows = gradient_flows(DEMO_FLOW, args.seed)
    print(flows["LSTM"])
    if can_plot():
        written.append(out / "gradient_flow.png")
        plot_flows(flows, written[-1])
        print(f"   {written[-1].resolve()} sets it beside a plain RNN's, and an LSTM's whose forget gates start open")

    print("\nFiles:")
    for path in written:  # absolute: `bash .ci/setup` runs the demo from the project's folder, not the user's
        print(f"  {path.resolve()}")
    return 0 if comparison.passed else 1


# --- graph --------------------------------------------------------------------------------------------------

def run_graph(args: argparse.Namespace) -> int:
    path, fmt = _graph_output(args.output, args.format, args.view)
    sizes = _sizes(args)
    check_drawing(sizes, args.scalar, roll_up=args.roll_up, max_nodes=args.max_nodes)
    loss = lstm_loss(sizes, args.seed, scalar=args.scalar)
    collapse = None if args.collapse == "none" else args.collapse
    stages = stage_paths(loss)
    for flag, pattern in (("--collapse", collapse), ("--keep", args.keep)):
        if pattern not in (None, "auto") and not names_a_stage(pattern, stages):
            raise UsageError(f"{flag} {pattern!r} matches no stage of this graph; its stages are "
                             f"{describe_stages(stages)}")
    try:
        drawing = draw(loss, args.view, collapse=collapse, keep=args.keep, roll_up=args.roll_up,
                       max_nodes=args.max_nodes, precision=args.precision)
    except GraphTooLargeError as error:
        raise UsageError(f"{error} On the command line: --collapse PATTERN, --keep PATTERN, --roll-up or "
                         "--max-nodes N.") from None
    try:
        written = render_to(drawing, path, fmt, timeout=args.timeout)
        if str(written) not in STANDARD_OUTPUT:  # the picture itself went there: no name after it
            print(written)
    except PageTooLargeError as error:
        raise UsageError(f"{error} On the command line: --collapse PATTERN or --roll-up, or smaller sizes.") from None
    except GraphvizNotRunnableError:
        raise  # it says what is wrong with the `dot` on PATH
    except GraphvizNotFoundError:
        raise GraphvizNotFoundError(f"Graphviz's `dot` program draws {fmt.upper()}, and it is not installed "
                                    "(sudo apt-get install graphviz, or bash .ci/setup); the DOT source needs "
                                    f"no `dot`: --output {path.with_suffix('.gv')}") from None
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
        raise UsageError(f"cannot tell the format of {output!r}: end it in .png, .svg, .pdf, .gv or .html, "
                         "or give --format")
    if fmt is not None and implied is not None and implied != fmt:
        raise UsageError(f"--output {output!r} does not match --format {fmt}")
    if implied is None and not (path.is_symlink() or path.exists() and not path.is_file()):
        # a new file gets the format's suffix; what is there already is written as named: /dev/stdout (a link
        # to the output, whatever it is), a FIFO, a device
        path = path.with_name(f"{path.name}.{extension.get(fmt, fmt)}")
    return path, fmt or implied


def render_to(drawing: Any, path: Path, fmt: str, timeout: float | None = None) -> Path:
    """`autograd.view.rendering.render`, with an OSError that names ``path`` rather than its temporary file, the
    command line's advice when ``dot`` fails, and its warnings on one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GraphvizWarning)
        try:
            return render(drawing, path, fmt, timeout=timeout)
        except OSError as error:
            raise type(error)(error.errno, error.strerror or str(error), str(path)) from None
        except GraphvizError as error:
            longer = "; or allow it longer with --timeout SECONDS" if isinstance(error, GraphvizTimeout) else ""
            raise type(error)(f"Graphviz's dot could not draw {path} ({error.reason}): draw fewer shapes with "
                              f"--collapse 't=*' (or --roll-up), or the Tensor LSTM with --tensor{longer}",
                              error.reason) from None
        finally:
            for warning in caught:
                _warn(as_flags(" ".join(str(warning.message).split())))


def as_flags(message: str) -> str:
    """A library message's ``draw(root, 'backward', collapse='t=*')`` as this command line's ``--collapse 't=*'``
    (the view is the one asked for already)."""
    def flags(found: Any) -> str:
        return f"--collapse {shlex.quote(ast.literal_eval(found[1]))}"
    return re.sub(r"draw\(root, '\w+', collapse=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)", flags, message)


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
    sizes = _sizes(args)
    cost = check_comparison(sizes, scalar=args.scalar, finite_differences=args.finite)
    if cost.seconds > WARN_SECONDS["compare"]:
        _warn(f"comparing the gradients at these sizes takes {cost}")
    comparison = compare(**dataclasses.asdict(sizes), seed=args.seed, include_scalar=args.scalar,
                         include_finite_differences=args.finite, tolerance=args.tolerance,
                         finite_difference_tolerance=args.fd_tolerance, eps=args.eps)
    print(comparison.to_markdown() if args.format == "markdown" else comparison)
    return 0 if comparison.passed else 1


# --- explain ------------------------------------------------------------------------------------------------

def run_explain(args: argparse.Namespace) -> int:
    if args.expression is None:
        sizes = _sizes(args)
        check_explanation(sizes)
        root = lstm_loss(sizes, args.seed, scalar=True)
    else:
        root = expression_value(args.expression, assignments(args.values))
    try:
        text = explain(root, precision=args.precision, format=args.format)
    except ArithmeticError as error:  # a local derivative that a rule cannot compute at these values
        what = quoted(args.expression) if args.expression is not None else "this LSTM"
        reason = "a number is too large for a float" if isinstance(error, OverflowError) else error
        raise UsageError(f"cannot differentiate {what} at these values: {reason}") from None
    print(text)
    return 0


# --- train --------------------------------------------------------------------------------------------------

def run_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    checkpoint = Path(args.checkpoint) if args.checkpoint else out / "checkpoint.npz"
    # The flags given, over the checkpoint's settings when resuming, over the defaults.
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)
             if getattr(args, field.name, None) is not None}
    run = prepare_run({**given, "checkpoint": str(checkpoint)}, resume=args.resume, overwrite=args.overwrite,
                      override_config=args.override_config)
    # Everything that can be found wrong is found now, not after minutes of training.
    check_sample_size(args.sample_length)
    check_prompt(run.vocab, args.prompt)
    check_writable(out)
    training = run.estimate.step_seconds * run.steps_left
    if training > WARN_SECONDS["train"]:
        _warn(f"{run.steps_left:,} steps will take about {duration(training)} (about "
              f"{duration(run.estimate.step_seconds)} each); Ctrl-C or SIGTERM stops after a step and saves")
    sampling = run.estimate.sample_seconds * args.sample_length
    if sampling > WARN_SECONDS["train"]:
        _warn(f"a sample of {args.sample_length:,} characters will take about {duration(sampling)} after training")

    started = time.perf_counter()
    result = run.train()
    wall_time = time.perf_counter() - started
    if result.stopped_by is not None:
        where = f"--out {shlex.quote(str(out))}" + (f" --checkpoint {shlex.quote(str(checkpoint))}"
                                                     if args.checkpoint else "")
        print(f"stopped at step {result.step}; go on with: {PROG} train --resume {where}")
        return 128 + result.stopped_by

    recent = result.history.train_loss[-run.config.eval_interval:]
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
                                np.random.default_rng(run.config.seed))
    written.append(write_atomically(out / "sample.txt", lambda file: file.write(text.encode() + b"\n")))
    print(f"\nSample (temperature {args.temperature:g}):\n\n{text}\n")
    print("Files:\n" + "\n".join(f"  {path}" for path in written))
    return 0


def can_plot() -> bool:
    """Whether matplotlib (an optional dependency) is installed; says what is missing when it is not."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    print("   (matplotlib is not installed, so no plot: pip install 'backprop-lens[plot]')")
    return False


# --- exercise ----------------------------------------------------------------------------------------------

def _add_exercise(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The ``exercise`` command: an `autograd.exercise` printed, with its worksheet or solution on request."""
    from autograd.exercise import KINDS, PROVIDED_BY

    task = command("exercise", run_exercise, "Print a backpropagation exercise (a small graph, its forward "
                   "values and the gradients to fill in); write it as a notebook to hand out, or show its solution.")
    task.add_argument("--kind", choices=sorted({*KINDS, *PROVIDED_BY}), default="expression",
                      help=_default("the graph"))
    task.add_argument("--seed", type=_non_negative_int, default=0, metavar="N",
                      help=_default("the same seed gives the same exercise"))
    task.add_argument("--worksheet", metavar="PATH", help="write the exercise as a Jupyter notebook (.ipynb), "
                      "without its answers")
    task.add_argument("--solution", action="store_true", help="print the worked derivation too")


def run_exercise(args: argparse.Namespace) -> int:
    from autograd.exercise import exercise

    if args.worksheet is not None and not args.worksheet.endswith(".ipynb"):
        raise UsageError(f"--worksheet: the path must end in .ipynb, got {args.worksheet!r}")
    task = exercise(args.kind, seed=args.seed)
    print(task)
    if args.solution:
        print()
        print(task.solution())
    if args.worksheet is not None:
        make_directories(Path(args.worksheet).parent or Path("."))
        print(f"wrote {task.worksheet(args.worksheet)}")
    return 0
