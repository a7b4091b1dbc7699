"""Reading a named object from the file store without creating a JetStream consumer.

For the identities that may create none: submitters (bus.auth), so that no submitter can fill
the account's consumers and lock everyone else out. Each chunk is one request (`STREAM.MSG.GET`,
the next message on the object's chunk subject from a sequence), about a round trip per 512 KiB:
slower than bus.blobs' consumer for large files, ample for fetching a report or an extracted
file. Like every read, the bytes are checked against their sha256 and their declared size.
"""

from __future__ import annotations

import hashlib

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, ObjectStore

from bus.blobs import BlobError
from schemas.messages import FileRef


async def read_named(js: JetStreamContext, store: ObjectStore, bucket: str, ref: FileRef) -> bytes:
    """The bytes of the object named `ref.sha256` (or `ref`'s inline bytes), checked."""
    if ref.data is not None:
        data = ref.data
    else:
        try:
            info = await store.get_info(ref.sha256)
        except ObjectNotFoundError:
            raise BlobError(f"{ref.sha256}: not in the file store (expired or never stored)") from None
        subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=info.nuid)
        chunks: list[bytes] = []
        got, seq = 0, 1
        while got < info.size:
            try:
                msg = await js.get_msg(f"OBJ_{bucket}", seq=seq, subject=subject, next=True)
            except NotFoundError:
                raise BlobError(f"{ref.sha256}: chunks end at {got}/{info.size} bytes") from None
            chunks.append(msg.data or b"")
            got += len(chunks[-1])
            seq = msg.seq + 1
        data = b"".join(chunks)[:info.size]
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise BlobError(f"{ref.sha256}: stored bytes do not match their sha256")
    if len(data) != ref.size:
        raise BlobError(f"{ref.sha256}: {len(data)} bytes, not the {ref.size} its reference declares")
    return data
