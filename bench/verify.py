"""What checking bytes against their sha256 costs the dispatcher (bus.blobs, dispatcher/identifier.py).

Before issue 13 the dispatcher typed a stored file from its head, unchecked. Now it reads an
upload whole, hashes it and names it (`promote`); a small inline file is hashed and stored under
its name by the dispatcher (`name_checked`: one chunk, its ack awaited, since it says whether
the file is new). This prints, on its own embedded nats-server:

* per small file: the time to hash and name an inline file (what each new small file costs);
* per large file: the time and MB/s to promote an upload of 1, 16 and 64 MiB (read whole,
  sha256, name), next to reading every byte without the check, the sha256 alone, and reading
  just its 1 MiB head as the dispatcher did before, and the upload before it (the client's
  sha256 and chunks); the target is >= 100 MB/s for the large-file path.

    python bench/verify.py [--small N] [--sizes 1,16,64] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bus.blobcache import BlobCache  # noqa: E402
from bus.blobs import BlobStore  # noqa: E402
from bus.connect import close, connect  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402
from bus.provision import provision  # noqa: E402
from bus.subjects import Names  # noqa: E402
from schemas.messages import FileRef  # noqa: E402

MIB = 1024 * 1024


async def measure(small: int, sizes: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServer(data_dir=Path(tmp)) as server:
            nc = await connect(server.url, name="bench-verify")
            try:
                js = nc.jetstream()
                names = Names("bverify")
                stores = await provision(js, names)
                # No process cache on either side: every read really crosses NATS.
                uploader = BlobStore(js, stores.files, names.file_bucket, cache=BlobCache(0), writer="bench")
                trusted = BlobStore(js, stores.files, names.file_bucket, cache=BlobCache(0))
                out: dict = {"small_files": small, "large": []}
                files = [os.urandom(1024) for _ in range(small)]
                started = time.perf_counter()
                for data in files:
                    ref = FileRef(hashlib.sha256(data).hexdigest(), len(data), "", data)
                    await trusted.get(ref)  # the inline check
                    await trusted.name_checked(ref.sha256, data)
                out["small_ms_per_file"] = (time.perf_counter() - started) * 1000 / small
                for mib in sizes:
                    data = os.urandom(mib * MIB)
                    started = time.perf_counter()
                    ref = await uploader.put(data, f"{mib}.bin")
                    uploaded = time.perf_counter() - started
                    started = time.perf_counter()
                    hashlib.sha256(data).hexdigest()
                    hashed = time.perf_counter() - started
                    started = time.perf_counter()
                    await trusted.promote(ref)
                    promoted = time.perf_counter() - started
                    started = time.perf_counter()
                    await trusted._read(ref.sha256, limit=len(data), declared=len(data))  # every byte, no check
                    read = time.perf_counter() - started
                    started = time.perf_counter()
                    await trusted.head(FileRef(ref.sha256, ref.size), MIB)
                    head = time.perf_counter() - started
                    out["large"].append({"mib": mib, "promote_s": promoted, "promote_mb_s": mib * MIB / promoted / 1e6,
                                         "read_only_mb_s": mib * MIB / read / 1e6, "upload_mb_s": mib * MIB / uploaded / 1e6,
                                         "sha256_only_mb_s": mib * MIB / hashed / 1e6, "head_only_ms": head * 1000})
                return out
            finally:
                await close(nc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=500, help="small files to check and name (default 500)")
    parser.add_argument("--sizes", default="1,16,64", help="large file sizes in MiB (default 1,16,64)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = anyio.run(measure, args.small, [int(s) for s in args.sizes.split(",")])
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"small inline file, checked and named: {out['small_ms_per_file']:.2f} ms per file ({args.small} files)")
    print(f"{'size':>8} {'promote (read+sha256+name)':>28} {'read alone':>12} {'sha256 alone':>14} {'1 MiB head (before)':>20}"
          f" {'upload (sha256+chunks)':>23}")
    for row in out["large"]:
        print(f"{row['mib']:>5} MiB {row['promote_s']:>10.3f} s {row['promote_mb_s']:>9.0f} MB/s "
              f"{row['read_only_mb_s']:>7.0f} MB/s {row['sha256_only_mb_s']:>9.0f} MB/s {row['head_only_ms']:>15.1f} ms"
              f" {row['upload_mb_s']:>18.0f} MB/s")
    large = [row for row in out["large"] if row["mib"] >= 16] or out["large"]  # 1 MiB is mostly fixed cost
    slowest = min(row["promote_mb_s"] for row in large)
    share = statistics.fmean(row["promote_mb_s"] / row["read_only_mb_s"] for row in large)
    print(f"large files (>= 16 MiB): {slowest:.0f} MB/s at the slowest (target >= 100 MB/s): "
          f"{'met' if slowest >= 100 else 'NOT met'}; the check keeps {share:.0%} of a plain read's rate")


if __name__ == "__main__":
    main()
