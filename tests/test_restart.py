"""A dispatcher that stops mid-submission hands it back; the next one finishes it."""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from bus.subjects import Names
from sluice.client import Client
from sluice.onebox import run_dispatcher, run_service
from svcs import Gated, make

pytestmark = pytest.mark.timeout(60)


async def test_dispatcher_stopped_mid_submission_loses_nothing(nats_url, prefix):
    names = Names(prefix)
    gated = make(Gated, "gated", timeout=20)
    services_stop, first_stop, second_stop = anyio.Event(), anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg, await Client.connect(nats_url, prefix) as client:
        started = anyio.Event()
        tg.start_soon(run_service, gated, nats_url, names, services_stop, started)
        await started.wait()
        async with anyio.create_task_group() as first:
            first_ready = anyio.Event()
            first.start_soon(partial(run_dispatcher, nats_url, names, first_stop, lambda d: first_ready.set(), drain_grace=0.1))
            await first_ready.wait()
            sid = await client.submit_bytes([("slow.txt", b"slow\n")])
            with anyio.fail_after(20):
                await gated.entered.wait()
            first_stop.set()  # the first dispatcher goes away while the service is still working

        second = []
        second_ready = anyio.Event()
        tg.start_soon(partial(run_dispatcher, nats_url, names, second_stop,
                              lambda d: (second.append(d), second_ready.set())))
        await second_ready.wait()
        gated.release.set()
        summary = await client.wait(sid, timeout=30)
        assert summary.files[0].results[0].sections[0].title == "released"
        assert summary.errors == 0
        assert second[0].completed == 1  # the second dispatcher finished it
        second_stop.set()
        services_stop.set()
