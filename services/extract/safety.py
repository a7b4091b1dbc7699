"""The limits an archive is read under, and the checks on member names.

Sizes declared in archive headers are attacker-controlled, so limits are enforced on the bytes
actually produced by the decompressor, chunk by chunk: a bomb costs at most one limit's worth
of memory and CPU before it is stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable
from typing import IO, Any

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Caps:
    total_bytes: int
    member_bytes: int
    ratio: float
    ratio_min_bytes: int
    entries: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Caps:
        return cls(
            total_bytes=int(config.get("max_total_bytes", 256 * 1024 * 1024)),
            member_bytes=int(config.get("max_member_bytes", 100 * 1024 * 1024)),
            ratio=float(config.get("max_ratio", 100)),
            ratio_min_bytes=int(config.get("ratio_min_bytes", 1024 * 1024)),
            entries=int(config.get("max_entries", 1000)),
        )


class LimitHit(Exception):
    """A limit was passed while reading a member; `kind` is "ratio" or "size".

    `stop` means the whole archive is abandoned (total budget spent), not just this member.
    """

    def __init__(self, kind: str, message: str, stop: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.stop = stop


class Budget:
    """Uncompressed bytes spent on one archive, and the reader that spends them.

    `stream_packed` is the compressed size of a stream shared by all members (a .tar.gz, a
    plain .gz): its ratio is checked on the running total, since tar members have no
    compressed size of their own.
    """

    def __init__(self, caps: Caps, stream_packed: int | None = None, consumed: Callable[[], int] | None = None) -> None:
        self.caps = caps
        self.stream_packed = stream_packed
        self.consumed = consumed  # compressed bytes of the shared stream read so far, when known
        self.used = 0

    def read(self, fh: IO[bytes], packed: int | None) -> bytes:
        """All of `fh`, or LimitHit as soon as a limit is passed (the partial bytes are discarded)."""
        caps = self.caps
        chunks: list[bytes] = []
        size = 0
        while True:
            # Never ask for more than one byte past the tightest limit, so small caps stay cheap.
            room = min(caps.member_bytes - size, caps.total_bytes - self.used)
            chunk = fh.read(max(1, min(CHUNK, room + 1)))
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            self.charge(len(chunk), size, packed)
            chunks.append(chunk)

    def charge(self, added: int, size: int | None = None, packed: int | None = None) -> None:
        """Count `added` more decompressed bytes; LimitHit once a limit is passed.

        `size` is the member's length so far and `packed` its compressed size. Formats that push
        bytes (py7zr) call this per chunk; they pass size=None for the rest of a member already
        given up, which a solid stream must still decompress through: that work counts too.
        """
        caps = self.caps
        self.used += added
        if size is not None and packed and size > caps.ratio_min_bytes and size > packed * caps.ratio:
            raise LimitHit("ratio", f"member expands past {caps.ratio:g}x its {packed:,} compressed bytes")
        shared = self.stream_packed
        if shared and self.used > caps.ratio_min_bytes and self.used > shared * caps.ratio:
            raise LimitHit(
                "ratio", f"compressed stream expands past {caps.ratio:g}x its {shared:,} bytes", stop=True
            )
        if self.used > caps.total_bytes:
            raise self._bomb_or(LimitHit("size", f"archive expands past the {caps.total_bytes:,}-byte total limit", stop=True))
        if size is not None and size > caps.member_bytes:
            raise self._bomb_or(LimitHit("size", f"member expands past the {caps.member_bytes:,}-byte member limit"))

    def _bomb_or(self, hit: LimitHit) -> LimitHit:
        """`hit`, or a bomb when the shared stream got there past the ratio limit.

        A big stream (4 MiB of gzip holding 4 GiB of zeros) reaches a size limit long before its
        whole-stream ratio can be known; what the decompressor has read so far tells it.
        """
        consumed = self.consumed() if self.consumed else 0
        if consumed and self.used > consumed * self.caps.ratio:
            return LimitHit("ratio", f"compressed stream expands past {self.caps.ratio:g}x: {self.used:,} bytes "
                                     f"from its first {consumed:,}", stop=True)
        return hit


_SEPARATORS = re.compile(r"[\\/]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problems(name: str) -> list[str]:
    """Why this member name would escape an extraction directory (empty when it would not)."""
    problems = []
    if name.startswith(("/", "\\")):
        problems.append("absolute path")
    if _DRIVE.match(name):
        problems.append("drive letter")
    if ".." in _SEPARATORS.split(name):
        problems.append("parent directory '..'")
    if "\\" in name:
        problems.append("backslash")
    return problems


def safe_basename(name: str, fallback: str) -> str:
    """The last path component, printable and bounded; used as the child's name, never as a path."""
    base = _DRIVE.sub("", _SEPARATORS.split(name)[-1])
    base = "".join(ch for ch in base if ch.isprintable())[:200].strip()
    return fallback if base in ("", ".", "..") else base
