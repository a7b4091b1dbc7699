"""The dispatcher's identifier: a file's type once per sha256, from its head only."""

from __future__ import annotations

import hashlib

import pytest

from bus.blobcache import BlobCache
from bus.blobs import BlobError, BlobStore
from dispatcher.identifier import Identifier
from schemas.messages import FileRef

TEXT = b"just some words in a file\n" * 10


class NoStore(BlobStore):
    """A blob store with nothing stored: only inline files can be had."""

    def __init__(self) -> None:
        super().__init__(None, None, "none", cache=BlobCache(0))

    async def _read(self, sha256: str, limit: int | None = None, declared: int | None = None, upload: str = "") -> bytes:
        raise BlobError(f"{sha256}: not in the file store")

    async def exists(self, sha256: str, size: int | None = None) -> bool:
        return False

    async def name_checked(self, sha256: str, data: bytes) -> bool:
        """Checked inline bytes would be stored under their name; there is no store here."""
        return True


async def test_a_type_is_worked_out_once_per_sha256():
    identifier = Identifier(NoStore())
    sha = hashlib.sha256(TEXT).hexdigest()
    assert await identifier.type_of(FileRef(sha, len(TEXT), "a.txt", TEXT)) == ("text/plain", True)
    # The same file again, by reference only: nothing is fetched (there is nothing to fetch), and
    # it is not new (its results may be cached).
    assert await identifier.type_of(FileRef(sha, len(TEXT), "b.txt")) == ("text/plain", False)


async def test_it_forgets_the_oldest_past_its_bound():
    identifier = Identifier(NoStore(), remember=1)
    first, second = TEXT, b"%PDF-1.4\n" + TEXT
    for data in (first, second):
        await identifier.type_of(FileRef(hashlib.sha256(data).hexdigest(), len(data), "", data))
    with pytest.raises(BlobError):
        await identifier.type_of(FileRef(hashlib.sha256(first).hexdigest(), len(first), ""))
