"""The command line, run as users run it: ``python -m lstm ...`` in a subprocess, in a scratch directory.

Every subcommand, its ``--help``, bad arguments (one line on stderr, exit status 2), damaged, hostile or
mismatched checkpoints, unwritable outputs, sizes that cannot fit, a reader that goes away, and training runs
stopped with SIGINT, SIGTERM and SIGKILL (the last two in the middle of writing a checkpoint) and resumed.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import lstm.cli
import lstm.demo
import lstm.training.run
from autograd import Value
from lstm.cli import main
from lstm.training.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
# A model and run small enough that a training subprocess takes a second or two.
TINY = ["--hidden-size", "8", "--embedding-size", "4", "--seq-len", "8", "--batch-size", "4", "--lr", "0.01",
        "--eval-interval", "5", "--sample-length", "30"]
TIMEOUT = 120  # seconds; far above the few each command takes, so only a hang trips it


def environment() -> dict[str, str]:
    """The package importable from any directory, output unbuffered (so a test can read it as it comes), and
    BLAS on one thread: its threads spin on a core that another process is using, and slow it severalfold."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lstm", *args], cwd=cwd, env=environment(),
                          capture_output=True, text=True, timeout=TIMEOUT)


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, *fragments: str) -> None:
    """The failure a user should see: the status, and one line on stderr that says what is wrong."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("backprop-lens: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def is_svg(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"<?xml") and b"<svg" in data[:1000]


def only_files(directory: Path) -> list[str]:
    """The names in ``directory``: no temporary file may be left behind by an atomic write."""
    return sorted(path.name for path in directory.iterdir())


# --- help and bad arguments --------------------------------------------------------------------------------

COMMANDS = ["demo", "graph", "compare", "explain", "train", "exercise"]


def test_the_help_lists_every_command(tmp_path):
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert re.findall(r"^    (\w+)  ", result.stdout, flags=re.MULTILINE) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(tmp_path, command):
    result = cli(command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"usage: backprop-lens {command} ")
    assert only_files(tmp_path) == []  # --help writes nothing


@pytest.mark.parametrize("args, fragment", [
    ([], "required: COMMAND"),
    (["draw"], "invalid choice: 'draw'"),
    (["graph", "--seq-len", "0"], "--seq-len: must be a positive integer, got '0'"),
    (["graph", "--view", "sideways"], "--view: invalid choice"),
    (["graph", "--output", "graph.txt"], "cannot tell the format"),
    (["graph", "--output", "graph.svg", "--format", "png"], "does not match --format png"),
    (["graph", "--hidden-size", "200", "--seq-len", "20"], "use smaller sizes, or the Tensor LSTM (--tensor)"),
    (["graph", "--tensor", "--seq-len", "40", "--collapse", "none", "--max-nodes", "50"], "--max-nodes"),
    (["compare", "--tolerance", "-1"], "--tolerance: must be a positive number"),
    (["compare", "--hidden-size", "64", "--seq-len", "50", "--no-scalar"], "(--no-finite-differences)"),
    (["explain", "a*b", "a=2"], "'b' has no value"),
    (["explain", "a*", "a=2"], "cannot read the expression"),
    (["explain", "a*b", "a=2", "b=x"], "expected NAME=VALUE"),
    (["explain", "__import__('os')"], "cannot explain"),
    (["explain", "log(a)", "a=-1"], "cannot evaluate"),
    (["train", "--lr", "nan"], "--lr: must be a positive number, got 'nan'"),
    (["train", "--resume", "--overwrite"], "contradict"),
    (["train", "--prompt", "\u2603"], "characters the corpus does not"),
    (["train", "--seq-len", "1000000"], "seq_len=1000000 does not fit"),
    (["train", "--resume"], "no checkpoint at out/train/checkpoint.npz"),
    (["train", "--steps", "1.5"], "--steps: must be a positive integer, got '1.5'"),
    (["train", "--steps", "99999999999999999999"], "for the loss curve of 99,999,999,999,999,999,999 steps"),
    (["train", "--override-config"], "only applies when resuming (--override-config with --resume)"),
    (["explain", "a**10000000000", "a=2"], "cannot evaluate 'a**10000000000': pow(a=2.0, 10000000000.0) produced "
                                           "inf"),
    (["explain", "+".join(["a"] * 20_000), "a=1"], "is nested too deeply for Python's parser"),
    (["explain", "--hidden-size", "1000"], "use smaller sizes, or explain an expression"),
    # issue 13, item 6: refused in one line, from what was given, before anything is built
    (["graph", "--seq-len", "99999999999999999999"], "the graph of a ScalarLSTM of these sizes would take about "
                                                     "3.4e+21 nodes"),
    (["graph", "--tensor", "--seq-len", "100000"], "about 1,600,014 nodes"),
    (["graph", "--tensor", "--seq-len", "2500"], "roll the steps up into one box (--roll-up)"),
    (["compare", "--no-scalar", "--no-finite-differences", "--seq-len", "1e20"], "comparing the gradients"),
    (["compare", "--no-scalar", "--no-finite-differences", "--hidden-size", "1e99", "--layers", "1e99",
      "--batch-size", "1e99"], "PB of memory and forever; this process may use"),
    (["explain", "--seq-len", "1e20"], "or explain an expression"),
    (["graph", "--precision", "16"], "--precision: must be a number of significant digits from 1 to 15, got '16'"),
    (["explain", "a", "a=1", "--precision", "18"], "from 1 to 17, got '18'"),
    (["graph", "--collapse", "t=9"], "--collapse 't=9' matches no stage of this graph; its stages are t=1 … t=2, "),
    (["graph", "--keep", "layer 5"], "--keep 'layer 5' matches no stage"),
    # item 7: --steps counts optimizer steps, in train; time steps are --seq-len everywhere
    (["graph", "--steps", "5"], "--steps counts optimizer steps (in train); time steps are --seq-len"),
    (["compare", "--steps"], "--steps counts optimizer steps (in train); time steps are --seq-len"),
    (["explain", "--steps", "3"], "--steps counts optimizer steps (in train); time steps are --seq-len"),
])
def test_bad_arguments_give_one_line_and_status_2(tmp_path, args, fragment):
    result = cli(*args, cwd=tmp_path)
    assert_one_line_error(result, 2, fragment)
    assert result.stdout == "" and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["graph", "compare", "explain", "train"])
def test_one_meaning_per_flag(tmp_path, command):
    """Time steps are --seq-len and sequences --batch-size in every command; --steps is train's alone, and
    there it counts optimizer steps."""
    text = " ".join(cli(command, "--help", cwd=tmp_path).stdout.split())
    assert "--seq-len N time steps" in text and "--batch-size N sequences" in text
    if command == "train":
        assert "--steps N optimizer steps (updates) in all" in text
    else:
        assert "--steps" not in text and "--batch " not in text


def test_the_flags_are_the_librarys_names(tmp_path, monkeypatch):
    """What graph, compare and explain are given reaches the library under the same names."""
    seen = {}

    def fake_compare(**given):
        seen.update(given)
        raise KeyboardInterrupt  # enough: the names are what is checked

    monkeypatch.setattr(lstm.cli, "compare", fake_compare)
    assert main(["compare", "--seq-len", "7", "--batch", "3", "--layers", "2", "--no-scalar"]) == 130
    assert {key: seen[key] for key in ("seq_len", "batch_size", "num_layers")} == {"seq_len": 7, "batch_size": 3,
                                                                                   "num_layers": 2}


def test_sizes_are_refused_before_anything_is_built(monkeypatch, capsys):
    """Item 5: `graph --tensor --steps 100000` built the whole graph (51 s, 2.1 GB) before the drawing guard
    refused it; now every command answers from the sizes alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("built before the sizes were checked")

    for name in ("LSTM", "ScalarLSTM"):
        monkeypatch.setattr(lstm.demo, name, refuse)
    monkeypatch.setattr(lstm.cli, "compare", refuse)
    for argv in (["graph", "--tensor", "--seq-len", "100000"], ["graph", "--tensor", "--seq-len", "3000"],
                 ["graph", "--seq-len", "99999999999999999999"], ["explain", "--layers", "1e99"],
                 ["compare", "--no-scalar", "--no-finite-differences", "--seq-len", "1e20"]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.count("\n") == 1


def test_without_dot_graph_says_how_to_get_the_dot_source(tmp_path):
    """Item 6: the hint is the command line's --output x.gv (which needs no dot), not a Python call."""
    no_dot = {**environment(), "PATH": str(tmp_path)}  # nothing on it: no dot
    result = subprocess.run([sys.executable, "-m", "lstm", "graph", "--output", "g.svg"], cwd=tmp_path, env=no_dot,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert_one_line_error(result, 1, "Graphviz's `dot` program draws SVG, and it is not installed",
                          "the DOT source needs no `dot`: --output g.gv")
    assert "drawing.save" not in result.stderr
    written = subprocess.run([sys.executable, "-m", "lstm", "graph", "--output", "g.gv"], cwd=tmp_path, env=no_dot,
                             capture_output=True, text=True, timeout=TIMEOUT)
    assert written.returncode == 0 and (tmp_path / "g.gv").read_text().startswith("digraph")


def test_demo_under_a_regular_file_is_one_line_and_status_2(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    result = cli("demo", "--out", "blocker/demo", cwd=tmp_path)
    assert_one_line_error(result, 2, "blocker/demo: blocker is a file, not a directory")
    assert result.stdout == ""


# --- graph, compare, explain, demo ---------------------------------------------------------------------------

def test_graph_writes_the_file_asked_for(tmp_path):
    result = cli("graph", "--output", "drawings/forward.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(Path("drawings/forward.svg"))
    assert is_svg(tmp_path / "drawings" / "forward.svg")

    result = cli("graph", "--tensor", "--seq-len", "3", "--view", "backward", "--roll-up", "--format", "png",
                 "--output", "drawings/backward", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "drawings" / "backward.png").read_bytes()[:8] == PNG
    assert only_files(tmp_path / "drawings") == ["backward.png", "forward.svg"]


def test_graph_without_an_output_writes_to_out(tmp_path):
    result = cli("graph", "--format", "dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "graph_forward.gv").read_text().startswith("digraph")


def test_an_output_under_a_regular_file_is_the_users_to_change(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    result = cli("graph", "--output", "blocker/graph.gv", cwd=tmp_path)
    assert_one_line_error(result, 2, "blocker/graph.gv: ", "blocker is a file, not a directory")
    assert only_files(tmp_path) == ["blocker"]


def test_an_output_that_cannot_be_written_is_named_with_status_1(tmp_path):
    result = cli("graph", "--output", "/proc/graph.gv", cwd=tmp_path)  # no file can be made there, not even by root
    assert_one_line_error(result, 1, "/proc/graph.gv: ")


def test_compare_exit_status_says_whether_the_checks_pass(tmp_path):
    sizes = ["--input-size", "2", "--hidden-size", "3", "--seq-len", "3", "--batch-size", "2"]
    passed = cli("compare", *sizes, cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "ScalarLSTM (Value)" in passed.stdout and passed.stdout.rstrip().endswith("all passed")
    # A finite-difference step of 0.5 is far too coarse for a tolerance of 1e-9: those checks must fail.
    failed = cli("compare", *sizes, "--no-scalar", "--eps", "0.5", "--fd-tolerance", "1e-9", "--format",
                 "markdown", cwd=tmp_path)
    assert failed.returncode == 1 and failed.stderr == ""
    assert "ScalarLSTM" not in failed.stdout and "|" in failed.stdout and "FAILED" in failed.stdout


def test_explain_gives_the_engines_numbers(tmp_path):
    result = cli("explain", "tanh(a*b + c)", "a=2", "b=-3", "c=1", "--precision", "12", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    a, b, c = Value(2.0, label="a"), Value(-3.0, label="b"), Value(1.0, label="c")
    loss = (a * b + c).tanh()
    loss.backward()
    # The last number on each "dL/dx = ... = number" line is the gradient the explanation arrives at.
    explained = {name: float(number) for name, number in
                 re.findall(r"^\s*dL/d(\w+) = .* = (\S+)$", result.stdout, flags=re.MULTILINE)}
    assert explained.keys() >= {"a", "b", "c"}
    for name, leaf in (("a", a), ("b", b), ("c", c)):  # 12 digits shown, so equal to 1e-11 relative
        assert explained[name] == pytest.approx(leaf.grad, rel=1e-11)
    forward = re.search(r"^\s*L = tanh\(\w+\) = (\S+)$", result.stdout, flags=re.MULTILINE)
    assert forward and float(forward.group(1)) == pytest.approx(loss.data, rel=1e-11)


def test_explain_takes_max_and_min_of_two_arguments(tmp_path):
    result = cli("explain", "max(a, b) * min(a, 1)", "a=2", "b=-3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    a.max(b).__mul__(a.min(1.0)).backward()  # dL/da: min(a, 1) = 1 through max, plus 0 through min (a > 1)
    fork = re.search(r"^\s*dL/da = .*(?:\n\s+= .*)*", result.stdout, flags=re.MULTILINE)[0]  # a's two uses, summed
    assert float(fork.rsplit("= ", 1)[1]) == a.grad == 1.0
    assert "0 if a < b, 1/2 if a = b, else 1" in result.stdout  # the primitive table's formula, read out
    refused = cli("explain", "max(a)", "a=2", cwd=tmp_path)
    assert refused.returncode == 2 and "max(a, b)" in refused.stderr


def test_explain_without_an_expression_explains_a_tiny_lstm(tmp_path):
    result = cli("explain", "--format", "markdown", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for stage in ("input gate", "forget gate", "cell candidate", "output gate"):  # the cell, stage by stage
        assert f"t=1 / layer 0 / {stage}" in result.stdout


def test_demo_draws_compares_measures_and_says_where_the_files_are(tmp_path):
    result = cli("demo", "--out", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all passed" in result.stdout and "gradient flow through time" in result.stdout
    listed = result.stdout.split("Files:")[1].split()
    expected = [f"{kind}_{view}.{fmt}" for kind in ("scalar", "lstm") for view in ("forward", "backward")
                for fmt in ("png", "svg")] + ["gradient_flow.png"]
    assert sorted(Path(path).name for path in listed) == sorted(expected)
    assert all(Path(path).is_absolute() for path in listed)  # they work from wherever the user stands
    assert only_files(tmp_path / "demo") == sorted(expected)
    for path in listed:
        assert (tmp_path / path).read_bytes()[:8] == PNG if path.endswith(".png") else is_svg(tmp_path / path)


def test_the_console_script_is_installed_with_the_package(tmp_path):
    script = Path(sys.executable).parent / "backprop-lens"
    result = subprocess.run([str(script), "explain", "a*b", "a=2", "b=3"], cwd=tmp_path, env=environment(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "dL/da" in result.stdout


# --- train, checkpoints, resuming --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    """A tiny training run of 20 steps that nothing interrupted: the reference for the resumed runs."""
    directory = tmp_path_factory.mktemp("straight")
    result = cli("train", *TINY, "--steps", "20", "--out", "run", cwd=directory)
    assert result.returncode == 0, result.stderr
    return directory / "run"


def assert_same_run(checkpoint: Path, reference: Path) -> None:
    """Bitwise the same: every loss of the curve and every weight and optimizer moment."""
    a, b = load_checkpoint(checkpoint), load_checkpoint(reference)
    assert a.step == b.step
    for group in ("history", "model", "optimizer"):
        left, right = getattr(a, group), getattr(b, group)
        assert left.keys() == right.keys()
        for name in left:
            np.testing.assert_array_equal(left[name], right[name], err_msg=f"{group}/{name}")


def test_train_learns_and_writes_checkpoint_curve_and_sample(straight_run):
    checkpoint = load_checkpoint(straight_run / "checkpoint.npz")
    assert checkpoint.step == 20 and list(checkpoint.history["val_steps"]) == [0, 5, 10, 15, 20]
    val_loss = checkpoint.history["val_loss"]
    assert val_loss[-1] < val_loss[0] - 0.3  # from about log(83) = 4.4 towards the unigram 3.1
    assert (straight_run / "loss.png").read_bytes()[:8] == PNG
    sample = (straight_run / "sample.txt").read_text()
    assert sample.startswith("LOVE, n. ") and len(sample) == len("LOVE, n. ") + 30 + 1
    assert only_files(straight_run) == ["checkpoint.npz", "loss.png", "sample.txt"]


def test_train_reports_the_unigram_baseline_and_speed(tmp_path):
    result = cli("train", *TINY, "--steps", "3", "--out", "run", "--sample-length", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    baseline = re.search(r"unigram baseline ([\d.]+)", result.stdout)
    assert baseline and 2.5 < float(baseline.group(1)) < 3.5
    assert re.search(r"training speed [\d,]+ characters per second", result.stdout)


def test_resume_continues_to_the_same_curve(tmp_path, straight_run):
    first = cli("train", *TINY, "--steps", "10", "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").step == 10
    # Resuming needs no settings but the new length: the rest comes from the checkpoint.
    resumed = cli("train", "--resume", "--steps", "20", "--out", "run", "--sample-length", "30", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    assert_same_run(tmp_path / "run" / "checkpoint.npz", straight_run / "checkpoint.npz")
    assert (tmp_path / "run" / "sample.txt").read_text() == (straight_run / "sample.txt").read_text()


def test_sigint_saves_the_checkpoint_and_resume_gives_the_uninterrupted_curve(tmp_path):
    """Ctrl-C mid-run, then --resume: the same losses and weights as a run never stopped, bit for bit.

    Bitwise, not merely close, because nothing of the run is lost or recomputed differently: step k's batch
    depends on (seed, k) alone, the checkpoint holds the float32 weights and Adam moments and the float64
    losses exactly (.npy is lossless), and the same arithmetic runs on the same inputs. (A machine whose BLAS
    splits the matrix products differently could change the last bits; this one resumes where it stopped.)
    """
    # A run far too long to finish; SIGINT arrives once it has reported step 5.
    command = [sys.executable, "-m", "lstm", "train", *TINY, "--steps", "100000", "--out", "run"]
    process = subprocess.Popen(command, cwd=tmp_path, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(TIMEOUT, process.kill)  # should the line never come, fail instead of hanging
    watchdog.start()
    try:
        for line in process.stdout:
            if re.match(r"step\s+5/", line):
                process.send_signal(signal.SIGINT)
                break
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 130, stderr
    stopped = int(re.search(r"stopped at step (\d+); go on with: backprop-lens train --resume --out run$", stdout,
                            flags=re.MULTILINE).group(1))
    assert 5 <= stopped < 100000 and load_checkpoint(tmp_path / "run" / "checkpoint.npz").step == stopped
    assert only_files(tmp_path / "run") == ["checkpoint.npz"]

    target = str(stopped + 6)
    resumed = cli("train", "--resume", "--steps", target, "--out", "run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    straight = cli("train", *TINY, "--steps", target, "--out", "straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    assert_same_run(tmp_path / "run" / "checkpoint.npz", tmp_path / "straight" / "checkpoint.npz")


def test_an_existing_checkpoint_is_kept_unless_overwrite_is_asked(tmp_path, straight_run):
    (tmp_path / "run").mkdir()
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    checkpoint.write_bytes((straight_run / "checkpoint.npz").read_bytes())
    refused = cli("train", *TINY, "--steps", "3", "--out", "run", cwd=tmp_path)
    assert_one_line_error(refused, 2, "already exists", "--resume", "--overwrite")
    assert load_checkpoint(checkpoint).step == 20

    replaced = cli("train", *TINY, "--steps", "3", "--out", "run", "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert load_checkpoint(checkpoint).step == 3


@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint"])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, straight_run, damage):
    checkpoint = tmp_path / "saved.npz"
    data = (straight_run / "checkpoint.npz").read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    else:
        np.savez(checkpoint, weights=np.ones(3))
    before = checkpoint.read_bytes()
    result = cli("train", "--resume", "--checkpoint", str(checkpoint), cwd=tmp_path)
    assert_one_line_error(result, 2, str(checkpoint))
    assert checkpoint.read_bytes() == before


def test_a_checkpoint_of_other_settings_is_refused_in_one_line(tmp_path, straight_run):
    result = cli("train", "--resume", "--hidden-size", "9", "--checkpoint",
                 str(straight_run / "checkpoint.npz"), cwd=tmp_path)
    assert_one_line_error(result, 2, "other settings", "hidden_size: 8 != 9")


@pytest.mark.parametrize("out", ["blocker/run", "blocker"])
def test_train_checks_that_it_can_write_before_training(tmp_path, out):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    result = cli("train", *TINY, "--steps", "100000", "--out", out, cwd=tmp_path)
    # at once, not after training; the checkpoint is the first file the run would write
    assert_one_line_error(result, 2, f"{out}/checkpoint.npz: blocker is a file, not a directory")
    assert result.stdout == "" and (tmp_path / "blocker").read_text().startswith("a file")


# --- faults: sizes, signals, broken pipes ------------------------------------------------------------------------

def test_sizes_that_cannot_fit_are_refused_before_anything_is_built(tmp_path):
    """`train --layers 10000` grew to 4 GB before failing; now the estimate refuses it at once. Under a 4 GB
    address-space limit, building the model would fail with "out of memory" (status 1) instead."""

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    result = subprocess.run([sys.executable, "-m", "lstm", "train", "--layers", "10000"], cwd=tmp_path,
                            env=environment(), capture_output=True, text=True, timeout=TIMEOUT,
                            preexec_fn=limit_memory)
    assert_one_line_error(result, 2, "a run of these sizes needs about 305 GB", "1,320,924,211 parameters",
                          "this process may use 4.3 GB: use smaller sizes or fewer steps")
    assert result.stdout == "" and only_files(tmp_path) == []


def test_train_says_what_the_library_finds(tmp_path, monkeypatch, capsys, straight_run):
    """Item 7: each check of a run is made once, in `lstm.training.run.prepare_run`; the command line reports it as it
    is, and reads a resumed checkpoint once (its settings and its weights from the one reading)."""
    monkeypatch.chdir(tmp_path)
    for argv, settings in ((["--resume", "--overwrite"], dict(resume=True, overwrite=True)),
                           (["--override-config"], dict(override_config=True))):
        with pytest.raises(lstm.training.run.ConfigError) as refused:
            lstm.training.run.prepare_run({}, **settings)
        assert main(["train", *argv]) == 2
        assert capsys.readouterr().err == f"backprop-lens: error: {refused.value}\n"
    shutil.copy(straight_run / "checkpoint.npz", tmp_path / "run.npz")
    reads = []
    real = lstm.training.run.load_checkpoint
    monkeypatch.setattr(lstm.training.run, "load_checkpoint", lambda *args: reads.append(args) or real(*args))
    assert main(["train", "--resume", "--steps", "21", "--checkpoint", "run.npz", "--sample-length", "0"]) == 0
    assert len(reads) == 1 and real(tmp_path / "run.npz").step == 21


def test_long_runs_and_samples_are_warned_about_before_training(tmp_path, monkeypatch, capsys):
    def no_training(*args, **kwargs):
        raise KeyboardInterrupt  # the warnings must have come before training starts

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lstm.training.run.Run, "train", no_training)
    assert main(["train", "--steps", "1e6", "--sample-length", "1e8"]) == 130
    warnings = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"backprop-lens: warning: 1,000,000 steps will take about [\d.]+ (hours|days) \(about "
                        r"\d+ ms each\); Ctrl-C or SIGTERM stops after a step and saves", warnings[0]), warnings
    assert re.fullmatch(r"backprop-lens: warning: a sample of 100,000,000 characters will take about [\d.]+ hours "
                        "after training", warnings[1]), warnings
    assert warnings[2:] == ["backprop-lens: interrupted"]


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`explain ... | head -2`: the pipe breaks; the command stops without a word, with status 141 as Unix tools
    do (128 + SIGPIPE), not with a traceback or "Broken pipe"."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before a byte is written
    try:
        result = subprocess.run([sys.executable, "-m", "lstm", "explain", "tanh(a*b + c)", "a=2", "b=-3", "c=1"],
                                cwd=tmp_path, env=environment(), stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=TIMEOUT)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


def test_a_checkpoint_that_describes_a_huge_model_is_blamed_in_one_line(tmp_path, straight_run):
    checkpoint = load_checkpoint(straight_run / "checkpoint.npz")
    checkpoint.config["hidden_size"] = 200_000  # the arrays stay small: only the meta lies
    save_checkpoint(tmp_path / "huge.npz", checkpoint)
    result = cli("train", "--resume", "--checkpoint", "huge.npz", cwd=tmp_path)
    assert_one_line_error(result, 2, "huge.npz is not a valid checkpoint: it describes a run that cannot be "
                          "resumed here (a run of these sizes needs about")


def test_override_config_goes_on_with_a_new_learning_rate(tmp_path, straight_run):
    shutil.copy(straight_run / "checkpoint.npz", tmp_path / "run.npz")
    refused = cli("train", "--resume", "--steps", "22", "--lr", "0.005", "--checkpoint", "run.npz", cwd=tmp_path)
    assert_one_line_error(refused, 2, "lr: 0.01 != 0.005", "--override-config")
    resumed = cli("train", "--resume", "--steps", "22", "--lr", "0.005", "--override-config", "--checkpoint",
                  "run.npz", "--sample-length", "0", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    saved = load_checkpoint(tmp_path / "run.npz")
    assert saved.step == 22 and saved.config["lr"] == 0.005 and saved.optimizer["lr"] == 0.005


SLOW_SAVE = textwrap.dedent("""
    import runpy, sys, time
    import numpy as np

    # The second checkpoint (step 10) is written, not yet renamed into place, when the parent is told: a
    # signal sent then arrives in the middle of saving.
    real_savez, saves = np.savez, []

    def slow_savez(file, **arrays):
        real_savez(file, **arrays)
        file.flush()
        saves.append(arrays["meta"])
        if len(saves) == 2:
            print("saving step 10", file=sys.stderr, flush=True)
            time.sleep(1)

    np.savez = slow_savez
    sys.argv = ["backprop-lens", *sys.argv[1:]]
    sys.exit(runpy.run_module("lstm", run_name="__main__"))
""")


def stop_while_saving(directory: Path, signal_number: int) -> subprocess.CompletedProcess[str]:
    """Run a 20-step training that is sent ``signal_number`` while it writes its checkpoint of step 10."""
    command = [sys.executable, "-c", SLOW_SAVE, "train", *TINY, "--steps", "20", "--out", "run"]
    process = subprocess.Popen(command, cwd=directory, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(TIMEOUT, process.kill)
    watchdog.start()
    try:
        for line in process.stderr:
            if line == "saving step 10\n":
                process.send_signal(signal_number)
                break
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        watchdog.cancel()
        process.kill()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def resume_in_process(directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`train --resume` to step 20, run here (no interpreter to start); returns what it printed."""
    capsys.readouterr()
    assert main(["train", "--resume", "--steps", "20", "--out", str(directory / "run")]) == 0
    return capsys.readouterr().out


def test_sigterm_mid_checkpoint_saves_exits_143_and_resumes_to_the_same_curve(tmp_path, straight_run, capsys):
    stopped = stop_while_saving(tmp_path, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    assert "stopped at step 10; go on with: backprop-lens train --resume --out run" in stopped.stdout
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").step == 10  # the save it was in finished
    assert only_files(tmp_path / "run") == ["checkpoint.npz"]
    resume_in_process(tmp_path, capsys)
    assert_same_run(tmp_path / "run" / "checkpoint.npz", straight_run / "checkpoint.npz")


def test_sigkill_mid_checkpoint_keeps_the_last_one_and_the_next_start_cleans_up(tmp_path, straight_run, capsys):
    killed = stop_while_saving(tmp_path, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").step == 5  # the save before, whole
    left = [name for name in only_files(tmp_path / "run") if name != "checkpoint.npz"]
    assert len(left) == 1 and re.fullmatch(r"\.checkpoint\.npz\.\w{8}\.tmp", left[0])  # step 10, never renamed
    printed = resume_in_process(tmp_path, capsys)
    assert f"removed {tmp_path / 'run' / left[0]}, left by a save that was killed" in printed
    assert only_files(tmp_path / "run") == ["checkpoint.npz", "loss.png", "sample.txt"]
    assert_same_run(tmp_path / "run" / "checkpoint.npz", straight_run / "checkpoint.npz")


def test_a_graph_wider_than_a_column_names_the_flag_that_fits(tmp_path):
    done = cli("graph", "--view", "backward", "--hidden-size", "3", "--output", "wide.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if "wider than a notebook column" in line]
    assert "draw(root" not in warning  # the command line's own words
    flag = re.search(r"--collapse ('[^']*'|\S+) fits \(([\d,]+) px\)", warning)
    assert flag and int(flag[2].replace(",", "")) <= 1000, warning
    again = cli("graph", "--view", "backward", "--hidden-size", "3", "--collapse", shlex.split(flag[1])[0],
                "--output", "fits.svg", cwd=tmp_path)
    assert again.returncode == 0 and "wider than a notebook column" not in again.stderr, again.stderr
    width = float(re.search(r'<svg width="([\d.]+)pt"', (tmp_path / "fits.svg").read_text())[1]) * 4 / 3
    assert width <= 1000
