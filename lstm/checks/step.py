"""The most common exercise, checked: one LSTM step's backward pass, written by you, against the engine.

    def my_step_backward(step, d_h, d_c):
        d_tanh_c = d_h * step.o
        ...
        return {"h[t=1]": d_h, "tanh_c[t=1]": d_tanh_c, ..., "h0": d_h_prev, "c0": d_c_prev}

    print(lstm.check_step(my_step_backward))

`check_step` runs step t = 1 of an LSTM (`LSTM.step`) on a small random batch, with the loss
L = sum(h_1 * d_h) + sum(c_1 * d_c) for fixed random d_h and d_c: so dL/dh_1 is ``d_h`` and the gradient
reaching c_1 from later steps is ``d_c``, as they would arrive from step 2 and above. Your function receives
the step's forward values (a `Step`) and those two arrays, and returns your gradients by the names of the
graph's nodes (`lstm.params.STEP_NODES` at t=1, and h0, c0, x for the step's inputs h_{t-1}, c_{t-1}, x_t, or
a parameter's name); `autograd.check_derivation` says where the first one goes wrong, and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograd import DerivationCheck, Tensor, check_derivation, stage
from autograd.core import topological_order
from autograd.exercise import register
from lstm.models.lstm import LSTM
from lstm.models.params import STEP_NODES, init_params, step_name

__all__ = ["Step", "check_step", "one_step"]


class OneStep:
    """What the forward values of one step share, whatever the model: the names of its stages' nodes."""

    @staticmethod
    def name(kind: str) -> str:
        """The node's name for a stage of this step: ``Step.name("f")`` is ``"f[t=1]"``."""
        return step_name(kind, 1)


@dataclass(frozen=True)
class Step(OneStep):
    """The forward values of one LSTM step, each a (B, ·) numpy array, named as in the equations.

    Inputs: ``x`` (x_t), ``h_prev`` (h_{t-1}, the node ``h0``), ``c_prev`` (c_{t-1}, ``c0``); parameters in
    PyTorch's layout, rows in gate order i, f, g, o: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih``
    and ``bias_hh`` (4H,); stages: ``z_i``, ``z_f``, ``z_g``, ``z_o`` (pre-activations), ``i``, ``f``, ``g``,
    ``o`` (gates), ``c``, ``tanh_c``, ``h``.
    """

    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    z_i: np.ndarray
    i: np.ndarray
    z_f: np.ndarray
    f: np.ndarray
    z_g: np.ndarray
    g: np.ndarray
    z_o: np.ndarray
    o: np.ndarray
    c: np.ndarray
    tanh_c: np.ndarray
    h: np.ndarray


ASKED = (*(step_name(kind, 1) for kind in STEP_NODES), "h0", "c0", "x")  # what the exercise asks for: 14 gradients

StepBackward = Callable[[Step, np.ndarray, np.ndarray], Mapping[str, Any]]


def one_step(input_size: int = 3, hidden_size: int = 4, batch: int = 2, seed: int = 0
             ) -> tuple[Tensor, Step, np.ndarray, np.ndarray]:
    """Step t = 1 of an LSTM with weights from ``seed`` and random inputs, as a graph: ``(L, step, d_h, d_c)``
    with L = sum(h_1 * d_h) + sum(c_1 * d_c) and ``step`` its forward values."""
    params = init_params(input_size, hidden_size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x, h_prev, c_prev = (Tensor(array, requires_grad=True, label=name) for name, array in (
        ("x", rng.standard_normal((batch, input_size))), ("h0", 0.5 * rng.standard_normal((batch, hidden_size))),
        ("c0", 0.5 * rng.standard_normal((batch, hidden_size)))))
    d_h, d_c = rng.standard_normal((2, batch, hidden_size))
    h, c = LSTM.from_state_dict(params).step(x, h_prev, c_prev, t=1)
    with stage("loss"):  # d_h and d_c by name: the gradients arriving from step 2, given to the learner
        loss = (h * Tensor(d_h, label="d_h")).sum() + (c * Tensor(d_c, label="d_c")).sum()
    loss.label = "L"
    nodes = {node.label: node.data for node in topological_order(loss) if node.label}
    step = Step(x.data, h_prev.data, c_prev.data,
                **{kind: params[f"{kind}_l0"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
                **{kind: nodes[step_name(kind, 1)] for kind in STEP_NODES})
    return loss, step, d_h, d_c


def check_step(step_backward: StepBackward, *, input_size: int = 3, hidden_size: int = 4, batch: int = 2,
               seed: int = 0, rtol: float = 1e-6, atol: float = 1e-9) -> DerivationCheck:
    """Check ``step_backward(step, d_h, d_c)``, your backward pass through one LSTM step, against the engine.

    It returns a dict of your gradients by node name (``"h[t=1]"``, ``"tanh_c[t=1]"``, ``"c[t=1]"``, the gates
    ``"o[t=1]"`` ..., their pre-activations ``"z_o[t=1]"`` ..., and ``"h0"``, ``"c0"``, ``"x"``, each (B, ·)):
    as many as you like, in any order (parameters' gradients too). The report (`autograd.DerivationCheck`)
    names the first stage, going back from the loss, where one of them differs from the engine's, with a
    verdict on the mistake, and says which of the 14 stage and input gradients asked for (`ASKED`) are missing.
    """
    loss, step, d_h, d_c = one_step(input_size, hidden_size, batch, seed)
    yours = step_backward(step, d_h.copy(), d_c.copy())
    if not isinstance(yours, Mapping):
        raise TypeError(f"check_step: your step_backward must return a dict of gradients by node name, got "
                        f"{type(yours).__name__}")
    return check_derivation(loss, yours, rtol=rtol, atol=atol, expected=ASKED)


def _exercise(rng: np.random.Generator) -> tuple[Tensor, tuple[str, ...]]:
    """`autograd.exercise("lstm-step")`: this check's step, from a seed the exercise's generator draws."""
    loss, *_ = one_step(seed=int(rng.integers(2 ** 31)))
    return loss, ASKED


register("lstm-step", _exercise)
