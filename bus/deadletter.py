"""Messages that cannot be used: terminated (never redelivered) and kept with the reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bus.codec import BadMessage, check_wire, decode, encode, wire_headers, wire_version
from bus.subjects import Names
from schemas.messages import DeadLetter

log = logging.getLogger("sluice.dlq")
T = TypeVar("T")

KEPT = 1024 * 1024  # bytes of a dead message kept; a longer one is listed but cannot be replayed
REPLAYS_HEADER = "Sluice-Replays"  # set by `sluice dlq replay`, so a letter that comes back says so


async def dead_letter(js: JetStreamContext, names: Names, msg: Msg, reason: str, origin: str) -> None:
    log.error("dead letter from %s (%s): %s", msg.subject, origin, reason)
    replays = (msg.headers or {}).get(REPLAYS_HEADER, "0")
    letter = DeadLetter(msg.subject, reason, msg.data[:KEPT], time.time(), len(msg.data),
                        int(replays) if replays.isdigit() and len(replays) < 7 else 0, wire_version(msg.headers) or "")
    try:
        await js.publish(names.dead_letter(origin), encode(letter), headers=wire_headers())
    finally:
        if msg.reply:  # a JetStream message: make sure it is never redelivered
            await msg.term()


async def decode_or_reject(
    js: JetStreamContext, names: Names, msg: Msg, cls: type[T], origin: str, check: Callable[[T], None] | None = None
) -> T | None:
    """The message as `cls`, or None after dead-lettering it (a major version of the wire contract
    this code cannot read, bad bytes, bad shape, or `check` refused it).

    A `reply_to` must be one of this prefix's dispatcher reply subjects, so a forged message
    cannot make a component publish where it should not.
    """
    try:
        check_wire(msg.headers)
        obj = decode(msg.data, cls)
        reply_to = getattr(obj, "reply_to", None)
        if reply_to is not None and not reply_to.startswith(f"{names.prefix}.reply."):
            raise BadMessage(f"reply_to {reply_to[:80]!r} is not a dispatcher reply subject")
        if check:
            check(obj)
    except BadMessage as exc:
        await dead_letter(js, names, msg, str(exc), origin)
        return None
    return obj
