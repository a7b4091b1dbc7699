"""JetStream publishes pipelined, not one request each: `publish_async`, each ack awaited under a timeout.

nats-py's `js.publish` is a request per message (its own reply wait and `wait_for` timer);
`publish_async` sends on one shared reply subscription and its window
(`publish_async_max_pending`, 4000 by default) bounds how many acks may be pending. Its futures
have no timeout of their own, so here every one is awaited under `timeout`: a publish whose ack
never comes fails (TimeoutError) instead of hanging, and the caller's message stays
unacknowledged and is redelivered, as with a failed `js.publish`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import anyio
from nats.js import JetStreamContext
from nats.js.api import PubAck

PUBLISH_TIMEOUT = 5.0

Message = tuple[str, bytes, dict[str, str] | None]  # subject, payload, headers


async def jetstream_publish(js: JetStreamContext, subject: str, payload: bytes, headers: dict[str, str] | None = None,
                  timeout: float = PUBLISH_TIMEOUT) -> PubAck:
    """Publish and wait for the stream's ack (stored, or a duplicate of a stored one)."""
    with anyio.fail_after(timeout):
        ack = await js.publish_async(subject, payload, headers=headers)
        return await ack


async def jetstream_publish_all(js: JetStreamContext, messages: Iterable[Message], timeout: float = PUBLISH_TIMEOUT) -> list[PubAck]:
    """Publish every message at once, then wait for all their acks; the first failure is raised
    after every ack has been awaited (none is left unobserved)."""
    with anyio.fail_after(timeout):
        futures = [await js.publish_async(subject, payload, headers=headers) for subject, payload, headers in messages]
        acks = await asyncio.gather(*futures, return_exceptions=True)
    for ack in acks:
        if isinstance(ack, BaseException):
            raise ack
    return acks
