"""One GRU step's backward pass, written by you, checked against the engine (the GRU's `lstm.check_step`).

    def my_gru_step_backward(step, d_h):
        d_n = d_h * (1 - step.u)
        ...
        return {"h[t=1]": d_h, "n[t=1]": d_n, ..., "h0": d_h_prev}

    print(lstm.check_gru_step(my_gru_step_backward))

Step t = 1 of a GRU (`GRU.step`) runs on a small random batch with the loss L = sum(h_1 * d_h) for a fixed
random d_h, the gradient that would arrive from step 2 and above. Your function receives the step's forward
values (a `GRUStep`) and d_h, and returns gradients by node name (`lstm.models.params.GRU_STEP_NODES` at t=1,
and h0, x, or a parameter's name); `autograd.check_derivation` names the first stage that differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograd import DerivationCheck, Tensor, check_derivation, stage
from autograd.core import topological_order
from lstm.checks.step import OneStep
from lstm.models.gru import GRU
from lstm.models.params import GRU_GATES, GRU_STEP_NODES, init_params, step_name

__all__ = ["GRUStep", "check_gru_step", "one_gru_step"]


@dataclass(frozen=True)
class GRUStep(OneStep):
    """The forward values of one GRU step, each a (B, ·) numpy array: inputs ``x``, ``h_prev`` (the node ``h0``);
    parameters in ``nn.GRU``'s layout, rows r, z, n: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih``,
    ``bias_hh`` (3H,); stages ``a_r``, ``r``, ``a_u``, ``u`` (nn.GRU's z), ``hn`` (W_hn h_prev + b_hn), ``r_hn``,
    ``a_n``, ``n``, ``h``."""

    x: np.ndarray
    h_prev: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    a_r: np.ndarray
    r: np.ndarray
    a_u: np.ndarray
    u: np.ndarray
    hn: np.ndarray
    r_hn: np.ndarray
    a_n: np.ndarray
    n: np.ndarray
    h: np.ndarray


GRUStepBackward = Callable[[GRUStep, np.ndarray], Mapping[str, Any]]


def one_gru_step(input_size: int = 3, hidden_size: int = 4, batch: int = 2, seed: int = 0
                 ) -> tuple[Tensor, GRUStep, np.ndarray]:
    """Step t = 1 of a GRU with weights from ``seed`` and random inputs, as a graph: ``(L, step, d_h)`` with
    L = sum(h_1 * d_h)."""
    params = init_params(input_size, hidden_size, seed=seed, blocks=len(GRU_GATES))
    rng = np.random.default_rng(seed + 1)
    x = Tensor(rng.standard_normal((batch, input_size)), requires_grad=True, label="x")
    h_prev = Tensor(0.5 * rng.standard_normal((batch, hidden_size)), requires_grad=True, label="h0")
    d_h = rng.standard_normal((batch, hidden_size))
    h = GRU.from_state_dict(params).step(x, h_prev, t=1)
    with stage("loss"):
        loss = (h * d_h).sum()
    loss.label = "L"
    nodes = {node.label: node.data for node in topological_order(loss) if node.label}
    step = GRUStep(x.data, h_prev.data,
                   **{kind: params[f"{kind}_l0"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
                   **{kind: nodes[step_name(kind, 1)] for kind in GRU_STEP_NODES})
    return loss, step, d_h


def check_gru_step(step_backward: GRUStepBackward, *, input_size: int = 3, hidden_size: int = 4, batch: int = 2,
                   seed: int = 0, rtol: float = 1e-6, atol: float = 1e-9) -> DerivationCheck:
    """Check ``step_backward(step, d_h)``, your backward pass through one GRU step, against the engine: the report
    names the first stage, going back from the loss, where one of your gradients differs."""
    loss, step, d_h = one_gru_step(input_size, hidden_size, batch, seed)
    yours = step_backward(step, d_h.copy())
    if not isinstance(yours, Mapping):
        raise TypeError(f"check_gru_step: your step_backward must return a dict of gradients by node name, got "
                        f"{type(yours).__name__}")
    return check_derivation(loss, yours, rtol=rtol, atol=atol)
