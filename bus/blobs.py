"""File bytes, stored once by sha256 in the object store; small files travel inline.

Reading uses our own chunk reader instead of nats-py's `ObjectStore.get`, which builds the
object by `bytes +=` and waits on a 250 ms flow-control poll (4–37 MiB/s measured here):
an ephemeral pull consumer on the object's chunk subject, no acks, large fetch batches.
"""

from __future__ import annotations

import base64
import hashlib

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import ObjectStore

from schemas.limits import Limits
from schemas.messages import FileRef


class BlobError(RuntimeError):
    """The bytes of a file cannot be had (missing, or not matching their sha256)."""


class BlobStore:
    def __init__(self, js: JetStreamContext, store: ObjectStore, bucket: str, inline_max: int = Limits.inline_max) -> None:
        self._js = js
        self._store = store
        self._bucket = bucket
        self.inline_max = inline_max

    async def put(self, data: bytes, name: str = "") -> FileRef:
        """Store `data` unless it is already there; the ref carries small files inline.

        Never re-puts an existing object: nats-py then purges the old chunks, and purge is a
        right that writers do not get under auth (it could empty the whole store). If a
        concurrent writer stores the same bytes between our look and our put, the purge is
        refused (after the API timeout); the object is stored all the same, so that is fine.
        """
        sha = hashlib.sha256(data).hexdigest()
        if not await self._has(sha):
            try:
                await self._store.put(sha, data)
            except Exception:
                if not await self._has(sha):
                    raise
        return FileRef(sha, len(data), name, data if len(data) <= self.inline_max else None)

    async def _has(self, sha256: str) -> bool:
        try:
            await self._store.get_info(sha256)
        except ObjectNotFoundError:
            return False
        return True

    async def get(self, ref: FileRef) -> bytes:
        if ref.data is not None:
            data = ref.data
        else:
            data = await self._read(ref.sha256)
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise BlobError(f"{ref.sha256}: stored bytes do not match their sha256")
        if len(data) != ref.size:  # limits are checked on the declared size: a lie must not slip past them
            raise BlobError(f"{ref.sha256}: {len(data)} bytes, not the {ref.size} its reference declares")
        return data

    async def _read(self, sha256: str) -> bytes:
        try:
            info = await self._store.get_info(sha256)
        except ObjectNotFoundError:
            raise BlobError(f"{sha256}: not in the file store (expired or never stored)") from None
        if not info.size:
            return b""
        sub = await self._js.pull_subscribe(
            f"$O.{self._bucket}.C.{info.nuid}",
            stream=f"OBJ_{self._bucket}",
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, mem_storage=True,
                inactive_threshold=30.0, num_replicas=1,
            ),
        )
        chunks = bytearray()
        try:
            while len(chunks) < info.size:
                try:
                    msgs = await sub.fetch(64, timeout=2.0)
                except NatsTimeout:
                    raise BlobError(f"{sha256}: chunks stopped arriving at {len(chunks)}/{info.size} bytes") from None
                for msg in msgs:
                    chunks += msg.data
        finally:
            await sub.unsubscribe()
        digest = (info.digest or "").removeprefix("SHA-256=")
        if digest and base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)) != hashlib.sha256(chunks).digest():
            raise BlobError(f"{sha256}: object digest mismatch")
        return bytes(chunks)
