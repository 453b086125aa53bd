"""A run: a character-level model (Embedding -> LSTM, GRU or RNN -> Linear; Adam, clipping) trained on a text.

    >>> from lstm.training import TrainConfig, sample, train
    >>> result = train(TrainConfig(steps=200))          # prints progress, the losses and the unigram baseline
    >>> print(sample(result.model, result.vocab, "LOVE, n. ", 200, temperature=0.8))

`train` measures the validation loss against the unigram baseline (a model that knows character frequencies
but no context): the gap between the two is what the model learned from context. With a checkpoint path it
saves everything after every evaluation and when stopped by SIGINT (Ctrl-C) or SIGTERM (which finish the
current step first), and ``resume=True`` goes on from there. Step k's batch is drawn from a generator seeded
with (seed, k), so a run that was stopped and resumed produces exactly the losses of one that never stopped.

Everything that can be found wrong is found before the first step, by `prepare_run` (which `train` calls, and
the command line too, to warn about long runs before they start): the settings, the checkpoint (read once), whether
it may be written, and the sizes: `estimate_run` says roughly how much memory and time a run takes, and a run that
cannot fit in the memory this process may use is refused (ConfigError) at once, not after minutes.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograd.files import make_directories, remove_stale_temporaries
from autograd.nn.optim import Adam
from lstm.training import estimate as cost
from lstm.training.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from lstm.training.config import MODELS, ConfigError, TrainConfig, TrainingDiverged
from lstm.training.corpus import CorpusError, read_corpus
from lstm.training.data import CharVocab, train_val_split, unigram_cross_entropy
from lstm.training.environment import deferred_stop, one_blas_thread, printer, progress
from lstm.training.estimate import RunEstimate, check_run_size, checkpoint_layout
from lstm.training.history import History, TrainResult
from lstm.training.model import CharModel
from lstm.training.step import batch_at, evaluate, train_step

__all__ = ["MODELS", "Run", "check_writable", "prepare_corpus", "prepare_data", "prepare_run", "train"]


def prepare_data(config: TrainConfig) -> tuple[CharVocab, np.ndarray, np.ndarray]:
    """The corpus's vocabulary and its training and validation ids; ConfigError if the corpus cannot be read as
    text (`lstm.training.corpus`) or a window does not fit in it."""
    vocab, train_ids, val_ids, _ = prepare_corpus(config)
    return vocab, train_ids, val_ids


def prepare_corpus(config: TrainConfig) -> tuple[CharVocab, np.ndarray, np.ndarray, dict[str, Any]]:
    """`prepare_data`'s three, and the corpus's identity (name, size, sha256) that checkpoints record."""
    try:
        corpus = read_corpus(config.corpus, cost.memory_limit())
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
        say = printer(verbose)
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
        with one_blas_thread(), deferred_stop() as stopped_by, np.errstate(over="ignore", invalid="ignore"), \
                progress(config.steps, history.step, verbose) as bar:
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
