"""Training with another recurrent layer (--model gru, --model rnn) and on a text of one's own (--corpus PATH):
same checkpoints and resume rules, a resume with another model or on other text refused, and every corpus that
cannot be trained on refused in one line."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import lstm.training.estimate
import lstm.training.run
from lstm.cli import main
from lstm.training import MODELS, CharModel, ConfigError, TrainConfig, estimate_run, prepare_run, train
from lstm.training.checkpoint import CheckpointError, load_checkpoint
from lstm.training.corpus import BYTES_PER_CHARACTER, read_corpus

TINY = TrainConfig(hidden_size=8, embedding_size=4, seq_len=16, batch_size=4, steps=4, eval_interval=2)
TEXT = "The quick brown fox jumps over the lazy dog; the dog sleeps on. " * 30


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(MODELS))
def test_each_model_trains_and_names_its_parameters_by_kind(kind, tmp_path):
    result = train(replace(TINY, model=kind, checkpoint=str(tmp_path / "run.npz")), verbose=False)
    names = [name for name, _ in result.model.named_parameters()]
    blocks = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    assert names[1] == f"{kind}.weight_ih_l0" and result.model.recurrent.blocks == blocks
    assert dict(result.model.named_parameters())[f"{kind}.weight_hh_l0"].shape == (blocks * 8, 8)
    assert np.isfinite(result.val_loss) and result.history.val_loss[-1] < result.history.val_loss[0]
    shapes = CharModel.parameter_shapes(replace(TINY, model=kind), result.vocab.size)
    assert shapes == {name: p.shape for name, p in result.model.named_parameters()}
    assert estimate_run(replace(TINY, model=kind), result.vocab.size).parameters == result.model.parameter_count
    assert load_checkpoint(tmp_path / "run.npz").config["model"] == kind


@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_a_stopped_and_resumed_run_is_the_straight_run(kind, tmp_path):
    straight = train(replace(TINY, model=kind, steps=6), verbose=False)
    path = str(tmp_path / "run.npz")
    train(replace(TINY, model=kind, steps=3, checkpoint=path), verbose=False)
    resumed = train(replace(TINY, model=kind, steps=6, checkpoint=path), resume=True, verbose=False)
    assert resumed.history.train_loss == straight.history.train_loss
    evaluated = dict(zip(resumed.history.val_steps, resumed.history.val_loss))  # and at step 3, where it stopped
    assert all(evaluated[step] == loss for step, loss in zip(straight.history.val_steps, straight.history.val_loss))
    for name, parameter in straight.model.named_parameters():
        np.testing.assert_array_equal(dict(resumed.model.named_parameters())[name].data, parameter.data)


def test_a_resume_with_another_model_is_refused(tmp_path):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, model="gru", checkpoint=path), verbose=False)
    with pytest.raises(CheckpointError, match="model: 'gru' != 'lstm'"):
        prepare_run({"checkpoint": path, "model": "lstm", "steps": 6}, resume=True)
    assert prepare_run({"checkpoint": path, "steps": 6}, resume=True).config.model == "gru"  # taken from the file


def test_unknown_model_is_refused():
    with pytest.raises(ConfigError, match="model must be one of lstm, gru, rnn, got 'transformer'"):
        TrainConfig(model="transformer")


def test_a_text_of_ones_own_trains_and_the_checkpoint_records_it(text_file, tmp_path):
    path = str(tmp_path / "run.npz")
    result = train(replace(TINY, corpus=str(text_file), checkpoint=path), verbose=False)
    assert result.vocab.chars == tuple(sorted(set(TEXT)))
    corpus = load_checkpoint(path).corpus
    expected = read_corpus(str(text_file))
    assert corpus == {"name": "mine.txt", "size": len(TEXT.encode()), "sha256": expected.sha256}
    import hashlib

    assert expected.sha256 == hashlib.sha256(TEXT.encode()).hexdigest()


def test_a_resume_on_other_text_is_refused_and_on_the_same_text_elsewhere_allowed(text_file, tmp_path):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, corpus=str(text_file), checkpoint=path), verbose=False)
    text_file.write_text(TEXT.replace("dog", "cat"), encoding="utf-8")  # same name and vocabulary-ish, other text
    with pytest.raises(CheckpointError, match="was trained on corpus mine.txt .* a run goes on only on the text"):
        prepare_run({"checkpoint": path, "steps": 6}, resume=True)
    moved = tmp_path / "moved.txt"
    moved.write_text(TEXT, encoding="utf-8")
    run = prepare_run({"checkpoint": path, "corpus": str(moved), "steps": 6}, resume=True)
    assert run.history.step == 4 and run.config.corpus == str(moved)


def test_the_shipped_corpus_is_recorded_too(tmp_path):
    path = str(tmp_path / "run.npz")
    train(replace(TINY, checkpoint=path), verbose=False)
    corpus = load_checkpoint(path).corpus
    assert corpus["name"] == "devils_dictionary" and corpus["size"] > 100_000 and len(corpus["sha256"]) == 64


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty: there is nothing to train on"),
    (b"\xef\xbb\xbf", "is empty"),  # a byte-order mark and nothing else
    (b"text\x00with a NUL" * 20, r"looks binary \(it holds a NUL byte at offset 4\)"),
    ("caf\xe9 au lait ".encode("latin-1") * 20, r"is not UTF-8 text: byte 3 \(0xe9\) cannot be decoded"),
    (b"abc", "seq_len=16 does not fit in the training text of corpus bad.txt"),
])
def test_a_corpus_that_cannot_be_trained_on_gets_one_clear_line(content, message, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        prepare_run(replace(TINY, corpus=str(path)))


def test_a_missing_path_or_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="neither a shipped text .* nor an existing file"):
        prepare_run(replace(TINY, corpus=str(tmp_path / "nothere.txt")))
    with pytest.raises(ConfigError, match="is not a file"):
        prepare_run(replace(TINY, corpus=str(tmp_path)))


def test_a_corpus_too_large_for_memory_is_refused_before_it_is_read(text_file, monkeypatch):
    limit = len(TEXT) * BYTES_PER_CHARACTER - 1
    monkeypatch.setattr(lstm.training.estimate, "memory_limit", lambda: limit)
    with pytest.raises(ConfigError, match=f"is too large: its {len(TEXT):,} bytes would need"):
        prepare_run(replace(TINY, corpus=str(text_file)))


def test_command_line_model_and_corpus(text_file, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["train", "--model", "gru", "--corpus", str(text_file), "--hidden-size", "8",
                   "--embedding-size", "4", "--seq-len", "16", "--batch-size", "4", "--steps", "2",
                   "--eval-interval", "1", "--sample-length", "5", "--out", str(out), "--prompt", "The "])
    assert status == 0
    saved = load_checkpoint(out / "checkpoint.npz")
    assert saved.config["model"] == "gru" and saved.corpus["name"] == "mine.txt"
    (tmp_path / "empty.txt").write_bytes(b"")
    status = main(["train", "--corpus", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "o2")])
    error = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(error) == 1 and "is empty" in error[0]
