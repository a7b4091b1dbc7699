"""A file's type, worked out once per sha256 per dispatcher, from as few bytes as will do.

libmagic is most of a dispatcher's CPU per small file (0.3-0.7 ms; see bench/mesh.py), and the
same files come back (resubmissions, the same attachment in many trees, a resumed tree), so
the types of the last `remember` files are kept. Only a file's head is read for it (the services
fetch the rest); small files are identified on the event loop (cheaper than a thread hand-off),
larger heads on at most `threads` threads, each of which holds its own ~8 MB magic database.
"""

from __future__ import annotations

from collections import OrderedDict

import anyio
import anyio.to_thread

from bus.blobs import BlobStore
from dispatcher.identify import MAGIC_WINDOW, identify, warm_up
from schemas.limits import Limits
from schemas.messages import FileRef


class Identifier:
    def __init__(self, blobs: BlobStore, threads: int = 2, remember: int = 100_000) -> None:
        self._blobs = blobs
        self._threads = anyio.CapacityLimiter(threads)
        self._remember = remember
        self._known: OrderedDict[str, str] = OrderedDict()
        warm_up()

    async def type_of(self, file: FileRef) -> str:
        """The taxonomy type of `file` (BlobError if its bytes cannot be had)."""
        known = self._known.get(file.sha256)
        if known is not None:
            self._known.move_to_end(file.sha256)
            return known
        head = await self._blobs.head(file, MAGIC_WINDOW)
        if len(head) <= Limits.inline_max:
            found = identify(head)
        else:
            found = await anyio.to_thread.run_sync(identify, head, limiter=self._threads)
        self._known[file.sha256] = found
        if len(self._known) > self._remember:
            self._known.popitem(last=False)
        return found
