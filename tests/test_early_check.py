"""A large upload is checked while it arrives (dispatcher.early), and an announcement stays a hint.

The client announces an upload as it begins and submits once it is whole; a dispatcher that
hears the announcement reads, checks and names the upload as its chunks arrive. What must hold:
the object is named before anything is submitted (the check overlapped the upload); bytes that
do not match the announced sha256 get no name; an announcement whose upload never comes, or
that names another identity's upload, changes nothing; and a submission whose upload's early
check failed is still checked and analysed as usual.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid

import anyio
import pytest

from bus.blobs import ANNOUNCED_SIZE, CHUNK, BlobStore
from bus.codec import encode
from schemas.limits import OperatorLimits
from schemas.messages import ErrorType, FileRef, SubmissionParams
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, make

pytestmark = pytest.mark.timeout(120)

SIZE = ANNOUNCED_SIZE + CHUNK // 2  # announced, and not a whole number of chunks


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def named(client: Client, sha256: str, size: int, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not await client.blobs.exists(sha256, size):
            await anyio.sleep(0.05)


async def logged(caplog, text: str, timeout: float = 20.0) -> None:
    """Wait until the dispatcher logs a line containing `text`."""
    with anyio.fail_after(timeout):
        while not any(text in r.getMessage() for r in caplog.records):
            await anyio.sleep(0.05)


def uploader(client: Client, writer: str) -> BlobStore:
    """Chunks under `writer`'s token, written by hand (no announcement of their own)."""
    return BlobStore(client.js, client.files, client.names.file_bucket, writer=writer)


async def announce(client: Client, ref: FileRef, identity: str | None = None) -> None:
    await client.nc.publish(client.names.upload_notice(identity or client.identity), encode(ref))
    await client.nc.flush()


async def test_a_large_upload_is_named_before_it_is_submitted_and_then_analysed(nats_url, prefix):
    data = os.urandom(SIZE)
    echo = make(Echo, "echo")
    async with onebox(nats_url, prefix, [echo]), await Client.connect(nats_url, prefix) as client:
        ref = await client.store(data, "big.bin")
        assert ref.upload  # uploaded for the dispatcher to check, not named by the client
        await named(client, ref.sha256, SIZE)  # by the early check: nothing has been submitted yet
        summary = await client.wait(await client.submit_refs([ref], SubmissionParams(ignore_cache=True)), timeout=30)
    assert summary.errors == 0 and [r.service for r in summary.files[0].results] == ["echo"]
    assert echo.executed == [ref.sha256]


async def test_announced_bytes_that_do_not_match_get_no_name_and_block_nothing(nats_url, prefix, caplog):
    caplog.set_level(logging.INFO, logger="sluice.dispatcher")
    genuine, filler = os.urandom(SIZE), os.urandom(SIZE)
    async with onebox(nats_url, prefix, [make(Echo, "echo")]), await Client.connect(nats_url, prefix) as client:
        upload = f"{client.identity}.{uuid.uuid4().hex}"
        await announce(client, FileRef(sha(genuine), SIZE, "m.bin", upload=upload))
        await uploader(client, client.identity)._write_chunks(upload, filler)
        await logged(caplog, f"early check of {client.identity}'s upload {upload} failed")
        assert not await client.blobs.exists(sha(genuine), SIZE)
        summary = await client.wait(await client.submit_bytes([("m.bin", genuine)]), timeout=30)
        assert summary.errors == 0 and summary.files[0].results[0].service == "echo"
        await named(client, sha(genuine), SIZE, timeout=1)


async def test_an_announcement_of_another_identitys_upload_is_ignored(nats_url, prefix, caplog):
    caplog.set_level(logging.INFO, logger="sluice.dispatcher")
    data = os.urandom(SIZE)
    async with onebox(nats_url, prefix, [make(Echo, "echo")]), await Client.connect(nats_url, prefix) as client:
        upload = f"someone-else.{uuid.uuid4().hex}"
        await uploader(client, "someone-else")._write_chunks(upload, data)
        await announce(client, FileRef(sha(data), SIZE, "x.bin", upload=upload))
        await logged(caplog, "not an upload of its own")
        assert not await client.blobs.exists(sha(data), SIZE)


async def test_an_upload_that_never_comes_leaves_its_submission_to_the_usual_check(nats_url, prefix, caplog):
    caplog.set_level(logging.INFO, logger="sluice.dispatcher")
    data = os.urandom(SIZE)
    async with onebox(nats_url, prefix, [make(Echo, "echo")]), await Client.connect(nats_url, prefix) as client:
        never = f"{client.identity}.{uuid.uuid4().hex}"
        await announce(client, FileRef(sha(data), SIZE, "x.bin", upload=never))
        await logged(caplog, f"early check of {client.identity}'s upload {never} failed")
        # Uploaded again under a token nobody announced: checked when it is submitted.
        upload = f"{client.identity}.{uuid.uuid4().hex}"
        await uploader(client, client.identity)._write_chunks(upload, data)
        assert not await client.blobs.exists(sha(data), SIZE)
        ref = FileRef(sha(data), SIZE, "x.bin", upload=upload, fresh=True)
        summary = await client.wait(await client.submit_refs([ref]), timeout=30)
    assert summary.errors == 0 and summary.files[0].results[0].service == "echo"


async def test_a_submission_sent_while_its_upload_is_checked_early_is_analysed(nats_url, prefix):
    # Announced, then written in two halves with the submission sent in between (no client of
    # ours does this, any may): the submission's check waits for the early one (or reads the
    # upload itself); either way the rest arrives in time and the file is analysed.
    data = os.urandom(SIZE)
    async with onebox(nats_url, prefix, [make(Echo, "echo")]), await Client.connect(nats_url, prefix) as client:
        upload = f"{client.identity}.{uuid.uuid4().hex}"
        ref = FileRef(sha(data), SIZE, "x.bin", upload=upload, fresh=True)
        await announce(client, ref)
        writer = uploader(client, client.identity)
        half = (SIZE // CHUNK // 2) * CHUNK
        await writer._write_chunks(upload, data[:half])
        sid = await client.submit_refs([ref])
        await writer._write_chunks(upload, data[half:])  # more chunks of the same upload, in order
        summary = await client.wait(sid, timeout=30)
    assert summary.errors == 0 and summary.files[0].results[0].service == "echo"


async def test_an_upload_checked_early_counts_against_its_writers_stored_bytes(nats_url, prefix):
    limits = OperatorLimits(stored_bytes_per_hour=SIZE + SIZE // 2)
    async with onebox(nats_url, prefix, [make(Echo, "echo")], limits=limits), await Client.connect(nats_url, prefix) as client:
        first = await client.store(os.urandom(SIZE), "one.bin")
        await named(client, first.sha256, SIZE)  # checked early: charged then
        second = await client.wait(await client.submit_bytes([("two.bin", os.urandom(SIZE))]), timeout=30)
    [error] = second.files[0].errors
    assert error.type == ErrorType.BAD_INPUT and "is over its quota" in error.message
