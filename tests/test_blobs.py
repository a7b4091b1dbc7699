"""Moving file bytes: inline small files, the chunk reader, the head read, the host's blob cache."""

from __future__ import annotations

import hashlib
import os

import anyio
import pytest

from bus.blobcache import BlobCache
from bus.blobs import CHUNK, BlobError, BlobStore
from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from schemas.messages import FileRef


@pytest.fixture
async def stores(nats_url, prefix):
    nc = await connect(nats_url)
    js = nc.jetstream()
    yield js, await provision(js, Names(prefix)), Names(prefix)
    await close(nc)


def blob_store(stores, cache: BlobCache) -> BlobStore:
    js, provisioned, names = stores
    return BlobStore(js, provisioned.files, names.file_bucket, inline_max=1024, cache=cache)


async def test_a_small_file_travels_inline_and_is_stored_too(stores):
    blobs = blob_store(stores, BlobCache(0))
    ref = await blobs.put(b"small", "s.txt")
    assert ref.data == b"small" and await blobs.get(ref) == b"small"
    # Stored as well: the web front and `sluice result` fetch a tree's files by sha256 alone.
    assert await blobs.get(FileRef(ref.sha256, ref.size, ref.name)) == b"small"


async def test_inline_bytes_that_do_not_match_their_sha256_are_refused(stores):
    blobs = blob_store(stores, BlobCache(0))
    with pytest.raises(BlobError, match="do not match"):
        await blobs.get(FileRef(hashlib.sha256(b"a").hexdigest(), 1, "x", b"b"))


async def test_readers_of_one_file_in_one_process_download_it_once(stores):
    cache = BlobCache(64 * 1024 * 1024)
    blobs = blob_store(stores, cache)
    data = os.urandom(3 * CHUNK + 17)
    ref = await blob_store(stores, BlobCache(0)).put(data, "big.bin")  # stored elsewhere
    assert ref.data is None
    got: list[bytes] = []

    async def read() -> None:
        got.append(await blobs.get(ref))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(read)
        got.append(await blobs.get(ref))
    assert got == [data] * 4 and cache.downloads == 1


async def test_a_file_stored_in_this_process_is_never_downloaded(stores):
    cache = BlobCache(64 * 1024 * 1024)
    blobs = blob_store(stores, cache)
    data = os.urandom(2 * CHUNK)
    ref = await blobs.put(data, "big.bin")
    assert await blobs.get(ref) == data and cache.downloads == 0


async def test_what_we_write_is_an_ordinary_nats_object(stores):
    _, provisioned, _ = stores
    data = os.urandom(2 * CHUNK + 5)
    ref = await blob_store(stores, BlobCache(0)).put(data, "big.bin")
    info = await provisioned.files.get_info(ref.sha256)
    assert info.size == len(data) and info.chunks == 3
    assert (await provisioned.files.get(ref.sha256)).data == data  # nats-py's own reader checks the digest


async def test_the_head_of_a_stored_file_is_read_without_the_rest(stores):
    blobs = blob_store(stores, BlobCache(0))
    data = os.urandom(4 * CHUNK)
    ref = await blobs.put(data, "big.bin")
    head = await blobs.head(ref, 1000)
    assert data.startswith(head) and 1000 <= len(head) < len(data)
    assert await blobs.head(await blobs.put(b"tiny"), 1000) == b"tiny"


async def test_the_cache_keeps_to_its_bound_evicting_the_least_recently_used():
    cache = BlobCache(10)
    cache.add("a", b"12345")
    cache.add("b", b"12345")
    assert cache.get("a") == b"12345"  # now "b" is the least recently used
    cache.add("c", b"123")
    assert cache.get("b") is None and cache.get("a") and cache.get("c") and cache.size == 8
    cache.add("huge", b"x" * 11)
    assert cache.get("huge") is None


async def test_a_failed_download_is_tried_again_by_the_next_reader():
    cache = BlobCache(100)
    attempts = 0

    async def flaky() -> bytes:
        nonlocal attempts
        attempts += 1
        await anyio.sleep(0.01)
        if attempts == 1:
            raise BlobError("first try fails")
        return b"bytes"

    results: list[object] = []

    async def read() -> None:
        try:
            results.append(await cache.fetch("k", flaky))
        except BlobError as exc:
            results.append(str(exc))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(read)
    assert sorted(map(str, results)) == ["b'bytes'", "b'bytes'", "first try fails"] and attempts == 2


# -- uploads and the trusted side's check (bus.blobs: only the dispatcher names objects) -------------

async def test_an_upload_is_named_only_once_its_bytes_are_checked(stores):
    js, provisioned, names = stores
    cache = BlobCache(64 * 1024 * 1024)
    uploader = BlobStore(js, provisioned.files, names.file_bucket, inline_max=1024, cache=cache, writer="alice")
    trusted = BlobStore(js, provisioned.files, names.file_bucket, inline_max=1024, cache=cache)
    genuine = os.urandom(CHUNK + 5)
    ref = await uploader.put(genuine, "g.bin")  # also leaves the genuine bytes in this process's cache
    assert ref.upload.startswith("alice.") and not await trusted.exists(ref.sha256)
    squat = FileRef(ref.sha256, ref.size, "g.bin", upload="mallory.1")
    await BlobStore(js, provisioned.files, names.file_bucket, writer="mallory")._write_chunks("mallory.1", os.urandom(CHUNK + 5))
    with pytest.raises(BlobError, match="do not match"):
        await trusted.promote(squat)  # the cache holds the genuine bytes; the check reads the upload
    assert not await trusted.exists(ref.sha256)
    assert await trusted.promote(ref) == genuine and await trusted.exists(ref.sha256)
    assert await trusted.get(FileRef(ref.sha256, ref.size)) == genuine  # by name alone, as the web front reads
    again = await uploader.put(genuine, "again.bin")
    assert again.upload == ""  # a named object is a checked one: nothing to upload


async def test_a_trusted_name_for_inline_bytes_is_written_once_and_readable(stores):
    js, provisioned, names = stores
    trusted = BlobStore(js, provisioned.files, names.file_bucket, inline_max=1024, cache=BlobCache(0))
    data = b"small and checked"
    sha = hashlib.sha256(data).hexdigest()
    assert not await trusted.exists(sha)
    assert await trusted.name_checked(sha, data)  # new: nothing can be cached for it
    assert not await trusted.name_checked(sha, data)  # named before: its results may be cached
    assert await trusted.exists(sha) and await trusted.exists(sha, len(data))
    assert await trusted.get(FileRef(sha, len(data))) == data  # by sha256 alone, as the web front reads
    assert await trusted.head(FileRef(sha, len(data)), 5) == data[:5]
    with pytest.raises(BlobError, match="declares"):
        await trusted.get(FileRef(sha, len(data) + 1))
    chunks = await js.stream_info(f"OBJ_{names.file_bucket}", subjects_filter=f"$O.{names.file_bucket}.C.trusted-{sha}")
    assert chunks.state.subjects == {f"$O.{names.file_bucket}.C.trusted-{sha}": 1}  # the second call wrote nothing
    # An uploader storing the same bytes as a stored (not inline) file finds them named already.
    uploader = BlobStore(js, provisioned.files, names.file_bucket, inline_max=4, cache=BlobCache(0), writer="alice")
    assert (await uploader.put(data, "again.txt", inline=False)).upload == ""
