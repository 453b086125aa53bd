"""Training the character model: the loss falls, resuming is exact, sampling works."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
from dataclasses import replace

import numpy as np
import pytest

import lstm.training.estimate
import lstm.training.run
from autograd import Tensor
from autograd.nn.optim import Adam
from lstm.training import (
    CharModel,
    ConfigError,
    History,
    TrainConfig,
    TrainingDiverged,
    estimate_run,
    evaluate,
    loss_figure,
    plot_losses,
    prepare_run,
    sample,
    train,
)
from lstm.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstm.training.data import CharVocab

# Small enough that a few dozen steps take a second or two.
TINY = TrainConfig(hidden_size=16, embedding_size=8, seq_len=16, batch_size=8, steps=20, eval_interval=5,
                   lr=1e-2)


@pytest.fixture(scope="module")
def straight() -> lstm.training.TrainResult:
    """The TINY run that nothing stopped: what every stopped and resumed run must reproduce, bit for bit."""
    return train(TINY, verbose=False)


def assert_same_run(a: lstm.training.TrainResult, b: lstm.training.TrainResult) -> None:
    assert a.history == b.history  # every float equal, not merely close
    left, right = a.model.state_dict(), b.model.state_dict()
    assert left.keys() == right.keys()
    for name in left:
        np.testing.assert_array_equal(left[name], right[name])


def test_a_short_run_learns_and_beats_nothing_learned():
    result = train(replace(TINY, steps=60, eval_interval=20), verbose=False)
    history = result.history
    assert history.step == 60 and history.val_steps == [0, 20, 40, 60]
    assert np.mean(history.train_loss[-10:]) < np.mean(history.train_loss[:10]) - 0.5
    assert history.val_loss[-1] < history.val_loss[0] - 0.5
    assert result.chars_per_second > 0 and not result.interrupted
    assert 2.5 < result.unigram_loss < 3.5  # English letter frequencies: about 3.1 nats


def test_resuming_reproduces_the_uninterrupted_run_exactly(tmp_path, straight):
    path = str(tmp_path / "run.npz")
    first_half = train(replace(TINY, steps=10, checkpoint=path), verbose=False)
    assert load_checkpoint(path).step == 10 and first_half.step == 10
    resumed = train(replace(TINY, checkpoint=path), resume=True, verbose=False)
    assert_same_run(straight, resumed)
    assert load_checkpoint(path).step == TINY.steps


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; `timeout`, `docker stop`
def test_a_signal_finishes_the_step_saves_and_resumes_exactly(tmp_path, monkeypatch, straight, signal_number):
    path = str(tmp_path / "run.npz")
    real_step = lstm.training.run.train_step
    calls = []

    def step_then_signal(*args):
        calls.append(1)
        if len(calls) == 7:
            os.kill(os.getpid(), signal_number)  # in the middle of step 7
        return real_step(*args)

    monkeypatch.setattr(lstm.training.run, "train_step", step_then_signal)
    handler = signal.getsignal(signal_number)
    stopped = train(replace(TINY, checkpoint=path), verbose=False)
    monkeypatch.undo()
    assert stopped.interrupted and stopped.stopped_by == signal_number and stopped.step == 7
    assert load_checkpoint(path).step == 7
    assert signal.getsignal(signal_number) == handler  # put back as it was

    resumed = train(replace(TINY, checkpoint=path), resume=True, verbose=False)
    assert_same_run(straight, resumed)


def test_a_signal_the_process_ignores_stays_ignored(monkeypatch):
    real_step = lstm.training.run.train_step

    def step_then_terminate(*args):
        os.kill(os.getpid(), signal.SIGTERM)  # as if sent to a run started with SIGTERM ignored
        return real_step(*args)

    monkeypatch.setattr(lstm.training.run, "train_step", step_then_terminate)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        result = train(replace(TINY, steps=3), verbose=False)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.stopped_by is None and result.step == 3


def test_resume_errors_are_clear(tmp_path):
    path = str(tmp_path / "run.npz")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        train(replace(TINY, checkpoint=path), resume=True, verbose=False)
    train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    with pytest.raises(CheckpointError, match="already exists"):
        train(replace(TINY, checkpoint=path), verbose=False)
    with pytest.raises(CheckpointError, match="hidden_size: 16 != 24"):
        train(replace(TINY, hidden_size=24, checkpoint=path), resume=True, verbose=False)
    with pytest.raises(CheckpointError, match="needs a checkpoint path"):
        train(TINY, resume=True, verbose=False)


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    path = str(tmp_path / "run.npz")
    done = train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    again = train(replace(TINY, steps=5, checkpoint=path), resume=True, verbose=False)
    assert_same_run(done, again)


@pytest.mark.parametrize("field, value", [("hidden_size", 0), ("steps", -1), ("lr", 0.0), ("seed", -1),
                                          ("clip_norm", float("nan")), ("dtype", "float16"),
                                          ("val_fraction", 1.0)])
def test_bad_configurations_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        replace(TINY, **{field: value})


def test_the_model_maps_ids_to_logits_and_carries_state():
    model = CharModel(vocab_size=7, embedding_size=3, hidden_size=5, num_layers=2, seed=1)
    logits, (h, c) = model(np.zeros((4, 2), dtype=np.int64))
    assert logits.shape == (4, 2, 7) and h.shape == c.shape == (2, 2, 5)
    assert logits.dtype == np.float32
    names = list(model.state_dict())
    assert names[0] == "embedding.weight" and "lstm.weight_hh_l1" in names and names[-1] == "head.bias"


def test_sampling_is_reproducible_and_stays_in_the_vocabulary():
    result = train(replace(TINY, steps=5), verbose=False)
    model, vocab = result.model, result.vocab
    text = sample(model, vocab, "The ", 40, temperature=0.8, rng=np.random.default_rng(3))
    assert len(text) == 40 and set(text) <= set(vocab.chars)
    assert text == sample(model, vocab, "The ", 40, temperature=0.8, rng=np.random.default_rng(3))
    greedy = sample(model, vocab, "The ", 10, temperature=0)
    assert greedy == sample(model, vocab, "The ", 10, temperature=0, rng=np.random.default_rng(99))
    with pytest.raises(ValueError, match="non-empty prompt"):
        sample(model, vocab, "", 10)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, vocab, "a", 10, temperature=-1)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        sample(model, vocab, "\u2603", 10)


def test_evaluation_needs_one_window():
    model = CharModel(vocab_size=5, embedding_size=2, hidden_size=3)
    assert evaluate(model, np.arange(5).repeat(20) % 5, seq_len=8) > 0
    with pytest.raises(ValueError, match="shorter than one window"):
        evaluate(model, np.arange(5), seq_len=8)


def test_the_loss_curve_is_a_png(tmp_path):
    history = History(train_loss=list(np.linspace(4, 2, 120)), val_steps=[0, 60, 120],
                      val_loss=[4.3, 2.9, 2.1])
    path = plot_losses(history, tmp_path / "plots" / "loss.png", baseline=3.1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes, = loss_figure(history, baseline=3.1).axes  # the same curve, as a figure for notebooks
    labels = [line.get_label() for line in axes.get_lines()]
    assert labels[0] == "training batch" and "validation" in labels and "unigram baseline (3.100)" in labels
    np.testing.assert_array_equal(axes.get_lines()[0].get_ydata(), history.train_loss)


def test_a_run_stopped_before_its_first_step_resumes_to_the_same_curve(tmp_path, monkeypatch, straight):
    path = str(tmp_path / "run.npz")
    real_progress = lstm.training.run.progress

    @contextlib.contextmanager
    def interrupt_at_once(*args):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C before step 1 begins
        with real_progress(*args) as bar:
            yield bar

    monkeypatch.setattr(lstm.training.run, "progress", interrupt_at_once)
    stopped = train(replace(TINY, checkpoint=path), verbose=False)
    monkeypatch.undo()
    assert stopped.interrupted and stopped.step == 0 and load_checkpoint(path).step == 0
    resumed = train(replace(TINY, checkpoint=path), resume=True, verbose=False)
    assert resumed.history.val_steps == [0, 5, 10, 15, 20]  # the untrained model measured once, not twice
    assert_same_run(straight, resumed)


def test_overwrite_replaces_a_checkpoint_only_when_asked(tmp_path):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    with pytest.raises(CheckpointError, match="already exists"):
        train(replace(TINY, steps=3, checkpoint=path), verbose=False)
    train(replace(TINY, steps=3, checkpoint=path), overwrite=True, verbose=False)
    assert load_checkpoint(path).step == 3
    with pytest.raises(ValueError, match="contradict"):
        train(replace(TINY, checkpoint=path), resume=True, overwrite=True, verbose=False)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "run.npz")
    real_step = lstm.training.run.train_step
    calls = []

    def diverge_at_step_8(*args):
        calls.append(1)
        loss = real_step(*args)
        return math.nan if len(calls) == 8 else loss

    monkeypatch.setattr(lstm.training.run, "train_step", diverge_at_step_8)
    with pytest.raises(TrainingDiverged, match=r"became nan at step 8; .*run.npz keeps step 5"):
        train(replace(TINY, checkpoint=path), verbose=False)
    checkpoint = load_checkpoint(path)
    assert checkpoint.step == 5 and np.isfinite(checkpoint.history["train_loss"]).all()


def test_windows_longer_than_the_text_are_refused_before_training():
    with pytest.raises(ConfigError, match="seq_len=100000 does not fit in the validation text"):
        train(replace(TINY, seq_len=100_000), verbose=False)


def test_numpy_integers_in_the_configuration_survive_a_checkpoint(tmp_path):
    path = str(tmp_path / "run.npz")
    config = replace(TINY, steps=np.int64(3), seed=np.int64(2), checkpoint=path)
    train(config, verbose=False)
    saved = load_checkpoint(path).config
    assert saved["steps"] == 3 and saved["seed"] == 2 and type(saved["seed"]) is int


def test_a_damaged_loss_history_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "run.npz"
    train(replace(TINY, steps=5, checkpoint=str(path)), verbose=False)
    checkpoint = load_checkpoint(path)
    checkpoint.history["val_loss"] = checkpoint.history["val_loss"][:1]
    save_checkpoint(path, checkpoint)
    with pytest.raises(CheckpointError, match="inconsistent"):
        train(replace(TINY, checkpoint=str(path)), resume=True, verbose=False)
    checkpoint.history["train_loss"] = np.array(["not numbers"] * 5)
    save_checkpoint(path, checkpoint)
    with pytest.raises(CheckpointError, match="damaged loss history"):
        train(replace(TINY, checkpoint=str(path)), resume=True, verbose=False)
    checkpoint.history["train_loss"] = np.array("not numbers")
    save_checkpoint(path, checkpoint)
    with pytest.raises(CheckpointError, match=r"not a valid checkpoint: entry 'history/train_loss' has shape \(\)"):
        train(replace(TINY, checkpoint=str(path)), resume=True, verbose=False)


# --- optimizer state: exact keys, the learning rate only when asked --------------------------------------------

def small_adam(lr: float = 0.01) -> tuple[Adam, list[Tensor]]:
    rng = np.random.default_rng(0)
    parameters = [Tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((3, 2), (4,))]
    return Adam(parameters, lr=lr), parameters


def test_adam_state_has_the_same_keys_before_and_after_a_step():
    optimizer, parameters = small_adam()
    expected = {"steps", "lr", "mean.0", "mean.1", "square.0", "square.1"}
    assert set(optimizer.state_dict()) == expected  # moments exist (as zeros) before the first step
    for p in parameters:
        p.grad = np.ones_like(p.data)
    optimizer.step()
    state = optimizer.state_dict()
    assert set(state) == expected and state["steps"] == 1 and state["mean.0"].any()
    assert Adam.state_shapes([(3, 2), (4,)], Adam.BUFFERS) == {key: np.shape(value) for key, value in state.items()}

    again, _ = small_adam()
    again.load_state_dict(state)
    assert again.steps == 1
    for key, value in again.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("mean.1"), r"missing \['mean.1'\], unexpected \[\]"),
    (lambda s: s.update({"mean.-1": np.zeros(4)}), r"missing \[\], unexpected \['mean.-1'\]"),
    (lambda s: s.update({"square.0": np.zeros((2, 3))}), r"square.0 is an array of shape \(2, 3\)"),
    (lambda s: s.update({"square.0": -np.ones((3, 2))}), "square.0 holds negative values"),
    (lambda s: s.update({"mean.1": np.full(4, np.nan)}), "mean.1 holds values that are not finite"),
    (lambda s: s.update({"steps": np.array(1.5)}), "steps is an array of shape"),
    (lambda s: s.update({"lr": np.array(1e6)}), r"saved with learning rate 1000000.0, this optimizer has 0.01"),
])
def test_adam_refuses_a_state_that_is_not_exactly_its_own(change, message):
    optimizer, _ = small_adam()
    state = optimizer.state_dict()
    change(state)
    fresh, _ = small_adam()
    before = fresh.state_dict()
    with pytest.raises(ValueError, match=message):
        fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(value, before[key])


def test_override_keeps_the_optimizers_own_learning_rate():
    optimizer, _ = small_adam(lr=1e6)
    state = optimizer.state_dict()
    careful, _ = small_adam(lr=0.005)
    careful.load_state_dict(state, override=True)
    assert careful.lr == 0.005


def test_a_checkpoint_whose_optimizer_learning_rate_differs_is_refused_unless_overridden(tmp_path, straight):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, steps=10, checkpoint=path), verbose=False)
    checkpoint = load_checkpoint(path)
    checkpoint.optimizer["lr"] = np.array(1e6)  # the file's configuration still says 0.01
    save_checkpoint(path, checkpoint)
    with pytest.raises(CheckpointError, match=r"does not fit the model: Adam.load_state_dict: the state was saved "
                                              r"with learning rate 1000000.0, this optimizer has 0.01"):
        train(replace(TINY, checkpoint=path), resume=True, verbose=False)
    resumed = train(replace(TINY, checkpoint=path), resume=True, override_config=True, verbose=False)
    assert_same_run(straight, resumed)  # 0.01 it was, all along


def test_missing_adam_moments_are_refused(tmp_path):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    checkpoint = load_checkpoint(path)
    for key in [key for key in checkpoint.optimizer if key.startswith(("mean.", "square."))]:
        del checkpoint.optimizer[key]
    save_checkpoint(path, checkpoint)
    with pytest.raises(CheckpointError, match="is not a valid checkpoint: it lacks optimizer/mean.0"):
        train(replace(TINY, checkpoint=path), resume=True, verbose=False)


def test_other_settings_on_resume_need_override_config_and_then_stay(tmp_path):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    faster = replace(TINY, lr=0.02, clip_norm=0.5, checkpoint=path)
    with pytest.raises(CheckpointError, match=r"other settings \(checkpoint != now\): lr: 0.01 != 0.02; clip_norm: "
                                              r"1.0 != 0.5; to go on with the new settings, resume with "
                                              r"override_config=True \(--override-config\)"):
        train(faster, resume=True, verbose=False)
    with pytest.raises(CheckpointError, match="hidden_size: 16 != 24; these decide the shapes"):
        train(replace(faster, hidden_size=24), resume=True, override_config=True, verbose=False)
    result = train(faster, resume=True, override_config=True, verbose=False)
    assert result.step == TINY.steps
    saved = load_checkpoint(path)
    assert saved.config["lr"] == 0.02 and saved.optimizer["lr"] == 0.02  # the new settings are the run's now
    assert train(faster, resume=True, verbose=False).step == TINY.steps  # and need no override any more
    with pytest.raises(ValueError, match="override_config only applies when resuming"):
        train(faster, override_config=True, verbose=False)


def test_resuming_keeps_the_checkpoints_permissions(tmp_path):
    path = tmp_path / "run.npz"
    train(replace(TINY, steps=5, checkpoint=str(path)), verbose=False)
    os.chmod(path, 0o600)
    train(replace(TINY, steps=10, checkpoint=str(path)), resume=True, verbose=False)
    assert load_checkpoint(path).step == 10 and stat.S_IMODE(path.stat().st_mode) == 0o600


# --- signals ---------------------------------------------------------------------------------------------------

def test_a_start_removes_what_a_killed_save_left(tmp_path, capsys):
    path = tmp_path / "run.npz"
    train(replace(TINY, steps=5, checkpoint=str(path)), verbose=False)
    left = tmp_path / ".run.npz.k1lled00.tmp"  # what write_atomically leaves when SIGKILL comes mid-save
    left.write_bytes(b"half a checkpoint")
    train(replace(TINY, steps=10, checkpoint=str(path)), resume=True)
    assert f"removed {left}, left by a save that was killed" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


# --- sizes, estimated before anything is built --------------------------------------------------------------------

def test_the_layout_of_a_model_is_known_without_building_it():
    for config in (TINY, replace(TINY, num_layers=3, embedding_size=5), TrainConfig()):
        model = CharModel.for_config(config, 83)
        assert CharModel.parameter_shapes(config, 83) == {name: p.shape for name, p in model.named_parameters()}
        assert estimate_run(config, 83).parameters == model.parameter_count


@pytest.mark.parametrize("change, part", [
    ({"num_layers": 10_000}, "1,320,924,211 parameters"),
    ({"steps": 10**10}, "480 GB for the loss curve of 10,000,000,000 steps"),
    ({"batch_size": 10**6}, "for a step of 1,000,000 sequences"),
    ({"steps": 99999999999999999999}, "for the loss curve of 99,999,999,999,999,999,999 steps"),
])
def test_runs_that_cannot_fit_are_refused_before_anything_is_built(monkeypatch, change, part):
    monkeypatch.setattr(lstm.training.estimate, "memory_limit", lambda: 16 * 10**9)

    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(CharModel, "__init__", never)
    with pytest.raises(ConfigError, match="a run of these sizes needs about") as caught:
        train(replace(TrainConfig(), **change), verbose=False)
    assert part in str(caught.value) and str(caught.value).endswith(
        "this process may use 16 GB: use smaller sizes or fewer steps")


def test_a_sample_too_long_for_memory_is_refused(monkeypatch):
    model = CharModel(vocab_size=5, embedding_size=2, hidden_size=3)
    monkeypatch.setattr(lstm.training.estimate, "memory_limit", lambda: 10**9)
    with pytest.raises(ValueError, match="a sample of 100,000,000 characters needs about 4.0 GB"):
        sample(model, CharVocab("abcde"), "a", 10**8)


@pytest.mark.filterwarnings("error")
def test_a_tiny_temperature_samples_the_likeliest_characters_without_overflow_warnings():
    model, vocab = CharModel(vocab_size=5, embedding_size=2, hidden_size=3), CharVocab("abcde")
    assert sample(model, vocab, "a", 20, temperature=5e-324) == sample(model, vocab, "a", 20, temperature=0)


@pytest.mark.filterwarnings("error")  # numpy's overflow warnings would be noise beside the one-line error
@pytest.mark.parametrize("validation, message", [
    ("measured", "the validation loss became nan at step 6"),
    ("blind to it", "the weights stopped being finite numbers at step 6"),  # say, rows it never looks up
])
def test_weights_that_stop_being_finite_are_never_saved(tmp_path, monkeypatch, validation, message):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    if validation == "blind to it":
        monkeypatch.setattr(lstm.training.run, "evaluate", lambda *args: 3.0)
    with pytest.raises(TrainingDiverged, match=f"{message}; .*run.npz keeps step 5. A lower learning rate may help"):
        train(replace(TINY, steps=10, eval_interval=1, lr=1e308, checkpoint=path), resume=True, override_config=True,
              verbose=False)
    assert load_checkpoint(path).step == 5


def test_a_model_whose_outputs_are_not_finite_cannot_be_sampled():
    model = CharModel(vocab_size=5, embedding_size=2, hidden_size=3)
    model.head.bias.data[:] = np.inf
    with pytest.raises(TrainingDiverged, match="outputs are not finite numbers"):
        sample(model, CharVocab("abcde"), "a", 5)


def test_prepare_run_finds_everything_before_the_first_step_and_reads_the_checkpoint_once(tmp_path, monkeypatch):
    """`prepare_run` is where every check of a run is made (the command line calls it too): settings given as a
    mapping are completed from the checkpoint when resuming, which is read once, and nothing is trained."""
    path = str(tmp_path / "run.npz")
    train(replace(TINY, steps=5, checkpoint=path), verbose=False)
    reads = []
    monkeypatch.setattr(lstm.training.run, "load_checkpoint",
                        lambda *args: reads.append(args) or load_checkpoint(*args))
    run = prepare_run({"checkpoint": path, "steps": 7}, resume=True)
    assert len(reads) == 1 and run.config == replace(TINY, steps=7, checkpoint=path)
    assert run.history.step == 5 and run.steps_left == 2 and run.estimate.step_seconds > 0
    assert load_checkpoint(path).step == 5  # prepared, not trained
    assert run.train(verbose=False).step == 7 and len(reads) == 1
    with pytest.raises(CheckpointError, match="is a directory"):
        prepare_run(replace(TINY, checkpoint=str(tmp_path)), overwrite=True)
    with pytest.raises(ConfigError, match=r"contradict"):
        prepare_run({"checkpoint": path}, resume=True, overwrite=True)
    with pytest.raises(ConfigError, match=r"unknown settings hidden"):
        prepare_run({"hidden": 3})
