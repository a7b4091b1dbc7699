"""Shared fixtures: one real JetStream server for the whole session.

One server per session keeps the suite fast (start-up is well under a second, but hundreds of
tests add up); tests stay independent by putting everything under their own ``prefix``.
Tests that need to kill or restart a server start their own ``EmbeddedServer`` instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bus.embedded import EmbeddedServer

# Every prefix's queues and buckets reserve their max_bytes on the session's one server
# (bus.capacity): a few hundred prefixes at the production defaults (21 GiB each) would not fit
# its disk. Small queues here, and buckets unbounded (reserving nothing) unless a test sizes
# them (tests/test_bucket_sizes.py clears these to see the defaults); child processes inherit these.
for _store in ("SUBMIT", "TASKS", "REPLIES", "DLQ"):  # each holds a message at the 8 MiB payload limit
    os.environ.setdefault(f"SLUICE_MAX_BYTES_{_store}", "16M")
for _store in ("FILES", "RULESETS", "CACHE", "KV"):
    os.environ.setdefault(f"SLUICE_MAX_BYTES_{_store}", "0")
# The account's file storage (`auth.init`'s servers): the default 32 GiB must fit the server's
# storage or it refuses to start, and a test box may have less free disk than that.
os.environ.setdefault("SLUICE_ACCOUNT_MAX_FILE", "4G")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedServer]:
    async with EmbeddedServer(data_dir=tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def nats_url(nats_server: EmbeddedServer) -> str:
    return nats_server.url


@pytest.fixture
def prefix() -> str:
    """A unique, short subject/stream-name prefix (letters and digits only, so it is valid in
    subjects, stream, consumer, KV bucket and object store names alike)."""
    return "t" + secrets.token_hex(4)
