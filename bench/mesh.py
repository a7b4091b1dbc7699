#!/usr/bin/env python3
"""Sluice mesh benchmark: raw nats-py JetStream baseline vs. Sluice, on one embedded nats-server.

    .venv/bin/python bench/mesh.py [--files 500] [--latency-runs 50] [--mesh both] [--json]

Prints figures; it is not a test. One run starts ONE nats-server (temporary data dir) and measures:

1. Raw nats-py on that server, with its own streams (BENCHRAW_*): publish_async rate (window of
   4000, every ack future awaited under a timeout), pull fetch+ack rate (batch 64, work-queue
   stream), sequential `js.publish` latency, and core request/reply latency for scale.
2. Sluice throughput: N distinct ~1 KiB text files (each naming URLs), one submission each,
   through the built-in `extract` and `iocs` services, with a fresh prefix and ignore_cache.
   Submit all (bounded concurrency), then wait all; files/s from first submit to last verdict.
   Counts stream messages per file (last_seq deltas of the prefix's streams, KV and object
   buckets included) and all NATS messages per file (server /varz, idle background subtracted).
3. Single-file latency: sequential submit -> verdict of one unique small file, p50/p90/p99.

Where the mesh (dispatcher + services, `sluice.onebox`) runs, `--mesh`:
  inprocess   on the client's own event loop, in this process: one Python process does it all.
  subprocess  in a child process (this script re-run with --serve-mesh): client and mesh each
              get their own interpreter, as `sluice up` + a client would. (There was no `sluice`
              CLI to start it with when this was written.)
  both        (default) each phase once per mode, a fresh prefix each time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/mesh.py` from anywhere
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import nats  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig  # noqa: E402

from bus.embedded import EmbeddedServer  # noqa: E402
from bus.subjects import Names  # noqa: E402
from schemas.messages import SubmissionParams  # noqa: E402
from sluice.client import Client  # noqa: E402
from sluice.onebox import onebox  # noqa: E402

RUN_BUDGET = 170.0  # seconds: the whole run is cut off (with an error) past this
MESH_START_TIMEOUT = 30.0
PAYLOAD = 256
READY = "SLUICE-MESH-READY"


# -- helpers --------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


async def varz(server: EmbeddedServer) -> dict:
    """The server's /varz (message counters, version), by one raw HTTP/1.0 GET."""
    with anyio.fail_after(5):
        async with await anyio.connect_tcp("127.0.0.1", server.http_port) as stream:
            await stream.send(f"GET /varz HTTP/1.0\r\nHost: 127.0.0.1:{server.http_port}\r\n\r\n".encode())
            raw = b""
            try:
                while True:
                    raw += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def prefix_streams(names: Names) -> list[str]:
    return [names.submit_stream, names.task_stream, names.reply_stream, names.summary_stream, names.dlq_stream,
            f"KV_{names.cache_bucket}", f"KV_{names.registry_bucket}", f"OBJ_{names.file_bucket}"]


async def stream_seqs(js, names: Names) -> dict[str, int]:
    """last_seq per stream of a prefix: messages ever stored (work-queue/interest streams delete theirs)."""
    out = {}
    for name in prefix_streams(names):
        try:
            out[name] = (await js.stream_info(name)).state.last_seq
        except Exception:  # noqa: BLE001 - a stream not there counts 0
            out[name] = 0
    return out


def unique_text(i: int, tag: str) -> tuple[str, bytes]:
    """~1 KiB of text, unique per call, naming two URLs, a domain and an e-mail address."""
    tok = secrets.token_hex(8)
    lines = [
        f"incident note {tag}-{i} ({tok})",
        f"The user clicked http://cdn{i}.{tag}-example.com/files/{tok}/invoice.pdf before lunch.",
        f"Beacon seen to https://update{i % 7}.malware-{tok[:6]}.xyz/gate.php?id={i}",
        f"Contact: analyst{i}@example.org, ticket {tok.upper()}.",
    ]
    body = "\n".join(lines) + "\n"
    while len(body) < 1024:
        body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "
    return f"note-{tag}-{i}.txt", (body[:1023] + "\n").encode()


def write_profile(profiler, path: str) -> None:
    """Call tree, then a flat list by self time (what is costly wherever it is called from)."""
    Path(path).write_text(profiler.output_text(unicode=True, color=False) + "\n\n"
                          + profiler.output_text(unicode=True, color=False, flat=True))


# -- where the mesh runs --------------------------------------------------------------------------

@asynccontextmanager
async def mesh(mode: str, url: str, prefix: str, services: list[str], use_uvloop: bool) -> AsyncIterator[None]:
    """Dispatcher + services for `prefix`, ready to route, for the duration of the block."""
    if mode == "inprocess":
        async with onebox(url, prefix, services):
            yield
        return
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-mesh", url, prefix, ",".join(services)]
    if not use_uvloop:
        cmd.append("--no-uvloop")
    proc = await anyio.open_process(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
    try:
        with anyio.fail_after(MESH_START_TIMEOUT):
            seen = b""
            while READY.encode() not in seen:
                chunk = await proc.stdout.receive()  # EndOfStream: the child died (its stderr is ours)
                seen += chunk
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await proc.stdin.aclose()  # EOF: the child stops its mesh and exits
            with anyio.move_on_after(15):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await proc.aclose()


async def serve_mesh(url: str, prefix: str, services: list[str]) -> None:
    """Child side of --mesh subprocess: run the mesh until stdin closes."""
    async with onebox(url, prefix, services):
        print(READY, flush=True)
        await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


# -- 1. raw nats-py baseline ----------------------------------------------------------------------

async def raw_baseline(url: str, n: int) -> dict:
    nc = await nats.connect(url, name="bench-raw")
    js = nc.jetstream(publish_async_max_pending=4000)
    out: dict = {}
    payload = os.urandom(PAYLOAD)
    try:
        # (a) publish_async, window 4000, file storage. No wait_stall: nats-py implements it with
        # asyncio.wait_for (a task per publish on 3.11), which alone cuts the rate about 3x.
        # The whole step, every ack future included, is bounded by fail_after.
        await js.add_stream(StreamConfig(name="BENCHRAW_PUB", subjects=["benchraw.pub"], storage=StorageType.FILE))
        await js.publish("benchraw.pub", payload)  # sets up the async-reply inbox path first
        t0 = time.perf_counter()
        with anyio.fail_after(20):
            futures = [await js.publish_async("benchraw.pub", payload) for _ in range(n)]
            for fut in futures:
                await fut
        out["publish_async_msgs_s"] = n / (time.perf_counter() - t0)

        # (b) pull fetch + ack, batch 64, work-queue stream (prefilled with publish_async).
        await js.add_stream(StreamConfig(name="BENCHRAW_WQ", subjects=["benchraw.wq"], storage=StorageType.FILE,
                                         retention=RetentionPolicy.WORK_QUEUE))
        with anyio.fail_after(20):
            futures = [await js.publish_async("benchraw.wq", payload) for _ in range(n)]
            for fut in futures:
                await fut
        sub = await js.pull_subscribe("benchraw.wq", durable="bench", stream="BENCHRAW_WQ",
                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=10_000))
        got = 0
        t0 = time.perf_counter()
        with anyio.fail_after(30):
            while got < n:
                msgs = await sub.fetch(64, timeout=1.0)
                for msg in msgs:
                    await msg.ack()
                got += len(msgs)
            await nc.flush(timeout=5)
        out["fetch_ack_b64_msgs_s"] = got / (time.perf_counter() - t0)
        await sub.unsubscribe()

        # (c) sequential js.publish: one JetStream publish/ack round trip each.
        lat = []
        for _ in range(min(n, 1000)):
            t = time.perf_counter()
            await js.publish("benchraw.pub", payload, timeout=5.0)
            lat.append((time.perf_counter() - t) * 1e6)
        out["js_publish_sync_p50_us"] = pct(lat, 50)
        out["js_publish_sync_p99_us"] = pct(lat, 99)
        out["js_publish_sync_msgs_s"] = len(lat) / (sum(lat) / 1e6)

        # (d) core request/reply round trip (responder in the same client), for scale.
        async def echo(msg):
            await msg.respond(msg.data)

        rsub = await nc.subscribe("benchraw.echo", cb=echo)
        lat = []
        for _ in range(500):
            t = time.perf_counter()
            await nc.request("benchraw.echo", payload, timeout=5.0)
            lat.append((time.perf_counter() - t) * 1e6)
        await rsub.unsubscribe()
        out["core_request_p50_us"] = pct(lat, 50)
    finally:
        for name in ("BENCHRAW_PUB", "BENCHRAW_WQ"):
            try:
                await js.delete_stream(name)
            except Exception:  # noqa: BLE001
                pass
        await nc.close()
    return out


# -- 2. Sluice throughput -------------------------------------------------------------------------

async def sluice_throughput(server: EmbeddedServer, mode: str, services: list[str], n_files: int, concurrency: int,
                            budget: float, use_uvloop: bool, profile: str | None) -> dict:
    prefix = "bt" + secrets.token_hex(4)
    names = Names(prefix)
    files = [unique_text(i, prefix) for i in range(n_files)]
    params = SubmissionParams(ignore_cache=True)
    out: dict = {"mesh": mode, "prefix": prefix}
    t_start = time.perf_counter()
    async with mesh(mode, server.url, prefix, services, use_uvloop), await Client.connect(server.url, prefix) as client:
        out["mesh_start_s"] = time.perf_counter() - t_start
        # Background traffic of the idle mesh (heartbeats, registry scans, idle fetches), to subtract.
        v0 = await varz(server)
        await anyio.sleep(2.0)
        v1 = await varz(server)
        idle_in_s = (v1["in_msgs"] - v0["in_msgs"]) / 2.0
        idle_out_s = (v1["out_msgs"] - v0["out_msgs"]) / 2.0
        seq0 = await stream_seqs(client.js, names)
        v0 = await varz(server)

        profiler = None
        if profile:
            from pyinstrument import Profiler  # investigation only; not a project dependency
            profiler = Profiler(async_mode="disabled", interval=0.0005)
            profiler.start()

        sids: list[str] = [""] * n_files
        slots = anyio.Semaphore(concurrency)

        async def submit(i: int) -> None:
            async with slots:
                sids[i] = await client.submit_bytes([files[i]], params)

        t0 = time.perf_counter()
        with anyio.fail_after(budget):
            async with anyio.create_task_group() as tg:
                for i in range(n_files):
                    tg.start_soon(submit, i)
            t_submitted = time.perf_counter()
            summaries = [await client.wait(sid, timeout=max(1.0, budget - (time.perf_counter() - t0))) for sid in sids]
        t_done = time.perf_counter()
        if profiler:
            profiler.stop()
            write_profile(profiler, profile)

        v1 = await varz(server)
        seq1 = await stream_seqs(client.js, names)
    elapsed = t_done - t0
    deltas = {k: seq1[k] - seq0[k] for k in seq0}
    registry = f"KV_{names.registry_bucket}"
    dispatch = [(s.completed_at - s.submitted_at) * 1e3 for s in summaries if s.completed_at and s.submitted_at]
    out.update(
        files=n_files,
        submit_concurrency=concurrency,
        submit_s=t_submitted - t0,
        total_s=elapsed,
        files_s=n_files / elapsed,
        submit_files_s=n_files / (t_submitted - t0),
        stream_msgs=deltas,
        stream_msgs_per_file=sum(v for k, v in deltas.items() if k != registry) / n_files,
        registry_heartbeats=deltas[registry],
        nats_in_msgs_per_file=((v1["in_msgs"] - v0["in_msgs"]) - idle_in_s * elapsed) / n_files,
        nats_out_msgs_per_file=((v1["out_msgs"] - v0["out_msgs"]) - idle_out_s * elapsed) / n_files,
        idle_in_msgs_s=idle_in_s,
        # Sanity: every verdict should hold an iocs result with network tags, and no errors.
        summaries_with_errors=sum(1 for s in summaries if s.errors),
        files_with_iocs_result=sum(1 for s in summaries if any(r.service == "iocs" for f in s.files for r in f.results)),
        files_with_tags=sum(1 for s in summaries if s.tags),
        file_types=sorted({f.type for s in summaries for f in s.files}),
        submitted_to_completed_p50_ms=pct(dispatch, 50),
    )
    return out


# -- 3. single-file latency -----------------------------------------------------------------------

async def sluice_latency(server: EmbeddedServer, mode: str, services: list[str], runs: int, budget: float,
                         use_uvloop: bool, profile: str | None) -> dict:
    prefix = "bl" + secrets.token_hex(4)
    params = SubmissionParams(ignore_cache=True)
    warmup = 3
    total, submit_ms, completed_ms = [], [], []
    profiler = None
    async with mesh(mode, server.url, prefix, services, use_uvloop), await Client.connect(server.url, prefix) as client:
        with anyio.fail_after(budget):
            for i in range(runs + warmup):
                if profile and i == warmup:
                    from pyinstrument import Profiler  # investigation only
                    profiler = Profiler(async_mode="disabled", interval=0.0002)
                    profiler.start()
                f = unique_text(i, prefix)
                t0 = time.perf_counter()
                sid = await client.submit_bytes([f], params)
                t1 = time.perf_counter()
                summary = await client.wait(sid, timeout=30)
                t2 = time.perf_counter()
                if i < warmup:
                    continue
                total.append((t2 - t0) * 1e3)
                submit_ms.append((t1 - t0) * 1e3)
                if summary.completed_at and summary.submitted_at:
                    completed_ms.append((summary.completed_at - summary.submitted_at) * 1e3)
        if profiler:
            profiler.stop()
            write_profile(profiler, profile)
    return {
        "mesh": mode, "runs": runs, "warmup": warmup, "prefix": prefix,
        "p50_ms": pct(total, 50), "p90_ms": pct(total, 90), "p99_ms": pct(total, 99),
        "mean_ms": statistics.fmean(total), "min_ms": min(total), "max_ms": max(total),
        "submit_call_p50_ms": pct(submit_ms, 50),
        "submitted_to_completed_p50_ms": pct(completed_ms, 50),
    }


# -- main -----------------------------------------------------------------------------------------

def pick_services() -> tuple[list[str], str]:
    from services.sdk.loader import load_service
    try:
        load_service("extract")
        load_service("iocs")
        return ["extract", "iocs"], ""
    except Exception as exc:  # noqa: BLE001 - iocs may still be under construction
        return ["extract"], f"iocs failed to load ({type(exc).__name__}: {exc}); running extract only"


async def amain(args, loop_name: str, use_uvloop: bool) -> dict:
    services, note = pick_services()
    modes = ["inprocess", "subprocess"] if args.mesh == "both" else [args.mesh]
    report: dict = {"loop": loop_name, "python": platform.python_version(), "cpus": os.cpu_count(),
                    "services": services, "throughput": [], "latency": []}
    if note:
        report["note"] = note
    deadline = time.perf_counter() + RUN_BUDGET

    def left(phases: int) -> float:
        """An even share of the time left for the next `phases` phases."""
        return max(5.0, (deadline - time.perf_counter() - 5.0) / phases)

    with anyio.fail_after(RUN_BUDGET):
        async with AsyncExitStack() as stack:
            server = await stack.enter_async_context(EmbeddedServer())
            report["nats_server"] = (await varz(server)).get("version", "?")
            log(args, f"nats-server {report['nats_server']} at {server.url}; loop {loop_name}; services {services}")
            log(args, "raw nats-py baseline ...")
            report["raw"] = await raw_baseline(server.url, args.raw_msgs)
            phases = 2 * len(modes)
            for mode in modes:
                profile = args.profile if mode == "inprocess" else None
                log(args, f"sluice throughput, mesh {mode}, {args.files} files ...")
                report["throughput"].append(await sluice_throughput(
                    server, mode, services, args.files, args.submit_concurrency, left(phases), use_uvloop, profile))
                phases -= 1
                log(args, f"sluice latency, mesh {mode}, {args.latency_runs} sequential scans ...")
                report["latency"].append(await sluice_latency(
                    server, mode, services, args.latency_runs, left(phases), use_uvloop, profile and f"{profile}.latency"))
                phases -= 1
    return report


def log(args, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def table(r: dict) -> str:
    raw = r["raw"]
    pub_async, pub_sync_us = raw["publish_async_msgs_s"], raw["js_publish_sync_p50_us"]
    rows = [
        ("raw: JS publish_async (window 4000, 256 B)", f"{pub_async:,.0f} msg/s", ""),
        ("raw: pull fetch+ack, batch 64", f"{raw['fetch_ack_b64_msgs_s']:,.0f} msg/s", ""),
        ("raw: sequential js.publish p50 / p99", f"{pub_sync_us:,.0f} / {raw['js_publish_sync_p99_us']:,.0f} µs",
         f"= {raw['js_publish_sync_msgs_s']:,.0f} msg/s"),
        ("raw: core request/reply p50", f"{raw['core_request_p50_us']:,.0f} µs", ""),
    ]
    for tp in r["throughput"]:
        m = tp["mesh"]
        eff = tp["files_s"] * tp["stream_msgs_per_file"]
        rows += [
            (f"sluice[{m}]: throughput, {tp['files']} files", f"{tp['files_s']:,.1f} files/s",
             f"{tp['files_s'] / pub_async:.2%} of publish_async msg/s (1 file ~ {pub_async / tp['files_s']:,.0f} async msgs)"),
            (f"sluice[{m}]: submit phase (x{tp['submit_concurrency']} concurrent)", f"{tp['submit_files_s']:,.1f} files/s",
             f"{tp['submit_s']:.2f} s of {tp['total_s']:.2f} s"),
            (f"sluice[{m}]: stream msgs stored / file", f"{tp['stream_msgs_per_file']:.2f}",
             f"x files/s = {eff:,.0f} msg/s stored ({eff / pub_async:.1%} of publish_async)"),
            (f"sluice[{m}]: NATS msgs in / out per file", f"{tp['nats_in_msgs_per_file']:.1f} / {tp['nats_out_msgs_per_file']:.1f}",
             f"/varz; idle background {tp['idle_in_msgs_s']:.0f} msg/s subtracted"),
        ]
    for lat in r["latency"]:
        m = lat["mesh"]
        rows += [
            (f"sluice[{m}]: latency p50 / p90 / p99", f"{lat['p50_ms']:.2f} / {lat['p90_ms']:.2f} / {lat['p99_ms']:.2f} ms",
             f"p50 = {lat['p50_ms'] * 1e3 / pub_sync_us:.0f}x a sync js.publish"),
            (f"sluice[{m}]: latency, submit call p50", f"{lat['submit_call_p50_ms']:.2f} ms",
             f"{lat['submit_call_p50_ms'] * 1e3 / pub_sync_us:.0f}x a sync js.publish"),
            (f"sluice[{m}]: latency, submitted->completed p50", f"{lat['submitted_to_completed_p50_ms']:.2f} ms",
             "dispatcher's timestamps"),
        ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    lines = [f"{'metric':<{w0}}  {'value':>{w1}}  vs raw / note", "-" * (w0 + w1 + 50)]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    lines.append("")
    for tp in r["throughput"]:
        per_stream = ", ".join(f"{k}={v}" for k, v in tp["stream_msgs"].items() if v)
        lines += [
            f"[{tp['mesh']}] stored during the throughput phase: {per_stream} (registry heartbeats not counted per file)",
            f"[{tp['mesh']}] verdicts: {tp['files_with_iocs_result']}/{tp['files']} with an iocs result, "
            f"{tp['files_with_tags']} with tags, {tp['summaries_with_errors']} with errors; types {tp['file_types']}; "
            f"mesh start {tp['mesh_start_s']:.2f} s; submitted->completed p50 under load {tp['submitted_to_completed_p50_ms']:.0f} ms",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=500, help="files (= submissions) in the throughput phase")
    ap.add_argument("--latency-runs", type=int, default=50, help="sequential single-file scans")
    ap.add_argument("--raw-msgs", type=int, default=4000, help="messages per raw baseline step")
    ap.add_argument("--submit-concurrency", type=int, default=16, help="concurrent submit_bytes calls")
    ap.add_argument("--mesh", choices=["inprocess", "subprocess", "both"], default="both",
                    help="where the dispatcher and services run (see the module docstring)")
    ap.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    ap.add_argument("--profile", metavar="FILE", help="pyinstrument the in-process throughput phase into FILE and the "
                    "latency phase into FILE.latency (needs pyinstrument, not a project dependency; slows the run)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--serve-mesh", nargs=3, metavar=("URL", "PREFIX", "SERVICES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if min(args.files, args.latency_runs, args.raw_msgs, args.submit_concurrency) < 1:
        ap.error("--files, --latency-runs, --raw-msgs and --submit-concurrency must be at least 1")

    use_uvloop = False
    loop_name = "asyncio (--no-uvloop)"
    if not args.no_uvloop:
        try:
            import uvloop
            use_uvloop, loop_name = True, f"uvloop {uvloop.__version__}"
        except ImportError:
            loop_name = "asyncio (uvloop not installed)"
    backend_options = {"use_uvloop": use_uvloop}

    if args.serve_mesh:
        url, prefix, services = args.serve_mesh
        try:
            anyio.run(serve_mesh, url, prefix, services.split(","), backend_options=backend_options)
        except KeyboardInterrupt:
            pass
        return

    report = anyio.run(amain, args, loop_name, use_uvloop, backend_options=backend_options)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return
    print()
    print(f"Sluice mesh bench: {report['loop']}, Python {report['python']}, {report['cpus']} CPUs, "
          f"nats-server {report['nats_server']} (embedded, one server for every phase)")
    print(f"services: {', '.join(report['services'])}; mesh 'inprocess' = dispatcher + services on the client's "
          f"event loop; 'subprocess' = the same onebox in a child process")
    if report.get("note"):
        print(f"NOTE: {report['note']}")
    print()
    print(table(report))


if __name__ == "__main__":
    main()
