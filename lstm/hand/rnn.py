"""A plain tanh RNN's forward pass and its backward pass derived by hand, in plain numpy, beside `lstm.hand.lstm`
and `lstm.hand.gru`.

The stages of step t = 1 ... T (``nn.RNN``'s equations)::

    stage 1  affine:  z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    stage 2  hidden:  h_t = tanh(z)

Going back, h_t forks into the output (or the layer above) and step t+1, whose branch is W_hh^T dL/dz_{t+1}:
the only road back in time, through every later step's tanh' and W_hh. ``backward(..., adjoints=True)``
returns each stage's gradient under the `lstm.RNN` model's node names (``h[t=2]``, ``z[t=2]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm.hand.lstm import gradients, sequence_and_state, upstream
from lstm.models.params import step_name

__all__ = ["RNNCache", "backward", "forward"]


@dataclass(frozen=True)
class RNNCache:
    """What :func:`forward` saved: the parameters, and per layer (bottom first) its inputs (T, B, I_k), the
    h_{t-1} it read (T, B, H) and its h_t (T, B, H)."""

    params: dict[str, np.ndarray]
    inputs: tuple[np.ndarray, ...]
    h_prev: tuple[np.ndarray, ...]
    hidden: tuple[np.ndarray, ...]


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, RNNCache]:
    """Run a (multi-layer) tanh RNN over x (T, B, I): ``(out, h_n, cache)``, out (T, B, H), h_n (L, B, H)."""
    layer_input, h0, dtype = sequence_and_state(params, 1, x, h0)
    inputs, h_prev, hidden = [], [], []
    for layer in range(len(h0)):
        weight_hh = params[f"weight_hh_l{layer}"]
        input_part = layer_input @ params[f"weight_ih_l{layer}"].T + params[f"bias_ih_l{layer}"] \
            + params[f"bias_hh_l{layer}"]  # stage 1's input half, every step at once
        sequence = np.empty(input_part.shape, dtype=dtype)
        h = h0[layer]
        for t in range(len(input_part)):
            h = sequence[t] = np.tanh(input_part[t] + h @ weight_hh.T)  # stages 1 and 2
        inputs.append(layer_input)
        h_prev.append(np.concatenate([h0[layer][None], sequence[:-1]]))
        hidden.append(sequence)
        layer_input = sequence
    h_n = np.stack([sequence[-1] for sequence in hidden])
    return layer_input, h_n, RNNCache(params, tuple(inputs), tuple(h_prev), tuple(hidden))


def backward(cache: RNNCache, d_out: np.ndarray, d_h: np.ndarray | None = None, *, adjoints: bool = False
             ) -> dict[str, np.ndarray]:
    """Gradients from dL/d out (T, B, H) and dL/d h_n (L, B, H; zeros when None): every parameter's, ``"x"`` and
    ``"h0"``; with ``adjoints=True`` also ``h[t=k]`` and ``z[t=k]`` for every step (top layer first, t = T
    first)."""
    if not isinstance(cache, RNNCache):
        raise TypeError(f"cache must be the RNNCache returned by forward(), got {type(cache).__name__}")
    num_layers = len(cache.hidden)
    steps, batch, hidden_size = cache.hidden[-1].shape
    dtype = cache.hidden[-1].dtype
    d_sequence = upstream("d_out", d_out, (steps, batch, hidden_size), dtype)
    state_shape = (num_layers, batch, hidden_size)
    d_h = upstream("d_h", d_h, state_shape, dtype, optional=True)
    grads: dict[str, np.ndarray] = {}
    stages: dict[str, np.ndarray] = {}
    d_h0 = np.empty(state_shape, dtype)
    for layer in reversed(range(num_layers)):  # layers are stages too: top down
        weight_hh = cache.params[f"weight_hh_l{layer}"]
        d_z_all = np.empty((steps, batch, hidden_size), dtype)
        d_from_next = d_h[layer]  # what step t+1 sends back to h_t; at t = T, dL/dh_n
        for t in reversed(range(steps)):
            d_hidden = d_sequence[t] + d_from_next  # fork on h_t: the output (or layer above) and step t+1
            h = cache.hidden[layer][t]
            d_z_all[t] = d_hidden * (1.0 - h * h)  # stage 2 backward: tanh' = 1 - tanh^2
            if adjoints:
                stages[step_name("h", t + 1, layer, num_layers)] = d_hidden
                stages[step_name("z", t + 1, layer, num_layers)] = d_z_all[t].copy()
            d_from_next = d_z_all[t] @ weight_hh  # stage 1 backward: dz/dh_{t-1} = W_hh
        d_h0[layer] = d_from_next
        # each weight is a fork over steps and batch items: tensordot sums their outer products
        grads[f"weight_ih_l{layer}"] = np.tensordot(d_z_all, cache.inputs[layer], axes=([0, 1], [0, 1]))
        grads[f"weight_hh_l{layer}"] = np.tensordot(d_z_all, cache.h_prev[layer], axes=([0, 1], [0, 1]))
        grads[f"bias_ih_l{layer}"] = d_z_all.sum(axis=(0, 1))
        grads[f"bias_hh_l{layer}"] = grads[f"bias_ih_l{layer}"].copy()  # both biases are added straight into z
        d_sequence = d_z_all @ cache.params[f"weight_ih_l{layer}"]  # dz/dx_t = W_ih
    return gradients(cache.params, grads, d_sequence, {"h0": d_h0}, stages)
