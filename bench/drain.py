#!/usr/bin/env python3
"""The services' own cost per task, without a dispatcher setting the pace: Sluice vs raw nats-py.

    .venv/bin/python bench/drain.py [--tasks 6000] [--repeat 3] [--json]

Prints figures; it is not a test. bench/mesh.py's CPU per file of the service process depends on
how fast the dispatcher feeds it (a slower feed means smaller fetches and flushes, so more cost
per message); here that is taken out. N tasks (1 KiB inline files, each for all three services)
are queued first, then the services are started and drain them: CPU ms per task of the services'
process (bench/roles.py's `noop`, three no-op services in one process, against `raw-services`,
bench/raw.py's three services in one process), and tasks/s. Each side gets a fresh prefix; sides
alternate over --repeat rounds and the medians are shown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from bench import raw  # noqa: E402
from bench.roles import SERVICE_NAMES, bench_services, child  # noqa: E402
from bus.codec import encode, wire_headers  # noqa: E402
from bus.connect import close, connect  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402
from bus.provision import approve, provision  # noqa: E402
from bus.publish import jetstream_publish_all  # noqa: E402
from bus.subjects import Names  # noqa: E402
from schemas.messages import FileRef, Stage, Task  # noqa: E402
from services.sdk.approval import approval_for  # noqa: E402

WINDOW = 512  # publishes awaiting their acks while queueing


async def drained(js, stream: str, count: int, budget: float) -> float:
    """Seconds until `count` messages (the services' replies) have been stored in `stream` (its
    last sequence: an interest stream with no consumer, as Sluice's reply stream is here, keeps none)."""
    t0 = time.perf_counter()
    with anyio.fail_after(budget):
        while (await js.stream_info(stream)).state.last_seq < count:
            await anyio.sleep(0.02)
    return time.perf_counter() - t0


async def sluice_round(url: str, n: int, use_uvloop: bool, budget: float) -> dict:
    names = Names("d" + secrets.token_hex(4))
    nc = await connect(url, name="drain")
    js = nc.jetstream()
    try:
        stores = await provision(js, names)
        for service in bench_services("noop"):  # consumers first: the task stream keeps only what they match
            await approve(js, names, stores, approval_for(service.manifest))
        deadline = time.time() + 3600
        messages = []
        for i in range(n):
            data = f"drain {i} {secrets.token_hex(8)}\n".encode().ljust(1024, b".")
            ref = FileRef(hashlib.sha256(data).hexdigest(), len(data), f"f{i}", data)
            task = Task(secrets.token_hex(16), secrets.token_hex(16), ref, "text/plain", Stage.CORE, list(SERVICE_NAMES),
                        deadline, names.reply("drain", "results"))
            messages.append((names.task(Stage.CORE, "text/plain"), encode(task), wire_headers(task.corr)))
        await jetstream_publish_all(js, messages, window=WINDOW)
        async with child("noop", url, names.prefix, use_uvloop) as services:
            cpu0 = services.cpu_seconds()
            seconds = await drained(js, names.reply_stream, n * len(SERVICE_NAMES), budget)
            cpu = services.cpu_seconds() - cpu0
        return {"cpu_ms_per_task": cpu * 1e3 / n, "tasks_s": n / seconds}
    finally:
        for stream in (names.task_stream, names.reply_stream):
            try:
                await js.delete_stream(stream)
            except Exception:  # noqa: BLE001 - cleanup of a benchmark prefix
                pass
        await close(nc)


async def raw_round(url: str, n: int, use_uvloop: bool, budget: float) -> dict:
    prefix = "q" + secrets.token_hex(4)
    client = await raw.RawClient.connect(url, prefix)
    try:
        messages = [(f"{prefix}.task", f"{i:0{raw.ID_LEN}d}".encode() + b"." * 1024, None) for i in range(n)]
        await jetstream_publish_all(client.js, messages, window=WINDOW)
        async with child("raw-services", url, prefix, use_uvloop) as services:
            cpu0 = services.cpu_seconds()
            seconds = await drained(client.js, client.names.reply, n * len(raw.SERVICES), budget)
            cpu = services.cpu_seconds() - cpu0
        return {"cpu_ms_per_task": cpu * 1e3 / n, "tasks_s": n / seconds}
    finally:
        await raw.delete(client.js, client.names)
        await client.aclose()


async def amain(args, use_uvloop: bool) -> dict:
    rounds: dict[str, list[dict]] = {"raw": [], "sluice": []}
    async with EmbeddedServer() as server:
        for i in range(args.repeat):
            print(f"round {i + 1}/{args.repeat}: {args.tasks} tasks, raw then Sluice ...", file=sys.stderr, flush=True)
            rounds["raw"].append(await raw_round(server.url, args.tasks, use_uvloop, args.budget))
            rounds["sluice"].append(await sluice_round(server.url, args.tasks, use_uvloop, args.budget))
    medians = {side: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for side, runs in rounds.items()}
    return {"tasks": args.tasks, "loop": "uvloop" if use_uvloop else "asyncio", "median": medians, "rounds": rounds,
            "cpu_ratio": medians["sluice"]["cpu_ms_per_task"] / medians["raw"]["cpu_ms_per_task"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=6000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=300.0)
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    use_uvloop = not args.no_uvloop and __import__("importlib").util.find_spec("uvloop") is not None
    report = anyio.run(amain, args, use_uvloop, backend_options={"use_uvloop": use_uvloop})
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for side in ("raw", "sluice"):
        m = report["median"][side]
        print(f"{side:7} {m['cpu_ms_per_task']:.3f} CPU ms/task (3 services)  {m['tasks_s']:8.0f} tasks/s")
    print(f"Sluice/raw CPU per task: {report['cpu_ratio']:.2f}x  (medians of {args.repeat}, {report['loop']})")


if __name__ == "__main__":
    main()
