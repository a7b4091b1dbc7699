"""The printable strings of a file: ASCII runs and UTF-16LE runs, as Windows binaries store both.

Indicators never contain control bytes, so scanning runs instead of the whole buffer keeps binary
noise from gluing onto a match, and works the same for text files (a run is then about a line).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MIN_RUN = 6
BATCH_CHARS = 1 << 20
_ASCII = re.compile(rb"[\x20-\x7e]{%d,}" % MIN_RUN)
# Spelled with a leading literal class (not just `(?:..){6,}`) so `re` can skip non-matching
# bytes quickly: four times faster on zero padding.
_UTF16LE = re.compile(rb"[\x20-\x7e]\x00(?:[\x20-\x7e]\x00){%d,}" % (MIN_RUN - 1))



def text_runs(data: bytes) -> Iterator[str]:
    """Each run of at least MIN_RUN printable characters, ASCII first, then UTF-16LE."""
    for match in _ASCII.finditer(data):
        yield match.group().decode("ascii")
    for match in _UTF16LE.finditer(data):
        yield match.group().decode("utf-16-le")


def text_batches(data: bytes) -> Iterator[str]:
    """The runs joined by newlines into strings of about BATCH_CHARS.

    No indicator pattern crosses a newline, so a batch matches exactly like its runs one by
    one, with one regex call per batch instead of one per run (a text file has a run per line).
    """
    batch: list[str] = []
    size = 0
    for run in text_runs(data):
        batch.append(run)
        size += len(run)
        if size >= BATCH_CHARS:
            yield "\n".join(batch)
            batch, size = [], 0
    if batch:
        yield "\n".join(batch)
