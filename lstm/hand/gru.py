"""A GRU forward pass and its backward pass derived by hand, in plain numpy, beside `lstm.hand.lstm`.

The stages of step t = 1 ... T (``nn.GRU``'s equations; the update gate is PyTorch's z, called u here so that
z stays the LSTM's pre-activation, see `lstm.models.params`)::

    stage 1  affine:    gx = W_ih x_t + b_ih,  gh = W_hh h_{t-1} + b_hh,  each split into blocks r, z, n
    stage 2  gates:     a_r = gx_r + gh_r,  r = σ(a_r);   a_u = gx_z + gh_z,  u = σ(a_u)
    stage 3  candidate: hn = gh_n,  r_hn = r * hn,  a_n = gx_n + r_hn,  n = tanh(a_n)
    stage 4  hidden:    h_t = (1 - u) * n + u * h_{t-1}

Going back, the forks are: h_{t-1} feeds the reset gate, the update gate, the candidate's hn *and* h_t directly
(the u * h_{t-1} term: the GRU's own highway, open when u is near 1); h_t feeds the output (or the next layer)
and step t+1; x_t feeds all three gates; every weight is used at every step. ``backward(..., adjoints=True)``
returns each stage's gradient under the name the `lstm.GRU` model gives the node (``h[t=2]``, ``n[t=2]``,
``a_n[t=2]``, ``r_hn[t=2]``, ``hn[t=2]``, ``u[t=2]``, ``a_u[t=2]``, ``r[t=2]``, ``a_r[t=2]``), so
`autograd.check_derivation` can check it stage by stage. Parameters in ``nn.GRU``'s layout: ``weight_ih_l{k}``
(3H, I_k), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (3H,), rows r, z, n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm.hand.lstm import gradients, sequence_and_state, upstream
from lstm.models.params import GRU_GATES, step_name

__all__ = ["GRUCache", "GRULayerCache", "backward", "forward"]

BLOCKS = len(GRU_GATES)


@dataclass(frozen=True)
class GRULayerCache:
    """One layer's forward values, stacked over time: (T, B, ·), index ``[t - 1]`` for step t."""

    inputs: np.ndarray  # x, or the hidden sequence of the layer below
    h_prev: np.ndarray  # h_{t-1}: h_prev[0] is the initial state
    reset: np.ndarray  # r
    update: np.ndarray  # u (nn.GRU's z)
    hn: np.ndarray  # W_hn h_{t-1} + b_hn
    candidate: np.ndarray  # n
    hidden: np.ndarray  # h_t


@dataclass(frozen=True)
class GRUCache:
    """What :func:`forward` saved for :func:`backward`: the parameters and one cache per layer, bottom first."""

    params: dict[str, np.ndarray]
    layers: tuple[GRULayerCache, ...]


def forward(params: dict[str, np.ndarray], x: np.ndarray, h0: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, GRUCache]:
    """Run a (multi-layer) GRU over x (T, B, I): ``(out, h_n, cache)``, out (T, B, H), h_n (L, B, H)."""
    x, h0, _ = sequence_and_state(params, BLOCKS, x, h0)
    layers, layer_input = [], x
    for layer in range(len(h0)):
        cache = _layer_forward(params, layer, layer_input, h0[layer])
        layers.append(cache)
        layer_input = cache.hidden  # layer k+1 reads layer k's hidden sequence
    h_n = np.stack([cache.hidden[-1] for cache in layers])
    return layer_input, h_n, GRUCache(params, tuple(layers))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * a) + 0.5  # σ(a) = ½ tanh(a/2) + ½: never overflows


def _layer_forward(params: dict[str, np.ndarray], layer: int, inputs: np.ndarray, h_initial: np.ndarray
                   ) -> GRULayerCache:
    weight_hh, bias_hh = params[f"weight_hh_l{layer}"], params[f"bias_hh_l{layer}"]
    hidden_size = weight_hh.shape[1]
    blocks = [slice(k * hidden_size, (k + 1) * hidden_size) for k in range(BLOCKS)]  # r, z, n
    # Stage 1's input half does not wait for the recurrence: all steps in one product.
    gx_all = inputs @ params[f"weight_ih_l{layer}"].T + params[f"bias_ih_l{layer}"]  # (T, B, 3H)
    saved: dict[str, list[np.ndarray]] = {name: [] for name in ("h_prev", "reset", "update", "hn", "candidate",
                                                                "hidden")}
    h = h_initial
    for gx in gx_all:
        gh = h @ weight_hh.T + bias_hh  # stage 1, recurrent half: W_hh h_{t-1} + b_hh
        r = _sigmoid(gx[:, blocks[0]] + gh[:, blocks[0]])  # stage 2
        u = _sigmoid(gx[:, blocks[1]] + gh[:, blocks[1]])
        hn = gh[:, blocks[2]]  # stage 3: b_hn inside the reset product
        n = np.tanh(gx[:, blocks[2]] + r * hn)
        h_new = (1.0 - u) * n + u * h  # stage 4
        for name, value in zip(saved, (h, r, u, hn, n, h_new)):
            saved[name].append(value)
        h = h_new
    return GRULayerCache(inputs, **{name: np.stack(values) for name, values in saved.items()})


# The stages' gradients in the order a derivation by hand meets them, from h_t back to the pre-activations.
_MET = ("h", "n", "a_n", "r_hn", "hn", "u", "a_u", "r", "a_r")


def backward(cache: GRUCache, d_out: np.ndarray, d_h: np.ndarray | None = None, *, adjoints: bool = False
             ) -> dict[str, np.ndarray]:
    """Gradients of a loss from dL/d out (T, B, H) and dL/d h_n (L, B, H; zeros when None): every parameter's,
    ``"x"`` and ``"h0"``; with ``adjoints=True`` also every stage's, by node name (top layer first, t = T
    first)."""
    if not isinstance(cache, GRUCache):
        raise TypeError(f"cache must be the GRUCache returned by forward(), got {type(cache).__name__}")
    top = cache.layers[-1]
    steps, batch, hidden_size = top.hidden.shape
    num_layers = len(cache.layers)
    dtype = top.hidden.dtype
    d_out = upstream("d_out", d_out, (steps, batch, hidden_size), dtype)
    state_shape = (num_layers, batch, hidden_size)
    d_h = upstream("d_h", d_h, state_shape, dtype, optional=True)
    grads: dict[str, np.ndarray] = {}
    stages: dict[str, np.ndarray] = {}
    d_h0 = np.empty(state_shape, dtype)
    d_sequence = d_out
    for layer in reversed(range(num_layers)):  # layers are stages too: top down
        layer_grads, d_sequence, d_h0[layer] = _layer_backward(cache.params, layer, cache.layers[layer], d_sequence,
                                                               d_h[layer], stages if adjoints else None, num_layers)
        grads.update(layer_grads)
    return gradients(cache.params, grads, d_sequence, {"h0": d_h0}, stages)


def _layer_backward(params: dict[str, np.ndarray], layer: int, saved: GRULayerCache, d_sequence: np.ndarray,
                    d_h_final: np.ndarray, stages: dict[str, np.ndarray] | None, num_layers: int
                    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Reverse one layer through time: (parameter gradients, d inputs, d h_initial)."""
    weight_hh = params[f"weight_hh_l{layer}"]
    steps, batch, hidden_size = saved.hidden.shape
    d_gx_all = np.empty((steps, batch, BLOCKS * hidden_size), dtype=weight_hh.dtype)  # d(W_ih x_t + b_ih)
    d_gh_all = np.empty_like(d_gx_all)  # d(W_hh h_{t-1} + b_hh)
    d_h_from_next = d_h_final  # what step t+1 sends back to h_t; at t = T, dL/dh_n
    for t in reversed(range(steps)):  # index t holds step t + 1
        r, u, hn, n, h_prev = saved.reset[t], saved.update[t], saved.hn[t], saved.candidate[t], saved.h_prev[t]
        # Fork on h_t: the output (or the layer above) and step t+1; the branches add.
        d_h = d_sequence[t] + d_h_from_next
        # Stage 4 backward, h_t = (1 - u) * n + u * h_{t-1}:
        #   dh/dn = 1 - u,  dh/du = h_{t-1} - n,  dh/dh_{t-1} = u (the direct branch of h_{t-1}'s fork).
        d_n = d_h * (1.0 - u)
        d_u = d_h * (h_prev - n)
        d_h_direct = d_h * u
        # Stage 3 backward: n = tanh(a_n): 1 - n^2; a_n = gx_n + r_hn: both get d_a_n; r_hn = r * hn: r and hn.
        d_a_n = d_n * (1.0 - n * n)
        d_r = d_a_n * hn
        d_hn = d_a_n * r
        # Stage 2 backward: σ' = σ (1 - σ); a = gx + gh, so each block of gx and gh gets d_a.
        d_a_u = d_u * u * (1.0 - u)
        d_a_r = d_r * r * (1.0 - r)
        d_gx_all[t] = np.concatenate([d_a_r, d_a_u, d_a_n], axis=1)
        d_gh_all[t] = np.concatenate([d_a_r, d_a_u, d_hn], axis=1)
        if stages is not None:
            met = {"h": d_h, "n": d_n, "a_n": d_a_n, "r_hn": d_a_n, "hn": d_hn, "u": d_u, "a_u": d_a_u,
                   "r": d_r, "a_r": d_a_r}
            stages.update((step_name(name, t + 1, layer, num_layers), met[name]) for name in _MET)
        # Stage 1 backward, and h_{t-1}'s fork: the direct branch u * h_{t-1} plus the three gates' branches,
        # sum over blocks of d_gh_block @ W_h·  ==  d_gh @ W_hh (the product does the sum).
        d_h_from_next = d_h_direct + d_gh_all[t] @ weight_hh
    # dgx/dx = W_ih, dgx/dW_ih = x_t, dgh/dW_hh = h_{t-1}; each weight is a fork over steps and batch items.
    grads = {f"weight_ih_l{layer}": np.tensordot(d_gx_all, saved.inputs, axes=([0, 1], [0, 1])),
             f"weight_hh_l{layer}": np.tensordot(d_gh_all, saved.h_prev, axes=([0, 1], [0, 1])),
             f"bias_ih_l{layer}": d_gx_all.sum(axis=(0, 1)),
             f"bias_hh_l{layer}": d_gh_all.sum(axis=(0, 1))}
    return grads, d_gx_all @ params[f"weight_ih_l{layer}"], d_h_from_next
