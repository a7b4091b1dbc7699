"""Messages delivered as often as their consumer allows and never acknowledged: a component
that crashes on a file (a parser that segfaults, an OOM kill) never gets to dead-letter it.

The server says so once, on its max-deliveries advisory; from then on it never delivers the
message again, and on a work-queue stream the message would sit there unseen for good. This
turns each advisory into a dead letter (origin: the consumer that gave up; the message itself
as kept in the stream) and removes a stuck submission from its work queue, so it can be seen
and replayed with `sluice dlq`. The dispatcher runs it; with several dispatchers each gets the
advisory, and the DLQ stream's duplicate window keeps one letter.

An advisory is checked against the consumer it names before anything is deleted (`genuine`):
the subject it came on and its body agree, the consumer exists on that stream, gives up after
that many deliveries, has not acknowledged that message, and its filter takes the message's
subject. A forged advisory (any publisher on a NATS without auth) removes nothing.
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


def _subject_matches(pattern: str, subject: str) -> bool:
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


async def genuine(js: JetStreamContext, subject: str, advisory: MaxDeliveriesAdvisory, original_subject: str) -> str | None:
    """Why `advisory` (received on `subject`) is not what the server would say, or None if it checks out."""
    if subject.split(".")[-2:] != [advisory.stream, advisory.consumer]:
        return "its body names another stream or consumer than its subject"
    try:
        info = await js.consumer_info(advisory.stream, advisory.consumer)
    except NotFoundError:
        return f"no consumer {advisory.consumer} on {advisory.stream}"
    config = info.config
    if config.max_deliver is None or config.max_deliver < 1 or advisory.deliveries < config.max_deliver:
        return f"{advisory.deliveries} deliveries, but {advisory.consumer} gives up after {config.max_deliver}"
    if info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= advisory.stream_seq:
        return f"{advisory.consumer} has acknowledged everything up to {info.ack_floor.stream_seq}"
    filters = config.filter_subjects or ([config.filter_subject] if config.filter_subject else [">"])
    if not any(_subject_matches(f, original_subject) for f in filters):
        return f"message {advisory.stream_seq} ({original_subject}) is not one {advisory.consumer} takes"
    return None


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
        forged = await genuine(js, msg.subject, advisory, original.subject)
        if forged is not None:
            log.warning("max-deliveries advisory on %s ignored: %s", msg.subject, forged)
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
