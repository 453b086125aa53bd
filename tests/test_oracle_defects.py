"""Regression tests for issue 18, the oracle's last defects: shared parameters across threads, Values mixed into
Tensor helpers, an explicit dtype that skipped the real-number check, and errors that named nothing.
(The tails of sigmoid and the special values are in test_special_values.py.)"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from autograd import Tensor, Value, concatenate, stack, where

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
    from lstm.model import LSTM

    with pytest.raises(TypeError, match="complex"):
        LSTM(2, 3)(np.ones((4, 1, 2)) * (1 + 1j))
