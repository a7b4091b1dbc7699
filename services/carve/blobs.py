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


# Fast first pass: a blob worth decoding has at least one unbroken stretch of its alphabet this
# long (a base64 line is 64 or 76 characters). The text is mapped to "in the alphabet or not"
# with bytes.translate and the stretches found with bytes.find (both C loops, ~1 GB/s), so the
# slow patterns above only run where a stretch was seen.
_SEED_LENGTH = {"base64": 60, "hex": 64}
_ALPHABETS = {"base64": b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "hex": b"0123456789ABCDEFabcdef ,"}
_MAPS = {name: bytes(1 if i in set(alphabet) else 0 for i in range(256)) for name, alphabet in _ALPHABETS.items()}
_BLOB_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n \t\\\"',x")


def _seeds(text: bytes, encoding: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each stretch of at least the seed length of `encoding`'s alphabet."""
    mapped = text.translate(_MAPS[encoding])
    seed = b"\x01" * _SEED_LENGTH[encoding]
    pos = mapped.find(seed)
    while pos != -1:
        end = mapped.find(b"\x00", pos)
        end = len(mapped) if end == -1 else end
        yield pos, end
        pos = mapped.find(seed, end)


def _runs(text: bytes, encoding: str, pattern: re.Pattern[bytes]) -> Iterator[re.Match[bytes]]:
    """The full runs of `pattern` around each seed, each run once."""
    covered = 0
    for seed_start, seed_end in _seeds(text, encoding):
        if seed_start < covered:
            continue
        start = seed_start
        floor = max(covered, start - 1024 * 1024)
        while start > floor and text[start - 1] in _BLOB_BYTES:
            start -= 1
        match = pattern.search(text, start, seed_end + 64 * 1024 * 1024)
        while match is not None and match.end() <= seed_start:
            match = pattern.search(text, match.end(), seed_end + 64 * 1024 * 1024)
        if match is None or match.start() > seed_end:
            covered = seed_end
            continue
        covered = match.end()
        yield match


def decoded_payloads(text: bytes, max_blobs: int) -> Iterator[tuple[str, int, bytes, str]]:
    """(encoding, offset, decoded bytes, format) of each run that decodes to a known format."""
    found = 0
    for encoding, pattern, decode in (("base64", _BASE64_RUN, _b64), ("hex", _HEX_RUN, _hex)):
        for match in _runs(text, encoding, pattern):
            decoded = decode(match.group(0))
            fmt = known(decoded) if decoded else None
            if fmt is None:
                continue
            yield encoding, match.start(), decoded, fmt  # type: ignore[misc]
            found += 1
            if found >= max_blobs:
                return
