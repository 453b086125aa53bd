"""lstm: an LSTM built from autograd primitives, its backward pass derived by hand, and the two side by side.

`LSTM` (Tensors, fast) and `ScalarLSTM` (one Value per number, for drawing) share PyTorch ``nn.LSTM``
parameter names and layout with the numpy derivation in `hand`; `compare` checks all of them and finite
differences against each other; `gradient_flow` measures dL/dh_t and dL/dc_t through time.
"""

from lstm import hand
from lstm.compare import Comparison, compare
from lstm.flow import GradientFlow, gradient_flow
from lstm.model import LSTM, ScalarLSTM

__all__ = ["LSTM", "Comparison", "GradientFlow", "ScalarLSTM", "compare", "gradient_flow", "hand"]
