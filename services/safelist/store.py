"""The safelist's contents: hash validation, hash-list files, and the NATS KV bucket.

The bucket (`Names.safelist_bucket`) maps a lowercase md5, sha1 or sha256 hex digest, used
as the key itself, to the reason it is known good (UTF-8 text, possibly empty). This module is
the only place that knows that format: the service looks hashes up through a `Mirror` and
`lookup`, the CLI edits the list through `add`, `remove` and `entries`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import anyio
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE, KeyValue

HASH_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}
_HEX = re.compile(r"[0-9a-f]+")
_SEPARATOR = re.compile(r"[\s,]+")
IN_FLIGHT = 256  # KV requests outstanding at once when editing many hashes
MIRROR_LIMIT = 200_000  # entries a Mirror holds (~50 MB); past it, look-ups go to the bucket

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


class Mirror:
    """The bucket's entries in memory, kept current by an ordered push consumer on its stream.

    What a KV watch does, without nats-py's end-of-initial-values marker, which can come before
    the values (it trusts a consumer info that may overtake the deliveries, and then `entries`
    missed some) or never (when the last value is a deletion it ignores): here the initial values
    are all in once the stream held none when the consumer started, or a delivery says nothing is
    pending (`loaded`). A list larger than `MIRROR_LIMIT` is not held (`overflowed`): an NSRL-size
    list stays a per-file look-up in the bucket. nats-py's ordered consumer recreates itself
    after missed heartbeats (a NATS restart), resuming after the last value it applied.
    """

    def __init__(self, bucket: str, limit: int = MIRROR_LIMIT) -> None:
        self.bucket = bucket
        self.limit = limit
        self.entries: dict[str, str] = {}
        self.loaded = anyio.Event()
        self.overflowed = False
        self._prefix = f"$KV.{bucket}."
        self._sub = None

    @property
    def usable(self) -> bool:
        """Whether a hash missing from `entries` is missing from the bucket."""
        return self.loaded.is_set() and not self.overflowed

    async def start(self, js: JetStreamContext) -> Mirror:
        stream = f"KV_{self.bucket}"
        held = (await js.stream_info(stream)).state.messages  # history 1: one message per hash at most
        if held > self.limit:
            self.overflowed = True
            return self
        if held == 0:
            self.loaded.set()
        self._sub = await js.subscribe(f"{self._prefix}>", stream=stream, cb=self._apply, ordered_consumer=True,
                                       deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, inactive_threshold=300.0)
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _apply(self, msg: Msg) -> None:
        if self.overflowed:  # grown past the limit: what follows is not kept either
            return
        headers = msg.headers or {}
        key = msg.subject[len(self._prefix):]
        if headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in headers:
            self.entries.pop(key, None)
        elif len(self.entries) < self.limit or key in self.entries:
            self.entries[key] = (msg.data or b"").decode("utf-8", "replace")
        else:
            self.overflowed = True
            self.entries.clear()
            return
        if msg.metadata.num_pending == 0:
            self.loaded.set()


async def entries(kv: KeyValue) -> dict[str, str]:
    """Every listed hash and its reason, read in one pass of a `Mirror` (not one get per key)."""
    mirror = await Mirror(kv._name, limit=1 << 62).start(kv._js)  # nats-py keeps a bucket's name and context private
    try:
        await mirror.loaded.wait()
    finally:
        await mirror.stop()
    return mirror.entries


async def lookup(kv: KeyValue, digests: Iterable[str]) -> tuple[str, str] | None:
    """The first of `digests` that is listed, with its reason; one concurrent round trip for all."""
    candidates = list(digests)
    reasons = await asyncio.gather(*(_reason(kv, digest) for digest in candidates))
    return next(((d, r) for d, r in zip(candidates, reasons) if r is not None), None)
