"""Every JetStream publish of Sluice: pipelined, each ack bounded, brief outages waited out.

Pipelined: nats-py's `js.publish` is a request per message (its own reply wait and `wait_for`
timer); here every publish's ack comes on one subscription per connection (bus.acks), and is
awaited under a timeout: a publish whose ack never comes fails (TimeoutError) instead of
hanging, and the caller's message stays unacknowledged and is redelivered.

Patient (`publish`): while a cluster elects a new stream leader, publishes get 'no responders'
for about 3 s; while a server restarts, for as long as that takes. Failing there threw away a
finished tree and left its submission to come back only after a whole ack_wait (measured: 30 s
of a fault test's leader kill). Every Sluice publish carries a Nats-Msg-Id, so retrying one
whose ack was lost is de-duplicated by the stream, never stored twice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

import anyio
from nats.js import JetStreamContext
from nats.js.api import PubAck

from bus.acks import acks_of
from bus.codec import wire_headers
from bus.retry import PATIENCE, TRANSIENT, patiently

__all__ = ["PATIENCE", "TRANSIENT", "jetstream_publish", "jetstream_publish_all", "publish"]

PUBLISH_TIMEOUT = 5.0

Message = tuple[str, bytes, dict[str, str] | None]  # subject, payload, headers


async def jetstream_publish(js: JetStreamContext, subject: str, payload: bytes, headers: dict[str, str] | None = None,
                            timeout: float = PUBLISH_TIMEOUT) -> PubAck:
    """Publish and wait for the stream's ack (stored, or a duplicate of a stored one).

    The ack's future is cancelled by a timer after `timeout` (a plain timer: an anyio cancel
    scope per publish was a tenth of a service's CPU).
    """
    acks = acks_of(js)
    token, future = await acks.send(subject, payload, headers)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        future.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await future
    except asyncio.CancelledError:
        if expired:
            raise TimeoutError(f"no ack for {subject} within {timeout:g}s") from None
        raise
    finally:
        timer.cancel()
        acks.forget(token)


async def publish(js: JetStreamContext, subject: str, data: bytes, msg_id: str, patience: float = PATIENCE) -> PubAck:
    """Publish with a de-duplication id and the wire version header, retrying transient failures
    with backoff for up to `patience` s (bus.retry; past it, bus.retry.Unreachable, a TimeoutError):
    a resend is never stored twice."""
    return await patiently(f"publishing to {subject}", lambda: jetstream_publish(js, subject, data, wire_headers(msg_id)),
                           patience)


async def jetstream_publish_all(js: JetStreamContext, messages: Iterable[Message], timeout: float = PUBLISH_TIMEOUT,
                                window: int | None = None) -> list[PubAck]:
    """Publish every message, with at most `window` of them awaiting their acks at a time (None:
    all at once), each ack within `timeout`. A sliding window, not batches: the next message goes
    out as soon as the oldest is stored (a 64 MiB file in 512 KiB chunks uploaded at 142-155 MB/s
    against 106 MB/s sent and acknowledged sixteen at a time, bus/blobs.py). After a failure
    nothing more is sent; it is raised once every ack already asked for has been awaited (none
    is left unobserved)."""
    pending = acks_of(js)
    acks: list[PubAck] = []
    in_flight: deque[tuple[str, asyncio.Future]] = deque()
    failure: BaseException | None = None

    async def settle() -> None:
        nonlocal failure
        token, future = in_flight.popleft()
        try:
            with anyio.fail_after(timeout):
                acks.append(await future)
        except Exception as exc:  # noqa: BLE001 - the first is raised once every ack is settled
            future.cancel()
            failure = failure or exc
        finally:
            pending.forget(token)

    for subject, payload, headers in messages:
        if window is not None and len(in_flight) >= window:
            await settle()
        if failure is not None:
            break
        in_flight.append(await pending.send(subject, payload, headers))
    while in_flight:
        await settle()
    if failure is not None:
        raise failure
    return acks
