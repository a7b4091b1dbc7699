"""Work-arounds for defects of the pinned nats-py (2.16.0), applied when the bus package is
imported; each names its upstream issue and goes once a release with the fix is pinned.

nats.py issue 985 (fix proposed in PR 994): `publish_async` never delivers a JetStream error
to its future. `_handle_async_reply` builds the error with `APIError.from_error`, which raises
instead of returning, so the error goes to the connection's error callback and the future stays
pending until our own ack timeout (bus.publish): a write to a full stream (a queue or file
store at its `max_bytes`: a 503 "maximum bytes exceeded") looked like a NATS that does not
answer, and a refused write with an expected sequence (bus.blobs.name_checked, an inline file
stored before) took that timeout, 5 s, instead of no time. Here the error is set on the future,
so the caller gets it at once and can say what it was (bus.retry).
"""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

_handle_async_reply = JetStreamContext._handle_async_reply


async def _handle_async_reply_with_errors(self: JetStreamContext, msg: Msg) -> None:
    try:
        await _handle_async_reply(self, msg)
    except APIError as exc:
        # The reply subject is the connection's async-reply prefix and then the publish's token.
        future = self._publish_async_futures.get(msg.subject.rsplit(".", 1)[-1])
        if future is not None and not future.done():
            future.set_exception(exc)


JetStreamContext._handle_async_reply = _handle_async_reply_with_errors
