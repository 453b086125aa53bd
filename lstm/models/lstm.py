"""The LSTM built from autograd primitives, twice: on Tensors (`LSTM`) and on scalar Values (`ScalarLSTM`); and what
the Tensor models (`lstm.models.gru.GRU`, `lstm.models.rnn.RNN`) share with it.

Both LSTMs compute, for every layer and time step t = 1 ... T, the functional stages of the LSTM cell::

    input gate      i = sigmoid(W_i [x_t, h_{t-1}, 1])
    forget gate     f = sigmoid(W_f [x_t, h_{t-1}, 1])
    cell candidate  g = tanh(W_g [x_t, h_{t-1}, 1])
    output gate     o = sigmoid(W_o [x_t, h_{t-1}, 1])
    cell state      c_t = f * c_{t-1} + i * g
    hidden state    h_t = o * tanh(c_t)

where W_k = [W_ik | W_hk | b_ik + b_hk] is gate k's block of rows of the PyTorch parameters, the bias riding
along as the weight of a constant 1. Every stage's value is labelled with its stable name (``z_f[t=2]``,
``f[t=2]``, ``c[t=2]``, ``tanh_c[t=2]``, ``h[t=2]``; ``h[t=2, layer 1]`` with several layers, ``h[t=2][0,1]``
for an element of the ScalarLSTM), the names `lstm.hand` gives its gradients, and every node is tagged with its
stage (``t=2 / layer 0 / forget gate``), so
a drawing shows the stages and the forks: [x_t, h_{t-1}, 1] feeds all four gates, c_t feeds tanh(c_t) and step
t+1. `LSTM` makes the four gates' pre-activations with one product, z = [x_t, h_{t-1}, 1] @ W of shape
(4, B, H), gate by gate, and each gate's stage takes its slice z[k]; so in its graph the fork into the four
gates sits on z, and the product adds their four gradients up on the way back. `ScalarLSTM` builds every sum
itself. Gate order, parameter shapes and initialisation come from `lstm.params`, the one place that states
them: one seed gives the same weights to the Tensor LSTM, the scalar LSTM and the hand derivation, state dicts
(PyTorch ``nn.LSTM`` names and layout) move between them, and ``from_state_dict`` builds a model straight from
one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograd import Tensor, Value, concatenate, stack, stage
from autograd.nn import Module, checked_state
from autograd.value import Constant
from lstm.models.params import GATES, STEP_NODES, Gate, init_params, parameter_shapes, sizes_of, step_name

__all__ = ["GATES", "LSTM", "Gate", "ScalarLSTM", "Unrolled", "parameter_shapes"]


@dataclass(frozen=True)
class Unrolled:
    """One forward pass with its per-step nodes, for looking inside (gradient flow, drawings).

    ``out`` (T, B, H), ``h`` and ``c`` (num_layers, B, H) are what ``model(x, state)`` returns (``c`` is None for
    the `RNN`, which has no cell state). ``hidden[l][t - 1]`` and ``cell[l][t - 1]`` are the nodes h_t and c_t
    of layer l at step t = 1 ... T (steps count from 1, as in the equations), each (B, H): a Tensor for `LSTM`
    and `RNN`, an object array of Values for `ScalarLSTM`. Their adjoints are dL/dh_t and dL/dc_t.
    """

    out: Any
    h: Any
    c: Any
    hidden: list[list[Any]]
    cell: list[list[Any]] | None


class _Recurrent:
    """What the models share: sizes, checks of inputs and states, node names, and building from a state dict."""

    blocks = len(GATES)  # row blocks in each weight and bias: one per gate (the RNN has one)
    state_names = ("h0", "c0")
    input_size: int
    hidden_size: int
    num_layers: int

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], dtype: Any = None) -> Any:
        """A model holding exactly these parameters (PyTorch names and layout, sizes read from the shapes), with
        nothing drawn at random first. ``dtype`` (Tensor models): the parameters' own when omitted."""
        sizes = sizes_of(state, cls.blocks)
        model = cls.__new__(cls)
        model._set_sizes(sizes.input_size, sizes.hidden_size, sizes.num_layers)
        model._set_parameters(state, sizes.dtype if dtype is None else dtype)
        return model

    def _set_parameters(self, params: Mapping[str, Any], dtype: Any) -> None:
        raise NotImplementedError

    def _set_sizes(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size),
                           ("num_layers", num_layers)):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {size!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers = int(num_layers)

    def _check_sequence(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(T, B) of an input of this shape, or a clear error."""
        name = type(self).__name__
        if len(shape) != 3:
            raise ValueError(f"{name}: x must have shape (T, B, {self.input_size}), sequence first; "
                             f"got {len(shape)} dimensions, shape {shape}")
        steps, batch, features = shape
        if features != self.input_size:
            raise ValueError(f"{name}: x has {features} features per step (shape {shape}), "
                             f"expected input_size={self.input_size}")
        if steps == 0 or batch == 0:
            raise ValueError(f"{name}: x needs at least one time step and one sequence, got shape {shape}")
        return steps, batch

    def _check_state(self, state: Any, batch: int) -> tuple[Any, ...]:
        """The initial state's parts, (h0, c0) or (h0,), each checked to be (num_layers, batch, hidden_size)."""
        name = type(self).__name__
        if len(self.state_names) == 1:
            parts = (state,)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{name}: state must be a pair (h0, c0), got {type(state).__name__}")
        else:
            parts = tuple(state)
        expected = (self.num_layers, batch, self.hidden_size)
        for label, part in zip(self.state_names, parts):
            shape = np.shape(part.data if isinstance(part, Tensor) else part)
            if shape != expected:
                raise ValueError(f"{name}: {label} has shape {shape}, expected (num_layers, batch, "
                                 f"hidden_size) = {expected}")
        return parts

    def _name(self, kind: str, t: int, layer: int) -> str:
        """``h[t=2]``, or ``h[t=2, layer 1]`` when there are several layers."""
        return step_name(kind, t, layer, self.num_layers)


class _TensorModel(_Recurrent, Module):
    """What the Tensor models add: a dtype, parameters as Tensors, inputs made Tensors of that dtype."""

    dtype: np.dtype

    def _set_parameters(self, params: Mapping[str, Any], dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: dtype must be a float type, got {self.dtype}")
        shapes = parameter_shapes(self.input_size, self.hidden_size, self.num_layers, self.blocks)
        for name, array in checked_state(self, shapes, params).items():
            # a Tensor that requires grad copies the array it is given: the model owns its parameters
            setattr(self, name, Tensor(array, requires_grad=True, dtype=self.dtype, label=name))

    def _stacked_weights(self, layer: int) -> Tensor:
        """Each block's (I + H + 1, H) matrix [W_ik | W_hk | b_ik + b_hk]^T: for the LSTM's gates stacked,
        (4, I + H + 1, H); for the RNN's single block, (I + H + 1, H)."""
        with stage(f"layer {layer}"), stage("gate weights" if self.blocks > 1 else "weights"):
            bias = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            stacked = concatenate([getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"),
                                   bias.reshape(-1, 1)], axis=1)
            if self.blocks == 1:
                weight = stacked.swapaxes(0, 1)
            else:
                weight = stacked.reshape(self.blocks, self.hidden_size, -1).swapaxes(1, 2)
            weight.label = "W" if self.num_layers == 1 else f"W_l{layer}"
        return weight

    def _initial_state(self, state: Any, batch: int) -> list[list[Any]]:
        """Per part of the state (h0, and c0 for the LSTM), per layer: (B, H) arrays for constants, indexed
        nodes for differentiable ones."""
        if state is None:
            zeros = np.zeros((batch, self.hidden_size), dtype=self.dtype)
            return [[zeros] * self.num_layers for _ in self.state_names]
        parts = self._check_state(state, batch)
        nodes = [self._as_input(part, name) for part, name in zip(parts, self.state_names)]
        with stage("initial state"):
            return [[node[k] if node.requires_grad else node.data[k] for k in range(self.num_layers)]
                    for node in nodes]

    def _as_input(self, data: Any, name: str) -> Tensor:
        """A Tensor in the model's dtype; a differentiable Tensor of another dtype is an error, not a copy."""
        kind = type(self).__name__
        if isinstance(data, Tensor):
            if data.requires_grad and data.dtype != self.dtype:
                raise TypeError(f"{kind}: {name} is a {data.dtype} Tensor that requires grad, but the model is "
                                f"{self.dtype}; create it with dtype={self.dtype}")
            return data if data.dtype == self.dtype else Tensor(data.data.astype(self.dtype), label=data.label)
        if isinstance(data, Value) or (isinstance(data, np.ndarray) and data.dtype == object):
            raise TypeError(f"{kind}: {name} must be a numpy array or a Tensor, got Values (use ScalarLSTM)")
        try:
            return Tensor(data, dtype=self.dtype, label=name)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{kind}: {name} must be a numpy array or a Tensor, got {type(data).__name__} "
                            f"({error})") from None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, dtype={self.dtype})")


class _HiddenStateModel(_TensorModel):
    """What the models whose state is h alone (`RNN`, `GRU`) share: the pass over steps and layers, and one step on
    its own. A model gives ``_layer_weights(layer)`` and ``_cell(weights, x_t, h_prev, ones, t, layer)``, step t
    of one layer, which names its nodes and opens the stages inside the step."""

    state_names = ("h0",)

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
        weights = [self._layer_weights(layer) for layer in range(self.num_layers)]
        hidden: list[list[Tensor]] = [[] for _ in range(self.num_layers)]
        for t in range(1, steps + 1):
            with _made_once(f"t={t}"):
                below: Any = x[t - 1]
                below.label = f"x[t={t}]"
                for layer in range(self.num_layers):
                    with _made_once(f"layer {layer}"):
                        h[layer] = self._cell(weights[layer], below, h[layer], ones, t, layer)
                    hidden[layer].append(h[layer])
                    below = h[layer]
        with stage("outputs"):
            out = concatenate(hidden[-1], axis=0).reshape(steps, batch, self.hidden_size)
            out.label = "out"
            h_n = stack(h)
            h_n.label = "h_n"
        return Unrolled(out, h_n, None, hidden, None)

    def step(self, x_t: Any, h_prev: Any, t: int = 1, layer: int = 0) -> Tensor:
        """One step of one layer on its own: h_t from x_t (B, input size of the layer) and h_{t-1} (B, H), in the
        stages and with the names of step t."""
        x_t, h_prev = self._as_input(x_t, "x"), self._as_input(h_prev, "h_prev")
        ones = Tensor(np.ones((x_t.shape[0], 1), dtype=self.dtype), label="1")
        weights = self._layer_weights(layer)
        with stage(f"t={t}"), stage(f"layer {layer}"):
            return self._cell(weights, x_t, h_prev, ones, t, layer)


# --- the Tensor LSTM ---------------------------------------------------------------------------------------

class LSTM(_TensorModel):
    """A multi-layer LSTM on Tensors with PyTorch ``nn.LSTM`` parameters, sequence first.

    ``out, (h, c) = lstm(x, (h0, c0))`` with x (T, B, input_size), a numpy array or a Tensor (make it
    ``requires_grad=True`` to get dL/dx), and states (num_layers, B, hidden_size), zeros when omitted.
    ``forget_bias`` sets every forget-gate bias after the usual draw (see `lstm.params.init_params`);
    ``LSTM.from_state_dict(state)`` builds one from given weights.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dtype: Any = np.float64,
                 seed: int = 0, *, forget_bias: float | None = None) -> None:
        self._set_sizes(input_size, hidden_size, num_layers)
        self._set_parameters(init_params(input_size, hidden_size, num_layers, seed, forget_bias=forget_bias),
                             dtype)

    def forward(self, x: Any, state: tuple[Any, Any] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``(out, (h, c))``: out (T, B, H) from the last layer; h, c (num_layers, B, H) at the end."""
        run = self.unroll(x, state)
        return run.out, (run.h, run.c)

    def unroll(self, x: Any, state: tuple[Any, Any] | None = None) -> Unrolled:
        """The forward pass, keeping the per-step nodes h_t and c_t of every layer."""
        x = self._as_input(x, "x")
        steps, batch = self._check_sequence(x.shape)
        h, c = self._initial_state(state, batch)
        ones = Tensor(np.ones((batch, 1), dtype=self.dtype), label="1")
        weights = [self._stacked_weights(layer) for layer in range(self.num_layers)]
        hidden: list[list[Tensor]] = [[] for _ in range(self.num_layers)]
        cell: list[list[Tensor]] = [[] for _ in range(self.num_layers)]
        for t in range(1, steps + 1):  # t counts from 1, as in the equations: step 1 reads h0 as h_{t-1}
            with _made_once(f"t={t}"):
                below: Any = x[t - 1]  # its gradient, if x needs one, is added into place step by step
                below.label = f"x[t={t}]"
                for layer in range(self.num_layers):
                    with _made_once(f"layer {layer}"):
                        h[layer], c[layer] = self._cell(weights[layer], below, h[layer], c[layer], ones,
                                                        _step_names(t, layer, self.num_layers))
                    hidden[layer].append(h[layer])
                    cell[layer].append(c[layer])
                    below = h[layer]
        with stage("outputs"):
            # concatenate then reshape, rather than stack: two nodes instead of T + 1
            out = concatenate(hidden[-1], axis=0).reshape(steps, batch, self.hidden_size)
            out.label = "out"
            h_n, c_n = stack(h), stack(c)
            h_n.label, c_n.label = "h_n", "c_n"
        return Unrolled(out, h_n, c_n, hidden, cell)

    def step(self, x_t: Any, h_prev: Any, c_prev: Any, t: int = 1, layer: int = 0) -> tuple[Tensor, Tensor]:
        """One step of one layer on its own: ``(h_t, c_t)`` from x_t (B, input size of the layer) and the
        previous state (B, H) each, numpy arrays or Tensors, in the stages and with the names of step t."""
        x_t, h_prev, c_prev = (self._as_input(part, name) for part, name in
                               ((x_t, "x"), (h_prev, "h_prev"), (c_prev, "c_prev")))
        ones = Tensor(np.ones((x_t.shape[0], 1), dtype=self.dtype), label="1")
        weight = self._stacked_weights(layer)
        with stage(f"t={t}"), stage(f"layer {layer}"):
            return self._cell(weight, x_t, h_prev, c_prev, ones, _step_names(t, layer, self.num_layers))

    def _cell(self, weight: Tensor, x_t: Any, h_prev: Any, c_prev: Any, ones: Tensor, names: dict[str, str]
              ) -> tuple[Tensor, Tensor]:
        """One step of one layer (``names``: its nodes' names, `_step_names`).

        One batched product for the four gates rather than four: the (4, K, H) weight gives z gate by gate,
        (4, B, H), so each gate's slice z[k] (``z_f[t=1]``) is a contiguous block. On the way back the product
        itself adds the four gates' gradients for [x, h, 1] (no additions at a fork) and the weight gathers
        one term per step, not four: on small arrays each numpy call costs more than its arithmetic, so fewer
        calls is what counts. `autograd.check_derivation` still names the four branches of h_{t-1}'s
        fork: it follows the path from h_{t-1} through [x, h, 1] and z to the four gate stages.
        """
        gate_input = concatenate([x_t, h_prev, ones], axis=1)
        gate_input.label = names["[x, h, 1]"]
        z = gate_input @ weight  # (B, K) @ (4, K, H) -> (4, B, H)
        z.label = names["z"]
        activations = []
        for k, (gate, gate_stage, activate) in enumerate(_GATE_STEPS):  # i, f, g, o
            with gate_stage:
                pre_activation = z[k]  # the gate's slice, taken in its stage
                pre_activation.label = names[gate.pre_activation]
                activation = activate(pre_activation)
                activation.label = names[gate.letter]
            activations.append(activation)
        i, f, g, o = activations
        with _CELL_STATE:
            c = f * c_prev + i * g
            c.label = names["c"]
        with _HIDDEN_STATE:
            tanh_c = c.tanh()
            tanh_c.label = names["tanh_c"]
            h = o * tanh_c
            h.label = names["h"]
        return h, c


# The stages every step enters, made once (a stage can be entered any number of times, nested, and in any
# thread): a step enters eight, and making them anew each time costs a tenth of a small step.
_CELL_STATE, _HIDDEN_STATE = stage("cell state"), stage("hidden state")


# For each gate, in the order of GATES: the gate, its stage and its activation (a Tensor method).
_GATE_STEPS = tuple((gate, stage(gate.stage), getattr(Tensor, gate.activation)) for gate in GATES)


_made_once = functools.lru_cache(maxsize=4096)(stage)  # the stages of steps and layers, ``t=2``, ``layer 0``


@functools.lru_cache(maxsize=4096)
def _step_names(t: int, layer: int, num_layers: int) -> dict[str, str]:
    """The names of step t's nodes (`lstm.params.step_name`), by kind: ``{"h": "h[t=2]", ...}``, made once."""
    return {kind: step_name(kind, t, layer, num_layers) for kind in ("[x, h, 1]", "z", *STEP_NODES)}


# --- the scalar LSTM ---------------------------------------------------------------------------------------

class ScalarLSTM(_Recurrent):
    """The LSTM with every number a `Value`: each gate element is its own node, for drawing and explaining.

    Parameters are numpy object arrays of Values in the ``nn.LSTM`` layout, labelled by the gate block they
    belong to (``W_if[2,0]`` is row 2 of the forget block of weight_ih, column 0). ``model(x, state)`` takes
    numpy floats, which become constant leaves (x's labelled by step: ``x[t=1][0,2]``), or object arrays of
    Values (for dL/dx, read their ``.grad``), and returns object arrays of Values shaped like `LSTM`'s outputs.
    Its nodes have `LSTM`'s names with the element added: ``f[t=1][0,2]``. It builds O(T B H (I + H)) nodes:
    keep it small.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, seed: int = 0, *,
                 forget_bias: float | None = None) -> None:
        self._set_sizes(input_size, hidden_size, num_layers)
        self._set_parameters(init_params(input_size, hidden_size, num_layers, seed, forget_bias=forget_bias),
                             np.float64)

    def _set_parameters(self, params: Mapping[str, Any], dtype: Any) -> None:
        shapes = parameter_shapes(self.input_size, self.hidden_size, self.num_layers)
        self._parameters: dict[str, np.ndarray] = {}
        for name, array in checked_state(self, shapes, params).items():
            self._parameters[name] = np.empty(array.shape, dtype=object)
            for index in np.ndindex(array.shape):
                self._parameters[name][index] = Value(float(array[index]), label=self._leaf_label(name, index))

    def __getattr__(self, name: str) -> np.ndarray:
        parameters = self.__dict__.get("_parameters", {})
        if name in parameters:
            return parameters[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def _leaf_label(self, name: str, index: tuple[int, ...]) -> str:
        """PyTorch's per-gate names: weight_hh_l0[5, 1] with H = 4 is W_hf[1,1] (forget block, row 1)."""
        kind, layer = name.rsplit("_l", 1)
        block, row = divmod(index[0], self.hidden_size)
        symbol = {"weight_ih": "W_i", "weight_hh": "W_h", "bias_ih": "b_i", "bias_hh": "b_h"}[kind]
        symbol += GATES[block].letter + ("" if self.num_layers == 1 else f"_l{layer}")
        return f"{symbol}[{row},{index[1]}]" if len(index) == 2 else f"{symbol}[{row}]"

    # --- parameters, the Module interface on Values ---
    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        yield from self._parameters.items()

    def parameters(self) -> list[Value]:
        return [value for array in self._parameters.values() for value in array.flat]

    def zero_grad(self) -> None:
        for value in self.parameters():
            value.grad = 0.0

    def gradients(self) -> dict[str, np.ndarray]:
        """Each parameter's ``.grad`` as a float array, keyed and shaped like the state dict."""
        return {name: grads_of(array) for name, array in self._parameters.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: data_of(array) for name, array in self._parameters.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy ``nn.LSTM``-named arrays into the Values; names, shapes and types are checked first."""
        shapes = parameter_shapes(self.input_size, self.hidden_size, self.num_layers)
        for name, array in checked_state(self, shapes, state).items():
            for value, number in zip(self._parameters[name].flat, array.astype(np.float64).flat):
                value.data = float(number)

    # --- the forward pass ---
    def __call__(self, x: Any, state: tuple[Any, Any] | None = None
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """``(out, (h, c))`` as object arrays of Values, shaped like `LSTM`'s."""
        run = self.unroll(x, state)
        return run.out, (run.h, run.c)

    def unroll(self, x: Any, state: tuple[Any, Any] | None = None) -> Unrolled:
        """The forward pass, keeping the per-step nodes h_t and c_t (object arrays) of every layer."""
        x = self._as_nodes(x, "x")
        steps, batch = self._check_sequence(x.shape)
        if state is None:
            zeros = np.zeros((self.num_layers, batch, self.hidden_size))
            h0, c0 = self._as_nodes(zeros, "h0"), self._as_nodes(zeros, "c0")
        else:
            parts = self._check_state(state, batch)
            h0, c0 = (self._as_nodes(part, name) for part, name in zip(parts, self.state_names))
        h, c = list(h0), list(c0)
        hidden: list[list[np.ndarray]] = [[] for _ in range(self.num_layers)]
        cell: list[list[np.ndarray]] = [[] for _ in range(self.num_layers)]
        for t in range(1, steps + 1):
            with stage(f"t={t}"):
                below = x[t - 1]
                for layer in range(self.num_layers):
                    with stage(f"layer {layer}"):
                        h[layer], c[layer] = self._cell(below, h[layer], c[layer], t, layer)
                    hidden[layer].append(h[layer])
                    cell[layer].append(c[layer])
                    below = h[layer]
        return Unrolled(np.stack(hidden[-1]), np.stack(h), np.stack(c), hidden, cell)

    def _cell(self, x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, t: int, layer: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """One step of one layer on (B, ·) object arrays, element by element."""
        batch, size = h_prev.shape
        p = self._parameters
        weight_ih, weight_hh = p[f"weight_ih_l{layer}"], p[f"weight_hh_l{layer}"]
        bias_ih, bias_hh = p[f"bias_ih_l{layer}"], p[f"bias_hh_l{layer}"]
        c = np.empty((batch, size), dtype=object)
        h = np.empty((batch, size), dtype=object)
        for b, j in np.ndindex(batch, size):
            # each unit in a stage of its own, so that a drawing can draw all but one as boxes (for one sequence:
            # with several, the clusters of units and sequences crash Debian's dot 2.43, "trouble in init_rank")
            unit = stage(f"unit {j}") if batch == 1 and size > 1 else None
            with unit or contextlib.nullcontext():
                gates = {}
                for k, gate in enumerate(GATES):
                    with stage(gate.stage):
                        row = k * size + j
                        total = bias_ih[row] + bias_hh[row]
                        for w, v in zip(weight_ih[row], x_t[b]):
                            total = total + w * v
                        for w, v in zip(weight_hh[row], h_prev[b]):
                            total = total + w * v
                        total.label = f"{self._name(gate.pre_activation, t, layer)}[{b},{j}]"
                        gates[gate.letter] = getattr(total, gate.activation)()
                        gates[gate.letter].label = f"{self._name(gate.letter, t, layer)}[{b},{j}]"
                with stage("cell state"):
                    c[b, j] = gates["f"] * c_prev[b, j] + gates["i"] * gates["g"]
                    c[b, j].label = f"{self._name('c', t, layer)}[{b},{j}]"
                with stage("hidden state"):
                    tanh_c = c[b, j].tanh()
                    tanh_c.label = f"{self._name('tanh_c', t, layer)}[{b},{j}]"
                    h[b, j] = gates["o"] * tanh_c
                    h[b, j].label = f"{self._name('h', t, layer)}[{b},{j}]"
        return h, c

    def _as_nodes(self, data: Any, name: str) -> np.ndarray:
        """An object array of Values: Values are used as given, numbers become labelled constants."""
        if isinstance(data, Tensor):
            raise TypeError(f"ScalarLSTM: {name} must be a numpy array (of floats or Values), got a Tensor "
                            "(use LSTM, or pass tensor.data)")
        array = np.asarray(data) if isinstance(data, (np.ndarray, list, tuple)) else None
        if array is None:
            raise TypeError(f"ScalarLSTM: {name} must be a numpy array, got {type(data).__name__}")
        if array.dtype == object:
            if not all(isinstance(v, Value) for v in array.flat):
                raise TypeError(f"ScalarLSTM: an object array for {name} must hold only Values")
            return array
        if array.dtype.kind not in "fiu":
            raise TypeError(f"ScalarLSTM: {name} must hold real numbers, got dtype {array.dtype}")
        return labelled_values(array, name, kind=Constant, time_first=name == "x")

    def __repr__(self) -> str:
        return (f"ScalarLSTM(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers})")


# --- object arrays of Values -------------------------------------------------------------------------------

def labelled_values(array: np.ndarray, name: str, kind: type[Value] = Value, time_first: bool = False
                    ) -> np.ndarray:
    """An object array of Values (or Constants) holding ``array``'s numbers, labelled ``h0[0,1,2]``, or with
    ``time_first`` by step and element: ``x[t=1][1,2]`` for ``array[0, 1, 2]``."""
    nodes = np.empty(array.shape, dtype=object)
    for index in np.ndindex(array.shape):
        if time_first:
            label = f"{name}[t={index[0] + 1}][{','.join(map(str, index[1:]))}]"
        else:
            label = f"{name}[{','.join(map(str, index))}]"
        nodes[index] = kind(float(array[index]), label=label)
    return nodes


def data_of(nodes: np.ndarray) -> np.ndarray:
    """The numbers in an object array of Values, as a float64 array of the same shape."""
    return np.array([node.data for node in nodes.flat], dtype=np.float64).reshape(nodes.shape)


def grads_of(nodes: np.ndarray) -> np.ndarray:
    """The ``.grad`` of each Value in an object array, as a float64 array of the same shape."""
    return np.array([node.grad for node in nodes.flat], dtype=np.float64).reshape(nodes.shape)

