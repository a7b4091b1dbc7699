"""Runs a service against NATS: its consumer, its registry heartbeat, and the task loop.

All instances of a service bind to one durable consumer (that is how instances share work);
the consumer's filter subjects are the service's *approved* `accepts`/`rejects` expanded against
the type taxonomy, for its approved stage only (bus.provision.ensure_service_consumer). Under
auth the operator approved the service and made that consumer; the service only binds to it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from bus import metrics
from bus.auth import identity_of, service_role
from bus.blobs import BlobStore
from bus.codec import encode
from bus.connect import provisions
from bus.deadletter import decode_or_reject
from bus.logcontext import CURRENT_SID
from bus.provision import MAX_MSG, Stores, acknowledges, approve, provision, service_filters
from bus.publish import publish
from bus.subjects import Names
from bus.worker import pull_loop
from schemas.messages import ErrorType, ExtractedFile, ServiceError, ServiceRecord, ServiceResult, StoredObject, Task
from services.sdk.approval import approval_for
from services.sdk.base import ServiceBase
from services.sdk.execution import execute_task
from services.sdk.manifest import ManifestError
from services.sdk.updater import RulesFollower

log = logging.getLogger("sluice.service")

HEARTBEAT = 2.0
INLINE_BUDGET = 1024 * 1024  # inline child bytes per result message; the rest is fetched from the store
RESULT_MAX = MAX_MSG - 64 * 1024  # a result message's bytes, its headers aside


def consumer_filters(service: ServiceBase, names: Names) -> list[str]:
    """The filters the service's consumer gets when approved as its manifest says."""
    try:
        return service_filters(names, approval_for(service.manifest))
    except ValueError as exc:
        raise ManifestError(str(exc)) from None


class _Handed:
    """A task handed over in-process (ServiceRunner.take), with what the dispatcher's stage needs back."""

    __slots__ = ("task", "started", "deliver", "withdrawn", "running")

    def __init__(self, task: Task, started: Callable[[], None], deliver: Callable[[ServiceResult], None]) -> None:
        self.task = task
        self.started = started
        self.deliver = deliver
        self.withdrawn = False
        self.running: anyio.CancelScope | None = None  # while a local worker runs it

    def withdraw(self) -> None:
        """Not wanted any more: skipped if still queued, cancelled if running."""
        self.withdrawn = True
        if self.running is not None:
            self.running.cancel()


class ServiceRunner:
    def __init__(self, service: ServiceBase, nc: Client, names: Names, concurrency: int | None = None) -> None:
        self.service = service
        self.m = service.manifest
        self.nc = nc
        self.js = nc.jetstream()
        self.names = names
        self.concurrency = concurrency or self.m.concurrency
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.ready = anyio.Event()
        self.rules: RulesFollower | None = None
        self.acks = True  # until its consumer says otherwise
        self.working = 0  # tasks being handled now, said in each heartbeat
        self.serving = False  # tasks may be handed to it in-process (`take`): between its start and stop
        self._handed_in, self._handed = anyio.create_memory_object_stream[_Handed](math.inf)

    async def ensure_consumer(self, stores: Stores, wait: float = 30.0) -> bool:
        """Without auth (`--no-auth`, where any process could write the approvals anyway) the
        service approves itself as its manifest says; under auth it waits for the consumer the
        operator's approval made (`sluice service approve NAME`, `sluice provision`). Returns
        whether that consumer wants its tasks acknowledged (one an earlier release made does)."""
        if provisions(service_role(self.m.name)):
            return await approve(self.js, self.names, stores, approval_for(self.m))
        consumer = self.names.service_consumer(self.m.name)
        with anyio.move_on_after(wait):
            while True:
                try:
                    return acknowledges(await self.js.consumer_info(self.names.task_stream, consumer))
                except NotFoundError:
                    await anyio.sleep(0.2)
        raise ManifestError(f"{self.m.name}: no consumer {consumer} after {wait:g} s: the operator has not approved "
                            f"this service (`sluice service approve {self.m.name}` with admin credentials)")

    def record(self) -> ServiceRecord:
        return ServiceRecord(
            name=self.m.name, version=self.m.version, stage=self.m.stage, accepts=self.m.accepts,
            rejects=self.m.rejects, timeout=self.m.timeout, consumer=self.names.service_consumer(self.m.name),
            tool_version=self.service.get_tool_version(), config_hash=self.m.config_hash,
            disable_cache=self.m.disable_cache, enabled=self.m.enabled, kinds=self.m.kinds,
            uses_temp_data=self.m.uses_temp_submission_data, heartbeat=time.time(), working=self.working,
        )

    async def run(self, stop: anyio.Event) -> None:
        stores = await provision(self.js, self.names, create=provisions(service_role(self.m.name)))
        self.blobs = BlobStore(self.js, stores.files, self.names.file_bucket, writer=identity_of(service_role(self.m.name)))
        self.acks = await self.ensure_consumer(stores)
        await self.service.attach(self.js, self.names)
        await anyio.to_thread.run_sync(self.service.start)
        key = f"{self.m.name}.{self.instance}"
        consumer = self.names.service_consumer(self.m.name)
        try:
            with tempfile.TemporaryDirectory(prefix=f"sluice-{self.m.name}-") as work:
                self.work_root = Path(work)
                if self.m.update_config is not None:
                    self.rules = RulesFollower(self.service, self.js, self.names, stores, self.work_root)
                    await self.rules.refresh()  # the published rules, before the first task
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._heartbeat, stores.registry, key, stop)
                    if type(self.service).periodic is not ServiceBase.periodic:  # a thread hop every 2 s, for nothing
                        tg.start_soon(self._periodic, stop)
                    async with anyio.create_task_group() as local:
                        for _ in range(self.concurrency):
                            local.start_soon(self._local_worker)
                        self._config_hash = self.m.config_hash  # a hash of the manifest: not worked out per task
                        self.serving = True
                        try:
                            await pull_loop(self.js, self.names.task_stream, consumer, self._handle,
                                            concurrency=self.concurrency, stop=stop, name=self.m.name)
                        finally:  # the local workers finish what they run, and tell what waits that they stop
                            self.serving = False
                            self._handed_in.close()
                    self._handed.close()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(2):
                    try:
                        await stores.registry.delete(key)
                    except NatsError as exc:  # NATS restarting or electing: the entry expires with its heartbeat
                        log.info("%s: removing its registry entry failed: %s", self.m.name, exc)
                await anyio.to_thread.run_sync(self.service.stop)

    async def _heartbeat(self, registry, key: str, stop: anyio.Event) -> None:
        while not stop.is_set():
            try:
                if self.rules is not None:
                    await self.rules.refresh()
                await registry.put(key, encode(self.record()))
                self.ready.set()
            except Exception as exc:  # noqa: BLE001 - NATS may be restarting; keep beating
                log.warning("%s: heartbeat failed: %s", self.m.name, exc)
            with anyio.move_on_after(HEARTBEAT):
                await stop.wait()

    async def _periodic(self, stop: anyio.Event) -> None:
        """The service's clock (`ServiceBase.periodic`), off the heartbeat so a slow job never
        makes the service look dead."""
        while not stop.is_set():
            with anyio.move_on_after(HEARTBEAT):
                await stop.wait()
            if not stop.is_set():
                try:
                    await anyio.to_thread.run_sync(self.service.periodic)
                except Exception:  # noqa: BLE001 - the service's own job failing must not stop its tasks
                    log.exception("%s: periodic job failed", self.m.name)

    async def _handle(self, msg: Msg) -> None:
        task = await decode_or_reject(self.js, self.names, msg, Task, f"svc-{self.m.name}")
        if task is None:
            return
        CURRENT_SID.set(task.sid)  # this task's log lines carry it
        log.debug("%s: task %s for %s", self.m.name, task.corr, task.targets)
        if self.m.name not in task.targets or time.time() > task.deadline:
            await self._done(msg)  # not ours, or the dispatcher has given up on it already
            return
        result = await self._run(task)
        await publish(self.js, self.names.result_reply(task.reply_to, self.m.name), self._bounded(result)[1],
                      f"{task.corr}:{self.m.name}")
        await self._done(msg)

    def _bounded(self, result: ServiceResult) -> tuple[ServiceResult, bytes]:
        """The result and its encoding; an error result instead when it would not fit in a message
        (NATS refuses it: through NATS the task then timed out three times, and handed over
        in-process it would have failed the cache write and the summary's publish)."""
        data = encode(result)
        if len(data) <= RESULT_MAX:
            return result, data
        log.warning("%s: result for %s is %d bytes, over %d", self.m.name, result.corr, len(data), RESULT_MAX)
        error = ServiceResult(result.corr, self.m.name, self.m.version, error=ServiceError(
            self.m.name, ErrorType.CRASHED, f"the result is {len(data)} bytes, over the {RESULT_MAX}-byte limit of a message"))
        return error, encode(error)

    def runs(self, record: ServiceRecord) -> bool:
        """Whether this instance is serving now as `record` says (dispatcher/lanes.py)."""
        return (self.serving and record.name == self.m.name and record.version == self.m.version
                and record.config_hash == self._config_hash and record.tool_version == self.service.get_tool_version())

    def take(self, task: Task, started: Callable[[], None], deliver: Callable[[ServiceResult], None]) -> _Handed:
        """A task handed over by the dispatcher in this process (dispatcher/lanes.py): queued for
        one of `concurrency` local workers, run as one from the task stream is, without its
        messages. The pull loop has as many slots of its own: tasks from NATS and from this
        process do not wait on each other (in a one-box nearly all come one way)."""
        handed = _Handed(task, started, deliver)
        try:
            self._handed_in.send_nowait(handed)
        except anyio.ClosedResourceError:  # stopped since the dispatcher looked: it tries again, through NATS
            deliver(self._stopping(task))
        return handed

    def _stopping(self, task: Task) -> ServiceResult:
        return ServiceResult(task.corr, self.m.name, self.m.version, error=ServiceError(
            self.m.name, ErrorType.RECOVERABLE, "this instance is stopping"))

    async def _local_worker(self) -> None:
        while True:
            try:
                try:  # what is queued already, without the memory stream's checkpoint (a quarter of this loop)
                    handed = self._handed.receive_nowait()
                except anyio.WouldBlock:
                    handed = await self._handed.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return
            if handed.withdrawn or time.time() > handed.task.deadline:
                continue  # given up on while it waited (as `_handle` skips a task past its deadline)
            if not self.serving:  # stopping: the dispatcher tries again, through NATS
                handed.deliver(self._stopping(handed.task))
                continue
            CURRENT_SID.set(handed.task.sid)  # this task's log lines carry it
            handed.started()
            with anyio.CancelScope() as handed.running:
                try:
                    result = await self._run(handed.task)
                except Exception as exc:  # noqa: BLE001 - reported to the dispatcher, as a crash in execute is
                    # Storing what it extracted failed: recoverable, as an unacknowledged task is redelivered.
                    log.warning("%s: task %s failed: %s", self.m.name, handed.task.corr, exc)
                    result = ServiceResult(handed.task.corr, self.m.name, self.m.version, error=ServiceError(
                        self.m.name, ErrorType.RECOVERABLE, f"{type(exc).__name__}: {exc}"))
                handed.deliver(self._bounded(result)[0])
            handed.running = None

    async def _done(self, msg: Msg) -> None:
        """Acknowledge the task, if its consumer is one that wants acks (bus.provision.ensure_service_consumer)."""
        if self.acks:
            await msg.ack()

    async def _run(self, task: Task) -> ServiceResult:
        """One task, from NATS or handed over in-process, counted in `working` and the task metrics."""
        self.working += 1
        try:
            return await metrics.observe_task(self.m.name, self._execute(task))
        finally:
            self.working -= 1

    async def _execute(self, task: Task) -> ServiceResult:
        fetch = partial(self.blobs.get, task.file) if self.m.file_required else None
        outcome = await execute_task(self.service, task, fetch, self.work_root, task.max_extracted)
        result = outcome.result
        budget = INLINE_BUDGET
        for item in outcome.extracted:
            ref = await self.blobs.put(item.data, item.name, inline=len(item.data) <= budget)
            if ref.data is not None:
                budget -= ref.size
            result.extracted.append(ExtractedFile(ref, item.description, item.relation))
        for sample in outcome.related:  # URIs, domains, IPs: small, always inline, nothing to store
            result.extracted.append(ExtractedFile(sample.ref, sample.description, sample.relation))
        for obj in outcome.produced:  # never inline: the summary keeps only a reference
            ref = await self.blobs.put(obj.data, obj.name, inline=False)
            result.objects.append(StoredObject(obj.name, obj.kind, ref, obj.description))
        return result
