"""The GRU built from autograd primitives on Tensors, with PyTorch ``nn.GRU``'s parameters and equations.

For every layer and step t = 1 ... T (gate order r, z, n of ``nn.GRU``; the update gate is called u here, so
that z stays the LSTM's pre-activation, see `lstm.models.params`)::

    reset gate      r = sigmoid(a_r),  a_r = W_ir x_t + b_ir + W_hr h_{t-1} + b_hr
    update gate     u = sigmoid(a_u),  a_u = W_iz x_t + b_iz + W_hz h_{t-1} + b_hz
    candidate       hn = W_hn h_{t-1} + b_hn,  r_hn = r * hn
                    n = tanh(a_n),     a_n = W_in x_t + b_in + r_hn
    hidden state    h_t = (1 - u) * n + u * h_{t-1}

b_hn sits inside the reset product, as in ``nn.GRU`` (and cuDNN): r gates the whole recurrent part of the
candidate, bias included, so b_ih and b_hh cannot be folded into one bias as the LSTM's are. Each step makes
its three gates' input parts with one product, [x_t, 1] @ W_x (3, B, H), and their recurrent parts with
another, [h_{t-1}, 1] @ W_h; node names are those of `params.GRU_STEP_NODES` (``a_u[t=2]``, ``u[t=2]``,
``hn[t=2]``, ``h[t=2]``; ``h[t=2, layer 1]`` with several layers), the names `lstm.hand.gru` gives its
gradients.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from autograd import Tensor, concatenate, stage
from lstm.models.lstm import _HiddenStateModel
from lstm.models.params import GRU_GATES, GRU_STEP_NODES, init_params, step_name

__all__ = ["GRU"]


class GRU(_HiddenStateModel):
    """A multi-layer GRU on Tensors with PyTorch ``nn.GRU`` parameters, sequence first.

    ``out, h_n = gru(x, h0)`` with x (T, B, input_size), a numpy array or a Tensor, and h0 (num_layers, B,
    hidden_size), zeros when omitted; as ``nn.GRU`` returns them. ``GRU.from_state_dict(state)`` builds one from
    given weights (``weight_ih_l0`` (3H, I), rows in the order r, z, n). ``update_bias`` sets every update-gate
    bias after the usual draw (bias_ih's update block to it, bias_hh's to 0), as ``LSTM(forget_bias=...)`` does.
    """

    blocks = len(GRU_GATES)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dtype: Any = np.float64,
                 seed: int = 0, *, update_bias: float | None = None) -> None:
        self._set_sizes(input_size, hidden_size, num_layers)
        params = init_params(input_size, hidden_size, num_layers, seed, blocks=self.blocks)
        if update_bias is not None:
            # as the LSTM's forget_bias: the update block of bias_ih set, that of bias_hh zeroed, after the draw;
            # u near 1 keeps h_{t-1}, the GRU's own road for the gradient
            update = slice(UPDATE * hidden_size, (UPDATE + 1) * hidden_size)
            for layer in range(num_layers):
                params[f"bias_ih_l{layer}"][update] = update_bias
                params[f"bias_hh_l{layer}"][update] = 0.0
        self._set_parameters(params, dtype)

    def _layer_weights(self, layer: int) -> tuple[Tensor, Tensor]:
        """The gates' input weights [W_i· | b_i·] and recurrent weights [W_h· | b_h·], each stacked gate by gate:
        (3, I + 1, H) and (3, H + 1, H). The biases stay apart: b_hn is inside the reset product."""
        stacked = []
        with stage(f"layer {layer}"), stage("gate weights"):
            for kind, label in (("ih", "W_x"), ("hh", "W_h")):
                weight = concatenate([getattr(self, f"weight_{kind}_l{layer}"),
                                      getattr(self, f"bias_{kind}_l{layer}").reshape(-1, 1)], axis=1)
                weight = weight.reshape(self.blocks, self.hidden_size, -1).swapaxes(1, 2)
                weight.label = label if self.num_layers == 1 else f"{label}_l{layer}"
                stacked.append(weight)
        return stacked[0], stacked[1]

    def _cell(self, weights: tuple[Tensor, Tensor], x_t: Any, h_prev: Any, ones: Tensor, t: int,
              layer: int) -> Tensor:
        """Step t of one layer: h_t from x_t and h_{t-1}."""
        weight_x, weight_h = weights
        names = _step_names(t, layer, self.num_layers)
        input_part = concatenate([x_t, ones], axis=1) @ weight_x  # (3, B, H): W_i· x_t + b_i·, gate by gate
        input_part.label = names["[x, 1] W_x"]
        recurrent = concatenate([h_prev, ones], axis=1) @ weight_h  # (3, B, H): W_h· h_{t-1} + b_h·
        recurrent.label = names["[h, 1] W_h"]
        reset_gate, update_gate, candidate = GRU_GATES
        gates = []
        for k, gate in enumerate((reset_gate, update_gate)):
            with _GATE_STAGES[k]:
                pre_activation = input_part[k] + recurrent[k]
                pre_activation.label = names[gate.pre_activation]
                activation = pre_activation.sigmoid()
                activation.label = names[gate.letter]
            gates.append(activation)
        r, u = gates
        with _GATE_STAGES[2]:
            hn = recurrent[2]  # W_hn h_{t-1} + b_hn: the bias inside the reset product, as in nn.GRU
            hn.label = names["hn"]
            r_hn = r * hn
            r_hn.label = names["r_hn"]
            a_n = input_part[2] + r_hn
            a_n.label = names[candidate.pre_activation]
            n = a_n.tanh()
            n.label = names[candidate.letter]
        with _HIDDEN_STATE:
            h = (1.0 - u) * n + u * h_prev
            h.label = names["h"]
        return h


UPDATE = 1  # the update gate's row block (nn.GRU's z)
_GATE_STAGES = tuple(stage(gate.stage) for gate in GRU_GATES)
_HIDDEN_STATE = stage("hidden state")


@functools.lru_cache(maxsize=4096)
def _step_names(t: int, layer: int, num_layers: int) -> dict[str, str]:
    """The names of step t's nodes, by kind, made once."""
    return {kind: step_name(kind, t, layer, num_layers) for kind in ("[x, 1] W_x", "[h, 1] W_h", *GRU_STEP_NODES)}
