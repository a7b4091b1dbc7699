"""`sluice up --workers N`: the one-box mesh in N processes, stopped cleanly, nothing lost.

`sluice up` runs as a real process (tests/procs.py) against the test's nats-server; what it
runs is seen from outside, in the registry: each service instance's key names its process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from sluice.client import Client
from sluice.workers import READY
from tests.procs import START_TIMEOUT, Component, Mesh

WORKERS = 2
SERVICES = ("characterize", "iocs", "safelist", "yara")


def instance_pids(keys: list[str], service: str) -> set[int]:
    """The processes running `service`, from its registry keys (`<service>.<host>-<pid>-<random>`)."""
    host = socket.gethostname()
    return {int(k.split(".", 1)[1][len(host) + 1:].split("-")[0]) for k in keys if k.startswith(f"{service}.{host}-")}


async def start_up(mesh: Mesh, workers: int = WORKERS) -> Component:
    """`sluice up --workers N` on the mesh's NATS, once it says it is up (every worker ready)."""
    up = mesh._component("up", ["up", "--workers", str(workers)])
    await up.start()
    with anyio.fail_after(START_TIMEOUT * 2):
        while "sluice is up" not in up.log_path.read_text(errors="replace"):
            assert up.running, up.log_tail()
            await anyio.sleep(0.1)
    return up


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(180)
async def test_up_runs_every_service_in_n_processes_and_ctrl_c_stops_them_all(nats_url, prefix, tmp_path: Path):
    async with Mesh(nats_url, prefix, tmp_path) as mesh:
        up = await start_up(mesh)
        keys = await mesh._registry_keys()
        pids = instance_pids(keys, "characterize")
        assert up.pid in pids and len(pids) == WORKERS  # this process, and one worker beside it
        for service in SERVICES:
            assert instance_pids(keys, service) == pids
        dispatchers = [c.name for c in await mesh.js.consumers_info(mesh.names.reply_stream)
                       if c.name.startswith("dispatcher-")]
        assert len(dispatchers) == WORKERS  # a dispatcher in each process

        async with await Client.connect(nats_url, prefix) as client:
            sids = [await client.submit_bytes([(f"n{i}.txt", f"note {i} to admin@example.com\n".encode())])
                    for i in range(20)]
            summaries = await client.wait_all(sids, timeout=120)
        assert len(summaries) == 20
        assert all({"characterize", "iocs"} <= {r.service for r in s.files[0].results} for s in summaries.values())

        assert await up.interrupt(grace=60) == 0  # Ctrl-C: SIGINT to `up`'s process group only
        assert not any(alive(pid) for pid in pids), "a worker outlived sluice up"
        assert instance_pids(await mesh._registry_keys(), "characterize") == set()  # each said goodbye


@pytest.mark.timeout(240)
async def test_a_sigterm_mid_scan_loses_nothing(nats_url, prefix, tmp_path: Path):
    """Submissions in flight when `up` is told to stop are handed back, and the next `up` finishes them."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh:
        up = await start_up(mesh)
        async with await Client.connect(nats_url, prefix) as client:
            sids = [await client.submit_bytes([(f"m{i}.txt", f"memo {i}: https://example.com/{i}\n".encode())])
                    for i in range(40)]
            up.signal(signal.SIGTERM)
            with anyio.fail_after(60):
                assert await up.exited() == 0
            await up.kill()  # reaped
            await start_up(mesh)
            summaries = await client.wait_all(sids, timeout=150)
        assert sorted(summaries) == sorted(sids)


@pytest.mark.timeout(120)
async def test_a_worker_told_to_stop_while_it_starts_stops_at_once(nats_url, prefix, tmp_path: Path):
    """A short scan can be over before its worker processes are up: a worker whose stdin closes
    while it starts stops there (it holds nothing yet), without starting its mesh first, and
    leaves no dispatcher consumer behind."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh:
        worker = await anyio.open_process([sys.executable, "-m", "sluice.workers", "--nats", nats_url, "--prefix", prefix],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        async with worker:
            await worker.stdin.aclose()
            with anyio.fail_after(60):
                said = b"".join([chunk async for chunk in worker.stdout])
                assert await worker.wait() == 0
        assert READY.encode() not in said  # stopped before its mesh was up, not after
        assert await mesh._dispatcher_consumers() == set()
