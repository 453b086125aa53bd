"""The recurrent models' facts, in one place: gate order, parameter names and shapes, initialisation, node names.

`lstm.models` (the Tensor and scalar LSTMs, the GRU, the plain RNN) and `lstm.hand` (the derivations in numpy)
all read them from here, so the layout cannot drift between them. It is PyTorch's: for layer ``k``,
``weight_ih_l{k}`` is (blocks·H, I) for k = 0 and (blocks·H, H) above, ``weight_hh_l{k}`` is (blocks·H, H),
``bias_ih_l{k}`` and ``bias_hh_l{k}`` are (blocks·H,). An LSTM has four row blocks, one per gate, in the order
input i, forget f, cell candidate g, output o (``nn.LSTM``); a GRU three, reset r, update z, candidate n
(``nn.GRU``); a plain RNN one (``nn.RNN``).

Names. An LSTM gate's pre-activation is ``z_f`` and its activation ``f``. PyTorch calls the GRU's update gate z,
which would collide with those z's, so here the GRU's gates are ``r`` (reset), ``u`` (update: PyTorch's z) and
``n`` (candidate), and their pre-activations ``a_r``, ``a_u``, ``a_n``: a GRU node is never mistaken for an
LSTM node of the same step.

Time steps count from 1, as in the equations (step 1 reads the initial state as h_{t-1}); layers count from 0, as
in PyTorch's names. A node of step t is named ``h[t=1]``, or ``h[t=1, layer 0]`` when there are several layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["GATES", "GRU_GATES", "GRU_STEP_NODES", "RNN_STEP_NODES", "STEP_NODES", "Gate", "Sizes", "init_params",
           "parameter_shapes", "sizes_of", "step_name"]


class Gate(NamedTuple):
    """One gate: its stage name, its letter in the equations, its activation and its pre-activation's prefix."""

    stage: str
    letter: str
    activation: str  # a method name that Tensor and Value both have
    prefix: str = "z"  # the LSTM's z_f; the GRU's a_u (its z is PyTorch's name for a gate)

    @property
    def pre_activation(self) -> str:
        """The name of its input: z_f for the LSTM's forget gate, a_u for the GRU's update gate."""
        return f"{self.prefix}_{self.letter}"


# In the order of PyTorch's row blocks inside weight_ih, weight_hh, bias_ih and bias_hh.
GATES = (Gate("input gate", "i", "sigmoid"), Gate("forget gate", "f", "sigmoid"),
         Gate("cell candidate", "g", "tanh"), Gate("output gate", "o", "sigmoid"))
FORGET = 1  # the forget gate's block

# What one LSTM step computes, in the order it computes it: each gate's pre-activation and activation, the
# cell state, its tanh and the hidden state. The models label their nodes so, and lstm.hand names its adjoints so.
STEP_NODES = (*(name for gate in GATES for name in (gate.pre_activation, gate.letter)), "c", "tanh_c", "h")

# The GRU's gates in the order of nn.GRU's row blocks: reset r, update z (here u), candidate n.
GRU_GATES = (Gate("reset gate", "r", "sigmoid", "a"), Gate("update gate", "u", "sigmoid", "a"),
             Gate("candidate", "n", "tanh", "a"))
# One GRU step, in the order it computes: a_r, r, a_u, u; the candidate's recurrent part hn = W_hn h_{t-1} + b_hn
# (its bias inside the reset product, as in nn.GRU), r_hn = r * hn, a_n = W_in x_t + b_in + r_hn, n = tanh(a_n);
# and h = (1 - u) * n + u * h_{t-1}.
GRU_STEP_NODES = ("a_r", "r", "a_u", "u", "hn", "r_hn", "a_n", "n", "h")
# One plain RNN step: the pre-activation z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh and h = tanh(z).
RNN_STEP_NODES = ("z", "h")

KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def step_name(kind: str, t: int, layer: int = 0, num_layers: int = 1) -> str:
    """``h[t=2]``, or ``h[t=2, layer 1]`` when there are several layers: the name of a node of step t."""
    return f"{kind}[t={t}]" if num_layers == 1 else f"{kind}[t={t}, layer {layer}]"


def parameter_shapes(input_size: int, hidden_size: int, num_layers: int = 1, blocks: int = len(GATES)
                     ) -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes, layer by layer, in PyTorch's order (``blocks``: 4 for an LSTM, 3 for a
    GRU, 1 for an RNN)."""
    shapes: dict[str, tuple[int, ...]] = {}
    rows = blocks * hidden_size
    for layer in range(num_layers):
        shapes[f"weight_ih_l{layer}"] = (rows, input_size if layer == 0 else hidden_size)
        shapes[f"weight_hh_l{layer}"] = (rows, hidden_size)
        shapes[f"bias_ih_l{layer}"] = (rows,)
        shapes[f"bias_hh_l{layer}"] = (rows,)
    return shapes


def init_params(input_size: int, hidden_size: int, num_layers: int = 1, seed: int = 0,
                dtype: type | np.dtype = np.float64, *, blocks: int = len(GATES), forget_bias: float | None = None
                ) -> dict[str, np.ndarray]:
    """Parameters initialised the way PyTorch does: each uniform in ±1/sqrt(H).

    Values come from ``np.random.default_rng(seed)`` drawn in this fixed order, which is also the order of the
    returned dict: layer 0 first, and within each layer ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.
    Each array is one ``rng.uniform(-bound, bound, size=shape)`` call (drawn in float64, then cast to
    ``dtype``), so the same arguments always give the same values. ``forget_bias`` (LSTM only), when given,
    sets every forget-gate bias to it after the draw (the forget block of ``bias_ih`` to ``forget_bias``, that
    of ``bias_hh`` to 0), a common choice that keeps the forget gate open at first (Gers et al. 2000;
    Jozefowicz et al. 2015); all other numbers are those of the same seed without it.
    """
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating type (float32 or float64), got {np.dtype(dtype)}")
    if forget_bias is not None and blocks != len(GATES):
        raise ValueError("forget_bias is for an LSTM's forget gate; this model has no forget gate")
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden_size)
    params = {key: rng.uniform(-bound, bound, size=shape)
              for key, shape in parameter_shapes(input_size, hidden_size, num_layers, blocks).items()}
    if forget_bias is not None:
        forget = slice(FORGET * hidden_size, (FORGET + 1) * hidden_size)
        for layer in range(num_layers):
            params[f"bias_ih_l{layer}"][forget] = forget_bias
            params[f"bias_hh_l{layer}"][forget] = 0.0
    return {key: value.astype(dtype) for key, value in params.items()}


class Sizes(NamedTuple):
    """What a state dict says about its model."""

    input_size: int
    hidden_size: int
    num_layers: int
    dtype: np.dtype


def sizes_of(params: Mapping[str, Any], blocks: int = len(GATES)) -> Sizes:
    """The sizes and dtype a state dict implies, once its names, shapes and dtype are found consistent; else a
    ValueError that names the problem."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of numpy arrays, got {type(params).__name__}")
    for name, shape in (("weight_ih_l0", f"({blocks}H, I)"), ("weight_hh_l0", f"({blocks}H, H)")):
        if name not in params:
            raise ValueError(f"params is missing {name!r}; expected PyTorch parameter names")
        if np.ndim(params[name]) != 2:
            raise ValueError(f"params[{name!r}] must be 2-D {shape}, got shape {np.shape(params[name])}")
    num_layers = 0
    while f"weight_ih_l{num_layers}" in params:
        num_layers += 1
    hidden_size, input_size = np.shape(params["weight_hh_l0"])[1], np.shape(params["weight_ih_l0"])[1]
    if hidden_size < 1 or input_size < 1:
        raise ValueError(f"weight_ih_l0 {np.shape(params['weight_ih_l0'])} and weight_hh_l0 "
                         f"{np.shape(params['weight_hh_l0'])} imply input size {input_size} and hidden size "
                         f"{hidden_size}; both must be at least 1")
    expected = parameter_shapes(input_size, hidden_size, num_layers, blocks)
    for key, shape in expected.items():
        if key not in params:
            raise ValueError(f"params is missing {key!r} (expected shape {shape})")
        if np.shape(params[key]) != shape:
            raise ValueError(f"params[{key!r}] has shape {np.shape(params[key])}, expected {shape}")
    unexpected = sorted(set(params) - set(expected))
    if unexpected:
        # Catches typos, a gap in the layer numbering, and PyTorch options not implemented here (proj_size adds
        # weight_hr_l{k}, bidirectional adds *_reverse).
        raise ValueError(f"params has unexpected keys {unexpected}; expected only {list(expected)}")
    dtypes = {np.asarray(params[key]).dtype for key in expected}
    if len(dtypes) != 1:
        raise ValueError(f"all parameters must share one dtype, got {sorted(str(d) for d in dtypes)}")
    dtype = dtypes.pop()
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"parameters must be floating point (float32 or float64), got {dtype}")
    return Sizes(int(input_size), int(hidden_size), num_layers, dtype)
