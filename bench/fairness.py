"""Fairness between submitter identities: does one identity's flood starve another?

On its own embedded nats-server, with the dispatcher and three no-op CORE services in child
processes (bench/roles.py, as bench/mesh.py runs them), this measures identity B's submit ->
verdict latency for one small file, first with the mesh idle, then while identity A has a flood
of submissions (10,000 by default) queued on its own subject, then with the mesh idle again once
A's queue is empty. Each identity has its own queue and consumer (dispatcher/dispatcher.py), so
B's submission never waits behind A's, and the dispatcher starts B's trees first
(dispatcher/fairshare.py); the target is B's loaded latency under 2x its idle latency. The idle
figure is the median of both idle phases, before and after the flood: on a box shared with other
work the load changes within a run, and one idle phase alone can flatter or spoil the ratio.

A is the `submitter` identity and B the `web` identity (both have a queue from the start);
without auth the identity is still the subject a client publishes on.

    python bench/fairness.py [--queued 10000] [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.roles import child  # noqa: E402
from bus.auth import SUBMITTER, WEB  # noqa: E402
from bus.codec import encode  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402
from bus.publish import jetstream_publish_all  # noqa: E402
from schemas.messages import FileRef, Submission  # noqa: E402
from sluice.client import Client  # noqa: E402

BATCH = 500  # flood submissions published per pipelined batch


async def latencies(client: Client, runs: int, tag: str) -> list[float]:
    """Milliseconds, submit -> verdict, for `runs` small files one after another."""
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        await client.wait(await client.submit_bytes([(f"b{i}.txt", f"{tag} {i} {secrets.token_hex(8)}".encode())]), 120)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


async def queued_for(client: Client) -> int:
    """Submissions of `client`'s identity still queued or in flight (its root consumer's view)."""
    info = await client.js.consumer_info(client.names.submit_stream, client.names.root_consumer(client.identity))
    return info.num_pending + info.num_ack_pending


async def flood(a: Client, count: int) -> None:
    """`count` submissions from A, published as fast as the server acks them."""
    for start in range(0, count, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, count)):
            data = f"flood {i} {secrets.token_hex(8)}".encode()
            sub = Submission(f"flood-{i}-{secrets.token_hex(4)}", [FileRef(hashlib.sha256(data).hexdigest(), len(data), "f.txt", data)],
                             submitted_at=time.time())
            batch.append((a.names.submit_root_for(a.identity), encode(sub), {"Nats-Msg-Id": sub.sid}))
        await jetstream_publish_all(a.js, batch, timeout=60)


async def measure(queued: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServer(data_dir=Path(tmp)) as server:
            prefix = "f" + secrets.token_hex(4)
            async with child("noop", server.url, prefix, use_uvloop=True), \
                    child("dispatcher", server.url, prefix, use_uvloop=True), \
                    await Client.connect(server.url, prefix, role=SUBMITTER) as a, \
                    await Client.connect(server.url, prefix, role=WEB) as b:
                await latencies(b, 5, "warm-up")
                idle = await latencies(b, runs, "idle")
                t0 = time.perf_counter()
                await flood(a, queued)
                published = time.perf_counter() - t0
                backlog = await queued_for(a)
                loaded = await latencies(b, runs, "loaded")
                still = await queued_for(a)
                with anyio.fail_after(900):
                    while await queued_for(a):
                        await anyio.sleep(0.5)
                drained = time.perf_counter() - t0
                after = await latencies(b, runs, "idle again")
    ratio = statistics.median(loaded) / statistics.median(idle + after)
    return {"queued": queued, "published_s": published, "a_backlog_when_b_started": backlog,
            "a_backlog_when_b_finished": still, "idle_ms": {"p50": statistics.median(idle), "max": max(idle)},
            "idle_after_ms": {"p50": statistics.median(after), "max": max(after)},
            "loaded_ms": {"p50": statistics.median(loaded), "max": max(loaded)}, "ratio_p50": ratio,
            "runs_ms": {"idle": idle, "loaded": loaded, "idle_after": after},
            "ratio_p50_before_only": statistics.median(loaded) / statistics.median(idle),
            "a_drained_s": drained, "met": ratio < 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", type=int, default=10_000, help="A's flood (default 10000)")
    parser.add_argument("--runs", type=int, default=50, help="B's sequential submissions per phase (default 50)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = anyio.run(measure, args.queued, args.runs)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"A flooded {out['queued']} submissions in {out['published_s']:.1f} s; "
          f"{out['a_backlog_when_b_started']} still queued or in flight when B started, "
          f"{out['a_backlog_when_b_finished']} when B finished")
    print(f"B idle:   p50 {out['idle_ms']['p50']:.1f} ms, max {out['idle_ms']['max']:.1f} ms ({args.runs} runs)")
    print(f"B loaded: p50 {out['loaded_ms']['p50']:.1f} ms, max {out['loaded_ms']['max']:.1f} ms ({args.runs} runs)")
    print(f"B idle again (A's queue empty): p50 {out['idle_after_ms']['p50']:.1f} ms, max {out['idle_after_ms']['max']:.1f} ms")
    print(f"loaded/idle p50: {out['ratio_p50']:.2f}x (target < 2x): {'met' if out['met'] else 'NOT met'} "
          f"({out['ratio_p50_before_only']:.2f}x against the first idle phase alone); "
          f"A's queue empty {out['a_drained_s']:.0f} s after its flood began")


if __name__ == "__main__":
    main()
