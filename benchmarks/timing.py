"""How the benchmarks time things: the sides take turns, so that load from other processes hits them alike.

On a shared machine the wall-clock time of a run includes the time the process waited for a core; the CPU time
of the process (``--cpu``) counts only the time it ran, which is steadier under load and equal to the wall time
on an idle machine (for work on one thread; with several BLAS threads, wall time is the one to read).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class Timing(NamedTuple):
    best: float
    median: float


def interleaved(runs: Mapping[str, Callable[[], object]], repeats: int, clock: str = "wall", warmup: int = 2,
                number: int = 1) -> dict[str, Timing]:
    """Seconds per call of each run, best and median of ``repeats`` rounds of ``number`` calls each; in every
    round each side runs once, and the side that starts rotates."""
    tick = CLOCKS[clock]
    names = list(runs)
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            run = runs[name]
            start = tick()
            for _ in range(number):
                run()
            times[name].append((tick() - start) / number)
    return {name: Timing(min(seconds), statistics.median(seconds)) for name, seconds in times.items()}


def load() -> str:
    """The machine's load averages, to print beside figures measured on a shared machine."""
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "unknown"
