"""`sluice status`: what a running Sluice holds, read from NATS alone.

Streams (messages, bytes), consumers with their pending and ack-pending counts, services with
their instances from the registry bucket (alive or stale, version, last heartbeat), submissions
in flight and waiting (the dispatch consumers' ack-pending and pending counts: a submission is
acknowledged only once its verdict is out), live dispatchers (one reply consumer each), and
dead letters. Read-only: it provisions nothing, so pointing it at the wrong prefix says so.
"""

from __future__ import annotations

import argparse
import time

import anyio
import msgspec
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from rich.table import Table
from rich.text import Text

from bus.auth import ADMIN
from bus.codec import BadMessage, decode
from bus.connect import close, connect
from bus.kv import kv_keys
from bus.subjects import Names
from dispatcher.directory import STALE_AFTER
from schemas.messages import ServiceRecord
from sluice.console import CONNECT_TIMEOUT, OUT, CliError, require_url
from sluice.render import clean, to_json


class StreamState(msgspec.Struct):
    name: str
    messages: int
    bytes: int
    consumers: int


class ConsumerState(msgspec.Struct):
    stream: str
    name: str
    pending: int  # not yet delivered
    ack_pending: int  # delivered, not yet acknowledged
    redelivered: int
    waiting: int  # open pull requests: instances asking for work


class InstanceState(msgspec.Struct):
    instance: str
    version: str
    heartbeat_age: float  # seconds since its last heartbeat
    alive: bool


class ServiceState(msgspec.Struct):
    name: str
    stage: str
    version: str
    alive: int  # instances with a fresh heartbeat
    instances: list[InstanceState]
    queued: int = 0  # its consumer's pending tasks
    working: int = 0  # being executed: its live instances' own counts (at their last heartbeat), or its
    # consumer's ack-pending tasks where it acknowledges them (those held by a dead instance too, until ack_wait)


class Submissions(msgspec.Struct):
    in_flight: int  # taken by a dispatcher, verdict not yet published
    waiting: int
    children_in_flight: int
    children_waiting: int
    dispatchers: int


class Status(msgspec.Struct):
    prefix: str
    streams: list[StreamState]
    consumers: list[ConsumerState]
    services: list[ServiceState]
    submissions: Submissions
    dead_letters: int


def _stream_names(names: Names) -> list[str]:
    kv = [names.registry_bucket, names.cache_bucket, names.safelist_bucket, names.rules_bucket]
    objects = [names.file_bucket, names.ruleset_store]
    return ([names.submit_stream, names.task_stream, names.reply_stream, names.summary_stream, names.dlq_stream]
            + [f"KV_{b}" for b in kv] + [f"OBJ_{b}" for b in objects])


async def _streams(js: JetStreamContext, names: Names) -> list[StreamState]:
    found = []
    for name in _stream_names(names):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            continue
        found.append(StreamState(name, info.state.messages, info.state.bytes, info.state.consumer_count))
    return found


async def _consumers(js: JetStreamContext, names: Names) -> list[ConsumerState]:
    found = []
    for stream in (names.submit_stream, names.task_stream, names.reply_stream):
        for info in await js.consumers_info(stream):
            found.append(ConsumerState(stream, info.name, info.num_pending or 0, info.num_ack_pending or 0,
                                       info.num_redelivered or 0, info.num_waiting or 0))
    return sorted(found, key=lambda c: (c.stream, c.name))


async def _services(js: JetStreamContext, names: Names) -> list[ServiceState]:
    """Every registry entry, grouped by service: instances that stopped cleanly are gone, crashed ones show as stale."""
    registry = await js.key_value(names.registry_bucket)
    keys = await kv_keys(js, names.registry_bucket)  # as the dispatcher lists them: KeyValue.keys() can come back short
    now = time.time()
    services: dict[str, ServiceState] = {}
    for key in sorted(keys):
        try:
            record = decode((await registry.get(key)).value or b"", ServiceRecord)
        except KeyNotFoundError:
            continue  # the instance stopped (and removed itself) since the key listing
        except BadMessage:
            continue
        age = max(0.0, now - record.heartbeat)
        state = services.setdefault(record.name, ServiceState(record.name, record.stage.value, record.version, 0, []))
        state.instances.append(InstanceState(key.partition(".")[2], record.version, round(age, 1), age <= STALE_AFTER))
        state.alive += age <= STALE_AFTER
        state.working += record.working if age <= STALE_AFTER else 0
    return sorted(services.values(), key=lambda s: s.name)


async def gather(js: JetStreamContext, names: Names) -> Status:
    try:
        dlq = await js.stream_info(names.dlq_stream)
    except NotFoundError:
        raise CliError(f"nothing under prefix {names.prefix!r} on this NATS (no dispatcher or service has started)", code=1) from None
    consumers = await _consumers(js, names)
    by_name = {(c.stream, c.name): c for c in consumers}
    root = by_name.get((names.submit_stream, names.ROOT_CONSUMER))
    child = by_name.get((names.submit_stream, names.CHILD_CONSUMER))
    submissions = Submissions(
        in_flight=root.ack_pending if root else 0, waiting=root.pending if root else 0,
        children_in_flight=child.ack_pending if child else 0, children_waiting=child.pending if child else 0,
        dispatchers=sum(c.stream == names.reply_stream for c in consumers),
    )
    services = await _services(js, names)
    for svc in services:
        queue = by_name.get((names.task_stream, names.service_consumer(svc.name)))
        if queue:
            svc.queued, svc.working = queue.pending, max(svc.working, queue.ack_pending)
    return Status(names.prefix, await _streams(js, names), consumers, services, submissions, dlq.state.messages)


def _table(title: str, *columns: str) -> Table:
    table = Table(*columns, title=title, title_justify="left", title_style="bold", box=None, pad_edge=False)
    for column in table.columns[1:]:
        column.justify = "right"
    return table


def render(status: Status) -> None:
    s = status.submissions
    OUT.print(Text.assemble(
        ("submissions ", "bold"),
        f"{s.in_flight} in flight, {s.waiting} waiting; children {s.children_in_flight} in flight, "
        f"{s.children_waiting} waiting; {s.dispatchers} dispatcher(s); ",
        (f"{status.dead_letters} dead letter(s)", "red" if status.dead_letters else ""),
    ), soft_wrap=True)
    services = _table("services", "name", "stage", "version", "alive", "instances", "last heartbeat", "queued", "working")
    for svc in status.services:
        age = min((i.heartbeat_age for i in svc.instances), default=0.0)
        services.add_row(Text(svc.name, style="bold" if svc.alive else "red"), svc.stage, clean(svc.version),
                         str(svc.alive), str(len(svc.instances)), f"{age:.1f} s ago", str(svc.queued), str(svc.working))
    consumers = _table("consumers", "consumer", "pending", "ack pending", "redelivered", "waiting pulls")
    for c in status.consumers:
        consumers.add_row(Text(f"{c.stream}/{c.name}", overflow="fold"), str(c.pending), str(c.ack_pending), str(c.redelivered), str(c.waiting))
    streams = _table("streams", "stream", "messages", "bytes", "consumers")
    for st in status.streams:
        streams.add_row(st.name, str(st.messages), f"{st.bytes:,}", str(st.consumers))
    for table in (services, consumers, streams):
        OUT.print()
        OUT.print(table)


async def cmd_status(args: argparse.Namespace) -> int:
    url = require_url(args)
    try:
        with anyio.fail_after(CONNECT_TIMEOUT):
            nc = await connect(url, name="sluice-status", role=ADMIN)  # it reads every stream and consumer
    except TimeoutError:
        raise CliError(f"cannot reach NATS at {url} (gave up after {CONNECT_TIMEOUT:g} s)") from None
    try:
        status = await gather(nc.jetstream(), Names(args.prefix))
    finally:
        await close(nc)
    if args.json:
        print(to_json(status), flush=True)
    else:
        render(status)
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
