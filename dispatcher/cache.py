"""The result cache: (sha256, service, version, tool version, config hash, params) → result.

A URI, domain or IP sample's key starts with its kind: a domain and a text file holding just
that name share a sha256, but a service taking both may well say different things about them.

Resubmitting a file, or resuming a tree after a dispatcher crash, costs a KV read per service
instead of a re-run. Errors and results of services with `disable_cache` are never cached.

A file's results are kept per stage, one KV entry each (`CachedStage`, under `<sha256>.<stage>`):
a stage costs one read and one write whatever its number of services. Writes are core
publishes into the bucket's stream: no ack is asked for, none is waited for.
"""

from __future__ import annotations

import hashlib
import logging

import orjson
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from bus.codec import BadMessage, decode, encode
from bus.publish import TRANSIENT
from schemas.messages import CachedStage, FileRef, SampleKind, ServiceRecord, ServiceResult, Stage, SubmissionParams

log = logging.getLogger("sluice.dispatcher")


def cache_key(sha256: str, record: ServiceRecord, params: SubmissionParams, kind: SampleKind = SampleKind.FILE) -> str:
    sample = sha256 if kind is SampleKind.FILE else f"{kind.value}.{sha256}"  # a KV key has no ':'
    return f"{sample}.{record.name}.{_salt(record, params)}"


_SALTS: dict[tuple, str] = {}  # the common case (no service params, no temporary data) by its few values


def _salt(record: ServiceRecord, params: SubmissionParams) -> str:
    """What besides the sample a result depends on, hashed; remembered when it is only the
    service's versions and deep_scan (a JSON dump and a sha256 per service and file add up)."""
    plain = record.name not in params.service_params and not (record.uses_temp_data and params.temp_data)
    memo = (record.version, record.tool_version, record.config_hash, params.deep_scan) if plain else None
    if memo is not None and memo in _SALTS:
        return _SALTS[memo]
    salt = orjson.dumps(
        [record.version, record.tool_version, record.config_hash, params.deep_scan,
         params.service_params.get(record.name, {}), params.temp_data if record.uses_temp_data else None],
        option=orjson.OPT_SORT_KEYS, default=str,
    )
    digest = hashlib.sha256(salt).hexdigest()[:20]
    if memo is not None and len(_SALTS) < 10_000:  # versions change rarely: a bound, never a concern
        _SALTS[memo] = digest
    return digest


def _entry_key(file: FileRef, stage: Stage) -> str:
    """One KV entry per sample and stage (a sample's kind first: KV keys cannot hold ':')."""
    base = f"{file.sha256}.{stage.value}"
    return base if file.kind is SampleKind.FILE else f"{file.kind.value}.{base}"


class ResultCache:
    def __init__(self, kv: KeyValue, nc: Client, bucket: str) -> None:
        self._kv = kv
        self._nc = nc
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
        `$KV.<bucket>.<key>`), published without asking for an ack: nothing waits on a cache
        write, and one that is lost only costs a re-run later."""
        if not results:
            return
        entry_key = _entry_key(file, stage)
        try:
            await self._nc.publish(f"$KV.{self._bucket}.{entry_key}", encode(CachedStage(results)))
        except Exception as exc:  # noqa: BLE001 - a cache that cannot write only costs time later
            log.warning("cache write of %s failed: %s", entry_key, exc)
