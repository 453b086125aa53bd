"""What a run costs, known before it is built: memory and time from the sizes alone, the memory this process may
use, what a checkpoint of a run holds, and sizes and durations written for people."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from autograd.nn.optim import Adam
from lstm.models.lstm import parameter_shapes
from lstm.training.config import MODELS, ConfigError, TrainConfig
from lstm.training.model import CharModel

__all__ = ["FLOPS", "RunEstimate", "as_float", "byte_size", "check_run_size", "check_sample_size", "checkpoint_layout",
           "duration", "estimate_run", "memory_limit"]

# Measured on the reference machine (two cores, one BLAS thread; see benchmarks/bench_train.py) and rounded up;
# the estimates are meant to be right within a factor of about two, enough to tell a run that cannot finish.
PARAMETER_COPIES = 10  # weights, gradients, Adam's two moments, and the temporaries of the update and products
UNIT_COPIES = 24  # numbers per hidden unit, layer, time step and sequence that a step's graph keeps for backward
OUTPUT_COPIES = 20  # numbers per vocabulary entry, time step and sequence: logits, softmax and their gradients
HISTORY_BYTES = 48  # per step of the loss curve: a float in a list, and its copy in a checkpoint
SAMPLE_BYTES = 40  # per sampled character: its id, its code point, the text and its encoded copy
FLOPS = {"float32": 4e10, "float64": 2e10}  # multiply-adds per second of the matrix products of a step
SAMPLE_FLOPS = 3e9  # the same for sampling, one character at a time (matrix-vector products)
CELL_SECONDS = 1e-4  # the engine's own work per LSTM layer and time step (Python, graph bookkeeping)


@dataclass(frozen=True)
class RunEstimate:
    """What a run of ``config`` costs, estimated from its sizes alone: memory in bytes, time in seconds."""

    config: TrainConfig
    parameters: int
    parameter_bytes: int  # the weights with their gradients and Adam's moments
    step_bytes: int  # what one training step keeps for its backward pass
    history_bytes: int  # the loss curve of config.steps steps
    step_seconds: float
    sample_seconds: float  # per sampled character

    @property
    def memory(self) -> int:
        return self.parameter_bytes + self.step_bytes + self.history_bytes

    def describe_memory(self) -> str:
        """Where the memory goes, in words."""
        config = self.config
        layers = f"{config.num_layers:,} layer{'s' if config.num_layers > 1 else ''}"
        return (f"about {byte_size(self.memory)}: {byte_size(self.parameter_bytes)} for {self.parameters:,} parameters "
                f"with their gradients and Adam moments, {byte_size(self.step_bytes)} for a step of "
                f"{config.batch_size:,} sequences of {config.seq_len:,} characters through {layers} of "
                f"{config.hidden_size:,} units, {byte_size(self.history_bytes)} for the loss curve of "
                f"{config.steps:,} steps")


def estimate_run(config: TrainConfig, vocab_size: int) -> RunEstimate:
    """The memory and time a run of ``config`` takes, from its sizes alone (nothing is built)."""
    itemsize = np.dtype(config.dtype).itemsize
    parameters = _parameter_count(config, vocab_size)
    characters = config.seq_len * config.batch_size
    per_character = (UNIT_COPIES * config.num_layers * config.hidden_size + OUTPUT_COPIES * vocab_size
                     + 4 * config.embedding_size)
    step_seconds = (as_float(config.seq_len * config.num_layers) * CELL_SECONDS
                    + as_float(6 * characters * parameters) / FLOPS[config.dtype])  # forward 2, backward 4 per weight
    sample_seconds = as_float(1 + config.num_layers) * CELL_SECONDS / 2 + as_float(2 * parameters) / SAMPLE_FLOPS
    return RunEstimate(config, parameters, itemsize * PARAMETER_COPIES * parameters,
                       itemsize * characters * per_character, HISTORY_BYTES * config.steps, step_seconds,
                       sample_seconds)


def _parameter_count(config: TrainConfig, vocab_size: int) -> int:
    """How many numbers `CharModel.parameter_shapes` lists, by a formula: the number of layers may be absurd
    (``--layers 99999999999999999999``), so the layers are not listed one by one."""

    def count(shapes: Mapping[str, tuple[int, ...]]) -> int:
        return sum(math.prod(shape) for shape in shapes.values())

    one_layer = count(CharModel.parameter_shapes(dataclasses.replace(config, num_layers=1), vocab_size))
    each_further_layer = count(parameter_shapes(config.hidden_size, config.hidden_size,
                                                blocks=MODELS[config.model].blocks))
    return one_layer + (config.num_layers - 1) * each_further_layer


def check_run_size(config: TrainConfig, vocab_size: int, advice: str = ": use smaller sizes or fewer steps"
                   ) -> RunEstimate:
    """The run's estimate, or ConfigError if it needs more memory than this process may use (`memory_limit`)."""
    estimate = estimate_run(config, vocab_size)
    limit = memory_limit()
    if limit is not None and estimate.memory > limit:
        raise ConfigError(f"a run of these sizes needs {estimate.describe_memory()}; this process may use "
                          f"{byte_size(limit)}{advice}")
    return estimate


CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # v2, v1


def check_sample_size(length: int) -> None:
    """ConfigError if a sample of ``length`` characters needs more memory than this process may use."""
    limit = memory_limit()
    if limit is not None and SAMPLE_BYTES * length > limit:
        raise ConfigError(f"a sample of {length:,} characters needs about {byte_size(SAMPLE_BYTES * length)} of "
                          f"memory; this process may use {byte_size(limit)}")


def memory_limit() -> int | None:
    """The memory this process may use, in bytes: the machine's, or less where a limit says so (``ulimit -v``,
    a container's cgroup); None where the system does not say."""
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource  # POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    for path in CGROUP_LIMITS:
        with contextlib.suppress(OSError):
            text = Path(path).read_text().strip()
            if text.isdigit():  # "max" in cgroup v2 means no limit
                limits.append(int(text))
    return min(limits, default=None)


def checkpoint_layout(saved: dict[str, Any], step: int, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """What a checkpoint of the run ``saved`` (a `TrainConfig` as a dict) at ``step`` holds, by entry: the model's
    and the optimizer's arrays and the loss history, each at its largest shape (see `lstm.training.checkpoint.Layout`).

    ValueError if no run could have written it: settings this version does not know, a step past the run's
    end, or sizes this process cannot hold (so a file cannot make us allocate more than its run would).
    """
    try:
        config = TrainConfig.from_dict(saved)
    except (TypeError, ValueError) as error:
        raise ValueError(f"its configuration is not one this version can use ({error})") from None
    if step > config.steps:
        raise ValueError(f"it is at step {step:,}, past the {config.steps:,} steps of its run")
    try:
        check_run_size(config, vocab_size, advice="")
    except ConfigError as error:
        raise ValueError(f"it describes a run that cannot be resumed here ({error})") from None
    model = CharModel.parameter_shapes(config, vocab_size)
    optimizer = Adam.state_shapes(list(model.values()), Adam.BUFFERS)
    history = {"train_loss": (step,), "val_steps": (step + 1,), "val_loss": (step + 1,)}
    groups = {"model": model, "optimizer": optimizer, "history": history}
    return {f"{group}/{name}": shape for group, shapes in groups.items() for name, shape in shapes.items()}


def byte_size(count: int) -> str:
    """A number of bytes for people: 950 KB, 26 GB, 4,800 PB, 1.2e+385 PB."""
    if count >= 10**21:  # absurd sizes give numbers past the floats' range: in powers of ten, not 400 digits
        return f"{Decimal(count) / 10**15:.1e} PB"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:,.{1 if count < 10 * size else 0}f} {unit}"
    return f"{count} bytes"


def as_float(count: int) -> float:
    """An exact count as a float for an estimate; infinity past the floats' range (the sizes may be absurd)."""
    return float(count) if count < sys.float_info.max else math.inf


def duration(seconds: float) -> str:
    """A duration for people: 8 ms, 40 seconds, 12 minutes, 3.5 hours, 9 days, 320 years."""
    if seconds > 1e15:  # past any age of the universe: in powers of ten
        return f"{seconds / (365.25 * 86400):.1e} years" if math.isfinite(seconds) else "forever"
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60),
                       ("seconds", 1)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.{1 if seconds < 10 * size else 0}f} {unit}"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} seconds"
