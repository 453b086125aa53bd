import io
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm.training.data import (
    DEFAULT_CORPUS,
    CharVocab,
    UnknownCharacterError,
    available_corpora,
    load_text,
    random_batches,
    sequential_batches,
    train_val_split,
    unigram_cross_entropy,
)

# ---------------------------------------------------------------- corpus


def test_default_corpus_is_shipped():
    assert DEFAULT_CORPUS in available_corpora()


def test_corpus_is_substantial_printable_text():
    text = load_text()
    assert 100_000 <= len(text.encode("utf-8")) <= 300_000
    assert "\r" not in text
    assert text.endswith("\n")
    assert all(char.isprintable() or char == "\n" for char in text)
    assert 40 <= len(set(text)) <= 120
    # Real English prose, not a placeholder.
    assert text.count(" the ") > 1_000
    assert "ABASEMENT, n." in text


def test_corpus_has_a_readme_naming_its_source():
    from importlib import resources

    readme = resources.files("lstm").joinpath("corpus").joinpath("README.md").read_text(encoding="utf-8")
    assert "public domain" in readme.lower()
    assert "dict-devil" in readme


def test_unknown_corpus_names_the_available_ones():
    with pytest.raises(ValueError, match="no_such_text") as excinfo:
        load_text("no_such_text")
    assert DEFAULT_CORPUS in str(excinfo.value)


def test_corpus_name_cannot_escape_the_corpus_folder():
    with pytest.raises(ValueError):
        load_text("../data")


# ---------------------------------------------------------------- vocabulary


def test_vocab_is_sorted_and_complete():
    vocab = CharVocab.from_text("hello, world")
    assert vocab.chars == tuple(sorted(set("hello, world")))
    assert vocab.size == len(vocab) == 9
    assert "h" in vocab and "z" not in vocab


def test_encode_decode_round_trip_on_corpus():
    text = load_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int64
    assert ids.shape == (len(text),)
    assert ids.min() == 0 and ids.max() == vocab.size - 1
    assert vocab.decode(ids) == text


def test_encode_gives_sorted_ids():
    vocab = CharVocab.from_text("cab")
    np.testing.assert_array_equal(vocab.encode("abcab"), [0, 1, 2, 0, 1])
    assert vocab.decode([2, 1, 0]) == "cba"
    assert vocab.decode(np.array([1], dtype=np.int32)) == "b"


@given(st.text(min_size=1, max_size=200))
def test_encode_decode_round_trip_any_text(text):
    vocab = CharVocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_empty_text():
    vocab = CharVocab.from_text("ab")
    assert vocab.encode("").shape == (0,)
    assert vocab.encode("").dtype == np.int64
    assert vocab.decode([]) == ""


def test_unknown_character_is_named():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(UnknownCharacterError, match=r"'z'.*position 2") as excinfo:
        vocab.encode("abzc")
    # Either kind of handler catches it.
    assert isinstance(excinfo.value, KeyError)
    assert isinstance(excinfo.value, ValueError)
    with pytest.raises(KeyError, match="U\\+00E9"):
        vocab.encode("é")
    with pytest.raises(KeyError, match="'q'"):
        vocab.id_of("q")


def test_unknown_character_in_empty_vocab():
    with pytest.raises(UnknownCharacterError):
        CharVocab([]).encode("a")


def test_decode_rejects_out_of_range_ids():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match="id 3"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="id -1"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="integers"):
        vocab.decode([0.0, 1.0])


def test_vocab_rejects_bad_characters():
    with pytest.raises(ValueError, match="distinct"):
        CharVocab("aba")
    with pytest.raises(ValueError, match="single characters"):
        CharVocab(["ab"])


def test_vocab_serialises_to_plain_arrays():
    vocab = CharVocab.from_text(load_text() + "é€😀")
    arrays = vocab.to_dict()
    assert all(isinstance(value, np.ndarray) and value.dtype != object for value in arrays.values())
    assert CharVocab.from_dict(arrays) == vocab

    buffer = io.BytesIO()
    np.savez(buffer, **arrays, unrelated_weight=np.zeros(3))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as checkpoint:
        restored = CharVocab.from_dict(checkpoint)
    assert restored == vocab
    assert restored.encode("é€😀").tolist() == vocab.encode("é€😀").tolist()


def test_from_dict_keeps_the_stored_order():
    # A checkpoint's ids must survive even if they were not assigned in sorted order.
    vocab = CharVocab("zya")
    restored = CharVocab.from_dict(vocab.to_dict())
    assert restored.chars == ("z", "y", "a")
    np.testing.assert_array_equal(restored.encode("azy"), [2, 0, 1])


def test_from_dict_rejects_bad_arrays():
    with pytest.raises(KeyError):
        CharVocab.from_dict({"something_else": np.arange(3)})
    (key,) = CharVocab.from_text("ab").to_dict()
    with pytest.raises(ValueError):
        CharVocab.from_dict({key: np.array([97.0, 98.0])})
    with pytest.raises(ValueError):
        CharVocab.from_dict({key: np.array([-1])})
    with pytest.raises(ValueError):
        CharVocab.from_dict({key: np.array([97, 97])})


# ---------------------------------------------------------------- splitting


def test_train_val_split_is_contiguous():
    ids = np.arange(1000, dtype=np.int64)
    train, val = train_val_split(ids, val_fraction=0.1)
    assert len(train) == 900 and len(val) == 100
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)


def test_train_val_split_keeps_both_parts_non_empty():
    train, val = train_val_split([4, 5, 6], val_fraction=0.01)
    assert train.tolist() == [4, 5] and val.tolist() == [6]
    train, val = train_val_split([4, 5, 6], val_fraction=0.99)
    assert train.tolist() == [4] and val.tolist() == [5, 6]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_train_val_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(np.arange(10), val_fraction=fraction)


def test_train_val_split_rejects_too_short_input():
    with pytest.raises(ValueError):
        train_val_split([1])


# ---------------------------------------------------------------- batches


def test_random_batches_shapes_and_shift():
    ids = np.arange(500, dtype=np.int64)
    batches = list(random_batches(ids, seq_len=16, batch_size=8, rng=np.random.default_rng(0), num_batches=5))
    assert len(batches) == 5
    for inputs, targets in batches:
        assert inputs.shape == targets.shape == (16, 8)
        assert inputs.dtype == targets.dtype == np.int64
        assert inputs.flags.c_contiguous and targets.flags.c_contiguous
        # With ids equal to positions, each column is a run of consecutive positions...
        np.testing.assert_array_equal(np.diff(inputs, axis=0), 1)
        # ...and every target is the id right after its input.
        np.testing.assert_array_equal(targets, inputs + 1)
        np.testing.assert_array_equal(targets[:-1], inputs[1:])


def test_random_batches_is_deterministic_given_a_seed():
    ids = np.random.default_rng(1).integers(0, 50, size=2000)

    def first_batches(seed):
        return list(random_batches(ids, 10, 4, np.random.default_rng(seed), num_batches=3))

    for (a_in, a_out), (b_in, b_out) in zip(first_batches(7), first_batches(7), strict=True):
        np.testing.assert_array_equal(a_in, b_in)
        np.testing.assert_array_equal(a_out, b_out)
    different = first_batches(8)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first_batches(7), different, strict=True))


def test_random_batches_is_endless_by_default_and_reaches_both_ends():
    ids = np.arange(6, dtype=np.int64)
    batches = random_batches(ids, seq_len=2, batch_size=64, rng=np.random.default_rng(3))
    seen_starts = set()
    for _ in range(20):
        inputs, _targets = next(batches)
        seen_starts.update(inputs[0].tolist())
    # Windows of 3 ids fit at starts 0..3, and all of them are drawn.
    assert seen_starts == {0, 1, 2, 3}


def test_random_batches_fits_exactly_one_window():
    inputs, targets = next(random_batches([3, 1, 4], seq_len=2, batch_size=2, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(inputs, [[3, 3], [1, 1]])
    np.testing.assert_array_equal(targets, [[1, 1], [4, 4]])


@pytest.mark.parametrize(
    ("length", "seq_len", "batch_size"),
    [(10, 10, 1), (10, 0, 1), (10, 2, 0), (0, 1, 1)],
)
def test_random_batches_rejects_bad_sizes(length, seq_len, batch_size):
    with pytest.raises(ValueError):
        next(random_batches(np.arange(length), seq_len, batch_size, np.random.default_rng(0)))


def test_sequential_batches_cover_the_stream_in_lanes():
    ids = np.arange(103, dtype=np.int64)
    batches = list(sequential_batches(ids, seq_len=5, batch_size=4))
    # (103 - 1) // 4 = 25 steps per lane, so 5 batches of 5 steps.
    assert len(batches) == 5
    for inputs, targets in batches:
        assert inputs.shape == targets.shape == (5, 4)
        assert inputs.dtype == targets.dtype == np.int64
        np.testing.assert_array_equal(targets, inputs + 1)
    all_inputs = np.concatenate([inputs for inputs, _ in batches])
    # Each column continues the previous batch's column, and lanes start 25 apart.
    np.testing.assert_array_equal(all_inputs, np.arange(25)[:, None] + 25 * np.arange(4)[None, :])
    all_targets = np.concatenate([targets for _, targets in batches]).ravel()
    assert len(set(all_targets.tolist())) == all_targets.size  # no target predicted twice


def test_sequential_batches_are_deterministic():
    ids = np.random.default_rng(2).integers(0, 30, size=777)
    first = list(sequential_batches(ids, 7, 3))
    second = list(sequential_batches(ids, 7, 3))
    assert len(first) == len(second) > 0
    for (a_in, a_out), (b_in, b_out) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a_in, b_in)
        np.testing.assert_array_equal(a_out, b_out)


def test_sequential_batches_smallest_input():
    batches = list(sequential_batches(np.arange(7), seq_len=3, batch_size=2))
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0][0], [[0, 3], [1, 4], [2, 5]])
    with pytest.raises(ValueError, match="too few"):
        next(sequential_batches(np.arange(6), seq_len=3, batch_size=2))


def test_batches_reject_non_integer_ids():
    with pytest.raises(ValueError, match="integers"):
        next(sequential_batches(np.linspace(0, 1, 50), 4, 2))


# ---------------------------------------------------------------- unigram baseline


@pytest.mark.parametrize("alphabet_size", [1, 2, 5, 26])
def test_unigram_of_uniform_text_is_log_k(alphabet_size):
    vocab = CharVocab.from_text("abcdefghijklmnopqrstuvwxyz"[:alphabet_size])
    uniform_text = "abcdefghijklmnopqrstuvwxyz"[:alphabet_size] * 40
    ids = vocab.encode(uniform_text)
    assert unigram_cross_entropy(ids, ids, vocab.size) == pytest.approx(math.log(alphabet_size), abs=1e-12)


def test_unigram_matches_add_one_closed_form():
    # Train counts a:2, b:1 over a vocabulary of 3, so p = (3/6, 2/6, 1/6).
    train, evaluated = [0, 0, 1], [0, 1, 2, 2]
    expected = -(math.log(3 / 6) + math.log(2 / 6) + 2 * math.log(1 / 6)) / 4
    assert unigram_cross_entropy(train, evaluated, 3) == pytest.approx(expected, rel=1e-12)


def test_unigram_without_training_data_is_uniform():
    assert unigram_cross_entropy([], [0, 3, 3], 7) == pytest.approx(math.log(7))


def test_unigram_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        unigram_cross_entropy([0, 1], [], 2)
    with pytest.raises(ValueError, match="outside"):
        unigram_cross_entropy([0, 1], [2], 2)
    with pytest.raises(ValueError, match="outside"):
        unigram_cross_entropy([0, -1], [0], 2)


def test_unigram_baseline_on_the_corpus_is_sensible():
    text = load_text()
    vocab = CharVocab.from_text(text)
    train, val = train_val_split(vocab.encode(text))
    baseline = unigram_cross_entropy(train, val, vocab.size)
    # English letter frequencies give roughly 4-4.5 bits per character: well below uniform guessing.
    assert 2.5 < baseline < math.log(vocab.size)
