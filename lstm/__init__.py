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

from lstm import hand
from lstm.checks.bptt import BPTT, bptt
from lstm.checks.compare import Comparison, compare
from lstm.checks.compare_gru import compare_gru
from lstm.checks.flow import GradientFlow, gradient_flow
from lstm.checks.step import Step, check_step
from lstm.checks.step_gru import GRUStep, check_gru_step
from lstm.models import params
from lstm.models.gru import GRU
from lstm.models.lstm import LSTM, ScalarLSTM
from lstm.models.rnn import RNN

__all__ = ["BPTT", "GRU", "LSTM", "RNN", "Comparison", "GRUStep", "GradientFlow", "ScalarLSTM", "Step", "bptt",
           "check_gru_step", "check_step", "compare", "compare_gru", "gradient_flow", "hand", "params"]
