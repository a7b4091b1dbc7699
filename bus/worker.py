"""A pull-consumer loop with bounded concurrency and a graceful stop.

Fetches only as many messages as there are free slots (so a busy instance never hoards work
that an idle one could take), keeps fetch timeouts short (a stale pull request can stall the
next fetch for its whole timeout: nats.py #933/#986), and hands each message to one of
`concurrency` workers started once, in the loop's own task group: a task spawned per message
(anyio's `start_soon`) cost 18-22 us of CPU, a hand-off through a memory stream 2-3 us. A
context variable a handler sets stays set in its worker until the next message's handler sets
its own (the log context's submission id is set by each handler). On stop it
fetches no more and lets in-flight messages finish for `grace` seconds; whatever is cut off
stays unacknowledged and is redelivered, so a stop loses nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import ServiceUnavailableError

log = logging.getLogger("sluice.bus")


async def pull_loop(
    sub,
    handle: Callable[[Msg], Awaitable[None]],
    *,
    concurrency: int,
    stop: anyio.Event,
    batch: int = 64,
    fetch_timeout: float = 0.5,
    grace: float = 10.0,
    name: str = "worker",
) -> None:
    """Run `handle` on each message of `sub`, at most `concurrency` at once, until `stop`."""
    slots = anyio.Semaphore(concurrency)  # taken per fetched message, given back when it is handled
    send, receive = anyio.create_memory_object_stream[Msg](math.inf)  # never holds more than `concurrency`

    async def work() -> None:
        async for msg in receive:
            try:
                await handle(msg)
            except Exception:  # noqa: BLE001 - one bad message must not end the loop
                log.exception("%s: handler failed on %s; it will be redelivered", name, msg.subject)
            finally:
                slots.release()

    async def drain_on_stop(tg) -> None:
        await stop.wait()
        with anyio.move_on_after(grace):  # every slot back = every handler finished
            for _ in range(concurrency):
                await slots.acquire()
        tg.cancel_scope.cancel()

    with send, receive:  # closed when the group ends (anyio warns of memory streams left open)
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain_on_stop, tg)
            for _ in range(concurrency):
                tg.start_soon(work)
            while True:
                await slots.acquire()
                if stop.is_set():
                    slots.release()
                    await anyio.sleep_forever()  # drain_on_stop ends the group
                free = 1
                while free < batch and slots.value > 0:  # take every free slot, up to a batch
                    slots.acquire_nowait()  # not `await acquire()`: two checkpoints a slot were a fifth of a service's CPU
                    free += 1
                msgs: list[Msg] = []
                try:
                    with anyio.move_on_after(fetch_timeout + 2):  # fetch's own timeout is not always honoured
                        msgs = await sub.fetch(free, timeout=fetch_timeout)
                except (NatsTimeout, TimeoutError, ServiceUnavailableError):
                    pass
                except ConnectionClosedError:
                    log.info("%s: connection closed, stopping", name)
                    stop.set()
                for _ in range(free - len(msgs)):
                    slots.release()
                for msg in msgs:
                    send.send_nowait(msg)
