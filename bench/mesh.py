#!/usr/bin/env python3
"""Sluice mesh benchmark: four figures, each next to raw nats-py doing the same kind of work.

    .venv/bin/python bench/mesh.py [--only throughput,latency,large,memory] [--json] [--markdown]
        [--files 2000] [--latency-runs 200] [--large-mib 64] [--queued 10000] [--repeat 1] [--profile DIR]
    quick: --files 300 --latency-runs 50 --large-mib 16 --queued 1000

Prints figures; it is not a test. One run starts ONE embedded nats-server and measures, each
in a fresh prefix, with the dispatcher and the services in their own child processes (as
`sluice dispatcher` and service containers run) and the client in this one:

1. throughput: N distinct 1 KiB files, one submission each, through three no-op CORE services:
   files/s from the first submit to the last verdict. Raw: bench/raw.py's pipeline (submit,
   one task fanned out to three services, three replies, one summary) in the same processes.
   Also NATS messages per file, in and out of the server (/varz), and CPU ms per file of each
   process, ours and raw. --repeat N alternates N raw and N Sluice runs and shows the medians.
2. latency: one small file at a time, submit -> verdict, p50 and p99 over R sequential scans;
   raw: one item through the raw pipeline the same way.
3. large file: one file of M MiB through three services that each read all its bytes (a
   checksum): MB/s (10^6 bytes) from submit to verdict, after one 64 KiB random file has gone
   through (it loads the dispatcher's magika, once per process; its time is in the details).
   Raw: stock nats-py `ObjectStore.put` then three concurrent stock `get`s of it.
4. memory: the dispatcher process's peak RSS while Q submissions are queued and drained
   (no-op services); raw: the raw pipeline's dispatcher process for the same Q items.

Targets (this 2-core box): >= 1,000 files/s; p50 <= 10 ms, p99 <= 30 ms; >= 100 MB/s; RSS flat
and < 150 MB. --profile DIR samples the dispatcher and service processes with py-spy (CPU
only, from outside) and writes DIR/<bench>-<role>.txt: the top frames by self and total time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/mesh.py` from anywhere
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from bench import raw  # noqa: E402
from bench.report import Figure, markdown, pct, table  # noqa: E402
from bench.roles import ROLES, Child, child, serve  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402
from sluice.client import Client  # noqa: E402

BENCHES = ("throughput", "latency", "large", "memory")
SUBMIT_CONCURRENCY = 64
WARMUP = 5


def unique_file(i: int, tag: str, size: int = 1024) -> tuple[str, bytes]:
    """`size` bytes of text, unique per call (so nothing is a cache hit)."""
    head = f"bench note {tag}-{i} {secrets.token_hex(8)}\n".encode()
    return f"note-{i}.txt", (head + b"lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]


async def varz(server: EmbeddedServer, path: str = "varz") -> dict:
    """The server's /varz (message counters, version), or another monitoring page, by one raw HTTP/1.0 GET."""
    with anyio.fail_after(5):
        async with await anyio.connect_tcp("127.0.0.1", server.http_port) as stream:
            await stream.send(f"GET /{path} HTTP/1.0\r\nHost: 127.0.0.1:{server.http_port}\r\n\r\n".encode())
            data = b""
            try:
                while True:
                    data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


async def connection_msgs(server: EmbeddedServer) -> dict[str, int]:
    """Messages in + out so far per connection name (/connz), summed over connections of one name."""
    counts: dict[str, int] = {}
    for conn in (await varz(server, "connz?limit=1024")).get("connections", []):
        name = conn.get("name") or "?"
        counts[name] = counts.get(name, 0) + conn.get("in_msgs", 0) + conn.get("out_msgs", 0)
    return counts


class Run:
    """What every benchmark shares: the server, the options, where profiles go, the log."""

    def __init__(self, server: EmbeddedServer, args, use_uvloop: bool) -> None:
        self.server, self.args, self.use_uvloop = server, args, use_uvloop
        self.details: dict[str, dict] = {}

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def profile(self, bench: str, role: str) -> Path | None:
        if not self.args.profile:
            return None
        Path(self.args.profile).mkdir(parents=True, exist_ok=True)
        return Path(self.args.profile) / f"{bench}-{role}.collapsed"

    def child(self, bench: str, role: str, prefix: str):
        return child(role, self.server.url, prefix, self.use_uvloop, self.profile(bench, role))


@dataclass
class Procs:
    """The child processes of one side: its dispatcher(s) and its services."""

    dispatchers: list[Child]
    services: Child

    @property
    def dispatcher(self) -> Child:
        return self.dispatchers[0]

    def cpu(self) -> dict[str, float]:
        return {"dispatcher": sum(d.cpu_seconds() for d in self.dispatchers), "services": self.services.cpu_seconds(),
                "client": time.process_time()}


# Each side of a benchmark: submit one payload (returns an id); wait for its verdict.
Submit = Callable[[int, bytes], Awaitable[str]]
Wait = Callable[[str, float], Awaitable[object]]


async def sluice_side(run: Run, bench: str, services_role: str, body):
    """Run `body(submit, wait, procs)` against a fresh Sluice mesh; returns what it returns."""
    prefix = "b" + secrets.token_hex(4)
    async with AsyncExitStack() as stack:
        services = await stack.enter_async_context(run.child(bench, services_role, prefix))
        dispatchers = [await stack.enter_async_context(run.child(bench, "dispatcher", prefix))
                       for _ in range(run.args.dispatchers)]
        client = await stack.enter_async_context(await Client.connect(run.server.url, prefix))

        async def submit(i: int, data: bytes) -> str:
            return await client.submit_bytes([(f"file-{i}", data)])

        return await body(submit, client.wait, Procs(dispatchers, services))


async def raw_side(run: Run, bench: str, body):
    """Run `body(submit, wait, procs)` against a fresh raw nats-py pipeline."""
    prefix = "r" + secrets.token_hex(4)
    client = await raw.RawClient.connect(run.server.url, prefix)
    try:
        async with run.child(bench, "raw-services", prefix) as services, \
                run.child(bench, "raw-dispatcher", prefix) as dispatcher:
            async def submit(i: int, data: bytes) -> str:
                return await client.submit(f"{i:0{raw.ID_LEN}d}", data)

            return await body(submit, client.wait, Procs([dispatcher], services))
    finally:
        await raw.delete(client.js, client.names)
        await client.aclose()


async def drive(submit: Submit, wait: Wait, payloads: list[bytes], budget: float) -> float:
    """Submit every payload (bounded concurrency), wait for every verdict; seconds, first submit to last verdict."""
    slots = anyio.Semaphore(SUBMIT_CONCURRENCY)
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        async with slots:
            sid = await submit(i, payloads[i])
        await wait(sid, budget)

    with anyio.fail_after(budget):
        async with anyio.create_task_group() as tg:
            for i in range(len(payloads)):
                tg.start_soon(one, i)
    return time.perf_counter() - t0


# -- 1. throughput --------------------------------------------------------------------------------

async def bench_throughput(run: Run) -> list[Figure]:
    n = run.args.files
    tag = secrets.token_hex(3)
    payloads = [unique_file(i, tag)[1] for i in range(n)]
    runs: dict[str, list[dict]] = {"raw": [], "sluice": []}

    def body(side: str):
        async def measure(submit, wait, procs: Procs) -> None:
            v0, c0, cpu0 = await varz(run.server), await connection_msgs(run.server), procs.cpu()
            elapsed = await drive(submit, wait, payloads, run.args.budget)
            v1, c1, cpu1 = await varz(run.server), await connection_msgs(run.server), procs.cpu()
            runs[side].append({
                "files_s": n / elapsed, "seconds": elapsed,
                "nats_msgs_per_file": ((v1["in_msgs"] - v0["in_msgs"]) + (v1["out_msgs"] - v0["out_msgs"])) / n,
                "nats_msgs_per_file_by_connection": {name: round((c1[name] - c0.get(name, 0)) / n, 2) for name in sorted(c1)
                                                     if c1[name] != c0.get(name, 0)},
                "cpu_ms_per_file": {name: (cpu1[name] - cpu0[name]) * 1e3 / n for name in cpu0}})
        return measure

    for i in range(run.args.repeat):  # alternating, so a busy spell on the machine hits both sides
        run.log(f"throughput {i + 1}/{run.args.repeat}: {n} files of 1 KiB, raw nats-py ...")
        await raw_side(run, "throughput", body("raw"))
        run.log(f"throughput {i + 1}/{run.args.repeat}: {n} files of 1 KiB through three no-op services ...")
        await sluice_side(run, "throughput", "noop", body("sluice"))
    run.details["throughput"] = runs

    def median(side: str, value) -> float:
        return statistics.median(value(r) for r in runs[side])

    def figure(metric: str, unit: str, of, target: float | None, higher: bool) -> Figure:
        return Figure("throughput", metric, unit, median("sluice", of), median("raw", of), target, higher)

    return [
        figure(f"{n} x 1 KiB, 3 no-op services", "files/s", lambda r: r["files_s"], 1000, True),
        figure("NATS msgs in+out per file", "msgs", lambda r: r["nats_msgs_per_file"], None, False),
        figure("client+dispatcher+services CPU per file", "ms", lambda r: sum(r["cpu_ms_per_file"].values()), None, False),
    ]


# -- 2. latency -----------------------------------------------------------------------------------

async def sequential(submit: Submit, wait: Wait, runs: int, tag: str, budget: float) -> list[float]:
    """Milliseconds, submit -> verdict, for `runs` files one at a time (after a warm-up)."""
    times = []
    with anyio.fail_after(budget):
        for i in range(runs + WARMUP):
            data = unique_file(i, tag)[1]
            t0 = time.perf_counter()
            await wait(await submit(i, data), budget)
            if i >= WARMUP:
                times.append((time.perf_counter() - t0) * 1e3)
    return times


async def bench_latency(run: Run) -> list[Figure]:
    runs = run.args.latency_runs
    tag = secrets.token_hex(3)

    async def body(submit, wait, _procs) -> list[float]:
        return await sequential(submit, wait, runs, tag, run.args.budget)

    run.log(f"latency: {runs} sequential scans, raw nats-py ...")
    raw_ms = await raw_side(run, "latency", body)
    run.log(f"latency: {runs} sequential scans through three no-op services ...")
    ours = await sluice_side(run, "latency", "noop", body)
    run.details["latency"] = {side: {"runs": runs, "p50_ms": pct(t, 50), "p90_ms": pct(t, 90), "p99_ms": pct(t, 99),
                                     "mean_ms": statistics.fmean(t), "max_ms": max(t)}
                              for side, t in (("sluice", ours), ("raw", raw_ms))}
    return [
        Figure("latency", f"p50 of {runs} sequential", "ms", pct(ours, 50), pct(raw_ms, 50), 10, False),
        Figure("latency", f"p99 of {runs} sequential", "ms", pct(ours, 99), pct(raw_ms, 99), 30, False),
    ]


# -- 3. large file --------------------------------------------------------------------------------

async def bench_large(run: Run) -> list[Figure]:
    size = run.args.large_mib * 1024 * 1024
    data = os.urandom(size)
    crc = zlib.crc32(data)
    run.log(f"large file: {run.args.large_mib} MiB, stock nats-py put + 3 concurrent gets ...")
    async with await Client.connect(run.server.url, "b" + secrets.token_hex(4)) as plain:
        raw_s = await raw.object_store_round(plain.js, "rawobj" + secrets.token_hex(3), data, 3)
    run.log(f"large file: {run.args.large_mib} MiB through three services that read every byte ...")

    warmup: list[float] = []

    async def body(submit, wait, _procs) -> float:
        # A dispatcher loads magika (0.6-1.4 s here) for the first file of its life that libmagic
        # calls `data`, such as random bytes: once per process, so not part of moving a file.
        t0 = time.perf_counter()
        await wait(await submit(1, os.urandom(64 * 1024 + 1)), run.args.budget)
        warmup.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        summary = await wait(await submit(0, data), run.args.budget)
        elapsed = time.perf_counter() - t0
        reads = [view.metadata.get("crc32") for view in summary.files[0].results]
        if reads != [crc] * 3:
            raise RuntimeError(f"the services did not all read the whole file: {reads} (expected {crc})")
        return elapsed

    ours_s = await sluice_side(run, "large", "reader", body)
    run.details["large"] = {"bytes": size, "sluice_seconds": ours_s, "raw_seconds": raw_s, "sluice_warmup_seconds": warmup[0]}
    return [Figure("large file", f"{run.args.large_mib} MiB, 3 readers", "MB/s", size / 1e6 / ours_s, size / 1e6 / raw_s, 100, True)]


# -- 4. memory ------------------------------------------------------------------------------------

async def bench_memory(run: Run) -> list[Figure]:
    n = run.args.queued
    tag = secrets.token_hex(3)
    payloads = [unique_file(i, tag)[1] for i in range(n)]
    shapes: dict[str, dict] = {}

    def body(side: str):
        async def measure(submit, wait, procs: Procs) -> float:
            dispatcher = procs.dispatcher
            samples: list[tuple[float, float]] = []
            idle = dispatcher.rss_mb()

            async def sample() -> None:
                while True:
                    samples.append((time.perf_counter(), dispatcher.rss_mb()))
                    await anyio.sleep(0.1)

            async with anyio.create_task_group() as tg:
                tg.start_soon(sample)
                elapsed = await drive(submit, wait, payloads, run.args.budget)
                tg.cancel_scope.cancel()
            rss = [r for _, r in samples]
            half = rss[len(rss) // 2:]
            shapes[side] = {"idle_mb": idle, "peak_mb": max(rss), "end_mb": rss[-1], "second_half_growth_mb": half[-1] - half[0],
                            "seconds": elapsed, "samples": len(rss)}
            return max(rss)
        return measure

    run.log(f"memory: {n} queued submissions, raw nats-py dispatcher ...")
    raw_peak = await raw_side(run, "memory", body("raw"))
    run.log(f"memory: {n} queued submissions, Sluice dispatcher ...")
    ours = await sluice_side(run, "memory", "noop", body("sluice"))
    run.details["memory"] = shapes
    return [
        Figure("memory", f"dispatcher peak RSS, {n} queued", "MB", ours, raw_peak, 150, False),
        Figure("memory", "RSS growth over the 2nd half of the drain", "MB", shapes["sluice"]["second_half_growth_mb"],
               shapes["raw"]["second_half_growth_mb"], 10, False),
    ]


RUNNERS = {"throughput": bench_throughput, "latency": bench_latency, "large": bench_large, "memory": bench_memory}


async def amain(args, use_uvloop: bool) -> dict:
    figures: list[Figure] = []
    async with EmbeddedServer() as server:
        run = Run(server, args, use_uvloop)
        version = (await varz(server)).get("version", "?")
        run.log(f"nats-server {version} at {server.url}")
        for name in args.only:
            figures += await RUNNERS[name](run)
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "nats_server": version,
            "loop": "uvloop" if use_uvloop else "asyncio", "figures": figures, "details": run.details}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    ap.add_argument("--files", type=int, default=2000, help="files in the throughput run")
    ap.add_argument("--latency-runs", type=int, default=200, help="sequential scans in the latency run")
    ap.add_argument("--large-mib", type=int, default=64, help="size of the large file")
    ap.add_argument("--queued", type=int, default=10_000, help="submissions queued in the memory run")
    ap.add_argument("--repeat", type=int, default=1, help="throughput runs (raw and ours alternating); medians shown")
    ap.add_argument("--dispatchers", type=int, default=1, help="Sluice dispatcher processes (they share the work)")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds any one measurement may take")
    ap.add_argument("--no-uvloop", action="store_true", help="the default asyncio loop, here and in the children")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the dispatcher and service processes into DIR "
                    "(<bench>-<role>.collapsed for flame graphs, .txt for the top frames)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--serve", nargs=3, metavar=("ROLE", "URL", "PREFIX"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    use_uvloop = not args.no_uvloop and __import__("importlib").util.find_spec("uvloop") is not None
    backend = {"use_uvloop": use_uvloop}
    if args.serve:
        role, url, prefix = args.serve
        if role not in ROLES:
            ap.error(f"unknown role {role}")
        anyio.run(serve, role, url, prefix, backend_options=backend)
        return
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    if unknown := set(args.only) - set(BENCHES):
        ap.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(BENCHES)}")
    if min(args.files, args.latency_runs, args.large_mib, args.queued, args.dispatchers, args.repeat) < 1:
        ap.error("--files, --latency-runs, --large-mib, --queued, --dispatchers and --repeat must be at least 1")

    report = anyio.run(amain, args, use_uvloop, backend_options=backend)
    figures = report.pop("figures")
    if args.json:
        print(json.dumps({**report, "figures": [f.as_dict() for f in figures]}, indent=2))
        return
    print(f"\nSluice mesh bench: Python {report['python']} ({report['loop']}), {report['cpus']} CPUs, "
          f"nats-server {report['nats_server']} (embedded, one server for every benchmark)\n")
    print(markdown(figures) if args.markdown else table(figures))
    print("\n" + json.dumps(report["details"], indent=1))


if __name__ == "__main__":
    main()
