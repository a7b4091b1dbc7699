"""The host's blob cache: each file's bytes downloaded at most once per process, whoever asks.

Content-addressed (sha256), bounded in bytes, least recently used evicted first. Every
`BlobStore` in a process shares `HOST_CACHE`, so the services of a one-box mesh (or of one
`sluice up`) that all read the same large file download it once: concurrent requests for a
sha256 wait for the first one's download instead of starting their own. The bytes are shared,
not copied. `SLUICE_BLOB_CACHE_MB` sets the bound (default 512; 0 turns caching off, though
concurrent requests still share one download).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import anyio

DEFAULT_MB = 512


class BlobCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.downloads = 0  # how many times a fetch really ran (what the cache saves is the rest)
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._inflight: dict[str, _Download] = {}

    def get(self, sha256: str) -> bytes | None:
        data = self._entries.get(sha256)
        if data is not None:
            self._entries.move_to_end(sha256)
        return data

    def add(self, sha256: str, data: bytes) -> None:
        if len(data) > self.max_bytes or sha256 in self._entries:
            return
        self._entries[sha256] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)

    async def fetch(self, sha256: str, download: Callable[[], Awaitable[bytes]]) -> bytes:
        """The bytes of `sha256`: from the cache, from a download already under way, or downloaded now.

        `download` must return bytes whose sha256 it has checked: what it returns is shared.
        """
        while True:
            data = self.get(sha256)
            if data is not None:
                return data
            running = self._inflight.get(sha256)
            if running is None:
                break
            await running.done.wait()
            if running.data is not None:
                return running.data
            # that download failed: try again (whoever gets here first downloads, the rest wait)
        mine = self._inflight[sha256] = _Download()
        try:
            self.downloads += 1
            mine.data = await download()
            self.add(sha256, mine.data)
            return mine.data
        finally:
            del self._inflight[sha256]
            mine.done.set()


class _Download:
    """One download under way; those who asked for the same bytes meanwhile wait for it."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.data: bytes | None = None


HOST_CACHE = BlobCache(int(float(os.environ.get("SLUICE_BLOB_CACHE_MB", DEFAULT_MB)) * 1024 * 1024))
