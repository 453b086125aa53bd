"""Checkpoint files: a round trip without pickle, atomic replacement, and clear errors for bad files."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autograd.files import write_atomically
from autograd.nn.optim import Adam
from lstm.training import CharModel, History, TrainConfig, checkpoint_layout, train
from lstm.training.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from lstm.training.data import CharVocab, load_text


def make_checkpoint(step: int = 3, scale: float = 1.0) -> Checkpoint:
    rng = np.random.default_rng(step)
    return Checkpoint(
        step=step,
        config={"hidden_size": 4, "lr": 0.01, "checkpoint": None, "dtype": "float32"},
        model={"lstm.weight_ih_l0": scale * rng.standard_normal((16, 3)).astype(np.float32),
               "head.bias": np.arange(5, dtype=np.float32)},
        optimizer={"steps": np.array(step), "lr": np.array(0.01), "mean.0": rng.standard_normal((16, 3))},
        vocab=CharVocab("abc \n"),
        history={"train_loss": rng.random(step), "val_steps": np.array([0, step]),
                 "val_loss": np.array([4.2, 3.1])},
    )


def assert_same(a: Checkpoint, b: Checkpoint) -> None:
    assert (a.step, a.config, a.vocab) == (b.step, b.config, b.vocab)
    for group in ("model", "optimizer", "history"):
        left, right = getattr(a, group), getattr(b, group)
        assert left.keys() == right.keys()
        for name in left:
            np.testing.assert_array_equal(left[name], right[name])
            assert np.asarray(left[name]).dtype == right[name].dtype


def test_round_trip_keeps_every_array_and_reads_without_pickle(tmp_path):
    path = save_checkpoint(tmp_path / "deep" / "run.npz", make_checkpoint())
    assert_same(load_checkpoint(path), make_checkpoint())
    with np.load(path, allow_pickle=False) as archive:  # plain arrays only: loads with pickle forbidden
        assert "model/lstm.weight_ih_l0" in archive.files
    assert [p.name for p in path.parent.iterdir()] == ["run.npz"]  # no temporary file left behind


def test_saving_again_replaces_the_checkpoint(tmp_path):
    path = tmp_path / "run.npz"
    save_checkpoint(path, make_checkpoint(step=3))
    save_checkpoint(path, make_checkpoint(step=5))
    assert load_checkpoint(path).step == 5


def test_a_failure_while_writing_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    save_checkpoint(path, make_checkpoint(step=3))
    before = path.read_bytes()

    def crash_halfway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as if Ctrl-C arrived in the middle of writing

    monkeypatch.setattr(np, "savez", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, make_checkpoint(step=5, scale=2.0))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert_same(load_checkpoint(path), make_checkpoint(step=3))
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_a_process_killed_while_writing_leaves_the_old_checkpoint_whole(tmp_path):
    path = tmp_path / "run.npz"
    save_checkpoint(path, make_checkpoint(step=3))
    # The child dies (no cleanup, no exception handling) after writing part of the new file.
    script = textwrap.dedent(f"""
        import os, numpy as np
        from lstm.training.checkpoint import save_checkpoint
        from tests.test_checkpoint import make_checkpoint
        def die_halfway(file, **arrays):
            file.write(b"PK\\x03\\x04 half a zip")
            file.flush()
            os._exit(9)
        np.savez = die_halfway
        save_checkpoint({str(path)!r}, make_checkpoint(step=5))
    """)
    root = __file__.rsplit("/tests/", 1)[0]
    died = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True)
    assert died.returncode == 9, died.stderr
    assert_same(load_checkpoint(path), make_checkpoint(step=3))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "run.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".run.npz.")  # the half-written temporary


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.npz")
    with pytest.raises(CheckpointError, match="not a file"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_damaged_checkpoint(tmp_path, damage):
    path = save_checkpoint(tmp_path / "run.npz", make_checkpoint())
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"this is not a checkpoint at all")
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:  # a few bytes changed inside an array: only the entry's CRC can tell
        middle = len(data) // 3
        data[middle:middle + 8] = bytes(255 - b for b in data[middle:middle + 8])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is not a valid checkpoint: it is damaged"):
        load_checkpoint(path)


def test_npz_files_that_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match="not a backprop-lens checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(CheckpointError, match="not a zip of arrays"):
        load_checkpoint(tmp_path / "single.npy")


def test_other_checkpoint_versions_are_refused(tmp_path):
    arrays = make_checkpoint().to_arrays()
    arrays["meta"] = np.array(str(arrays["meta"]).replace('"version": 1', '"version": 99'))
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.npz")


def test_the_file_is_an_ordinary_zip_of_npy_arrays(tmp_path):
    path = save_checkpoint(tmp_path / "run.npz", make_checkpoint())
    with zipfile.ZipFile(path) as archive:
        assert "meta.npy" in archive.namelist()
        assert archive.testzip() is None


def test_a_meta_entry_without_step_or_configuration_is_refused(tmp_path):
    arrays = make_checkpoint().to_arrays()
    arrays["meta"] = np.array('{"format": "backprop-lens checkpoint", "version": 1}')
    np.savez(tmp_path / "no_step.npz", **arrays)
    with pytest.raises(CheckpointError, match="'meta' entry is damaged"):
        load_checkpoint(tmp_path / "no_step.npz")


def test_files_get_the_usual_permissions_not_the_temporary_files(tmp_path):
    umask = os.umask(0o027)
    try:
        path = save_checkpoint(tmp_path / "run.npz", make_checkpoint())
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 less the umask, as open() would make it


def test_write_atomically_names_the_path_it_cannot_write(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    target = tmp_path / "blocker" / "run.npz"
    with pytest.raises(OSError) as caught:
        write_atomically(target, lambda file: file.write(b"never written"))
    assert caught.value.filename == str(target)
    with pytest.raises(OSError) as caught:  # a directory in the way of the rename
        (tmp_path / "taken").mkdir()
        write_atomically(tmp_path / "taken", lambda file: file.write(b"never written"))
    assert caught.value.filename == str(tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "taken"]


# --- hostile files ------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# A run small enough to build in milliseconds; `resumable` makes a checkpoint of it that train() goes on with.
SMALL = TrainConfig(hidden_size=4, embedding_size=3, seq_len=8, batch_size=2, steps=6, eval_interval=2)


def resumable(step: int = 2) -> Checkpoint:
    """A checkpoint of the SMALL run at ``step``, as train() writes it (what a hostile file imitates)."""
    vocab = CharVocab.from_text(load_text(SMALL.corpus))
    model = CharModel.for_config(SMALL, vocab.size)
    optimizer = Adam(model.parameters(), lr=SMALL.lr)
    optimizer.steps = step
    history = History(train_loss=[4.0] * step, val_steps=[0, step], val_loss=[4.4, 4.1])
    return Checkpoint(step, SMALL.to_dict(), model.state_dict(), optimizer.state_dict(), vocab,
                      history.to_arrays())


def write_zip(path: Path, arrays: dict[str, np.ndarray], raw: dict[str, bytes] | None = None) -> Path:
    """A zip of .npy entries as np.savez writes them, plus ``raw`` entries of any bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as entry:
                np.lib.format.write_array(entry, np.asarray(array), allow_pickle=True)
        for name, data in (raw or {}).items():
            archive.writestr(name, data)
    return path


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_a_checkpoint_as_train_writes_it_passes_every_check(tmp_path):
    path = save_checkpoint(tmp_path / "run.npz", resumable())
    loaded = load_checkpoint(path, checkpoint_layout)
    assert_same(loaded, resumable())
    result = train(replace(SMALL, checkpoint=str(path)), resume=True, verbose=False)
    assert result.step == SMALL.steps


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A 2.3 MB checkpoint whose loss history unpacks to 512 MB of zeros: headers and zip sizes all agree."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    arrays = resumable().to_arrays()
    del arrays["history/train_loss"]
    write_zip(path, arrays)
    count = 2**26  # float64s: 512 MB
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open("history/train_loss.npy", "w", force_zip64=True) as entry:
        entry.write(npy_header((count,), "<f8"))
        zeros = bytes(1 << 22)
        for _ in range(count * 8 // len(zeros)):
            entry.write(zeros)
    assert path.stat().st_size < 3_000_000
    return path


MEASURE = textwrap.dedent("""
    import json, resource, sys
    from lstm.training.checkpoint import CheckpointError, load_checkpoint
    from lstm.training.run import checkpoint_layout

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    results = []
    for layout in (checkpoint_layout, None):
        before = peak()
        try:
            load_checkpoint(sys.argv[1], layout)
            message = None
        except CheckpointError as error:
            message = str(error)
        results.append({"growth": peak() - before, "message": message})
    print(json.dumps(results))
""")


def test_a_zip_bomb_is_refused_from_its_headers_without_growing_the_process(zip_bomb):
    """The old reader read every entry in full: this file grew it by 512 MB and was accepted."""
    measured = subprocess.run([sys.executable, "-c", MEASURE, str(zip_bomb)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert measured.returncode == 0, measured.stderr
    with_layout, without = json.loads(measured.stdout)
    assert with_layout["message"] == (f"{zip_bomb} is not a valid checkpoint: entry 'history/train_loss' has shape "
                                      "(67108864,), which does not fit the run it describes ((2,) at most)")
    assert without["message"].startswith(f"{zip_bomb} is not a valid checkpoint: its arrays would take 536,88")
    for result in (with_layout, without):
        assert result["growth"] < 20_000_000, result  # bytes of peak RSS; reading the entry would take 512 MB


def test_a_shape_bomb_in_a_header_is_refused_before_anything_is_allocated(tmp_path):
    arrays = resumable().to_arrays()
    del arrays["model/lstm.weight_hh_l0"]
    header = npy_header((100_000, 100_000))  # 40 GB of float32 declared, 16 bytes stored
    path = write_zip(tmp_path / "shape.npz", arrays, {"model/lstm.weight_hh_l0.npy": header + bytes(16)})
    for layout in (checkpoint_layout, None):
        with pytest.raises(CheckpointError, match=r"is not a valid checkpoint: entry 'model/lstm.weight_hh_l0.npy' "
                           r"declares shape \(100000, 100000\) of float32 \(40,000,000,000 bytes\) but the zip "
                           r"stores 16"):
            load_checkpoint(path, layout)


def test_a_meta_describing_a_huge_model_blames_the_file_not_the_user(tmp_path):
    checkpoint = resumable()
    checkpoint.config["hidden_size"] = 200_000
    path = save_checkpoint(tmp_path / "huge.npz", checkpoint)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, checkpoint_layout)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a valid checkpoint: it describes a run that cannot be resumed here "
                              "(a run of these sizes needs about ")
    assert re.search(r": 6\.4 TB for 160,020,600,332 parameters with their gradients and Adam moments, 307 MB for a "
                     r"step of 2 sequences of 8 characters through 1 layer of 200,000 units, 288 bytes for the loss "
                     r"curve of 6 steps; this process may use [\d.]+ [KMGT]B\)$", message), message


@pytest.mark.parametrize("depth, reason", [(5_000, "its 'meta' entry is JSON nested too deeply"),
                                           (100_000, "its 'meta' entry takes 800,000 bytes")])
def test_deeply_nested_meta_is_refused_in_one_line(tmp_path, depth, reason):
    arrays = resumable().to_arrays()
    arrays["meta"] = np.array("[" * depth + "]" * depth)
    path = write_zip(tmp_path / "nested.npz", arrays)
    for layout in (checkpoint_layout, None):
        with pytest.raises(CheckpointError, match=f"is not a valid checkpoint: {reason}"):
            load_checkpoint(path, layout)


class Trap:
    """Unpickling this would create a file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_an_entry_that_needs_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "the pickle ran"
    arrays = resumable().to_arrays()
    arrays["history/train_loss"] = np.array([Trap(marker)] * 2, dtype=object)
    path = write_zip(tmp_path / "pickle.npz", arrays)
    for layout in (checkpoint_layout, None):
        with pytest.raises(CheckpointError, match="holds arrays of dtype object, which no checkpoint holds"):
            load_checkpoint(path, layout)
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("optimizer/mean.0"), "it lacks optimizer/mean.0"),
    (lambda a: [a.pop(k) for k in list(a) if k.startswith("optimizer/") and k[10:12] in ("me", "sq")],
     r"it lacks optimizer/mean.0, optimizer/mean.1, optimizer/mean.2, optimizer/mean.3 \.\.\."),
    (lambda a: a.update({"optimizer/mean.-1": np.zeros(3, np.float32)}),
     "it has the unexpected entries optimizer/mean.-1"),
    (lambda a: a.update({"model/lstm.weight_ih_l0": np.zeros((16, 3, 1), np.float32)}),
     r"entry 'model/lstm.weight_ih_l0' has shape \(16, 3, 1\), which does not fit"),
    (lambda a: a.update({"vocab/vocab_codepoints": np.zeros((2, 2), np.int64)}), "it holds no valid vocabulary"),
])
def test_entries_must_be_exactly_those_of_the_run(tmp_path, change, message):
    arrays = resumable().to_arrays()
    change(arrays)
    path = write_zip(tmp_path / "changed.npz", arrays)
    with pytest.raises(CheckpointError, match=f"is not a valid checkpoint: {message}"):
        load_checkpoint(path, checkpoint_layout)


def test_zips_that_no_savez_writes_are_refused(tmp_path):
    arrays = resumable().to_arrays()
    path = write_zip(tmp_path / "extra.npz", arrays, {"notes.txt": b"hello"})
    with pytest.raises(CheckpointError, match="it holds 'notes.txt', which is not a .npy array"):
        load_checkpoint(path)
    with pytest.warns(UserWarning, match="Duplicate name"):  # a second meta, which zipfile would read instead
        path = write_zip(tmp_path / "twice.npz", arrays, {"meta.npy": npy_header((), "<U2") + "{}".encode("utf-32-le")})
    with pytest.raises(CheckpointError, match="its zip directory lists an entry more than once"):
        load_checkpoint(path)
