"""The result cache: (sha256, service, version, tool version, config hash, params) → result.

Resubmitting a file, or resuming a tree after a dispatcher crash, costs a KV read per service
instead of a re-run. Errors and results of services with `disable_cache` are never cached.

Keys start with the file's sha256, so one request ("the first entry under `<sha256>.>`") tells
whether anything at all is cached for a file: a file never seen (the usual case) costs that one
request per stage, not one KV read per service. Writes are sent together and not waited for.
"""

from __future__ import annotations

import hashlib
import logging

import anyio
import orjson
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from bus.codec import BadMessage, decode, encode
from bus.publish import jetstream_send
from schemas.messages import ServiceRecord, ServiceResult, SubmissionParams

log = logging.getLogger("sluice.dispatcher")


def cache_key(sha256: str, record: ServiceRecord, params: SubmissionParams) -> str:
    salt = orjson.dumps(
        [record.version, record.tool_version, record.config_hash, params.deep_scan,
         params.service_params.get(record.name, {}), params.temp_data if record.uses_temp_data else None],
        option=orjson.OPT_SORT_KEYS, default=str,
    )
    return f"{sha256}.{record.name}.{hashlib.sha256(salt).hexdigest()[:20]}"


class ResultCache:
    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv = kv
        self._js = js
        self._bucket = bucket

    async def _anything_for(self, sha256: str) -> bool:
        try:
            await self._js.get_msg(f"KV_{self._bucket}", seq=1, subject=f"$KV.{self._bucket}.{sha256}.>", next=True)
        except NotFoundError:
            return False
        return True

    async def get_many(self, sha256: str, keys: dict[str, str]) -> dict[str, ServiceResult]:
        """The cached results among `keys` (service name -> cache key) of one file, by service name."""
        found: dict[str, ServiceResult] = {}
        if not keys or not await self._anything_for(sha256):
            return found

        async def get(name: str, key: str) -> None:
            hit = await self.get(key)
            if hit is not None:
                found[name] = hit

        async with anyio.create_task_group() as tg:
            for name, key in keys.items():
                tg.start_soon(get, name, key)
        return found

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

    async def put_many(self, results: dict[str, ServiceResult]) -> None:
        """Store results by cache key (a KV put is a publish on `$KV.<bucket>.<key>`), all at once,
        without waiting for the acks: nothing waits on a cache write, least of all the verdict."""
        if not results:
            return

        def failed(exc: BaseException) -> None:  # a cache that cannot write only costs time later
            log.warning("cache write of %s failed: %s", ", ".join(results), exc)

        try:
            await jetstream_send(self._js, [(f"$KV.{self._bucket}.{key}", encode(result), None) for key, result in results.items()],
                                 failed)
        except Exception as exc:  # noqa: BLE001
            failed(exc)
