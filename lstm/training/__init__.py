"""Training a character model, one job per file: `config` (what determines a run), `corpus` and `data` (the
text, its vocabulary and batches), `model` (embedding, recurrent layer, head), `step` (a training step, the
validation loss), `estimate` (memory and time before a run is built), `history` (the loss curve, the result),
`sampling`, `plots`, `checkpoint` (saving and loading), `environment` (threads, signals, progress) and `run`
(a run prepared, checked, carried out and resumed). The names below are the ones to use."""

from lstm.training.config import DTYPES, MODELS, ConfigError, TrainConfig, TrainingDiverged
from lstm.training.estimate import (
    FLOPS,
    RunEstimate,
    as_float,
    byte_size,
    check_run_size,
    check_sample_size,
    checkpoint_layout,
    duration,
    estimate_run,
    memory_limit,
)
from lstm.training.history import History, TrainResult
from lstm.training.model import CharModel
from lstm.training.plots import loss_figure, plot_losses
from lstm.training.run import Run, check_writable, prepare_corpus, prepare_data, prepare_run, train
from lstm.training.sampling import check_prompt, sample
from lstm.training.step import batch_at, evaluate, train_step

__all__ = ["DTYPES", "FLOPS", "MODELS", "CharModel", "ConfigError", "History", "Run", "RunEstimate", "TrainConfig",
           "TrainResult", "TrainingDiverged", "as_float", "batch_at", "byte_size", "check_prompt", "check_run_size",
           "check_sample_size", "check_writable", "checkpoint_layout", "duration", "estimate_run", "evaluate",
           "loss_figure", "memory_limit", "plot_losses", "prepare_corpus", "prepare_data", "prepare_run", "sample",
           "train", "train_step"]
