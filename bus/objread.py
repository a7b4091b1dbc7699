"""Reading a named object from the file store without creating a JetStream consumer.

For the identities that may create none: submitters (bus.auth), so that no submitter can fill
the account's consumers and lock everyone else out. Each chunk is one request (`STREAM.MSG.GET`,
the next message on the object's chunk subject from a sequence), about a round trip per chunk (1 MiB):
slower than bus.blobs' consumer for large files, ample for fetching a report or an extracted
file. Like every read, the bytes are checked against their sha256 and their declared size.
"""

from __future__ import annotations

import hashlib

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, ObjectStore

from bus.blobs import BlobError, small_subject
from schemas.messages import FileRef


async def read_named(js: JetStreamContext, store: ObjectStore, bucket: str, ref: FileRef) -> bytes:
    """The bytes of the object named `ref.sha256` (or `ref`'s inline bytes), checked."""
    if ref.data is not None:
        data = ref.data
    else:
        try:
            info = await store.get_info(ref.sha256)
        except ObjectNotFoundError:
            info = None
        if info is not None:
            data = await _read_chunks(js, bucket, ref, info.nuid, info.size)
        elif ref.upload:  # a service's report object: its upload, never named, checked here as any read
            data = await _read_chunks(js, bucket, ref, ref.upload, ref.size)
        else:
            data = await _read_small(js, bucket, ref)
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise BlobError(f"{ref.sha256}: stored bytes do not match their sha256")
    if len(data) != ref.size:
        raise BlobError(f"{ref.sha256}: {len(data)} bytes, not the {ref.size} its reference declares")
    return data


async def _read_small(js: JetStreamContext, bucket: str, ref: FileRef) -> bytes:
    """A small file the dispatcher named by its one trusted chunk (no meta: bus.blobs.name_checked)."""
    try:
        msg = await js.get_last_msg(f"OBJ_{bucket}", small_subject(bucket, ref.sha256))
    except NotFoundError:
        raise BlobError(f"{ref.sha256}: not in the file store (expired or never stored)") from None
    return msg.data or b""


async def _read_chunks(js: JetStreamContext, bucket: str, ref: FileRef, nuid: str, size: int) -> bytes:
    """The chunks stored under `nuid`, one request each, cut to `size`."""
    subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=nuid)
    chunks: list[bytes] = []
    got, seq = 0, 1
    while got < size:
        try:
            msg = await js.get_msg(f"OBJ_{bucket}", seq=seq, subject=subject, next=True)
        except NotFoundError:
            raise BlobError(f"{ref.sha256}: chunks end at {got}/{size} bytes") from None
        chunks.append(msg.data or b"")
        got += len(chunks[-1])
        seq = msg.seq + 1
    return b"".join(chunks)[:size]
