"""Scalar engine speed and memory: our Value against micrograd's on the same MLP-shaped workload, with Python's
cycle collector on (as programs run) and off (the engines' own work alone).

Run: python benchmarks/bench_value.py [--repeats N] [--cpu]
(micrograd comes with the `bench` extra; without it, ours alone.)

Prints forward + backward throughput in nodes per second and the ratio to micrograd with the collector on and
off, bytes per node, and deep-chain timings. The engines take turns, the one that starts alternating, and the
best of N runs is kept. Each run starts from a collected heap, and the previous run's graph is dropped outside
the timed region (micrograd's graphs are reference cycles, which only the collector frees). Targets (issue 14):
at least 8x micrograd with the collector on, at least 1.2x with it off, at most 150 bytes per node.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from timing import CLOCKS, load  # noqa: E402

from autograd import Value  # noqa: E402
from autograd.core import consumer_counts  # noqa: E402

LAYER_SIZES = (8, 32, 32, 1)
SAMPLES = 32


def mlp_loss(value_type: type):
    """Squared error of an 8-32-32-1 relu MLP over 32 samples, built from raw scalar values."""
    rng = random.Random(0)
    layers = [[[value_type(rng.uniform(-1, 1)) for _ in range(n_in + 1)] for _ in range(n_out)]
              for n_in, n_out in zip(LAYER_SIZES, LAYER_SIZES[1:])]
    loss = value_type(0.0)
    for _ in range(SAMPLES):
        activations = [value_type(rng.uniform(-1, 1)) for _ in range(LAYER_SIZES[0])]
        for depth, layer in enumerate(layers):
            outputs = []
            for *weights, bias in layer:
                total = bias
                for w, a in zip(weights, activations):
                    total = total + w * a
                outputs.append(total.relu() if depth < len(layers) - 1 else total)
            activations = outputs
        error = activations[0] - value_type(rng.uniform(-1, 1))
        loss = loss + error * error
    return loss


def count_nodes(loss) -> int:
    if isinstance(loss, Value):
        return len(consumer_counts(loss))
    seen, stack = {loss}, [loss]
    while stack:
        for parent in stack.pop()._prev:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return len(seen)


def seconds(value_type: type, clock: str) -> float:
    """One forward + backward, from a collected heap; the graph is dropped outside the timed region."""
    gc.collect()
    tick = CLOCKS[clock]
    start = tick()
    loss = mlp_loss(value_type)
    loss.backward()
    elapsed = tick() - start
    del loss
    gc.collect()
    return elapsed


def throughputs(value_types: list[type], repeats: int, clock: str, collector: bool) -> list[float]:
    """Nodes per second of forward + backward for each engine, best of ``repeats`` runs, taking turns."""
    best = [float("inf")] * len(value_types)
    if not collector:
        gc.disable()
    try:
        for repeat in range(repeats):
            order = list(enumerate(value_types))
            for k, value_type in order[::-1] if repeat % 2 else order:
                best[k] = min(best[k], seconds(value_type, clock))
    finally:
        gc.enable()
    nodes = [count_nodes(mlp_loss(value_type)) for value_type in value_types]
    return [n / seconds for n, seconds in zip(nodes, best)]


def bytes_per_node() -> tuple[float, float]:
    """Memory held by the graph after the forward pass, and after the backward pass as well."""
    gc.collect()
    tracemalloc.start()
    loss = mlp_loss(Value)
    forward = tracemalloc.get_traced_memory()[0]
    loss.backward()
    after_backward = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    nodes = count_nodes(loss)
    return forward / nodes, after_backward / nodes


def chain_seconds(length: int) -> float:
    start = time.perf_counter()
    x = Value(1.0)
    y = x
    for _ in range(length):
        y = y * 1.0000001
    y.backward()
    return time.perf_counter() - start


def micrograd_value() -> type | None:
    try:
        from micrograd.engine import Value as MicrogradValue
    except ImportError:
        return None
    return MicrogradValue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each engine; the best is kept")
    parser.add_argument("--cpu", action="store_true", help="time with CPU time rather than the wall clock")
    args = parser.parse_args()
    clock = "cpu" if args.cpu else "wall"
    theirs_type = micrograd_value()
    engines = [Value] if theirs_type is None else [Value, theirs_type]
    nodes = count_nodes(mlp_loss(Value))
    print(f"MLP {'-'.join(map(str, LAYER_SIZES))}, {SAMPLES} samples, {nodes} nodes per forward+backward; best of "
          f"{args.repeats}, {clock} clock; load {load()}")
    for collector, target in ((True, 8.0), (False, 1.2)):
        ours, *theirs = throughputs(engines, args.repeats, clock, collector)
        line = f"  cycle collector {'on ' if collector else 'off'}: autograd.Value {ours:10,.0f} nodes/s"
        if theirs:
            ratio = ours / theirs[0]
            line += (f", micrograd {theirs[0]:10,.0f} nodes/s: {ratio:.2f}x (target >= {target}x: "
                     f"{'met' if ratio >= target else 'MISSED'})")
        print(line)
    if not theirs:
        print("  micrograd: not installed (pip install '.[bench]')")
    forward, total = bytes_per_node()
    print(f"bytes per node   : {forward:.0f} after forward, {total:.0f} with gradients (target <= 150)")
    for length in (100_000, 1_000_000):
        gc.collect()
        print(f"chain of {length:>9,} ops forward+backward: {chain_seconds(length):.2f} s")


if __name__ == "__main__":
    main()
