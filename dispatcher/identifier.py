"""A file's type, worked out once per sha256 per dispatcher, from as few bytes as will do, and
only ever from bytes checked against that sha256.

Checked means: inline bytes hashed here (and then stored under their name, since nobody else
may name an object); an upload read whole, hashed and promoted to the object of its name
(bus.blobs); or an object already named, which the trusted side named only after checking it.

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

from bus.blobs import BlobError, BlobStore
from dispatcher.identify import MAGIC_WINDOW, identify, warm_up
from dispatcher.quota import SharedQuota
from schemas.limits import Limits
from schemas.messages import FileRef


class Identifier:
    def __init__(self, blobs: BlobStore, threads: int = 2, remember: int = 100_000, stored: SharedQuota | None = None) -> None:
        self._blobs = blobs
        self._stored = stored  # bytes each writer identity may have promoted (its upload token names it)
        self._threads = anyio.CapacityLimiter(threads)
        self._remember = remember
        self._known: OrderedDict[str, tuple[str, int]] = OrderedDict()  # sha256 -> (type, size), of checked bytes only
        warm_up()

    async def type_of(self, file: FileRef) -> str:
        """The taxonomy type of `file` (BlobError if its bytes cannot be had, or are not its own)."""
        known = self._known.get(file.sha256)
        if known is not None:
            # A remembered sha256 still holds this reference to its word: inline bytes must hash
            # to it and the declared size must be the checked one, or the services fail on it later.
            if file.data is not None:
                await self._blobs.get(file)
            elif file.size != known[1]:
                raise BlobError(f"{file.sha256}: {known[1]} bytes, not the {file.size} its reference declares")
            self._known.move_to_end(file.sha256)
            return known[0]
        head = (await self.checked(file))[:MAGIC_WINDOW]
        if len(head) <= Limits.inline_max:
            found = identify(head)
        else:
            found = await anyio.to_thread.run_sync(identify, head, limiter=self._threads)
        self._known[file.sha256] = (found, file.size)
        if len(self._known) > self._remember:
            self._known.popitem(last=False)
        return found

    async def checked(self, file: FileRef) -> bytes:
        """The file's bytes as far as identification needs them (its head, for a named object),
        checked against its sha256, and the object named by it from now on (BlobError if not)."""
        if file.data is not None:
            data = await self._blobs.get(file)
            await self._blobs.name_checked(file.sha256, data)
            return data
        if await self._blobs.exists(file.sha256):
            return await self._blobs.head(file, MAGIC_WINDOW)
        writer = file.upload.split(".", 1)[0]
        if self._stored is not None and file.upload and not await self._stored.take(writer, file.size):
            raise BlobError(f"{file.sha256}: not stored: {writer} is over its quota of {self._stored.most} bytes "
                            f"stored per {self._stored.window / 3600:g} h")
        return await self._blobs.promote(file)
