"""Pipelined JetStream publishes: acks awaited under a timeout, in a sliding window."""

from __future__ import annotations

import anyio
import pytest
from nats.js.errors import NoStreamResponseError

from bus.connect import close, connect
from bus.publish import jetstream_publish, jetstream_publish_all


@pytest.fixture
async def js(nats_url, prefix):
    nc = await connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=prefix, subjects=[f"{prefix}.>"])
    yield js
    await js.delete_stream(prefix)
    await close(nc)


async def test_publishes_are_stored_and_acknowledged(js, prefix):
    first = await jetstream_publish(js, f"{prefix}.a", b"1", headers={"Nats-Msg-Id": "one"})
    again = await jetstream_publish(js, f"{prefix}.a", b"1", headers={"Nats-Msg-Id": "one"})
    acks = await jetstream_publish_all(js, [(f"{prefix}.b", b"2", None), (f"{prefix}.c", b"3", None)])
    assert again.duplicate and again.seq == first.seq and [a.seq for a in acks] == [first.seq + 1, first.seq + 2]


async def test_a_sliding_window_keeps_the_order_and_stops_at_a_failure(js, prefix):
    acks = await jetstream_publish_all(js, [(f"{prefix}.w", bytes([n]), None) for n in range(7)], window=2)
    assert [a.seq for a in acks] == list(range(acks[0].seq, acks[0].seq + 7))
    with pytest.raises(NoStreamResponseError):
        await jetstream_publish_all(js, [(f"nostream{prefix}.x", b"", None), *[(f"{prefix}.after", b"", None)] * 3],
                                    window=1)
    info = await js.stream_info(prefix, subjects_filter=f"{prefix}.after")
    assert not info.state.subjects  # nothing more was sent once the first failed


async def test_a_publish_nobody_stores_fails_instead_of_hanging(js, prefix):
    with pytest.raises(NoStreamResponseError):
        await jetstream_publish_all(js, [(f"{prefix}.ok", b"", None), (f"nostream{prefix}.x", b"", None)])


async def test_an_ack_that_never_comes_times_out(js, prefix, nats_url):
    silent = await connect(nats_url)  # takes the message and never answers: no ack, and no "no responders"
    try:
        await silent.subscribe(f"silent{prefix}")
        await silent.flush()
        with anyio.fail_after(5), pytest.raises(TimeoutError, match="no ack"):
            await jetstream_publish(js, f"silent{prefix}", b"", timeout=0.2)
    finally:
        await close(silent)
