"""Regression tests for issue 18, the oracle's last defects: shared parameters across threads, Values mixed into
Tensor helpers, an explicit dtype that skipped the real-number check, and errors that named nothing.
(The tails of sigmoid and the special values are in test_special_values.py.)"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from autograd import Tensor, Value, concatenate, cross_entropy, grad, gradcheck, stack, where
from autograd.check import central_differences
from autograd.nn import SGD, Adam, Linear

# --- 3. shared parameters across threads ------------------------------------------------------------------------

@pytest.fixture
def frequent_thread_switches():
    """Switch threads every microsecond, so that a read-add-write into .grad that is not atomic is interrupted."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _hammer(make_leaf, run, threads: int = 8, passes: int = 50) -> object:
    leaf = make_leaf()
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(passes):
            run(leaf)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return leaf


def test_threads_sharing_a_tensor_parameter_lose_no_update(frequent_thread_switches):
    for _ in range(30):
        W = _hammer(lambda: Tensor(np.zeros((2, 3)), requires_grad=True), lambda W: (W * 1.0).sum().backward())
        np.testing.assert_array_equal(W.grad, np.full((2, 3), 400.0))


def test_threads_sharing_a_value_lose_no_update(frequent_thread_switches):
    for _ in range(30):
        w = _hammer(lambda: Value(0.5), lambda w: (w * 2.0 + w).backward())
        assert w.grad == 400 * 3.0


# --- 4. a Value mixed into the Tensor helpers ----------------------------------------------------------------

@pytest.mark.parametrize("helper, call", [
    ("concatenate", lambda: concatenate([Tensor([1.0]), Value(2.0)])),
    ("concatenate", lambda: concatenate([Value(2.0)])),
    ("stack", lambda: stack([Tensor(1.0), Value(2.0)])),
    ("where", lambda: where([True], Value(1.0), Tensor([2.0]))),
    ("where", lambda: where([True], 1.0, Value(2.0))),
])
def test_a_value_in_a_tensor_helper_gets_the_mixing_error(helper, call):
    # it was an empty StopIteration
    with pytest.raises(TypeError, match=rf"^{helper}: cannot combine Tensor and Value in one graph"):
        call()


# --- 5. an explicit dtype keeps the real-number check ---------------------------------------------------------

@pytest.mark.parametrize("data", [np.array([1 + 5j]), [1 + 5j], 2j, np.complex64(1)])
@pytest.mark.parametrize("dtype", ["float64", np.float32])
def test_complex_numbers_are_refused_with_a_dtype_too(data, dtype):
    # Tensor(np.array([1+5j]), dtype="float64") became [1.] with only a warning
    with pytest.raises(TypeError, match="Tensor needs real numbers, got"):
        Tensor(data, dtype=dtype)


@pytest.mark.parametrize("data", [["1.5"], np.array(["1.5", "2"]), "1.5"])
def test_strings_are_refused_with_a_dtype_too(data):
    # Tensor(["1.5"], dtype="float32") became [1.5]
    with pytest.raises(TypeError, match="Tensor needs real numbers, got"):
        Tensor(data, dtype="float32")


def test_a_dtype_that_is_not_a_float_type_is_refused():
    with pytest.raises(TypeError, match="Tensor dtype must be a float type, got int64"):
        Tensor([1.0], dtype=np.int64)


def test_real_input_with_a_dtype_still_converts():
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert Tensor(np.float64([0.1]), dtype="float16").dtype == np.float16
    assert Tensor([True, False], dtype="float64").data.tolist() == [1.0, 0.0]
    assert (Tensor([1.0], dtype=np.float32) * 2.0).dtype == np.float32


@pytest.mark.parametrize("upstream", [np.array([1 + 1j, 2.0]), np.complex64([1, 2]), [1j, 1]])
def test_a_complex_upstream_gradient_is_refused(upstream):
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float32)
    with pytest.raises(TypeError, match="must be real numbers of that shape"):
        (x * 2.0).backward(upstream)
    assert x.grad is None


def test_a_complex_lstm_input_is_refused():
    from lstm.models.lstm import LSTM

    with pytest.raises(TypeError, match="complex"):
        LSTM(2, 3)(np.ones((4, 1, 2)) * (1 + 1j))


# --- 9. errors that name the problem ------------------------------------------------------------------------------

def _leaf():
    return Tensor(np.ones((2, 3)), requires_grad=True)


@pytest.mark.parametrize("call, kind, message", [
    # was AttributeError: 'float' object has no attribute 'requires_grad'
    (lambda: grad(3.0, [Value(1.0)]), TypeError, r"grad\(\) differentiates a graph node .* got float 3.0"),
    # was IndexError: tuple index out of range
    (lambda: cross_entropy(Tensor(1.0), 0), ValueError, r"cross_entropy: logits need a last axis of classes"),
    (lambda: cross_entropy([1.0, 2.0], 0), TypeError, r"cross_entropy: logits must be a Tensor"),
    # was OverflowError
    (lambda: Linear(0, 1), ValueError, r"Linear: in_features must be an integer of at least 1, got 0"),
    (lambda: Linear(2, -1), ValueError, r"Linear: out_features must be an integer of at least 0, got -1"),
    (lambda: Linear(2.5, 1), ValueError, r"Linear: in_features must be an integer"),
    # was IndexError: tuple index out of range
    (lambda: Linear(2, 3)(Tensor(1.0)), ValueError, r"Linear: the input needs a last axis of 2 features, got a 0-d"),
    (lambda: Linear(2, 3)(np.ones(2)), TypeError, r"Linear: the input must be a Tensor, got ndarray"),
    # was ZeroDivisionError
    (lambda: gradcheck(lambda x: x * x, [Value(1.0)], eps=0), ValueError, r"gradcheck: eps .* got 0"),
    (lambda: gradcheck(lambda x: x * x, [Value(1.0)], eps=float("nan")), ValueError, r"gradcheck: eps"),
    (lambda: central_differences(lambda: 0.0, np.ones(2), eps=-1e-6), ValueError, r"central_differences: eps"),
    # was AttributeError: 'float' object has no attribute 'data'
    (lambda: gradcheck(lambda x: 3.0, [Value(1.0)]), TypeError, r"gradcheck needs f to return a graph node .* float"),
])
def test_bad_input_gets_an_error_that_names_it(call, kind, message):
    with pytest.raises(kind, match=message):
        call()


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=float("inf")), r"SGD: lr must lie in \(0, inf\), got inf"),
    (lambda p: SGD(p, lr=float("nan")), r"SGD: lr must lie in \(0, inf\), got nan"),
    (lambda p: SGD(p, lr=-0.1), r"SGD: lr must lie in \(0, inf\), got -0.1"),
    (lambda p: Adam(p, lr=0), r"Adam: lr must lie in \(0, inf\), got 0.0"),
    (lambda p: SGD(p, momentum=float("nan")), r"SGD: momentum must lie in \[0, inf\), got nan"),
    (lambda p: SGD(p, momentum=-0.5), r"SGD: momentum must lie in \[0, inf\), got -0.5"),
    (lambda p: Adam(p, betas=(2, 3)), r"Adam: betas\[0\] must lie in \[0, 1\), got 2.0"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), r"Adam: betas\[1\] must lie in \[0, 1\), got 1.0"),
    (lambda p: Adam(p, betas=(0.9, float("nan"))), r"Adam: betas\[1\] must lie in \[0, 1\), got nan"),
    (lambda p: Adam(p, eps=-1e-8), r"Adam: eps must lie in \[0, inf\), got -1e-08"),
])
def test_optimizer_settings_out_of_range_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make([_leaf()])


def test_optimizer_setting_that_is_not_a_number_is_refused():
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got str"):
        SGD([_leaf()], lr="0.1")
    with pytest.raises(TypeError, match=r"Adam: betas is a pair of numbers in \[0, 1\)"):
        Adam([_leaf()], betas=0.9)


def test_optimizers_refuse_values_non_leaves_and_a_parameter_twice():
    with pytest.raises(TypeError, match=r"SGD: parameter 0 is a Value; an optimizer updates Tensors"):
        SGD([Value(1.0)])
    with pytest.raises(TypeError, match=r"Adam takes a list of parameters .* got a single Tensor"):
        Adam(_leaf())
    W = _leaf()
    with pytest.raises(ValueError, match=r"SGD: parameter 1 .* was computed by mul, not a leaf"):
        SGD([W, W * 2.0])
    # was accepted, and W stepped twice per step()
    with pytest.raises(ValueError, match=r"Adam: parameter 2 is the same tensor as parameter 0; it would be "
                                         r"stepped twice"):
        Adam([W, _leaf(), W])


def test_valid_optimizer_settings_still_step():
    W = _leaf()
    (W * W).sum().backward()
    SGD([W], lr=0.5, momentum=0.9).step()
    np.testing.assert_allclose(W.data, np.zeros((2, 3)))
    Adam([_leaf()], lr=1e-3, betas=(0.0, 0.0), eps=0.0)


def test_draw_render_and_step_through_name_their_bad_arguments(tmp_path):
    from autograd.view import draw, render, step_through

    a = Value(2.0, label="a")
    L = a * a
    L.label = "L"
    # was TypeError: 'int' object is not iterable
    with pytest.raises(TypeError, match=r"draw: title must be a string or None, got int: 5"):
        draw(L, title=5)
    # was AttributeError: 'int' object has no attribute 'source'
    with pytest.raises(TypeError, match=r"render: expected a drawing .* got int: 5"):
        render(5, tmp_path / "x.svg")
    assert not (tmp_path / "x.svg").exists()
    frames = step_through(L)
    # was a bare IndexError: list index out of range
    with pytest.raises(IndexError, match=rf"frame 1000000 is out of range: there are {len(frames)} frames, 0 to "
                                         rf"{len(frames) - 1}"):
        frames[10**6]
    with pytest.raises(TypeError, match=r"frames are picked by an integer or a slice, got str"):
        frames["1"]
    assert frames[-1].source == frames[len(frames) - 1].source
