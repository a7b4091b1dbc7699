#!/usr/bin/env python3
"""How Sluice's throughput grows with processes: 1, 2, ... one-box workers on one NATS.

    .venv/bin/python bench/scaling.py [--workers 1,2] [--dispatchers 1,2] [--files 2000] [--repeat 1] [--json]

Each worker is one process running what `sluice up --workers N` runs in each of its N
processes: a dispatcher and the services (here the three no-op CORE services of bench/mesh.py,
so what is measured is the mesh, not analysis). For each worker count, in a fresh prefix on one
embedded nats-server: N distinct 1 KiB files, one submission each, from the first submit to the
last verdict; the workers' CPU per file (all of them together) and the client's. Raw nats-py's
pipeline (bench/raw.py) runs once in the same server as the yardstick: every figure is also
given as a ratio to it, and to one worker. `--dispatchers` adds rows with that many dispatcher
processes beside one process of the services. On a machine with C cores the curve flattens at
about C-1 workers (the nats-server and the client need a core between them).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from bench.mesh import Procs, Run, drive, raw_side, unique_file  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402
from sluice.client import Client  # noqa: E402


async def sweep_point(run: Run, count: int, payloads: list[bytes], dispatchers_only: bool = False) -> dict:
    """`count` one-box workers (or, `dispatchers_only`, `count` dispatchers beside one process of
    the three services): files/s and CPU per file of all those processes together."""
    prefix = "s" + secrets.token_hex(4)
    async with AsyncExitStack() as stack:
        procs = [await stack.enter_async_context(run.child("scaling", "noop", prefix))] if dispatchers_only else []
        role = "dispatcher" if dispatchers_only else "worker"
        procs += [await stack.enter_async_context(run.child("scaling", role, prefix)) for _ in range(count)]
        client = await stack.enter_async_context(await Client.connect(run.server.url, prefix))

        async def submit(i: int, data: bytes) -> str:
            return await client.submit_bytes([(f"file-{i}", data)])

        cpu0, client0 = sum(p.cpu_seconds() for p in procs), time.process_time()
        elapsed = await drive(submit, client.wait, payloads, run.args.budget)
        cpu1, client1 = sum(p.cpu_seconds() for p in procs), time.process_time()
    n = len(payloads)
    return {"count": count, "files_s": n / elapsed, "worker_cpu_ms_per_file": (cpu1 - cpu0) * 1e3 / n,
            "client_cpu_ms_per_file": (client1 - client0) * 1e3 / n}


async def raw_point(run: Run, payloads: list[bytes]) -> dict:
    async def measure(submit, wait, procs: Procs) -> dict:
        cpu0 = procs.cpu()
        elapsed = await drive(submit, wait, payloads, run.args.budget)
        cpu1 = procs.cpu()
        return {"files_s": len(payloads) / elapsed,
                "worker_cpu_ms_per_file": (cpu1["dispatcher"] + cpu1["services"] - cpu0["dispatcher"] - cpu0["services"])
                * 1e3 / len(payloads)}
    return await raw_side(run, "scaling", measure)


async def amain(args) -> dict:
    tag = secrets.token_hex(3)
    points = [(f"{w} worker(s)", w, False) for w in args.workers] + [(f"{d} dispatcher(s)", d, True) for d in args.dispatchers]
    results: dict[str, list] = {"raw": [], **{label: [] for label, _, _ in points}}
    async with EmbeddedServer() as server:
        run = Run(server, args, use_uvloop=args.uvloop)
        for r in range(args.repeat):
            payloads = [unique_file(i, f"{tag}-{r}-raw")[1] for i in range(args.files)]
            run.log(f"round {r + 1}/{args.repeat}: raw nats-py, {args.files} files ...")
            results["raw"].append(await raw_point(run, payloads))
            for label, count, dispatchers_only in points:
                run.log(f"round {r + 1}/{args.repeat}: {label}, {args.files} files ...")
                payloads = [unique_file(i, f"{tag}-{r}-{label}")[1] for i in range(args.files)]
                results[label].append(await sweep_point(run, count, payloads, dispatchers_only))
    return results


def median(points: list[dict], key: str) -> float:
    return statistics.median(p[key] for p in points)


def report(results: dict[str, list], cpus: int) -> str:
    raw_rate, raw_cpu = median(results["raw"], "files_s"), median(results["raw"], "worker_cpu_ms_per_file")
    counts = [k for k in results if k != "raw"]
    one = median(results["1 worker(s)" if "1 worker(s)" in results else counts[0]], "files_s")
    lines = [f"Sluice scaling: {cpus} CPUs; medians of {len(results['raw'])} round(s); raw nats-py {raw_rate:,.0f} files/s, "
             f"{raw_cpu:.2f} ms CPU per file (its dispatcher + services)", "",
             "| processes | files/s | vs raw | vs 1 worker | their CPU ms/file | vs raw | client CPU ms/file |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for count in counts:
        rate, cpu = median(results[count], "files_s"), median(results[count], "worker_cpu_ms_per_file")
        client = median(results[count], "client_cpu_ms_per_file")
        lines.append(f"| {count} | {rate:,.0f} | {rate / raw_rate:.2f} | {rate / one:.2f} | {cpu:.2f} | {cpu / raw_cpu:.2f} | {client:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default=",".join(str(w) for w in range(1, (os.cpu_count() or 1) + 1)),
                    help="comma-separated worker counts (default: 1 to the number of CPUs)")
    ap.add_argument("--dispatchers", default="", help="comma-separated dispatcher counts, each beside one services process "
                    "(as bench/mesh.py --dispatchers); default: none")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=1, help="rounds (each runs raw and every count); medians shown")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds any one measurement may take")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    args.dispatchers = [int(d) for d in args.dispatchers.split(",") if d.strip()]
    if min(args.workers + args.dispatchers + [args.files, args.repeat]) < 1 or not args.workers + args.dispatchers:
        ap.error("--workers, --dispatchers, --files and --repeat must be at least 1")
    args.profile = None
    args.uvloop = __import__("importlib").util.find_spec("uvloop") is not None
    backend = {"use_uvloop": args.uvloop}
    results = anyio.run(amain, args, backend_options=backend)
    print(json.dumps(results, indent=1) if args.json else report(results, os.cpu_count() or 1))


if __name__ == "__main__":
    main()
