"""bus.nats_client: coalesced socket writes (one write carries what several turns of the loop sent,
nothing is lost or reordered, a lone message still goes out at once), and headers parsed as
nats-py parses them."""

from __future__ import annotations

import asyncio

import anyio
import nats

from nats.aio.client import Client

from bus.nats_client import NatsClient
from bus.connect import close, connect

MESSAGES = 8


class _Writes:
    """Counts the socket writes of one connection."""

    def __init__(self, nc) -> None:
        self.count = 0
        transport = nc._transport
        original = transport.writelines

        def writelines(payload):
            self.count += 1
            return original(payload)

        transport.writelines = writelines


async def _publish_over_turns(nc, subject: str) -> None:
    """One message a turn of the loop, as tasks that each publish a little do."""
    for i in range(MESSAGES):
        await nc.publish(subject, str(i).encode())
        await asyncio.sleep(0)


async def _received(nats_url: str, subject: str, send) -> list[bytes]:
    """What a subscriber on its own connection gets of what `send` publishes, in order."""
    reader = await nats.connect(nats_url)
    got: list[bytes] = []
    done = anyio.Event()

    async def on_msg(msg) -> None:
        got.append(msg.data)
        if len(got) == MESSAGES:
            done.set()

    try:
        await reader.subscribe(subject, cb=on_msg)
        await reader.flush()
        await send()
        with anyio.fail_after(5):
            await done.wait()
    finally:
        await reader.close()
    return got


async def test_one_write_carries_the_messages_of_several_turns(nats_url, prefix):
    nc = await connect(nats_url)
    stock = await nats.connect(nats_url)
    try:
        assert isinstance(nc, NatsClient)
        ours, theirs = _Writes(nc), _Writes(stock)
        got = await _received(nats_url, f"{prefix}.ours", lambda: _publish_over_turns(nc, f"{prefix}.ours"))
        await _received(nats_url, f"{prefix}.stock", lambda: _publish_over_turns(stock, f"{prefix}.stock"))
        assert got == [str(i).encode() for i in range(MESSAGES)]  # all of them, in order
        assert ours.count <= 2 < theirs.count, (ours.count, theirs.count)
    finally:
        await close(nc)
        await stock.close()


async def test_a_lone_message_goes_out_at_once(nats_url, prefix):
    nc = await connect(nats_url)
    try:
        sub = await nc.subscribe(f"{prefix}.echo")
        await nc.flush()
        with anyio.fail_after(1):  # no timer holds it back: it is written once the loop is idle
            await nc.publish(f"{prefix}.echo", b"ping")
            msg = await sub.next_msg(timeout=1)
        assert msg.data == b"ping"
        with anyio.fail_after(2):
            await nc.flush()  # a PING/PONG round trip through the same flusher
    finally:
        await close(nc)


def test_headers_are_parsed_as_nats_py_parses_them() -> None:
    blocks = [b"Sluice-Wire: 1.1\r\nNats-Msg-Id: abc:def\r\n\r\n", b"A:b\r\nBad Name: x\r\nTab\tName: y\r\n",
              b"K:\t v \r\nNo colon\r\n\xff\xfe: z\r\nU: \xc3\xa9\xff\r\n", b"", b"\r\n\r\n", b": empty name\r\n"]
    for raw in blocks:
        assert NatsClient._parse_header_lines(raw) == Client._parse_header_lines(raw), raw
