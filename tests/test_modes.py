"""Recording modes (`no_grad`, `stage`, `detect_anomaly`) belong to the thread or asyncio task that enters them.

Each test forces its interleaving with events and barriers (never sleeps or luck): one thread or task is inside a
block at the moment another computes. Blocks that close out of order (overlapping, in generators, in other
threads) leave nothing behind.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable

import numpy as np
import pytest

import autograd
from autograd import AnomalyError, Tensor, Value
from autograd.core import OUTSIDE_EVERY_BLOCK, current_mode

TIMEOUT = 10  # seconds: a wait that long means a deadlock, reported as a failure rather than a hang


def run_in_threads(*bodies: Callable[[], None]) -> None:
    """Run each body in its own thread and re-raise the first failure in the caller."""
    errors: list[BaseException] = []

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as error:  # re-raised in the test's thread
                errors.append(error)
        return run

    threads = [threading.Thread(target=guarded(body)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread did not finish: the interleaving deadlocked"
    if errors:
        raise errors[0]


def wait(event: threading.Event) -> None:
    assert event.wait(TIMEOUT), "the other thread never got there"


def recorded(node: Value | Tensor) -> bool:
    return node.op is not None


# --- threads --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: Value(1.5), lambda: Tensor(np.ones(2), requires_grad=True)])
def test_no_grad_in_one_thread_leaves_another_recording(make):
    x = make()
    inside, computed = threading.Event(), threading.Event()
    results = {}

    def silent() -> None:
        with autograd.no_grad():
            inside.set()
            wait(computed)  # stays inside while the other thread computes
            results["silent"] = x * x

    def recording() -> None:
        wait(inside)
        results["recording"] = x * x
        computed.set()

    run_in_threads(silent, recording)
    assert recorded(results["recording"]) and not recorded(results["silent"])
    assert recorded(x * x)


def test_overlapping_no_grad_blocks_in_two_threads_exit_out_of_order_without_leaking():
    x = Value(2.0)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def a() -> None:  # enters first, leaves first
        with autograd.no_grad():
            a_in.set()
            wait(b_in)
        results["a after its block"] = x * x
        a_out.set()

    def b() -> None:  # enters second, leaves last: a process-wide switch would restore "off" here
        wait(a_in)
        with autograd.no_grad():
            b_in.set()
            wait(a_out)
            results["b inside"] = x * x
        results["b after its block"] = x * x

    run_in_threads(a, b)
    assert recorded(results["a after its block"]) and recorded(results["b after its block"])
    assert not recorded(results["b inside"])
    assert current_mode() is OUTSIDE_EVERY_BLOCK and recorded(x * x)


def test_a_stage_entered_in_one_thread_does_not_tag_nodes_made_in_another():
    x = Value(1.0)
    inside, computed = threading.Event(), threading.Event()
    results = {}

    def staged() -> None:
        with autograd.stage("t=1"), autograd.stage("gate"):
            inside.set()
            wait(computed)
            results["staged"] = x * 2.0

    def plain() -> None:
        wait(inside)
        with autograd.stage("other"):
            results["other"] = x * 3.0
        results["plain"] = x * 4.0
        computed.set()

    run_in_threads(staged, plain)
    assert results["staged"].stage == ("t=1", "gate")
    assert results["other"].stage == ("other",)
    assert results["plain"].stage == ()


def test_detect_anomaly_in_one_thread_does_not_stop_another():
    inside, computed = threading.Event(), threading.Event()
    results = {}

    def checked() -> None:
        with autograd.detect_anomaly():
            inside.set()
            wait(computed)
            with pytest.raises(AnomalyError):
                Value(-1.0).log()

    def unchecked() -> None:
        wait(inside)
        results["log"] = Value(-1.0).log().data  # a value here: nan
        results["tensor log"] = Tensor([-1.0]).log().data[0]
        computed.set()

    run_in_threads(checked, unchecked)
    assert math.isnan(results["log"]) and math.isnan(results["tensor log"])


def test_one_block_object_entered_in_two_threads_at_once():
    quiet = autograd.no_grad()  # one object, as when it decorates a function that two threads call
    x = Value(1.0)
    both_in, first_out = threading.Barrier(2, timeout=TIMEOUT), threading.Event()
    results = {}

    def first() -> None:
        with quiet:
            both_in.wait()
        results["first after"] = x * x
        first_out.set()

    def second() -> None:
        with quiet:
            both_in.wait()
            wait(first_out)
            results["second inside"] = x * x

    run_in_threads(first, second)
    assert recorded(results["first after"]) and not recorded(results["second inside"])


def test_a_new_thread_starts_recording_whatever_its_parent_is_doing():
    # as PyTorch's grad mode: per thread, and on in every new thread
    x = Value(1.0)
    results = {}

    def child() -> None:
        results["child"] = x * x
        results["stage"] = current_mode().stage

    with autograd.no_grad(), autograd.stage("parent"):
        run_in_threads(child)
    assert recorded(results["child"]) and results["stage"] == ()


def test_no_grad_as_a_decorator_used_from_several_threads():
    @autograd.no_grad()
    def square(x: Value) -> Value:
        return x * x

    x = Value(3.0)
    barrier = threading.Barrier(4, timeout=TIMEOUT)
    results = []

    def body() -> None:
        barrier.wait()
        results.append((square(x), x * x))

    run_in_threads(*[body] * 4)
    assert all(not recorded(quiet) and recorded(loud) for quiet, loud in results)


# --- one thread: blocks that close out of order -----------------------------------------------------------------

def test_generators_suspended_inside_no_grad_close_out_of_order_without_leaking():
    x = Value(2.0)

    def quietly():
        with autograd.no_grad():
            yield x * x

    first, second = quietly(), quietly()
    assert not recorded(next(first))
    assert not recorded(next(second))
    first.close()  # the block opened first closes first
    assert not recorded(x * x)  # the second generator is still inside its block
    second.close()
    assert recorded(x * x) and current_mode() is OUTSIDE_EVERY_BLOCK


def test_overlapping_stages_closed_out_of_order_keep_the_ones_still_open():
    outer, inner = autograd.stage("outer"), autograd.stage("inner")
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert Value(1.0).stage == ("inner",)
    inner.__exit__(None, None, None)
    assert Value(1.0).stage == () and current_mode() is OUTSIDE_EVERY_BLOCK
    inner.__exit__(None, None, None)  # closing a block that is not open changes nothing
    assert current_mode() is OUTSIDE_EVERY_BLOCK


def test_detect_anomaly_and_no_grad_closed_out_of_order():
    anomaly, quiet = autograd.detect_anomaly(), autograd.no_grad()
    anomaly.__enter__()
    quiet.__enter__()
    anomaly.__exit__(None, None, None)
    mode = current_mode()
    assert not mode.grad_enabled and not mode.anomaly
    quiet.__exit__(None, None, None)
    assert current_mode() is OUTSIDE_EVERY_BLOCK


# --- asyncio tasks --------------------------------------------------------------------------------------------------

def test_a_task_awaiting_inside_no_grad_leaves_other_tasks_recording():
    async def main() -> dict[str, Value]:
        x = Value(1.0)
        inside, computed = asyncio.Event(), asyncio.Event()
        results = {}

        async def silent() -> None:
            with autograd.no_grad():
                inside.set()
                await computed.wait()  # suspended inside the block while the other task runs
                results["silent"] = x * x

        async def recording() -> None:
            await inside.wait()
            results["recording"] = x * x
            computed.set()

        await asyncio.wait_for(asyncio.gather(silent(), recording()), TIMEOUT)
        results["after"] = x * x
        return results

    results = asyncio.run(main())
    assert recorded(results["recording"]) and recorded(results["after"]) and not recorded(results["silent"])


def test_stages_and_anomaly_checks_of_concurrent_tasks_stay_apart():
    async def main() -> dict[str, object]:
        turns = [asyncio.Event() for _ in range(4)]  # each task computes while the other waits inside its blocks
        results: dict[str, object] = {}

        async def first() -> None:
            with autograd.stage("task 1"), autograd.detect_anomaly():
                turns[0].set()
                await turns[1].wait()
                results["first"] = Value(1.0) * 2.0
                with pytest.raises(AnomalyError):
                    Value(0.0).log()
                turns[2].set()
                await turns[3].wait()

        async def second() -> None:
            await turns[0].wait()
            with autograd.stage("task 2"):
                turns[1].set()
                await turns[2].wait()
                results["second"] = Value(1.0) * 2.0
                results["log"] = Value(0.0).log().data  # no anomaly check in this task
                turns[3].set()

        await asyncio.wait_for(asyncio.gather(first(), second()), TIMEOUT)
        return results

    results = asyncio.run(main())
    assert results["first"].stage == ("task 1",) and results["second"].stage == ("task 2",)
    assert results["log"] == -math.inf


def test_a_task_created_inside_no_grad_inherits_it_and_its_exit_does_not_leak():
    # contextvars semantics: a task starts with a copy of its creator's modes
    async def main() -> tuple[Value, Value, Value]:
        x = Value(1.0)

        async def child() -> Value:
            return x * x

        with autograd.no_grad():
            task = asyncio.create_task(child())
        inherited = await task
        with autograd.no_grad():
            pass
        return inherited, x * x, await asyncio.create_task(child())

    inherited, after, fresh = asyncio.run(main())
    assert not recorded(inherited) and recorded(after) and recorded(fresh)
