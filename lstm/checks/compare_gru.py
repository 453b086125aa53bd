"""The GRU's gradients three ways, and yours: hand derivation (`lstm.hand.gru`), Tensor engine, finite differences.

The same table as `lstm.compare` (a `Comparison`), for the loss L = sum(out * W_out) + sum(h_n * W_h) with fixed
random W_out, W_h. A derivation of your own (``derivation=``, with `lstm.hand.gru.backward`'s signature) joins
the table and is checked stage by stage against the GRU's graph (`autograd.check_derivation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograd import Tensor, check_derivation
from autograd.check import central_differences
from lstm.checks.compare import FINITE, REFERENCE, YOURS, Comparison, Derivation
from lstm.hand import gru as hand_gru
from lstm.models.gru import GRU
from lstm.models.params import GRU_GATES, init_params

__all__ = ["compare_gru"]

TENSOR = "GRU (Tensor)"
OUTPUTS = ("out", "h_n")
LOSS = "L = sum(out * W_out) + sum(h_n * W_h)"


def compare_gru(input_size: int = 3, hidden_size: int = 4, num_layers: int = 1, seq_len: int = 5,
                batch_size: int = 2, seed: int = 0, include_finite_differences: bool = True,
                tolerance: float = 1e-9, finite_difference_tolerance: float = 1e-9, eps: float = 1e-3,
                derivation: Derivation | None = None) -> Comparison:
    """Run one GRU through every method and tabulate how far each lands from the hand derivation.

    Weights from ``seed``; x, a non-zero h0 and the loss weights from a generator seeded with ``seed + 1``.
    ``derivation(cache, d_out, d_h)`` is called as `lstm.hand.gru.backward` is and returns gradients by name
    (parameters, "x", "h0", and stage names such as ``a_u[t=5]`` for the stage-by-stage check).
    """
    params = init_params(input_size, hidden_size, num_layers, seed, blocks=len(GRU_GATES))
    rng = np.random.default_rng(seed + 1)
    state_shape = (num_layers, batch_size, hidden_size)
    data = {"x": rng.standard_normal((seq_len, batch_size, input_size)),
            "h0": 0.5 * rng.standard_normal(state_shape)}
    weights = (rng.standard_normal((seq_len, batch_size, hidden_size)), rng.standard_normal(state_shape))

    def hand_loss(values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, Any]:
        return hand_gru.forward({name: values[name] for name in params}, values["x"], values["h0"])

    out, h_n, cache = hand_loss({**params, **data})
    results = {REFERENCE: {"out": out, "h_n": h_n, **hand_gru.backward(cache, *weights)}}
    tolerances = {TENSOR: tolerance}

    model = GRU.from_state_dict(params)
    x, h0 = (Tensor(data[name], requires_grad=True, label=name) for name in ("x", "h0"))
    out_t, h_t = model(x, h0)
    loss = (out_t * weights[0]).sum() + (h_t * weights[1]).sum()
    loss.label = "L"
    loss.backward()
    results[TENSOR] = {"out": out_t.data, "h_n": h_t.data, **model.gradients(), "x": x.grad, "h0": h0.grad}

    if include_finite_differences:
        inputs = {name: array.copy() for name, array in {**params, **data}.items()}

        def scalar_loss() -> float:
            out, h_n, _ = hand_loss(inputs)
            return float(np.sum(out * weights[0]) + np.sum(h_n * weights[1]))

        results[FINITE] = {name: central_differences(scalar_loss, array, eps, points=5)
                           for name, array in inputs.items()}
        tolerances[FINITE] = finite_difference_tolerance
    check = None
    if derivation is not None:
        _, _, copied = hand_loss({name: array.copy() for name, array in {**params, **data}.items()})
        yours = derivation(copied, *(w.copy() for w in weights))
        if not isinstance(yours, dict):
            raise TypeError(f"compare_gru: your derivation must return a dict of gradients by name, as "
                            f"lstm.hand.gru.backward does; got {type(yours).__name__}")
        results[YOURS] = {name: np.asarray(value, dtype=np.float64) for name, value in yours.items()}
        tolerances[YOURS] = tolerance
        check = check_derivation(loss, results[YOURS], rtol=tolerance, atol=tolerance)

    settings = dict(model="GRU", loss=LOSS, outputs=OUTPUTS, input_size=input_size, hidden_size=hidden_size,
                    num_layers=num_layers, seq_len=seq_len, batch_size=batch_size, seed=seed, eps=eps,
                    tolerances=tolerances)
    return Comparison.of(settings, (*OUTPUTS, *params, *data), results, tolerances, check)
