"""A character-level language model trained on a text: Embedding -> LSTM (or GRU, RNN) -> Linear, Adam, clipping.

    >>> result = train(TrainConfig(steps=200))          # prints progress, the losses and the unigram baseline
    >>> print(sample(result.model, result.vocab, "LOVE, n. ", 200, temperature=0.8))

`train` measures the validation loss against the unigram baseline (a model that knows character frequencies
but no context): the gap between the two is what the LSTM learned from context. With a checkpoint path it
saves everything after every evaluation and when stopped by SIGINT (Ctrl-C) or SIGTERM (which finish the
current step first), and ``resume=True`` goes on from there. Step k's batch is drawn from a generator seeded
with (seed, k), so a run that was stopped and resumed produces exactly the losses of one that never stopped.

Everything that can be found wrong is found before the first step, by `prepare_run` (which `train` calls, and
the command line too, to warn about long runs before they start): the settings, the checkpoint (read once), whether
it may be written, and the sizes: `estimate_run` says roughly how much memory and time a run takes, and a run that
cannot fit in the memory this process may use is refused (ConfigError) at once, not after minutes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autograd import Tensor, cross_entropy, no_grad
from autograd.files import make_directories, remove_stale_temporaries, write_atomically
from autograd.nn import Embedding, Linear, Module
from autograd.nn.optim import Adam, clip_grad_norm
from lstm.models.gru import GRU
from lstm.models.lstm import LSTM, RNN, parameter_shapes
from lstm.training.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from lstm.training.corpus import CorpusError, read_corpus
from lstm.training.data import (
    DEFAULT_CORPUS,
    CharVocab,
    random_batches,
    sequential_batches,
    train_val_split,
    unigram_cross_entropy,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MODELS", "CharModel", "ConfigError", "History", "Run", "RunEstimate", "TrainConfig", "TrainResult",
           "TrainingDiverged", "as_float", "byte_size", "check_prompt", "check_run_size", "check_sample_size",
           "check_writable", "checkpoint_layout", "duration", "estimate_run", "evaluate", "loss_figure",
           "memory_limit", "plot_losses", "prepare_corpus", "prepare_data", "prepare_run", "sample", "train"]

DTYPES = ("float32", "float64")
MODELS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}  # --model: the recurrent layer between embedding and head
EVAL_LANES = 64  # validation text is read as this many parallel lanes (sequential_batches' batch size)

State = Any  # the recurrent layer's state: (h, c) for the LSTM, h for the GRU and the RNN


class ConfigError(ValueError):
    """Settings that cannot work: a value out of range, windows longer than the text, a run too large for memory,
    a prompt the vocabulary cannot encode, or options that contradict each other."""


class TrainingDiverged(ArithmeticError):
    """The training loss stopped being a finite number; the checkpoint keeps the last good state."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    The defaults train in about 70 seconds on two CPU cores and reach a validation loss of about 1.64 nats
    per character against the unigram baseline's 3.14. They were chosen by measurement: at this budget more
    steps beat larger batches (64 sequences for 1500 steps: 1.68) and a learning rate of 5e-3 beats 3e-3
    (1.71 after 1500 steps) and matches 1e-2; a hidden size of 192 reaches 1.61, but with twice the work.
    """

    hidden_size: int = 128
    num_layers: int = 1
    embedding_size: int = 32
    seq_len: int = 64
    batch_size: int = 32
    steps: int = 2000
    lr: float = 5e-3
    clip_norm: float = 1.0
    seed: int = 0
    eval_interval: int = 100
    checkpoint: str | None = None
    dtype: str = "float32"
    corpus: str = DEFAULT_CORPUS  # a shipped text's name, or the path of a UTF-8 text file
    val_fraction: float = 0.1
    model: str = "lstm"  # the recurrent layer: lstm, gru or rnn (MODELS)

    # Fields a resumed run may change: they decide how long to train and where to save, not what happens.
    RESUMABLE = ("steps", "eval_interval", "checkpoint")
    # Fields a resumed run may change when asked to (override_config): they change the run from there on. The
    # others (sizes, dtype, corpus, model) decide the shapes of the weights and the vocabulary, so they stay.
    ADJUSTABLE = ("lr", "clip_norm", "batch_size", "seq_len", "seed", "val_fraction")

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "embedding_size", "seq_len", "batch_size", "steps",
                     "eval_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("lr", "clip_norm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(self.val_fraction, float) and 0 < self.val_fraction < 1):
            raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.corpus, str) or not self.corpus:
            raise ConfigError(f"corpus must be a shipped text's name or a file's path, got {self.corpus!r}")
        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (numpy integers made ints), ready for JSON."""
        return {name: value.item() if isinstance(value, np.generic) else value
                for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> TrainConfig:
        """The inverse of `to_dict`; ConfigError for a field this version does not know or a bad value."""
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown settings {', '.join(map(str, unknown))}")
        return cls(**fields)

    def differences(self, other: TrainConfig, allowed: tuple[str, ...] = ()) -> list[str]:
        """The fields whose values differ (``name: a != b``), other than those a resumed run may change and
        those in ``allowed``."""
        return [f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
                for f in dataclasses.fields(self)
                if f.name not in self.RESUMABLE + allowed and getattr(self, f.name) != getattr(other, f.name)]


class CharModel(Module):
    """Characters in, next-character logits out: an embedding, a recurrent layer over time (an `LSTM` by default,
    or a `GRU` or an `RNN`: ``kind``, one of MODELS), and a linear head. The recurrent layer's parameters are
    named after its kind: ``lstm.weight_ih_l0``, ``gru.weight_ih_l0``, ``rnn.weight_ih_l0``."""

    def __init__(self, vocab_size: int, embedding_size: int = 32, hidden_size: int = 128, num_layers: int = 1,
                 *, dtype: Any = np.float32, seed: int = 0, kind: str = "lstm") -> None:
        if kind not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {kind!r}")
        self.kind = kind
        # One seed per layer: the same seed would start every layer's generator at the same draws.
        self.embedding = Embedding(vocab_size, embedding_size, seed=seed, dtype=dtype)
        setattr(self, kind, MODELS[kind](embedding_size, hidden_size, num_layers, dtype=dtype, seed=seed + 1))
        self.head = Linear(hidden_size, vocab_size, seed=seed + 2, dtype=dtype)

    @property
    def recurrent(self) -> LSTM | GRU | RNN:
        return getattr(self, self.kind)

    @classmethod
    def for_config(cls, config: TrainConfig, vocab_size: int) -> CharModel:
        return cls(vocab_size, config.embedding_size, config.hidden_size, config.num_layers,
                   dtype=np.dtype(config.dtype), seed=config.seed, kind=config.model)

    @staticmethod
    def parameter_shapes(config: TrainConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
        """The name and shape of every parameter of ``for_config(config, vocab_size)``, without building it."""
        recurrent = parameter_shapes(config.embedding_size, config.hidden_size, config.num_layers,
                                     MODELS[config.model].blocks)
        return {"embedding.weight": (vocab_size, config.embedding_size),
                **{f"{config.model}.{name}": shape for name, shape in recurrent.items()},
                "head.weight": (vocab_size, config.hidden_size), "head.bias": (vocab_size,)}

    def forward(self, ids: np.ndarray, state: State | None = None) -> tuple[Tensor, State]:
        """``ids`` (T, B) integers -> logits (T, B, vocab_size) and the recurrent layer's final state."""
        out, state = self.recurrent(self.embedding(ids), state)
        return self.head(out), state

    @property
    def parameter_count(self) -> int:
        return sum(p.size for p in self.parameters())


@dataclass
class History:
    """The loss curve: every step's training-batch loss, and the validation loss at the evaluated steps."""

    train_loss: list[float] = field(default_factory=list)  # train_loss[k - 1] is step k's
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)

    @property
    def step(self) -> int:
        return len(self.train_loss)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"train_loss": np.array(self.train_loss, dtype=np.float64),
                "val_steps": np.array(self.val_steps, dtype=np.int64),
                "val_loss": np.array(self.val_loss, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> History:
        """The inverse of `to_arrays`; ValueError unless every entry is a 1-D array of numbers."""

        def column(name: str, dtype: type) -> list[Any]:
            array = np.asarray(arrays.get(name, np.zeros(0)))
            if array.ndim != 1 or array.dtype.kind not in "iuf":
                raise ValueError(f"{name} must be a 1-D array of numbers, got shape {array.shape} and dtype "
                                 f"{array.dtype}")
            return array.astype(dtype).tolist()

        return cls(column("train_loss", np.float64), column("val_steps", np.int64), column("val_loss", np.float64))


@dataclass
class TrainResult:
    """What a run produced; ``chars_per_second`` counts this run's training steps only (not evaluation).

    ``stopped_by`` is the signal (SIGINT or SIGTERM) that ended the run before ``config.steps``, if one did.
    """

    model: CharModel
    vocab: CharVocab
    config: TrainConfig
    history: History
    unigram_loss: float
    chars_per_second: float
    stopped_by: signal.Signals | None = None

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None

    @property
    def step(self) -> int:
        return self.history.step

    @property
    def val_loss(self) -> float:
        """The latest validation loss (nats per character)."""
        return self.history.val_loss[-1] if self.history.val_loss else math.nan

    def plot(self, path: str | Path) -> Path:
        """Write the loss curve, with the unigram baseline, to a PNG."""
        return plot_losses(self.history, path, baseline=self.unigram_loss)

    def figure(self) -> Figure:
        """The loss curve as a matplotlib figure (what a notebook shows)."""
        return loss_figure(self.history, baseline=self.unigram_loss)


# --- what a run costs, known before it is built --------------------------------------------------------------

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
    and the optimizer's arrays and the loss history, each at its largest shape (see `lstm.checkpoint.Layout`).

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


# --- the pieces of a run -----------------------------------------------------------------------------------

def prepare_data(config: TrainConfig) -> tuple[CharVocab, np.ndarray, np.ndarray]:
    """The corpus's vocabulary and its training and validation ids; ConfigError if the corpus cannot be read as
    text (`lstm.training.corpus`) or a window does not fit in it."""
    vocab, train_ids, val_ids, _ = prepare_corpus(config)
    return vocab, train_ids, val_ids


def prepare_corpus(config: TrainConfig) -> tuple[CharVocab, np.ndarray, np.ndarray, dict[str, Any]]:
    """`prepare_data`'s three, and the corpus's identity (name, size, sha256) that checkpoints record."""
    try:
        corpus = read_corpus(config.corpus, memory_limit())
    except CorpusError as error:
        raise ConfigError(str(error)) from None
    vocab = CharVocab.from_text(corpus.text)
    train_ids, val_ids = train_val_split(vocab.encode(corpus.text), config.val_fraction)
    for part, ids in (("training", train_ids), ("validation", val_ids)):
        if len(ids) <= config.seq_len:
            raise ConfigError(f"seq_len={config.seq_len} does not fit in the {part} text of corpus {corpus.name} "
                              f"({len(ids):,} characters of its {len(corpus.text):,}): use a shorter seq_len or a "
                              "longer text")
    return vocab, train_ids, val_ids, corpus.identity()


def batch_at(train_ids: np.ndarray, config: TrainConfig, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Step ``step``'s (inputs, targets): a function of (seed, step) alone, so resuming needs no RNG state."""
    rng = np.random.default_rng((config.seed, step))
    return next(random_batches(train_ids, config.seq_len, config.batch_size, rng))


def train_step(model: CharModel, optimizer: Adam, inputs: np.ndarray, targets: np.ndarray,
               clip_norm: float) -> float:
    """One forward and backward pass and one clipped Adam update; returns the batch's loss."""
    logits, _ = model(inputs)
    loss = cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def evaluate(model: CharModel, ids: np.ndarray, seq_len: int) -> float:
    """Mean cross entropy in nats per character over ``ids``, read in order in windows of ``seq_len``.

    The state starts from zero in every window, as in training, so the number is comparable with the
    training loss.
    """
    lanes = min(EVAL_LANES, (len(ids) - 1) // seq_len)
    if lanes < 1:
        raise ValueError(f"the validation text ({len(ids)} characters) is shorter than one window of "
                         f"seq_len={seq_len}; use a shorter seq_len or a larger val_fraction")
    total, count = 0.0, 0
    with no_grad(), _one_blas_thread():
        for inputs, targets in sequential_batches(ids, seq_len, lanes):
            logits, _ = model(inputs)
            total += cross_entropy(logits, targets).item() * targets.size
            count += targets.size
    return total / count


def sample(model: CharModel, vocab: CharVocab, prompt: str, length: int = 200, temperature: float = 1.0,
           rng: np.random.Generator | None = None) -> str:
    """``length`` characters that the model writes after ``prompt`` (not included in the result).

    ``temperature`` scales the logits before sampling: below 1 is more conservative, 0 always takes the
    likeliest character.
    """
    check_prompt(vocab, prompt)
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a non-negative number, got {temperature!r}")
    check_sample_size(length)
    rng = np.random.default_rng() if rng is None else rng
    written = []
    with no_grad():
        logits, state = model(vocab.encode(prompt)[:, None])
        for _ in range(length):
            scores = logits.data[-1, 0].astype(np.float64)
            if not np.isfinite(scores).all():
                raise TrainingDiverged("the model's outputs are not finite numbers (its weights have grown out of "
                                       "range), so it cannot be sampled; a lower learning rate may help")
            if temperature == 0:
                next_id = int(np.argmax(scores))
            else:
                with np.errstate(over="ignore"):  # a tiny temperature: -inf, so exp gives 0, as it should
                    weights = np.exp((scores - scores.max()) / temperature)
                next_id = int(rng.choice(len(weights), p=weights / weights.sum()))
            written.append(next_id)
            logits, state = model(np.array([[next_id]]), state)
    return vocab.decode(np.array(written, dtype=np.int64))


def check_prompt(vocab: CharVocab, prompt: str) -> None:
    """ConfigError unless the model can go on from ``prompt``: at least one character, all in the vocabulary."""
    if not prompt:
        raise ConfigError("sampling needs a non-empty prompt (--prompt): the model has to be fed at least one "
                          "character")
    unknown = sorted(set(prompt) - set(vocab.chars))
    if unknown:
        raise ConfigError(f"the prompt (--prompt) has characters the corpus does not: {''.join(unknown)!r} are not "
                          "in the vocabulary")


def plot_losses(history: History, path: str | Path, baseline: float | None = None) -> Path:
    """Draw the loss curve to a PNG, written atomically (see `write_atomically`); parent directories are
    created."""
    figure = loss_figure(history, baseline)
    return write_atomically(path, lambda file: figure.savefig(file, format="png"))


def loss_figure(history: History, baseline: float | None = None) -> Figure:
    """The loss curve: training batches, their moving average, validation, and the baseline (a notebook shows
    the figure itself)."""
    from matplotlib.figure import Figure  # lazily: matplotlib is optional, and no pyplot, no global backend

    figure = Figure(figsize=(7.5, 4.2), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    steps = np.arange(1, history.step + 1)
    axes.plot(steps, history.train_loss, color="#9ec3e6", linewidth=0.7, label="training batch")
    window = min(50, max(history.step // 10, 1))
    if history.step >= 2 * window > 2:
        smooth = np.convolve(history.train_loss, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1:], smooth, color="#1f5fa8", linewidth=1.6,
                  label=f"training, mean of {window} steps")
    if history.val_loss:
        axes.plot(history.val_steps, history.val_loss, "o-", color="#c2410c", markersize=3.5,
                  label="validation")
    if baseline is not None:
        axes.axhline(baseline, color="#57606a", linestyle="--", linewidth=1,
                     label=f"unigram baseline ({baseline:.3f})")
    axes.set_xlabel("step")
    axes.set_ylabel("cross entropy (nats per character)")
    axes.set_title("Character-level LSTM on the shipped text")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    return figure


# --- the run -----------------------------------------------------------------------------------------------

def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False, override_config: bool = False,
          verbose: bool = True) -> TrainResult:
    """Train a `CharModel` on ``config.corpus`` for ``config.steps`` steps in all (counting resumed ones).

    With ``config.checkpoint`` the run is saved after every evaluation, at the end, and when SIGINT (Ctrl-C) or
    SIGTERM stops it (after the current step; the result's ``stopped_by`` says which); temporaries that a killed
    run left beside the checkpoint are removed first. A fresh run refuses to replace an existing checkpoint
    unless ``overwrite=True`` (the old file then stays whole until the first save replaces it). ``resume=True``
    loads it and goes on to ``config.steps``; the checkpoint's configuration must agree with ``config`` except
    in `TrainConfig.RESUMABLE` fields, and, with ``override_config=True``, in `TrainConfig.ADJUSTABLE` ones,
    which then take ``config``'s values from here on (the learning rate, say, after a divergence).
    Everything that can be found wrong is found before the first step (see `prepare_run`): CheckpointError for
    a missing, damaged or mismatched checkpoint, ConfigError for settings that cannot work or a run that cannot
    fit in memory, OSError for a checkpoint that cannot be written.
    """
    return prepare_run(config, resume=resume, overwrite=overwrite, override_config=override_config).train(verbose)


def prepare_run(config: TrainConfig | Mapping[str, Any], *, resume: bool = False, overwrite: bool = False,
                override_config: bool = False) -> Run:
    """A run set up and checked, ready to `Run.train`: every check `train` makes is made here, before any step.

    ``config`` may also be a mapping of only the settings given (as the command line has them): when resuming,
    the others are the checkpoint's, so ``{"checkpoint": path, "steps": 5000}`` goes on with a run as it was,
    to step 5000; for a fresh run they are `TrainConfig`'s defaults.
    """
    if resume and overwrite:
        raise ConfigError("resume and overwrite (--resume, --overwrite) contradict each other: go on with the "
                          "checkpoint, or replace it")
    if override_config and not resume:
        raise ConfigError("override_config only applies when resuming (--override-config with --resume): a fresh "
                          "run takes its configuration as it is")
    given = dict(config) if isinstance(config, Mapping) else config.to_dict()
    path = given.get("checkpoint")
    if path is not None and Path(path).is_dir():
        raise CheckpointError(f"the checkpoint path {path} is a directory")
    checkpoint = None
    if resume:
        if path is None:
            raise CheckpointError("resuming needs a checkpoint path")
        checkpoint = load_checkpoint(path, checkpoint_layout)  # its configuration is checked there
        given = {**checkpoint.config, **given}
    elif path is not None and Path(path).exists() and not overwrite:
        raise CheckpointError(f"{path} already exists: go on with it (resume, --resume), replace it (overwrite, "
                              "--overwrite), or choose another checkpoint path (--out or --checkpoint)")
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(given)
    vocab, train_ids, val_ids, corpus = prepare_corpus(config)
    estimate = check_run_size(config, vocab.size)
    if path is not None and not (Path(path).exists() and not Path(path).is_file()):  # a device is written through
        check_writable(Path(path).parent, name=path)
    model = CharModel.for_config(config, vocab.size)
    optimizer = Adam(model.parameters(), lr=config.lr)
    history = History()
    if checkpoint is not None:
        history = _restore(checkpoint, config, vocab, corpus, model, optimizer, override_config)
    return Run(config, vocab, train_ids, val_ids, estimate, model, optimizer, history, resumed=resume,
               corpus=corpus)


@dataclass
class Run:
    """A run set up by `prepare_run` and not yet trained: its settings, data and estimate, and the model, the
    optimizer and the loss history it starts from (the checkpoint's when resumed). `train` carries it out, once."""

    config: TrainConfig
    vocab: CharVocab
    train_ids: np.ndarray
    val_ids: np.ndarray
    estimate: RunEstimate
    model: CharModel
    optimizer: Adam
    history: History
    resumed: bool
    corpus: dict[str, Any] = field(default_factory=dict)  # the text's name, size and sha256, for checkpoints

    @property
    def steps_left(self) -> int:
        return max(self.config.steps - self.history.step, 0)

    def train(self, verbose: bool = True) -> TrainResult:
        """Train to ``config.steps``; see `train` for the checkpoints, the signals and the errors."""
        config, vocab, model, optimizer, history = self.config, self.vocab, self.model, self.optimizer, self.history
        train_ids, val_ids = self.train_ids, self.val_ids
        say = _printer(verbose)
        if self.resumed:
            say(f"resuming from {config.checkpoint} at step {history.step}"
                + (f"; steps={config.steps}, so nothing is left to train" if not self.steps_left else ""))
        if config.checkpoint is not None:
            for leftover in remove_stale_temporaries(config.checkpoint):
                say(f"removed {leftover}, left by a save that was killed before it finished")

        unigram = unigram_cross_entropy(train_ids, val_ids, vocab.size)
        say(f"{config.corpus}: {len(train_ids):,} training and {len(val_ids):,} validation characters, "
            f"{vocab.size} distinct; model of {model.parameter_count:,} parameters")
        say(f"unigram baseline (character frequencies, no context): {unigram:.3f} nats per character")
        if not history.val_steps:  # the untrained model's loss: where the curve starts
            history.val_steps.append(0)
            history.val_loss.append(evaluate(model, val_ids, config.seq_len))

        saved_at = history.step if self.resumed else None

        def diverged(what: str) -> TrainingDiverged:
            kept = f"; {config.checkpoint} keeps step {saved_at}" if saved_at is not None else ""
            return TrainingDiverged(f"{what}{kept}. A lower learning rate may help")

        def save() -> None:
            nonlocal saved_at
            if config.checkpoint is not None and saved_at != history.step:
                if not all(np.isfinite(p.data).all() for p in model.parameters()):  # a checkpoint to resume from
                    raise diverged(f"the weights stopped being finite numbers at step {history.step}")
                save_checkpoint(config.checkpoint, Checkpoint(history.step, config.to_dict(), model.state_dict(),
                                                              optimizer.state_dict(), vocab, history.to_arrays(),
                                                              self.corpus))
                saved_at = history.step

        chars_per_step = config.seq_len * config.batch_size
        seconds = 0.0
        first_step = history.step
        # A diverging run overflows on its way to nan: numpy's warnings about it would only repeat, in many lines,
        # what the checks of the loss and the weights say in one.
        with _one_blas_thread(), _deferred_stop() as stopped_by, np.errstate(over="ignore", invalid="ignore"), \
                _progress(config.steps, history.step, verbose) as bar:
            while history.step < config.steps and stopped_by() is None:
                inputs, targets = batch_at(train_ids, config, history.step)
                started = time.perf_counter()
                loss = train_step(model, optimizer, inputs, targets, config.clip_norm)
                seconds += time.perf_counter() - started
                if not math.isfinite(loss):  # the weights are lost too; the checkpoint holds the last good ones
                    raise diverged(f"the training loss became {loss} at step {history.step + 1}")
                history.train_loss.append(loss)
                speed = (history.step - first_step) * chars_per_step / seconds
                if bar is not None:
                    bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", chars_per_s=f"{speed:,.0f}",
                                    refresh=False)
                    bar.update(1)
                if history.step % config.eval_interval == 0 or history.step == config.steps:
                    val_loss = evaluate(model, val_ids, config.seq_len)
                    if not math.isfinite(val_loss):
                        raise diverged(f"the validation loss became {val_loss} at step {history.step}")
                    history.val_steps.append(history.step)
                    history.val_loss.append(val_loss)
                    save()  # before the report: a reader that went away (`| head`) must not cost the steps
                    recent = np.mean(history.train_loss[-config.eval_interval:])
                    say(f"step {history.step:>5}/{config.steps}  train {recent:.3f}  "
                        f"val {history.val_loss[-1]:.3f}  (unigram {unigram:.3f})  {speed:,.0f} chars/s")
            save()
            signal_number = stopped_by()
        if signal_number is not None:
            where = f"; saved to {config.checkpoint}" if config.checkpoint else ""
            say(f"stopped by {signal_number.name} after step {history.step}{where}")
        speed = (history.step - first_step) * chars_per_step / seconds if seconds else 0.0
        return TrainResult(model, vocab, config, history, unigram, speed, signal_number)


def check_writable(directory: str | Path, name: str | Path | None = None) -> None:
    """Create ``directory`` and make sure a file can be written in it, before any work that would be lost
    otherwise; if not, an OSError that names ``name`` (the file to be written there), else the directory."""
    make_directories(directory, name=name)
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise type(error)(error.errno, error.strerror or str(error), str(name or directory)) from None


def _restore(checkpoint: Checkpoint, config: TrainConfig, vocab: CharVocab, corpus: Mapping[str, Any],
             model: CharModel, optimizer: Adam, override_config: bool) -> History:
    """Load a checkpoint into a fresh model and optimizer, after checking that it belongs to this run."""
    source = config.checkpoint
    saved = TrainConfig.from_dict(checkpoint.config)  # checkpoint_layout has checked it
    allowed = TrainConfig.ADJUSTABLE if override_config else ()
    if checkpoint.corpus:
        # the text is known by its content: the same file elsewhere may go on, other text under its name may not
        recorded = checkpoint.corpus
        if (recorded["size"], recorded["sha256"]) != (corpus["size"], corpus["sha256"]):
            raise CheckpointError(
                f"{source} was trained on corpus {recorded['name']} ({recorded['size']:,} bytes, sha256 "
                f"{recorded['sha256'][:16]}...), but corpus {config.corpus} is {corpus['name']} ({corpus['size']:,} "
                f"bytes, sha256 {corpus['sha256'][:16]}...): a run goes on only on the text it was trained on")
        allowed += ("corpus",)
    differences = saved.differences(config, allowed)
    if differences:
        fixed = [line for line in differences if line.partition(":")[0] not in TrainConfig.ADJUSTABLE]
        hint = ("; these decide the shapes of the weights or the vocabulary, so they cannot change" if fixed else
                "; to go on with the new settings, resume with override_config=True (--override-config)")
        raise CheckpointError(f"{source} was written by a run with other settings (checkpoint != now): "
                              + "; ".join(fixed or differences) + hint)
    if checkpoint.vocab != vocab:
        raise CheckpointError(f"{source} has a vocabulary of {checkpoint.vocab.size} characters that differs "
                              f"from the corpus's ({vocab.size}); was the corpus changed?")
    try:
        history = History.from_arrays(checkpoint.history)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source} holds a damaged loss history ({error})") from None
    if history.step != checkpoint.step or len(history.val_steps) != len(history.val_loss):
        raise CheckpointError(f"{source} is inconsistent: step {checkpoint.step}, {history.step} training "
                              f"losses, {len(history.val_steps)} validation steps and {len(history.val_loss)} "
                              "validation losses")
    try:
        model.load_state_dict(checkpoint.model)
        if not all(np.isfinite(array).all() for array in checkpoint.model.values()):
            raise ValueError("the model's weights are not all finite numbers")
        optimizer.load_state_dict(checkpoint.optimizer, override=override_config)
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise CheckpointError(f"{source} does not fit the model: {error}") from None
    if optimizer.steps != checkpoint.step:
        raise CheckpointError(f"{source} is inconsistent: step {checkpoint.step}, but its optimizer has taken "
                              f"{optimizer.steps} steps")
    return history


# --- quiet helpers -----------------------------------------------------------------------------------------

def _printer(verbose: bool) -> Callable[[str], None]:
    """Print without tearing the progress bar (tqdm.write), or not at all."""
    if not verbose:
        return lambda message: None
    try:
        from tqdm import tqdm
    except ImportError:
        return lambda message: print(message, flush=True)
    return lambda message: tqdm.write(message, file=sys.stdout)


@contextlib.contextmanager
def _progress(total: int, initial: int, verbose: bool) -> Iterator[Any]:
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
def _one_blas_thread() -> Iterator[None]:
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
def _deferred_stop() -> Iterator[Callable[[], signal.Signals | None]]:
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
