"""The result cache: (sha256, service, version, tool version, config hash, params) → result.

A URI, domain or IP sample's key starts with its kind: a domain and a text file holding just
that name share a sha256, but a service taking both may well say different things about them.

Resubmitting a file, or resuming a tree after a dispatcher crash, costs a KV read per service
instead of a re-run. Errors and results of services with `disable_cache` are never cached.
"""

from __future__ import annotations

import hashlib
import logging

import orjson
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from bus.codec import BadMessage, decode, encode
from schemas.messages import SampleKind, ServiceRecord, ServiceResult, SubmissionParams

log = logging.getLogger("sluice.dispatcher")


def cache_key(sha256: str, record: ServiceRecord, params: SubmissionParams, kind: SampleKind = SampleKind.FILE) -> str:
    salt = orjson.dumps(
        [record.version, record.tool_version, record.config_hash, params.deep_scan,
         params.service_params.get(record.name, {}), params.temp_data if record.uses_temp_data else None],
        option=orjson.OPT_SORT_KEYS, default=str,
    )
    sample = sha256 if kind is SampleKind.FILE else f"{kind.value}.{sha256}"  # a KV key has no ':'
    return f"{sample}.{record.name}.{hashlib.sha256(salt).hexdigest()[:20]}"


class ResultCache:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, key: str) -> ServiceResult | None:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        if not entry or not entry.value:
            return None
        try:
            return decode(entry.value, ServiceResult)
        except BadMessage as exc:
            log.warning("cache entry %s unreadable, ignored: %s", key, exc)
            return None

    async def put(self, key: str, result: ServiceResult) -> None:
        try:
            await self._kv.put(key, encode(result))
        except Exception as exc:  # noqa: BLE001 - a cache that cannot write only costs time later
            log.warning("cache write %s failed: %s", key, exc)
