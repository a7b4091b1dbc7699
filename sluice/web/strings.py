"""Printable strings in a window of a file, ASCII and UTF-16LE, with their offsets (as `strings -el` too).

A file is read a window at a time, so a 100 MiB sample's strings page in as the analyst scrolls
instead of all at once; a string that starts in a window is reported whole even if it runs past it.
"""

from __future__ import annotations

import re

from sluice.web.models import FoundString

RUN_PAST = 4096  # bytes past the window a string starting inside it may run on
MAX_TEXT = 1024  # characters shown of one (very long) string


def _patterns(min_length: int) -> list[tuple[str, re.Pattern[bytes]]]:
    return [("ascii", re.compile(rb"[\x20-\x7e\t]{%d,}" % min_length)),
            ("utf-16le", re.compile(rb"(?:[\x20-\x7e\t]\x00){%d,}" % min_length))]


def strings_in(data: bytes, start: int, end: int, min_length: int = 4, limit: int = 2000) -> tuple[list[FoundString], bool]:
    """Strings starting in data[start:end], by offset; (the first `limit`, whether there were more)."""
    window = data[start:min(len(data), end + RUN_PAST)]
    found: list[FoundString] = []
    for encoding, pattern in _patterns(min_length):
        for m in pattern.finditer(window):
            if m.start() >= end - start:
                break
            text = m.group().decode("ascii" if encoding == "ascii" else "utf-16-le", "replace")
            found.append(FoundString(start + m.start(), encoding, text[:MAX_TEXT]))
    found.sort(key=lambda s: (s.offset, s.encoding))
    return found[:limit], len(found) > limit
