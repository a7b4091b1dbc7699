"""A task's timeout runs from when its service is handed it, not from when it was sent.

A stage's task waits in each service's queue (its durable consumer, which all of the service's
instances share) behind the tasks sent before it. Timed from the send, a task at the back of a
busy queue ran out of time before any instance had seen it: it was retried, which put a second
copy behind the first (the service then ran the file twice), and after three tries the file
was given a timeout error although the service was working as fast as it could. Measured: ten
files at once through one instance taking 0.3 s each, with a 1 s timeout and 0.5 s grace, ran
one file twice (tests/test_mesh.py).

So the dispatcher first waits a little (`QUEUE_POLL`, or half the service's time if shorter),
then, if no result has come, asks where the queue is: the stream sequence its consumer last
handed out. A task behind that point is still queued, and is looked at again `QUEUE_POLL` later;
once it has been handed out, it gets its whole timeout and grace from then (it was handed out
at most one look earlier). A task queued for `Limits.queue_wait` runs out of time all the same,
and the task's own deadline (past which a service skips it) allows for that wait. Looks are
shared: one consumer look-up per queue per `QUEUE_POLL / 2` serves every stage waiting on it,
and a mesh whose services answer within `QUEUE_POLL` never looks at all.
"""

from __future__ import annotations

import logging
import time

from nats.js import JetStreamContext

from schemas.limits import Limits
from schemas.messages import ServiceRecord

log = logging.getLogger("sluice.dispatcher")

QUEUE_POLL = 1.0  # seconds between looks at a queue a task still waits in
IN_PROCESS = -1  # the "stream sequence" of a task handed to a service in this process: it has none


class QueuePositions:
    """How far each service's queue has been handed out, looked up at most every QUEUE_POLL / 2 s."""

    def __init__(self, js: JetStreamContext, stream: str) -> None:
        self._js = js
        self._stream = stream
        self._seen: dict[str, tuple[int, float]] = {}  # consumer -> last handed-out stream sequence, when looked up

    async def handed_out(self, consumer: str, seq: int) -> bool:
        """Whether the consumer has handed out the message at stream sequence `seq` (True when
        it cannot be told: the task's time then runs, as if it had been)."""
        position, when = self._seen.get(consumer, (0, -QUEUE_POLL))
        if position >= seq:
            return True  # positions only move on
        if time.monotonic() - when < QUEUE_POLL / 2:
            return False
        try:
            info = await self._js.consumer_info(self._stream, consumer)
        except Exception as exc:  # noqa: BLE001 - a look that fails only leaves the deadline as it was
            log.info("looking at queue %s failed: %s", consumer, exc)
            return True
        position = max(info.delivered.stream_seq, position)
        self._seen[consumer] = (position, time.monotonic())
        return position >= seq


class StageClock:
    """The deadlines of one stage's services, each timed from its handover."""

    def __init__(self, queues: QueuePositions, grace: float) -> None:
        self._queues = queues
        self._grace = grace
        self.deadlines: dict[str, float] = {}
        self._sent: dict[str, tuple[int, float]] = {}  # service -> its task's stream sequence, when sent
        self._handed: set[str] = set()

    def sending(self, record: ServiceRecord, now: float) -> None:
        """A task for `record` is about to go out: look at its queue if nothing came back by then."""
        self.deadlines[record.name] = now + min(QUEUE_POLL, (record.timeout + self._grace) / 2)
        self._sent[record.name] = (0, now)
        self._handed.discard(record.name)

    def handing(self, record: ServiceRecord, now: float) -> None:
        """`record`'s task goes to its service in this process (dispatcher/lanes.py): it waits for
        one of the service's slots, not in a queue; `started` says when it has one."""
        self.sending(record, now)
        self._sent[record.name] = (IN_PROCESS, now)

    def started(self, record: ServiceRecord) -> None:
        """The service (in this process) has started `record`'s task: its time runs from now."""
        self._handed.add(record.name)
        self.deadlines[record.name] = time.monotonic() + record.timeout + self._grace

    def sent(self, record: ServiceRecord, seq: int) -> None:
        """The task is stored at stream sequence `seq`."""
        self._sent[record.name] = (seq, self._sent[record.name][1])

    async def out_of_time(self, record: ServiceRecord, now: float) -> bool:
        """Whether `record`'s task has had its time (only when its deadline has passed); if not,
        its deadline has moved on."""
        if now < self.deadlines[record.name]:
            return False
        if record.name in self._handed:
            return True
        seq, when = self._sent[record.name]
        if seq != IN_PROCESS and await self._queues.handed_out(record.consumer, seq):
            self._handed.add(record.name)
            self.deadlines[record.name] = now + record.timeout + self._grace
            return False
        if now - when >= Limits.queue_wait:
            return True
        self.deadlines[record.name] = now + QUEUE_POLL
        return False
