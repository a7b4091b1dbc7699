"""A pull-consumer loop with bounded concurrency and a graceful stop.

It sends its own pull requests rather than calling nats-py's `fetch`, which waits on each
message with a task, a uuid4 and a `wait_for` of its own (7% of a `sluice scan`'s CPU), hands
out nothing until it returns, and on a stop could only be waited out (its timeout: half a
second of every scan's exit) or cancelled, losing what it had taken. Here the consumer's
messages come to one subscription's callback and go straight to `concurrency` workers started
once (a task per message cost 18-22 us of CPU, a hand-off through a memory stream 2-3 us).

One request is out at a time, for as many messages as there are free slots (so a busy instance
never hoards work that an idle one could take): it ends when that many have come, or with a
status from the server (408 when it expired on an idle queue, 409 when the server refused or
dropped it, 503 when the stream has no leader), and the next one goes out for the slots free
by then. A request the server may have forgotten (a reconnect, a restarted server: no status
will come) is given up after its expiry and a margin, so a loop never stalls for good.

On stop it unsubscribes first: the server then drops the request out (a pull request whose
reply subject has no interest gets nothing; a message handed to a cancelled `fetch` instead
sat unacknowledged until its ack_wait), and the loop lets in-flight messages finish for `grace`
seconds; whatever is cut off stays unacknowledged and is redelivered (or, on an unacknowledged
consumer, retried by the dispatcher at its deadline), so a stop loses nothing. A context
variable a handler sets stays set in its worker until the next message's handler sets its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from itertools import count

import anyio
import orjson
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.js import JetStreamContext

log = logging.getLogger("sluice.bus")

IDLE_HEARTBEAT = "100"
MARGIN = 2.0  # seconds past its expiry that a request without a status counts as forgotten
REFUSED_PAUSE = 0.25  # seconds before asking again after the server refused or had no leader
RECONNECT_CHECK = 1.0  # seconds between looks at the connection's reconnect count while a request is out


async def pull_loop(
    js: JetStreamContext,
    stream: str,
    consumer: str,
    handle: Callable[[Msg], Awaitable[None]],
    *,
    concurrency: int,
    stop: anyio.Event,
    batch: int = 64,
    expires: float = 2.0,
    grace: float = 10.0,
    name: str = "worker",
) -> None:
    """Run `handle` on each message of the durable `consumer` of `stream`, at most `concurrency`
    at once, until `stop`. `expires`: how long a request waits on an idle queue."""
    nc = js._nc
    next_subject = f"{js._prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
    inbox = nc.new_inbox()
    send, receive = anyio.create_memory_object_stream[Msg](math.inf)  # never holds much more than `concurrency`
    state = _Requests(concurrency, batch)
    tokens = count()

    async def on_msg(msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status is None:
            state.arrived()
            send.send_nowait(msg)
        elif status != IDLE_HEARTBEAT:
            state.ended(msg.subject.rsplit(".", 1)[-1], status)

    async def work() -> None:
        async for msg in receive:
            try:
                await handle(msg)
            except Exception:  # noqa: BLE001 - one bad message must not end the loop
                log.exception("%s: handler failed on %s; it will be redelivered", name, msg.subject)
            finally:
                state.done()

    async def request() -> None:
        while not stop.is_set():
            wanted = state.next_request(time.monotonic(), nc.stats["reconnects"])
            if wanted:
                token = str(next(tokens))
                state.sent(token, wanted, time.monotonic() + expires + MARGIN, nc.stats["reconnects"])
                try:
                    await nc.publish(next_subject, orjson.dumps({"batch": wanted, "expires": int(expires * 1e9)}),
                                     reply=f"{inbox}.{token}")
                except ConnectionClosedError:
                    log.info("%s: connection closed, stopping", name)
                    stop.set()
                    return
                except Exception as exc:  # noqa: BLE001 - NATS may be reconnecting: ask again shortly
                    log.warning("%s: pull request failed: %s", name, exc)
                    state.failed()
            with anyio.move_on_after(state.wait_for(time.monotonic())):
                await state.wake.wait()
            state.wake = anyio.Event()

    sub = await nc.subscribe(f"{inbox}.*", cb=on_msg)
    with send, receive:  # closed when the group ends (anyio warns of memory streams left open)
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(work)
            tg.start_soon(request)
            await stop.wait()
            state.wake.set()  # the request loop sees the stop and ends
            try:
                await sub.unsubscribe()  # the server hands out nothing more, not even to the request out
            except Exception:  # noqa: BLE001 - closed already: nothing more comes either way
                pass
            with anyio.move_on_after(grace):  # every slot back = every handler finished
                while state.busy:
                    await state.settled.wait()
                    state.settled = anyio.Event()
            tg.cancel_scope.cancel()


class _Requests:
    """The one pull request out, and the slots: free, asked for, or busy with a message."""

    def __init__(self, concurrency: int, batch: int) -> None:
        self.concurrency = concurrency
        self.batch = batch
        self.busy = 0  # messages taken and not yet handled
        self.asked = 0  # messages the request out may still bring
        self.token: str | None = None  # the request out
        self.until = 0.0  # when the request out counts as forgotten
        self.epoch = 0  # the connection's reconnect count when it went out
        self.paused_until = 0.0  # after a refusal: no request before then
        self.wake = anyio.Event()  # for the request loop: a slot came free, or the request ended
        self.settled = anyio.Event()  # for a stop: a message was handled

    def next_request(self, now: float, epoch: int) -> int:
        """How many messages to ask for now (0: none, a request is out or nothing is free)."""
        if self.token is not None and (now >= self.until or epoch != self.epoch):
            self._end()  # no status came, or the connection was lost meanwhile: the server forgot it
        if self.token is not None or now < self.paused_until:
            return 0
        return min(self.batch, self.concurrency - self.busy)

    def wait_for(self, now: float) -> float:
        """Seconds until the request loop must look again unwoken (a reconnect is noticed within a second)."""
        if self.token is not None:
            return min(max(0.0, self.until - now), RECONNECT_CHECK)
        if now < self.paused_until:
            return self.paused_until - now
        return math.inf

    def sent(self, token: str, wanted: int, until: float, epoch: int) -> None:
        self.token, self.asked, self.until, self.epoch = token, wanted, until, epoch

    def arrived(self) -> None:
        self.busy += 1
        if self.asked:
            self.asked -= 1
            if not self.asked:  # the request is filled: the next may go
                self._end()

    def ended(self, token: str, status: str) -> None:
        if token != self.token:
            return  # the end of a request given up on already
        if status != "408":  # refused (409: too many waiting, a leader change...) or no leader (503)
            self._pause()
        self._end()

    def failed(self) -> None:
        """The request out never left (NATS reconnecting): ask again shortly, not at its expiry."""
        self._pause()
        self._end()

    def _pause(self) -> None:
        self.paused_until = time.monotonic() + REFUSED_PAUSE

    def done(self) -> None:
        self.busy -= 1
        self.wake.set()
        self.settled.set()

    def _end(self) -> None:
        self.token, self.asked = None, 0
        self.wake.set()
