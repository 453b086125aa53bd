"""lstm: an LSTM built from autograd primitives, its backward pass derived by hand, and the two side by side.

`LSTM` (Tensors, fast) and `ScalarLSTM` (one Value per number, for drawing) share PyTorch ``nn.LSTM``
parameter names and layout with the numpy derivation in `hand`; `params` states that layout, the gate order and
the initialisation once for all of them. `RNN` is a plain tanh RNN built the same way, for comparison.
`compare` checks the models, finite differences and a derivation of your own against each other, and
`check_step` a backward pass through one step written by you (both with `autograd.check_derivation`, which
names the first stage that goes wrong); `gradient_flow` measures dL/dh_t and dL/dc_t through time.
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

from lstm import hand, params  # noqa: E402 (after the handler: these imports are the command's first second)
from lstm.compare import Comparison, compare  # noqa: E402
from lstm.flow import GradientFlow, gradient_flow  # noqa: E402
from lstm.model import LSTM, RNN, ScalarLSTM  # noqa: E402
from lstm.step import Step, check_step  # noqa: E402

__all__ = ["LSTM", "RNN", "Comparison", "GradientFlow", "ScalarLSTM", "Step", "check_step", "compare",
           "gradient_flow", "hand", "params"]
