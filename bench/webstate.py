#!/usr/bin/env python3
"""The web fronts' shared state in NATS: what it costs per request, against raw nats-py in the same run.

    .venv/bin/python bench/webstate.py [--runs 500] [--contenders 32] [--files 300] [--size 65536] [--json]

Prints figures; it is not a test. On an embedded nats-server (one connection per "front"):

1. raw nats-py KV: a get of an existing key, a put (median µs, sequential, each timed alternately
   with the operation it is compared to): the unit of the rest.
2. sign-in rate limiting (sluice.web.ratelimit, KV bucket `-ratelimit`): a failed sign-in's check
   and count (two keys: address and account) and a good one's check and reset, as multiples of a get.
3. pending submissions (sluice.web.pending, `-pending`): the record a submission adds and the
   look-up a 202 costs.
4. contention: `--contenders` failures counted at once on one key from two connections
   (compare-and-set retries): the time until all are counted, and that all were.
5. md5/sha1 for files without them (sluice.web.digests): `--files` files of `--size` bytes
   hashed from the file store by the index, against reading the same files with raw
   BlobStore.get (no cache either way): files/s and MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bus.blobcache import BlobCache  # noqa: E402
from bus.blobs import BlobStore  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402
from bus.provision import provision  # noqa: E402
from bus.subjects import Names  # noqa: E402
from schemas.messages import FileNode, FileRef, Summary  # noqa: E402
from sluice.client import Client  # noqa: E402
from sluice.web.history import open_history  # noqa: E402
from sluice.web.index import SubmissionIndex  # noqa: E402
from sluice.web.pending import PendingSubmissions  # noqa: E402
from sluice.web.ratelimit import LoginThrottle  # noqa: E402
from sluice.web.stores import provision_workspace  # noqa: E402


async def paired(runs: int, raw, op) -> tuple[float, float]:
    """Median µs of `await raw(i)` and of `await op(i)`, taken alternately so both see the same
    load (the box is shared): the ratio is what matters."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(runs):
        for kind, fn in enumerate((raw, op)):
            began = time.perf_counter()
            await fn(i)
            times[kind].append((time.perf_counter() - began) * 1e6)
    return statistics.median(times[0]), statistics.median(times[1])


async def bench(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        async with EmbeddedServer(data_dir=Path(tmp) / "nats") as server, \
                await Client.connect(server.url, "bench") as one, await Client.connect(server.url, "bench") as two:
            names = Names("bench")
            stores = await provision_workspace(one.js, names)
            kv = stores.pending
            await kv.put("raw", b"x")
            get, put = (lambda i: kv.get("raw")), (lambda i: kv.put(f"raw{i}", b"x"))
            await paired(args.runs, get, put)  # warm-up: connections, server caches, the interpreter

            throttle = LoginThrottle(stores.ratelimit, max_failures=args.runs * 4)  # never limiting: the cost of counting

            async def failed_sign_in(i: int) -> None:
                await throttle.retry_after(f"ip:192.0.2.{i % 250}", f"user:u{i}")
                await throttle.failed(f"ip:192.0.2.{i % 250}", f"user:u{i}")

            async def good_sign_in(i: int) -> None:
                await throttle.retry_after(f"ip:198.51.100.{i % 250}", f"user:g{i}")
                await throttle.succeeded(f"user:g{i}")

            pending = PendingSubmissions(stores.pending)
            raw_get, failed_us = await paired(args.runs, get, failed_sign_in)
            _, good_us = await paired(args.runs, get, good_sign_in)
            raw_put, add_us = await paired(args.runs, put, lambda i: pending.add(f"sid{i}", "bench"))
            _, known_us = await paired(args.runs, get, lambda i: pending.known(f"sid{i}"))

            fronts = [LoginThrottle(await c.js.key_value(names.ratelimit_bucket), max_failures=args.contenders) for c in (one, two)]
            began = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for n in range(args.contenders):
                    tg.start_soon(fronts[n % 2].failed, "ip:203.0.113.1")
            contention_ms = (time.perf_counter() - began) * 1000
            counted = len((await fronts[0]._recent(LoginThrottle._key("ip:203.0.113.1"), time.time()))[0])

            digests = await bench_digests(one, tmp, args.files, args.size)
    return {
        "raw_kv_us": {"get": round(raw_get), "put": round(raw_put)},
        "sign_in_us": {"failed": round(failed_us), "failed_x_get": round(failed_us / raw_get, 1),
                       "good": round(good_us), "good_x_get": round(good_us / raw_get, 1)},
        "pending_us": {"add": round(add_us), "add_x_put": round(add_us / raw_put, 2),
                       "known": round(known_us), "known_x_get": round(known_us / raw_get, 2)},
        "contention": {"failures": args.contenders, "counted": counted, "ms": round(contention_ms, 1),
                       "ms_per_failure": round(contention_ms / args.contenders, 2)},
        "digests": digests,
    }


async def bench_digests(client: Client, tmp: str, files: int, size: int) -> dict:
    """The index hashing `files` stored files for md5/sha1 (one summary each, no characterize), vs raw reads."""
    await provision(client.js, client.names)
    store = await client.js.object_store(client.names.file_bucket)
    blobs = BlobStore(client.js, store, client.names.file_bucket, cache=BlobCache(0))  # trusted writer, no cache
    nodes = []
    for n in range(files):
        data = secrets.token_bytes(size)
        ref = await blobs.put(data, f"f{n}", inline=False)
        nodes.append(FileNode(ref.sha256, ref.name, "unknown", size, 0))
    with open_history(Path(tmp) / "history.sqlite") as history:
        index = SubmissionIndex(history)
        await index.apply([Summary(f"s{n}", 0, "info", [node], completed_at=n) for n, node in enumerate(nodes)], files)
        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(index.follow_digests, blobs)
            await index.digested()
            tg.cancel_scope.cancel()
        hashed = time.perf_counter() - began
        assert history.undigested(1) == []
    began = time.perf_counter()
    for node in nodes:
        await blobs.get(FileRef(node.sha256, node.size))
    raw = time.perf_counter() - began
    mb = files * size / 1e6
    return {"files": files, "size": size, "hashed_per_s": round(files / hashed), "hashed_mb_s": round(mb / hashed, 1),
            "raw_read_per_s": round(files / raw), "ratio_to_raw": round(raw / hashed, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="sequential operations per figure (default 500)")
    parser.add_argument("--contenders", type=int, default=32, help="failures counted at once on one key (default 32)")
    parser.add_argument("--files", type=int, default=300, help="files hashed for md5/sha1 (default 300)")
    parser.add_argument("--size", type=int, default=65536, help="bytes per file (default 65536)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = anyio.run(bench, args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    raw, sign, pend, cont, dig = (report[k] for k in ("raw_kv_us", "sign_in_us", "pending_us", "contention", "digests"))
    print(f"raw nats-py KV: get {raw['get']} µs, put {raw['put']} µs")
    print(f"sign-in, failed (check + count, 2 keys): {sign['failed']} µs = {sign['failed_x_get']}x a get; "
          f"good (check + reset): {sign['good']} µs = {sign['good_x_get']}x a get")
    print(f"pending: record {pend['add']} µs = {pend['add_x_put']}x a put; look-up {pend['known']} µs = {pend['known_x_get']}x a get")
    print(f"contention: {cont['failures']} failures at once on one key from 2 connections: {cont['counted']} counted "
          f"in {cont['ms']} ms ({cont['ms_per_failure']} ms each)")
    print(f"md5/sha1 from the store: {dig['files']} files of {dig['size']:,} bytes at {dig['hashed_per_s']}/s "
          f"({dig['hashed_mb_s']} MB/s); raw BlobStore.get {dig['raw_read_per_s']}/s; ratio {dig['ratio_to_raw']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
