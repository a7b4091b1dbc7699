"""The mesh end to end, against a real nats-server: routing, trees, limits, failures, cache."""

from __future__ import annotations

import io
import tarfile
import zipfile

import anyio
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from bus.connect import close, connect
from bus.provision import provision, service_filters
from bus.subjects import Names

from schemas.limits import Limits
from schemas.messages import ErrorType, SubmissionParams, walk
from sluice.client import Client
from services.sdk.approval import approval_for
from sluice.onebox import onebox
from svcs import Dropper, Echo, Flaky, Gated, Hanger, Raiser, Slow, make

pytestmark = pytest.mark.timeout(90)
# A one-box hands its own services their tasks in-process (dispatcher/lanes.py); tests of how
# tasks fail, wait and are retried run both ways.
BOTH_WAYS = pytest.mark.parametrize("lane", [True, False], ids=["in-process", "through-nats"])


def zip_of(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def targz_of(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def scan(nats_url: str, prefix: str, services, files: dict[str, bytes], params: SubmissionParams | None = None,
               times: int = 1, **kwargs):
    """Run a one-box mesh with `services`, submit `files` as one submission `times` times, return the summaries."""
    async with onebox(nats_url, prefix, services, **kwargs), await Client.connect(nats_url, prefix) as client:
        summaries = []
        for _ in range(times):
            sid = await client.submit_bytes(files.items(), params)
            summaries.append(await client.wait(sid, timeout=60))
        return summaries


async def test_plain_file(nats_url, prefix):
    echo = make(Echo, "echo")
    [summary] = await scan(nats_url, prefix, [echo], {"hello.txt": b"hello world\n"})
    [node] = summary.files
    assert (node.name, node.type, node.depth, node.score) == ("hello.txt", "text/plain", 0, 100)
    assert [r.service for r in node.results] == ["echo"]
    assert node.results[0].sections[0].heuristic.name == "echo hit"
    assert (summary.score, summary.verdict) == (100, "info")
    assert summary.tags == {"file.name.extracted": ["hello.txt"]}


async def test_nested_archives_give_the_full_tree(nats_url, prefix):
    note = b"see http://example.com/payload\n"
    inner = targz_of(**{"note.txt": note})
    middle = zip_of(**{"inner.tar.gz": inner})
    outer = zip_of(**{"middle.zip": middle, "readme.txt": b"top level\n"})
    echo = make(Echo, "echo")
    [summary] = await scan(nats_url, prefix, ["extract", echo], {"outer.zip": outer})
    [root] = summary.files
    assert root.type == "archive/zip" and root.dropped  # extract drops archives after extracting
    by_name = {n.name: n for n in walk(summary.files)}
    assert set(by_name) == {"outer.zip", "middle.zip", "readme.txt", "inner.tar.gz", "note.txt"}
    assert by_name["note.txt"].depth == 3 and by_name["note.txt"].type == "text/plain"
    assert [c.name for c in by_name["inner.tar.gz"].children] == ["note.txt"]
    assert by_name["note.txt"].results[0].service == "echo"
    assert summary.file_count == 5 and summary.errors == 0


async def test_depth_limit_is_an_error_not_silence(nats_url, prefix):
    outer = zip_of(**{"middle.zip": zip_of(**{"deep.txt": b"deep\n"})})
    [summary] = await scan(nats_url, prefix, ["extract"], {"outer.zip": outer}, SubmissionParams(max_depth=1))
    middle = summary.files[0].children[0]
    assert middle.depth == 1 and middle.children == []
    [error] = middle.errors
    assert error.type == ErrorType.MAX_DEPTH and "deep.txt" in error.message


async def test_files_per_tree_limit(nats_url, prefix):
    archive = zip_of(**{f"f{i}.txt": f"file {i}\n".encode() for i in range(5)})
    [summary] = await scan(nats_url, prefix, ["extract"], {"a.zip": archive}, SubmissionParams(max_files=3))
    root = summary.files[0]
    assert len(root.children) == 2  # the root itself counts as one of the 3
    assert [e.type for e in root.errors] == [ErrorType.MAX_FILES]


async def test_duplicate_child_is_not_analysed_twice(nats_url, prefix):
    same = b"the same bytes\n"
    archive = zip_of(**{"a.txt": same, "copy-of-a.txt": same, "b.zip": zip_of(**{"again.txt": same})})
    echo = make(Echo, "echo")
    [summary] = await scan(nats_url, prefix, ["extract", echo], {"dup.zip": archive})
    nodes = list(walk(summary.files))
    analysed = [n for n in nodes if n.name.endswith(".txt") and not n.duplicate]
    duplicates = [n for n in nodes if n.duplicate]
    assert len(analysed) == 1 and len(duplicates) == 2
    assert echo.executed.count(analysed[0].sha256) == 1


@BOTH_WAYS
async def test_service_that_raises_is_an_error_on_that_file(nats_url, prefix, lane):
    echo, raiser = make(Echo, "echo"), make(Raiser, "raiser")
    [summary] = await scan(nats_url, prefix, [echo, raiser], {"x.bin": b"\x00\x01\x02" * 10}, local_lane=lane)
    [node] = summary.files
    [error] = node.errors
    assert (error.service, error.type) == ("raiser", ErrorType.CRASHED)
    assert "always fails" in error.message
    assert [r.service for r in node.results] == ["echo"]  # the rest of the file's analysis stands


@BOTH_WAYS
async def test_recoverable_error_is_retried(nats_url, prefix, lane):
    flaky = make(Flaky, "flaky", config={"failures": 2})
    [summary] = await scan(nats_url, prefix, [flaky], {"x.txt": b"try again\n"}, local_lane=lane)
    assert flaky.calls == 3
    assert summary.files[0].errors == [] and summary.files[0].results[0].sections[0].title == "worked"


@BOTH_WAYS
async def test_hanging_service_times_out_after_three_attempts(nats_url, prefix, lane):
    hanger, echo = make(Hanger, "hanger", timeout=0.3), make(Echo, "echo")
    with anyio.fail_after(30):
        [summary] = await scan(nats_url, prefix, [hanger, echo], {"x.txt": b"hang\n"}, grace=0.5, local_lane=lane)
    [error] = summary.files[0].errors
    assert (error.service, error.type) == ("hanger", ErrorType.TIMEOUT)
    assert hanger.calls == 3
    assert summary.files[0].results[0].service == "echo"


@BOTH_WAYS
async def test_a_task_waiting_in_a_busy_queue_is_not_timed_out(nats_url, prefix, lane):
    # One instance taking one task at a time, 0.3 s each, ten files at once: the last waits about
    # 3 s in its queue, twice its timeout and grace. Before, each task's time ran from when it
    # was sent, so the files at the back were retried (a second copy behind the first) and
    # executed twice or given up; now a task's time starts once the service is handed it.
    slow = make(Slow, "slow", timeout=1.0, config={"seconds": 0.3})
    files = [(f"q{i}.txt", f"queued {i}\n".encode()) for i in range(10)]
    with anyio.fail_after(60):
        async with onebox(nats_url, prefix, [slow], grace=0.5, local_lane=lane), await Client.connect(nats_url, prefix) as client:
            sids = [await client.submit_bytes([file]) for file in files]
            done = await client.wait_all(sids, timeout=30)
    assert len(done) == len(files)
    assert [n.errors for s in done.values() for n in s.files] == [[]] * len(files)
    assert sorted(slow.executed) == sorted({n.sha256 for s in done.values() for n in s.files})  # each once


@BOTH_WAYS
async def test_a_task_stuck_behind_a_hung_one_still_ends(nats_url, prefix, monkeypatch, lane):
    # The queue's one slot is held by a task that never finishes: the file behind it is given up
    # after Limits.queue_wait (a timeout, after its attempts), not waited for forever.
    monkeypatch.setattr(Limits, "queue_wait", 0.5)
    gated = make(Gated, "gated", timeout=30.0)
    with anyio.fail_after(60):
        async with onebox(nats_url, prefix, [gated], grace=0.5, local_lane=lane), await Client.connect(nats_url, prefix) as client:
            first = await client.submit_bytes([("held.txt", b"held\n")])
            await gated.entered.wait()
            stuck = await client.wait(await client.submit_bytes([("stuck.txt", b"stuck\n")]), timeout=30)
            [error] = stuck.files[0].errors
            assert (error.service, error.type) == ("gated", ErrorType.TIMEOUT) and gated.calls == 1
            gated.release.set()
            assert (await client.wait(first, timeout=30)).files[0].errors == []


async def test_tasks_are_not_acknowledged_unless_an_earlier_consumer_wants_it(nats_url, prefix):
    # One message per service and file saved (the dispatcher's retry is what recovers a lost
    # task); a consumer an earlier release made (acks on: its policy cannot change) keeps them.
    names, echo = Names(prefix), make(Echo, "echo")
    async with onebox(nats_url, prefix, [echo], local_lane=False), await Client.connect(nats_url, prefix) as client:
        await client.wait(await client.submit_bytes([("a.txt", b"not acked\n")]), timeout=30)
        info = await client.js.consumer_info(names.task_stream, names.service_consumer("echo"))
    assert info.config.ack_policy == AckPolicy.NONE and info.delivered.stream_seq >= 1

    older = Names(prefix + "o")
    nc = await connect(nats_url)
    js = nc.jetstream()
    try:
        await provision(js, older)
        await js.add_consumer(older.task_stream, ConsumerConfig(
            durable_name=older.service_consumer("echo"), filter_subjects=service_filters(older, approval_for(echo.manifest)),
            ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=3))
        async with onebox(nats_url, older.prefix, [echo], local_lane=False), await Client.connect(nats_url, older.prefix) as client:
            await client.wait(await client.submit_bytes([("b.txt", b"acked\n")]), timeout=30)
            with anyio.fail_after(10):
                while (info := await js.consumer_info(older.task_stream, older.service_consumer("echo"))).num_ack_pending:
                    await anyio.sleep(0.05)  # the ack follows the result; wait for it, bounded
        assert info.config.ack_policy == AckPolicy.EXPLICIT and info.ack_floor.stream_seq == info.delivered.stream_seq >= 1
    finally:
        await close(nc)


async def test_cache_hit_on_resubmit_and_ignore_cache(nats_url, prefix):
    echo = make(Echo, "echo")
    first, second = await scan(nats_url, prefix, [echo], {"c.txt": b"cache me\n"}, times=2)
    assert not first.files[0].results[0].cached and second.files[0].results[0].cached
    assert second.cached_results == 1 and len(echo.executed) == 1
    assert second.score == first.score
    [third] = await scan(nats_url, prefix, [echo], {"c.txt": b"cache me\n"}, SubmissionParams(ignore_cache=True))
    assert not third.files[0].results[0].cached and len(echo.executed) == 2


async def test_filter_drop_skips_later_stages(nats_url, prefix):
    dropper, echo = make(Dropper, "dropper", stage="FILTER"), make(Echo, "echo")
    [summary] = await scan(nats_url, prefix, [dropper, echo], {"d.txt": b"drop me\n"})
    [node] = summary.files
    assert node.dropped and [r.service for r in node.results] == ["dropper"]
    assert echo.executed == []


async def test_selected_service_not_running_is_reported(nats_url, prefix):
    echo = make(Echo, "echo")
    [summary] = await scan(nats_url, prefix, [echo], {"s.txt": b"select\n"}, SubmissionParams(services=["echo", "nosuch"]))
    [error] = summary.files[0].errors
    assert (error.service, error.type) == ("nosuch", ErrorType.SERVICE_DOWN)


async def test_alert_at_threshold(nats_url, prefix):
    echo = make(Echo, "echo")
    async with onebox(nats_url, prefix, [echo], alert_threshold=100), await Client.connect(nats_url, prefix) as client:
        alerts = client.watch(alerts=True)
        first = anyio.Event()
        got = []

        async def collect():
            async for summary in alerts:
                got.append(summary)
                first.set()
                return

        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            await anyio.sleep(0)  # let the watch subscribe before submitting
            with anyio.fail_after(5):
                while not client.nc.is_connected:
                    await anyio.sleep(0.01)
            sid = await client.submit_bytes([("a.txt", b"alert\n")])
            with anyio.fail_after(30):
                await first.wait()
        assert got[0].sid == sid and got[0].score >= 100
