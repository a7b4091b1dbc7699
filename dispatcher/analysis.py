"""One file through its stages: identify, plan, cache, publish tasks, collect with deadlines, retry.

A URI, domain or IP sample goes the same way; its type comes from its kind and value (no
libmagic), and its value is checked again here, since a hand-published message can say anything.

A stage's tasks go out as one message per file (every targeted service of that stage reads the
same descriptor); a service that misses its deadline, or says its failure is recoverable, is
retried alone, up to `Limits.attempts` in all, then recorded as an error; its time runs from
when the service is handed the task, not while it waits in a busy service's queue
(dispatcher/queues.py). The file's analysis always ends: the longest it can take is bounded by
its services' timeouts and `Limits.queue_wait`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial

import msgspec
from nats.js import JetStreamContext

from bus import metrics
from bus.blobs import BlobError, BlobStore
from bus.codec import encode
from bus.publish import publish
from bus.subjects import Names
from dispatcher.cache import ResultCache, cache_key
from dispatcher.directory import ServiceDirectory
from dispatcher.identifier import Identifier
from dispatcher.lanes import Handed, Lanes
from dispatcher.policy import police
from dispatcher.queues import QueuePositions, StageClock
from dispatcher.replies import ReplyRouter, Waiter
from schemas.limits import Limits
from schemas.messages import (
    STAGES,
    ErrorType,
    ExtractedFile,
    FileNode,
    FileRef,
    Relation,
    ResultView,
    SampleKind,
    ServiceError,
    ServiceRecord,
    ServiceResult,
    SubmissionParams,
    Task,
)
from schemas.samples import SampleError, sample_type, sample_value

log = logging.getLogger("sluice.dispatcher")

RETRYABLE = {ErrorType.TIMEOUT, ErrorType.RECOVERABLE}


@dataclass
class Mesh:
    """What an analysis needs from the dispatcher around it."""

    js: JetStreamContext
    names: Names
    blobs: BlobStore
    cache: ResultCache
    directory: ServiceDirectory
    router: ReplyRouter
    dispatcher_id: str
    grace: float = Limits.timeout_grace
    identifier: Identifier | None = None  # default: one on `blobs`
    lanes: Lanes = field(default_factory=Lanes)  # services in this process (dispatcher/lanes.py)
    queues: QueuePositions = field(init=False)

    def __post_init__(self) -> None:
        self.identifier = self.identifier or Identifier(self.blobs)
        self.queues = QueuePositions(self.js, self.names.task_stream)


@dataclass
class FileAnalysis:
    node: FileNode
    extracted: list[ExtractedFile]
    temp_data: dict[str, object] = field(default_factory=dict)  # after this file's services: its children start here


async def analyse_file(mesh: Mesh, sid: str, file: FileRef, depth: int, relation: Relation, params: SubmissionParams,
                       first_try: bool = False) -> FileAnalysis:
    """`first_try`: this is the first time any dispatcher analyses the file in this tree, so a
    file new to the store (inline bytes this check stored first, or an upload its writer says was
    `fresh`) can have nothing cached; a redelivery (a resumed tree) reads the cache whatever."""
    node = FileNode(sha256=file.sha256, name=file.name or file.sha256, type="unknown", size=file.size, depth=depth,
                    relation=relation, kind=file.kind)
    try:
        new = await _identify(mesh, file, node)
    except (BlobError, SampleError) as exc:
        node.errors.append(ServiceError("dispatcher", ErrorType.BAD_INPUT, str(exc)))
        return FileAnalysis(node, [], params.temp_data)
    schedule, missing = mesh.directory.plan(node.type, params, depth)
    for name in missing:
        node.errors.append(ServiceError(name, ErrorType.SERVICE_DOWN, "selected but not running (no live instance)"))
    extracted: list[ExtractedFile] = []
    for stage in STAGES:
        records = schedule.get(stage)
        if not records:
            continue
        with metrics.labelled(metrics.STAGE_SECONDS, stage.value).time():
            results = await _run_stage(mesh, sid, file, node, stage, records, params, first_try and new)
        for result in results:
            if result.error:
                node.errors.append(result.error)
                continue
            overridden = police(result, mesh.directory.approved.get(result.service))
            if overridden is not None:
                node.errors.append(overridden)
            if result.temp_data:  # later stages (and the children) see what this stage added
                params = msgspec.structs.replace(params, temp_data={**params.temp_data, **result.temp_data})
            node.results.append(ResultView(result.service, result.score, result.sections, result.cached,
                                           result.objects, result.metadata, result.partial, result.context))
            node.score += result.score
            extracted.extend(result.extracted)
        if any(r.drop for r in results if not r.error):
            node.dropped = True
            break
    return FileAnalysis(node, extracted, params.temp_data)


async def _identify(mesh: Mesh, file: FileRef, node: FileNode) -> bool:
    """Set the node's type: a file's from its bytes, a URI's, domain's or IP's from its checked
    value; whether the sample is new (nothing can be cached for it: see Identifier.checked)."""
    if file.kind is SampleKind.FILE:
        node.type, new = await mesh.identifier.type_of(file)
        return new
    node.name = sample_value(file)
    node.type = sample_type(file.kind, node.name)
    return False


async def _run_stage(
    mesh: Mesh, sid: str, file: FileRef, node: FileNode, stage, records: list[ServiceRecord], params: SubmissionParams,
    new_file: bool = False,
) -> list[ServiceResult]:
    done: dict[str, ServiceResult] = {}
    keys = {r.name: cache_key(file.sha256, r, params, file.kind) for r in records}
    if not params.ignore_cache and not new_file:
        wanted = {r.name: keys[r.name] for r in records if not r.disable_cache}
        hits = await mesh.cache.get_many(file, stage, wanted)
        for name in wanted:
            metrics.cache_lookup(name, name in hits)
        for name, hit in hits.items():
            hit.cached = True
            done[name] = hit
    todo = {r.name: r for r in records if r.name not in done}
    if not todo:
        return [done[r.name] for r in records]

    waiter = Waiter()
    corrs: list[str] = []
    local: dict[str, Handed] = {}  # attempts handed to services in this process (dispatcher/lanes.py)
    attempts = dict.fromkeys(todo, 0)
    clock = StageClock(mesh.queues, mesh.grace)

    def task_for(corr: str, targets: list[ServiceRecord], timeout: float) -> Task:
        return Task(
            corr=corr, sid=sid, file=file, file_type=node.type, stage=stage, targets=[r.name for r in targets],
            deadline=time.time() + Limits.queue_wait + timeout, reply_to=mesh.names.reply(mesh.dispatcher_id, "result"),
            depth=node.depth, deep_scan=params.deep_scan, max_extracted=params.max_children,
            service_params={r.name: params.service_params[r.name] for r in targets if r.name in params.service_params},
            temp_data=params.temp_data,
        )

    async def send_task(targets: list[ServiceRecord]) -> None:
        corr = os.urandom(16).hex()  # as unique as a uuid4, at a third of its cost
        corrs.append(corr)
        mesh.router.expect(corr, waiter)
        timeout = max(r.timeout for r in targets) + mesh.grace
        now = time.monotonic()
        remote: list[ServiceRecord] = []
        for r in targets:
            attempts[r.name] += 1
            waiter.results.pop(r.name, None)
            service = mesh.lanes.lane(r)
            if service is None:
                clock.sending(r, now)
                remote.append(r)
            else:
                clock.handing(r, now)
                if r.name in local:
                    local[r.name].withdraw()  # an earlier attempt, given up on
                local[r.name] = service.take(task_for(corr, [r], r.timeout + mesh.grace), partial(clock.started, r),
                                             waiter.deliver)
        if remote:
            ack = await publish(mesh.js, mesh.names.task(stage, node.type), encode(task_for(corr, remote, timeout)), corr)
            for r in remote:
                clock.sent(r, ack.seq)

    try:
        await send_task(list(todo.values()))
        while todo:
            now = time.monotonic()
            await waiter.wait(set(todo), min(clock.deadlines[n] for n in todo) - now)
            now = time.monotonic()
            retry: list[ServiceRecord] = []
            for name, record in list(todo.items()):
                result = waiter.results.get(name)
                expired = result is None and await clock.out_of_time(record, now)
                failed = result is not None and result.error is not None and result.error.type in RETRYABLE
                if expired:
                    metrics.TASKS_EXPIRED.labels(name).inc()
                if (expired or failed) and attempts[name] < Limits.attempts:
                    retry.append(record)
                    log.info("%s %s: retrying %s (attempt %d)", sid, file.sha256[:12], name, attempts[name] + 1)
                    continue
                if expired:
                    result = ServiceResult("", name, record.version, error=ServiceError(
                        name, ErrorType.TIMEOUT, f"no result within {record.timeout + mesh.grace:g}s, {attempts[name]} attempts"))
                if result is None:
                    continue
                if failed:
                    result.error.message += f" (after {attempts[name]} attempts)"
                done[name] = result
                del todo[name]
            for record in retry:
                await send_task([record])
        cacheable = {keys[r.name]: done[r.name] for r in records
                     if not r.disable_cache and done[r.name].error is None and not done[r.name].partial}
        if any(not result.cached for result in cacheable.values()):  # the stage's entry, kept whole
            await mesh.cache.put_many(file, stage, cacheable)
    finally:
        for corr in corrs:
            mesh.router.forget(corr)
        for name, handed in local.items():
            if name not in waiter.results:  # still queued (or running): not wanted any more
                handed.withdraw()
    return [done[r.name] for r in records]
