"""A file's entropy profile for the file page's graph: Shannon entropy (bits per byte, 0 to 8) of
up to `blocks` equal parts of the file, so a 2 KiB script and a 100 MiB installer both draw a real
curve (a fixed 4 KiB block gives a small file one point). A part larger than `sample` bytes is
measured on its first `sample` bytes, which bounds the work for a large file."""

from __future__ import annotations

import math
from collections import Counter

BLOCKS = 256
SAMPLE = 64 * 1024
MIN_BLOCK = 64  # bytes: fewer make entropy meaningless (at most log2(n) bits)


def shannon(chunk: bytes) -> float:
    if not chunk:
        return 0.0
    n = len(chunk)
    return abs(sum(c / n * math.log2(c / n) for c in Counter(chunk).values()))  # abs: no -0.0


def entropy_profile(data: bytes, blocks: int = BLOCKS, sample: int = SAMPLE) -> tuple[int, list[float]]:
    """(the block size in bytes, each block's entropy rounded to 0.01)."""
    if not data:
        return 0, []
    size = max(MIN_BLOCK, math.ceil(len(data) / blocks))
    return size, [round(shannon(data[start:start + min(size, sample)]), 2) for start in range(0, len(data), size)]
