"""Base64 and hex runs in text that decode to an executable or a container (a PE pasted into a
script or a text file as base64 is how many droppers carry their payload)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from services.carve.signatures import known

# Between groups of four: line breaks, escaped line breaks, or a string concatenation ("..." + "...").
_SEPARATOR = rb"""(?:[\r\n \t]|\\[rn]|["']\s*\+?\s*["'])"""
_BASE64_RUN = re.compile(rb"(?:[A-Za-z0-9+/]{4}" + _SEPARATOR + rb"{0,4}){50,}[A-Za-z0-9+/]{0,3}={0,2}")
_HEX_RUN = re.compile(rb"(?:[0-9A-Fa-f]{2}[ ,\r\n\\x]{0,4}){100,}")
_NOISE = re.compile(_SEPARATOR)
_HEX_NOISE = re.compile(rb"[ ,\r\n\\x]|0x")


def _b64(run: bytes) -> bytes | None:
    cleaned = _NOISE.sub(b"", run)
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return None


def _hex(run: bytes) -> bytes | None:
    cleaned = _HEX_NOISE.sub(b"", run)
    try:
        return bytes.fromhex(cleaned[: len(cleaned) // 2 * 2].decode())
    except ValueError:
        return None


def decoded_payloads(text: bytes, max_blobs: int) -> Iterator[tuple[str, int, bytes, str]]:
    """(encoding, offset, decoded bytes, format) of each run that decodes to a known format."""
    found = 0
    for encoding, pattern, decode in (("base64", _BASE64_RUN, _b64), ("hex", _HEX_RUN, _hex)):
        for match in pattern.finditer(text):
            decoded = decode(match.group(0))
            fmt = known(decoded) if decoded else None
            if fmt is None:
                continue
            yield encoding, match.start(), decoded, fmt  # type: ignore[misc]
            found += 1
            if found >= max_blobs:
                return
