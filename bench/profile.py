"""Profiles of the benchmark's child processes: py-spy from outside, summarised as top frames.

py-spy samples a running process without touching it and, by default, only stacks that are
on a CPU (idle waits in the event loop are left out), so the counts say where CPU time goes.
Its raw ("collapsed") output is one line per distinct stack with a count; the summary lists
the functions with the most samples on top of the stack (self) and anywhere in it (total).
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from bench.process import reap

RATE = 200  # samples per second


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
    return found


@asynccontextmanager
async def recording(pid: int, path: Path):
    """Sample `pid` for the duration of the block; then write `path` (collapsed stacks) and `path`.txt."""
    proc = await anyio.open_process([py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
                                     "--function", "--gil", "--nonblocking", "--output", str(path)], stdout=None, stderr=None)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        await reap(proc, 10)
        if path.exists():
            path.with_suffix(".txt").write_text(summary(path.read_text()))


def summary(collapsed: str, top: int = 30) -> str:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            anywhere[frame] += int(count)
    if not total:
        return "no samples\n"
    lines = [f"{total} samples on CPU at {RATE}/s ({total / RATE:.1f} CPU-seconds)", "", "self %  function (file:line)"]
    lines += [f"{100 * n / total:6.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total %  function (file:line)"]
    lines += [f"{100 * n / total:6.1f}  {frame}" for frame, n in anywhere.most_common(top)]
    return "\n".join(lines) + "\n"
