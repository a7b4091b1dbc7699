"""File bytes, stored once by sha256 in the object store; small files also travel inline.

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
import json
import uuid
from datetime import datetime, timezone

import anyio
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ObjectInfo, ObjectMetaOptions
from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_DIGEST_TEMPLATE, OBJ_META_PRE_TEMPLATE, ObjectStore

from bus.blobcache import HOST_CACHE, BlobCache
from bus.publish import jetstream_publish, jetstream_publish_all
from schemas.limits import Limits
from schemas.messages import FileRef


class BlobError(RuntimeError):
    """The bytes of a file cannot be had (missing, or not matching their sha256)."""


CHUNK = 512 * 1024  # per object-store message: 4x fewer publishes than nats-py's 128 KiB, under a 1 MiB max_payload
WINDOW = 16  # chunks in flight while writing


class BlobStore:
    def __init__(self, js: JetStreamContext, store: ObjectStore, bucket: str, inline_max: int = Limits.inline_max,
                 cache: BlobCache = HOST_CACHE) -> None:
        self._js = js
        self._store = store
        self._bucket = bucket
        self._cache = cache
        self.inline_max = inline_max

    async def put(self, data: bytes, name: str = "", inline: bool = True) -> FileRef:
        """Store `data` once by sha256; with `inline`, a small file also travels inside its ref, so
        no one on the analysis path downloads it (it is stored all the same: the web front and
        `sluice result` fetch files by sha256 alone).

        Never re-puts an existing object: nats-py then purges the old chunks, and purge is a
        right that writers do not get under auth (it could empty the whole store). If a
        concurrent writer stores the same bytes between our look and our write, that is fine:
        the object is there.
        """
        sha = hashlib.sha256(data).hexdigest()
        fresh = not await self._has(sha)  # new here: nothing can have analysed it yet (FileRef.fresh)
        if fresh:
            try:
                await self._write(sha, data)
            except Exception:
                if not await self._has(sha):
                    raise
        if inline and len(data) <= self.inline_max:
            return FileRef(sha, len(data), name, data, fresh=fresh)
        self._cache.add(sha, data)  # whoever reads it in this process (a one-box mesh) need not download it
        return FileRef(sha, len(data), name, fresh=fresh)

    async def _write(self, sha256: str, data: bytes) -> None:
        """What nats-py's `ObjectStore.put` writes (chunks, then the meta message that makes them an
        object, readable by any NATS client), with the chunks pipelined a window at a time: `put`
        waits for each chunk's ack before sending the next, half of a large file's trip."""
        nuid = uuid.uuid4().hex
        chunks = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self._bucket, obj=nuid)
        starts = range(0, len(data), CHUNK)
        try:
            for window in range(0, len(starts), WINDOW):
                await jetstream_publish_all(self._js, [(chunks, data[i:i + CHUNK], None) for i in starts[window:window + WINDOW]])
            info = ObjectInfo(
                name=sha256, bucket=self._bucket, nuid=nuid, size=len(data), chunks=len(starts),
                mtime=datetime.now(timezone.utc).isoformat(), options=ObjectMetaOptions(max_chunk_size=CHUNK),
                digest=OBJ_DIGEST_TEMPLATE.format(digest=base64.urlsafe_b64encode(bytes.fromhex(sha256)).decode()))
            meta = OBJ_META_PRE_TEMPLATE.format(bucket=self._bucket, obj=base64.urlsafe_b64encode(sha256.encode()).decode())
            await jetstream_publish(self._js, meta, json.dumps(info.as_dict()).encode(), headers={"Nats-Rollup": "sub"})
        except BaseException:
            # Best effort (under auth a writer may not purge): orphaned chunks expire with the bucket.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5), contextlib.suppress(Exception):
                await self._js.purge_stream(f"OBJ_{self._bucket}", subject=chunks)
            raise

    async def _has(self, sha256: str) -> bool:
        try:
            await self._store.get_info(sha256)
        except ObjectNotFoundError:
            return False
        return True

    async def get(self, ref: FileRef) -> bytes:
        """All of the file's bytes, checked against its sha256 (stored ones downloaded once per
        process) and against the size its reference declares: limits are checked on the declared
        size, so a lie must not slip past them."""
        if ref.data is None:
            data = await self._cache.fetch(ref.sha256, lambda: self._read(ref.sha256))
        elif hashlib.sha256(ref.data).hexdigest() != ref.sha256:
            raise BlobError(f"{ref.sha256}: inline bytes do not match their sha256")
        else:
            data = ref.data
        if len(data) != ref.size:
            raise BlobError(f"{ref.sha256}: {len(data)} bytes, not the {ref.size} its reference declares")
        return data

    async def head(self, ref: FileRef, size: int) -> bytes:
        """At least the first `size` bytes (or all of a shorter file), for identification, without
        downloading a large file the services will download anyway. Only a stored file's head goes
        unchecked against its sha256; its size, and all of a small inline file, are checked."""
        if ref.data is not None:
            return (await self.get(ref))[:size]
        cached = self._cache.get(ref.sha256)
        return cached if cached is not None and len(cached) == ref.size else await self._read(ref.sha256, size, ref.size)

    async def _read(self, sha256: str, limit: int | None = None, declared: int | None = None) -> bytes:
        """The object named `sha256`: all of it, checked against its name, or its first `limit` bytes
        (refused if the object's size is not the `declared` one)."""
        try:
            info = await self._store.get_info(sha256)
        except ObjectNotFoundError:
            raise BlobError(f"{sha256}: not in the file store (expired or never stored)") from None
        if declared is not None and info.size != declared:
            raise BlobError(f"{sha256}: {info.size} bytes, not the {declared} its reference declares")
        if not info.size:
            return b""
        wanted = info.size if limit is None else min(limit, info.size)
        sub = await self._js.pull_subscribe(
            f"$O.{self._bucket}.C.{info.nuid}",
            stream=f"OBJ_{self._bucket}",
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, mem_storage=True,
                inactive_threshold=30.0, num_replicas=1,
            ),
        )
        chunks: list[bytes] = []
        got = 0
        try:
            while got < wanted:
                try:
                    msgs = await sub.fetch(64 if limit is None else 1 + (wanted - got) // CHUNK, timeout=2.0)
                except NatsTimeout:
                    raise BlobError(f"{sha256}: chunks stopped arriving at {got}/{info.size} bytes") from None
                chunks += (msg.data for msg in msgs)
                got += sum(len(msg.data) for msg in msgs)
        finally:
            await sub.unsubscribe()
        data = b"".join(chunks)  # one copy of the file, not one per chunk plus one at the end
        if limit is None and hashlib.sha256(data).hexdigest() != sha256:
            raise BlobError(f"{sha256}: stored bytes do not match their sha256")
        return data
