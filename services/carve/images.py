"""Where an image really ends, so that what follows (a PE or RAR appended to a JPEG) can be carved.

Each reader walks the format's own structure (PNG chunks up to IEND, JPEG segments then the
entropy-coded data up to EOI, BMP's declared file size, GIF blocks up to the trailer) rather
than searching for an end marker, which can also occur inside the image data.
"""

from __future__ import annotations

import struct


def png_end(data: bytes) -> int | None:
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos if pos <= len(data) else None
    return None


def jpeg_end(data: bytes) -> int | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xD9:
            return pos + 2
        if marker in (0x01, *range(0xD0, 0xD8)) or marker == 0xFF:
            pos += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            pos = _after_scan(data, pos)
            if pos is None:
                return None
    return None


def _after_scan(data: bytes, pos: int) -> int | None:
    """The offset of the first marker after entropy-coded data (FF00 is a stuffed byte, FFD0-D7 restarts)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos == -1 or pos + 1 >= len(data):
            return None
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def bmp_end(data: bytes) -> int | None:
    if len(data) < 6:
        return None
    (size,) = struct.unpack_from("<I", data, 2)
    return size if 14 < size <= len(data) else None


def gif_end(data: bytes) -> int | None:
    if len(data) < 13:
        return None
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor, optional local table, LZW size, sub-blocks
            if pos + 10 > len(data):
                return None
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
            pos = _skip_sub_blocks(data, pos)
        else:
            return None
        if pos is None:
            return None
    return None


def _skip_sub_blocks(data: bytes, pos: int) -> int | None:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return None


def image_end(data: bytes) -> int | None:
    """The offset just past the image, or None when the format is not one of these or is broken."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return png_end(data)
    if data.startswith(b"\xff\xd8"):
        return jpeg_end(data)
    if data.startswith(b"BM"):
        return bmp_end(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return gif_end(data)
    return None
