"""Messages that cannot be used: terminated (never redelivered) and kept with the reason."""

from __future__ import annotations

import logging
import time

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bus.codec import encode
from bus.subjects import Names
from schemas.messages import DeadLetter

log = logging.getLogger("sluice.dlq")


async def dead_letter(js: JetStreamContext, names: Names, msg: Msg, reason: str, origin: str) -> None:
    log.error("dead letter from %s (%s): %s", msg.subject, origin, reason)
    try:
        await js.publish(names.dead_letter(origin), encode(DeadLetter(msg.subject, reason, msg.data[:1024 * 1024], time.time())))
    finally:
        if msg.reply:  # a JetStream message: make sure it is never redelivered
            await msg.term()
