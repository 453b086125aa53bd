"""lstm: an LSTM built from autograd primitives, its backward pass derived by hand, and the two side by side.

`LSTM` (Tensors, fast) and `ScalarLSTM` (one Value per number, for drawing) share PyTorch ``nn.LSTM``
parameter names and layout with the numpy derivation in `hand`; `params` states that layout, the gate order and
the initialisation once for all of them. `RNN` is a plain tanh RNN and `GRU` a GRU (``nn.GRU``'s layout and
equations; its hand derivation is `hand.gru`) built the same way, for comparison.
`compare` checks the models, finite differences and a derivation of your own against each other, and
`check_step` a backward pass through one step written by you (both with `autograd.check_derivation`, which
names the first stage that goes wrong), `compare_gru` and `check_gru_step` the same for the GRU;
`gradient_flow` measures dL/dh_t and dL/dc_t through time, and `bptt` takes backpropagation through time apart
(each step's part of dL/dW, the T x T matrix |dL_t/dh_k|, truncation).
"""

import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while the command line imports its modules (most of its first second): one line and status 130, as
    `lstm.cli.main` reports it later on, not a traceback from inside an import."""
    print("backprop-lens: interrupted", file=sys.stderr)
    raise SystemExit(130)


_argv = getattr(sys, "orig_argv", sys.argv)
if sys.argv[0].endswith("backprop-lens") or any(a == "-m" and b == "lstm" for a, b in zip(_argv, _argv[1:])):
    signal.signal(signal.SIGINT, _interrupted_while_starting)  # the command starting; lstm.cli.main undoes it
del _argv

from lstm import hand  # noqa: E402 (after the handler: these imports are the command's first second)
from lstm.checks.bptt import BPTT, bptt  # noqa: E402
from lstm.checks.compare import Comparison, compare  # noqa: E402
from lstm.checks.compare_gru import compare_gru  # noqa: E402
from lstm.checks.flow import GradientFlow, gradient_flow  # noqa: E402
from lstm.checks.step import Step, check_step  # noqa: E402
from lstm.checks.step_gru import GRUStep, check_gru_step  # noqa: E402
from lstm.models import params  # noqa: E402
from lstm.models.gru import GRU  # noqa: E402
from lstm.models.lstm import LSTM, ScalarLSTM  # noqa: E402
from lstm.models.rnn import RNN  # noqa: E402

__all__ = ["BPTT", "GRU", "LSTM", "RNN", "Comparison", "GRUStep", "GradientFlow", "ScalarLSTM", "Step", "bptt",
           "check_gru_step", "check_step", "compare", "compare_gru", "gradient_flow", "hand", "params"]
