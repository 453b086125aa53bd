"""check_derivation's cost against the graph's size (issue 18, point 10): a fork of many uses, and a long chain
that forks from one leaf at every op, each explained at its widest node.

Run: python benchmarks/bench_derivation.py [--cpu]

Prints the seconds of one check for each size and the ratio to the size before it: a linear check takes about
twice as long when the size doubles (quadratic: four times). Before the fix, the 4,000-use fork took 11.6 s and
the 16,000-op chain 49 s on the issue's machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from timing import CLOCKS  # noqa: E402

from autograd import Value, check_derivation  # noqa: E402


def wide_fork(uses: int) -> Value:
    """x used ``uses`` times, one product each, all added up."""
    x = Value(0.5, label="x")
    loss = Value(0.0)
    for k in range(uses):
        loss = loss + x * float(k % 7 + 1)
    loss.label = "L"
    return loss


def forking_chain(ops: int) -> Value:
    """A chain of ``ops`` stages, each also using the leaf x: x forks into every one of them."""
    x = Value(0.5, label="x")
    y = x
    for k in range(ops):
        y = y * 0.999 + x if k % 2 else (y + x) * 0.5
    y.label = "L"
    return y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="CPU time of the process instead of wall time")
    args = parser.parse_args()
    tick = CLOCKS["cpu" if args.cpu else "wall"]
    sys.setrecursionlimit(100_000)
    for title, build, sizes in (("fork of N uses", wide_fork, (1000, 2000, 4000)),
                                ("chain of N ops forking from one leaf", forking_chain, (4000, 8000, 16000))):
        print(title)
        before = None
        for size in sizes:
            loss = build(size)
            start = tick()
            report = check_derivation(loss, {"x": 1.0})
            seconds = tick() - start
            assert report.first_mismatch.name == "x"
            ratio = "" if before is None else f"  ({seconds / before:.2f}x the size before)"
            print(f"  N = {size:>6,}: {seconds:6.2f} s{ratio}")
            before = seconds


if __name__ == "__main__":
    main()
