"""ISO 9660 images, cabinets, cpio and ar (.deb) as a stream of `Member`s, through libarchive.

libarchive reads each of these in one forward pass from memory and hands out each entry's
bytes in blocks, so the service's one set of rules (entry count, names, links, size and ratio
budget) applies unchanged. Entries share one pass: a read error ends the archive
(`independent=False`). Entries libarchive cannot decrypt come out as ENCRYPTED with the reason.
(RAR and xar go through 7-Zip instead, sevenzz.py: libarchive cannot decrypt RAR, and the copy
in the `archi` wheel has no xar.)
"""

from __future__ import annotations

import ctypes
import stat
from collections.abc import Iterator
from typing import Any

from services.extract.formats import Kind, Member, SharedStream
from services.extract.libarchive_lib import libarchive  # first: it chooses the library the binding loads

_ENCRYPTION_WORDS = ("passphrase", "encrypt", "decrypt")
# libarchive-c does not wrap archive_entry_is_encrypted; some readers (RAR 4 stored members, were
# one routed here) would otherwise hand out an encrypted member's ciphertext as if it were its content.
_is_encrypted = libarchive.ffi.libarchive.archive_entry_is_encrypted
_is_encrypted.argtypes = [ctypes.c_void_p]
_is_encrypted.restype = ctypes.c_int
NO_DECRYPTION = "libarchive cannot decrypt this format's encrypted members"


def is_encryption_error(exc: BaseException) -> bool:
    """libarchive's refusal to read an encrypted entry (or encrypted headers), told by its message."""
    return any(word in str(exc).lower() for word in _ENCRYPTION_WORDS)


class EntryReader:
    """A libarchive entry's blocks as a file object with read(n), for the shared budget reader.

    Never more than the size the entry's header declares, when it declares one: libarchive's xar
    reader hands out a member's bytes padded with zeros past its end.
    """

    def __init__(self, entry: Any) -> None:
        self._blocks = entry.get_blocks()
        self._pending = bytearray()
        self._left = entry.size if entry.size else None

    def read(self, size: int = -1) -> bytes:
        if self._left is not None:
            size = self._left if size < 0 else min(size, self._left)
        out = self._take(size)
        if self._left is not None:
            self._left -= len(out)
        return out

    def _take(self, size: int) -> bytes:
        while size < 0 or len(self._pending) < size:
            block = next(self._blocks, None)
            if block is None:
                break
            self._pending += block
        if size < 0:
            size = len(self._pending)
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out

    def __enter__(self) -> EntryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._blocks.close()


def members(data: bytes) -> tuple[Iterator[Member], SharedStream]:
    """The entries of `data`; the whole file is the stream they share (for the ratio limit)."""
    return _entries(data), SharedStream(len(data), lambda: 0)


def _entries(data: bytes) -> Iterator[Member]:
    with libarchive.memory_reader(data) as archive:
        for entry in archive:
            yield _member(entry)


def _member(entry: Any) -> Member:
    name = entry.pathname or ""
    if entry.isdir:
        return Member(name, Kind.DIR, independent=False)
    if entry.issym or entry.islnk:
        link = "symlink" if entry.issym else "hard link"
        return Member(name, Kind.LINK, detail=f"{link} to {entry.linkpath!r}", independent=False)
    if not entry.isreg:
        return Member(name, Kind.SPECIAL, detail=_special(entry.mode), independent=False)
    if _is_encrypted(entry._entry_p):
        return Member(name, Kind.ENCRYPTED, detail=NO_DECRYPTION, independent=False)
    return Member(name, Kind.FILE, lambda: EntryReader(entry), independent=False)


def _special(mode: int) -> str:
    for test, label in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                        (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return label
    return f"entry mode {mode:o}"
