"""Every bucket gets a size when provisioning makes it, fitted to the account's storage per copy;
an existing bucket keeps its size unless the operator sets one (bus.capacity).

The session's settings make buckets unbounded (tests/conftest.py); the tests that look at the
defaults clear them. The defaults are checked on servers whose account is small, so they are
scaled down and reserve little; the rolling-upgrade case runs the previous release's own
provisioning (de1b7dc, as tests/test_wire_upgrade.py unpacks it) before and after this one's.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import anyio
import nats
import pytest
import pytest_asyncio
from nats.js.api import DiscardPolicy, StreamConfig

from archives import noise
from bus import auth
from bus.capacity import GIB, MAX_BYTES_ENV, MIB, STREAM_DEFAULTS, AccountLimits, stream_max_bytes
from bus.cluster import LoopbackCluster
from bus.connect import CREDS_ENV, close, connect
from bus.embedded import EmbeddedServer
from bus.provision import provision
from bus.publish import PUBLISH_TIMEOUT, jetstream_publish_all
from bus.retry import Unreachable, patiently
from bus.subjects import Names
from sluice.client import Client
from sluice.onebox import onebox
from procs import provision_with
from svcs import Echo, make
from test_wire_upgrade import previous  # noqa: F401 - the fixture: the previous release's source tree

ACCOUNT = 2 * GIB  # 1/16 of the default account's storage: every default a 16th
SCALED = {"SUBMIT": 64 * MIB, "TASKS": 64 * MIB, "REPLIES": 32 * MIB, "DLQ": 16 * MIB,
          "FILES": GIB, "RULESETS": 64 * MIB, "CACHE": 64 * MIB, "KV": 4 * MIB}
BUCKETS = ("FILES", "RULESETS", "CACHE", "KV")


def streams_of(names: Names) -> dict[str, str]:
    """Stream -> its STREAM_DEFAULTS store, for every queue and bucket of a prefix."""
    small = (names.registry_bucket, names.safelist_bucket, names.rules_bucket, names.approvals_bucket, names.quota_bucket)
    return {names.submit_stream: "SUBMIT", names.task_stream: "TASKS", names.reply_stream: "REPLIES",
            names.dlq_stream: "DLQ", f"OBJ_{names.file_bucket}": "FILES", f"OBJ_{names.ruleset_store}": "RULESETS",
            f"KV_{names.cache_bucket}": "CACHE", **{f"KV_{bucket}": "KV" for bucket in small}}


async def max_bytes(js, streams) -> dict[str, int]:
    return {stream: (await js.stream_info(stream)).config.max_bytes for stream in streams}


@pytest.fixture
def defaults(monkeypatch) -> None:
    """No size set for any store: provisioning's defaults."""
    for store in STREAM_DEFAULTS:
        monkeypatch.delenv(MAX_BYTES_ENV + store, raising=False)


@pytest.fixture
def bucket_defaults(monkeypatch) -> None:
    """No size set for any bucket (the queues keep the session's small sizes)."""
    for store in BUCKETS:
        monkeypatch.delenv(MAX_BYTES_ENV + store, raising=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def authorized(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[EmbeddedServer, Names, dict]]:
    """A server run with Sluice's authorization and an account of ACCOUNT bytes of file storage."""
    root = tmp_path_factory.mktemp("buckets")
    names = Names("tb" + secrets.token_hex(3))
    creds = auth.init(root / "creds", names, ["echo"], limits=AccountLimits(ACCOUNT, 256 * MIB, 1000, 20_000))
    async with EmbeddedServer(data_dir=root / "nats", auth_config=root / "creds" / auth.CONF_NAME) as server:
        yield server, names, creds


async def test_a_fresh_prefix_gets_every_bucket_sized_to_its_account(authorized, defaults):
    server, _, creds = authorized
    names = Names("tf" + secrets.token_hex(3))  # admin may provision any prefix
    nc = await connect(server.url, creds=creds[auth.ADMIN])
    try:
        js = nc.jetstream()
        await provision(js, names)
        streams = streams_of(names)
        # Each store its default scaled to the account, a 16th.
        assert await max_bytes(js, streams) == {stream: SCALED[store] for stream, store in streams.items()}
        await provision(js, names)  # again, as every start does: nothing to change, nothing refused
        assert await max_bytes(js, streams) == {stream: SCALED[store] for stream, store in streams.items()}
    finally:
        await close(nc)


async def test_an_existing_bucket_keeps_its_size_unless_set(nats_url, prefix, previous, bucket_defaults, monkeypatch):  # noqa: F811
    names = Names(prefix)
    old_streams = {s: store for s, store in streams_of(names).items()
                   if not s.endswith((names.approvals_bucket, names.quota_bucket))}  # what the previous release makes
    old_buckets = [s for s, store in old_streams.items() if store in BUCKETS]
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await provision_with(previous, nats_url, names)
        assert set((await max_bytes(js, old_buckets)).values()) == {-1}  # that release's buckets are unbounded
        await provision(js, names)  # step 0 of a rolling upgrade, with no size set
        sizes = await max_bytes(js, streams_of(names))
        assert {sizes[s] for s in old_buckets} == {-1}  # left alone
        # New ones get this release's default for the account (this test server sets no account
        # limits: unbounded; an account with limits sizes them, test_a_fresh_prefix_gets_every_bucket_sized_to_its_account).
        account = (await js.account_info()).limits.max_storage
        new = stream_max_bytes("KV", {}, account_file=account)
        assert sizes[f"KV_{names.approvals_bucket}"] == sizes[f"KV_{names.quota_bucket}"] == new
        await provision_with(previous, nats_url, names)  # a component of the previous release (re)starting still can
        # After the upgrade the operator sizes the old buckets: `sluice provision` with the settings.
        monkeypatch.setenv(MAX_BYTES_ENV + "FILES", "3M")
        monkeypatch.setenv(MAX_BYTES_ENV + "CACHE", "1M")
        await provision(js, names)
        sizes = await max_bytes(js, old_buckets)
        assert (sizes[f"OBJ_{names.file_bucket}"], sizes[f"KV_{names.cache_bucket}"]) == (3 * MIB, MIB)
        assert sizes[f"OBJ_{names.ruleset_store}"] == sizes[f"KV_{names.registry_bucket}"] == -1  # not set: as they were
        # Which is why not before: the previous release's start refuses a bucket of another size.
        with pytest.raises(RuntimeError, match="10058"):
            await provision_with(previous, nats_url, names)
    finally:
        await close(nc)


async def test_an_r3_prefix_fits_an_account_that_reserves_each_copy(tmp_path, defaults):
    # nats-server reserves an R3 stream's max_bytes three times against the account: sized for
    # the storage per copy (2 GiB here), the prefix fits; sized for the account alone (6 GiB)
    # it would reserve 3 x 4 GiB and be refused.
    cluster = LoopbackCluster(3, data_dir=tmp_path / "cluster")
    for server in cluster.servers:
        server.extra_config += [
            f"accounts {{ SLUICE: {{ jetstream: {{ max_file: {3 * ACCOUNT} }}, users: [ {{ user: sluice, password: sluice }} ] }},",
            "           SYS: { users: [ { user: sys, password: sys } ] } }",
            "system_account: SYS"]
    async with cluster:
        nc = await nats.connect(cluster.url.split(","), user="sluice", password="sluice")
        try:
            js = nc.jetstream()
            names = Names("tr" + secrets.token_hex(3))
            await provision(js, names, replicas=3)
            streams = streams_of(names)
            assert await max_bytes(js, streams) == {stream: SCALED[store] for stream, store in streams.items()}
        finally:
            await nc.close()


async def test_a_full_stream_is_said_to_be_full(nats_url, prefix):
    # nats-py 2.16.0 left publish_async's future pending on an error (bus.acks reads the errors): a full
    # stream looked like a NATS that does not answer (an ack timeout per try, then "is the server up?").
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=prefix, subjects=[f"{prefix}.>"], max_bytes=64 * 1024,
                                         discard=DiscardPolicy.NEW))
        full = r"^filling: refused for \d+ s, the stream is full \(maximum bytes exceeded\)"
        with anyio.fail_after(PUBLISH_TIMEOUT - 1), pytest.raises(Unreachable, match=full):
            await patiently("filling", lambda: jetstream_publish_all(js, [(f"{prefix}.x", b"x" * 1024, None)] * 100),
                            patience=1)
        await js.delete_stream(prefix)
    finally:
        await close(nc)


async def test_attack_a_full_file_store_refuses_the_upload_and_nothing_else_breaks(authorized, monkeypatch):
    # before: the file store had no size of its own: a submitter's uploads could take all of the
    # account's storage, the queues' room included.
    server, names, creds = authorized
    monkeypatch.setenv(MAX_BYTES_ENV + "FILES", "2M")
    monkeypatch.setenv(CREDS_ENV, str(creds[auth.ADMIN].parent))  # each component on its own credentials
    files = f"OBJ_{names.file_bucket}"
    async with onebox(server.url, names.prefix, [make(Echo, "echo")]), await Client.connect(server.url, names.prefix) as client:
        assert (await client.js.stream_info(files)).config.max_bytes == 2 * MIB
        # The client's own upload (Client.store), with a second's patience instead of a minute's.
        with pytest.raises(Unreachable, match=r"^storing flood.bin: refused for \d+ s, the stream is full"):
            await patiently("storing flood.bin", lambda: client.blobs.put(noise(4 * MIB, 1), "flood.bin"), patience=1)
        assert (await client.js.stream_info(files)).state.bytes <= 2 * MIB
        # The queues and the other stores are untouched: a later (inline) submission completes, analysed.
        summary = await client.wait(await client.submit_bytes([("small.txt", b"a small file\n")]), timeout=30)
        assert [r.service for r in summary.files[0].results] == ["echo"] and summary.errors == 0
