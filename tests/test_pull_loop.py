"""bus.worker.pull_loop against a real nats-server: bounded concurrency, nothing lost, a prompt stop
that leaves what it did not take on the server."""

from __future__ import annotations

import anyio
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from bus.connect import close, connect
from bus.worker import pull_loop

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def queue(nats_url, prefix):
    nc = await connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=prefix, subjects=[f"{prefix}.>"])
    await js.add_consumer(prefix, ConsumerConfig(durable_name="work", ack_policy=AckPolicy.EXPLICIT, ack_wait=30))
    yield js
    await js.delete_stream(prefix)
    await close(nc)


async def test_every_message_is_handled_never_more_than_concurrency_at_once(queue, prefix):
    js, stop = queue, anyio.Event()
    handled: list[bytes] = []
    running = most = 0

    async def handle(msg) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.01)
        handled.append(msg.data)
        await msg.ack_sync()  # confirmed by the server, so the counts below are settled
        running -= 1
        if len(handled) == 60:
            stop.set()

    for i in range(30):  # waiting before the loop starts
        await js.publish(f"{prefix}.a", str(i).encode())
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: pull_loop(js, prefix, "work", handle, concurrency=4, stop=stop, batch=3))
            for i in range(30, 60):  # arriving while it runs
                await js.publish(f"{prefix}.a", str(i).encode())
    assert sorted(handled, key=int) == [str(i).encode() for i in range(60)]
    assert most == 4
    info = await js.consumer_info(prefix, "work")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_a_stop_is_prompt_and_leaves_what_comes_later_on_the_server(queue, prefix):
    # Before: an idle loop was waiting in nats-py's fetch, so a stop waited out the fetch's
    # timeout, and cancelling it instead left a message the server then handed to it
    # unacknowledged until its ack_wait (30 s here). The loop now unsubscribes first.
    js, stop, first = queue, anyio.Event(), anyio.Event()
    handled: list[bytes] = []

    async def handle(msg) -> None:
        handled.append(msg.data)
        await msg.ack_sync()  # confirmed by the server, so the counts below are settled
        first.set()

    await js.publish(f"{prefix}.a", b"first")
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: pull_loop(js, prefix, "work", handle, concurrency=2, stop=stop, expires=5.0))
            await first.wait()
            await anyio.sleep(0.2)  # its next request is out, waiting on an idle queue
            started = anyio.current_time()
            stop.set()
        stopped = anyio.current_time() - started
    await js.publish(f"{prefix}.a", b"after the stop")
    await anyio.sleep(0.2)  # a request left open on the server would take it at once: give it the chance
    info = await js.consumer_info(prefix, "work")
    assert handled == [b"first"] and stopped < 1.0
    assert (info.num_pending, info.num_ack_pending) == (1, 0)  # still there for the next consumer
