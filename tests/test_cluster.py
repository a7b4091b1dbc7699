"""A 3-node JetStream cluster on loopback: everything R3, and the stream leader killed under load.

The cluster is `bus.cluster.LoopbackCluster` (what `sluice up --cluster 3` runs); the dispatcher
and services are OS processes (`tests/procs.py`) given all three URLs, as a deployment would.
"""

from __future__ import annotations

import re
import time
import uuid

import anyio
import pytest

from bus.cluster import LoopbackCluster
from bus.connect import close, connect
from bus.provision import REPLICAS_ENV, provision
from bus.subjects import Names
from faultload import Load
from procs import Component, Mesh
from sluice.client import Client
from test_faults import CHAOS, TRICKLE, chaos_only, text_file

pytestmark = pytest.mark.timeout(120)

RESUME_WITHIN = 20.0  # seconds from the leader's death until a submission sent after it has completed (measured 5-10 s)


async def test_stream_leader_killed_under_load(tmp_path):
    prefix = "t" + uuid.uuid4().hex[:8]
    names = Names(prefix)
    async with LoopbackCluster(3, data_dir=tmp_path / "cluster") as cluster:
        async with Mesh(cluster.url, prefix, tmp_path, replicas=3) as mesh, await Client.connect(cluster.url, prefix) as client:
            await mesh.instances(2, CHAOS, "--config", "delay=0.1")
            await mesh.dispatcher()
            js = client.js
            streams = (names.submit_stream, names.task_stream, names.reply_stream, names.summary_stream, names.dlq_stream)
            for stream in streams:
                assert (await js.stream_info(stream)).config.num_replicas == 3, stream
            for durable in (names.ROOT_CONSUMER, names.CHILD_CONSUMER):
                assert len((await js.consumer_info(names.submit_stream, durable)).cluster.replicas) == 2
            assert len((await js.consumer_info(names.task_stream, names.service_consumer("chaos"))).cluster.replicas) == 2

            load = Load(client)

            async with anyio.create_task_group() as tg:
                tg.start_soon(load.trickle, text_file, TRICKLE)
                await load.wait_completed(5, timeout=30)
                leaders = {s: (await js.stream_info(s)).cluster.leader for s in streams}
                leader = leaders[names.submit_stream]
                await cluster.server(leader).kill()
                killed_at, sent_before = time.monotonic(), len(load.sent)
                assert sent_before < TRICKLE, "the submitter had finished before the kill: the fault missed the load"
                resumed_in = await load.first_completed_after(sent_before, timeout=RESUME_WITHIN + 15)
                accepted_in = load.accepted_at[sent_before] - killed_at
                await cluster.restart(leader)
            found = await load.outcome("3-node JetStream cluster (R3): submit-stream leader SIGKILLed under load", timeout=60,
                                       notes=lambda _: (
                f"killed {leader}, leader of {sum(v == leader for v in leaders.values())} of the 5 streams; "
                f"the next submission accepted {accepted_in:.1f} s later (election), done "
                f"{resumed_in:.1f} s after the kill; {load.resubmits} submit retries"))
            for summary in found.values():
                chaos_only(summary)
            assert resumed_in < RESUME_WITHIN, f"work resumed only {resumed_in:.1f} s after the leader died"
            assert time.monotonic() - killed_at < 60


async def test_sluice_up_cluster_runs_a_replicated_mesh(tmp_path):
    """`sluice up --cluster 3`: three nodes, the streams R3 from the start, a scan goes through,
    and Ctrl-C stops it cleanly (the nodes must not die with the mesh still stopping)."""
    up = Component("up", ["up", "--cluster", "3", "--data-dir", str(tmp_path / "data")], tmp_path / "up.log")
    await up.start()
    try:
        with anyio.fail_after(60):
            while not (match := re.search(r"export SLUICE_NATS_URL=(\S+)", up.log_path.read_text())):
                assert up.running, up.log_tail()
                await anyio.sleep(0.1)
        url = match.group(1)
        assert len(url.split(",")) == 3
        nc = await connect(url)
        try:
            info = await nc.jetstream().stream_info(Names().submit_stream)
            assert info.config.num_replicas == 3 and len(info.cluster.replicas) == 2
        finally:
            await close(nc)
        async with await Client.connect(url) as client:
            [summary] = await client.scan([tmp_path / "up.log"], timeout=60)
        assert summary.files[0].results, "no built-in service analysed the file"
        assert await up.interrupt() == 0  # Ctrl-C: the mesh stops first, then the three nodes
        assert "Traceback" not in up.log_path.read_text(), up.log_tail()
    finally:
        await up.stop()


async def test_replicas_follow_the_deployment(tmp_path, monkeypatch):
    """A new deployment takes $SLUICE_REPLICAS; a component started later without it keeps what
    is deployed (it must never scale an R3 cluster down to R1); a bad value is refused, said."""
    async with LoopbackCluster(3, data_dir=tmp_path / "cluster") as cluster:
        nc = await connect(cluster.url)
        try:
            js = nc.jetstream()
            replicated, plain = Names("t" + uuid.uuid4().hex[:8]), Names("t" + uuid.uuid4().hex[:8])
            monkeypatch.setenv(REPLICAS_ENV, "3")
            await provision(js, replicated)
            monkeypatch.delenv(REPLICAS_ENV)
            stores = await provision(js, replicated)  # a later component, told nothing
            await provision(js, plain)
            assert (await js.stream_info(replicated.submit_stream)).config.num_replicas == 3
            assert (await stores.registry.status()).stream_info.config.num_replicas == 3
            assert (await js.stream_info(plain.submit_stream)).config.num_replicas == 1
            monkeypatch.setenv(REPLICAS_ENV, "three")
            with pytest.raises(ValueError, match="SLUICE_REPLICAS='three'"):
                await provision(js, Names("t" + uuid.uuid4().hex[:8]))
        finally:
            await close(nc)
