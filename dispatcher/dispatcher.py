"""The dispatcher process: takes submissions and children, owns trees, publishes verdicts.

Durability: a submission's message stays unacknowledged (kept alive with `in_progress`) until
its summary is published, so if this process dies another dispatcher gets it back and redoes
the tree cheaply from the result cache. Children of the dead attempt are ignored by attempt
number. On a clean stop, unfinished submissions are handed back within seconds (a delayed
nak), not after ack_wait.

Fairness: each submitter identity has its own queue (`submit.root.<identity>`, which only that
identity may publish to) and its own consumer, and each queue is served by its own pull loop
with at most `OperatorLimits.trees_per_submitter` trees at once (over all dispatchers: the
queue's `max_ack_pending`): one identity's flood waits in its own queue and never in front of
another's submission; and while a lighter identity is present, the flood starts no new tree
(`fairshare.FairShare`) so it does not crowd the process or the services' queues either.
Queues provisioned later (a new identity) are picked up within `ROOT_QUEUE_POLL` seconds. Each
identity is also held to `submissions_per_minute`, counted with every other dispatcher
(`quota.SharedQuota`); what is over it is answered at once with a summary saying so.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig

from bus import metrics
from bus.auth import DISPATCHER
from bus.blobs import BlobStore
from bus.capacity import operator_limits
from bus.codec import BadMessage, encode
from bus.connect import provisions
from bus.deadletter import dead_letter, decode_or_reject
from bus.exhausted import watch_exhausted
from bus.logcontext import CURRENT_SID
from bus.kv import kv_keys
from bus.provision import provision, replies_in_batches
from bus.publish import publish
from bus.subjects import Names
from bus.worker import pull_loop
from dispatcher.analysis import Mesh
from dispatcher.cache import ResultCache
from dispatcher.directory import ServiceDirectory
from dispatcher.early import EarlyChecks
from dispatcher.fairshare import FairShare
from dispatcher.identifier import Identifier
from dispatcher.lanes import Lanes
from dispatcher.policy import clamp_params
from dispatcher.quota import SharedQuota
from dispatcher.replies import ReplyAcks, ReplyRouter
from dispatcher.scoring import summarise
from dispatcher.tree import Tree, analyse_child
from schemas.limits import Limits, OperatorLimits
from schemas.messages import SID, ChildSubmission, FileNode, SampleKind, Submission, policy_error
from schemas.samples import SampleError, ref_key, sample_value

log = logging.getLogger("sluice.dispatcher")

KEEPALIVE = 10.0  # seconds between in_progress signals; well inside the 30 s ack_wait
HANDBACK_DELAY = 1.5  # seconds before a handed-back submission is offered again
# Submissions (roots) analysed at once; more wait in the stream. 256, not 64: a tree holds its
# slot from submission to verdict, so with 64 a loaded 2-core box ran out of slots, not CPU
# (bench/mesh.py throughput 317-383 files/s against 528-919 with 256, alternated). Queued tasks
# no longer time out at a busy service (dispatcher/queues.py), and fair shares still start a
# lighter identity's trees first (bench/fairness.py: loaded/idle p50 0.80x).
MAX_TREES = 256
MAX_CHILDREN = 128  # extracted files analysed at once, on their own consumer so parents never starve them
ROOT_QUEUE_POLL = 5.0
REPLIES_PENDING = 10_000  # replies pushed to this process and not yet acknowledged  # seconds between looks for submitter queues provisioned since


def check_submission(sub: Submission) -> None:
    if not SID.match(sub.sid):
        raise BadMessage(f"sid {sub.sid[:80]!r} must be 1-64 letters, digits, '_' or '-'")
    if not sub.files:
        raise BadMessage("a submission needs at least one file")
    for number, ref in enumerate(sub.files, 1):
        if ref.size > Limits.max_file_size:  # as the client checks; a publisher that skips the client is held to it too
            raise BadMessage(f"{ref.name or ref.sha256}: {ref.size} bytes is over the {Limits.max_file_size}-byte limit")
        if ref.kind is not SampleKind.FILE:
            try:
                sample_value(ref)
            except SampleError as exc:
                raise BadMessage(f"sample {number}: {exc}") from None


class HeldMessages:
    """The messages this dispatcher is working on, all kept alive by one loop (not a task each)."""

    def __init__(self) -> None:
        self._held: dict[int, Msg] = {}

    async def keep_alive(self) -> None:
        while True:
            await anyio.sleep(KEEPALIVE)
            for msg in list(self._held.values()):
                try:
                    await msg.in_progress()
                except Exception as exc:  # noqa: BLE001 - a missed beat only risks a redelivery
                    log.warning("in_progress failed: %s", exc)

    async def hold(self, msg: Msg, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` while keeping `msg` alive; if cut off, hand the message back at once."""
        self._held[id(msg)] = msg
        try:
            await work()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                log.info("handing back %s (stopped before it finished)", msg.subject)
                # Not at once: other dispatchers may be stopping too (a one-box's workers stop
                # together), and one that has not unsubscribed yet would only take it to hand it back.
                await msg.nak(delay=HANDBACK_DELAY)
            raise
        finally:
            del self._held[id(msg)]


class Dispatcher:
    def __init__(
        self,
        nc: Client,
        names: Names,
        *,
        dispatcher_id: str | None = None,
        alert_threshold: int = Limits.alert_threshold,
        max_trees: int = MAX_TREES,
        max_children: int = MAX_CHILDREN,
        tree_timeout: float = Limits.tree_timeout,
        grace: float = Limits.timeout_grace,
        drain_grace: float = 5.0,
        limits: OperatorLimits | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.names = names
        self.id = dispatcher_id or uuid.uuid4().hex[:12]
        self.alert_threshold = alert_threshold
        self.max_trees = max_trees
        self.max_children = max_children
        self.tree_timeout = tree_timeout
        self.grace = grace
        self.drain_grace = drain_grace
        self.limits = limits or operator_limits()
        self.fair = FairShare(min(max_trees, self.limits.trees_per_submitter))
        self.ready = anyio.Event()
        self.directory: ServiceDirectory | None = None
        self.completed = 0
        self.held = HeldMessages()
        self.lanes = lanes or Lanes()  # services in this process, handed their tasks directly

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        await dead_letter(self.js, self.names, msg, reason, origin="dispatcher")

    async def run(self, stop: anyio.Event) -> None:
        stores = await provision(self.js, self.names, create=provisions(DISPATCHER))
        self.directory = ServiceDirectory(stores.registry, partial(kv_keys, self.js, self.names.registry_bucket),
                                          (stores.approvals, partial(kv_keys, self.js, self.names.approvals_bucket)))
        router = ReplyRouter(self._dead_letter)
        blobs = BlobStore(self.js, stores.files, self.names.file_bucket)
        # Quotas counted with every other dispatcher of the prefix (dispatcher.quota).
        self.quota = SharedQuota(stores.quotas, "submissions", self.limits.submissions_per_minute, 60.0)
        identifier = Identifier(blobs, stored=SharedQuota(stores.quotas, "stored", self.limits.stored_bytes_per_hour, 3600.0))
        self.mesh = Mesh(self.js, self.names, blobs, ResultCache(stores.cache, self.nc, self.names.cache_bucket),
                         self.directory, router, self.id, self.grace, identifier, self.lanes)
        reply_sub = await self._subscribe_replies(router)
        exhausted = []
        try:
            exhausted = await watch_exhausted(self.nc, self.js, self.names)
            await self.directory.refresh()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.directory.run)
                tg.start_soon(self.held.keep_alive)
                await tg.start(EarlyChecks(self.nc, self.names, identifier, self.limits.max_file_size).serve)
                self.ready.set()
                log.info("dispatcher %s ready on prefix %s", self.id, self.names.prefix)
                async with anyio.create_task_group() as work:
                    served: set[str] = set()
                    await self._serve_new_queues(work, served, stop)
                    work.start_soon(self._watch_queues, work, served, stop)
                    work.start_soon(lambda: pull_loop(self.js, self.names.submit_stream, self.names.CHILD_CONSUMER,
                                                      self._handle_child, concurrency=self.max_children, stop=stop,
                                                      grace=self.drain_grace, name="children"))
                tg.cancel_scope.cancel()
        finally:  # also when cancelled from outside (a worker stopped while it starts)
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    for sub in (reply_sub, *exhausted):
                        await sub.unsubscribe()
                    # Our replies subject dies with us; the next dispatcher has its own.
                    await self.js.delete_consumer(self.names.reply_stream, self.names.dispatcher_consumer(self.id))
                except Exception as exc:  # noqa: BLE001 - NATS gone: the consumer goes after its inactive_threshold
                    log.warning("removing this dispatcher's reply consumer failed: %s", exc)

    async def _subscribe_replies(self, router: ReplyRouter) -> Subscription:
        """This dispatcher's replies, pushed by its own consumer to its own inbox.

        Pushed, not pulled: a pull costs a request per batch and, in nats-py, a task and a
        `wait_for` per message fetched (`Subscription.next_msg`): three of each per file. The
        consumer is this process's alone (it dies with it); the server sends at most
        `max_ack_pending` unacknowledged replies, and nats-py runs the handler for one message
        at a time, in order (routing never waits long). The subscription exists before the
        consumer, so nothing is pushed to nobody.
        """
        inbox = self.nc.new_inbox()  # under auth, only this identity may subscribe below its inbox prefix
        stream = await self.js.stream_info(self.names.reply_stream)
        acks = ReplyAcks(replies_in_batches(stream.config.retention), lambda: sub.pending_msgs)

        async def handle(msg: Msg) -> None:
            try:
                if await router.handle(msg):
                    await acks.routed(msg)
            except Exception:  # noqa: BLE001 - one reply must not stop the others
                # Unacked, it comes back after ack_wait; unless acks are batched and a later ack covers it.
                log.exception("routing the reply on %s failed", msg.subject)

        sub = await self.nc.subscribe(inbox, cb=handle, pending_msgs_limit=REPLIES_PENDING, pending_bytes_limit=-1)
        await self.js.add_consumer(self.names.reply_stream, ConsumerConfig(
            durable_name=self.names.dispatcher_consumer(self.id), filter_subject=self.names.replies(self.id),
            deliver_subject=inbox, ack_policy=AckPolicy.ALL if acks.batched else AckPolicy.EXPLICIT, ack_wait=30.0,
            max_ack_pending=REPLIES_PENDING, inactive_threshold=3600.0))
        return sub

    async def _serve_new_queues(self, tg, served: set[str], stop: anyio.Event) -> None:
        """Start serving each submitter queue (root consumer) not served yet."""
        for info in await self.js.consumers_info(self.names.submit_stream):
            identity = self.names.queue_identity(info.name)
            if identity is None or info.name in served:
                continue
            served.add(info.name)
            log.info("serving submitter queue %s", identity)
            tg.start_soon(partial(pull_loop, self.js, self.names.submit_stream, info.name, self._handle_root,
                                  concurrency=min(self.max_trees, self.limits.trees_per_submitter), stop=stop,
                                  grace=self.drain_grace, name=f"roots-{identity}"))

    async def _watch_queues(self, tg, served: set[str], stop: anyio.Event) -> None:
        while True:
            with anyio.move_on_after(ROOT_QUEUE_POLL):
                await stop.wait()
            if stop.is_set():
                return
            try:
                await self._serve_new_queues(tg, served, stop)
            except Exception as exc:  # noqa: BLE001 - NATS may be restarting; look again later
                log.warning("listing submitter queues failed: %s", exc)

    async def _handle_root(self, msg: Msg) -> None:
        sub = await decode_or_reject(self.js, self.names, msg, Submission, "dispatcher", self._check)
        if sub is None:
            return
        CURRENT_SID.set(sub.sid)  # this submission's log lines carry it
        identity = self.names.submitter_of(msg.subject)  # the server let only that identity publish here
        log.debug("taking %s from %s (delivery %d)", sub.sid, identity, msg.metadata.num_delivered)
        if msg.metadata.num_delivered == 1 and not await self.quota.take(identity):
            await self._refuse(sub, f"refused: {identity} is over its quota of {self.limits.submissions_per_minute} "
                                    "submissions per minute")
            await msg.ack()
            return
        params, clamped = clamp_params(sub.params, self.limits)
        sub.params = params

        async def work() -> None:
            async with self.fair.slot(identity):
                tree = Tree(self.mesh, sub, msg.metadata.num_delivered, self.tree_timeout)
                roots = await tree.run()
            if roots:
                roots[0].errors[:0] = clamped  # the tree says what the operator's limits overrode
            summary = summarise(sub, roots)
            data = encode(summary)
            self.completed += 1
            metrics.submission_completed(summary)
            await publish(self.js, self.names.summary(sub.sid), data, f"summary:{sub.sid}")
            if summary.score >= self.alert_threshold:
                await publish(self.js, self.names.alert(sub.sid), data, f"alert:{sub.sid}")
            log.info("%s complete: score %d (%s), %d files", sub.sid, summary.score, summary.verdict, summary.file_count)

        with metrics.tree_in_flight():
            await self.held.hold(msg, work)
        await msg.ack()  # a lost ack only redoes the tree from the cache; the summary's Msg-Id dedups it

    def _check(self, sub: Submission) -> None:
        check_submission(sub)
        for ref in sub.files:  # the operator's own file size limit, if lower than the default
            if ref.size > self.limits.max_file_size:
                raise BadMessage(f"{ref.name or ref.sha256}: {ref.size} bytes is over the operator's "
                                 f"{self.limits.max_file_size}-byte limit")

    async def _refuse(self, sub: Submission, reason: str) -> None:
        """Answer a submission without analysing it: a summary whose files carry the reason."""
        error = policy_error("dispatcher", reason)
        nodes = [FileNode(f.sha256, f.name or f.sha256, "unknown", f.size, 0, kind=f.kind, errors=[error]) for f in sub.files]
        await publish(self.js, self.names.summary(sub.sid), encode(summarise(sub, nodes)), f"summary:{sub.sid}")

    async def _handle_child(self, msg: Msg) -> None:
        child = await decode_or_reject(self.js, self.names, msg, ChildSubmission, "dispatcher")
        if child is None:
            return
        CURRENT_SID.set(child.sid)

        async def work() -> None:
            report = await analyse_child(self.mesh, child, msg.metadata.num_delivered)
            await publish(self.js, child.reply_to, encode(report), f"node:{child.sid}:{child.attempt}:{ref_key(child.file)}")

        await self.held.hold(msg, work)
        await msg.ack()
