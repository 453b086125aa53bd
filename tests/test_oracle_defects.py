"""Regression tests for issue 18, the oracle's last defects: shared parameters across threads, Values mixed into
Tensor helpers, an explicit dtype that skipped the real-number check, and errors that named nothing.
(The tails of sigmoid and the special values are in test_special_values.py.)"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from autograd import Tensor, Value

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
