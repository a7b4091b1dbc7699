"""The formats worth carving out of other files: executables and containers, told by their first
bytes (a PE only with a real PE header behind its MZ, so random "MZ" pairs do not count)."""

from __future__ import annotations

import struct

_MAGICS = [
    (b"PK\x03\x04", "zip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x7fELF", "elf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"%PDF-", "pdf"),
    (b"\x1f\x8b\x08", "gz"),
    (b"MSCF\x00\x00\x00\x00", "cab"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\xcf\xfa\xed\xfe", "macho"),
]


def is_pe(data: bytes) -> bool:
    if data[:2] != b"MZ" or len(data) < 0x40:
        return False
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    return 0x40 <= e_lfanew < min(len(data) - 4, 64 * 1024) and data[e_lfanew:e_lfanew + 4] == b"PE\0\0"


def known(data: bytes) -> str | None:
    """"exe", "zip", "rar", ... when `data` starts like one; None otherwise."""
    if is_pe(data):
        return "exe"
    for magic, name in _MAGICS:
        if data.startswith(magic):
            return name
    return None
