"""What a run does to its process and its terminal: one BLAS thread, Ctrl-C and SIGTERM deferred to the end of a
step, progress printed without tearing the bar."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["deferred_stop", "one_blas_thread", "printer", "progress"]


def printer(verbose: bool) -> Callable[[str], None]:
    """Print without tearing the progress bar (tqdm.write), or not at all."""
    if not verbose:
        return lambda message: None
    try:
        from tqdm import tqdm
    except ImportError:
        return lambda message: print(message, flush=True)
    return lambda message: tqdm.write(message, file=sys.stdout)


@contextlib.contextmanager
def progress(total: int, initial: int, verbose: bool) -> Iterator[Any]:
    """A tqdm bar on a terminal (disable=None hides it elsewhere), or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if not verbose or tqdm is None:
        yield None
        return
    with tqdm(total=total, initial=initial, unit="step", disable=None, dynamic_ncols=True,
              file=sys.stderr) as bar:
        yield bar


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run BLAS on one thread: our matrices are small, so on two idle cores a second thread gains nothing
    (30 ms a default training step either way), and when another process keeps one core busy, OpenBLAS's
    waiting threads make a step about 6x slower (180 ms). Needs threadpoolctl; without it, nothing changes
    (OPENBLAS_NUM_THREADS=1 in the environment does the same)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def deferred_stop() -> Iterator[Callable[[], signal.Signals | None]]:
    """Turn the first SIGINT (Ctrl-C) or SIGTERM (what `timeout`, `docker stop` and schedulers send) into a flag,
    so the loop finishes its step and saves; a second one acts as it would have without us (KeyboardInterrupt,
    or the end of the process).

    Outside the main thread signals cannot be caught, and the flag simply never goes up.
    """
    caught: list[signal.Signals] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    # getsignal gives None for a handler set outside Python: the default is the best we can put back. A signal
    # that the process was told to ignore (nohup, a background job) stays ignored.
    previous = {number: signal.getsignal(number) or signal.SIG_DFL for number in (signal.SIGINT, signal.SIGTERM)}
    stopping = [number for number, handler in previous.items() if handler is not signal.SIG_IGN]

    def on_signal(number: int, frame: Any) -> None:
        caught.append(signal.Signals(number))
        for each in stopping:
            signal.signal(each, previous[each])

    for number in stopping:
        signal.signal(number, on_signal)
    try:
        yield lambda: caught[0] if caught else None
    finally:
        for number in stopping:
            signal.signal(number, previous[number])
