"""An LSTM forward pass and its backward pass derived by hand, in plain numpy.

This is the reference the autograd-built LSTM is compared against. Every gradient here was worked
out on paper following the three principles of Kang & Seo, "Understanding Backpropagation as
Applied to LSTM":

1. **Forward propagation in functional stages.** Each time step t = 1 ... T is a chain of small
   stages, and each stage takes known inputs to known outputs::

       stage 1  affine:   z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh,  split into z_i, z_f, z_g, z_o
       stage 2  gates:    i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
       stage 3  cell:     c_t = f * c_{t-1} + i * g
       stage 4  squash:   tanh_c_t = tanh(c_t)
       stage 5  hidden:   h_t = o * tanh_c_t

   Step 1 reads the initial state (h0, c0) as (h_{t-1}, c_{t-1}). The forward pass saves every
   stage's inputs and outputs in a :class:`Cache`.

2. **The chain rule.** Each stage has local partial derivatives (written next to the code below);
   the gradient reaching a stage's input is the gradient at its output times that local derivative.

3. **Reverse through the stages and the forks.** The backward pass walks the stages in reverse
   order, and wherever one value feeds several stages (a *fork*) the gradients coming back along
   the branches are added. The forks of an LSTM are:

   * ``h_t`` feeds the output (or the next layer) *and* the four gates of step t+1;
   * ``c_t`` feeds ``tanh(c_t)`` *and* the cell update of step t+1;
   * ``h_{t-1}`` and ``x_t`` each feed all four gates;
   * every weight and bias is reused at every time step and for every batch item.

The stages' values have the names the models give their nodes (`lstm.params`): ``z_f[t=2]``,
``f[t=2]``, ``c[t=2]``, ``tanh_c[t=2]``, ``h[t=2]``, with the layer added when there are several
(``h[t=2, layer 1]``). ``backward(..., adjoints=True)`` returns the gradient of every one of them
under its name, so this derivation can be checked stage by stage (`autograd.check_derivation`).

Parameters use the names and layout of PyTorch's ``nn.LSTM`` (see `lstm.params`): for layer ``k``,
``weight_ih_l{k}`` is (4H, I) for k = 0 and (4H, H) above, ``weight_hh_l{k}`` is (4H, H),
``bias_ih_l{k}`` and ``bias_hh_l{k}`` are (4H,), the 4H rows stacked in the gate order of
``params.GATES``: input i, forget f, cell candidate g, output o. Tensors are sequence-first: ``x``
is (T, B, I), states are (L, B, H).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm.models.params import GATES, init_params, sizes_of, step_name

__all__ = ["Cache", "LayerCache", "backward", "forward", "init_params"]


@dataclass(frozen=True)
class LayerCache:
    """Everything one layer's forward pass computed, stacked over time (leading axis T).

    All arrays are (T, B, ·) in the parameters' dtype; index ``[t - 1]`` gives step t.

    Attributes:
        inputs: (T, B, I_k) what the layer read at each step: ``x`` for layer 0, the h sequence of
            the layer below otherwise.
        h_prev: (T, B, H) the hidden state h_{t-1} fed into the gates at step t (``h_prev[0]``,
            for step 1, is the initial state ``h0[k]``).
        c_prev: (T, B, H) the cell state c_{t-1} entering step t (``c_prev[0]`` is ``c0[k]``).
        gates: (T, B, 4H) the four gates' activations side by side, in the order of GATES;
        input_gate, forget_gate, cell_candidate, output_gate: (T, B, H) each gate's columns of ``gates``
            (views): i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o).
        cell: (T, B, H) the new cell state c_t.
        tanh_cell: (T, B, H) tanh_c_t = tanh(c_t), kept so the backward pass need not recompute it.
    """

    inputs: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    gates: np.ndarray
    input_gate: np.ndarray
    forget_gate: np.ndarray
    cell_candidate: np.ndarray
    output_gate: np.ndarray
    cell: np.ndarray
    tanh_cell: np.ndarray


@dataclass(frozen=True)
class Cache:
    """What :func:`forward` saved for :func:`backward`.

    Attributes:
        params: the parameter dict the forward pass ran with (the same arrays, not copies).
        layers: one :class:`LayerCache` per layer, bottom layer first.
    """

    params: dict[str, np.ndarray]
    layers: tuple[LayerCache, ...]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].cell.dtype


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise ValueError(f"{name} has shape {array.shape}, expected {expected}")


def sequence_and_state(params: dict[str, np.ndarray], blocks: int, x: Any, h0: Any
                       ) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """x (T, B, I) and h0 (L, B, H) of a model whose state is h alone (the GRU's and the RNN's hand derivations),
    in the parameters' dtype and checked, h0 zeros when not given; and that dtype."""
    input_size, hidden_size, num_layers, dtype = sizes_of(params, blocks)
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != input_size or 0 in x.shape[:2]:
        raise ValueError(f"x must be (T, B, {input_size}) with T, B >= 1, time first; got shape {x.shape}")
    state_shape = (num_layers, x.shape[1], hidden_size)
    h0 = np.zeros(state_shape, dtype=dtype) if h0 is None else np.asarray(h0).astype(dtype, copy=False)
    if h0.shape != state_shape:
        raise ValueError(f"h0 has shape {h0.shape}, expected (num_layers, batch, hidden) = {state_shape}")
    return x.astype(dtype, copy=False), h0, dtype


def gradients(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], d_x: np.ndarray,
              initial: dict[str, np.ndarray], stages: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """What every model's hand derivation returns: each parameter's gradient, in the order of the params, then
    ``"x"`` and the initial states' (``"h0"``, and ``"c0"``), then the stages' when asked for (top layer first,
    then each lower one: from the loss down, as the derivation went)."""
    return {**{key: grads[key] for key in params}, "x": d_x, **initial, **(stages or {})}


def upstream(name: str, given: Any, shape: tuple[int, ...], dtype: np.dtype, optional: bool = False) -> np.ndarray:
    """An upstream gradient handed to a backward pass (dL/d out, dL/d h_n, ...): in the pass's dtype and of its
    shape, or a clear error; zeros where an ``optional`` one is not given (every model's hand derivation)."""
    if given is None and optional:
        return np.zeros(shape, dtype=dtype)
    given = np.asarray(given).astype(dtype, copy=False)
    _check_shape(name, given, shape)
    return given


# --------------------------------------------------------------------------------------------------
# The gates' activations, all four at once
# --------------------------------------------------------------------------------------------------


def _gate_columns(hidden: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of z (the gates' blocks of H columns, in the order of GATES): ``scale``, ``shift`` and
    ``kind``, with which one expression gives every gate's activation and its derivative.

    Since σ(u) = ½ tanh(u/2) + ½, a gate's activation is a = tanh(scale·z)·scale + shift on its columns:
    σ(z) with scale = shift = ½ on a sigmoid gate's (i, f, o), tanh(z) with scale = 1, shift = 0 on the cell
    candidate's (g). Its derivative is (1 - a)(kind + a): σ' = σ(1 - σ) with kind = 0, tanh' = (1 - tanh)(1 +
    tanh) = 1 - tanh^2 with kind = 1. Four numpy calls then do what twelve would do gate by gate: on small
    arrays a call costs more than its arithmetic. (σ computed this way never overflows, in float32 either.)
    """
    sigmoid = np.repeat([gate.activation == "sigmoid" for gate in GATES], hidden)
    scale = np.where(sigmoid, 0.5, 1.0).astype(dtype)
    shift = np.where(sigmoid, 0.5, 0.0).astype(dtype)
    return scale, shift, (1.0 - shift * 2.0).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------------------


def forward(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    state: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], Cache]:
    """Run a (multi-layer) LSTM over a sequence, saving every stage for :func:`backward`.

    Args:
        params: ``nn.LSTM``-style parameters (see the module docstring).
        x: (T, B, I) input sequence, time first.
        state: optional ``(h0, c0)``, each (L, B, H); zeros when None.

    Returns:
        ``(out, (h_n, c_n), cache)``: ``out`` is (T, B, H), the last layer's hidden state at every
        step; ``h_n`` and ``c_n`` are (L, B, H), each layer's final hidden and cell states. All are
        in the parameters' dtype.
    """
    input_size, hidden_size, num_layers, dtype = sizes_of(params)

    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (T, B, I) with time first, got shape {x.shape}")
    if x.shape[2] != input_size:
        raise ValueError(
            f"x has feature size {x.shape[2]} (shape {x.shape}), but weight_ih_l0 has shape "
            f"{np.shape(params['weight_ih_l0'])}, which expects input size {input_size}"
        )
    x = x.astype(dtype, copy=False)
    steps, batch = x.shape[0], x.shape[1]
    state_shape = (num_layers, batch, hidden_size)

    if state is None:
        h0 = np.zeros(state_shape, dtype=dtype)
        c0 = np.zeros(state_shape, dtype=dtype)
    else:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError("state must be a pair (h0, c0) of arrays shaped (num_layers, batch, hidden)")
        h0, c0 = (np.asarray(s).astype(dtype, copy=False) for s in state)
        _check_shape("h0 (state[0])", h0, state_shape)
        _check_shape("c0 (state[1])", c0, state_shape)

    layer_input = x
    layers: list[LayerCache] = []
    final_h = np.empty(state_shape, dtype=dtype)
    final_c = np.empty(state_shape, dtype=dtype)
    for layer in range(num_layers):
        cache, hidden_sequence = _layer_forward(params, layer, layer_input, h0[layer], c0[layer])
        layers.append(cache)
        final_h[layer] = hidden_sequence[-1] if steps else h0[layer]
        final_c[layer] = cache.cell[-1] if steps else c0[layer]
        # Multi-layer: layer k+1 reads layer k's hidden sequence as its input sequence.
        layer_input = hidden_sequence
    return layer_input, (final_h, final_c), Cache(params=params, layers=tuple(layers))


def _layer_forward(
    params: dict[str, np.ndarray], layer: int, inputs: np.ndarray, h_initial: np.ndarray, c_initial: np.ndarray
) -> tuple[LayerCache, np.ndarray]:
    """One layer over the whole sequence: its cache, and its hidden states h_1 ... h_T (T, B, H)."""
    weight_ih = params[f"weight_ih_l{layer}"]
    weight_hh = params[f"weight_hh_l{layer}"]
    bias = params[f"bias_ih_l{layer}"] + params[f"bias_hh_l{layer}"]
    steps, batch, _ = inputs.shape
    hidden = weight_hh.shape[1]
    dtype = weight_hh.dtype
    scale, shift, _ = _gate_columns(hidden, dtype)
    gates = np.empty((steps, batch, len(GATES) * hidden), dtype=dtype)
    cell, tanh_cell, hidden_sequence = (np.empty((steps, batch, hidden), dtype=dtype) for _ in range(3))
    i, f, g, o = (gates[..., k * hidden:(k + 1) * hidden] for k in range(len(GATES)))  # views, (T, B, H)

    # The input half of stage 1 does not depend on the recurrence, so it is done for all steps in
    # one matrix product; only the h_{t-1} half has to wait for the previous step.
    input_part = inputs @ weight_ih.T + bias  # (T, B, 4H)

    h, c = h_initial, c_initial
    for t in range(steps):  # index t holds step t + 1: step 1 reads the initial state
        # Stage 1, affine: z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, the gates' blocks side by side.
        z = np.matmul(h, weight_hh.T, out=gates[t])
        z += input_part[t]
        # Stage 2, gates: i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o), as tanh(scale·z)·scale + shift
        # on every column at once (see _gate_columns); gates[t] then holds [i | f | g | o].
        z *= scale
        np.tanh(z, out=z)
        z *= scale
        z += shift
        # Stage 3, cell: c_t = f * c_{t-1} + i * g.
        c = np.multiply(f[t], c, out=cell[t])
        c += i[t] * g[t]
        # Stage 4, squash: tanh_c_t = tanh(c_t).
        np.tanh(c, out=tanh_cell[t])
        # Stage 5, hidden: h_t = o * tanh_c_t.
        h = np.multiply(o[t], tanh_cell[t], out=hidden_sequence[t])

    # What each step read: h_{t-1} and c_{t-1}, the initial state at step 1.
    h_prev = np.concatenate([h_initial[None], hidden_sequence[:-1]]) if steps else hidden_sequence
    c_prev = np.concatenate([c_initial[None], cell[:-1]]) if steps else cell
    cache = LayerCache(inputs=inputs, h_prev=h_prev, c_prev=c_prev, gates=gates, input_gate=i, forget_gate=f,
                       cell_candidate=g, output_gate=o, cell=cell, tanh_cell=tanh_cell)
    return cache, hidden_sequence


# --------------------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------------------


def backward(
    cache: Cache,
    d_out: np.ndarray,
    d_h: np.ndarray | None = None,
    d_c: np.ndarray | None = None,
    *,
    adjoints: bool = False,
) -> dict[str, np.ndarray]:
    """Gradients of a loss, given the loss's gradient with respect to the forward pass's outputs.

    Args:
        cache: what :func:`forward` returned as its third value.
        d_out: (T, B, H) dLoss/d out.
        d_h: optional (L, B, H) dLoss/d h_n (the final hidden states); zeros when None.
        d_c: optional (L, B, H) dLoss/d c_n (the final cell states); zeros when None.
        adjoints: also return the gradient of every stage's value, each (B, H), under the names the
            models give their nodes: for every step t from T down to 1 (and every layer, top first)
            ``h[t=T]``, ``tanh_c[t=T]``, ``c[t=T]``, ``o[t=T]``, ``z_o[t=T]``, ``g[t=T]``, ...,
            ``z_i[t=T]``, in the order a derivation by hand meets them.

    Returns:
        A dict with the gradient for every parameter (same keys and shapes as the params) plus
        ``"x"`` (T, B, I), ``"h0"`` and ``"c0"`` (L, B, H), all in the parameters' dtype; then, with
        ``adjoints=True``, the stages' gradients. A user's derivation for `lstm.compare` has this
        signature and returns such a dict.
    """
    if not isinstance(cache, Cache):
        raise TypeError(f"cache must be the Cache returned by forward(), got {type(cache).__name__}")
    dtype = cache.dtype
    top = cache.layers[-1]
    steps, batch, hidden = top.cell.shape
    num_layers = cache.num_layers
    state_shape = (num_layers, batch, hidden)

    d_out = upstream("d_out", d_out, (steps, batch, hidden), dtype)
    d_h = upstream("d_h", d_h, state_shape, dtype, optional=True)
    d_c = upstream("d_c", d_c, state_shape, dtype, optional=True)

    grads: dict[str, np.ndarray] = {}
    stages: dict[str, np.ndarray] | None = {} if adjoints else None
    d_h0 = np.empty(state_shape, dtype=dtype)
    d_c0 = np.empty(state_shape, dtype=dtype)
    # Layers are stages too: walk them top-down. The gradient reaching the top layer's hidden
    # sequence is d_out; the gradient reaching a lower layer's hidden sequence is the gradient with
    # respect to the input of the layer above it.
    d_hidden_sequence = d_out
    for layer in reversed(range(num_layers)):
        layer_grads, d_inputs, d_h0[layer], d_c0[layer] = _layer_backward(
            cache.params, layer, cache.layers[layer], d_hidden_sequence, d_h[layer], d_c[layer],
            stages, num_layers
        )
        grads.update(layer_grads)
        d_hidden_sequence = d_inputs

    return gradients(cache.params, grads, d_hidden_sequence, {"h0": d_h0, "c0": d_c0}, stages)


# The stages' gradients in the order a derivation by hand meets them, from h_t back to the pre-activations.
_MET = ("h", "tanh_c", "c", "o", "z_o", "g", "z_g", "f", "z_f", "i", "z_i")


def _layer_backward(
    params: dict[str, np.ndarray],
    layer: int,
    saved: LayerCache,
    d_hidden_sequence: np.ndarray,
    d_h_final: np.ndarray,
    d_c_final: np.ndarray,
    stages: dict[str, np.ndarray] | None,
    num_layers: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Reverse one layer through time. Returns (param grads, d inputs, d h_initial, d c_initial),
    and records each stage's gradient in ``stages`` when it is a dict."""
    weight_ih = params[f"weight_ih_l{layer}"]
    weight_hh = params[f"weight_hh_l{layer}"]
    steps, batch, hidden = saved.cell.shape
    _, _, kind = _gate_columns(hidden, weight_hh.dtype)
    d_z_all = np.empty((steps, batch, len(GATES) * hidden), dtype=weight_hh.dtype)

    # What flows back into step t from step t+1. At the last step that is whatever the loss says
    # about the final states (d_h, d_c), since the final states are outputs of the whole pass.
    d_h_from_next = d_h_final
    d_c_from_next = d_c_final

    for t in reversed(range(steps)):  # index t holds step t + 1
        i = saved.input_gate[t]
        f = saved.forget_gate[t]
        g = saved.cell_candidate[t]
        o = saved.output_gate[t]
        tanh_c = saved.tanh_cell[t]
        # The gradients reaching the four gates' activations are written side by side into d_z_all[t],
        # which stage 2 then turns into the pre-activations' gradients in place: d_z = [d_z_i | ... | d_z_o].
        d_z = d_z_all[t]
        d_i, d_f, d_g, d_o = (d_z[:, k * hidden:(k + 1) * hidden] for k in range(len(GATES)))

        # Fork on h_t: it went to the output (or the layer above) and to step t+1's four gates;
        # its gradient is the sum over both branches.
        d_h = d_hidden_sequence[t] + d_h_from_next

        # Stage 5 backward, h_t = o * tanh_c_t:  dh/do = tanh_c_t,  dh/dtanh_c = o.
        np.multiply(d_h, tanh_c, out=d_o)
        d_tanh_c = d_h * o

        # Stage 4 backward, tanh_c_t = tanh(c_t):  d tanh(u)/du = 1 - tanh(u)^2.
        # Fork on c_t: it went into tanh(c_t) and into step t+1's cell update; sum both branches.
        d_c = d_tanh_c * (1.0 - tanh_c * tanh_c)
        d_c += d_c_from_next

        # Stage 3 backward, c_t = f * c_{t-1} + i * g:
        #   dc/df = c_{t-1},  dc/dc_{t-1} = f,  dc/di = g,  dc/dg = i.
        np.multiply(d_c, saved.c_prev[t], out=d_f)
        d_c_from_next = d_c * f  # becomes the "from next step" branch of c_{t-1}'s fork
        np.multiply(d_c, g, out=d_i)
        np.multiply(d_c, i, out=d_g)

        if stages is not None:  # copies of the gates' gradients: stage 2 turns them into the z's in place
            met = {"h": d_h, "tanh_c": d_tanh_c, "c": d_c,
                   **{gate.letter: block.copy() for gate, block in zip(GATES, (d_i, d_f, d_g, d_o))}}

        # Stage 2 backward, gate activations, all four at once (see _gate_columns):
        #   d σ(u)/du = σ(u) (1 - σ(u))  for i, f, o;   d tanh(u)/du = 1 - tanh(u)^2  for g;
        #   both (1 - a)(kind + a) in terms of the activation a.
        a = saved.gates[t]
        local = 1.0 - a
        local *= a + kind
        d_z *= local

        if stages is not None:  # in the order met above, from h_t back to the pre-activations
            met.update((gate.pre_activation, block.copy()) for gate, block in zip(GATES, (d_i, d_f, d_g, d_o)))
            stages.update((step_name(name, t + 1, layer, num_layers), met[name]) for name in _MET)

        # Stage 1 backward, z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh:  dz/dh_{t-1} = W_hh.
        # Fork on h_{t-1}: it fed all four gates, so its gradient is the sum of the four branches,
        #   sum over gates of dz_gate @ W_hh[gate rows]  ==  dz @ W_hh  (the product does the sum).
        d_h_from_next = d_z @ weight_hh

    # Stage 1 backward for the input and the parameters, for every step at once.
    # dz/dx_t = W_ih; x_t (or the layer below's h_t) fed all four gates, a fork summed by the product.
    d_inputs = d_z_all @ weight_ih  # (T, B, I_k)
    # dz/dW_ih = x_t, dz/dW_hh = h_{t-1}, dz/db = 1. Each parameter is a fork over every time step
    # and every batch item (the same array is used in all of them), so its gradient sums over both:
    # tensordot over axes (T, B) adds up the per-step, per-item outer products.
    d_weight_ih = np.tensordot(d_z_all, saved.inputs, axes=([0, 1], [0, 1]))  # (4H, I_k)
    d_weight_hh = np.tensordot(d_z_all, saved.h_prev, axes=([0, 1], [0, 1]))  # (4H, H)
    d_bias = d_z_all.sum(axis=(0, 1))  # (4H,)
    layer_grads = {
        f"weight_ih_l{layer}": d_weight_ih,
        f"weight_hh_l{layer}": d_weight_hh,
        # Both biases are added straight into z (dz/db = 1), so each gets the whole gradient.
        f"bias_ih_l{layer}": d_bias,
        f"bias_hh_l{layer}": d_bias.copy(),
    }
    # After the loop, the "from next step" gradients are those reaching the initial states.
    return layer_grads, d_inputs, d_h_from_next, d_c_from_next
