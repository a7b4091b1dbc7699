"""Safelist (FILTER stage): a known-good file gets a negative score and is dropped, so the
later stages spend nothing on it.

Hashes come from two places: the NATS KV bucket `Names.safelist_bucket` (the list operators
edit with the CLI), and the `hashes` block of the config (for small static lists, and for the
no-NATS harness). Keys may be md5, sha1 or sha256; the file's three digests are all tried.

The bucket is mirrored in memory (`store.Mirror`, an ordered push consumer on its stream), so
the three digests of a file are looked up with no round trip: three KV gets per file were a
twentieth of a one-process scan's CPU, in nats-py's JSON API and in nats-server. A digest found
in the mirror is confirmed with one get before the file is dropped, so a removal (`sluice
safelist remove`) takes effect on the next file even if the mirror has not seen it yet; an
addition takes effect as soon as the mirror has it (milliseconds; after a NATS restart, once
nats-py's ordered consumer has recreated itself). Until the mirror has the bucket's initial
values, and for a list larger than `store.MIRROR_LIMIT` (a reference set like NSRL, which
each instance would hold), the three digests are read from the bucket per file instead. For the
same reason the manifest disables the result cache: whether a file is listed is the bucket's
state now, not a property of the file.
"""

from __future__ import annotations

import logging

import anyio.to_thread
import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from bus.subjects import Names
from services.safelist.store import Mirror, hash_kind, lookup, normalize_entries
from services.sdk import RecoverableError, Request, Result, ResultKeyValueSection, ServiceBase

log = logging.getLogger("sluice.service")

KNOWN_GOOD = 1  # heur_id in service_manifest.yml
THREAD_DIGESTS = 64 * 1024  # md5 and sha1 of a smaller file take less than a thread hand-off (~0.1 ms)


def digests(request: Request) -> list[str]:
    """The file's sha256, sha1 and md5 (the last two computed from its bytes)."""
    return [request.sha256, request.sha1, request.md5]


class Safelist(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        # Validated here so a typo in the config fails at start, not silently at every task.
        self.static = normalize_entries(self.config.get("hashes") or {})
        self.kv: KeyValue | None = None
        self.mirror: Mirror | None = None

    async def attach(self, js: JetStreamContext, names: Names) -> None:
        self.kv = await js.key_value(names.safelist_bucket)
        try:
            self.mirror = await Mirror(names.safelist_bucket).start(js)
        except nats.errors.Error as exc:  # e.g. credentials from before services could watch it
            log.warning("safelist: no mirror of the bucket, reading it per file: %s: %s", type(exc).__name__, exc)

    async def execute(self, request: Request) -> None:
        if request.depth > 0 and not request.get_param("apply_to_children"):
            return
        # md5 and sha1 of a large file take a while: off the event loop, which other tasks share.
        if request.file_size > THREAD_DIGESTS:
            candidates = await anyio.to_thread.run_sync(digests, request)
        else:
            candidates = digests(request)
        found = await self._find(candidates)
        if found is None:
            return
        digest, reason, source = found
        section = ResultKeyValueSection("Safelisted file", {
            "reason": reason or "(no reason given)",
            "hash": digest,
            "hash type": hash_kind(digest),
            "listed in": source,
        }, heuristic=KNOWN_GOOD)
        request.result = Result([section])
        request.drop()

    async def _find(self, candidates: list[str]) -> tuple[str, str, str] | None:
        """(digest, reason, where it is listed) for the first listed digest, or None."""
        for digest in candidates:
            if digest in self.static:
                return digest, self.static[digest], "service config"
        if self.kv is None:
            return None
        if self.mirror is not None and self.mirror.usable:
            # What the mirror lists is confirmed in the bucket: its removal may not have reached the mirror yet.
            candidates = [digest for digest in candidates if digest in self.mirror.entries]
            if not candidates:
                return None
        try:
            hit = await lookup(self.kv, candidates)
        except nats.errors.Error as exc:  # NATS restarting or slow: worth another attempt
            raise RecoverableError(f"safelist bucket unreachable: {type(exc).__name__}: {exc}") from exc
        return (*hit, "safelist bucket") if hit else None
