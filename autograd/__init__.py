"""autograd: a small reverse-mode autodiff engine whose graphs, forks and chain rule you can see.

Layers, each on the one before: `core` (nodes, stages, the reverse pass) -> `primitives` (the rule table;
`conv` its sliding-window arithmetic) -> `value` (scalars) and `tensor` (numpy arrays, with composites and
stages in `functions`) -> `check` (gradient checking) -> `view/` (drawings, step-through frames and the chain
rule written out) -> `nn/` (modules and optimizers for training). `files` writes files all or nothing.
"""

from autograd.check import GradcheckResult, gradcheck
from autograd.core import (
    AnomalyError,
    Backprop,
    Branch,
    backpropagate,
    consumers,
    detect_anomaly,
    grad,
    no_grad,
    stage,
    zero_grad,
)
from autograd.exercise import Exercise, exercise
from autograd.functions import (
    avg_pool2d,
    conv1d,
    conv2d,
    cross_entropy,
    log_softmax,
    max_pool2d,
    maximum,
    minimum,
    mse,
    softmax,
    softmax_cross_entropy,
    split,
    stack,
)
from autograd.tensor import Tensor, concatenate, where
from autograd.value import Constant, Value
from autograd.view import (
    DerivationCheck,
    Explanation,
    Frames,
    GraphTooLargeError,
    GraphvizNotFoundError,
    check_derivation,
    draw,
    explain,
    render,
    step_through,
)

__all__ = [
    "AnomalyError",
    "Backprop",
    "Branch",
    "Constant",
    "DerivationCheck",
    "Exercise",
    "Explanation",
    "Frames",
    "GradcheckResult",
    "GraphTooLargeError",
    "GraphvizNotFoundError",
    "Tensor",
    "Value",
    "avg_pool2d",
    "concatenate",
    "conv1d",
    "conv2d",
    "cross_entropy",
    "log_softmax",
    "max_pool2d",
    "maximum",
    "minimum",
    "mse",
    "softmax",
    "softmax_cross_entropy",
    "split",
    "stack",
    "where",
    "backpropagate",
    "check_derivation",
    "consumers",
    "detect_anomaly",
    "draw",
    "exercise",
    "explain",
    "grad",
    "gradcheck",
    "no_grad",
    "render",
    "stage",
    "step_through",
    "zero_grad",
]
