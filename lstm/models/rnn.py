"""A plain tanh RNN on Tensors, from the same primitives and with the same conventions as the LSTM and the GRU."""

from __future__ import annotations

from typing import Any

import numpy as np

from autograd import Tensor, concatenate, stage
from lstm.models.lstm import _HiddenStateModel
from lstm.models.params import init_params

__all__ = ["RNN"]


class RNN(_HiddenStateModel):
    """A plain tanh RNN on Tensors, from the same primitives and with the same conventions as `LSTM`.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), PyTorch ``nn.RNN``'s parameters (``weight_ih_l0`` of shape
    (H, I), ...) and initialisation (uniform in ±1/sqrt(H)), sequence first, steps from t = 1, each step's nodes
    ``z[t=1]`` (the pre-activation) and ``h[t=1]`` in the stage ``t=1 / layer 0 / hidden state``.
    ``out, h_n = rnn(x, h0)``, as ``nn.RNN`` returns them. With no cell state its gradient reaches step t
    only through the product of every later step's tanh' and W_hh: what the LSTM's cell state was made to avoid.
    """

    blocks = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dtype: Any = np.float64,
                 seed: int = 0) -> None:
        self._set_sizes(input_size, hidden_size, num_layers)
        self._set_parameters(init_params(input_size, hidden_size, num_layers, seed, blocks=1), dtype)

    def _layer_weights(self, layer: int) -> Tensor:
        return self._stacked_weights(layer)

    def _cell(self, weight: Tensor, x_t: Any, h_prev: Any, ones: Tensor, t: int, layer: int) -> Tensor:
        """Step t of one layer: h_t = tanh([x_t, h_{t-1}, 1] @ W)."""
        with _HIDDEN_STATE:
            gate_input = concatenate([x_t, h_prev, ones], axis=1)
            gate_input.label = self._name("[x, h, 1]", t, layer)
            z = gate_input @ weight
            z.label = self._name("z", t, layer)
            h = z.tanh()
            h.label = self._name("h", t, layer)
        return h


_HIDDEN_STATE = stage("hidden state")
