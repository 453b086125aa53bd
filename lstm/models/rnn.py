"""A plain tanh RNN on Tensors, from the same primitives and with the same conventions as the LSTM and the GRU."""

from __future__ import annotations

from typing import Any

import numpy as np

from autograd import Tensor, concatenate, stack, stage
from lstm.models.lstm import Unrolled, _TensorModel
from lstm.models.params import init_params

__all__ = ["RNN"]


class RNN(_TensorModel):
    """A plain tanh RNN on Tensors, from the same primitives and with the same conventions as `LSTM`.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), PyTorch ``nn.RNN``'s parameters (``weight_ih_l0`` of shape
    (H, I), ...) and initialisation (uniform in ±1/sqrt(H)), sequence first, steps from t = 1, each step's nodes
    ``z[t=1]`` (the pre-activation) and ``h[t=1]`` in the stage ``t=1 / layer 0 / hidden state``.
    ``out, h_n = rnn(x, h0)``, as ``nn.RNN`` returns them. With no cell state its gradient reaches step t
    only through the product of every later step's tanh' and W_hh: what the LSTM's cell state was made to avoid.
    """

    blocks = 1
    state_names = ("h0",)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dtype: Any = np.float64,
                 seed: int = 0) -> None:
        self._set_sizes(input_size, hidden_size, num_layers)
        self._set_parameters(init_params(input_size, hidden_size, num_layers, seed, blocks=1), dtype)

    def forward(self, x: Any, h0: Any = None) -> tuple[Tensor, Tensor]:
        """``(out, h_n)``: out (T, B, H) from the last layer; h_n (num_layers, B, H) at the end."""
        run = self.unroll(x, h0)
        return run.out, run.h

    def unroll(self, x: Any, h0: Any = None) -> Unrolled:
        """The forward pass, keeping the per-step nodes h_t of every layer (no cell state: ``cell`` is None)."""
        x = self._as_input(x, "x")
        steps, batch = self._check_sequence(x.shape)
        h, = self._initial_state(h0, batch)
        ones = Tensor(np.ones((batch, 1), dtype=self.dtype), label="1")
        weights = [self._stacked_weights(layer) for layer in range(self.num_layers)]
        hidden: list[list[Tensor]] = [[] for _ in range(self.num_layers)]
        for t in range(1, steps + 1):
            with stage(f"t={t}"):
                below: Any = x[t - 1]
                below.label = f"x[t={t}]"
                for layer in range(self.num_layers):
                    with stage(f"layer {layer}"), stage("hidden state"):
                        gate_input = concatenate([below, h[layer], ones], axis=1)
                        gate_input.label = self._name("[x, h, 1]", t, layer)
                        z = gate_input @ weights[layer]
                        z.label = self._name("z", t, layer)
                        h[layer] = z.tanh()
                        h[layer].label = self._name("h", t, layer)
                    hidden[layer].append(h[layer])
                    below = h[layer]
        with stage("outputs"):
            out = concatenate(hidden[-1], axis=0).reshape(steps, batch, self.hidden_size)
            out.label = "out"
            h_n = stack(h)
            h_n.label = "h_n"
        return Unrolled(out, h_n, None, hidden, None)
