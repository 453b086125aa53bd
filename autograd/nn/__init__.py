"""Training on Tensors: modules (`Linear`, `Embedding`, `Conv2d`, `MaxPool2d`, `AvgPool2d`, `Flatten`) and
optimizers (`SGD`, `Adam`, gradient clipping)."""

from autograd.nn.modules import (
    AvgPool2d,
    Conv2d,
    Embedding,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    checked_state,
    uniform,
)
from autograd.nn.optim import SGD, Adam, Optimizer, clip_grad_norm

__all__ = ["SGD", "Adam", "AvgPool2d", "Conv2d", "Embedding", "Flatten", "Linear", "MaxPool2d", "Module",
           "Optimizer", "checked_state", "clip_grad_norm", "uniform"]
