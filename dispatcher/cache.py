"""The result cache: (sha256, service, version, tool version, config hash, params) → result.

A URI, domain or IP sample's key starts with its kind: a domain and a text file holding just
that name share a sha256, but a service taking both may well say different things about them.

Resubmitting a file, or resuming a tree after a dispatcher crash, costs a KV read per service
instead of a re-run. Errors and results of services with `disable_cache` are never cached.

A file's results are kept per stage, one KV entry each (`CachedStage`, under `<sha256>.<stage>`):
a stage costs one read and one write whatever its number of services. Writes are not waited for.
"""

from __future__ import annotations

import hashlib
import logging

import orjson
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from bus.codec import BadMessage, decode, encode
from bus.publish import TRANSIENT, jetstream_send
from schemas.messages import CachedStage, FileRef, SampleKind, ServiceRecord, ServiceResult, Stage, SubmissionParams

log = logging.getLogger("sluice.dispatcher")


def cache_key(sha256: str, record: ServiceRecord, params: SubmissionParams, kind: SampleKind = SampleKind.FILE) -> str:
    salt = orjson.dumps(
        [record.version, record.tool_version, record.config_hash, params.deep_scan,
         params.service_params.get(record.name, {}), params.temp_data if record.uses_temp_data else None],
        option=orjson.OPT_SORT_KEYS, default=str,
    )
    sample = sha256 if kind is SampleKind.FILE else f"{kind.value}.{sha256}"  # a KV key has no ':'
    return f"{sample}.{record.name}.{hashlib.sha256(salt).hexdigest()[:20]}"


def _entry_key(file: FileRef, stage: Stage) -> str:
    """One KV entry per sample and stage (a sample's kind first: KV keys cannot hold ':')."""
    base = f"{file.sha256}.{stage.value}"
    return base if file.kind is SampleKind.FILE else f"{file.kind.value}.{base}"


class ResultCache:
    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv = kv
        self._js = js
        self._bucket = bucket

    async def get_many(self, file: FileRef, stage: Stage, keys: dict[str, str]) -> dict[str, ServiceResult]:
        """The cached results among `keys` (service name -> cache key) of one file's stage, by service name."""
        if not keys:
            return {}
        entry_key = _entry_key(file, stage)
        try:
            entry = await self._kv.get(entry_key)
        except KeyNotFoundError:
            return {}
        except TRANSIENT as exc:  # a cache that cannot be read costs a re-run, not the tree
            log.warning("cache read %s failed, treated as a miss: %s", entry_key, exc)
            return {}
        if not entry or not entry.value:
            return {}
        try:
            cached = decode(entry.value, CachedStage).results
        except BadMessage as exc:
            log.warning("cache entry %s unreadable, ignored: %s", entry_key, exc)
            return {}
        return {name: cached[key] for name, key in keys.items() if key in cached}

    async def put_many(self, file: FileRef, stage: Stage, results: dict[str, ServiceResult]) -> None:
        """Store a stage's results by cache key, in one message (a KV put is a publish on
        `$KV.<bucket>.<key>`), without waiting for its ack: nothing waits on a cache write."""
        if not results:
            return

        def failed(exc: BaseException) -> None:  # a cache that cannot write only costs time later
            log.warning("cache write of %s failed: %s", entry_key, exc)

        entry_key = _entry_key(file, stage)
        entry = encode(CachedStage(results))
        try:
            await jetstream_send(self._js, [(f"$KV.{self._bucket}.{entry_key}", entry, None)], failed)
        except Exception as exc:  # noqa: BLE001
            failed(exc)
