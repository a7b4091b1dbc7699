"""Replies reach their dispatcher pushed and unacknowledged, from an interest stream (bus.provision,
Dispatcher._subscribe_replies); a reply stream made by an older Sluice (a work queue) is made anew."""

from __future__ import annotations

import anyio
import pytest
from nats.js.api import RetentionPolicy, StreamConfig

from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, make

pytestmark = pytest.mark.timeout(90)


async def test_a_work_queue_reply_stream_is_made_anew_and_replies_leave_it_once_pushed(nats_url, prefix):
    names = Names(prefix)
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        # As an older Sluice provisioned it, with a reply nobody will read any more.
        await js.add_stream(StreamConfig(name=names.reply_stream, subjects=[f"{prefix}.reply.>"],
                                         retention=RetentionPolicy.WORK_QUEUE))
        await js.publish(names.reply("gone", "node"), b"stale")
        await provision(js, names)
        info = await js.stream_info(names.reply_stream)
        assert RetentionPolicy(info.config.retention) is RetentionPolicy.INTEREST and info.state.messages == 0
        echo = make(Echo, "echo")
        async with onebox(nats_url, prefix, [echo]), await Client.connect(nats_url, prefix) as client:
            for n in range(3):
                summary = await client.wait(await client.submit_bytes([(f"{n}.txt", f"note {n}\n".encode())]), timeout=30)
                assert [r.service for r in summary.files[0].results] == ["echo"] and not summary.files[0].errors
            # Pushed without acks: nothing stays behind in the stream (a work queue would keep
            # every unacknowledged reply for a day).
            with anyio.fail_after(5):
                while (await js.stream_info(names.reply_stream)).state.messages:
                    await anyio.sleep(0.05)
    finally:
        await close(nc)
