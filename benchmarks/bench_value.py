"""Scalar engine speed and memory: our Value against micrograd's on the same MLP-shaped workload.

Run: python benchmarks/bench_value.py   (micrograd comes with the `bench` extra; without it, ours alone)
Prints forward+backward throughput in nodes per second, the ratio, bytes per node, and deep-chain timings.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

from autograd import Value
from autograd.core import consumer_counts

LAYER_SIZES = (8, 32, 32, 1)
SAMPLES = 32


def mlp_loss(value_type: type, seed: int = 0):
    """Squared error of an 8-32-32-1 relu MLP over 32 samples, built from raw scalar values."""
    rng = random.Random(seed)
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


def throughputs(value_types: list[type], repeats: int = 5) -> list[tuple[float, int]]:
    """(nodes per second, nodes) of forward+backward for each engine, best of ``repeats`` runs, the engines
    taking turns so that load from other processes affects them alike."""
    best = [float("inf")] * len(value_types)
    for _ in range(repeats):
        for k, value_type in enumerate(value_types):
            gc.collect()
            start = time.perf_counter()
            loss = mlp_loss(value_type)
            loss.backward()
            best[k] = min(best[k], time.perf_counter() - start)
    nodes = [count_nodes(mlp_loss(value_type)) for value_type in value_types]
    return [(n / seconds, n) for n, seconds in zip(nodes, best)]


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
    theirs_type = micrograd_value()
    engines = [Value] if theirs_type is None else [Value, theirs_type]
    (ours, nodes), *theirs = throughputs(engines)
    print(f"MLP {'-'.join(map(str, LAYER_SIZES))}, {SAMPLES} samples, {nodes} nodes per forward+backward")
    print(f"  autograd.Value : {ours:12,.0f} nodes/s")
    if theirs:
        print(f"  micrograd      : {theirs[0][0]:12,.0f} nodes/s")
        print(f"  ratio          : {ours / theirs[0][0]:.2f}x micrograd (target >= 5x)")
    else:
        print("  micrograd      : not installed (pip install '.[bench]')")
    forward, total = bytes_per_node()
    print(f"bytes per node   : {forward:.0f} after forward, {total:.0f} with gradients (target <= 150)")
    for length in (100_000, 1_000_000):
        gc.collect()
        print(f"chain of {length:>9,} ops forward+backward: {chain_seconds(length):.2f} s")


if __name__ == "__main__":
    main()
