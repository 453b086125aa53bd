"""Training speed of the default character model, and how much of a step the LSTM itself takes.

Run: python benchmarks/bench_train.py [--repeats N] [--steps N]

Three measurements on the default `TrainConfig` (embedding 32, LSTM hidden 128, 64 characters x 32
sequences per step, float32):

1. ``train()`` itself for ``--steps`` steps: the characters per second that ``backprop-lens train`` reports
   (training steps only, evaluation excluded).
2. One training step (embedding, LSTM, linear head, cross entropy, backward, clipping, Adam), timed alone.
3. The LSTM alone at the same shape (T=64, B=32, I=32, H=128): forward + backward on the autograd `LSTM`,
   and on the hand-derived numpy `lstm.hand` for reference, as in ``bench_lstm.py``.
4. One training step of the same model with ``--model gru`` and ``--model rnn`` in the LSTM's place, as ratios
   to the LSTM's step.

Steps 2 and 3 alternate and keep the best (and median) of ``--repeats`` runs, so that load from other
processes affects all alike. BLAS threading changes everything; OPENBLAS_NUM_THREADS=1 gives steadier numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from autograd.nn.optim import Adam
from lstm import LSTM, hand
from lstm.training import CharModel, TrainConfig, batch_at, prepare_data, train, train_step


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="runs of each timed piece (default: 30)")
    parser.add_argument("--steps", type=int, default=100, help="steps of the train() run (default: 100)")
    options = parser.parse_args()

    config = TrainConfig()
    chars = config.seq_len * config.batch_size
    vocab, train_ids, _ = prepare_data(config)
    dtype = np.dtype(config.dtype)
    print(f"default model: embedding {config.embedding_size}, hidden {config.hidden_size}, "
          f"{config.num_layers} layer, vocabulary {vocab.size}, {config.dtype}; a step is "
          f"{config.seq_len} characters x {config.batch_size} sequences = {chars:,} characters")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset: one thread per core)')}\n")

    # 1. The training loop as the command line runs it.
    result = train(replace(config, steps=options.steps, eval_interval=options.steps), verbose=False)
    print(f"train(), {options.steps} steps: {result.chars_per_second:>10,.0f} characters/s "
          f"({chars / result.chars_per_second * 1e3:.1f} ms per step)\n")

    # 2. and 3. The pieces, alternately.
    model = CharModel.for_config(config, vocab.size)
    optimizer = Adam(model.parameters(), lr=config.lr)
    others = {kind: CharModel.for_config(replace(config, model=kind), vocab.size) for kind in ("gru", "rnn")}
    other_optimizers = {kind: Adam(other.parameters(), lr=config.lr) for kind, other in others.items()}
    batches = [batch_at(train_ids, config, step) for step in range(options.repeats)]

    rng = np.random.default_rng(0)
    shape = (config.seq_len, config.batch_size)
    x = rng.standard_normal((*shape, config.embedding_size)).astype(dtype)
    d_out = rng.standard_normal((*shape, config.hidden_size)).astype(dtype)
    lstm = LSTM(config.embedding_size, config.hidden_size, dtype=dtype)
    params = hand.init_params(config.embedding_size, config.hidden_size, dtype=dtype)

    def lstm_step() -> None:
        lstm.zero_grad()
        out, _ = lstm(x)
        out.backward(d_out)

    def hand_step() -> None:
        _, _, cache = hand.forward(params, x)
        hand.backward(cache, d_out)

    pieces: dict[str, Callable[[int], object]] = {
        "training step (whole model + Adam)": lambda k: train_step(model, optimizer, *batches[k], config.clip_norm),
        "LSTM forward + backward (autograd)": lambda k: lstm_step(),
        "LSTM forward + backward (hand numpy)": lambda k: hand_step(),
        **{f"training step, --model {kind}": lambda k, kind=kind: train_step(
            others[kind], other_optimizers[kind], *batches[k], config.clip_norm) for kind in others},
    }
    for run in pieces.values():  # warm up: first calls allocate and fault in memory
        run(0)
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for k in range(options.repeats):
        for name, run in pieces.items():
            times[name].append(seconds(lambda run=run, k=k: run(k)))

    print(f"{'best of ' + str(options.repeats):<38}{'best ms':>9}{'median ms':>11}{'characters/s':>14}")
    for name, samples in times.items():
        best, median = min(samples), statistics.median(samples)
        print(f"{name:<38}{best * 1e3:>9.2f}{median * 1e3:>11.2f}{chars / best:>14,.0f}")
    step, lstm_time, hand_time, gru_step, rnn_step = (min(samples) for samples in times.values())
    print(f"\nthe LSTM's forward + backward is {lstm_time / step:.0%} of a training step; the autograd LSTM takes "
          f"{lstm_time / hand_time:.2f}x the hand derivation's time")
    print(f"a training step with --model gru takes {gru_step / step:.2f}x the LSTM's, with --model rnn "
          f"{rnn_step / step:.2f}x")


if __name__ == "__main__":
    main()
