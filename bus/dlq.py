"""The operator's side of the dead-letter stream: list, read, replay and purge letters.

A letter is known by its sequence number in the `<PREFIX>_DLQ` stream (stable, unlike a
position in a list). Replaying republishes the kept bytes on the original subject under a new
`Nats-Msg-Id` (the original id may still be inside the stream's duplicate window, which would
silently drop the replay), counts the replay in a header, and deletes the letter only once the
stream has acknowledged the republished message. A message that is still bad is dead-lettered
again by whoever reads it, as a new letter with its replay count: nothing replays by itself,
so nothing loops.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from bus.codec import BadMessage, decode
from bus.deadletter import REPLAYS_HEADER
from bus.subjects import Names
from schemas.messages import DeadLetter
from schemas.wire import WIRE_HEADER


class DlqError(RuntimeError):
    """A letter that does not exist or cannot be replayed; the message says which and why."""


@dataclass(frozen=True)
class Letter:
    seq: int
    origin: str  # who gave up on the message: "dispatcher", "svc-<name>"
    letter: DeadLetter

    @property
    def complete(self) -> bool:
        return self.letter.size < 0 or self.letter.size == len(self.letter.data)


def _letter(names: Names, seq: int, subject: str, data: bytes) -> Letter:
    origin = subject.removeprefix(names.dead_letter(""))
    try:
        return Letter(seq, origin, decode(data, DeadLetter))
    except BadMessage as exc:  # someone published junk on the DLQ subject: show it, never choke on it
        return Letter(seq, origin, DeadLetter("?", f"unreadable dead letter: {exc}", data, 0.0, len(data)))


async def letters(js: JetStreamContext, names: Names) -> list[Letter]:
    """Every letter, oldest first (an ephemeral, unacknowledged reader: nothing is consumed)."""
    try:
        info = await js.stream_info(names.dlq_stream)
    except NotFoundError:
        return []
    if not info.state.messages:
        return []
    sub = await js.pull_subscribe(
        names.dead_letter(">"), stream=names.dlq_stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, mem_storage=True,
                              inactive_threshold=30.0, num_replicas=1))
    found: list[Letter] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(256, timeout=1.0)
            except NatsTimeout:
                break  # letters expired or were deleted since the count: we have them all
            found += [_letter(names, m.metadata.sequence.stream, m.subject, m.data) for m in msgs]
            if msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


async def letter(js: JetStreamContext, names: Names, seq: int) -> Letter:
    try:
        msg = await js.get_msg(names.dlq_stream, seq)
    except NotFoundError:
        raise DlqError(f"no dead letter {seq}") from None
    return _letter(names, seq, msg.subject, msg.data or b"")


async def replay(js: JetStreamContext, names: Names, seq: int) -> Letter:
    """Republish letter `seq` on its original subject, then delete it; returns what was replayed."""
    found = await letter(js, names, seq)
    dead = found.letter
    if not found.complete:
        raise DlqError(f"dead letter {seq}: only {len(dead.data)} of its {dead.size} bytes were kept, so it cannot be replayed")
    if not dead.subject.startswith(f"{names.prefix}.") or dead.subject.startswith(names.dead_letter("")):
        raise DlqError(f"dead letter {seq}: {dead.subject[:80]!r} is not a subject of prefix {names.prefix!r}")
    headers = {"Nats-Msg-Id": f"replay:{seq}:{uuid.uuid4().hex}", REPLAYS_HEADER: str(dead.replays + 1)}
    if dead.wire:
        headers[WIRE_HEADER] = dead.wire
    await js.publish(dead.subject, dead.data, headers=headers)
    await js.delete_msg(names.dlq_stream, seq)
    return found


async def purge(js: JetStreamContext, names: Names) -> int:
    """Drop every letter; returns how many there were."""
    try:
        count = (await js.stream_info(names.dlq_stream)).state.messages
    except NotFoundError:
        return 0
    await js.purge_stream(names.dlq_stream)
    return count
