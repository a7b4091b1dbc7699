"""Who may do what on NATS: one identity per component, its permissions as data, and the
nats-server authorization config and credentials made from them.

Identities are nkeys (ed25519 key pairs), not user/password: the server config holds only
public keys, so it can be shared, mounted and committed without care; no secret crosses the
wire (the client signs the server's nonce), which matters where NATS runs without TLS; and
nothing costs a bcrypt round per (re)connect. A component's credentials file is its nkey seed,
as `nats --nkey` reads it.

Every identity gets its own inbox prefix, derived from its public key, and may subscribe
only below it: with the default `_INBOX.>` any identity could read every other's API replies
and pulled messages. Publishing is allow-listed per role (deny by default):

* admin: everything. Provisioning is its job alone (`sluice provision`, which `sluice up`
  runs): streams, buckets, the shared consumers and their limits, and service approvals.
* dispatcher: binds to what admin provisioned (stream info only: it can neither create, update,
  purge nor delete a stream), takes submissions from every submitter's queue, publishes tasks,
  child submissions, summaries, alerts and its own node reports, reads the registry and the
  approvals, reads/writes the cache and the quota counts, names checked uploads in the file store (bus.blobs), and
  dead-letters what consumers give up on (bus.exhausted: it reads those messages and removes a
  stuck submission from its work queue).
* service:NAME: consumes only its own durable consumer on the task stream (which admin made
  with the approved filter: it cannot create or change it), publishes only its own results
  (`...reply.<dispatcher>.result.NAME`) and dead letters, uploads extracted files under its own
  upload token, heartbeats its own registry keys, reads rules and the safelist.
* submitter, web, submitter:NAME: each publishes root submissions on its own subject only
  (`submit.root.<identity>`: who submitted is known from the subject, which the server checks),
  uploads under its own token, reads the file store and summaries. Submitters create no
  JetStream consumer at all (summaries come on a plain subscription, objects by direct reads),
  so none can use up the account's consumers; the web front (an operator's process) may, for
  its history index and downloads.
* updater: publishes rule sets (rules KV and rule-set store).

Nobody but admin and the dispatcher writes an object's meta message in the file store, so
nobody else can give bytes a name (bus.blobs); an upload's chunks go under the writer's own
token, so no one can add to another's upload either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nkeys

from bus.capacity import AccountLimits, account_limits
from bus.exhausted import advisory_subject
from bus.subjects import Names

ADMIN = "admin"
DISPATCHER = "dispatcher"
SUBMITTER = "submitter"
UPDATER = "updater"
WEB = "web"
SERVICE = "service:"
PROVISIONERS = frozenset({ADMIN})  # may create streams and shared consumers; the others only bind
SUBMITTER_PREFIX = "submitter:"
ACCOUNT = "SLUICE"
CONF_NAME = "auth.conf"
API = "$JS.API"


def service_role(name: str) -> str:
    return f"{SERVICE}{name}"


def creds_file_name(role: str) -> str:
    """`service:pe` -> `service-pe.nk` (a role is one path component, never a path)."""
    name = role.replace(":", "-", 1)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"role {role!r} cannot name a credentials file")
    return f"{name}.nk"


def submitter_role(name: str) -> str:
    return f"{SUBMITTER_PREFIX}{name}"


def identity_of(role: str) -> str:
    """A role as one subject token: its submission subject, its root queue and its upload token
    (`service:pe` -> `service-pe`, `submitter:alice` -> `submitter-alice`)."""
    return role.replace(":", "-", 1)


def role_of(file_name: str) -> str | None:
    """The role a credentials file is for (the inverse of `creds_file_name`), or None."""
    if not file_name.endswith(".nk"):
        return None
    stem = file_name[:-3]
    for kind, make in (("service-", service_role), ("submitter-", submitter_role)):
        if stem.startswith(kind):
            return make(stem[len(kind):])
    return stem if stem in (ADMIN, DISPATCHER, SUBMITTER, UPDATER, WEB) else None


def is_submitter(role: str) -> bool:
    return role in (SUBMITTER, WEB) or (role.startswith(SUBMITTER_PREFIX) and len(role) > len(SUBMITTER_PREFIX))


def inbox_prefix(public_key: str) -> str:
    """The identity's own inbox space; distinct from `_INBOX.` so a client left on the default fails loudly."""
    return f"_INBOX_{public_key}"


def public_key(seed: bytes) -> str:
    pair = nkeys.from_seed(bytearray(seed.strip()))
    try:
        return pair.public_key.decode()
    finally:
        pair.wipe()


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


# -- building blocks: the JetStream API subjects one kind of use needs ----------------------------

def _stream_info(*streams: str) -> list[str]:
    return [f"{API}.STREAM.INFO.{s}" for s in streams]


def _read_stream(stream: str) -> list[str]:
    return [*_stream_info(stream), f"{API}.STREAM.MSG.GET.{stream}", f"{API}.DIRECT.GET.{stream}.>"]


def _create_consumer(stream: str, consumer: str) -> list[str]:
    return [f"{API}.CONSUMER.CREATE.{stream}.{consumer}", f"{API}.CONSUMER.CREATE.{stream}.{consumer}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}"]


def _consume(stream: str, consumer: str) -> list[str]:
    return [f"{API}.CONSUMER.INFO.{stream}.{consumer}", f"{API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
            f"$JS.ACK.{stream}.{consumer}.>"]


def _watch(stream: str) -> list[str]:
    """An ordered (ephemeral push) consumer, with flow control. nats-py creates it without a
    name or filter token in the API subject, so the filter is not enforceable: the whole stream."""
    return [f"{API}.CONSUMER.CREATE.{stream}", f"{API}.CONSUMER.INFO.{stream}.*", f"{API}.CONSUMER.DELETE.{stream}.*",
            f"$JS.FC.{stream}.>"]


def _kv_read(bucket: str) -> list[str]:
    return _read_stream(f"KV_{bucket}")


def _kv_watch(bucket: str) -> list[str]:
    return [*_kv_read(bucket), *_watch(f"KV_{bucket}")]


def _objects_read(bucket: str) -> list[str]:
    stream = f"OBJ_{bucket}"
    # bus.blobs reads chunks through an ephemeral pull consumer filtered to one object's chunks.
    return [*_read_stream(stream), f"{API}.CONSUMER.CREATE.{stream}.*.$O.{bucket}.C.>",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.*"]


def _objects_write(bucket: str) -> list[str]:
    """Write and name objects: the trusted writers only (the dispatcher, the updater for rule sets).
    No purge: nats-py purges only when re-putting an existing name, which bus.blobs avoids."""
    return [*_objects_read(bucket), f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"]


def _objects_upload(bucket: str, role: str) -> list[str]:
    """Upload chunks under the role's own token, name nothing (bus.blobs: the dispatcher promotes)."""
    return [*_objects_read(bucket), *_upload(bucket, role)]


def _upload(bucket: str, role: str) -> list[str]:
    return [f"$O.{bucket}.C.{identity_of(role)}.>"]


def _all_streams(n: Names) -> list[str]:
    kv = [f"KV_{b}" for b in (n.cache_bucket, n.registry_bucket, n.safelist_bucket, n.rules_bucket, n.approvals_bucket,
                              n.quota_bucket)]
    objects = [f"OBJ_{b}" for b in (n.file_bucket, n.ruleset_store)]
    return [n.submit_stream, n.task_stream, n.reply_stream, n.summary_stream, n.dlq_stream, *kv, *objects]


# -- the roles ------------------------------------------------------------------------------------

def _dispatcher(n: Names) -> list[str]:
    own_replies = "*"  # dispatcher-<id>: a consumer name is one token, so no prefix match; the stream is theirs
    queues = "*"  # every submitter identity's queue (dispatch-root-<identity>) and the children's
    return [
        *_stream_info(*_all_streams(n)),  # to bind what admin provisioned; no CREATE, UPDATE, PURGE or DELETE
        *_consume(n.submit_stream, queues), f"{API}.CONSUMER.LIST.{n.submit_stream}",
        f"{API}.CONSUMER.INFO.{n.task_stream}.*",  # to check a max-deliveries advisory (bus.exhausted)
        *_create_consumer(n.reply_stream, own_replies), *_consume(n.reply_stream, own_replies),
        f"{API}.CONSUMER.DELETE.{n.reply_stream}.{own_replies}",
        f"{n.prefix}.task.>", n.submit_child, n.summaries, n.alerts, n.reply("*", "node"),
        n.dead_letter(">"),  # its own letters, and those of the consumers that gave up (bus.exhausted)
        *[f"{API}.STREAM.MSG.GET.{s}" for s in (n.submit_stream, n.task_stream)],
        f"{API}.STREAM.MSG.DELETE.{n.submit_stream}",
        *_kv_watch(n.registry_bucket), *_kv_read(n.approvals_bucket), *_kv_read(n.cache_bucket), f"$KV.{n.cache_bucket}.>",
        *_kv_read(n.quota_bucket), f"$KV.{n.quota_bucket}.>",  # the shared quota counts (dispatcher.quota)
        *_objects_write(n.file_bucket),
    ]


def _service(n: Names, name: str) -> list[str]:
    consumer = n.service_consumer(name)
    return [
        *_stream_info(*_all_streams(n)),  # to bind what the dispatcher provisioned
        *_consume(n.task_stream, consumer),  # not create: admin makes it with the approved filter
        n.result_reply(n.reply("*", "result"), name), n.dead_letter(consumer),
        f"$KV.{n.registry_bucket}.{name}.>",
        *_objects_upload(n.file_bucket, service_role(name)),
        *_kv_read(n.rules_bucket), *_objects_read(n.ruleset_store),
        *_kv_watch(n.safelist_bucket),  # the safelist service mirrors it (services/safelist/store.py)
    ]


def _submitter(n: Names, role: str) -> list[str]:
    """No JetStream consumer of any kind: a submitter's client reads summaries on a plain
    subscription and by subject, and objects chunk by chunk (bus.objread), so that no
    submitter can create consumers by the hundred and use up the account's for everyone."""
    return [
        *_stream_info(*_all_streams(n)),
        n.submit_root_for(identity_of(role)), n.upload_notice(identity_of(role)),
        *_read_stream(f"OBJ_{n.file_bucket}"), *_upload(n.file_bucket, role),
        *_read_stream(n.summary_stream),
    ]


def _web(n: Names) -> list[str]:
    """A submitter that also shows which services are alive and how many tasks wait for each, and
    keeps the shared workspace: it reads and writes the accounts, sessions, triage, rate-limit and
    pending buckets and the audit stream (sluice.web.stores), which nothing else in the mesh uses.
    It does not create or change them: provisioning (admin) does."""
    workspace_kv = (n.accounts_bucket, n.sessions_bucket, n.triage_bucket, n.ratelimit_bucket, n.pending_bucket)
    workspace = [f"KV_{b}" for b in workspace_kv] + [n.audit_stream]
    return [*_submitter(n, WEB), *_objects_read(n.file_bucket), *_watch(n.summary_stream),  # its history index follows the stream
            *_kv_read(n.registry_bucket), f"{API}.CONSUMER.LIST.{n.task_stream}",
            *_stream_info(*workspace),
            *[s for b in workspace_kv for s in (*_kv_watch(b), f"$KV.{b}.>")],
            *_read_stream(n.audit_stream), *_watch(n.audit_stream), n.audit("*")]


def _updater(n: Names) -> list[str]:
    return [*_stream_info(*_all_streams(n)), *_kv_read(n.rules_bucket), f"$KV.{n.rules_bucket}.>",
            *_objects_write(n.ruleset_store)]


def permissions(role: str, names: Names, public: str) -> Permissions:
    """What `role` may publish and subscribe to on `names`'s prefix, for the key `public`."""
    if role == ADMIN:
        return Permissions((">",), (">",))
    if role == DISPATCHER:
        publish = _dispatcher(names)
    elif role == WEB:
        publish = _web(names)
    elif is_submitter(role):
        publish = _submitter(names, role)
    elif role == UPDATER:
        publish = _updater(names)
    elif role.startswith(SERVICE) and role[len(SERVICE):]:
        publish = _service(names, role[len(SERVICE):])
    else:
        raise ValueError(f"unknown role {role!r}: admin, dispatcher, submitter, submitter:NAME, updater, web or service:NAME")
    subscribe = [f"{inbox_prefix(public)}.>"]
    if is_submitter(role):  # the verdicts as they are published (sluice.client); they may read them all in the stream anyway
        subscribe += [names.summaries, names.alerts]
    if role == DISPATCHER:
        subscribe += [*(advisory_subject(s) for s in (names.submit_stream, names.task_stream)), names.upload_notices]
    return Permissions(tuple(dict.fromkeys(publish)), tuple(subscribe))


# -- files ----------------------------------------------------------------------------------------

def roles_for(services: Iterable[str], submitters: Iterable[str] = ()) -> list[str]:
    return [ADMIN, DISPATCHER, SUBMITTER, UPDATER, WEB, *(service_role(s) for s in services),
            *(submitter_role(s) for s in submitters)]


def submitter_identities(roles: Iterable[str]) -> list[str]:
    """The submission queues a set of roles needs: one per submitter identity."""
    return [identity_of(r) for r in roles if is_submitter(r)]


def server_config(names: Names, keys: dict[str, str], limits: AccountLimits) -> str:
    """The `accounts` block for nats-server (an include file): the account's JetStream limits
    (bus.capacity), one user per role, by public key."""
    q = json.dumps
    lines = [f"# generated by `sluice auth init` for prefix {q(names.prefix)}; only public keys here",
             "accounts {", f"  {ACCOUNT} {{", f"    {limits.config()}", "    users: ["]
    for role, public in keys.items():
        perms = permissions(role, names, public)
        lines += [f"      # {role}", f"      {{nkey: {q(public)}, permissions: {{",
                  "        publish: {allow: [", *(f"          {q(s)}" for s in perms.publish), "        ]},",
                  f"        subscribe: {{allow: {q(list(perms.subscribe))}}}}}}}"]
    lines += ["    ]", "  }", "}", ""]
    return "\n".join(lines)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def init(out: Path, names: Names, services: Iterable[str], submitters: Iterable[str] = (),
         limits: AccountLimits | None = None) -> dict[str, Path]:
    """Write one seed per role and `auth.conf` naming them all; returns role -> credentials file.
    `limits`: the account's JetStream limits (default: the operator's settings, bus.capacity).

    Seeds already in `out` are kept, and their roles stay in the config: re-running (or `sluice
    up --auth`) adds roles without invalidating credentials already deployed.
    """
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    files: dict[str, Path] = {}
    keys: dict[str, str] = {}
    existing = sorted(role for role in map(role_of, os.listdir(out)) if role is not None)
    for role in dict.fromkeys([*roles_for(services, submitters), *existing]):
        path = out / creds_file_name(role)
        if not path.exists():
            # A user seed: 32 random bytes, nkey-encoded with the user prefix ("SU...").
            _write_private(path, nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER) + b"\n")
        keys[role] = public_key(path.read_bytes())
        files[role] = path
    (out / CONF_NAME).write_text(server_config(names, keys, limits or account_limits()))
    return files

