"""Writing files all or nothing, without replacing what is at the path: drawings, checkpoints, plots, samples.

`write_atomically` writes a regular file under a temporary name beside it and renames it into place, so the
path holds the old content or the new one, complete, at every instant. What is at the path decides the rest:

- nothing, or a regular file: replaced atomically; an existing file keeps its permissions (and its owner and
  group, where the process may set them);
- a symbolic link: followed, and the file it points to is replaced (the link stays a link);
- a character device (``/dev/null``, a terminal) or a FIFO: written to, never replaced; the bytes are made in
  memory first, so a failure while making them writes nothing. A FIFO that no process reads is refused
  rather than waited for;
- a directory, a block device or a socket: refused with an OSError that says what is there.

A temporary file is locked (``flock``) while it is written, so that `remove_stale_temporaries` can tell one that
a killed process abandoned from one another process is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no flock, so temporaries are neither locked nor ever taken for stale
    fcntl = None

__all__ = ["make_directories", "remove_stale_temporaries", "write_atomically"]

# How long an empty temporary may be younger than and still belong to a writer that has not locked it yet.
FRESH_SECONDS = 60


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write what ``write(file)`` writes to ``path``, all or nothing (see the module's docstring for what
    happens to a link, a device or a FIFO at ``path``); parent directories are created. Returns ``path``.

    An OSError names ``path``, never the temporary file.
    """
    path = Path(path)
    try:
        existing = os.stat(path)  # follows links, /proc's too (/dev/stdout)
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (make_directories names a blocker)
        existing = None
    except OSError as error:
        raise _naming(error, path) from None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        _write_through(path, existing.st_mode, write)
        return path
    target = Path(os.path.realpath(path))
    make_directories(target.parent, name=path)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # held until the rename is done: see remove_stale_temporaries
        with os.fdopen(handle, "wb", closefd=False) as file:
            write(file)
        os.fsync(handle)  # the bytes are on disk before the name points at them
        _give_permissions(handle, existing)
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise
    finally:
        os.close(handle)
    _fsync_directory(target.parent)
    return path


def make_directories(directory: str | os.PathLike, name: str | os.PathLike | None = None) -> None:
    """``mkdir -p directory``; an OSError that names the file in the way, rather than "File exists".

    The error's filename is ``name`` (the file about to be written there) when given, else ``directory``.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((part for part in (directory, *directory.parents)
                        if os.path.lexists(part) and not part.is_dir()), None)
        if blocker is None:
            raise _naming(error, name or directory) from None
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is {_what_is(blocker)}, not a directory",
                                 str(name or directory)) from None


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that `write_atomically` left beside ``path`` when it was killed (SIGKILL,
    a power cut) while writing; returns what it removed.

    Only our own temporaries (``.NAME.xxxxxxxx.tmp`` beside the file ``path`` points to) are considered, and
    only stale ones: a writer holds a lock on its temporary until it has renamed it, so a temporary that can be
    locked has no writer left. An empty one is left alone while it is fresh, because its writer may be between
    creating and locking it.
    """
    if fcntl is None:
        return []
    target = Path(os.path.realpath(path))
    ours = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    try:
        names = sorted(os.listdir(target.parent))
    except OSError:
        return []
    return [target.parent / name for name in names
            if ours.fullmatch(name) and _remove_if_abandoned(target.parent / name)]


def _remove_if_abandoned(temporary: Path) -> bool:
    try:
        handle = os.open(temporary, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block us
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        opened = os.fstat(handle)
        now = os.stat(temporary, follow_symlinks=False)
        if (not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (now.st_dev, now.st_ino)
                or (opened.st_size == 0 and time.time() - opened.st_mtime < FRESH_SECONDS)):
            return False
        os.unlink(temporary)  # still holding the lock, so no writer can have taken it up meanwhile
        return True
    except OSError:  # BlockingIOError: a live writer holds it
        return False
    finally:
        os.close(handle)


def _write_through(path: Path, mode: int, write: Callable[[BinaryIO], object]) -> None:
    """Write into a character device or a FIFO, which renaming a file over would destroy."""
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise OSError(errno.EPERM, f"it is {_what_is(path)}, which is never written to or replaced", str(path))
    buffer = io.BytesIO()
    write(buffer)
    try:
        # Non-blocking, so that a FIFO without a reader fails at once (ENXIO) instead of waiting for one.
        handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO and stat.S_ISFIFO(mode):
            raise OSError(error.errno, "it is a FIFO that no process is reading", str(path)) from None
        raise _naming(error, path) from None
    try:
        os.set_blocking(handle, True)
        with os.fdopen(handle, "wb", closefd=False) as file:
            file.write(buffer.getbuffer())
    except OSError as error:
        raise _naming(error, path) from None
    finally:
        os.close(handle)


def _what_is(path: Path) -> str:
    """What kind of thing is at ``path``, in words: 'a file', 'a FIFO', 'a character device' ..."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken symbolic link" if os.path.islink(path) else "unreadable"
    kinds = [(stat.S_ISREG, "a file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def _give_permissions(handle: int, existing: os.stat_result | None) -> None:
    """An existing file's mode, owner and group for its replacement; a new file the mode open() would give."""
    if existing is None:
        os.fchmod(handle, _new_file_mode())  # mkstemp's 0600 would hide the file from others
        return
    with contextlib.suppress(OSError):  # only root may give a file away; a group may be out of reach too
        os.fchown(handle, existing.st_uid, existing.st_gid)
    os.fchmod(handle, stat.S_IMODE(existing.st_mode))


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: 0o666 less the process's umask."""
    umask = os.umask(0o022)  # reading the umask means setting it; it is put back at once
    os.umask(umask)
    return 0o666 & ~umask


def _naming(error: OSError, path: str | os.PathLike) -> OSError:
    """The same error, naming ``path`` (the file the caller asked for)."""
    return OSError(error.errno, error.strerror or str(error), str(path))


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; where a directory cannot be opened there is nothing to do."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
