"""Encoded payloads inside a script: found, decoded, and kept only when they decode to something.

A script hides its next stage as base64 (`-EncodedCommand`, `FromBase64String`, `atob`, a long
blob), hex, a list of byte or character codes, optionally compressed (gzip, deflate) and XORed
with a key the script itself holds (`-bxor 35`, `Xor 7`, `key = "s3cr3t"`). A candidate counts
only if what comes out reads as text or starts with a known file signature: random-looking
output is not reported (a long identifier is not base64 just because it could be).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import re
import zlib
from dataclasses import dataclass
from itertools import cycle

MAX_DECOMPRESSED = 8 * 1024 * 1024
SIGNATURES = {b"MZ": "PE executable", b"PK\x03\x04": "zip", b"\x7fELF": "ELF executable", b"%PDF": "PDF",
              b"\xd0\xcf\x11\xe0": "OLE document", b"\x1f\x8b": "gzip", b"{\\rtf": "RTF", b"Rar!": "RAR"}


@dataclass(frozen=True)
class Payload:
    technique: str  # how it was hidden, e.g. "base64 (-EncodedCommand), gzip"
    data: bytes
    text: str | None  # the payload as text, when it is text


def _text_of(data: bytes) -> str | None:
    """`data` as text if it reads as text: UTF-16LE (PowerShell's -EncodedCommand) or UTF-8/Latin-1."""
    if len(data) >= 4 and data[1::2].count(0) > len(data) // 4:
        candidate = data.decode("utf-16-le", "replace")
    else:
        candidate = data.decode("utf-8", "replace") if _utf8(data) else data.decode("latin-1")
    printable = sum(c.isprintable() or c in "\r\n\t" for c in candidate)
    letters = sum(c.isalpha() for c in candidate)
    if candidate and printable / len(candidate) >= 0.95 and letters / len(candidate) >= 0.3:
        return candidate.replace("\x00", "")
    return None


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decompressed(data: bytes) -> tuple[str, bytes] | None:
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                return "gzip", stream.read(MAX_DECOMPRESSED)
        except (OSError, EOFError, zlib.error):
            return None
    for wbits, name in ((-15, "deflate"), (15, "zlib")):
        try:
            out = zlib.decompressobj(wbits).decompress(data, MAX_DECOMPRESSED)
        except zlib.error:
            continue
        if out:
            return name, out
    return None


def _signature(data: bytes) -> str | None:
    return next((name for magic, name in SIGNATURES.items() if data.startswith(magic)), None)


def _accept(technique: str, data: bytes, keys: list[bytes], compressed_hint: bool) -> Payload | None:
    """The payload `data` decodes to (through decompression and XOR with a script key), or None."""
    if len(data) < 8:
        return None
    signature = _signature(data)
    if signature and signature != "gzip":
        return Payload(f"{technique} ({signature})", data, None)
    if signature == "gzip" or compressed_hint:
        unpacked = _decompressed(data)
        if unpacked:
            inner = _accept(f"{technique}, {unpacked[0]}", unpacked[1], keys, False)
            if inner:
                return inner
    text = _text_of(data)
    if text is not None:
        return Payload(technique, data, text)
    for key in keys:
        plain = bytes(b ^ k for b, k in zip(data, cycle(key), strict=False))
        if _signature(plain) or _text_of(plain) is not None:
            shown = key.decode("latin-1") if len(key) > 1 else str(key[0])
            return _accept(f"{technique}, XOR key {shown!r}", plain, [], compressed_hint)
    return None


def _b64(blob: str) -> bytes | None:
    blob = re.sub(r"\s+", "", blob)
    try:
        return base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


_ENCODED_COMMAND = re.compile(r"\s-(?:e|ec|en|enc|enco|encod|encode|encoded|encodedc\w*)\s+[\"']?([A-Za-z0-9+/]{16,}={0,2})", re.I)
_FROM_BASE64 = re.compile(r"(?:FromBase64String|atob|base64_decode|b64decode|DecodeBase64)\s*\(\s*[\"']([A-Za-z0-9+/=\s]{12,})[\"']", re.I)
_BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")
_HEX_BLOB = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){24,}(?![0-9a-fA-F])")
_NUMBER_LIST = re.compile(r"(?:(?:0x[0-9a-fA-F]{1,2}|\d{1,3})\s*,\s*){15,}(?:0x[0-9a-fA-F]{1,2}|\d{1,3})")
_INT_KEY = re.compile(r"(?:-bxor|\bXor|\^)\s*\(?\s*(0x[0-9a-f]{1,2}|\d{1,3})\b", re.I)
_STR_KEY = re.compile(r"\b\$?\w*key\w*\s*=\s*[\"']([^\"'\r\n]{1,64})[\"']", re.I)
_COMPRESSION = re.compile(r"GzipStream|DeflateStream|gzinflate|gzdecode|zlib|inflate", re.I)


_XOR_VARIABLE = re.compile(r"(?:-bxor|\bXor|\^)\s*\(?\s*\$?([A-Za-z_]\w{0,30})\b", re.I)


def _int(literal: str) -> int:
    return int(literal, 16) if literal.lower().startswith("0x") else int(literal)


def xor_keys(text: str) -> list[bytes]:
    """Keys the script names near an XOR: a byte after `-bxor`/`Xor`/`^` or in the variable XORed
    with (`$k = 0x23` ... `-bxor $k`), and strings assigned to `*key*`."""
    literals = _INT_KEY.findall(text)
    for name in set(_XOR_VARIABLE.findall(text)):
        literals += re.findall(rf"(?<![\w$])\$?{re.escape(name)}\s*=\s*(0x[0-9a-f]{{1,2}}|\d{{1,3}})\b", text, re.I)
    keys = [bytes([_int(k)]) for k in literals if 0 < _int(k) < 256]
    keys += [k.encode("latin-1", "replace") for k in _STR_KEY.findall(text)]
    return list(dict.fromkeys(keys))[:16]


def _numbers(blob: str) -> bytes | None:
    values = [_int(v) for v in re.split(r"\s*,\s*", blob.strip())]
    return bytes(values) if all(0 <= v < 256 for v in values) else None


def find_payloads(text: str, max_candidates: int = 64) -> list[Payload]:
    """Every distinct payload `text` carries, in order of appearance, the most specific finding first."""
    keys = xor_keys(text)
    compressed = bool(_COMPRESSION.search(text))
    found: dict[bytes, Payload] = {}
    candidates: list[tuple[str, bytes | None]] = []
    candidates += [("base64 (-EncodedCommand)", _b64(m)) for m in _ENCODED_COMMAND.findall(text)]
    candidates += [("base64 (decode call)", _b64(m)) for m in _FROM_BASE64.findall(text)]
    candidates += [("base64", _b64(m.group())) for m in _BASE64_BLOB.finditer(text)]
    candidates += [("hex", bytes.fromhex(m.group())) for m in _HEX_BLOB.finditer(text)]
    candidates += [("byte list", _numbers(m.group())) for m in _NUMBER_LIST.finditer(text)]
    for technique, data in candidates[:max_candidates]:
        if not data or data in found:
            continue
        payload = _accept(technique, data, keys, compressed)
        if payload is not None and payload.data not in {p.data for p in found.values()}:
            found[data] = payload
    return list(found.values())
