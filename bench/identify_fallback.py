#!/usr/bin/env python3
"""What magika's second opinion costs: its load, and the time per file it adds, against
libmagic alone on the common path (where it never runs).

    .venv/bin/python bench/identify_fallback.py [--files 200]

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from formats import make_dmg, specimens  # noqa: E402
from dispatcher import identify as identify_module  # noqa: E402
from dispatcher.identify import identify, second_opinion, warm_up  # noqa: E402


def per_file_ms(files: list[bytes], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for data in files:
            identify(data)
        times.append((time.perf_counter() - start) / len(files))
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    warm_up()
    rng = random.Random(7)
    common = [s.data for s in specimens() if s.expected != "archive/dmg"]
    common = (common * (args.files // len(common) + 1))[: args.files]
    unknown = [make_dmg(rng.randbytes(4096)) for _ in range(args.files // 2)] + \
              [rng.randbytes(rng.randrange(1000, 200_000)) for _ in range(args.files // 2)]
    start = time.perf_counter()
    identify_module._magika()
    load = time.perf_counter() - start
    second_opinion(unknown[0])
    print(f"magika load (once per process): {load * 1000:.0f} ms")
    print(f"common path, {len(common)} files typed by libmagic or head rules: {per_file_ms(common):.2f} ms/file (magika not asked)")
    with_magika = per_file_ms(unknown)
    typed = sum(identify(d) != "unknown" for d in unknown)
    identify_module._magika.cache_clear()
    real = identify_module._magika
    identify_module._magika = lambda: None
    try:
        without = per_file_ms(unknown)
    finally:
        identify_module._magika = real
    print(f"libmagic says nothing, {len(unknown)} files (half DMG-shaped, half random): "
          f"{with_magika:.2f} ms/file with magika, {without:.2f} without: magika adds {with_magika - without:.2f} ms/file; "
          f"{typed} of {len(unknown)} given a type")


if __name__ == "__main__":
    main()
