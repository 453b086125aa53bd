"""An LSTM forward pass and its backward pass derived by hand, in plain numpy.

This is the reference the autograd-built LSTM is compared against. Every gradient here was worked
out on paper following the three principles of Kang & Seo, "Understanding Backpropagation as
Applied to LSTM":

1. **Forward propagation in functional stages.** Each time step is a chain of small stages, and
   each stage takes known inputs to known outputs::

       stage 1  affine:      z     = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      (4H pre-activations)
       stage 2  gates:       i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
       stage 3  cell:        c_t   = f * c_{t-1} + i * g
       stage 4  squash:      k_t   = tanh(c_t)
       stage 5  hidden:      h_t   = o * k_t

   The forward pass saves every stage's inputs and outputs in a :class:`Cache`.

2. **The chain rule.** Each stage has local partial derivatives (written next to the code below);
   the gradient reaching a stage's input is the gradient at its output times that local derivative.

3. **Reverse through the stages and the forks.** The backward pass walks the stages in reverse
   order, and wherever one value feeds several stages (a *fork*) the gradients coming back along
   the branches are added. The forks of an LSTM are:

   * ``h_t`` feeds the output (or the next layer) *and* the four gates of step t+1;
   * ``c_t`` feeds ``tanh(c_t)`` *and* the cell update of step t+1;
   * ``h_{t-1}`` and ``x_t`` each feed all four gates;
   * every weight and bias is reused at every time step and for every batch item.

Parameters use the names and layout of PyTorch's ``nn.LSTM``: for layer ``k``, ``weight_ih_l{k}``
is (4H, I) for k = 0 and (4H, H) above, ``weight_hh_l{k}`` is (4H, H), ``bias_ih_l{k}`` and
``bias_hh_l{k}`` are (4H,), and the 4H rows are stacked in gate order input i, forget f, cell
candidate g, output o. Tensors are sequence-first: ``x`` is (T, B, I), states are (L, B, H).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Cache",
    "LayerCache",
    "backward",
    "forward",
    "hidden_size_of",
    "init_params",
    "num_layers_of",
]

# The four gates in the order PyTorch stacks their rows inside each weight matrix and bias.
GATE_ORDER = ("input", "forget", "cell_candidate", "output")

_PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass(frozen=True)
class LayerCache:
    """Everything one layer's forward pass computed, stacked over time (leading axis T).

    All arrays are (T, B, ·) in the parameters' dtype; index ``[t]`` gives step t.

    Attributes:
        inputs: (T, B, I_k) what the layer read at each step: ``x`` for layer 0, the h sequence of
            the layer below otherwise.
        h_prev: (T, B, H) the hidden state fed into the gates at step t (``h_prev[0]`` is the
            initial state ``h0[k]``).
        c_prev: (T, B, H) the cell state entering step t (``c_prev[0]`` is ``c0[k]``).
        input_gate, forget_gate, cell_candidate, output_gate: (T, B, H) gate activations
            i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o).
        cell: (T, B, H) the new cell state c_t.
        tanh_cell: (T, B, H) tanh(c_t), kept so the backward pass need not recompute it.
    """

    inputs: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
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


# --------------------------------------------------------------------------------------------------
# Parameter helpers and validation
# --------------------------------------------------------------------------------------------------


def num_layers_of(params: dict[str, np.ndarray]) -> int:
    """Number of stacked layers: how many consecutive ``weight_ih_l{k}`` keys exist from k = 0."""
    if "weight_ih_l0" not in params:
        raise ValueError("params is missing 'weight_ih_l0'; expected PyTorch nn.LSTM parameter names")
    layers = 0
    while f"weight_ih_l{layers}" in params:
        layers += 1
    return layers


def hidden_size_of(params: dict[str, np.ndarray]) -> int:
    """Hidden size H, read from ``weight_hh_l0`` of shape (4H, H)."""
    if "weight_hh_l0" not in params:
        raise ValueError("params is missing 'weight_hh_l0'; expected PyTorch nn.LSTM parameter names")
    weight_hh = np.asarray(params["weight_hh_l0"])
    if weight_hh.ndim != 2:
        raise ValueError(f"params['weight_hh_l0'] must be 2-D (4H, H), got shape {weight_hh.shape}")
    return int(weight_hh.shape[1])


def _input_size_of(params: dict[str, np.ndarray]) -> int:
    weight_ih = np.asarray(params["weight_ih_l0"])
    if weight_ih.ndim != 2:
        raise ValueError(f"params['weight_ih_l0'] must be 2-D (4H, I), got shape {weight_ih.shape}")
    return int(weight_ih.shape[1])


def _expected_shapes(input_size: int, hidden_size: int, num_layers: int) -> dict[str, tuple[int, ...]]:
    """The full nn.LSTM parameter set, in PyTorch's own order (layer by layer)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else hidden_size
        shapes[f"weight_ih_l{layer}"] = (4 * hidden_size, layer_input)
        shapes[f"weight_hh_l{layer}"] = (4 * hidden_size, hidden_size)
        shapes[f"bias_ih_l{layer}"] = (4 * hidden_size,)
        shapes[f"bias_hh_l{layer}"] = (4 * hidden_size,)
    return shapes


def _validate_params(params: dict[str, np.ndarray]) -> tuple[int, int, int, np.dtype]:
    """Check names, shapes and dtype; return (input_size, hidden_size, num_layers, dtype)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of numpy arrays, got {type(params).__name__}")
    num_layers = num_layers_of(params)
    hidden_size = hidden_size_of(params)
    input_size = _input_size_of(params)
    if hidden_size < 1 or input_size < 1:
        raise ValueError(
            f"weight_ih_l0 {np.shape(params['weight_ih_l0'])} and weight_hh_l0 "
            f"{np.shape(params['weight_hh_l0'])} imply input size {input_size} and hidden size "
            f"{hidden_size}; both must be at least 1"
        )
    expected = _expected_shapes(input_size, hidden_size, num_layers)

    for key, shape in expected.items():
        if key not in params:
            raise ValueError(f"params is missing {key!r} (expected shape {shape})")
        actual = np.shape(params[key])
        if actual != shape:
            raise ValueError(f"params[{key!r}] has shape {actual}, expected {shape}")
    unexpected = sorted(set(params) - set(expected))
    if unexpected:
        # Catches typos, a gap in the layer numbering, and nn.LSTM options this module does not
        # implement (proj_size adds weight_hr_l{k}, bidirectional adds *_reverse).
        raise ValueError(f"params has unexpected keys {unexpected}; expected only {list(expected)}")

    dtypes = {np.asarray(params[key]).dtype for key in expected}
    if len(dtypes) != 1:
        raise ValueError(f"all parameters must share one dtype, got {sorted(str(d) for d in dtypes)}")
    dtype = dtypes.pop()
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"parameters must be floating point (float32 or float64), got {dtype}")
    return input_size, hidden_size, num_layers, dtype


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise ValueError(f"{name} has shape {array.shape}, expected {expected}")


def init_params(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    seed: int = 0,
    dtype: type | np.dtype = np.float64,
) -> dict[str, np.ndarray]:
    """Parameters initialised the way PyTorch's ``nn.LSTM`` does: each uniform in ±1/sqrt(H).

    Values come from ``np.random.default_rng(seed)`` drawn in this fixed order, which is also the
    order of the returned dict: layer 0 first, and within each layer ``weight_ih``, ``weight_hh``,
    ``bias_ih``, ``bias_hh``. Each array is one ``rng.uniform(-bound, bound, size=shape)`` call
    (drawn in float64, then cast to ``dtype``), so the same arguments always give the same values.
    """
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating type (float32 or float64), got {np.dtype(dtype)}")
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden_size)
    return {
        key: rng.uniform(-bound, bound, size=shape).astype(dtype)
        for key, shape in _expected_shapes(input_size, hidden_size, num_layers).items()
    }


# --------------------------------------------------------------------------------------------------
# Activation functions
# --------------------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Written with exp(-|z|) so it never overflows, in float32 as well as float64.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


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
    input_size, hidden_size, num_layers, dtype = _validate_params(params)

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
        cache = _layer_forward(params, layer, layer_input, h0[layer], c0[layer])
        layers.append(cache)
        hidden_sequence = cache.output_gate * cache.tanh_cell  # stage 5 for every step at once
        final_h[layer] = hidden_sequence[-1] if steps else h0[layer]
        final_c[layer] = cache.cell[-1] if steps else c0[layer]
        # Multi-layer: layer k+1 reads layer k's hidden sequence as its input sequence.
        layer_input = hidden_sequence
    return layer_input, (final_h, final_c), Cache(params=params, layers=tuple(layers))


def _layer_forward(
    params: dict[str, np.ndarray], layer: int, inputs: np.ndarray, h_initial: np.ndarray, c_initial: np.ndarray
) -> LayerCache:
    weight_ih = params[f"weight_ih_l{layer}"]
    weight_hh = params[f"weight_hh_l{layer}"]
    bias = params[f"bias_ih_l{layer}"] + params[f"bias_hh_l{layer}"]
    steps, batch, _ = inputs.shape
    hidden = weight_hh.shape[1]
    dtype = weight_hh.dtype

    def empty() -> np.ndarray:
        return np.empty((steps, batch, hidden), dtype=dtype)

    h_prev, c_prev = empty(), empty()
    input_gate, forget_gate, cell_candidate, output_gate = empty(), empty(), empty(), empty()
    cell, tanh_cell = empty(), empty()

    # The input half of stage 1 does not depend on the recurrence, so it is done for all steps in
    # one matrix product; only the h_{t-1} half has to wait for the previous step.
    input_part = inputs @ weight_ih.T + bias  # (T, B, 4H)

    h, c = h_initial, c_initial
    for t in range(steps):
        h_prev[t], c_prev[t] = h, c
        # Stage 1, affine: z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh.
        z = input_part[t] + h @ weight_hh.T
        z_i, z_f, z_g, z_o = np.split(z, 4, axis=1)
        # Stage 2, gates.
        input_gate[t] = _sigmoid(z_i)
        forget_gate[t] = _sigmoid(z_f)
        cell_candidate[t] = np.tanh(z_g)
        output_gate[t] = _sigmoid(z_o)
        # Stage 3, cell: c_t = f * c_{t-1} + i * g.
        c = forget_gate[t] * c + input_gate[t] * cell_candidate[t]
        cell[t] = c
        # Stage 4, squash: k_t = tanh(c_t).
        tanh_cell[t] = np.tanh(c)
        # Stage 5, hidden: h_t = o * k_t.
        h = output_gate[t] * tanh_cell[t]

    return LayerCache(
        inputs=inputs,
        h_prev=h_prev,
        c_prev=c_prev,
        input_gate=input_gate,
        forget_gate=forget_gate,
        cell_candidate=cell_candidate,
        output_gate=output_gate,
        cell=cell,
        tanh_cell=tanh_cell,
    )


# --------------------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------------------


def backward(
    cache: Cache,
    d_out: np.ndarray,
    d_h: np.ndarray | None = None,
    d_c: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Gradients of a loss, given the loss's gradient with respect to the forward pass's outputs.

    Args:
        cache: what :func:`forward` returned as its third value.
        d_out: (T, B, H) dLoss/d out.
        d_h: optional (L, B, H) dLoss/d h_n (the final hidden states); zeros when None.
        d_c: optional (L, B, H) dLoss/d c_n (the final cell states); zeros when None.

    Returns:
        A dict with the gradient for every parameter (same keys and shapes as the params) plus
        ``"x"`` (T, B, I), ``"h0"`` and ``"c0"`` (L, B, H), all in the parameters' dtype.
    """
    if not isinstance(cache, Cache):
        raise TypeError(f"cache must be the Cache returned by forward(), got {type(cache).__name__}")
    dtype = cache.dtype
    top = cache.layers[-1]
    steps, batch, hidden = top.cell.shape
    num_layers = cache.num_layers
    state_shape = (num_layers, batch, hidden)

    d_out = np.asarray(d_out).astype(dtype, copy=False)
    _check_shape("d_out", d_out, (steps, batch, hidden))
    if d_h is None:
        d_h = np.zeros(state_shape, dtype=dtype)
    else:
        d_h = np.asarray(d_h).astype(dtype, copy=False)
        _check_shape("d_h", d_h, state_shape)
    if d_c is None:
        d_c = np.zeros(state_shape, dtype=dtype)
    else:
        d_c = np.asarray(d_c).astype(dtype, copy=False)
        _check_shape("d_c", d_c, state_shape)

    grads: dict[str, np.ndarray] = {}
    d_h0 = np.empty(state_shape, dtype=dtype)
    d_c0 = np.empty(state_shape, dtype=dtype)
    # Layers are stages too: walk them top-down. The gradient reaching the top layer's hidden
    # sequence is d_out; the gradient reaching a lower layer's hidden sequence is the gradient with
    # respect to the input of the layer above it.
    d_hidden_sequence = d_out
    for layer in reversed(range(num_layers)):
        layer_grads, d_inputs, d_h0[layer], d_c0[layer] = _layer_backward(
            cache.params, layer, cache.layers[layer], d_hidden_sequence, d_h[layer], d_c[layer]
        )
        grads.update(layer_grads)
        d_hidden_sequence = d_inputs

    ordered = {key: grads[key] for key in cache.params}  # same key order as the params dict
    ordered["x"] = d_hidden_sequence
    ordered["h0"] = d_h0
    ordered["c0"] = d_c0
    return ordered


def _layer_backward(
    params: dict[str, np.ndarray],
    layer: int,
    saved: LayerCache,
    d_hidden_sequence: np.ndarray,
    d_h_final: np.ndarray,
    d_c_final: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Reverse one layer through time. Returns (param grads, d inputs, d h_initial, d c_initial)."""
    weight_ih = params[f"weight_ih_l{layer}"]
    weight_hh = params[f"weight_hh_l{layer}"]
    steps, batch, hidden = saved.cell.shape
    d_z_all = np.empty((steps, batch, 4 * hidden), dtype=weight_hh.dtype)

    # What flows back into step t from step t+1. At the last step that is whatever the loss says
    # about the final states (d_h, d_c), since the final states are outputs of the whole pass.
    d_h_from_next = d_h_final
    d_c_from_next = d_c_final

    for t in reversed(range(steps)):
        i = saved.input_gate[t]
        f = saved.forget_gate[t]
        g = saved.cell_candidate[t]
        o = saved.output_gate[t]
        k = saved.tanh_cell[t]

        # Fork on h_t: it went to the output (or the layer above) and to step t+1's four gates;
        # its gradient is the sum over both branches.
        d_h = d_hidden_sequence[t] + d_h_from_next

        # Stage 5 backward, h_t = o * k_t:  dh/do = k_t,  dh/dk = o.
        d_o = d_h * k
        d_k = d_h * o

        # Stage 4 backward, k_t = tanh(c_t):  d tanh(u)/du = 1 - tanh(u)^2.
        # Fork on c_t: it went into tanh(c_t) and into step t+1's cell update; sum both branches.
        d_c = d_k * (1.0 - k * k) + d_c_from_next

        # Stage 3 backward, c_t = f * c_{t-1} + i * g:
        #   dc/df = c_{t-1},  dc/dc_{t-1} = f,  dc/di = g,  dc/dg = i.
        d_f = d_c * saved.c_prev[t]
        d_c_from_next = d_c * f  # becomes the "from next step" branch of c_{t-1}'s fork
        d_i = d_c * g
        d_g = d_c * i

        # Stage 2 backward, gate activations:
        #   d σ(u)/du = σ(u) (1 - σ(u))  for i, f, o;   d tanh(u)/du = 1 - tanh(u)^2  for g.
        d_z_all[t, :, 0 * hidden : 1 * hidden] = d_i * i * (1.0 - i)
        d_z_all[t, :, 1 * hidden : 2 * hidden] = d_f * f * (1.0 - f)
        d_z_all[t, :, 2 * hidden : 3 * hidden] = d_g * (1.0 - g * g)
        d_z_all[t, :, 3 * hidden : 4 * hidden] = d_o * o * (1.0 - o)

        # Stage 1 backward, z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh:  dz/dh_{t-1} = W_hh.
        # Fork on h_{t-1}: it fed all four gates, so its gradient is the sum of the four branches,
        #   sum over gates of dz_gate @ W_hh[gate rows]  ==  dz @ W_hh  (the product does the sum).
        d_h_from_next = d_z_all[t] @ weight_hh

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
