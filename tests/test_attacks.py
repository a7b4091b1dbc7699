"""The attacks of issue 13 ("nobody turns a verdict"), each performed against a real nats-server
run with the generated authorization, each asserted to fail now.

Every attack here worked on main before this change; each test's `before:` comment says what it
did there. How that was checked: attacks 1, 2, 6 and 8 (inline) were replayed against an export
of main at de1b7dc by a script with the same steps and identities (under `sluice up --auth`'s
authorization: the lie typed `text/plain` with no error, the genuine zip afterwards `text/plain`,
1 file, extract never ran; the inline lie for a known sha256 was not refused; STREAM.UPDATE as the
dispatcher cut the summaries from 4 to 1). For 3, 4, 5 and 7 the tests use interfaces main did
not have (approvals, operator limits, per-identity queues), so the before-state is the issue's
report and main's code: the directory planned from heartbeats and summed unbounded scores, tree
limits came from the submission, one `submit.root` subject was served first in first out, and
`sluice up` ran without authorization.

The attacker uses its own identity's credentials and plain nats-py (or our BlobStore's pieces
where that is the shortest way to write the bytes an attacker would write).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import msgspec
import nats.errors
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from nats.js.api import ConsumerConfig, StreamConfig

from archives import make_zip, noise
from bus import auth
from bus.blobs import BlobStore
from bus.capacity import parse_size
from bus.codec import decode, encode
from bus.connect import CREDS_ENV, close, connect
from bus.embedded import EmbeddedServer
from bus.exhausted import genuine, watch_exhausted
from bus.objread import read_named
from bus.provision import approve, provision
from bus.subjects import Names
from schemas.limits import OperatorLimits
from schemas.messages import (
    ApprovedService,
    ErrorType,
    FileRef,
    MaxDeliveriesAdvisory,
    SampleKind,
    ServiceRecord,
    ServiceResult,
    Stage,
    Submission,
    SubmissionParams,
    Summary,
    Task,
    walk,
)
from services.sdk.approval import approval_for
from services.sdk.loader import load_service
from sluice.cli import main
from sluice.client import Client
from sluice.onebox import onebox, run_dispatcher
from sluice.web.app import allowed_hosts, create_app
from svcs import Echo, Gated, make
from test_auth import read_exports

REFUSAL_WAIT = 0.5
SERVICES = ["echo", "after", "extract", "liar", "slow"]
BOB = auth.submitter_role("bob")


@dataclass
class World:
    server: EmbeddedServer
    names: Names
    creds: dict[str, Path]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("attacks")
    names = Names("tk" + secrets.token_hex(3))
    creds = auth.init(root / "creds", names, SERVICES, submitters=["bob"])
    async with EmbeddedServer(data_dir=root / "nats", auth_config=root / "creds" / auth.CONF_NAME) as server:
        yield World(server, names, creds)


@pytest.fixture
def as_components(world: World, monkeypatch) -> None:
    """This process's components (one-box, clients) each on its own credentials, as `sluice up` runs them."""
    monkeypatch.setenv(CREDS_ENV, str(world.creds[auth.ADMIN].parent))


@dataclass
class Attacker:
    nc: nats.aio.client.Client
    errors: list[str]
    names: Names

    @property
    def js(self):
        return self.nc.jetstream(timeout=REFUSAL_WAIT)

    async def refused(self, action, subject_part: str) -> None:
        """`action` fails and the server reports a permissions violation naming `subject_part`."""
        with pytest.raises((TimeoutError, nats.errors.TimeoutError, nats.js.errors.Error)):
            await action
        with anyio.fail_after(3):
            while not any("permissions violation" in e.lower() and subject_part.lower() in e.lower() for e in self.errors):
                await anyio.sleep(0.02)


@asynccontextmanager
async def attacker(world: World, role: str) -> AsyncIterator[Attacker]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await connect(world.server.url, name=f"attacker-{role}", creds=world.creds[role], error_cb=on_error)
    try:
        yield Attacker(nc, errors, world.names)
    finally:
        await close(nc)


def mesh(world: World, *services, **limits):
    """The dispatcher and `services` under auth (onebox provisions and approves them as admin)."""
    kwargs = {"limits": OperatorLimits(**limits)} if limits else {}
    return onebox(world.server.url, world.names.prefix, list(services), **kwargs)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


POLICY = "policy"  # how errors_of names an operator's override (a bad_input error flagged `policy`)


def errors_of(summary: Summary) -> list[tuple[str, ErrorType | str, str]]:
    return [(e.service, POLICY if e.policy else e.type, e.message) for node in walk(summary.files) for e in node.errors]


async def upload_as(attacker_: Attacker, token: str, data: bytes) -> str:
    """Chunks under the attacker's own upload token (all it may write in the file store)."""
    stores = await provision(attacker_.nc.jetstream(), attacker_.names, create=False)
    blobs = BlobStore(attacker_.nc.jetstream(), stores.files, attacker_.names.file_bucket, writer=token)
    upload = f"{token}.{uuid.uuid4().hex}"
    await blobs._write_chunks(upload, data)
    return upload


# -- 1. a submitter poisons file typing for everyone ----------------------------------------------

async def test_attack_1_filler_under_a_sha256_neither_types_nor_blocks_the_genuine_file(world, as_components):
    # before: the submitter put filler under sha256(M) with ObjectStore.put and submitted a
    # reference; the dispatcher typed M as text/plain from that head and remembered it, so the
    # genuine zip later came back `info 0`, text/plain, 1 file, extract never ran.
    genuine = make_zip({"a.bin": noise(40_000, 1), "b.bin": noise(40_000, 2)})  # over the inline limit
    filler = b"just text\n" * (len(genuine) // 10)
    names = world.names
    async with mesh(world, make(Echo, "echo"), "extract"), attacker(world, auth.SUBMITTER) as evil:
        stores = await provision(evil.nc.jetstream(), names, create=False)
        # Naming an object is not the submitter's to do: the server refuses the write.
        await evil.refused(stores.files.put(sha(genuine), filler), f"$O.{names.file_bucket}.")
        # What it may do: upload filler under its own token and claim it is M.
        upload = await upload_as(evil, "submitter", filler)
        lie = Submission("lie-" + secrets.token_hex(4), [FileRef(sha(genuine), len(filler), "m.zip", upload=upload)])
        async with await Client.connect(world.server.url, names.prefix) as client:
            await evil.js.publish(names.submit_root, encode(lie), headers={"Nats-Msg-Id": lie.sid})
            refused = await client.wait(lie.sid, timeout=30)
            assert [(s, t) for s, t, _ in errors_of(refused)] == [("dispatcher", ErrorType.BAD_INPUT)]
            assert "do not match" in errors_of(refused)[0][2]
            summary = await client.wait(await client.submit_bytes([("m.zip", genuine)]), timeout=30)
    [root] = summary.files
    assert root.type == "archive/zip" and len(root.children) == 2 and summary.file_count == 3
    assert [r.service for r in root.results] == ["extract"] and not errors_of(summary)


# -- 2. anyone squats a sha256 ----------------------------------------------------------------------

@pytest.mark.parametrize("role", [auth.SUBMITTER, auth.WEB, auth.service_role("echo")])
async def test_attack_2_wrong_bytes_under_a_name_cannot_block_the_genuine_ones(world, as_components, role):
    # before: any writer stored other bytes of the same size under sha256(M); the client skipped
    # storing M (the name existed) and every service failed the hash check: `info 0`, 4
    # unreachable errors, until an admin deleted the object by hand.
    genuine = noise(100 * 1024, seed=len(role))
    squat = noise(100 * 1024, seed=99)
    names = world.names
    async with attacker(world, role) as evil:
        stores = await provision(evil.nc.jetstream(), names, create=False)
        await evil.refused(stores.files.put(sha(genuine), squat), f"$O.{names.file_bucket}.")
        await upload_as(evil, auth.identity_of(role), squat)  # allowed, and names nothing
        with pytest.raises(nats.js.errors.ObjectNotFoundError):
            await stores.files.get_info(sha(genuine))
    async with mesh(world, make(Echo, "echo")), await Client.connect(world.server.url, names.prefix) as client:
        summary = await client.wait(await client.submit_bytes([("m.bin", genuine)], SubmissionParams(ignore_cache=True)), timeout=30)
    assert [r.service for r in summary.files[0].results] == ["echo"] and not errors_of(summary)
    assert summary.score == 100


@pytest.mark.parametrize("role", [auth.SUBMITTER, auth.WEB, auth.service_role("echo")])
async def test_attack_2_nobody_else_writes_the_chunk_that_names_a_small_file(world, as_components, role):
    # A small file checked inline is named by its one chunk under `trusted-<sha256>` alone
    # (bus.blobs.name_checked): such a chunk written by anyone else would be a name for wrong bytes.
    genuine = f"small and genuine, for {role}\n".encode() * 10
    subject = f"$O.{world.names.file_bucket}.C.trusted-{sha(genuine)}"
    async with attacker(world, role) as evil:
        await evil.refused(evil.js.publish(subject, b"squat"), subject)
    async with mesh(world, make(Echo, "echo")), await Client.connect(world.server.url, world.names.prefix) as client:
        summary = await client.wait(await client.submit_bytes([("s.txt", genuine)]), timeout=30)
        assert not errors_of(summary) and summary.files[0].results[0].service == "echo"
        assert await client.blobs.get(FileRef(sha(genuine), len(genuine))) == genuine  # by sha256 alone


# -- 3. a compromised service tries to silence the mesh ---------------------------------------------

async def test_attack_3_a_service_cannot_choose_its_stage_filter_score_or_drop(world, as_components):
    # before: the pe identity re-registered as a FILTER service taking `.*` and every kind, widened
    # its consumer to `task.FILTER.>` and answered score=-100000, drop=True: every verdict `safe`.
    names = world.names
    liar = make(Echo, "liar")  # what the operator approved: an ordinary CORE service, scores 0..1000
    after = make(Echo, "after", stage="POST")
    async with attacker(world, auth.ADMIN) as admin:
        admin_js = admin.nc.jetstream()
        await approve(admin_js, names, await provision(admin_js, names), approval_for(liar.manifest))
    async with attacker(world, auth.service_role("liar")) as evil:
        js = evil.nc.jetstream()
        stores = await provision(js, names, create=False)
        # Widen its own consumer, or make another: both are admin's to do.
        wide = ConsumerConfig(durable_name=names.service_consumer("liar"), filter_subjects=[names.task_filter(Stage.FILTER)])
        await evil.refused(evil.js.add_consumer(names.task_stream, wide), f"create.{names.task_stream}.svc-liar")
        # Nor may it rewrite its approval.
        widened = msgspec.structs.replace(approval_for(liar.manifest), stage=Stage.FILTER, score_min=-10**6, may_drop=True)
        await evil.refused(stores.approvals.put("liar", encode(widened)), f"$KV.{names.approvals_bucket}.liar")
        filters = (await js.consumer_info(names.task_stream, names.service_consumer("liar"))).config.filter_subjects
        assert filters and all(f.startswith(f"{names.prefix}.task.CORE.") for f in filters)  # as approved
        claim = ServiceRecord("liar", "6.6.6", Stage.FILTER, ".*", "", 600, "svc-liar", kinds=list(SampleKind))
        tasks: list[Task] = []

        async def impersonate(stop: anyio.Event) -> None:
            sub = await js.pull_subscribe_bind(names.service_consumer("liar"), stream=names.task_stream)
            while not stop.is_set():
                claim.heartbeat = time.time()
                await stores.registry.put("liar.evil", encode(claim))
                try:
                    msgs = await sub.fetch(10, timeout=0.3)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                for msg in msgs:
                    task = decode(msg.data, Task)
                    tasks.append(task)
                    forged = ServiceResult(task.corr, "liar", "6.6.6", score=-100_000, drop=True)
                    await js.publish(names.result_reply(task.reply_to, "liar"), encode(forged))
                    await msg.ack()

        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(impersonate, stop)
            async with mesh(world, make(Echo, "echo"), after) as box, \
                    await Client.connect(world.server.url, names.prefix) as client:
                with anyio.fail_after(10):
                    await box.dispatcher.directory.wait_for({"liar"})
                assert box.dispatcher.directory.services["liar"].stage is Stage.CORE  # its approval, not its claim
                summary = await client.wait(await client.submit_bytes([("x.txt", b"an ordinary file " * 9)],
                                                                       SubmissionParams(ignore_cache=True)), timeout=30)
            stop.set()
        await stores.registry.delete("liar.evil")
    [node] = summary.files
    assert tasks and all(t.stage is Stage.CORE for t in tasks)
    assert {r.service: r.score for r in node.results} == {"echo": 100, "liar": 0, "after": 100}  # clamped; POST still ran
    assert not node.dropped and summary.score == 200
    [(service, kind, message)] = errors_of(summary)
    assert (service, kind) == ("liar", POLICY)
    assert "-100000 outside the approved range [0, 1000]" in message and "not approved to do" in message


async def test_provisioning_and_approving_are_the_operators_commands(world, monkeypatch, capsys):
    """`sluice provision` and `sluice service approve` as admin: queues per submitter identity,
    every built-in approved with its consumer, and an approval with the operator's own range."""
    monkeypatch.setenv(CREDS_ENV, str(world.creds[auth.ADMIN]))
    common = ["--nats", world.server.url, "--prefix", world.names.prefix, "--json"]

    async def sluice(*argv: str) -> int:  # as a user runs it: its own event loop, in a thread
        return await anyio.to_thread.run_sync(main, list(argv))

    assert await sluice("provision", *common) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"submitter", "web", "submitter-bob"} <= set(report["submitter_queues"]) and "pe" in report["approved"]
    assert await sluice("service", "approve", "safelist", "--score-range=-500:0", "--no-may-drop", *common) == 0
    approved = json.loads(capsys.readouterr().out)
    assert (approved["stage"], approved["score_min"], approved["may_drop"]) == ("FILTER", -500, False)
    assert await sluice("service", "approve", "pe", "--may-drop", *common) == 2  # only FILTER/EXTRACT may drop
    async with attacker(world, auth.ADMIN) as admin:
        js = admin.nc.jetstream()
        stores = await provision(js, world.names, create=False)
        assert decode((await stores.approvals.get("safelist")).value, ApprovedService).score_min == -500
        await js.consumer_info(world.names.task_stream, world.names.service_consumer("pe"))
        await js.consumer_info(world.names.submit_stream, world.names.root_consumer("submitter-bob"))
        await approve(js, world.names, stores, approval_for(load_service("safelist").manifest))  # as it was


# -- 4. tree limits are the operator's --------------------------------------------------------------

async def test_attack_4_limits_a_submission_asks_for_are_clamped_and_said(world, as_components):
    # before: max_depth 12 and 251 files went through, no error.
    names = world.names
    nested = make_zip({"inner.zip": make_zip({"deep.txt": b"deepest " * 20}), "one.txt": b"1" * 90,
                       "two.txt": b"2" * 90, "three.txt": b"3" * 90})
    asked = SubmissionParams(max_depth=12, max_files=251, max_children=300, ignore_cache=True)
    async with mesh(world, make(Echo, "echo"), "extract", max_depth=1, max_files=4, max_children=50), \
            await Client.connect(world.server.url, names.prefix) as client:
        summary = await client.wait(await client.submit_bytes([("nested.zip", nested)], asked), timeout=30)
    said = {(t, m) for _, t, m in errors_of(summary)}
    assert (POLICY, "max_depth 12 asked; the operator allows 1, so 1 applies") in said
    assert (POLICY, "max_files 251 asked; the operator allows 4, so 4 applies") in said
    assert (POLICY, "max_children 300 asked; the operator allows 50, so 50 applies") in said
    assert {t for t, _ in said} >= {ErrorType.MAX_FILES}
    assert summary.file_count <= 4 and max(n.depth for n in walk(summary.files)) <= 1


# -- 5. quotas and fairness per submitter identity -------------------------------------------------

async def test_attack_5_identity_comes_from_the_subject_and_cannot_be_forged(world):
    # before: one `submit.root` subject for everyone; who submitted was not known at all.
    async with attacker(world, auth.SUBMITTER) as evil:
        forged = Submission("as-bob", [FileRef(sha(b"x"), 1, "x", b"x")])
        await evil.refused(evil.js.publish(world.names.submit_root_for("submitter-bob"), encode(forged)), "submit.root.submitter-bob")


@asynccontextmanager
async def as_admin(world: World) -> AsyncIterator[nats.js.JetStreamContext]:
    nc = await connect(world.server.url, name="test-admin", creds=world.creds[auth.ADMIN])
    try:
        yield nc.jetstream()
    finally:
        await close(nc)


async def fresh_quota_window(world: World, window: float = 60.0, needed: float = 20.0) -> None:
    """Forget what earlier tests counted (the quota counts are shared by every dispatcher of the
    prefix, so also by this module's earlier tests) and, if the current window of the quota
    clock ends within `needed` s, wait for the next one: a test must not straddle two windows."""
    async with as_admin(world) as js:
        await provision(js, world.names)
        await js.purge_stream(f"KV_{world.names.quota_bucket}")
    left = window - time.time() % window
    if left < needed:
        await anyio.sleep(left + 0.05)


def analysed_and_refused(done: dict[str, Summary]) -> tuple[int, int]:
    refused = [s for s in done.values() if any(t is POLICY and "quota" in m for _, t, m in errors_of(s))]
    return sum(1 for s in done.values() if s.files[0].results), len(refused)


async def test_attack_5_submissions_over_the_per_minute_quota_are_refused(world, as_components):
    # before: 10,000 submissions in 1.2 s, none refused.
    await fresh_quota_window(world)
    async with mesh(world, make(Echo, "echo"), submissions_per_minute=3), \
            await Client.connect(world.server.url, world.names.prefix) as client:
        sids = [await client.submit_bytes([(f"{i}.txt", f"file {i} {secrets.token_hex(4)}".encode())]) for i in range(5)]
        done = await client.wait_all(sids, timeout=30)
    assert len(done) == 5 and analysed_and_refused(done) == (3, 2)


async def test_attack_5_the_per_minute_quota_holds_over_several_dispatchers(world, as_components):
    # before: each dispatcher counted for itself, so N dispatchers let N times the quota through:
    # here the second dispatcher would have analysed all three of its submissions.
    await fresh_quota_window(world)
    rounds = []
    for dispatcher in ("first", "second"):  # each a dispatcher of its own, with nothing counted in memory
        async with mesh(world, make(Echo, "echo"), submissions_per_minute=4), \
                await Client.connect(world.server.url, world.names.prefix) as client:
            sids = [await client.submit_bytes([(f"{dispatcher}{i}.txt", f"{dispatcher} {i} {secrets.token_hex(4)}".encode())])
                    for i in range(3)]
            rounds.append(analysed_and_refused(await client.wait_all(sids, timeout=30)))
    assert rounds == [(3, 0), (1, 2)]


async def test_attack_5_submissions_in_flight_are_held_by_the_server_over_several_dispatchers(world, as_components, monkeypatch):
    # before: each dispatcher allowed trees_per_submitter of its own (two: twice as many), and the
    # queue handed a flood's whole backlog to whichever dispatcher fetched first.
    monkeypatch.setenv("SLUICE_LIMIT_TREES_PER_SUBMITTER", "2")  # the quota provisioning gives the queue
    names = world.names
    slow = make(Gated, "slow", enabled=False, concurrency=8)
    wide = OperatorLimits(trees_per_submitter=64)  # each dispatcher on its own would take 64 at once
    stop = anyio.Event()
    async with mesh(world, make(Echo, "echo"), slow, trees_per_submitter=64), \
            await Client.connect(world.server.url, names.prefix) as flooder, as_admin(world) as admin:
        async with anyio.create_task_group() as tg:
            second = anyio.Event()
            tg.start_soon(partial(run_dispatcher, world.server.url, names, stop, lambda _: second.set(), limits=wide))
            with anyio.fail_after(30):
                await second.wait()
            flooded = [await flooder.submit_bytes([(f"f{i}.txt", f"flood {i} {secrets.token_hex(4)}".encode())],
                                                  SubmissionParams(services=["slow"], ignore_cache=True)) for i in range(10)]
            with anyio.fail_after(10):
                while slow.calls < 2:
                    await anyio.sleep(0.02)
            queue = await admin.consumer_info(names.submit_stream, names.root_consumer(auth.identity_of(auth.SUBMITTER)))
            assert queue.config.max_ack_pending == 2
            assert (queue.num_ack_pending, queue.num_pending) == (2, 8)  # two in flight over both dispatchers
            slow.release.set()
            assert len(await flooder.wait_all(flooded, timeout=60)) == 10
            stop.set()


async def test_attack_5_uploads_over_the_stored_bytes_quota_are_refused(world, as_components):
    # before: no limit on what a submitter could make the store keep.
    async with mesh(world, make(Echo, "echo"), stored_bytes_per_hour=150_000), \
            await Client.connect(world.server.url, world.names.prefix, role=BOB) as client:
        first = await client.wait(await client.submit_bytes([("one.bin", noise(100_000, 7))]), timeout=30)
        second = await client.wait(await client.submit_bytes([("two.bin", noise(100_000, 8))]), timeout=30)
    assert not errors_of(first)
    [(service, kind, message)] = errors_of(second)
    assert (service, kind) == ("dispatcher", ErrorType.BAD_INPUT) and "submitter-bob is over its quota" in message


async def test_attack_5_one_identitys_flood_does_not_starve_another(world, as_components):
    # before: first in, first out for everyone: bob's submission waited behind the whole flood
    # (here: behind 64 trees held by a gated service, until released).
    names = world.names
    slow = make(Gated, "slow", enabled=False, concurrency=8)  # only for submissions that select it
    flood = SubmissionParams(services=["slow"], ignore_cache=True)
    async with mesh(world, make(Echo, "echo"), slow, trees_per_submitter=2), \
            await Client.connect(world.server.url, names.prefix) as flooder, \
            await Client.connect(world.server.url, names.prefix, role=BOB) as bob:
        flooded = [await flooder.submit_bytes([(f"f{i}.txt", f"flood {i} {secrets.token_hex(4)}".encode())], flood)
                   for i in range(100)]
        with anyio.fail_after(10):
            await slow.entered.wait()
        summary = await bob.wait(await bob.submit_bytes([("bob.txt", b"bob's one file " * 5)],
                                                        SubmissionParams(ignore_cache=True)), timeout=15)
        assert [r.service for r in summary.files[0].results] == ["echo"]
        assert slow.calls <= 2  # the flooder had at most its share in flight; the rest waited in its own queue
        slow.release.set()
        assert len(await flooder.wait_all(flooded, timeout=60)) == 100


async def test_attack_5_a_submitter_cannot_create_consumers_by_the_hundred(world, as_components):
    # before: a submitter created 300 consumers (ordered ones on the summaries, chunk readers on
    # the file store: its read rights allowed both), each counted against the one account that
    # every identity shares; and its own client made one per connection.
    names = world.names
    streams = (names.summary_stream, f"OBJ_{names.file_bucket}")

    async def consumers() -> set[tuple[str, str]]:
        """Every consumer on the two streams (those of earlier tests' components may still be going away)."""
        async with as_admin(world) as js:
            return {(s, info.name) for s in streams for info in await js.consumers_info(s)}

    async with as_admin(world) as js:
        await provision(js, names)
    before = await consumers()
    async with attacker(world, auth.SUBMITTER) as evil:
        inbox = evil.nc.new_inbox()
        for i in range(150):  # as fast as it can: requests whose answers it does not wait for
            push = {"stream_name": names.summary_stream, "config": {
                "deliver_subject": f"{inbox}.{i}", "deliver_policy": "new", "ack_policy": "none", "inactive_threshold": 600 * 10**9}}
            await evil.nc.publish(f"$JS.API.CONSUMER.CREATE.{names.summary_stream}", json.dumps(push).encode(), reply=inbox)
            pull = {"stream_name": streams[1], "config": {
                "name": f"evil{i}", "filter_subject": f"$O.{names.file_bucket}.C.>", "ack_policy": "none",
                "inactive_threshold": 600 * 10**9}}
            await evil.nc.publish(f"$JS.API.CONSUMER.CREATE.{streams[1]}.evil{i}.$O.{names.file_bucket}.C.>",
                                  json.dumps(pull).encode(), reply=inbox)
        await evil.nc.flush()
        await evil.refused(evil.js.add_consumer(names.summary_stream, ConsumerConfig(durable_name="evil")),
                           f"CONSUMER.DURABLE.CREATE.{names.summary_stream}")
        assert await consumers() - before == set()  # not one made
    # Its own client needs none: verdicts, a stored object and a look-up, all without a consumer.
    async with mesh(world, make(Echo, "echo")), \
            await Client.connect(world.server.url, names.prefix) as client:
        data = noise(200_000, 11)
        summary = await client.wait(await client.submit_bytes([("big.bin", data)], SubmissionParams(ignore_cache=True)), timeout=30)
        assert [r.service for r in summary.files[0].results] == ["echo"] and not errors_of(summary)
        assert await read_named(client.js, client.files, names.file_bucket, FileRef(sha(data), len(data))) == data
        small = f"small {secrets.token_hex(8)}".encode()  # sent inline: named by its one trusted chunk, no meta
        await client.wait(await client.submit_bytes([("small.txt", small)]), timeout=30)
        assert await read_named(client.js, client.files, names.file_bucket, FileRef(sha(small), len(small))) == small
        assert (await client.result(summary.sid)).sid == summary.sid
        # (the dispatcher's and services' own chunk readers come and go on the file store)
        assert {c for c in await consumers() - before if c[0] == names.summary_stream} == set()


async def test_attack_5_the_account_holds_jetstream_limits_and_each_stream_a_size(world):
    # before: account JetStream limits all unlimited, and no stream had a size cap.
    async with as_admin(world) as js:
        await provision(js, world.names)
        limits = (await js.account_info()).limits
        assert (limits.max_storage, limits.max_streams, limits.max_consumers) == (
            parse_size("", os.environ["SLUICE_ACCOUNT_MAX_FILE"]), 1000, 20_000)  # bus.capacity's defaults
        sizes = [(await js.stream_info(s)).config.max_bytes
                 for s in (world.names.submit_stream, world.names.task_stream, world.names.reply_stream)]
    assert all(size > 0 for size in sizes)


# -- 6. the dispatcher identity cannot purge by update ---------------------------------------------

async def test_attack_6_the_dispatcher_cannot_update_purge_or_delete_a_stream(world):
    # before: STREAM.UPDATE with max_msgs=1 cut the summaries stream from 12 messages to 1.
    names = world.names
    async with attacker(world, auth.DISPATCHER) as evil:
        info = await evil.nc.jetstream().stream_info(names.summary_stream)
        cut = info.config
        cut.max_msgs = 1
        await evil.refused(evil.js.update_stream(cut), f"STREAM.UPDATE.{names.summary_stream}")
        await evil.refused(evil.js.purge_stream(names.summary_stream), f"STREAM.PURGE.{names.summary_stream}")
        await evil.refused(evil.js.delete_stream(names.summary_stream), f"STREAM.DELETE.{names.summary_stream}")
        await evil.refused(evil.js.add_stream(StreamConfig(name="EVIL", subjects=["evil.>"])), "STREAM.CREATE.EVIL")


# -- 7. the default one-box: nobody without credentials; the web front answers its own names ------

async def test_attack_7_the_default_one_box_refuses_a_local_process_without_credentials(tmp_path: Path) -> None:
    # before: `sluice up` ran without auth; a forged summary replaced EICAR's verdict.
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in (CREDS_ENV, "SLUICE_NATS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "sluice", "up", "--web", "off", "--data-dir", str(tmp_path / "data")]
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        async with await anyio.open_process(command, env=env, cwd=tmp_path, stderr=stderr) as proc:
            try:
                exports = await read_exports(proc)
                assert exports[CREDS_ENV] == str((tmp_path / "data" / "auth" / "submitter.nk").resolve())
                url = exports["SLUICE_NATS_URL"].split()[0]
                with pytest.raises(Exception, match="(?i)authorization"):
                    await connect(url, name="anonymous local process", allow_reconnect=False)
            finally:
                proc.send_signal(signal.SIGTERM)
                with anyio.fail_after(30):
                    assert await proc.wait() == 0


async def test_attack_7_the_web_front_answers_only_its_own_host_names(nats_url, prefix) -> None:
    # before: any `Host:` was answered, so a DNS-rebinding page could drive the API.
    app = create_app(nats_url, prefix, hosts=allowed_hosts("127.0.0.1", 8080))
    async with AsyncTestClient(app, base_url="http://127.0.0.1:8080") as http:
        assert (await http.get("/", headers={"Host": "127.0.0.1:8080"})).status_code == 200
        assert (await http.get("/", headers={"Host": "localhost:8080"})).status_code == 200
        for rebound in ("rebound.attacker.example", "rebound.attacker.example:8080", "127.0.0.1:9999"):
            assert (await http.get("/api/submissions", headers={"Host": rebound})).status_code == 400


# -- 8. smaller: inline bytes for a known sha256; forged max-deliveries advisories ----------------

async def test_attack_8_inline_bytes_not_matching_a_known_sha256_are_bad_input(world, as_components):
    # before: for a sha256 the dispatcher already knew, the lie ended `unreachable`, not `bad_input`.
    names = world.names
    genuine = b"a small known file " + secrets.token_bytes(8)
    async with mesh(world, make(Echo, "echo")), await Client.connect(world.server.url, names.prefix) as client, \
            attacker(world, auth.SUBMITTER) as evil:
        first = await client.wait(await client.submit_bytes([("k.txt", genuine)]), timeout=30)
        assert not errors_of(first)
        lie = Submission("inline-" + secrets.token_hex(4), [FileRef(sha(genuine), len(genuine), "k.txt", b"X" * len(genuine))])
        await evil.js.publish(names.submit_root, encode(lie), headers={"Nats-Msg-Id": lie.sid})
        summary = await client.wait(lie.sid, timeout=30)
    assert [(s, t) for s, t, _ in errors_of(summary)] == [("dispatcher", ErrorType.BAD_INPUT)]
    assert not summary.files[0].results


async def test_attack_8_a_forged_max_deliveries_advisory_deletes_nothing(nats_url, prefix, caplog) -> None:
    # before: the handler deleted whatever queued submission the advisory's body named. Without
    # auth anyone may publish on the advisory subject; under auth only the server does.
    names = Names(prefix)
    caplog.set_level(logging.WARNING, logger="sluice.dlq")
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await provision(js, names)
        ack = await js.publish(names.submit_root, encode(Submission("queued", [FileRef(sha(b"q"), 1, "q", b"q")])))
        watching = await watch_exhausted(nc, js, names)
        subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{names.submit_stream}.{names.ROOT_CONSUMER}"
        forged = MaxDeliveriesAdvisory(names.submit_stream, names.ROOT_CONSUMER, ack.seq, 1)
        assert "gives up after 5" in await genuine(js, subject, forged, names.submit_root)
        await nc.publish(subject, json.dumps(msgspec.to_builtins(forged)).encode())
        with anyio.fail_after(5):
            while not any("advisory" in r.message and "ignored" in r.message for r in caplog.records):
                await anyio.sleep(0.02)
        assert (await js.get_msg(names.submit_stream, ack.seq)).data  # still queued
        for sub in watching:
            await sub.unsubscribe()
    finally:
        await close(nc)


# -- 9. upload announcements are hints: they name nothing unchecked -------------------------------

async def test_attack_9_an_announcement_names_neither_wrong_bytes_nor_anothers_upload(world, as_components, caplog):
    # An announcement (dispatcher.early) makes a dispatcher check an upload while it arrives.
    # The default submitter announces its own filler as M, and bob's upload of M as its own;
    # neither gets a name, it may not announce on bob's subject at all, and M, genuinely
    # submitted by bob afterwards, is analysed as M.
    caplog.set_level(logging.INFO, logger="sluice.dispatcher")
    names = world.names
    genuine, filler = noise(5 * 1024 * 1024, 11), noise(5 * 1024 * 1024, 12)
    me = auth.identity_of(auth.SUBMITTER)
    async with mesh(world, make(Echo, "echo")), attacker(world, auth.SUBMITTER) as evil, \
            await Client.connect(world.server.url, names.prefix, role=BOB) as bob:
        own = await upload_as(evil, me, filler)
        await evil.nc.publish(names.upload_notice(me), encode(FileRef(sha(genuine), len(genuine), "m", upload=own)))
        bobs = f"{bob.identity}.{uuid.uuid4().hex}"
        await BlobStore(bob.js, bob.files, names.file_bucket, writer=bob.identity)._write_chunks(bobs, genuine)
        await evil.nc.publish(names.upload_notice(me), encode(FileRef(sha(genuine), len(genuine), "m", upload=bobs)))
        await evil.refused(evil.js.publish(names.upload_notice(bob.identity), b"x"), names.upload_notice(bob.identity))
        with anyio.fail_after(20):
            while not (any(f"upload {own} failed" in r.getMessage() for r in caplog.records)
                       and any("not an upload of its own" in r.getMessage() for r in caplog.records)):
                await anyio.sleep(0.05)
        assert not await bob.blobs.exists(sha(genuine), len(genuine))
        summary = await bob.wait(await bob.submit_bytes([("m.bin", genuine)]), timeout=30)
    assert not errors_of(summary) and summary.files[0].results[0].service == "echo"

