"""Writing files never replaces what is at the path: devices and FIFOs are written to, symlinks followed, modes
kept; temporaries that a killed writer left are removed, and only those.

The tests use real files, links, FIFOs and /dev/null (they run as root, where replacing /dev/null would work).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograd import Value
from autograd.files import FRESH_SECONDS, make_directories, remove_stale_temporaries, write_atomically
from autograd.view import draw, render
from lstm.cli import main

ROOT = Path(__file__).resolve().parents[1]


def payload(data: bytes):
    return lambda file: file.write(data)


@pytest.fixture
def dev_null():
    """/dev/null, put back as the character device it must be should a test replace it (as root, os.replace
    would), so that a failing test cannot break the machine for everything else."""
    yield Path("/dev/null")
    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        os.unlink("/dev/null")
        os.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod("/dev/null", 0o666)
        pytest.fail("/dev/null was replaced by a regular file (and has been put back)")


def test_a_device_is_written_to_not_replaced(dev_null):
    before = os.stat(dev_null)
    assert write_atomically(dev_null, payload(b"gone")) == dev_null
    drawing = draw(Value(2.0, label="a") * Value(3.0, label="b"))
    render(drawing, dev_null, "dot")  # drawings go through write_atomically too
    after = os.stat(dev_null)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)


def test_training_with_dev_null_as_its_checkpoint_leaves_it_a_device(dev_null, tmp_path, monkeypatch, capsys):
    """`train --checkpoint /dev/null --overwrite`, as root: every save goes into the device, none replaces it."""
    monkeypatch.chdir(tmp_path)
    status = main(["train", "--hidden-size", "4", "--embedding-size", "2", "--seq-len", "8", "--batch-size", "2",
                   "--steps", "3", "--eval-interval", "1", "--sample-length", "0", "--checkpoint", str(dev_null),
                   "--overwrite", "--out", "run"])
    assert status == 0, capsys.readouterr().err
    assert stat.S_ISCHR(os.stat(dev_null).st_mode)
    assert sorted(os.listdir(tmp_path / "run")) == ["loss.png", "sample.txt"]


def test_a_fifo_with_a_reader_gets_the_bytes_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that is there before the writer comes
    try:
        write_atomically(fifo, payload(b"through the pipe"))  # fits in the pipe's buffer: no need to wait
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["pipe"]


def test_a_fifo_without_a_reader_is_refused_at_once_not_waited_for(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="a FIFO that no process is reading") as caught:
        write_atomically(fifo, payload(b"nobody listens"))
    assert caught.value.filename == str(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["pipe"]


def test_a_symlink_is_followed_and_its_target_replaced(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "run.npz"
    target.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(Path("data") / "run.npz")
    write_atomically(link, payload(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(Path("data") / "run.npz")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["data", "latest.npz"] and os.listdir(tmp_path / "data") == ["run.npz"]

    dangling = tmp_path / "next.npz"
    dangling.symlink_to(tmp_path / "data" / "later" / "run.npz")  # the link points where nothing is yet
    write_atomically(dangling, payload(b"first"))
    assert dangling.is_symlink() and (tmp_path / "data" / "later" / "run.npz").read_bytes() == b"first"


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604])
def test_an_existing_file_keeps_its_mode_and_owner(tmp_path, mode):
    path = tmp_path / "run.npz"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    os.chown(path, 1234, 5678)  # as root: the replacement must not become root's
    write_atomically(path, payload(b"new"))
    info = os.stat(path)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(info.st_mode) == mode and (info.st_uid, info.st_gid) == (1234, 5678)


def test_a_path_under_a_regular_file_names_the_file(tmp_path):
    (tmp_path / "notes").write_text("a file where a directory should be")
    for path in (tmp_path / "notes" / "run.npz", tmp_path / "notes" / "deeper" / "run.npz"):
        with pytest.raises(NotADirectoryError) as caught:
            write_atomically(path, payload(b"never"))
        assert caught.value.filename == str(path)
        assert caught.value.strerror == f"{tmp_path / 'notes'} is a file, not a directory"
    with pytest.raises(NotADirectoryError, match="is a character device, not a directory"):
        make_directories("/dev/null/out")
    assert sorted(os.listdir(tmp_path)) == ["notes"]


def test_a_directory_or_a_socket_at_the_path_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_atomically(tmp_path / "taken", payload(b"never"))
    assert caught.value.filename == str(tmp_path / "taken")
    import socket

    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "socket"))
        with pytest.raises(OSError, match="it is a socket, which is never written to or replaced"):
            write_atomically(tmp_path / "socket", payload(b"never"))
        assert stat.S_ISSOCK(os.stat(tmp_path / "socket").st_mode)


def test_a_failure_while_making_the_bytes_writes_nothing_to_a_device(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        def half_then_fail(file):
            file.write(b"half")
            raise ValueError("the drawing failed")

        with pytest.raises(ValueError, match="the drawing failed"):
            write_atomically(fifo, half_then_fail)
        assert os.read(reader, 100) == b""  # nothing arrived: no writer ever opened it
    finally:
        os.close(reader)


# --- temporaries left by killed writers ---------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from autograd.files import write_atomically

    def write(file):
        file.write(b"part of a checkpoint")
        file.flush()
        print("writing", flush=True)
        sys.stdin.read()  # until the parent closes our stdin, or kills us
        file.write(b", the rest")

    write_atomically(sys.argv[1], write)
""")


def start_writer(path: Path) -> subprocess.Popen:
    """A process in the middle of write_atomically(path): it has written part of its temporary and waits."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    assert writer.stdout.readline() == "writing\n"
    return writer


def temporaries(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_a_killed_writers_temporary_is_removed_and_a_live_writers_kept(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(b"the last checkpoint")
    killed = start_writer(path)
    killed.kill()  # SIGKILL: no cleanup runs
    killed.wait()
    abandoned = temporaries(tmp_path)
    assert len(abandoned) == 1 and abandoned[0].startswith(".run.npz.")

    live = start_writer(path)
    try:
        both = temporaries(tmp_path)
        assert len(both) == 2
        removed = remove_stale_temporaries(path)
        assert [p.name for p in removed] == abandoned
        assert temporaries(tmp_path) == sorted(set(both) - set(abandoned))  # the live one is still there
        assert path.read_bytes() == b"the last checkpoint"
    finally:
        live.stdin.close()
    assert live.wait(timeout=30) == 0
    assert path.read_bytes() == b"part of a checkpoint, the rest"  # the live writer finished unharmed
    assert temporaries(tmp_path) == []


def test_only_our_own_stale_temporaries_are_removed(tmp_path):
    path = tmp_path / "run.npz"
    keep = [".run.npz.notours.tmp", ".other.npz.abcdefgh.tmp", "run.npz.abcdefgh.tmp", ".run.npz.abcdefgh.txt"]
    for name in keep:
        (tmp_path / name).write_bytes(b"someone else's")
    fresh_empty = tmp_path / ".run.npz.aaaaaaaa.tmp"  # its writer may not have locked it yet
    fresh_empty.touch()
    old_empty = tmp_path / ".run.npz.bbbbbbbb.tmp"  # a writer killed between creating and writing it
    old_empty.touch()
    os.utime(old_empty, (time.time() - 2 * FRESH_SECONDS,) * 2)
    abandoned = tmp_path / ".run.npz.cccccccc.tmp"
    abandoned.write_bytes(b"half a checkpoint")
    os.mkfifo(tmp_path / ".run.npz.dddddddd.tmp")  # not a file of ours: must neither block nor go
    (tmp_path / ".run.npz.eeeeeeee.tmp").symlink_to(tmp_path / "run.npz")

    removed = remove_stale_temporaries(path)
    assert sorted(p.name for p in removed) == [old_empty.name, abandoned.name]
    assert sorted(os.listdir(tmp_path)) == sorted(keep + [fresh_empty.name, ".run.npz.dddddddd.tmp",
                                                          ".run.npz.eeeeeeee.tmp"])


def test_write_atomically_leaves_no_temporary_and_the_bytes_on_disk(tmp_path):
    path = write_atomically(tmp_path / "deep" / "er" / "array.npy", lambda file: np.save(file, np.arange(5)))
    np.testing.assert_array_equal(np.load(path), np.arange(5))
    assert os.listdir(path.parent) == ["array.npy"]
