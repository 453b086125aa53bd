"""Conv2d, MaxPool2d, AvgPool2d and Flatten: PyTorch's parameter names, shapes and initialisation, so that a state
dict moves to torch.nn unchanged and gives the same numbers and gradients there."""

from __future__ import annotations

import numpy as np
import pytest

from autograd import Tensor, softmax_cross_entropy
from autograd.nn import SGD, AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, Module


class SmallCNN(Module):
    """The issue's network: two 3x3 filters, ReLU, 2x2 max pooling, a linear layer (softmax cross-entropy after)."""

    def __init__(self, seed: int = 0) -> None:
        self.conv = Conv2d(1, 2, 3, seed=seed)
        self.pool = MaxPool2d(2)
        self.flatten = Flatten()
        self.fc = Linear(8, 3, seed=seed + 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.pool(self.conv(x).relu())))


def test_parameter_names_and_shapes_are_pytorchs():
    model = SmallCNN()
    assert {name: p.shape for name, p in model.named_parameters()} == {
        "conv.weight": (2, 1, 3, 3), "conv.bias": (2,), "fc.weight": (3, 8), "fc.bias": (3,)}
    assert Conv2d(3, 4, (2, 5), bias=False).state_dict().keys() == {"weight"}


def test_initialisation_bound_is_one_over_sqrt_fan_in():
    conv = Conv2d(16, 32, 3, seed=4)
    bound = 1 / np.sqrt(16 * 9)
    for p in (conv.weight.data, conv.bias.data):
        assert np.abs(p).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.95 * bound  # uniform over the whole range, not a narrower one
    assert abs(conv.weight.data.std() - bound / np.sqrt(3)) < 0.05 * bound


def test_pooling_and_flatten_modules():
    x = Tensor(np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, 3, 4, 4))
    assert MaxPool2d(2)(x).shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(AvgPool2d(2, stride=2)(x).data[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert Flatten()(x).shape == (2, 48)
    assert Flatten(0, 1)(x).shape == (6, 4, 4)
    assert Flatten(-2)(x).shape == (2, 3, 16)
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        Flatten(2, 1)(x)
    assert MaxPool2d(2).parameters() == []


def test_a_few_steps_of_training_lower_the_loss():
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((8, 1, 6, 6))), rng.integers(0, 3, 8)
    model = SmallCNN()
    optimizer = SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(20):
        model.zero_grad()
        loss = softmax_cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_state_dict_loads_into_torch_unchanged_and_agrees():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TorchCNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(1, 2, 3)
            self.pool = tnn.MaxPool2d(2)
            self.flatten = tnn.Flatten()
            self.fc = tnn.Linear(8, 3)

        def forward(self, x):
            return self.fc(self.flatten(self.pool(torch.relu(self.conv(x)))))

    ours, theirs = SmallCNN(seed=3), TorchCNN().double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 1, 6, 6)), rng.integers(0, 3, 4)
    loss = softmax_cross_entropy(ours(Tensor(x)), y)
    loss.backward()
    reference = tnn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.gradients()[name], p.grad.numpy(), rtol=1e-10, atol=1e-14)
    # and back: torch's own initialisation loads into ours
    fresh = TorchCNN().double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in fresh.state_dict().items()})
    np.testing.assert_allclose(ours(Tensor(x)).data, fresh(torch.from_numpy(x)).detach().numpy(), atol=1e-12)
