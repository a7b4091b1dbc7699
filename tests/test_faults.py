"""The fault suite: load through a mesh of real processes, one fault injected, nothing lost.

Each test drives submissions through a dispatcher and services running as their own OS
processes (`tests/procs.py`), injects one fault (SIGKILL, SIGSTOP, a hanging or crashing
service, the NATS server killed), then checks from the summary stream that every submission
completed once, with the summary it should have, and that what failed says so. The counts go
to the fault table (`tests/faultload.py`). `test_restart.py` covers the clean (SIGTERM) stop of
a dispatcher; the JetStream cluster is in `test_cluster.py`.
"""

from __future__ import annotations

import signal
import time
import uuid
from functools import partial
from pathlib import Path

import anyio
import pytest

from bus.codec import encode
from bus.embedded import EmbeddedServer
from bus.kv import kv_keys
from schemas.messages import ErrorType, ServiceRecord, Stage, Summary, walk
from dispatcher.directory import ServiceDirectory
from sluice.client import Client
from sluice.render import to_json
from archives import make_zip, noise
from faultload import Load
from procs import FAULT_SERVICES, Component, Mesh, peak_rss_mib

pytestmark = pytest.mark.timeout(150)

CHAOS = str(FAULT_SERVICES / "chaos")
OUTAGE = 1.5  # seconds the NATS server stays down
TRICKLE = 60  # submissions arriving over ~3 s while the fault strikes


def text_file(i: int) -> list[tuple[str, bytes]]:
    """A small, unique text file: no two submissions share a cache entry."""
    return [(f"file-{i}.txt", f"payload {i} {uuid.uuid4().hex}\n".encode())]


def markers_of(markers: Path, pid: int) -> set[str]:
    """The sha256s a chaos instance has started (its marker files)."""
    return {p.name.split("-", 1)[1] for p in markers.iterdir() if p.name.startswith(f"{pid}-")}


async def first_marker(markers: Path, pid: int, timeout: float = 30.0) -> set[str]:
    """Wait until the instance `pid` has started a file; the files it has started so far."""
    with anyio.fail_after(timeout):
        while not (started := markers_of(markers, pid)):
            await anyio.sleep(0.02)
    return started


def retried_elsewhere(markers: Path, failed: Component, other: Component) -> set[str]:
    """Files both instances started: those the failed one held, done again by the other."""
    return markers_of(markers, failed.pid) & markers_of(markers, other.pid)


def errors_of(found: dict[str, Summary], kind: ErrorType) -> int:
    return sum(1 for s in found.values() for n in walk(s.files) for e in n.errors if e.type == kind)


def chaos_only(summary, expect_type: str = "text/plain") -> None:
    """A one-file summary analysed by chaos alone, with no error."""
    [node] = summary.files
    assert node.errors == [], node.errors
    assert [(r.service, r.sections[0].title) for r in node.results] == [("chaos", f"chaos saw {expect_type}")]


async def test_service_instance_sigkilled_mid_task(nats_url, prefix, tmp_path):
    """Two instances share a service's consumer; one dies holding tasks. Its tasks are retried on
    the other once their deadline passes: every submission completes with the service's result."""
    markers = tmp_path / "markers"
    markers.mkdir()
    options = ("--config", "delay=0.4", "--config", f"marker_dir={markers}")
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        victim, survivor = await mesh.instances(2, CHAOS, *options)
        await mesh.dispatcher()
        load = Load(client)
        for i in range(40):
            await load.submit(text_file(i))
        await first_marker(markers, victim.pid)
        await victim.kill()  # within milliseconds of starting a 0.4 s file: it dies holding it
        found = await load.outcome("service instance SIGKILLed mid-task (2 instances)", timeout=60, notes=lambda _: (
            f"{len(retried_elsewhere(markers, victim, survivor))} task(s) the killed instance held, redone by the other"))
        for summary in found.values():
            chaos_only(summary)
        assert retried_elsewhere(markers, victim, survivor), "the killed instance's task was not retried on the other"


async def test_hung_service_times_out_and_a_frozen_instance_blocks_nobody(nats_url, prefix, tmp_path):
    """Some files make the service hang forever: each attempt ends at the manifest timeout and,
    after three, the timeout is the recorded error. Meanwhile one of the two instances is frozen
    outright (SIGSTOP, holding tasks): the other takes all the work, the frozen one's tasks are
    retried there after their deadline, and no other file waits on the hung ones."""
    markers = tmp_path / "markers"
    markers.mkdir()
    options = ("--config", "delay=0.2", "--config", f"marker_dir={markers}", "--config", "hang_prefix=HANG")
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        frozen, survivor = await mesh.instances(2, CHAOS, *options)
        await mesh.dispatcher()
        load = Load(client)
        hung = {await load.submit([(f"hang-{i}.txt", f"HANG {i} {uuid.uuid4().hex}\n".encode())]) for i in range(3)}
        for i in range(30):
            await load.submit(text_file(i))
        await first_marker(markers, frozen.pid)
        frozen.signal(signal.SIGSTOP)
        found = await load.outcome("service hangs forever on 3 files; 1 of its 2 instances frozen (SIGSTOP)", timeout=60,
                                   notes=lambda found: (
            f"{errors_of(found, ErrorType.TIMEOUT)} timeout errors recorded (the hanging files); "
            f"{len(retried_elsewhere(markers, frozen, survivor))} task(s) of the frozen instance redone by the other"))
        for sid, summary in found.items():
            if sid in hung:
                [node] = summary.files
                [error] = node.errors
                assert (error.service, error.type) == ("chaos", ErrorType.TIMEOUT)
                assert "past the 2s timeout" in error.message and "after 3 attempts" in error.message
            else:
                chaos_only(summary)
        assert retried_elsewhere(markers, frozen, survivor), "the frozen instance's task was not retried on the other"


async def test_service_crashing_on_one_type_leaves_the_rest_of_the_tree(nats_url, prefix, tmp_path):
    """A service that raises on every text file: each text node carries the crash, with its
    message; the archive and the binary beside it in the same tree are analysed as usual."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(mesh.service, CHAOS, "--config", "crash_type=text/.*")
            tg.start_soon(mesh.service, "extract")
        await mesh.dispatcher()
        load = Load(client)
        for i in range(20):
            archive = make_zip({f"note-{i}.txt": f"note {i} {uuid.uuid4().hex}\n".encode(), f"blob-{i}.bin": noise(512, seed=i)})
            await load.submit([(f"tree-{i}.zip", archive)])
        found = await load.outcome("service crashes on every file of one type", timeout=60, notes=lambda found: (
            f"{errors_of(found, ErrorType.CRASHED)} crash errors recorded, one per text file; zips and binaries analysed"))
        for summary in found.values():
            nodes = {n.type: n for n in walk(summary.files)}
            assert set(nodes) == {"archive/zip", "text/plain", "unknown"} and summary.file_count == 3
            [crash] = nodes["text/plain"].errors
            assert (crash.service, crash.type) == ("chaos", ErrorType.CRASHED)
            assert crash.message == "RuntimeError: chaos crashes on every text/plain file"
            assert nodes["unknown"].errors == [] and [r.service for r in nodes["unknown"].results] == ["chaos"]
            archive = nodes["archive/zip"]  # extract drops an archive once unpacked: chaos never sees it
            assert archive.errors == [] and archive.dropped and [r.service for r in archive.results] == ["extract"]
            assert summary.errors == 1


async def test_dispatcher_sigkilled_mid_submission_and_restarted(nats_url, prefix, tmp_path):
    """The dispatcher dies (SIGKILL) with trees half done; a new one starts. What the dead one held
    comes back when its ack wait runs out, and the new one finishes it from the result cache."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(mesh.service, CHAOS, "--config", "delay=0.2")
            tg.start_soon(mesh.service, "extract")
        first = await mesh.dispatcher()
        load = Load(client)
        for i in range(30):
            members = {f"a-{i}.txt": f"a {i} {uuid.uuid4().hex}\n".encode(), f"b-{i}.txt": f"b {i} {uuid.uuid4().hex}\n".encode()}
            await load.submit([(f"pair-{i}.zip", make_zip(members))])
        await load.wait_completed(3, timeout=30)  # some trees done, the rest in flight
        await first.kill()
        killed_at = time.monotonic()
        done_at_kill = (await load.stored_summaries())[0]
        assert done_at_kill < len(load.sent), "every tree was done before the kill: the fault missed the load"
        await mesh.dispatcher()
        found = await load.outcome("dispatcher SIGKILLed mid-submission, restarted", timeout=90, notes=lambda found: (
            f"{done_at_kill} done before the kill; {sum(1 for s in found.values() if s.cached_results)} trees resumed "
            f"with cached results; all done {time.monotonic() - killed_at:.0f} s after the kill (30 s ack wait)"))
        resumed = [s for s in found.values() if s.cached_results]
        for summary in found.values():
            assert summary.file_count == 3 and summary.errors == 0
            assert all(n.results for n in walk(summary.files))
        assert resumed, "no tree was resumed from the result cache"
        assert time.monotonic() - killed_at < 60


async def test_nats_server_killed_and_restarted_under_load(tmp_path):
    """nats-server is SIGKILLed while submissions flow and restarted on the same port and store:
    every component reconnects, submissions made during the outage wait in the client's
    reconnect buffer (or are retried under the same sid, de-duplicated), and every one
    completes once."""
    prefix = "t" + uuid.uuid4().hex[:8]
    async with EmbeddedServer(data_dir=tmp_path / "nats") as server:
        async with Mesh(server.url, prefix, tmp_path) as mesh, await Client.connect(server.url, prefix) as client:
            await mesh.instances(2, CHAOS, "--config", "delay=0.1")
            await mesh.dispatcher()
            load = Load(client)

            async with anyio.create_task_group() as tg:
                tg.start_soon(load.trickle, text_file, TRICKLE)
                await load.wait_completed(5, timeout=30)
                await server.kill()
                killed_at, sent_before = time.monotonic(), len(load.sent)
                await anyio.sleep(OUTAGE)  # the fault itself: the server stays down this long
                await server.start()
                outage = time.monotonic() - killed_at
            assert sent_before < TRICKLE, "the submitter had finished before the outage: the fault missed the load"
            found = await load.outcome("NATS server SIGKILLed and restarted under load", timeout=90, notes=lambda _: (
                f"killed with {sent_before} of {TRICKLE} sent, down {outage:.1f} s; {load.resubmits} submit retries"))
            for summary in found.values():
                chaos_only(summary)



async def test_registry_listing_is_whole_while_instances_heartbeat(nats_url, prefix, tmp_path):
    """The dispatcher lists the registry every second while every instance rewrites its key:
    a listing that misses a key leaves that service out of every file planned in that second,
    silently. nats-py's KeyValue.keys() does (about 1 listing in 15 here); bus.kv.kv_keys must not."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh:
        registry, instances = mesh.stores.registry, [f"svc.instance-{i}" for i in range(3)]
        for key in instances:
            await registry.put(key, b"first beat")

        async def heartbeat() -> None:
            while True:
                for key in instances:
                    await registry.put(key, b"beat")
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            listings = [await kv_keys(mesh.js, mesh.names.registry_bucket) for _ in range(200)]
            tg.cancel_scope.cancel()
    assert all(keys == instances for keys in listings)


@pytest.mark.parametrize(("ages", "alive"), [
    ({"a": 12, "b": 12}, {"a", "b"}),  # the registry could not be written for 12 s (an election): keep both
    ({"a": 12, "b": 0}, {"b"}),  # a fell 12 s behind b, which still beats: a is down
    ({"a": 70, "b": 70}, set()),  # nothing for over a minute: everything is down
    ({"a": 0, "b": -30}, {"a", "b"}),  # b's host clock runs 30 s ahead: it sets no bar for a
])
async def test_directory_survives_a_registry_outage(nats_url, prefix, tmp_path, ages, alive):
    """Killing the registry's stream leader left every heartbeat unwritten for ~8 s, and the
    directory, judging by the clock alone, declared every service down (seen in the cluster
    test's log: "services alive: none"); files planned then would have gone without them."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh:
        for name, age in ages.items():
            record = ServiceRecord(name, "1", Stage.CORE, ".*", "", 10, f"svc-{name}", heartbeat=time.time() - age)
            await mesh.stores.registry.put(f"{name}.instance", encode(record))
        directory = ServiceDirectory(mesh.stores.registry, partial(kv_keys, mesh.js, mesh.names.registry_bucket))
        await directory.refresh()
    assert set(directory.services) == alive


SATURATION = 2000  # submissions


async def test_saturation_nested_archives_with_small_limits(nats_url, prefix, tmp_path):
    """2,000 archives with nested children, submitted at once, to a dispatcher that may analyse
    only 4 trees and 4 children at a time and services that take 2 tasks each: all complete
    (parents waiting for children never hold the slots those children need) and the dispatcher's
    memory stays bounded (the backlog waits in the stream, not in the dispatcher).

    Each tree is outer-N.zip → {note-N.txt, inner.zip → leaf.txt}: 4 files, the outer archive and
    its note unique, inner.zip the same in every tree (its analysis is a cache hit after the first,
    which keeps 2,000 trees affordable on a 2-core box; its children are still dispatched)."""
    inner = make_zip({"leaf.txt": b"the same leaf in every tree\n"})
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(mesh.service, CHAOS)
            tg.start_soon(mesh.service, "extract", "--concurrency", "2")
        dispatcher = await mesh.dispatcher("--max-trees", "4", "--max-children", "4")
        load = Load(client)
        submitting = anyio.CapacityLimiter(32)

        async def submit(i: int) -> None:
            outer = make_zip({"inner.zip": inner, f"note-{i}.txt": f"note {i} {uuid.uuid4().hex}\n".encode()})
            async with submitting:
                await load.submit([(f"outer-{i}.zip", outer)])

        async with anyio.create_task_group() as tg:
            for i in range(SATURATION):
                tg.start_soon(submit, i)
        with anyio.move_on_after(170):
            await load.wait_completed(SATURATION, timeout=170)
        peak = peak_rss_mib(dispatcher.pid)
        found = await load.outcome(f"saturation: {SATURATION} nested archives at once, 4 trees / 4 children at a time",
                                   timeout=5, notes=lambda _: f"dispatcher peak RSS {peak:.0f} MiB")
        for summary in found.values():
            assert summary.file_count == 4 and summary.errors == 0, to_json(summary)
            assert {n.name for n in walk(summary.files)} >= {"inner.zip", "leaf.txt"}
        assert peak < 400, f"dispatcher peak RSS {peak:.0f} MiB"



async def test_service_process_dying_on_one_type(nats_url, prefix, tmp_path):
    """A service whose process dies (as a native parser's segfault would) on every text file,
    restarted each time as compose would: each text file ends with a timeout error after its 3
    attempts; the other files of the same trees are analysed. One task at a time, so no other
    file is in the process when it dies (at concurrency 2, measured: 1 of 5 innocent files went
    down with its neighbour three times and ended with a timeout error too)."""
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        [fragile] = await mesh.instances(1, CHAOS, "--config", "die_type=text/.*", "--concurrency", "1")
        await mesh.service("extract")
        await mesh.dispatcher()
        load = Load(client)
        async with anyio.create_task_group() as tg:
            tg.start_soon(mesh.supervise, fragile)
            for i in range(3):
                archive = make_zip({f"note-{i}.txt": f"note {i} {uuid.uuid4().hex}\n".encode(), f"blob-{i}.bin": noise(512, seed=i)})
                await load.submit([(f"tree-{i}.zip", archive)])
            found = await load.outcome("service process dies on every file of one type (restarted each time)", timeout=90,
                                       notes=lambda found: (f"{fragile.restarts} restarts; {errors_of(found, ErrorType.TIMEOUT)} "
                                                            f"timeout errors recorded, one per text file"))
            tg.cancel_scope.cancel()
        for summary in found.values():
            nodes = {n.type: n for n in walk(summary.files)}
            [error] = nodes["text/plain"].errors
            assert (error.service, error.type) == ("chaos", ErrorType.TIMEOUT) and "3 attempts" in error.message
            assert nodes["unknown"].errors == [] and [r.service for r in nodes["unknown"].results] == ["chaos"]
        assert fragile.restarts >= 3 * len(found)  # every attempt on every text file killed it
