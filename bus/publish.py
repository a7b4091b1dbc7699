"""A JetStream publish that waits out a brief unavailability instead of failing the work around it.

While a cluster elects a new stream leader, publishes get 'no responders' for about 3 s; while
a server restarts, for as long as that takes. Failing there threw away a finished tree and left
its submission to come back only after a whole ack_wait (measured: 30 s of a fault test's
leader kill). Every Sluice publish carries a Nats-Msg-Id, so retrying one whose ack was lost is
de-duplicated by the stream, never stored twice.
"""

from __future__ import annotations

import logging
import time

import anyio
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

log = logging.getLogger("sluice.bus")

TRANSIENT = (NoRespondersError, NoStreamResponseError, NatsTimeout, ServiceUnavailableError)
PATIENCE = 60.0  # seconds of retrying before the error is the caller's (its message is then redelivered)


async def publish(js: JetStreamContext, subject: str, data: bytes, msg_id: str, patience: float = PATIENCE) -> PubAck:
    """Publish with a de-duplication id, retrying transient failures with backoff for up to `patience` s."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            return await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
        except TRANSIENT as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.info("publish to %s failed (%s); retrying in %.1f s", subject, exc, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)
