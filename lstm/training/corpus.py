"""The text a model trains on: a shipped corpus by name, or any UTF-8 text file by path, read once and identified
by its name, size and SHA-256 so that a checkpoint can tell whether it is resumed on the same text.

Whatever cannot be a training text is refused in one line that names the file: a missing path or a directory,
an empty file, a binary one (NUL bytes), one that is not UTF-8 (with the byte offset of the first bad byte), and
one too large for the memory this process may use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lstm.training.data import available_corpora, load_text

__all__ = ["BYTES_PER_CHARACTER", "Corpus", "CorpusError", "read_corpus"]

# What training holds per byte of text: the text as a str (up to 4 bytes a character), its int64 ids (8), the
# training and validation copies of the ids (8) and the file's bytes while it is decoded (1).
BYTES_PER_CHARACTER = 21


class CorpusError(ValueError):
    """A corpus that cannot be trained on; the message names the file and why."""


@dataclass(frozen=True)
class Corpus:
    """A training text and what identifies it: ``name`` (the shipped name, or the file's name), ``size`` in bytes
    of UTF-8 and ``sha256`` of those bytes (line endings as read: ``\\r\\n`` becomes ``\\n``)."""

    name: str
    text: str
    size: int
    sha256: str

    def identity(self) -> dict[str, object]:
        """What a checkpoint records: name, size and hash (not the text)."""
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


def read_corpus(spec: str, memory_limit: int | None = None) -> Corpus:
    """The corpus ``spec`` names: a shipped corpus (``devils_dictionary``) or the path of a UTF-8 text file.

    ``memory_limit`` (bytes): a file that would need more than this to train on is refused before it is read.
    """
    if spec in available_corpora():
        text = load_text(spec)
        return _identified(spec, text)
    path = Path(spec)
    shipped = ", ".join(available_corpora())
    if not path.exists():
        raise CorpusError(f"corpus {spec!r} is neither a shipped text ({shipped}) nor an existing file")
    if not path.is_file():
        raise CorpusError(f"corpus {spec} is not a file (a directory?); give a UTF-8 text file or a shipped text "
                          f"({shipped})")
    size = path.stat().st_size
    if size == 0:
        raise CorpusError(f"corpus {spec} is empty: there is nothing to train on")
    if memory_limit is not None and size * BYTES_PER_CHARACTER > memory_limit:
        raise CorpusError(f"corpus {spec} is too large: its {size:,} bytes would need about "
                          f"{size * BYTES_PER_CHARACTER:,} bytes of memory to train on, and this process may use "
                          f"{memory_limit:,}")
    data = path.read_bytes()
    if b"\x00" in data:
        raise CorpusError(f"corpus {spec} looks binary (it holds a NUL byte at offset {data.index(0):,}); give a "
                          "UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(f"corpus {spec} is not UTF-8 text: byte {error.start:,} ({data[error.start]:#04x}) "
                          f"cannot be decoded; convert it, e.g. iconv -t UTF-8") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise CorpusError(f"corpus {spec} is empty: there is nothing to train on")
    return _identified(path.name, text)


def _identified(name: str, text: str) -> Corpus:
    data = text.encode("utf-8")
    return Corpus(name, text, len(data), hashlib.sha256(data).hexdigest())
