"""Create (or update) the streams, buckets and shared consumers a Sluice prefix needs.

Idempotent. Provisioning is an admin step, separate from running: under auth (bus.auth) only
admin may create or change streams and the shared consumers (`sluice provision`, which `sluice
up` runs for you); every running component, the dispatcher included, calls this with
`create=False` and binds to what is there, waiting a while for it. Without auth (the explicit
`--no-auth` opt-out) every component provisions at start, so nothing depends on start order.

The shared consumers made here: one per submitter identity on its own queue (fairness: the
dispatcher serves them in turn), the children's, and each approved service's on the task stream
(`ensure_service_consumer`), whose filter is the operator's approval, not the service's word.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

import anyio
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from bus.auth import ADMIN, SUBMITTER, WEB, identity_of
from bus import capacity
from bus.capacity import operator_limits, operator_max_bytes
from bus.codec import encode
from bus.connect import close, connect
from bus.subjects import Names
from schemas.limits import Limits
from schemas.messages import ApprovedService
from schemas.taxonomy import matching_types, taxonomy

T = TypeVar("T")
log = logging.getLogger("sluice.bus")
DAY = 24 * 3600.0
MAX_MSG = 8 * 1024 * 1024
REPLICAS_ENV = "SLUICE_REPLICAS"
# How long and how much of the history (every summary) the summary stream keeps; the web fronts'
# search indexes are built from it. Days (0: forever) and bytes (0: no bound; the oldest go first).
SUMMARY_MAX_AGE_ENV = "SLUICE_SUMMARY_MAX_AGE_DAYS"
SUMMARY_MAX_BYTES_ENV = "SLUICE_SUMMARY_MAX_BYTES"
SUMMARY_MAX_AGE_DAYS = 7


def summary_retention() -> tuple[float, int]:
    """(max_age seconds, max_bytes) for the summary stream, from the environment; 0 and -1 mean unbounded."""
    def number(name: str, default: str) -> float:
        value = os.environ.get(name, default)
        try:
            parsed = float(value)
        except ValueError:
            parsed = -1
        if parsed < 0:
            raise ValueError(f"${name}={value!r}: expected a number, 0 or more (0: no limit)")
        return parsed

    days = number(SUMMARY_MAX_AGE_ENV, str(SUMMARY_MAX_AGE_DAYS))
    size = int(number(SUMMARY_MAX_BYTES_ENV, "0"))
    return days * DAY, size or -1


DEFAULT_SUBMITTERS = (identity_of(SUBMITTER), identity_of(WEB))  # identities with a queue of their own from the start


@dataclass
class Stores:
    cache: KeyValue
    registry: KeyValue
    files: ObjectStore
    safelist: KeyValue
    rules: KeyValue
    rulesets: ObjectStore
    approvals: KeyValue
    quotas: KeyValue


def _kv_buckets(names: Names) -> list[str]:
    return [names.cache_bucket, names.registry_bucket, names.safelist_bucket, names.rules_bucket, names.approvals_bucket,
            names.quota_bucket]


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or update one that exists to `config`; except its retention, which a
    stream cannot change: one made by an earlier release keeps its own (see `finish_reply_stream`)."""
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != 10058:  # "stream name already in use with a different configuration"
            raise
        existing = (await js.stream_info(config.name)).config.retention
        await js.update_stream(replace(config, retention=existing))


async def ensure_bucket(js: JetStreamContext, stream: str, resize: int | None, create: Callable[[], Awaitable[T]],
                        bind: Callable[[], Awaitable[T]]) -> T:
    """A KV bucket or object store made by nats-py's `create`, which refuses a stream that exists
    with another configuration: an existing one is bound as it is, or first given `max_bytes`
    `resize` by update if not None (the operator's size, bus.capacity.operator_max_bytes)."""
    try:
        return await create()
    except BadRequestError as exc:
        if exc.err_code != 10058:
            raise
    if resize is not None:
        config = (await js.stream_info(stream)).config
        config.max_bytes = resize
        await js.update_stream(config)
    return await bind()


class NotProvisioned(RuntimeError):
    """The streams are not there, and this identity may not create them."""


async def _bind(js: JetStreamContext, names: Names, wait: float) -> Stores:
    """The stores, once every stream exists. All looked up at once: one after another, the 23
    round trips were a good part of each of the one-box's twenty components' start (under its
    auth, all but the provisioning one bind)."""
    streams = [names.submit_stream, names.task_stream, names.reply_stream, names.summary_stream, names.dlq_stream]
    streams += [f"KV_{b}" for b in _kv_buckets(names)]
    streams += [f"OBJ_{b}" for b in (names.file_bucket, names.ruleset_store)]
    missing: set[str] = set(streams)

    async def present(stream: str) -> None:
        while True:
            try:
                await js.stream_info(stream)
                missing.discard(stream)
                return
            except (NotFoundError, TimeoutError):  # not there yet, or not ours to see (no answer)
                await anyio.sleep(0.2)

    try:
        with anyio.fail_after(wait):
            async with anyio.create_task_group() as tg:
                for stream in streams:
                    tg.start_soon(present, stream)
    except TimeoutError:
        raise NotProvisioned(
            f"stream {sorted(missing)[0]} does not exist after {wait:g} s, and this identity may not create it: start the "
            "provisioning step (`sluice provision` with admin credentials; `sluice up` runs it)") from None
    handles: dict[str, object] = {}

    async def open_kv(bucket: str) -> None:
        handles[bucket] = await js.key_value(bucket)

    async def open_objects(bucket: str) -> None:
        handles[bucket] = await js.object_store(bucket)

    async with anyio.create_task_group() as tg:
        for bucket in _kv_buckets(names):
            tg.start_soon(open_kv, bucket)
        for bucket in (names.file_bucket, names.ruleset_store):
            tg.start_soon(open_objects, bucket)
    return Stores(*(handles[b] for b in (names.cache_bucket, names.registry_bucket, names.file_bucket,
                                         names.safelist_bucket, names.rules_bucket, names.ruleset_store,
                                         names.approvals_bucket, names.quota_bucket)))


async def deployed_replicas(js: JetStreamContext, names: Names) -> int:
    """How many copies this Sluice keeps of everything: as its submit stream already has them.

    Every component provisions at start, so one started without being told must follow the
    deployment rather than scale an R3 cluster down to R1; a new deployment takes
    $SLUICE_REPLICAS (3 on a 3-node cluster), else 1.
    """
    try:
        info = await js.stream_info(names.submit_stream)
    except NotFoundError:
        wanted = os.environ.get(REPLICAS_ENV, "1")
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"${REPLICAS_ENV}={wanted!r}: expected a positive number of replicas") from None
        return int(wanted)
    return info.config.num_replicas or 1


async def provision(js: JetStreamContext, names: Names, replicas: int | None = None, *, create: bool = True,
                    wait: float = 30.0, submitters: Iterable[str] = DEFAULT_SUBMITTERS) -> Stores:
    """The prefix's stores, created or updated first when `create`, else bound once they exist (`wait` s).

    `replicas`: copies of every stream, bucket and consumer; None follows `deployed_replicas`.
    `submitters`: the identities that get a submission queue (bus.auth.identity_of).
    """
    if not create:
        return await _bind(js, names, wait)
    replicas = replicas or await deployed_replicas(js, names)
    common = dict(storage=StorageType.FILE, num_replicas=replicas, max_msg_size=MAX_MSG)
    # Each store's max_bytes is the operator's (bus.capacity), the defaults fitted to the
    # account's storage per copy. A full queue or bucket refuses new messages (discard new: a
    # submission or task is never dropped to make room), the dead letters drop their oldest.
    account_file = (await js.account_info()).limits.max_storage
    stream_max_bytes = partial(capacity.stream_max_bytes, account_file=account_file, replicas=replicas)
    await ensure_stream(js, StreamConfig(
        # Work queue: each submission is taken by one dispatcher and removed once it is done.
        name=names.submit_stream, subjects=[*names.submit_roots, names.submit_child],
        retention=RetentionPolicy.WORK_QUEUE, duplicate_window=300.0, max_bytes=stream_max_bytes("SUBMIT"),
        discard=DiscardPolicy.NEW, **common))
    await ensure_stream(js, StreamConfig(
        # Interest: every service whose filter matches gets its own copy of a task.
        name=names.task_stream, subjects=[f"{names.prefix}.task.>"],
        retention=RetentionPolicy.INTEREST, max_age=DAY, max_bytes=stream_max_bytes("TASKS"),
        discard=DiscardPolicy.NEW, **common))
    await ensure_stream(js, StreamConfig(
        # Interest, one consumer per dispatcher (disjoint filters): results and node reports, kept
        # until their dispatcher has them, and not at all for a dispatcher that is gone.
        name=names.reply_stream, subjects=[f"{names.prefix}.reply.>"],
        retention=RetentionPolicy.INTEREST, max_age=DAY, duplicate_window=300.0,
        max_bytes=stream_max_bytes("REPLIES"), discard=DiscardPolicy.NEW, **common))
    await ensure_stream(js, StreamConfig(
        # Limits: summaries stay readable (`sluice result SID`, the web fronts' history) for a week by default.
        name=names.summary_stream, subjects=[names.summaries, names.alerts],
        retention=RetentionPolicy.LIMITS, max_age=summary_retention()[0], max_bytes=summary_retention()[1],
        discard=DiscardPolicy.OLD, duplicate_window=300.0,
        max_msgs_per_subject=1, **common))
    await ensure_stream(js, StreamConfig(
        name=names.dlq_stream, subjects=[f"{names.prefix}.dlq.>"],
        retention=RetentionPolicy.LIMITS, max_age=7 * DAY, max_bytes=stream_max_bytes("DLQ"),
        discard=DiscardPolicy.OLD, **common))
    # Each submitter's queue hands out at most its in-flight quota at once, over all dispatchers
    # together: the server holds the quota, not each dispatcher for itself (dispatcher.quota).
    in_flight = operator_limits().trees_per_submitter
    queues = [(names.root_consumer(who), names.submit_root_for(who), in_flight) for who in dict.fromkeys(submitters)]
    for durable, subject, pending in (*queues, (names.CHILD_CONSUMER, names.submit_child, 10_000)):
        await js.add_consumer(names.submit_stream, ConsumerConfig(
            durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT,
            # Dispatchers heartbeat (in_progress) while they work, so a short ack_wait only
            # means a crashed dispatcher's submissions come back quickly.
            ack_wait=30.0, max_deliver=5, max_ack_pending=pending))
    # A new bucket gets its size; an existing one keeps it unless the operator set one (bus.capacity).
    def kv(bucket: str, store: str = "KV", **config) -> Awaitable[KeyValue]:
        size = stream_max_bytes(store)
        return ensure_bucket(js, f"KV_{bucket}", operator_max_bytes(store), lambda: js.create_key_value(KeyValueConfig(
            bucket=bucket, storage=StorageType.FILE, replicas=replicas, max_bytes=size, **config)),
            lambda: js.key_value(bucket))

    def objects(bucket: str, store: str, **config) -> Awaitable[ObjectStore]:
        size = stream_max_bytes(store)
        return ensure_bucket(js, f"OBJ_{bucket}", operator_max_bytes(store), lambda: js.create_object_store(
            bucket, ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas, max_bytes=size, **config)),
            lambda: js.object_store(bucket))

    cache = await kv(names.cache_bucket, "CACHE", history=1, ttl=2 * DAY)
    registry = await kv(names.registry_bucket, history=1)
    files = await objects(names.file_bucket, "FILES", ttl=7 * DAY)
    safelist = await kv(names.safelist_bucket, history=1)
    rules = await kv(names.rules_bucket, history=5)
    rulesets = await objects(names.ruleset_store, "RULESETS")
    approvals = await kv(names.approvals_bucket, history=5)
    # Counts per identity and window (dispatcher.quota); a window is at most an hour long.
    quotas = await kv(names.quota_bucket, history=1, ttl=2 * 3600.0)
    return Stores(cache, registry, files, safelist, rules, rulesets, approvals, quotas)


async def finish_reply_stream(js: JetStreamContext, names: Names) -> bool:
    """Delete a work-queue reply stream (an earlier release's) so that provisioning makes it again
    as an interest stream; whether it did.

    A dispatcher acknowledges the replies on an interest stream several at a time (one ack for
    the run it has routed: dispatcher.replies.ReplyAcks), where a work queue wants each one acked,
    and each ack emptied the stream's last block, which nats-server then replaced with a new
    file: a fifth of the server's CPU per file (docs/performance.md). Retention cannot be
    updated, so the stream is deleted and made again: only while no dispatcher is attached to
    it and it holds nothing, and only once no component of an earlier release will start again
    (each re-provisions it as a work queue at start, and would fail on an interest stream).
    """
    try:
        info = await js.stream_info(names.reply_stream)
    except NotFoundError:
        return False
    if info.config.retention != RetentionPolicy.WORK_QUEUE or info.state.consumer_count or info.state.messages:
        return False
    await js.delete_stream(names.reply_stream)
    return True


def replies_in_batches(retention: RetentionPolicy | str | None) -> bool:
    """Whether a reply stream of this retention lets its dispatcher ack replies several at a time
    (nats-py reads it as a plain string; the enum is a str and compares equal to it)."""
    return retention == RetentionPolicy.INTEREST


def service_filters(names: Names, approved: ApprovedService) -> list[str]:
    """The task subjects of the approved stage and types: one per type, or the whole stage."""
    types = matching_types(approved.accepts, approved.rejects, approved.kinds)
    if not types:
        raise ValueError(f"{approved.name}: accepts {approved.accepts!r} / rejects {approved.rejects!r} match no known file type")
    if len(types) == len(taxonomy().types):
        return [names.task_filter(approved.stage)]
    return [names.task_filter(approved.stage, t) for t in types]


async def ensure_service_consumer(js: JetStreamContext, names: Names, approved: ApprovedService) -> bool:
    """The service's durable consumer on the task stream, its filters the approved stage and types.

    All instances of a service bind to it (that is how instances share work). Made by the
    privileged side: under auth a service identity may consume it but not create or change it.

    Its tasks are not acknowledged (`AckPolicy.NONE`: handed out is done, for the server): the
    dispatcher retries a task with no result once its time is up (dispatcher/queues.py), which
    came before the server's redelivery at `ack_wait` anyway, and a task of a dispatcher that
    died is redone by the next one with tasks of its own. So a task's ack was one message per
    service and file that nothing needed. A consumer made by an earlier release acknowledges
    (a consumer's ack policy cannot change) and keeps doing so. Returns whether it acknowledges.
    """
    name = names.service_consumer(approved.name)
    acked = await consumer_acks(js, names.task_stream, name)
    await js.add_consumer(names.task_stream, ConsumerConfig(
        durable_name=name, filter_subjects=service_filters(names, approved), deliver_policy=DeliverPolicy.ALL,
        **(dict(ack_policy=AckPolicy.EXPLICIT, ack_wait=approved.timeout + Limits.timeout_grace + 5, max_deliver=3,
                max_ack_pending=10_000) if acked else dict(ack_policy=AckPolicy.NONE)),
        # On an interest stream a consumer nobody reads keeps every matching task alive;
        # a service gone for an hour gives its consumer up (its next approval makes it again).
        inactive_threshold=3600.0,
    ))
    return acked


async def consumer_acks(js: JetStreamContext, stream: str, consumer: str) -> bool:
    """Whether `consumer` exists and wants each message acknowledged."""
    try:
        return acknowledges(await js.consumer_info(stream, consumer))
    except NotFoundError:
        return False


def acknowledges(info: ConsumerInfo) -> bool:
    """Whether the consumer `info` describes wants each message acknowledged."""
    return info.config.ack_policy != AckPolicy.NONE  # a plain string from nats-py; the str enum equals it


async def approve(js: JetStreamContext, names: Names, stores: Stores, approved: ApprovedService) -> bool:
    """Record what the operator allows `approved.name` to be, and make its consumer to match;
    whether that consumer wants its tasks acknowledged (ensure_service_consumer)."""
    acked = await ensure_service_consumer(js, names, approved)
    await stores.approvals.put(approved.name, encode(approved))
    return acked


NO_PLACEMENT = 10005  # "no suitable peers for placement": the meta leader does not see enough peers online
PLACEMENT_WAIT = 30.0  # seconds a cluster that has just started may take to see all of its peers


async def once_placed(step: Callable[[], Awaitable[T]], wait: float = PLACEMENT_WAIT) -> T:
    """`step()`, tried again while the server cannot place replicas yet. A cluster whose every
    node answers a full /healthz can still have a meta leader that counts a peer offline for a
    moment (`sluice up --cluster 3` failed at start so, now and then, on its first R3 stream)."""
    deadline = anyio.current_time() + wait
    while True:
        try:
            return await step()
        except BadRequestError as exc:
            if exc.err_code != NO_PLACEMENT or anyio.current_time() >= deadline:
                raise
            log.info("replicas cannot be placed yet (%s); trying again", exc.description)
            await anyio.sleep(0.25)


async def as_admin(url: str, step: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """One provisioning `step` on an admin connection of its own, e.g. before any component of a
    new cluster or a one-box starts."""
    nc = await connect(url, name="sluice-provision", role=ADMIN)
    try:
        return await step(nc.jetstream())
    finally:
        await close(nc)
