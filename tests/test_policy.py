"""The operator's word in the dispatcher (dispatcher/policy.py) and approvals (services/sdk/approval.py), unit by unit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import nats.js.errors
import pytest

from bus.capacity import account_limits, operator_limits, operator_max_bytes, parse_size, stream_max_bytes
from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from dispatcher.fairshare import FairShare
from dispatcher.policy import clamp_params, police
from dispatcher.quota import SharedQuota
from schemas.limits import OperatorLimits
from schemas.messages import ApprovedService, ErrorType, ServiceResult, Stage, SubmissionParams
from services.sdk.approval import approval_for, score_range
from services.sdk.loader import load_service
from services.sdk.manifest import parse_manifest


def test_limits_within_the_operators_pass_untouched_and_the_rest_are_clamped_and_said():
    limits = OperatorLimits(max_depth=3, max_files=10, max_children=5, allow_deep_scan=False)
    same, notes = clamp_params(SubmissionParams(max_depth=2, max_files=10, max_children=1), limits)
    assert notes == [] and same.max_depth == 2
    params, notes = clamp_params(SubmissionParams(max_depth=12, max_files=-1, deep_scan=True), limits)
    assert (params.max_depth, params.max_files, params.deep_scan) == (3, 0, False)
    assert [(n.type, n.policy) for n in notes] == [(ErrorType.BAD_INPUT, True)] * 4  # depth, files, children (default 100 > 5), deep scan
    assert "max_depth 12 asked; the operator allows 3" in notes[0].message


def test_a_result_is_held_to_its_approval():
    approved = ApprovedService("x", Stage.CORE, ".*", "", 10, score_min=0, score_max=500)
    honest = ServiceResult("c", "x", "1", score=300)
    assert police(honest, approved) is None and honest.score == 300
    liar = ServiceResult("c", "x", "1", score=-100_000, drop=True)
    error = police(liar, approved)
    assert (liar.score, liar.drop, error.policy) == (0, False, True)
    loud = ServiceResult("c", "x", "1", score=10**6)
    police(loud, approved)
    assert loud.score == 500
    unknown = ServiceResult("c", "y", "1", score=900, drop=True)
    assert police(unknown, None).policy and (unknown.score, unknown.drop) == (0, False)


@asynccontextmanager
async def two_dispatchers(nats_url: str, prefix: str, most: int) -> AsyncIterator[tuple[object, list[SharedQuota]]]:
    """The provisioned stores, and a per-minute quota of `most` counted by two dispatchers, each
    on its own connection."""
    names = Names(prefix)
    one, two = await connect(nats_url), await connect(nats_url)
    try:
        stores = await provision(one.jetstream(), names)
        yield stores, [SharedQuota(stores.quotas, "submissions", most, 60.0),
                       SharedQuota(await two.jetstream().key_value(names.quota_bucket), "submissions", most, 60.0)]
    finally:
        await close(one)
        await close(two)


async def test_a_shared_quota_holds_over_two_dispatchers_counting_at_once(nats_url, prefix):
    """Two counters on two connections (two dispatchers), 60 takes at once for a quota of 25:
    exactly 25 granted (compare-and-set); then in turns, each always behind the other."""
    async with two_dispatchers(nats_url, prefix, 25) as (stores, counters):
        granted: list[int] = []

        async def take(n: int) -> None:
            if await counters[n % 2].take("flood", now=1_000_000.0):
                granted.append(n % 2)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for n in range(60):
                    tg.start_soon(take, n)
        assert len(granted) == 25
        # Taking in turns, each counter's remembered total is always stale (the other just wrote):
        # every take is a conflict, a read and a retry, and the sum still stops at the quota.
        turns = [await counters[n % 2].take("flood", now=1_000_060.0) for n in range(30)]
        assert turns == [True] * 25 + [False] * 5
        assert await counters[1].take("other", now=1_000_000.0)  # another identity has its own count
        stored = SharedQuota(stores.quotas, "stored", 100, 3600.0)
        assert await stored.take("a", 60, now=0) and not await stored.take("a", 50, now=1) and await stored.take("a", 40, now=2)


async def test_a_large_quota_is_leased_in_blocks_and_never_overspent(nats_url, prefix):
    """A quota of 6,400: a dispatcher's first take leases 64 in one write, the next 63 cost no
    round trip; two dispatchers taking at once still get exactly the quota between them."""
    async with two_dispatchers(nats_url, prefix, 6400) as (stores, counters):
        key = "submissions.lease.1000"  # the window of `now` below: 60,000 s // 60 s
        now = 60_000.0
        assert await counters[0].take("lease", now=now)
        first = await stores.quotas.get(key)
        assert int(first.value) == 64
        for _ in range(63):
            assert await counters[0].take("lease", now=now)
        assert (await stores.quotas.get(key)).revision == first.revision  # spent locally, nothing written
        granted = [0, 0]

        async def take(n: int) -> None:
            if await counters[n % 2].take("lease", now=now):
                granted[n % 2] += 1

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(7000):
                    tg.start_soon(take, n)
        assert sum(granted) + 64 <= 6400 and min(granted) > 0
        assert int((await stores.quotas.get(key)).value) == 6400  # leased up to the quota, never past it


async def test_fair_share_lets_a_flood_have_little_while_another_identity_is_active():
    fair = FairShare(most=8, window=0.5)
    held = anyio.Event()
    async with anyio.create_task_group() as tg:
        async def tree(identity: str) -> None:
            async with fair.slot(identity):
                await held.wait()

        for _ in range(8):
            tg.start_soon(tree, "flood")
        await anyio.wait_all_tasks_blocked()
        assert fair.in_flight["flood"] == 8  # alone: its whole width
        tg.start_soon(tree, "light")
        await anyio.wait_all_tasks_blocked()
        assert fair.in_flight["light"] == 1  # a newcomer is never kept out
        assert fair.cap("flood", time.monotonic()) == 1  # no more than the light one has
        assert fair.cap("light", time.monotonic()) == 8  # the light one is held only by its own width
        held.set()


def test_operator_limits_come_from_the_environment():
    limits = operator_limits({"SLUICE_LIMIT_MAX_DEPTH": "2", "SLUICE_LIMIT_ALLOW_DEEP_SCAN": "false", "OTHER": "x"})
    assert (limits.max_depth, limits.allow_deep_scan, limits.max_files) == (2, False, OperatorLimits().max_files)
    with pytest.raises(ValueError, match="SLUICE_LIMIT_"):
        operator_limits({"SLUICE_LIMIT_MAX_DEPTH": "deep"})


def test_capacity_settings_come_from_the_environment():
    assert [parse_size("X", t) for t in ("0", "1048576", "64M", "2g", "1KiB")] == [0, 2**20, 64 * 2**20, 2 * 2**30, 1024]
    with pytest.raises(ValueError, match=r"\$SLUICE_MAX_BYTES_SUBMIT='lots'"):
        stream_max_bytes("SUBMIT", {"SLUICE_MAX_BYTES_SUBMIT": "lots"})
    assert stream_max_bytes("SUBMIT", {"SLUICE_MAX_BYTES_SUBMIT": "0"}) == -1  # no bound, as nats-py says it
    assert (stream_max_bytes("SUBMIT", {}), stream_max_bytes("FILES", {}, account_file=32 * 2**30)) == (2**30, 16 * 2**30)
    # An account without limits (a server without --auth, shared by several prefixes): the
    # queues keep their sizes, the buckets stay unbounded unless set.
    assert [stream_max_bytes(s, {}) for s in ("TASKS", "FILES", "CACHE", "KV")] == [2**30, -1, -1, -1]
    assert stream_max_bytes("FILES", {"SLUICE_MAX_BYTES_FILES": "2M"}) == 2**21
    # An account with a quarter of the default storage (a one-box on a small disk), or the
    # default account at R3 (each copy reserved): defaults scaled with the storage per copy, so
    # the prefix still fits it; a setting stays as given.
    assert stream_max_bytes("TASKS", {}, account_file=8 * 2**30) == 2**28
    assert stream_max_bytes("FILES", {}, account_file=8 * 2**30) == 4 * 2**30
    assert stream_max_bytes("FILES", {}, account_file=24 * 2**30, replicas=3) == 4 * 2**30
    assert stream_max_bytes("KV", {}, account_file=2**20) == 2**20  # never below 1 MiB
    assert stream_max_bytes("TASKS", {"SLUICE_MAX_BYTES_TASKS": "10G"}, account_file=8 * 2**30) == 10 * 2**30
    # Only a setting resizes an existing bucket: unset, None (it keeps its size).
    assert [operator_max_bytes("FILES", env) for env in ({}, {"SLUICE_MAX_BYTES_FILES": "0"},
                                                         {"SLUICE_MAX_BYTES_FILES": "2M"})] == [None, -1, 2**21]


def test_one_prefix_fits_its_account_with_a_third_to_spare():
    # What one prefix reserves at the defaults (each stream's max_bytes, times its copies): at most
    # two thirds of the account, whatever its size (from 1 GiB per copy) and replication.
    stores = ["SUBMIT", "TASKS", "REPLIES", "DLQ", "FILES", "RULESETS", "CACHE", *["KV"] * 5]
    for account, replicas in [(32 * 2**30, 1), (32 * 2**30, 3), (8 * 2**30, 1), (3 * 2**30, 3), (2**30, 1)]:
        reserved = replicas * sum(stream_max_bytes(s, {}, account_file=account, replicas=replicas) for s in stores)
        assert reserved <= 2 / 3 * account, (account, replicas)


    limits = account_limits({"SLUICE_ACCOUNT_MAX_CONSUMERS": "500", "SLUICE_ACCOUNT_MAX_MEM": "0"})
    assert limits.config() == f"jetstream: {{max_file: {32 * 2**30}, max_mem: -1, max_streams: 1000, max_consumers: 500}}"


def test_approval_reads_the_manifest_and_only_filter_or_extract_may_drop():
    safelist = approval_for(load_service("safelist").manifest)
    assert (safelist.stage, safelist.may_drop, safelist.score_min, safelist.score_max) == (Stage.FILTER, True, -10_000, 0)
    pe = approval_for(load_service("pe").manifest)
    assert pe.stage is Stage.CORE and not pe.may_drop and pe.score_min == 0 < pe.score_max
    capped = parse_manifest({"name": "c", "version": "1", "heuristics": [
        {"heur_id": 1, "name": "sigs", "score": 10, "max_score": 50, "signature_score_map": {"a": 400}}]}, "test")
    assert score_range(capped) == (0, 500)  # each hit at most its max_score, up to 10 hits
    with pytest.raises(ValueError, match="may drop"):
        approval_for(load_service("pe").manifest, may_drop=True)


async def test_fair_share_a_heavy_identity_yields_to_a_lighter_one_but_is_not_starved():
    fair = FairShare(most=8, window=60.0, grace=0.05)
    gates = {"flood": anyio.Event(), "light": anyio.Event(), "later": anyio.Event()}

    async def tree(identity: str, gate: str) -> None:
        async with fair.slot(identity):
            await gates[gate].wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(tree, "flood", "flood")
            await anyio.sleep(0.5)  # the flood runs four wide for a while: 2 tree-seconds of use
            tg.start_soon(tree, "light", "light")
            await anyio.wait_all_tasks_blocked()
            assert (fair.in_flight["flood"], fair.in_flight["light"]) == (4, 1)  # already running: not stopped
            gates["flood"].set()
            for _ in range(3):
                tg.start_soon(tree, "flood", "later")
            await anyio.wait_all_tasks_blocked()
            now = time.monotonic()
            assert fair.use("flood", now) > fair.use("light", now)
            # The light one has a tree in flight and used less: the flood starts nothing, though
            # equal shares alone would give it one place.
            assert fair.in_flight["flood"] == 0 and fair.yields("flood", now) and not fair.yields("light", now)
            fair.window = 0.2  # its last start that long ago: one tree (and only one) goes anyway
            while fair.in_flight["flood"] < 1:
                await anyio.sleep(0.01)
            await anyio.wait_all_tasks_blocked()
            assert fair.in_flight["flood"] == 1
            gates["light"].set()  # the light one gone (after its grace): the flood takes its width again
            while fair.in_flight["flood"] < 3:
                await anyio.sleep(0.01)
            gates["later"].set()
    assert sum(fair.in_flight.values()) == 0


async def test_fair_share_two_floods_keep_the_dispatcher_busy():
    fair = FairShare(most=8, window=60.0)
    held = anyio.Event()

    async def tree(identity: str) -> None:
        async with fair.slot(identity):
            await held.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for identity in ("one", "two"):
                for _ in range(12):
                    tg.start_soon(tree, identity)
                await anyio.wait_all_tasks_blocked()
            # The second flood wants 12 like the first: it gets its whole width, not one place.
            assert (fair.in_flight["one"], fair.in_flight["two"]) == (8, 8)
            held.set()
    assert sum(fair.in_flight.values()) == 0


async def test_provisioning_sizes_each_store_as_the_operator_set_and_a_full_queue_refuses(nats_url, prefix, monkeypatch):
    names = Names(prefix)
    sizes = {"SUBMIT": "64K", "DLQ": "32K", "KV": "16K", "FILES": "1M"}
    for store, size in sizes.items():
        monkeypatch.setenv(f"SLUICE_MAX_BYTES_{store}", size)
    monkeypatch.setenv("SLUICE_LIMIT_TREES_PER_SUBMITTER", "7")
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()

        async def max_bytes() -> dict[str, int]:
            streams = (names.submit_stream, names.dlq_stream, f"KV_{names.approvals_bucket}", f"OBJ_{names.file_bucket}")
            return {s: (await js.stream_info(s)).config.max_bytes for s in streams}

        await provision(js, names)
        assert list((await max_bytes()).values()) == [64 * 1024, 32 * 1024, 16 * 1024, 2**20]
        queue = await js.consumer_info(names.submit_stream, names.root_consumer("submitter"))
        assert queue.config.max_ack_pending == 7  # the in-flight quota, held by the server for all dispatchers
        with pytest.raises(nats.js.errors.APIError, match="maximum bytes"):
            for _ in range(200):  # the queue is full long before 200 KiB: new ones are refused, none dropped
                await js.publish(names.submit_root_for("submitter"), b"x" * 1024)
        assert (await js.stream_info(names.submit_stream)).state.messages > 50
        monkeypatch.setenv("SLUICE_MAX_BYTES_SUBMIT", "128K")
        monkeypatch.setenv("SLUICE_MAX_BYTES_KV", "32K")
        await provision(js, names)  # provisioning again applies new sizes, to streams and buckets alike
        assert list((await max_bytes()).values())[:3] == [128 * 1024, 32 * 1024, 32 * 1024]
    finally:
        await close(nc)


async def test_fair_share_hands_out_places_one_waiter_at_a_time_in_arrival_order():
    fair = FairShare(most=2, window=0.2)
    order: list[int] = []
    gates = [anyio.Event() for _ in range(4)]

    async def tree(n: int) -> None:
        async with fair.slot("flood"):
            order.append(n)
            await gates[n].wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(tree, n)
                await anyio.wait_all_tasks_blocked()
            assert order == [0, 1] and fair.in_flight["flood"] == 2  # the other two wait their turn
            gates[1].set()
            await anyio.wait_all_tasks_blocked()
            assert order == [0, 1, 2]  # one place freed: one waiter, the first, goes
            for gate in gates:
                gate.set()
    assert order == [0, 1, 2, 3] and fair.in_flight["flood"] == 0
