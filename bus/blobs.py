"""File bytes, stored once by sha256 in the object store; small files also travel inline.

Trust: only a trusted writer (the dispatcher, the updater, admin) names objects. Everyone else
*uploads*: its chunks go under `$O.<bucket>.C.<writer>.<id>` (its identity may publish nowhere
else in the store, bus.auth), and its `FileRef` says where (`upload`). The dispatcher reads an
upload whole, checks it against the sha256, and only then writes the meta message that names
the object by that sha256 (`promote`). So an object found by name has been checked, a writer
may skip storing bytes only when the name exists, and bytes that do not match their sha256
never get a name: they cannot block the genuine ones, which simply get promoted instead. A
small file the dispatcher checked inline is named by its one chunk under `trusted-<sha256>`, a
nuid only the trusted side may write (`name_checked`): two messages instead of four.

Reading uses our own chunk reader instead of nats-py's `ObjectStore.get`, which builds the
object by `bytes +=` and waits on a 250 ms flow-control poll (4–37 MiB/s measured here):
an ephemeral pull consumer on the object's chunk subject, no acks, large fetch batches. What
is read goes through the process's blob cache (bus/blobcache.py), so the services of one
process download a file once between them; the dispatcher reads only a file's head. Writing
keeps nats-py's object layout but pipelines the chunks (its `put` waits for each chunk's ack).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import anyio
import anyio.to_thread
import orjson
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_DIGEST_TEMPLATE, OBJ_META_PRE_TEMPLATE, ObjectStore

from bus.blobcache import HOST_CACHE, BlobCache
from bus.publish import jetstream_publish, jetstream_publish_all
from schemas.limits import Limits
from schemas.messages import FileRef


log = logging.getLogger("sluice.bus")


class BlobError(RuntimeError):
    """The bytes of a file cannot be had (missing, or not matching their sha256)."""


# Per object-store message: 8x fewer publishes than nats-py's 128 KiB, well under the 8 MiB
# max_payload Sluice asks of its servers (docs/deploying.md); any size is read. 1 MiB against
# 512 KiB: a 64 MiB file through three readers (bench/mesh.py --only large) took 0.95x the time,
# median of 10 alternating pairs on a busy 2-core box (faster in 8); 2 MiB was no faster.
CHUNK = 1024 * 1024
WINDOW = 32  # chunks awaiting their acks while writing (32 MiB), a sliding window
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = 10071  # JetStream's error code when that subject already holds a message
FETCH_CHUNKS = 8  # chunks per fetch while reading: 8 MiB, hashed while the next 8 arrive
# Uploads announced as they begin (BlobStore's `announce`): from four chunks up, where checking
# while the upload arrives saves more than the dispatcher's extra consumer costs.
ANNOUNCED_SIZE = 4 * CHUNK


class BlobStore:
    """`writer`: None for a trusted writer (names its objects at once); otherwise the writer's
    upload token (bus.auth.identity_of its role), and what it stores waits for the dispatcher's check.
    `announce`: told of each upload of at least ANNOUNCED_SIZE as it begins (its reference, as
    it will be submitted), so that the dispatcher can check it while it arrives (dispatcher.early)."""

    def __init__(self, js: JetStreamContext, store: ObjectStore, bucket: str, inline_max: int = Limits.inline_max,
                 cache: BlobCache = HOST_CACHE, writer: str | None = None,
                 announce: Callable[[FileRef], Awaitable[None]] | None = None) -> None:
        self._js = js
        self._store = store
        self._bucket = bucket
        self._cache = cache
        self.inline_max = inline_max
        self.writer = writer
        self._announce = announce

    async def put(self, data: bytes, name: str = "", inline: bool = True) -> FileRef:
        """Store `data` once by sha256; with `inline`, a small file also travels inside its ref, so
        no one on the analysis path downloads it. A trusted writer stores it under its name (the
        web front and `sluice result` fetch files by sha256 alone); an uploader leaves a small
        inline file for the dispatcher to store once checked, and uploads the rest unless an
        object of that name (checked, by construction) is already there.

        Never re-puts an existing object: nats-py then purges the old chunks, and purge is a
        right that writers do not get under auth (it could empty the whole store). If a
        concurrent writer stores the same bytes between our look and our write, that is fine:
        the object is there.
        """
        sha = hashlib.sha256(data).hexdigest()
        small = inline and len(data) <= self.inline_max
        upload, fresh = "", False  # fresh: the store did not have them before (FileRef.fresh)
        if self.writer is None:
            fresh = await self.ensure_named(sha, data)
        elif not small and not await self.exists(sha, len(data)):
            upload, fresh = f"{self.writer}.{uuid.uuid4().hex}", True
            if self._announce is not None and len(data) >= ANNOUNCED_SIZE:
                await self._announce(FileRef(sha, len(data), name, upload=upload, fresh=True))
            await self._write_chunks(upload, data)
        if small:
            return FileRef(sha, len(data), name, data, fresh=fresh)
        self._cache.add(sha, data)  # whoever reads it in this process (a one-box mesh) need not download it
        return FileRef(sha, len(data), name, upload=upload, fresh=fresh)

    async def ensure_named(self, sha256: str, data: bytes) -> bool:
        """Store checked bytes under their sha256 unless an object of that name exists (trusted
        side); whether they were stored now."""
        if await self.exists(sha256, len(data)):
            return False
        try:
            nuid = f"{self.writer or 'trusted'}.{uuid.uuid4().hex}"
            await self._write_chunks(nuid, data)
            await self._name(sha256, nuid, len(data))
        except Exception:
            if not await self.exists(sha256, len(data)):
                raise
        return True

    async def name_checked(self, sha256: str, data: bytes) -> bool:
        """Store small checked bytes (the dispatcher, for inline files) under their sha256, and say
        whether they are new: stored now for the first time, so that no analysis of them can have
        been cached (the dispatcher then skips its cache read: a KV request and its reply).

        Two messages: one chunk under `trusted-<sha256>`, written only if that subject is empty
        (`Nats-Expected-Last-Subject-Sequence: 0`), and its ack, which is the answer. No meta:
        only the trusted side may publish a chunk under a nuid of that form (an uploader's are
        `<identity>.<id>`, bus.auth), and only checked bytes, so the chunk is the name; readers
        by sha256 look for it when no meta names the sha256 (`_small`). A failure costs only
        those readers (logged), never the analysis, which has the bytes."""
        if len(data) > CHUNK:
            raise ValueError(f"{sha256}: {len(data)} bytes is not a small file (at most {CHUNK})")
        try:
            await jetstream_publish(self._js, self._small_subject(sha256), data, {EXPECTED_LAST_SUBJECT_SEQUENCE: "0"})
        except BadRequestError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE:
                log.warning("storing checked file %s failed (only readers by sha256 miss it): %s", sha256, exc)
            return False  # stored before (or unknown): the cache may hold its results
        except (TimeoutError, NatsError) as exc:
            log.warning("storing checked file %s failed (only readers by sha256 miss it): %s", sha256, exc)
            return False
        return True

    def _small_subject(self, sha256: str) -> str:
        return small_subject(self._bucket, sha256)

    async def _small(self, sha256: str) -> bytes | None:
        """A small file stored by `name_checked`, or None (one direct get, no consumer)."""
        try:
            msg = await self._js.get_last_msg(f"OBJ_{self._bucket}", self._small_subject(sha256), direct=True)
        except NotFoundError:
            return None
        return msg.data or b""

    async def promote(self, ref: FileRef) -> bytes:
        """All of an uploaded file's bytes, checked against its sha256, then named by it (trusted
        side only: under auth nobody else may write an object's meta). BlobError if they do not
        match: nothing is named, and the genuine bytes can still be promoted later."""
        if not ref.upload:
            raise BlobError(f"{ref.sha256}: not in the file store (expired or never stored)")
        # Never from the process cache: what gets the name must be these chunks, read and checked
        # here (the cache may hold the genuine bytes while this upload holds others).
        data = await self._read(ref.sha256, declared=ref.size, upload=ref.upload)
        await self._name(ref.sha256, ref.upload, len(data))
        self._cache.add(ref.sha256, data)
        return data

    async def _write_chunks(self, nuid: str, data: bytes) -> None:
        """The chunks of what nats-py's `ObjectStore.put` writes, pipelined in a sliding window:
        `put` waits for each chunk's ack before sending the next, half of a large file's trip."""
        chunks = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self._bucket, obj=nuid)
        view = memoryview(data)  # chunks as views: nats-py copies each into its command anyway, once is enough
        try:
            await jetstream_publish_all(self._js, ((chunks, view[i:i + CHUNK], None) for i in range(0, len(data), CHUNK)),
                                        window=WINDOW)
        except BaseException:
            # Best effort (under auth a writer may not purge): orphaned chunks expire with the bucket.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5), contextlib.suppress(Exception):
                await self._js.purge_stream(f"OBJ_{self._bucket}", subject=chunks)
            raise

    async def _name(self, sha256: str, nuid: str, size: int) -> None:
        await jetstream_publish(self._js, *self._meta(sha256, nuid, size))

    def _meta(self, sha256: str, nuid: str, size: int) -> tuple[str, bytes, dict[str, str]]:
        """The meta message that makes the chunks under `nuid` the object `sha256`, readable by any
        NATS client as nats-py lays objects out (`ObjectInfo`'s fields, written directly: its
        dataclass and `json` were a twentieth of a dispatcher's CPU per small file)."""
        info = {"name": sha256, "bucket": self._bucket, "nuid": nuid, "size": size,
                "mtime": datetime.now(timezone.utc).isoformat(), "chunks": -(-size // CHUNK),
                "digest": OBJ_DIGEST_TEMPLATE.format(digest=base64.urlsafe_b64encode(bytes.fromhex(sha256)).decode()),
                "deleted": False, "options": {"max_chunk_size": CHUNK}}
        meta = OBJ_META_PRE_TEMPLATE.format(bucket=self._bucket, obj=base64.urlsafe_b64encode(sha256.encode()).decode())
        return meta, orjson.dumps(info), {"Nats-Rollup": "sub"}

    async def exists(self, sha256: str, size: int | None = None) -> bool:
        """Whether an object is named `sha256` (under auth: whether the trusted side checked it);
        a file of known `size` over one chunk cannot be a small one (`name_checked`)."""
        try:
            await self._store.get_info(sha256)
        except ObjectNotFoundError:
            return (size is None or size <= CHUNK) and await self._small(sha256) is not None
        return True

    async def get(self, ref: FileRef) -> bytes:
        """All of the file's bytes, checked against its sha256 (stored ones downloaded once per
        process) and against the size its reference declares: limits are checked on the declared
        size, so a lie must not slip past them."""
        if ref.data is None:
            data = await self._cache.fetch(ref.sha256, lambda: self._read(ref.sha256, upload=ref.upload, declared=ref.size or None))
        elif hashlib.sha256(ref.data).hexdigest() != ref.sha256:
            raise BlobError(f"{ref.sha256}: inline bytes do not match their sha256")
        else:
            data = ref.data
        if len(data) != ref.size:
            raise BlobError(f"{ref.sha256}: {len(data)} bytes, not the {ref.size} its reference declares")
        return data

    async def head(self, ref: FileRef, size: int) -> bytes:
        """At least the first `size` bytes (or all of a shorter file) of a *named* object, for
        identification, without downloading a large file the services will download anyway.
        Its size is checked; its bytes were checked when it was named (`promote`)."""
        if ref.data is not None:
            return (await self.get(ref))[:size]
        cached = self._cache.get(ref.sha256)
        return cached if cached is not None and len(cached) == ref.size else await self._read(ref.sha256, size, ref.size)

    async def _read(self, sha256: str, limit: int | None = None, declared: int | None = None, upload: str = "") -> bytes:
        """The object named `sha256` (or the `upload` of `declared` bytes): all of it, checked
        against its sha256, or its first `limit` bytes (refused if its size is not the `declared` one)."""
        if upload and declared is not None:
            nuid, size = upload, declared
        else:
            try:
                info = await self._store.get_info(sha256)
            except ObjectNotFoundError:
                return await self._read_small(sha256, limit, declared)
            if declared is not None and info.size != declared:
                raise BlobError(f"{sha256}: {info.size} bytes, not the {declared} its reference declares")
            nuid, size = info.nuid, info.size
        if not size:
            return b""
        wanted = size if limit is None else min(limit, size)
        sub = await self._js.pull_subscribe(
            OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self._bucket, obj=nuid),
            stream=f"OBJ_{self._bucket}",
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, mem_storage=True,
                inactive_threshold=30.0, num_replicas=1,
            ),
        )
        chunks: list[bytes] = []
        got = 0
        async with anyio.create_task_group() as tg:
            digest = _Digest(tg, size) if limit is None else None
            try:
                while got < wanted:
                    try:
                        # No more than the chunks still due (a fetch asking for more waits out its
                        # expiry), and a few at a time, so that hashing overlaps the next fetch.
                        msgs = await sub.fetch(min(FETCH_CHUNKS, -(-(wanted - got) // CHUNK)), timeout=2.0)
                    except NatsTimeout:
                        raise BlobError(f"{sha256}: chunks stopped arriving at {got}/{size} bytes") from None
                    batch = [msg.data for msg in msgs]
                    chunks += batch
                    got += sum(map(len, batch))
                    if digest is not None:
                        digest.add(batch)
            finally:
                await sub.unsubscribe()
            found = await digest.hexdigest() if digest is not None else None
        data = b"".join(chunks)  # one copy of the file, not one per chunk plus one at the end
        if limit is None:
            data = data[:size] if got > size else data  # chunks appended after the upload are not part of it
            if found != sha256:
                raise BlobError(f"{sha256}: stored bytes do not match their sha256")
        return data


    async def _read_small(self, sha256: str, limit: int | None, declared: int | None) -> bytes:
        """A small file named by its trusted chunk alone (`name_checked`): checked whatever `limit`."""
        data = None if declared is not None and declared > CHUNK else await self._small(sha256)
        if data is None:
            raise BlobError(f"{sha256}: not in the file store (expired or never stored)")
        if declared is not None and len(data) != declared:
            raise BlobError(f"{sha256}: {len(data)} bytes, not the {declared} its reference declares")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobError(f"{sha256}: stored bytes do not match their sha256")
        return data if limit is None else data[:limit]


def small_subject(bucket: str, sha256: str) -> str:
    """The subject of a small checked file's one chunk (`BlobStore.name_checked`), its only name."""
    return OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=f"trusted-{sha256}")


class _Digest:
    """The sha256 of a file's first `size` bytes as its chunks arrive, each batch hashed on a
    worker thread (hashlib lets go of the GIL on large buffers) while the next batch is fetched,
    in arrival order."""

    def __init__(self, tg, size: int) -> None:
        self._tg = tg
        self._left = size
        self._hasher = hashlib.sha256()
        self._last: anyio.Event | None = None

    def add(self, batch: list[bytes]) -> None:
        taken: list[bytes] = []
        for chunk in batch:
            if self._left <= 0:
                break
            taken.append(chunk[:self._left] if len(chunk) > self._left else chunk)
            self._left -= len(taken[-1])
        before, self._last = self._last, anyio.Event()
        self._tg.start_soon(self._update, taken, before, self._last)

    async def _update(self, taken: list[bytes], before: anyio.Event | None, done: anyio.Event) -> None:
        if before is not None:
            await before.wait()
        await anyio.to_thread.run_sync(lambda: [self._hasher.update(chunk) for chunk in taken])
        done.set()

    async def hexdigest(self) -> str:
        if self._last is not None:
            await self._last.wait()
        return self._hasher.hexdigest()
