"""The web workspace's NATS stores: the accounts, sessions, triage, rate-limit and pending buckets
and the audit stream.

Created (with their limits) by provisioning, as admin: `sluice provision`, which `sluice up`
runs, and `sluice user`. A web front only binds to them, so the web identity needs no right to
create or change a stream; without auth (where every component provisions at start) it creates
them itself. The dispatcher knows nothing of them. Like every other store they are the truth,
and any number of web fronts share them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import anyio
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from bus.auth import WEB
from bus.codec import encode
from bus.connect import provisions
from bus.provision import NotProvisioned, deployed_replicas, ensure_stream
from bus.publish import publish
from bus.subjects import Names
from schemas.workspace import AuditEvent

DAY = 86400.0
MIB = 1 << 20
SESSION_TTL = 12 * 3600.0  # an idle or forgotten session ends with its KV entry
AUDIT_MAX_AGE = 365 * DAY
TRIAGE_HISTORY = 16  # revisions kept per alert: who changed what, readable with `nats kv history`
RATELIMIT_WINDOW = 300.0  # seconds a failed sign-in counts (sluice.web.ratelimit); an idle entry expires with it
RATELIMIT_MAX_BYTES = 64 * MIB  # ~500,000 addresses/accounts with failures in one window
PENDING_TTL = DAY  # how long a submission counts as in flight (202) without a summary
PENDING_MAX_BYTES = 256 * MIB  # ~2 million submissions a day through the web fronts
BIND_WAIT = 30.0  # seconds a web front waits for provisioning to make the stores


@dataclass
class WorkspaceStores:
    accounts: KeyValue
    sessions: KeyValue
    triage: KeyValue
    ratelimit: KeyValue
    pending: KeyValue


def _bucket_configs(names: Names, replicas: int) -> list[KeyValueConfig]:
    common = dict(storage=StorageType.FILE, replicas=replicas)
    return [
        KeyValueConfig(bucket=names.accounts_bucket, history=1, **common),
        KeyValueConfig(bucket=names.sessions_bucket, history=1, ttl=SESSION_TTL, **common),
        KeyValueConfig(bucket=names.triage_bucket, history=TRIAGE_HISTORY, **common),
        KeyValueConfig(bucket=names.ratelimit_bucket, history=1, ttl=RATELIMIT_WINDOW, max_bytes=RATELIMIT_MAX_BYTES,
                       max_value_size=1024, **common),
        KeyValueConfig(bucket=names.pending_bucket, history=1, ttl=PENDING_TTL, max_bytes=PENDING_MAX_BYTES,
                       max_value_size=1024, **common),
    ]


async def _stores(js: JetStreamContext, names: Names) -> WorkspaceStores:
    return WorkspaceStores(*[await js.key_value(b) for b in (
        names.accounts_bucket, names.sessions_bucket, names.triage_bucket, names.ratelimit_bucket, names.pending_bucket)])


async def provision_workspace(js: JetStreamContext, names: Names, replicas: int | None = None) -> WorkspaceStores:
    """Create (or update) the workspace's buckets and audit stream: the operator's step (admin)."""
    replicas = replicas or await deployed_replicas(js, names)
    for config in _bucket_configs(names, replicas):
        await js.create_key_value(config)
    await ensure_stream(js, StreamConfig(
        name=names.audit_stream, subjects=[names.audit("*")], retention=RetentionPolicy.LIMITS,
        max_age=AUDIT_MAX_AGE, storage=StorageType.FILE, num_replicas=replicas))
    return await _stores(js, names)


async def bind_workspace(js: JetStreamContext, names: Names, wait: float = BIND_WAIT, create: bool | None = None) -> WorkspaceStores:
    """The workspace as provisioning made it, waiting up to `wait` s for it (a web front may start
    before the provisioning step ends); made here only when `create` (None: where the web identity
    provisions, i.e. without auth)."""
    if provisions(WEB) if create is None else create:
        return await provision_workspace(js, names)
    streams = [f"KV_{c.bucket}" for c in _bucket_configs(names, 1)] + [names.audit_stream]
    missing = ""
    with anyio.move_on_after(wait):
        for missing in streams:
            while not await _exists(js, missing):
                await anyio.sleep(0.2)
        return await _stores(js, names)
    raise NotProvisioned(f"stream {missing} does not exist after {wait:g} s, and the web identity may not create it: "
                         "run the provisioning step (`sluice provision` with admin credentials; `sluice up` runs it)")


async def _exists(js: JetStreamContext, stream: str) -> bool:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        return False
    return True


async def audit(js: JetStreamContext, names: Names, user: str, action: str, target: str = "",
                remote: str = "", **detail: str) -> None:
    """Record one event durably (the publish is acknowledged by the stream before this returns),
    riding through a reconnect or an election as every other publish does (bus.publish): the
    request that did it must not fail with a 500 after the work itself went through."""
    event = AuditEvent(time.time(), user, action, target, {k: str(v) for k, v in detail.items()}, remote)
    await publish(js, names.audit(action), encode(event), uuid.uuid4().hex)
