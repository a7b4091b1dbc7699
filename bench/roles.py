"""The benchmark's child processes: what each runs, how it starts and stops, and its memory.

A child is `python bench/mesh.py --serve ROLE URL PREFIX`: it prints READY once it can take
work and runs until its stdin closes (then stops cleanly). Roles:

  noop        three no-op CORE services (async, concurrency 64), one connection each
  reader      three CORE services that each read every byte of the file (zlib.crc32)
  dispatcher  the Sluice dispatcher alone, ready once it sees the three services
  worker      the dispatcher and the three no-op services in one process (a one-box worker)
  raw-services, raw-dispatcher   the raw nats-py pipeline of bench/raw.py

With a profile path, py-spy samples the child from READY until the block ends (bench/profile.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from bench import raw
from bench.process import reap
from bench.profile import recording
from bus.subjects import Names
from services.sdk import Result, ServiceBase
from services.sdk.manifest import parse_manifest
from sluice.onebox import onebox, run_dispatcher, run_service

READY = "BENCH-CHILD-READY"
START_TIMEOUT = 30.0
ROLES = ("noop", "reader", "dispatcher", "worker", "raw-services", "raw-dispatcher")
SERVICE_NAMES = ("alpha", "beta", "gamma")


class NoOp(ServiceBase):
    """Does nothing: what the mesh costs per file, without any analysis."""

    async def execute(self, request) -> None:
        request.result = Result([])


class Reader(ServiceBase):
    """Reads every byte of the file (a checksum over it), as any real analysis must; written as
    the built-in services are, a plain `execute` on a worker thread (zlib lets go of the GIL)."""

    def execute(self, request) -> None:
        request.metadata["crc32"] = zlib.crc32(request.file_contents)
        request.result = Result([])


def bench_services(role: str) -> list[ServiceBase]:
    cls = NoOp if role == "noop" else Reader
    return [cls(parse_manifest({"name": name, "version": "1.0", "stage": "CORE", "accepts": ".*", "concurrency": 64,
                                "timeout": 60}, f"bench service {name}"))
            for name in SERVICE_NAMES]


async def serve(role: str, url: str, prefix: str) -> None:
    """Run `role` until stdin closes; print READY when it can take work."""
    stop = anyio.Event()

    def ready() -> None:
        print(READY, flush=True)

    async def until_stdin_closes() -> None:
        await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        stop.set()

    names = Names(prefix)
    async with anyio.create_task_group() as tg:
        tg.start_soon(until_stdin_closes)
        if role in ("noop", "reader"):
            async with anyio.create_task_group() as services:
                for service in bench_services(role):
                    started = anyio.Event()
                    services.start_soon(run_service, service, url, names, stop, started)
                    await started.wait()
                ready()
        elif role == "worker":
            async with onebox(url, prefix, bench_services("noop")):
                ready()
                await stop.wait()
        elif role == "dispatcher":
            async def on_ready(dispatcher) -> None:
                await dispatcher.directory.wait_for(set(SERVICE_NAMES), timeout=START_TIMEOUT)
                ready()

            async with anyio.create_task_group() as inner:
                await run_dispatcher(url, names, stop, lambda d: inner.start_soon(on_ready, d))
        elif role == "raw-services":
            await raw.serve_services(url, prefix, stop, ready)
        else:
            await raw.serve_dispatcher(url, prefix, stop, ready)
        tg.cancel_scope.cancel()


class Child:
    """A running child process, and its resident memory."""

    def __init__(self, proc) -> None:
        self.proc = proc

    def cpu_seconds(self) -> float:
        """User + system CPU time so far: a cost per file that a loaded machine does not distort."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@asynccontextmanager
async def child(role: str, url: str, prefix: str, use_uvloop: bool, profile: Path | None = None) -> AsyncIterator[Child]:
    """`role` in a child process, ready to take work, for the duration of the block (profiled into `profile`)."""
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "mesh.py"), "--serve", role, url, prefix]
    if not use_uvloop:
        cmd.append("--no-uvloop")
    proc = await anyio.open_process(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
    try:
        with anyio.fail_after(START_TIMEOUT):
            seen = b""
            while READY.encode() not in seen:
                seen += await proc.stdout.receive()  # EndOfStream: the child died (its stderr is ours)
        if profile is None:
            yield Child(proc)
        else:
            async with recording(proc.pid, profile):
                yield Child(proc)
    finally:
        with anyio.CancelScope(shield=True):
            await proc.stdin.aclose()  # EOF: the child stops and exits
        await reap(proc, 20)
