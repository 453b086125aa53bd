"""The LSTMs that the command line and the README's figures build, and what they cost, known before they are built.

    loss = lstm_loss(Sizes(seq_len=6), seed=0)               # L = the sum of the last output, ready to draw
    check_drawing(Sizes(seq_len=100_000), scalar=False)      # SizeError at once: 1,600,014 nodes, never built

`lstm_loss` is the README's LSTM example (its defaults are the README's picture) at any sizes, `gradient_flows`
the models of the README's gradient-flow figure, and `DEMO_*` the sizes the demo shows. Sizes come from people
typing numbers, so nothing is built before they are checked: `Sizes.cost` estimates a graph's nodes, memory and
time from the sizes alone (formulas, never a loop over them: ``--layers 99999999999999999999`` is answered at
once), and `check_drawing`, `check_explanation` and `check_comparison` refuse with `SizeError`, in one line that
gives the estimate and names the option that helps, what could not be drawn, explained or compared in seconds.
The advice names the command line's options: they are the parameters' names, written as flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from autograd import stage
from autograd.core import Node, topological_order
from autograd.view.boxes import StagePath, matcher, numbered, numbers
from lstm.checks.flow import GradientFlow, gradient_flow
from lstm.models.lstm import LSTM, ScalarLSTM, parameter_shapes
from lstm.models.rnn import RNN
from lstm.training import estimate as training
from lstm.training.estimate import FLOPS, as_float, byte_size, duration

__all__ = ["CHECKED", "DEMO_FLOW", "DEMO_SCALAR", "DEMO_TENSOR", "NODE_LIMIT", "VIEWED", "Cost", "Rates", "SizeError",
           "Sizes", "check_comparison",
           "check_drawing", "check_explanation", "describe_stages", "gradient_flows", "lstm_loss", "names_a_stage",
           "stage_paths"]

NODE_LIMIT = 50_000  # nodes of a graph to draw or explain: built, laid out and read in seconds, not minutes
FINITE_DIFFERENCE_LIMIT = 250_000  # cell steps of finite differences: at about 40 us each, some 10 seconds


@dataclass(frozen=True)
class Rates:
    """What a graph costs per node, and per number its Tensors hold: measured on the reference machine (two cores,
    under load) and rounded up, so that an estimate is right within a factor of about two."""

    node_bytes: int  # a node, with what is kept of it
    node_seconds: float  # building a node, and what is done with it
    unit_copies: int  # float64 numbers per hidden unit, sequence, time step and layer of a Tensor LSTM


VIEWED = Rates(2_500, 60e-6, 64)  # drawn or explained (1.4-2.4 KB, 15-67 us and 61 numbers measured)
CHECKED = Rates(800, 20e-6, 24)  # differentiated and compared with the hand derivation (700 B, 19 us, 20 numbers)
# Per pair of time steps: the backward pass through the concatenation of a Tensor LSTM's outputs is quadratic in
# them today (the rule sums the sizes before each part); measured 52 s against 59 estimated for 20,000 steps drawn.
GATHER_SECONDS = 1e-7
CELL_SECONDS = 40e-6  # one cell step of the hand-written forward pass, as finite differences run it


class SizeError(ValueError):
    """Sizes whose graph could not be built, drawn, explained or compared in seconds, or in this process's
    memory; the message gives the estimate and what to change."""


@dataclass(frozen=True)
class Cost:
    """What building (and drawing, explaining or checking) a graph takes: its nodes, memory in bytes, seconds."""

    nodes: int
    memory: int
    seconds: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.nodes + other.nodes, self.memory + other.memory, self.seconds + other.seconds)

    def __str__(self) -> str:
        return f"about {_count(self.nodes)} nodes, {byte_size(self.memory)} of memory and {duration(self.seconds)}"


def _count(number: int) -> str:
    """A count for people: 1,600,014, or 8.3e+21 when the sizes were absurd (not a line of 400 digits)."""
    return f"{number:,}" if number < 10**15 else f"{Decimal(number):.1e}"


@dataclass(frozen=True)
class Sizes:
    """An LSTM and its input: ``input_size`` features per step, ``hidden_size`` units per layer, ``num_layers``
    layers, ``seq_len`` time steps and ``batch_size`` sequences (the defaults: the README's example)."""

    input_size: int = 3
    hidden_size: int = 4
    num_layers: int = 1
    seq_len: int = 6
    batch_size: int = 2

    def __str__(self) -> str:
        layers = f"{self.num_layers:,} layer{'s' if self.num_layers > 1 else ''}"
        return (f"input {self.input_size:,}, hidden {self.hidden_size:,}, {layers}, {self.seq_len:,} steps, "
                f"batch {self.batch_size:,}")

    def nodes(self, scalar: bool) -> int:
        """Roughly how many nodes the graph of L = the sum of the last output has (within 10%, measured)."""
        steps, layers = self.seq_len, self.num_layers
        if not scalar:  # a Tensor LSTM: per step and layer, one product, four gate stages and the cell's updates
            return (15 * layers + 1) * steps + 11 * layers + 3
        hidden, batch = self.hidden_size, self.batch_size

        def layer(inputs: int) -> int:
            """A ScalarLSTM layer: its weights, and per gate unit and step a multiply and an add per input."""
            weights = 4 * hidden * (inputs + hidden) + 8 * hidden
            return weights + steps * batch * (4 * hidden * (2 * (inputs + hidden) + 3) + 5 * hidden)

        return layer(self.input_size) + (layers - 1) * layer(hidden) + steps * batch * self.input_size + batch * hidden

    def cost(self, scalar: bool, rates: Rates = VIEWED) -> Cost:
        """What building its graph takes, and drawing or explaining it (`VIEWED`) or checking it (`CHECKED`)."""
        nodes = self.nodes(scalar)
        memory, seconds = nodes * rates.node_bytes, as_float(nodes) * rates.node_seconds
        if not scalar:  # arrays as large as the batch and the hidden layer, and products with the weights
            numbers = rates.unit_copies * self.batch_size * self.hidden_size * self.seq_len * self.num_layers
            memory += 8 * (numbers + 4 * self.parameters() + 2 * self.seq_len * self.batch_size * self.input_size)
            seconds += as_float(self._flops()) / FLOPS["float64"] + as_float(self.seq_len**2) * GATHER_SECONDS
        return Cost(nodes, memory, seconds)

    def parameters(self) -> int:
        """How many numbers the LSTM's parameters hold, by a formula (the number of layers may be absurd)."""

        def layer(inputs: int) -> int:
            return sum(math.prod(shape) for shape in parameter_shapes(inputs, self.hidden_size, 1).values())

        return layer(self.input_size) + (self.num_layers - 1) * layer(self.hidden_size)

    def _flops(self) -> int:
        """Multiply-adds of the products with the weights, forward (one per weight) and backward (two)."""
        return 3 * self.seq_len * self.batch_size * self.parameters()


DEMO_SCALAR = Sizes(1, 1, 1, 2, 1)  # a ScalarLSTM small enough to read every number
DEMO_TENSOR = Sizes()  # the README's LSTM example
DEMO_FLOW = Sizes(3, 16, 1, 30, 4)  # the README's gradient-flow figure


def _check_memory(cost: Cost, what: str, advice: str) -> None:
    limit = training.memory_limit()  # looked up when called: a test may fix it
    if limit is not None and cost.memory > limit:
        raise SizeError(f"{what} would take {cost}; this process may use {byte_size(limit)}: "
                        f"{advice}")


def _check_graph(sizes: Sizes, scalar: bool, advice: str) -> Cost:
    cost = sizes.cost(scalar)
    kind = "a ScalarLSTM" if scalar else "an LSTM"
    if cost.nodes > NODE_LIMIT:
        raise SizeError(f"the graph of {kind} of these sizes would take {cost} (the limit is {NODE_LIMIT:,} "
                        f"nodes): {advice}")
    _check_memory(cost, f"the graph of {kind} of these sizes", advice)
    return cost


def check_drawing(sizes: Sizes, scalar: bool, *, roll_up: bool = False, max_nodes: int = 2000) -> Cost:
    """The cost of drawing the graph of ``lstm_loss(sizes, scalar=scalar)``; SizeError if it is too large to build
    or draw. Without ``roll_up`` every time step is at least one shape, so more steps than ``max_nodes`` never
    fit: refused before anything is built (the drawing's own guard counts the shapes exactly, once built)."""
    advice = "use smaller sizes" + (", or the Tensor LSTM (--tensor)" if scalar else "")
    cost = _check_graph(sizes, scalar, advice)
    if not roll_up and sizes.seq_len > max_nodes:
        raise SizeError(f"a drawing of {_count(sizes.seq_len)} time steps has at least one shape for each, more than "
                        f"--max-nodes {max_nodes:,}: roll the steps up into one box (--roll-up), or use fewer "
                        "(--seq-len)")
    return cost


def check_explanation(sizes: Sizes) -> Cost:
    """The cost of explaining the graph of a ScalarLSTM of ``sizes``; SizeError if it is too large."""
    return _check_graph(sizes, True, "use smaller sizes, or explain an expression")


def check_comparison(sizes: Sizes, *, scalar: bool = True, finite_differences: bool = True) -> Cost:
    """What `lstm.compare` at ``sizes`` takes (with the ScalarLSTM and finite differences, when asked for);
    SizeError if a part is too large: the ScalarLSTM's graph or the finite differences' forward passes."""
    if scalar:
        _check_graph(sizes, True, "use smaller sizes, or leave the ScalarLSTM out (--no-scalar)")
    cost = sizes.cost(False, CHECKED)
    if scalar:
        cost += sizes.cost(True, CHECKED)
    if finite_differences:
        numbers = sizes.parameters() + sizes.seq_len * sizes.batch_size * sizes.input_size
        numbers += 2 * sizes.num_layers * sizes.batch_size * sizes.hidden_size  # h0 and c0
        cells = 4 * numbers * sizes.seq_len * sizes.num_layers  # four forward passes per number (a five-point stencil)
        seconds = as_float(cells) * CELL_SECONDS
        if cells > FINITE_DIFFERENCE_LIMIT:
            raise SizeError(f"finite differences at these sizes would run {_count(4 * numbers)} forward passes of "
                            f"{_count(sizes.seq_len)} steps (about {duration(seconds)}): use smaller sizes, or leave "
                            "them out (--no-finite-differences)")
        cost += Cost(0, 0, seconds)
    _check_memory(cost, "comparing the gradients at these sizes", "use smaller sizes")
    return cost


def lstm_loss(sizes: Sizes = Sizes(), seed: int = 0, *, scalar: bool = False) -> Node:
    """L = the sum of the last output of an LSTM (a `ScalarLSTM` when ``scalar``) with weights from ``seed`` on
    random inputs from ``seed + 1``: a root to draw or explain. SizeError for a graph too large to draw or
    explain (`NODE_LIMIT`), before anything is built."""
    _check_graph(sizes, scalar, "use smaller sizes")
    x = np.random.default_rng(seed + 1).standard_normal((sizes.seq_len, sizes.batch_size, sizes.input_size))
    model = (ScalarLSTM if scalar else LSTM)(sizes.input_size, sizes.hidden_size, sizes.num_layers, seed=seed)
    out, _ = model(x)
    with stage("loss"):
        loss = sum(out[-1].flat[1:], out[-1].flat[0]) if scalar else out[-1].sum()
    loss.label = "L"
    return loss


def stage_paths(root: Node) -> list[StagePath]:
    """Every stage of ``root``'s graph and every stage around one, in order of first appearance."""
    paths: dict[StagePath, None] = {}
    for node in topological_order(root):
        paths.update((node.stage[:depth], None) for depth in range(1, len(node.stage) + 1))
    return list(paths)


def names_a_stage(pattern: str, paths: list[StagePath]) -> bool:
    """Whether ``pattern``, as `draw`'s collapse and keep take it, matches one of the stages."""
    matches = matcher(pattern, "collapse")
    return any(map(matches, paths))


def describe_stages(paths: list[StagePath]) -> str:
    """The stages' names for a message, the outermost first, each run of numbered names as its first and last:
    "t=1 … t=6, loss, layer 0, input gate, ..."."""
    runs: dict[str, list[str]] = {}
    for path in sorted(paths, key=len):  # the outermost first
        run = runs.setdefault(numbered(path[-1]), [])
        if path[-1] not in run:
            run.append(path[-1])
    ordered = (sorted(run, key=numbers) for run in runs.values())
    return ", ".join(run[0] if len(run) == 1 else f"{run[0]} … {run[-1]}" for run in ordered)


def gradient_flows(sizes: Sizes = DEMO_FLOW, seed: int = 0) -> dict[str, GradientFlow]:
    """|dL/dh_t| and |dL/dc_t| through time for a plain RNN, an LSTM and an LSTM whose forget gates start open
    (forget bias 1), all with weights from ``seed`` on the same random inputs (also from ``seed``, as in notebook
    5), the loss on the last output: the README's figure (`lstm.checks.flow.plot_flows` draws it)."""
    x = np.random.default_rng(seed).standard_normal((sizes.seq_len, sizes.batch_size, sizes.input_size))
    shape = (sizes.input_size, sizes.hidden_size, sizes.num_layers)
    models = {"RNN (tanh)": RNN(*shape, seed=seed), "LSTM": LSTM(*shape, seed=seed),
              "LSTM, forget bias 1": LSTM(*shape, seed=seed, forget_bias=1.0)}
    return {name: gradient_flow(model, x, loss="last") for name, model in models.items()}

