"""lstm: an LSTM built from autograd primitives, its backward pass derived by hand, and the two side by side.

`LSTM` (Tensors, fast) and `ScalarLSTM` (one Value per number, for drawing) share PyTorch ``nn.LSTM``
parameter names and layout with the numpy derivation in `hand`; `params` states that layout, the gate order and
the initialisation once for all of them. `RNN` is a plain tanh RNN built the same way, for comparison.
`compare` checks the models, finite differences and a derivation of your own against each other, and
`check_step` a backward pass through one step written by you (both with `autograd.check_derivation`, which
names the first stage that goes wrong); `gradient_flow` measures dL/dh_t and dL/dc_t through time.
"""

from lstm import hand
from lstm.checks.compare import Comparison, compare
from lstm.checks.flow import GradientFlow, gradient_flow
from lstm.checks.step import Step, check_step
from lstm.models import params
from lstm.models.lstm import LSTM, RNN, ScalarLSTM

__all__ = ["LSTM", "RNN", "Comparison", "GradientFlow", "ScalarLSTM", "Step", "check_step", "compare",
           "gradient_flow", "hand", "params"]
