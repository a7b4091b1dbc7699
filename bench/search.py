#!/usr/bin/env python3
"""The web front's history index: how fast it fills, how big it gets, how fast it answers.

    .venv/bin/python bench/search.py [--count 1000000] [--queries 300] [--stream-count 20000] [--json]
    quick: --count 100000 --stream-count 5000

Prints figures; it is not a test. Three parts:

1. index: `--count` generated summaries (1-4 files each, hashes from a characterize-like
   section, 2-4 services, heuristics with ATT&CK ids, 0-6 tags drawn from a skewed pool so some
   tags are common and most are rare) applied to a fresh SQLite index in batches, as the web
   front applies a catch-up: summaries/s, and the file's bytes per summary (WAL checkpointed).
2. queries: p50/p99 over `--queries` runs each of a hash (an md5 of a file deep in some tree), a
   tag (`tag:network.static.domain=...`, a mid-frequency value), and a combined query (a common
   tag, a score range and a service), each asking for the first page (50) and its count.
   Targets: p50 < 50 ms, p99 < 200 ms.
3. catch-up: `--stream-count` summaries published to an embedded nats-server's summary stream,
   then a fresh index follows the stream until caught up: summaries/s from the stream.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402

from schemas.messages import FileNode, HeuristicHit, ResultView, Section, Summary  # noqa: E402
from sluice.web.history import History  # noqa: E402
from sluice.web.query import parse  # noqa: E402

SERVICES = ["characterize", "extract", "pe", "office", "pdf", "yara", "iocs", "uri"]
TYPES = ["executable/windows/pe32", "executable/windows/dll32", "document/office/word", "document/pdf",
         "archive/zip", "text/plain", "code/javascript", "code/powershell"]
ATTACK = ["T1059.001", "T1027", "T1204.002", "T1566.001", "T1071.001", "T1105", "T1055", "T1547.001"]
DOMAINS = [f"host{n}.example" for n in range(50_000)]
BATCH = 2000


def skewed(rng: random.Random, pool: list[str]) -> str:
    """A value where the first few are common and the long tail is rare (as IOCs are)."""
    return pool[min(int(rng.paretovariate(1.2)) - 1, len(pool) - 1)]


def generated(rng: random.Random, n: int) -> Summary:
    nodes = []
    for depth in range(rng.randint(1, 4)):
        hashes = {"md5": secrets.token_hex(16), "sha1": secrets.token_hex(20), "sha256": secrets.token_hex(32)}
        services = rng.sample(SERVICES, rng.randint(2, 4))
        views = [ResultView("characterize", 0, [Section("File hashes", json.dumps(hashes), "KEY_VALUE")])]
        for service in services:
            hit = HeuristicHit(rng.randint(1, 20), f"{service} finding", rng.choice([0, 100, 300, 500, 1000]),
                               attack_ids=[rng.choice(ATTACK)]) if rng.random() < 0.4 else None
            views.append(ResultView(service, hit.score if hit else 0, [Section(f"{service} says", heuristic=hit)]))
        nodes.append(FileNode(hashes["sha256"], f"file{n}-{depth}.{rng.choice(['exe', 'doc', 'pdf', 'zip', 'js'])}",
                              rng.choice(TYPES), rng.randint(100, 10_000_000), depth, results=views))
    for child, parent in zip(nodes[1:], nodes):
        parent.children = [child]
    tags = {"network.static.domain": sorted({skewed(rng, DOMAINS) for _ in range(rng.randint(0, 6))})}
    score = rng.choice([0, 0, 0, 100, 300, 500, 800, 1000, 2000])
    return Summary(f"bench{n:08d}", score, "info", nodes[:1], tags=tags, metadata={"submitter": f"user{n % 20}"},
                   completed_at=1.7e9 + n)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def bench_index(path: Path, count: int, rng: random.Random) -> tuple[History, dict, list[Summary]]:
    history = History(path)
    kept: list[Summary] = []  # a sample to draw queries from
    elapsed = 0.0  # applying only: generating the summaries is not the index's cost
    done = 0
    while done < count:
        batch = [generated(rng, done + i) for i in range(min(BATCH, count - done))]
        start = time.perf_counter()
        history.apply(batch, done + len(batch))
        elapsed += time.perf_counter() - start
        kept += rng.sample(batch, min(5, len(batch)))
        done += len(batch)
        if done % 100_000 < BATCH:
            print(f"  indexed {done:,} ({done / elapsed:,.0f}/s applying)", file=sys.stderr, flush=True)
    history.optimize()
    history._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    return history, {"summaries": count, "index_rate_per_s": round(count / elapsed), "bytes_per_summary": round(size / count),
                     "file_mb": round(size / 1e6, 1)}, kept


def bench_queries(history: History, kept: list[Summary], runs: int, rng: random.Random) -> dict:
    def deep_md5(s: Summary) -> str:
        node = s.files[0]
        while node.children:
            node = node.children[0]
        return json.loads(node.results[0].sections[0].body)["md5"]

    kinds = {
        "hash": lambda: deep_md5(rng.choice(kept)),
        "tag": lambda: f"tag:network.static.domain={DOMAINS[rng.randint(20, 200)]}",
        "combined": lambda: f"tag:network.static.domain={DOMAINS[rng.randint(0, 3)]} score:500..2000 service:{rng.choice(SERVICES)}",
    }
    figures = {}
    for kind, make in kinds.items():
        times, found = [], 0
        for _ in range(runs):
            query = parse(make())
            start = time.perf_counter()
            page = history.search(query, 50, 0)
            times.append((time.perf_counter() - start) * 1000)
            found += page.matched
        figures[kind] = {"p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2),
                         "mean_matches": round(found / runs, 1)}
    return figures


async def bench_catch_up(count: int, rng: random.Random) -> dict:
    from bus.codec import encode
    from bus.embedded import EmbeddedServer
    from bus.provision import provision
    from bus.publish import jetstream_publish_all
    from sluice.client import Client
    from sluice.web.history import open_history
    from sluice.web.index import SubmissionIndex

    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServer(data_dir=Path(tmp) / "nats") as server:
            async with await Client.connect(server.url, "bench") as client:
                await provision(client.js, client.names)
                for start in range(0, count, 1000):
                    batch = [generated(rng, n) for n in range(start, min(count, start + 1000))]
                    await jetstream_publish_all(client.js, [(client.names.summary(s.sid), encode(s), None) for s in batch])
                with open_history(Path(tmp) / "history.sqlite") as history:
                    index = SubmissionIndex(history)
                    began = time.perf_counter()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(index.follow, client.js, client.names)
                        await index.ready.wait()
                        tg.cancel_scope.cancel()
                    elapsed = time.perf_counter() - began
    return {"summaries": count, "catch_up_per_s": round(index.applied / elapsed), "seconds": round(elapsed, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="summaries to index (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=300, help="runs of each query kind (default 300)")
    parser.add_argument("--stream-count", type=int, default=20_000, help="summaries for the catch-up from the stream (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(17)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        history, index_figures, kept = bench_index(Path(tmp) / "history.sqlite", args.count, rng)
        query_figures = bench_queries(history, kept, args.queries, rng)
        history.close()
    catch_up = anyio.run(bench_catch_up, args.stream_count, rng) if args.stream_count else None
    report = {"index": index_figures, "queries": query_figures, "catch_up": catch_up}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"index: {index_figures['summaries']:,} summaries at {index_figures['index_rate_per_s']:,}/s; "
          f"{index_figures['bytes_per_summary']:,} bytes per summary ({index_figures['file_mb']} MB)")
    for kind, f in query_figures.items():
        print(f"query {kind:9s} p50 {f['p50_ms']:7.2f} ms   p99 {f['p99_ms']:7.2f} ms   (mean {f['mean_matches']} matches)")
    if catch_up:
        print(f"catch-up from the stream: {catch_up['summaries']:,} summaries at {catch_up['catch_up_per_s']:,}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
