"""Routes what comes back to this dispatcher (service results, child node reports) to whoever waits.

Each dispatcher has its own durable consumer on `reply.<its id>.>`; a result nobody waits for
any more (late, or from a retried attempt) is acknowledged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from nats.aio.msg import Msg

from bus.codec import BadMessage, check_wire, decode
from schemas.messages import NodeReport, ServiceResult

log = logging.getLogger("sluice.dispatcher")


class Waiter:
    """The results of one file's stage, as they arrive. The stage is woken once every service in
    `awaiting` has answered, or at once on a failure (it may be retried), not on every result:
    each wake-up is a cancel scope and a pass over the stage's services."""

    def __init__(self) -> None:
        self.results: dict[str, ServiceResult] = {}
        self.awaiting: set[str] = set()
        self.changed = anyio.Event()

    def deliver(self, result: ServiceResult) -> None:
        self.results[result.service] = result
        if result.error is not None or self.awaiting.issubset(self.results):
            self.changed.set()

    async def wait(self, awaiting: set[str], seconds: float) -> None:
        """Until every one of `awaiting` has answered, one failed, or `seconds` passed."""
        self.awaiting = awaiting
        if not awaiting.issubset(self.results):  # else they all answered while the stage was busy
            with anyio.move_on_after(max(seconds, 0)):
                await self.changed.wait()
        self.changed = anyio.Event()


class ReplyRouter:
    def __init__(self, dead_letter: Callable) -> None:
        self._waiters: dict[str, Waiter] = {}
        self._trees: dict[str, Callable[[NodeReport], None]] = {}
        self._dead_letter = dead_letter

    def expect(self, corr: str, waiter: Waiter) -> None:
        self._waiters[corr] = waiter

    def forget(self, corr: str) -> None:
        self._waiters.pop(corr, None)

    def watch_tree(self, sid: str, on_report: Callable[[NodeReport], None]) -> None:
        self._trees[sid] = on_report

    def unwatch_tree(self, sid: str) -> None:
        self._trees.pop(sid, None)

    async def handle(self, msg: Msg) -> bool:
        """Hand the reply to whoever waits for it (or drop it: nobody does); False if it was
        dead-lettered instead (it is then terminated: never redelivered)."""
        # <prefix>.reply.<dispatcher>.node, or .result.<service> (the publisher, under auth its identity)
        kind, _, publisher = msg.subject.split(".reply.", 1)[-1].partition(".")[2].partition(".")
        try:
            check_wire(msg.headers)
            if kind == "result":
                result = decode(msg.data, ServiceResult)
                if result.service != publisher:
                    raise BadMessage(f"a result for {result.service!r} published as {publisher or 'nobody'!r}")
                waiter = self._waiters.get(result.corr)
                if waiter is not None:
                    waiter.deliver(result)
            elif kind == "node":
                report = decode(msg.data, NodeReport)
                on_report = self._trees.get(report.sid)
                if on_report is not None:
                    on_report(report)
            else:
                raise BadMessage(f"unknown reply kind {kind!r}")
        except BadMessage as exc:
            await self._dead_letter(msg, str(exc))
            return False
        return True


class ReplyAcks:
    """Acknowledges the replies this dispatcher has routed, in the order they were pushed.

    On an interest reply stream the consumer acks all (`AckPolicy.ALL`): one ack covers every
    reply before it, so only the last of a run is acked, when nothing more waits in the
    subscription or every `every` replies. That saves a message per reply and, on the server,
    lets a run of replies leave the stream together (bus.provision.finish_reply_stream). On a
    work-queue reply stream (an earlier release's) each reply is acked.
    """

    def __init__(self, batched: bool, waiting: Callable[[], int], every: int = 64) -> None:
        self.batched = batched
        self._waiting = waiting  # replies pushed to this process and not handled yet
        self._every = every
        self._unacked = 0

    async def routed(self, msg: Msg) -> None:
        if self.batched:
            self._unacked += 1
            if self._waiting() and self._unacked < self._every:
                return
            self._unacked = 0
        await msg.ack()
