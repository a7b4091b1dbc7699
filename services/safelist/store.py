"""The safelist's contents: hash validation, hash-list files, and the NATS KV bucket.

The bucket (`Names.safelist_bucket`) maps a lowercase md5, sha1 or sha256 hex digest, used
as the key itself, to the reason it is known good (UTF-8 text, possibly empty). This module is
the only place that knows that format: the service looks hashes up through `lookup`, the CLI
edits the list through `add`, `remove` and `entries`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

HASH_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}
_HEX = re.compile(r"[0-9a-f]+")
_SEPARATOR = re.compile(r"[\s,]+")
IN_FLIGHT = 256  # KV requests outstanding at once when editing many hashes

T = TypeVar("T")


class HashFileError(ValueError):
    """Lines of a hash file that are not hashes; `problems` lists every one as (line number, why).

    All problems are collected before raising, so a user fixes the file in one go, and nothing of
    a bad file is half-imported.
    """

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"line {n}: {why}" for n, why in problems))


def hash_kind(value: str) -> str | None:
    """'md5', 'sha1' or 'sha256' for a lowercase hex digest of that length, else None."""
    return HASH_KINDS.get(len(value)) if _HEX.fullmatch(value) else None


def normalize(value: str) -> str:
    """A hash as a KV key: stripped, lowercased, and checked to be md5/sha1/sha256 hex."""
    digest = value.strip().lower()
    if hash_kind(digest) is None:
        raise ValueError(f"{value!r} is not an md5, sha1 or sha256 hex digest (32, 40 or 64 hex characters)")
    return digest


def normalize_entries(hashes: dict[str, str | None]) -> dict[str, str]:
    """hash -> reason with every hash normalized; raises ValueError on the first bad one."""
    return {normalize(digest): "" if reason is None else str(reason) for digest, reason in hashes.items()}


def parse_hash_file(text: str) -> dict[str, str]:
    """One hash per line, optionally followed by a reason (after whitespace or a comma).

    Blank lines and lines starting with '#' are skipped; `sha256sum` output works as is (the file
    name becomes the reason). A hash listed twice keeps its last reason. Raises HashFileError
    naming every bad line.
    """
    found: dict[str, str] = {}
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, reason = _SEPARATOR.sub(" ", line, count=1).partition(" ")
        try:
            found[normalize(digest)] = reason.strip()
        except ValueError as exc:
            problems.append((number, str(exc)))
    if problems:
        raise HashFileError(problems)
    return found


async def _bounded(call: Callable[..., Awaitable[T]], args: list[tuple]) -> list[T]:
    """`call(*a)` for each of `args`, IN_FLIGHT at a time: a 100,000-hash import must not open
    100,000 requests at once."""
    results: list[T] = []
    for start in range(0, len(args), IN_FLIGHT):
        results += await asyncio.gather(*(call(*a) for a in args[start:start + IN_FLIGHT]))
    return results


async def _reason(kv: KeyValue, digest: str) -> str | None:
    """The reason `digest` is listed, or None when it is not (never listed, or removed)."""
    try:
        entry = await kv.get(digest)
    except KeyNotFoundError:  # also raised for a deleted key
        return None
    return (entry.value or b"").decode("utf-8", "replace")


async def add(kv: KeyValue, hashes: dict[str, str]) -> None:
    """List each hash with its reason (replacing an older reason). Raises ValueError on a bad hash."""
    entries = normalize_entries(hashes)
    await _bounded(kv.put, [(digest, reason.encode()) for digest, reason in entries.items()])


async def remove(kv: KeyValue, hashes: list[str]) -> list[str]:
    """Unlist the hashes; returns those that were listed (the others were no-ops)."""
    digests = list(dict.fromkeys(normalize(h) for h in hashes))
    reasons = await _bounded(_reason, [(kv, digest) for digest in digests])
    listed = [digest for digest, reason in zip(digests, reasons) if reason is not None]
    await _bounded(kv.delete, [(digest,) for digest in listed])
    return listed


async def entries(kv: KeyValue) -> dict[str, str]:
    """Every listed hash and its reason, read in one pass of a KV watcher (not one get per key)."""
    watcher = await kv.watchall(ignore_deletes=True)
    listed: dict[str, str] = {}
    try:
        async for entry in watcher:
            if entry is None:  # the watcher's marker: every current value has been delivered
                break
            listed[entry.key] = (entry.value or b"").decode("utf-8", "replace")
    finally:
        await watcher.stop()
    return listed


async def lookup(kv: KeyValue, digests: Iterable[str]) -> tuple[str, str] | None:
    """The first of `digests` that is listed, with its reason; one concurrent round trip for all."""
    candidates = list(digests)
    reasons = await asyncio.gather(*(_reason(kv, digest) for digest in candidates))
    return next(((d, r) for d, r in zip(candidates, reasons) if r is not None), None)
