#!/usr/bin/env python3
"""`sluice scan` as a user runs it: a folder of N random 1 KiB files, built-in services, embedded start included.

    .venv/bin/python bench/scan.py [--files 2000] [--workers 1,2] [--repeat 3] [--against SRC [--against-workers 1,2]] [--json]

For each worker count, runs `python -m sluice scan FOLDER --json --workers N` in a fresh data
directory and reports files/s (wall clock, start-up and shutdown included, as a user waits for
it) and CPU seconds per file of the whole process tree; and the same for a scan of one file,
which is start-up and shutdown alone (the embedded nats-server, the worker processes, every
service and the dispatcher, then stopping them). `--against SRC` also runs another
source tree of Sluice (e.g. `git archive <commit> | tar -x -C SRC`) the same way, in the same
rounds, so a before/after comparison on a busy machine shares its load. Rounds alternate;
medians are shown.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_folder(folder: Path, files: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(1024))


def scan_once(source: Path, folder: Path, data_dir: Path, workers: int | None) -> dict:
    """One `sluice scan` of `folder` from `source`: wall seconds, CPU seconds of it and its children."""
    cmd = [sys.executable, "-m", "sluice", "scan", str(folder), "--json", "--data-dir", str(data_dir)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(source)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    verdicts = proc.stdout.count(b"\n")
    if proc.returncode != 0:
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "verdicts": verdicts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", type=Path, metavar="SRC", help="another Sluice source tree to run the same way")
    ap.add_argument("--against-workers", default="", metavar="N,...",
                    help="worker counts for SRC (default: its own default), to compare like with like")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    theirs = [int(w) for w in args.against_workers.split(",") if w.strip()] or [None]
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-scan-") as tmp:
        folder, single = Path(tmp) / "files", Path(tmp) / "one"
        make_folder(folder, args.files)
        make_folder(single, 1)
        for r in range(args.repeat):
            sides = [(f"against ({args.against})" + (f", {w} worker(s)" if w else ""), args.against, w)
                     for w in theirs] if args.against else []
            sides += [(f"{w} worker(s)", ROOT, w) for w in counts]
            for side, (label, source, workers) in enumerate(sides):
                print(f"round {r + 1}/{args.repeat}: {label} ...", file=sys.stderr, flush=True)
                data = Path(tmp) / f"data-{r}-{side}"  # a fresh store per run: nothing cached from another
                point = scan_once(source, folder, data, workers)
                if point["verdicts"] != args.files:
                    raise SystemExit(f"{label}: {point['verdicts']} verdicts for {args.files} files")
                one = scan_once(source, single, data.with_name(data.name + "-one"), workers)
                point.update(one_wall_s=one["wall_s"], one_cpu_s=one["cpu_s"])
                runs.setdefault(label, []).append(point)
    if args.json:
        print(json.dumps(runs, indent=1))
        return
    first = next(iter(runs))
    base = statistics.median(p["wall_s"] for p in runs[first])
    print(f"sluice scan of {args.files} random 1 KiB files, built-in services, embedded start included; "
          f"{os.cpu_count()} CPUs; medians of {args.repeat}\n")
    print("| run | files/s | vs first row | CPU ms per file | one-file scan s (start + stop) | its CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, points in runs.items():
        wall, cpu, one_wall, one_cpu = (statistics.median(p[k] for p in points) for k in ("wall_s", "cpu_s", "one_wall_s", "one_cpu_s"))
        print(f"| {label} | {args.files / wall:,.0f} | {base / wall:.2f} | {cpu * 1e3 / args.files:.2f} | {one_wall:.2f} | {one_cpu:.2f} |")


if __name__ == "__main__":
    main()
