"""Messages delivered as often as their consumer allows and never acknowledged: a component
that crashes on a file (a parser that segfaults, an OOM kill) never gets to dead-letter it.

The server says so once, on its max-deliveries advisory; from then on it never delivers the
message again, and on a work-queue stream the message would sit there unseen for good. This
turns each advisory into a dead letter (origin: the consumer that gave up; the message itself
as kept in the stream) and removes a stuck submission from its work queue, so it can be seen
and replayed with `sluice dlq`. The dispatcher runs it; with several dispatchers each gets the
advisory, and the DLQ stream's duplicate window keeps one letter.
"""

from __future__ import annotations

import logging
import time

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bus.codec import encode, wire_headers, wire_version
from bus.deadletter import KEPT
from bus.subjects import Names
from schemas.messages import DeadLetter, MaxDeliveriesAdvisory

log = logging.getLogger("sluice.dlq")

_decoder = msgspec.json.Decoder(MaxDeliveriesAdvisory)


def advisory_subject(stream: str) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*"


async def watch_exhausted(nc: Client, js: JetStreamContext, names: Names) -> list[Subscription]:
    """Dead-letter what the submission and task consumers give up on, until unsubscribed."""

    async def on_advisory(msg: Msg) -> None:
        try:
            advisory = _decoder.decode(msg.data)
            original = await js.get_msg(advisory.stream, advisory.stream_seq)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable max-deliveries advisory on %s: %s", msg.subject, exc)
            return
        except NotFoundError:
            return  # acknowledged or removed since: nothing is stuck
        except Exception as exc:  # noqa: BLE001 - the server says it once; say that we missed it
            log.error("could not fetch a message %s gave up on: %s", msg.subject, exc)
            return
        data = original.data or b""
        reason = (f"delivered {advisory.deliveries} times to {advisory.consumer} and never acknowledged "
                  "(did it crash or hang on it?)")
        log.error("dead letter from %s (%s): %s", original.subject, advisory.consumer, reason)
        letter = DeadLetter(original.subject, reason, data[:KEPT], time.time(), len(data),
                            wire=wire_version(original.headers) or "")
        try:
            await js.publish(names.dead_letter(advisory.consumer), encode(letter),
                             headers=wire_headers(f"exhausted:{advisory.stream}:{advisory.stream_seq}:{advisory.consumer}"))
            if advisory.stream == names.submit_stream:  # a work queue keeps it, undelivered, for good
                await js.delete_msg(advisory.stream, advisory.stream_seq)
        except NotFoundError:
            pass  # another dispatcher removed it first
        except Exception as exc:  # noqa: BLE001 - logged above with its reason at least
            log.error("could not dead-letter %s seq %d: %s", advisory.stream, advisory.stream_seq, exc)

    return [await nc.subscribe(advisory_subject(stream), cb=on_advisory)
            for stream in (names.submit_stream, names.task_stream)]
