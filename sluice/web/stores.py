"""The web workspace's NATS stores: the accounts, sessions and triage buckets and the audit stream.

Created by whichever comes first, a web front or `sluice user`; the dispatcher knows nothing of
them. Like every other store they are the truth, and any number of web fronts share them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.kv import KeyValue

from bus.codec import encode
from bus.provision import deployed_replicas, ensure_stream
from bus.publish import jetstream_publish
from bus.subjects import Names
from schemas.workspace import AuditEvent

DAY = 86400.0
SESSION_TTL = 12 * 3600.0  # an idle or forgotten session ends with its KV entry
AUDIT_MAX_AGE = 365 * DAY
TRIAGE_HISTORY = 16  # revisions kept per alert: who changed what, readable with `nats kv history`


@dataclass
class WorkspaceStores:
    accounts: KeyValue
    sessions: KeyValue
    triage: KeyValue


async def provision_workspace(js: JetStreamContext, names: Names) -> WorkspaceStores:
    replicas = await deployed_replicas(js, names)
    common = dict(storage=StorageType.FILE, replicas=replicas)
    accounts = await js.create_key_value(KeyValueConfig(bucket=names.accounts_bucket, history=1, **common))
    sessions = await js.create_key_value(KeyValueConfig(bucket=names.sessions_bucket, history=1, ttl=SESSION_TTL, **common))
    triage = await js.create_key_value(KeyValueConfig(bucket=names.triage_bucket, history=TRIAGE_HISTORY, **common))
    await ensure_stream(js, StreamConfig(
        name=names.audit_stream, subjects=[names.audit("*")], retention=RetentionPolicy.LIMITS,
        max_age=AUDIT_MAX_AGE, storage=StorageType.FILE, num_replicas=replicas))
    return WorkspaceStores(accounts, sessions, triage)


async def audit(js: JetStreamContext, names: Names, user: str, action: str, target: str = "",
                remote: str = "", **detail: str) -> None:
    """Record one event durably (the publish is acknowledged by the stream before this returns)."""
    event = AuditEvent(time.time(), user, action, target, {k: str(v) for k, v in detail.items()}, remote)
    await jetstream_publish(js, names.audit(action), encode(event))
