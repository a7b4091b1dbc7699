"""Shannon entropy of a file and of its blocks, and when it says "packed or encrypted".

Text sits around 4.5 bits per byte, machine code around 6, compressed or encrypted bytes near 8.
The whole-file figure catches an encrypted blob; the per-block profile catches a packed payload
inside an otherwise ordinary file (a long run of near-random blocks).
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

GLYPHS = " ▁▂▃▄▅▆▇█"  # 0..8 bits per byte, one glyph per block in the text graph
GRAPH_WIDTH = 64  # blocks per graph line


def shannon(counts: Iterable[int], total: int) -> float:
    """Bits per byte of a byte histogram (0.0 for no bytes).

    As log2(total) - sum(c * log2(c)) / total, with map() so the loop over the 256 counts runs in
    C: the generator over c * log2(total / c) was half of the service's time on a small file.
    """
    if total <= 0:
        return 0.0
    present = list(filter(None, counts))
    return max(0.0, math.log2(total) - sum(map(operator.mul, present, map(math.log2, present))) / total)


@dataclass(frozen=True)
class Profile:
    size: int
    overall: float
    block_size: int
    blocks: list[float]

    def longest_run(self, threshold: float) -> tuple[int, int]:
        """(offset, bytes) of the longest run of consecutive blocks above `threshold`."""
        best = (0, 0)
        start = None
        for index, value in enumerate([*self.blocks, -1.0]):  # the sentinel closes a final run
            if value > threshold:
                start = index if start is None else start
                continue
            if start is not None:
                offset = start * self.block_size
                covered = min(index * self.block_size, self.size) - offset
                best = max(best, (offset, covered), key=lambda run: run[1])
                start = None
        return best


def profile(data: bytes, max_blocks: int, min_block: int) -> Profile:
    """Block entropies: at most `max_blocks` blocks, each a multiple of `min_block` bytes.

    One Counter per block (C speed, ~30 ms per MiB); the whole-file histogram is their sum,
    so the data is read once.
    """
    per_block = -(-len(data) // max_blocks)
    block_size = max(1, -(-per_block // min_block)) * min_block
    if len(data) <= block_size:  # one block (every file up to 4 KiB): it is the whole file
        overall = shannon(Counter(data).values(), len(data))
        return Profile(len(data), overall, block_size, [overall] if data else [])
    total: Counter[int] = Counter()
    blocks = []
    for start in range(0, len(data), block_size):
        chunk = data[start:start + block_size]
        counts = Counter(chunk)
        total.update(counts)
        blocks.append(shannon(counts.values(), len(chunk)))
    return Profile(len(data), shannon(total.values(), len(data)), block_size, blocks)


class Thresholds(msgspec.Struct, frozen=True):
    """When entropy is "high"; the field names are the manifest's config keys."""

    high_entropy_bits: float = 7.5  # "high" is above this many bits per byte
    high_entropy_min_bytes: int = 4096  # the whole-file figure counts only for files at least this big
    high_entropy_run_bytes: int = 65536  # a run of high blocks counts once it covers this many bytes


def high_entropy(prof: Profile, limits: Thresholds) -> str | None:
    """Why the content looks packed or encrypted, or None."""
    if prof.size >= limits.high_entropy_min_bytes and prof.overall > limits.high_entropy_bits:
        return f"The whole file is {prof.overall:.3f} bits per byte over {prof.size:,} bytes."
    offset, covered = prof.longest_run(limits.high_entropy_bits)
    if covered >= limits.high_entropy_run_bytes:
        return (f"{covered:,} bytes from offset 0x{offset:x} are above {limits.high_entropy_bits:g} bits per byte "
                f"(overall {prof.overall:.3f}).")
    return None


def graph(prof: Profile) -> list[str]:
    """One glyph per block, GRAPH_WIDTH blocks per line, each line led by its file offset."""
    glyphs = "".join(GLYPHS[min(8, round(value))] for value in prof.blocks)
    step = GRAPH_WIDTH * prof.block_size
    return [f"{i * step:08x} |{glyphs[j:j + GRAPH_WIDTH]}|" for i, j in enumerate(range(0, len(glyphs), GRAPH_WIDTH))]
