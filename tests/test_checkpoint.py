"""Checkpoint files: a round trip without pickle, atomic replacement, and clear errors for bad files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from autograd.files import write_atomically
from lstm.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from lstm.data import CharVocab


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
        from lstm.checkpoint import save_checkpoint
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
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_npz_files_that_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match="not a backprop-lens checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(CheckpointError, match="single numpy array"):
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
    with pytest.raises(CheckpointError, match="damaged 'meta' entry"):
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
