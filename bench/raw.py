"""The raw nats-py baseline: the same kind of work as the mesh, with nothing of Sluice in it.

One "file" travels the mesh's topology with the best nats-py has: the client publishes a
submission to a work-queue stream; a dispatcher fetches it (batched) and publishes one task to
an interest stream; three services (own connections, own durables) fetch it and publish a reply;
the dispatcher collects three replies and publishes a summary the client receives on an
ordered push consumer. Publishes are `publish_async`, fetches (nats-py's `fetch`) are batched,
acks are plain, so the rate is what the topology costs in Python, without identification,
routing, caching, deadlines or verdicts. The dispatcher and services run in child processes, as the mesh's do.
Connections are stock `nats.connect` ones (bus.connect's coalescing writes are Sluice's own).
"""

from __future__ import annotations

import contextlib
import math

import anyio
import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from bus.connect import close

SERVICES = ("one", "two", "three")
ID_LEN = 32  # every payload starts with its item id (hex)
PUBLISH_TIMEOUT = 10.0


class RawNames:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        up = prefix.upper()
        self.streams = {f"{up}_SUB": (f"{prefix}.sub", RetentionPolicy.WORK_QUEUE),
                        f"{up}_TASK": (f"{prefix}.task", RetentionPolicy.INTEREST),
                        f"{up}_REPLY": (f"{prefix}.reply", RetentionPolicy.WORK_QUEUE),
                        f"{up}_SUM": (f"{prefix}.sum.*", RetentionPolicy.LIMITS)}
        self.sub, self.task, self.reply = f"{up}_SUB", f"{up}_TASK", f"{up}_REPLY"
        self.summaries = f"{prefix}.sum.*"

    def summary(self, item: str) -> str:
        return f"{self.prefix}.sum.{item}"


async def provision(js: JetStreamContext, names: RawNames) -> None:
    """Streams and every durable before any message flows (an interest stream drops what no consumer matches)."""
    for name, (subject, retention) in names.streams.items():
        await js.add_stream(StreamConfig(name=name, subjects=[subject], retention=retention, storage=StorageType.FILE))
    durables = [(names.sub, "dispatcher"), (names.reply, "dispatcher")] + [(names.task, svc) for svc in SERVICES]
    for stream, durable in durables:
        await js.add_consumer(stream, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                                     max_ack_pending=10_000))


async def delete(js: JetStreamContext, names: RawNames) -> None:
    for name in names.streams:
        try:
            await js.delete_stream(name)
        except NotFoundError:
            pass


async def fetch_loop(sub, handle, *, concurrency: int, stop: anyio.Event) -> None:
    """nats-py's own way to consume: `fetch` as many messages as there are free slots, each to
    one of `concurrency` workers, until `stop` (a bench child's stop: what is in flight is dropped)."""
    slots = anyio.Semaphore(concurrency)
    send, receive = anyio.create_memory_object_stream(math.inf)

    async def work() -> None:
        async for msg in receive:
            try:
                await handle(msg)
            finally:
                slots.release()

    async def fetch() -> None:
        while True:
            await slots.acquire()
            free = 1
            while slots.value > 0:
                slots.acquire_nowait()
                free += 1
            msgs = []
            with contextlib.suppress(NatsTimeout, TimeoutError):
                msgs = await sub.fetch(free, timeout=0.5)
            for _ in range(free - len(msgs)):
                slots.release()
            for msg in msgs:
                send.send_nowait(msg)

    with send, receive:
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(work)
            tg.start_soon(fetch)
            await stop.wait()
            tg.cancel_scope.cancel()


async def _forward(js: JetStreamContext, msg, subject: str, payload: bytes) -> None:
    """Publish onward (async, its ack awaited under a timeout), then ack what we took."""
    with anyio.fail_after(PUBLISH_TIMEOUT):
        await (await js.publish_async(subject, payload))
    await msg.ack()


async def serve_services(url: str, prefix: str, stop: anyio.Event, ready) -> None:
    """Three services: take the task, publish a reply naming the item, ack."""
    names = RawNames(prefix)

    async def service(name: str) -> None:
        nc = await nats.connect(url, name=f"raw-{name}")
        js = nc.jetstream()
        try:
            sub = await js.pull_subscribe_bind(name, stream=names.task)

            async def handle(msg) -> None:
                await _forward(js, msg, f"{prefix}.reply", msg.data[:ID_LEN])

            await fetch_loop(sub, handle, concurrency=64, stop=stop)
        finally:
            with anyio.CancelScope(shield=True):
                await close(nc)

    async with anyio.create_task_group() as tg:
        for name in SERVICES:
            tg.start_soon(service, name)
        ready()


async def serve_dispatcher(url: str, prefix: str, stop: anyio.Event, ready) -> None:
    """Submissions to tasks; three replies per item to a summary."""
    names = RawNames(prefix)
    nc = await nats.connect(url, name="raw-dispatcher")
    js = nc.jetstream()
    replies: dict[bytes, int] = {}
    try:
        subs = await js.pull_subscribe_bind("dispatcher", stream=names.sub)
        reps = await js.pull_subscribe_bind("dispatcher", stream=names.reply)

        async def on_submission(msg) -> None:
            await _forward(js, msg, f"{prefix}.task", msg.data)

        async def on_reply(msg) -> None:
            item = bytes(msg.data[:ID_LEN])
            replies[item] = replies.get(item, 0) + 1
            if replies[item] < len(SERVICES):
                await msg.ack()
                return
            del replies[item]
            await _forward(js, msg, names.summary(item.decode()), item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: fetch_loop(subs, on_submission, concurrency=64, stop=stop))
            tg.start_soon(lambda: fetch_loop(reps, on_reply, concurrency=256, stop=stop))
            ready()
    finally:
        with anyio.CancelScope(shield=True):
            await close(nc)


class RawClient:
    """Submit items and wait for their summaries, as the Sluice client does for files."""

    def __init__(self, nc, names: RawNames) -> None:
        self.nc, self.js, self.names = nc, nc.jetstream(), names
        self._done: dict[str, anyio.Event] = {}

    @classmethod
    async def connect(cls, url: str, prefix: str) -> RawClient:
        """Connected, with the pipeline's streams and consumers in place."""
        nc = await nats.connect(url, name="raw-client")
        client = cls(nc, RawNames(prefix))
        await provision(client.js, client.names)
        await client.js.subscribe(client.names.summaries, cb=client._on_summary, ordered_consumer=True,
                                  deliver_policy=DeliverPolicy.NEW)
        return client

    async def _on_summary(self, msg) -> None:
        event = self._done.get(msg.data[:ID_LEN].decode())
        if event is not None:
            event.set()

    async def submit(self, item: str, payload: bytes) -> str:
        self._done.setdefault(item, anyio.Event())
        with anyio.fail_after(PUBLISH_TIMEOUT):
            await (await self.js.publish_async(f"{self.names.prefix}.sub", item.encode() + payload,
                                               headers={"Nats-Msg-Id": item}))
        return item

    async def wait(self, item: str, timeout: float) -> None:
        with anyio.fail_after(timeout):
            await self._done[item].wait()
        del self._done[item]

    async def aclose(self) -> None:
        await close(self.nc)


async def object_store_round(js: JetStreamContext, bucket: str, data: bytes, readers: int) -> float:
    """Stock nats-py: `put` the object, then `readers` concurrent stock `get`s of all of it; seconds."""
    store = await js.create_object_store(bucket)
    try:
        t0 = anyio.current_time()
        await store.put("blob", data)
        sizes: list[int] = []

        async def read() -> None:
            sizes.append(len((await store.get("blob")).data))

        async with anyio.create_task_group() as tg:
            for _ in range(readers):
                tg.start_soon(read)
        elapsed = anyio.current_time() - t0
        if sizes != [len(data)] * readers:
            raise RuntimeError(f"stock get returned {sizes}, expected {len(data)} each")
        return elapsed
    finally:
        await js.delete_object_store(bucket)
