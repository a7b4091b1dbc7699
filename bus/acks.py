"""JetStream publishes and their acks, one subscription per connection, the acks read by msgspec.

What nats-py's `publish_async` does, without its per-message costs: a semaphore taken under
`asyncio.wait_for`, a token with `secrets.token_hex` (a system call), and each ack parsed by the
json module into a dataclass (8 us; msgspec: 0.3 us). Every Sluice component publishes to
JetStream for each task or file (the dispatcher three or four times a file), so this was a
tenth of a dispatcher's Python per file. It also gives a JetStream error to the publisher, which
`publish_async` of nats-py 2.16.0 never does (nats.py issue 985: the future stayed pending).

`send` returns the ack's future; bus.publish awaits it under a timeout and forgets the token if
none comes. A reconnect keeps the subscription (nats-py subscribes again); an ack lost with the
connection is a timeout, and the publish is retried, de-duplicated by its Nats-Msg-Id.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

NO_RESPONDERS = "503"  # the status of a reply no stream sent: nothing stores that subject


class _Ack(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    domain: str | None = None
    duplicate: bool | None = None
    error: dict | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


class Acks:
    """The pending acks of one connection's JetStream publishes."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        # Under the connection's own inbox prefix: the only replies an identity may receive (bus.auth).
        self._prefix = f"{nc._inbox_prefix.decode()}.{nc._nuid.next().decode()}."
        self._tokens = itertools.count()
        self._waiting: dict[str, asyncio.Future[PubAck]] = {}
        self._subscribed = False
        self._subscribing = asyncio.Lock()  # the first publishes of a connection may come at once

    async def send(self, subject: str, payload: bytes, headers: dict[str, str] | None) -> tuple[str, asyncio.Future[PubAck]]:
        """Publish; the token to `forget` it by, and the future of its ack (a PubAck, or the error
        the stream answered with: an APIError, NoStreamResponseError when no stream takes it)."""
        await self._subscribe()
        token = format(next(self._tokens), "x")
        future = self._waiting[token] = asyncio.get_running_loop().create_future()
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except BaseException:
            self.forget(token)
            raise
        return token, future

    def forget(self, token: str) -> None:
        self._waiting.pop(token, None)

    async def _subscribe(self) -> None:
        if self._subscribed:
            return
        async with self._subscribing:
            if not self._subscribed:  # a failure leaves it for the next publish to try again
                await self._nc.subscribe(self._prefix + "*", cb=self._on_ack)
                self._subscribed = True

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix):], None)
        if future is None or future.done():
            return  # timed out already (forgotten), or cancelled
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            future.set_exception(NoStreamResponseError())
            return
        try:
            ack = _decode_ack(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(APIError(description=f"unreadable publish ack: {exc}"))
            return
        if ack.error is not None:
            future.set_exception(_api_error(ack.error))
        else:
            future.set_result(PubAck(stream=ack.stream, seq=ack.seq, domain=ack.domain, duplicate=ack.duplicate))


def _api_error(error: dict) -> APIError:
    """nats-py's error class for a JetStream error (BadRequestError for a 400, ServiceUnavailableError
    for a 503 such as a full stream, ...). nats-py 2.16.0's `from_error` raises what it builds."""
    try:
        return APIError.from_error(error)
    except APIError as exc:
        return exc


_ACKS: weakref.WeakKeyDictionary[Client, Acks] = weakref.WeakKeyDictionary()


def acks_of(js: JetStreamContext) -> Acks:
    """The acks of the connection `js` publishes on (made on its first publish)."""
    nc = js._nc
    acks = _ACKS.get(nc)
    if acks is None:
        acks = _ACKS[nc] = Acks(nc)
    return acks
