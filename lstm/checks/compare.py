"""One LSTM's gradients four ways: hand derivation, Tensor engine, scalar engine, finite differences; and yours.

All see the same weights, data and initial state, and differentiate the same loss

    L = sum(out * W_out) + sum(h_n * W_h) + sum(c_n * W_c)

with fixed random W_out, W_h, W_c, so that every element of every output and final state matters. The hand
derivation (`lstm.hand`) is the reference; each other method gets, per parameter and for x, h0 and c0, its
largest absolute and relative difference from it and a pass or fail at a stated tolerance. A derivation of
your own (``derivation=``, with `hand.backward`'s signature) joins the table as a column, and is checked stage
by stage against the Tensor LSTM's graph with `autograd.check_derivation`, which names the first stage where it
goes wrong.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autograd import DerivationCheck, Tensor, Value, check_derivation
from autograd.check import central_differences
from lstm import hand
from lstm.demo import Sizes, check_comparison
from lstm.models.lstm import LSTM, ScalarLSTM, data_of, grads_of, labelled_values
from lstm.models.params import init_params

__all__ = ["Comparison", "Difference", "compare"]

REFERENCE = "hand derivation"
TENSOR, SCALAR, FINITE = "LSTM (Tensor)", "ScalarLSTM (Value)", "finite differences"
YOURS = "your derivation"
Derivation = Callable[..., Mapping[str, Any]]  # (cache, d_out, d_h, d_c) -> gradients by name, as hand.backward
OUTPUTS = ("out", "h_n", "c_n")  # forward values, compared before the gradients
LOSS = "L = sum(out * W_out) + sum(h_n * W_h) + sum(c_n * W_c)"


@dataclass(frozen=True)
class Difference:
    """How far one method's array is from the reference's.

    ``relative`` is ``max_abs / max |reference|``; the check passes when
    ``max_abs <= tolerance * max(1, max |reference|)``: relative for large arrays, absolute for small ones.
    """

    max_abs: float
    relative: float
    tolerance: float
    passed: bool

    @classmethod
    def between(cls, value: np.ndarray, reference: np.ndarray, tolerance: float) -> Difference:
        max_abs = float(np.max(np.abs(value - reference), initial=0.0))
        scale = float(np.max(np.abs(reference), initial=0.0))
        relative = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else np.inf)
        return cls(max_abs, relative, tolerance, bool(max_abs <= tolerance * max(1.0, scale)))


@dataclass(frozen=True)
class Comparison:
    """The differences of each method from the hand derivation, per quantity.

    ``quantities`` are the forward outputs ("out", "h_n", "c_n") and then the gradients dL/d(name) for every
    parameter and for "x", "h0", "c0". ``results[method][quantity]`` holds the arrays themselves (the
    reference under ``"hand derivation"``), ``differences[(quantity, method)]`` the comparison; finite
    differences give gradients only. ``derivation`` is the stage-by-stage check of your derivation, when
    ``compare`` was given one (``str(comparison.derivation)`` explains its first mistake).
    """

    settings: dict[str, Any]
    methods: tuple[str, ...]
    quantities: tuple[str, ...]
    results: dict[str, dict[str, np.ndarray]] = field(repr=False)  # arrays: the table is what to look at
    differences: dict[tuple[str, str], Difference] = field(repr=False)
    derivation: DerivationCheck | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings: dict[str, Any], quantities: tuple[str, ...], results: dict[str, dict[str, np.ndarray]],
           tolerances: dict[str, float], derivation: DerivationCheck | None) -> Comparison:
        """Every method's results set against the hand derivation's, each within its tolerance."""
        reference = results[REFERENCE]
        differences = {(quantity, method): Difference.between(results[method][quantity], reference[quantity],
                                                              tolerances[method])
                       for method in tolerances for quantity in quantities if quantity in results[method]}
        return cls(settings, tuple(tolerances), quantities, results, differences, derivation)

    @property
    def passed(self) -> bool:
        return all(difference.passed for difference in self.differences.values())

    def __bool__(self) -> bool:
        return self.passed

    def rows(self) -> list[list[str]]:
        """The table as text cells: a header row, then one row per quantity (3 cells per method)."""
        header = ["quantity"] + [f"{method}: {column}" for method in self.methods
                                 for column in ("max abs", "max rel", "ok")]
        table = [header]
        for quantity in self.quantities:
            row = [quantity if quantity in OUTPUTS else f"dL/d {quantity}"]
            for method in self.methods:
                difference = self.differences.get((quantity, method))
                if difference is None:
                    row += ["-", "-", ""]
                else:
                    row += [f"{difference.max_abs:.1e}", f"{difference.relative:.1e}",
                            "yes" if difference.passed else "NO"]
            table.append(row)
        return table

    def title(self) -> str:
        s = self.settings
        layers = f"{s['num_layers']} layer" + ("s" if s["num_layers"] > 1 else "")
        return (f"{s.get('model', 'LSTM')} gradients against the {REFERENCE}: input {s['input_size']}, "
                f"hidden {s['hidden_size']}, {layers}, {s['seq_len']} steps, batch {s['batch_size']}, "
                f"seed {s['seed']}, float64")

    def notes(self) -> list[str]:
        s = self.settings
        tolerances = ", ".join(f"{method} {s['tolerances'][method]:g}" for method in self.methods)
        eps = f" (five-point central, eps {s['eps']:g})" if FINITE in self.methods else ""
        return [f"loss: {s.get('loss', LOSS)}, fixed random W; "
                f"rows {', '.join(s.get('outputs', OUTPUTS))} compare forward values",
                "pass: max abs <= tolerance * max(1, max |reference|)",
                f"tolerances: {tolerances}{eps}",
                *self._derivation_notes(),
                "all passed" if self.passed else "SOME CHECKS FAILED"]

    def _derivation_notes(self) -> list[str]:
        """Where your derivation first goes wrong, stage by stage, in a line or two."""
        check = self.derivation
        if check is None:
            return []
        first = check.first_mismatch
        if first is None:
            return [f"your derivation: all {len(check.checks)} gradients it returned agree with the engine's"]
        reason = first.verdict() or first.hint
        return [f"your derivation first differs at {first.name} (stage {first.stage}), going back from L; "
                f"{len(check.mismatches)} of its {len(check.checks)} gradients differ"
                + (f": {reason}" if reason else ""),
                "print(comparison.derivation) for the whole explanation"]

    def __str__(self) -> str:
        _, *body = self.rows()
        cells = [["quantity"] + ["max abs", "max rel", "ok"] * len(self.methods), *body]
        widths = [max(len(row[k]) for row in cells) for k in range(len(cells[0]))]

        def line(row: list[str]) -> str:
            return "  ".join(cell.ljust(width) if k == 0 else cell.rjust(width)
                             for k, (cell, width) in enumerate(zip(row, widths))).rstrip()

        # each method's name centred above its three columns
        spans = [sum(widths[1 + 3 * m:4 + 3 * m]) + 4 for m in range(len(self.methods))]
        above = " " * widths[0] + "".join(f"  {name.center(span)}" for name, span in zip(self.methods, spans))
        return "\n".join([self.title(), "", above.rstrip(), *map(line, cells), "", *self.notes()])

    def to_markdown(self) -> str:
        rows = self.rows()
        lines = [f"**{self.title()}**", "", "| " + " | ".join(rows[0]) + " |",
                 "|" + "|".join([":---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join([*lines, "", *(f"{note}  " for note in self.notes())])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))  # IPython's plain-text view: the table, not the dataclass fields

    def _repr_html_(self) -> str:
        rows = self.rows()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
        body = "".join("<tr>" + "".join(
            f'<td style="text-align:{"left" if k == 0 else "right"}'
            f'{";color:#b91c1c;background:#fef2f2;font-weight:bold" if cell == "NO" else ""}">{html.escape(cell)}</td>'
            for k, cell in enumerate(row)) + "</tr>" for row in rows[1:])
        notes = "<br>".join(html.escape(note) for note in self.notes())
        return (f"<p><b>{html.escape(self.title())}</b></p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table><p>{notes}</p>")


def compare(input_size: int = 3, hidden_size: int = 4, num_layers: int = 1, seq_len: int = 5, batch_size: int = 2,
            seed: int = 0, include_scalar: bool = True, include_finite_differences: bool = True,
            tolerance: float = 1e-9, finite_difference_tolerance: float = 1e-9, eps: float = 1e-3,
            derivation: Derivation | None = None) -> Comparison:
    """Run one LSTM through every method and tabulate how far each lands from the hand derivation.

    Weights come from ``seed`` (the same draw in every implementation); x, a non-zero initial state and the
    loss weights from a generator seeded with ``seed + 1``. The scalar LSTM builds one node per number and
    finite differences (five-point) run four forward passes per number: keep the sizes small, or switch them off.

    ``derivation``, your own backward pass, is called as ``hand.backward`` is: ``derivation(cache, d_out, d_h,
    d_c)`` with the `hand.Cache` of the forward pass and dL/d(out), dL/d(h_n), dL/d(c_n). It returns a dict of
    gradients by name: parameter names, "x", "h0" and "c0" fill its column of the table; stage names (``h[t=5]``,
    ``c[t=5]``, ``z_f[t=5]``, ..., as ``hand.backward(..., adjoints=True)`` returns them) let the check say at
    which stage it first goes wrong. It is held to ``tolerance``.

    Sizes are checked before anything is built, as the command line checks them (`lstm.demo.check_comparison`):
    a comparison that would take more than this process's memory, a ScalarLSTM graph past `lstm.demo.NODE_LIMIT`
    nodes or finite differences of more than some seconds is refused at once with a `lstm.demo.SizeError`.
    """
    sizes = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, seq_len=seq_len,
                 batch_size=batch_size)
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"compare: {name} must be a positive integer, got {size!r}")
    check_comparison(Sizes(**sizes), scalar=include_scalar, finite_differences=include_finite_differences)
    settings = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, seq_len=seq_len,
                    batch_size=batch_size, seed=seed, eps=eps)
    params = init_params(input_size, hidden_size, num_layers, seed)
    rng = np.random.default_rng(seed + 1)
    state_shape = (num_layers, batch_size, hidden_size)
    data = {"x": rng.standard_normal((seq_len, batch_size, input_size)),
            "h0": 0.5 * rng.standard_normal(state_shape), "c0": 0.5 * rng.standard_normal(state_shape)}
    loss_weights = (rng.standard_normal((seq_len, batch_size, hidden_size)), rng.standard_normal(state_shape),
                    rng.standard_normal(state_shape))

    results = {REFERENCE: _hand(params, data, loss_weights)}
    tolerances = {TENSOR: tolerance}
    results[TENSOR], root = _tensor(params, data, loss_weights)
    if include_scalar:
        results[SCALAR] = _scalar(params, data, loss_weights)
        tolerances[SCALAR] = tolerance
    if include_finite_differences:
        results[FINITE] = _finite_differences(params, data, loss_weights, eps)
        tolerances[FINITE] = finite_difference_tolerance
    check = None
    if derivation is not None:
        yours = _yours(derivation, params, data, loss_weights)
        results[YOURS] = yours
        tolerances[YOURS] = tolerance
        check = check_derivation(root, yours, rtol=tolerance, atol=tolerance)
    settings["tolerances"] = tolerances

    return Comparison.of(settings, (*OUTPUTS, *params, *data), results, tolerances, check)


Weights = tuple[np.ndarray, np.ndarray, np.ndarray]


def _hand(params: dict[str, np.ndarray], data: dict[str, np.ndarray], loss_weights: Weights
          ) -> dict[str, np.ndarray]:
    out, (h, c), cache = hand.forward(params, data["x"], (data["h0"], data["c0"]))
    # dL/dout = W_out, dL/dh_n = W_h, dL/dc_n = W_c: the loss is linear in what the forward pass returns
    return {"out": out, "h_n": h, "c_n": c, **hand.backward(cache, *loss_weights)}


def _yours(derivation: Derivation, params: dict[str, np.ndarray], data: dict[str, np.ndarray],
           loss_weights: Weights) -> dict[str, np.ndarray]:
    """Your derivation run as hand.backward is, on copies (it cannot change what the others use)."""
    _, _, cache = hand.forward({name: array.copy() for name, array in params.items()}, data["x"].copy(),
                               (data["h0"].copy(), data["c0"].copy()))
    gradients = derivation(cache, *(weights.copy() for weights in loss_weights))
    if not isinstance(gradients, Mapping):
        raise TypeError(f"compare: your derivation must return a dict of gradients by name, as hand.backward "
                        f"does; got {type(gradients).__name__}")
    return {name: np.asarray(value, dtype=np.float64) for name, value in gradients.items()}


def _tensor(params: dict[str, np.ndarray], data: dict[str, np.ndarray], loss_weights: Weights
            ) -> tuple[dict[str, np.ndarray], Tensor]:
    """The Tensor LSTM's numbers, and its loss: the graph a derivation of your own is checked on."""
    model = LSTM.from_state_dict(params)
    x, h0, c0 = (Tensor(data[name], requires_grad=True, label=name) for name in ("x", "h0", "c0"))
    out, (h, c) = model(x, (h0, c0))
    w_out, w_h, w_c = loss_weights
    loss = (out * w_out).sum() + (h * w_h).sum() + (c * w_c).sum()
    loss.label = "L"
    loss.backward()
    return {"out": out.data, "h_n": h.data, "c_n": c.data, **model.gradients(),
            "x": x.grad, "h0": h0.grad, "c0": c0.grad}, loss


def _scalar(params: dict[str, np.ndarray], data: dict[str, np.ndarray], loss_weights: Weights
            ) -> dict[str, np.ndarray]:
    model = ScalarLSTM.from_state_dict(params)
    leaves = {name: labelled_values(array, name, time_first=name == "x") for name, array in data.items()}
    out, (h, c) = model(leaves["x"], (leaves["h0"], leaves["c0"]))
    loss = Value(0.0)
    for nodes, weights in zip((out, h, c), loss_weights):
        for node, weight in zip(nodes.flat, weights.flat):
            loss = loss + node * float(weight)
    loss.backward()
    return {"out": data_of(out), "h_n": data_of(h), "c_n": data_of(c), **model.gradients(),
            **{name: grads_of(nodes) for name, nodes in leaves.items()}}


def _finite_differences(params: dict[str, np.ndarray], data: dict[str, np.ndarray], loss_weights: Weights,
                        eps: float) -> dict[str, np.ndarray]:
    """Five-point central differences of L through the hand forward pass, one number at a time."""
    inputs = {name: array.copy() for name, array in {**params, **data}.items()}

    def loss() -> float:
        weights = {name: inputs[name] for name in params}
        out, (h, c), _ = hand.forward(weights, inputs["x"], (inputs["h0"], inputs["c0"]))
        return float(sum(np.sum(a * w) for a, w in zip((out, h, c), loss_weights)))

    # the five-point stencil: its error, of order eps^4, is far below the 1e-9 the comparison asks for
    return {name: central_differences(loss, array, eps, points=5) for name, array in inputs.items()}


