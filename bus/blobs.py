"""File bytes, stored once by sha256 in the object store; small files travel inline instead.

Reading uses our own chunk reader instead of nats-py's `ObjectStore.get`, which builds the
object by `bytes +=` and waits on a 250 ms flow-control poll (4–37 MiB/s measured here):
an ephemeral pull consumer on the object's chunk subject, no acks, large fetch batches. What
is read goes through the process's blob cache (bus/blobcache.py), so the services of one
process download a file once between them; the dispatcher reads only a file's head. Writing
keeps nats-py's object layout but pipelines the chunks (its `put` waits for each chunk's ack).
"""

from __future__ import annotations

import base64
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
        """A ref to `data`: a small file (with `inline`) travels inside it and is not stored at all;
        anything else is stored once by sha256."""
        sha = hashlib.sha256(data).hexdigest()
        if inline and len(data) <= self.inline_max:
            return FileRef(sha, len(data), name, data)
        try:
            await self._store.get_info(sha)
        except ObjectNotFoundError:
            await self._write(sha, data)
        self._cache.add(sha, data)  # whoever reads it in this process (a one-box mesh) need not download it
        return FileRef(sha, len(data), name)

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
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._js.purge_stream(f"OBJ_{self._bucket}", subject=chunks)
            raise

    async def get(self, ref: FileRef) -> bytes:
        """All of the file's bytes, checked against its sha256 (stored ones downloaded once per process)."""
        if ref.data is None:
            return await self._cache.fetch(ref.sha256, lambda: self._read(ref.sha256))
        if hashlib.sha256(ref.data).hexdigest() != ref.sha256:
            raise BlobError(f"{ref.sha256}: inline bytes do not match their sha256")
        return ref.data

    async def head(self, ref: FileRef, size: int) -> bytes:
        """At least the first `size` bytes (or all of a shorter file), unchecked: for identification,
        without downloading a large file the services will download anyway."""
        if ref.data is not None:
            return ref.data[:size]
        return self._cache.get(ref.sha256) or await self._read(ref.sha256, size)

    async def _read(self, sha256: str, limit: int | None = None) -> bytes:
        """The object named `sha256`: all of it, checked against its name, or its first `limit` bytes."""
        try:
            info = await self._store.get_info(sha256)
        except ObjectNotFoundError:
            raise BlobError(f"{sha256}: not in the file store (expired or never stored)") from None
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
