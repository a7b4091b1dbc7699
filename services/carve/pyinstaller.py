"""PyInstaller bundles: the CArchive appended to the bootloader, its table of contents, and the
entry scripts (the program's own code) and PYZ archive unpacked.

The archive ends with a cookie: the magic `MEI\\014\\013\\012\\013\\016`, the package length, the
TOC's offset and length, the Python version and (since PyInstaller 2.1) the Python library
name. Each TOC entry: entry size, position, compressed and uncompressed sizes, a compression
flag, a type character and the name. Type 's' is an entry script, 'z' the PYZ of imported
modules; the rest (binaries, data) are listed only.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = b"MEI\x0c\x0b\x0a\x0b\x0e"
_COOKIE_21 = struct.Struct(">8sIIII64s")  # 88 bytes
_COOKIE_20 = struct.Struct(">8sIIII")  # 24 bytes
_ENTRY = struct.Struct(">IIIIBc")


# The .pyc magic number of each Python (importlib.util.MAGIC_NUMBER): with it, an entry script's
# marshalled code becomes a .pyc that decompilers and libmagic recognise.
PYC_MAGIC = {"3.7": 3394, "3.8": 3413, "3.9": 3425, "3.10": 3439, "3.11": 3495, "3.12": 3531, "3.13": 3571}


class NotPyInstaller(ValueError):
    pass


def as_pyc(code: bytes, python: str) -> bytes | None:
    """`code` (a marshalled code object) with the 16-byte .pyc header of `python`, if it is known."""
    magic = PYC_MAGIC.get(python)
    return None if magic is None else struct.pack("<H2sI8s", magic, b"\r\n", 0, bytes(8)) + code


@dataclass
class Entry:
    name: str
    kind: str
    position: int
    packed: int
    size: int
    compressed: bool


@dataclass
class Bundle:
    python: str
    entries: list[Entry]
    start: int  # where the CArchive begins in the file

    def read(self, data: bytes, entry: Entry, max_bytes: int) -> bytes:
        """The entry's bytes, decompressed under `max_bytes` (ValueError past it or when damaged)."""
        raw = data[self.start + entry.position:self.start + entry.position + entry.packed]
        if not entry.compressed:
            return raw
        inflater = zlib.decompressobj()
        out = inflater.decompress(raw, max_bytes + 1)
        if len(out) > max_bytes:
            raise ValueError(f"{entry.name}: expands past {max_bytes:,} bytes")
        return out


def parse(data: bytes, max_entries: int) -> Bundle:
    cookie_at = data.rfind(MAGIC, max(0, len(data) - 1024 * 1024))
    if cookie_at < 0:
        raise NotPyInstaller("no PyInstaller cookie")
    if cookie_at + _COOKIE_21.size <= len(data):
        _, package, toc, toc_len, pyver, _lib = _COOKIE_21.unpack_from(data, cookie_at)
        end = cookie_at + _COOKIE_21.size
    else:
        _, package, toc, toc_len, pyver = _COOKIE_20.unpack_from(data, cookie_at)
        end = cookie_at + _COOKIE_20.size
    start = end - package
    if start < 0 or toc + toc_len > package:
        raise NotPyInstaller("the cookie's sizes do not fit the file")
    python = f"{pyver // 100}.{pyver % 100}" if pyver >= 100 else f"{pyver // 10}.{pyver % 10}"
    entries: list[Entry] = []
    pos = start + toc
    stop = pos + toc_len
    while pos + _ENTRY.size <= stop and len(entries) < max_entries:
        size, position, packed, unpacked, flag, kind = _ENTRY.unpack_from(data, pos)
        if size < _ENTRY.size or pos + size > stop:
            break
        name = data[pos + _ENTRY.size:pos + size].rstrip(b"\0").decode("utf-8", "replace")
        if position + packed <= package:
            entries.append(Entry(name, kind.decode("latin-1"), position, packed, unpacked, bool(flag)))
        pos += size
    return Bundle(python, entries, start)
