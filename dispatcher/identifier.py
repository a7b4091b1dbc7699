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
from typing import NamedTuple

import anyio
import anyio.to_thread

from bus.blobs import BlobError, BlobStore
from dispatcher.identify import MAGIC_WINDOW, first_opinion, identify, magika_type, warm_up, worth_a_second_opinion
from dispatcher.quota import SharedQuota
from schemas.limits import Limits
from schemas.messages import FileRef


class Typed(NamedTuple):
    """A file's type, and whether its bytes were new to the file store (stored by this check for
    the first time): nothing can be cached for a file nobody analysed before."""

    type: str
    new: bool = False


class Identifier:
    def __init__(self, blobs: BlobStore, threads: int = 2, remember: int = 100_000, stored: SharedQuota | None = None) -> None:
        self._blobs = blobs
        self._stored = stored  # bytes each writer identity may have promoted (its upload token names it)
        self._threads = anyio.CapacityLimiter(threads)
        self._remember = remember
        self._known: OrderedDict[str, tuple[str, int]] = OrderedDict()  # sha256 -> (type, size), of checked bytes only
        self._early: dict[str, anyio.Event] = {}  # upload token -> set when its early check ends (dispatcher.early)
        warm_up()

    async def type_of(self, file: FileRef) -> Typed:
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
            return Typed(known[0])
        data, new = await self.checked(file)
        head = data[:MAGIC_WINDOW]
        if len(head) <= Limits.inline_max:
            # libmagic on the loop for a small file; the model, when it must be asked, in a thread
            found = first_opinion(head)
            if found == "unknown" and worth_a_second_opinion(head):
                found = await anyio.to_thread.run_sync(magika_type, head, limiter=self._threads)
        else:
            found = await anyio.to_thread.run_sync(identify, head, limiter=self._threads)
        self._known[file.sha256] = (found, file.size)
        if len(self._known) > self._remember:
            self._known.popitem(last=False)
        return Typed(found, new)

    async def checked(self, file: FileRef) -> tuple[bytes, bool]:
        """The file's bytes as far as identification needs them (its head, for a named object),
        checked against its sha256, and the object named by it from now on (BlobError if not);
        and whether they were new to the store (inline bytes stored now for the first time)."""
        if file.data is not None:
            data = await self._blobs.get(file)
            return data, await self._blobs.name_checked(file.sha256, data)
        early = self._early.get(file.upload) if file.upload else None
        if early is not None:
            await early.wait()  # it is reading this very upload: one read, then the name is there
        if await self._blobs.exists(file.sha256, file.size):
            return await self._blobs.head(file, MAGIC_WINDOW), False
        return await self._promote(file), file.fresh

    async def check_early(self, file: FileRef) -> None:
        """Check and name an upload announced as it began (dispatcher.early), while it arrives; a
        submission of it that comes meanwhile waits for this check instead of reading it again.
        BlobError if its bytes do not match (nothing is named) or stop arriving."""
        if file.upload in self._early:
            return
        self._early[file.upload] = done = anyio.Event()
        try:
            if not await self._blobs.exists(file.sha256, file.size):
                await self._promote(file)
        finally:
            del self._early[file.upload]
            done.set()

    async def _promote(self, file: FileRef) -> bytes:
        writer = file.upload.split(".", 1)[0]
        if self._stored is not None and file.upload and not await self._stored.take(writer, file.size):
            raise BlobError(f"{file.sha256}: not stored: {writer} is over its quota of {self._stored.most} bytes "
                            f"stored per {self._stored.window / 3600:g} h")
        return await self._blobs.promote(file)
