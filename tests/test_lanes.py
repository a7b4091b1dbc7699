"""A one-box's local lane (dispatcher/lanes.py): tasks handed to services in the dispatcher's own
process, without NATS, and everything else through NATS as before. Against a real nats-server."""

from __future__ import annotations

import anyio
import pytest

from bus.subjects import Names
from schemas.messages import ErrorType, ServiceRecord
from services.sdk import Result, ResultSection
from services.sdk.runner import ServiceRunner
from services.sdk.serve import run_service
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, Gated, make

pytestmark = pytest.mark.timeout(90)


async def _task_stream(client: Client, names: Names):
    return (await client.js.stream_info(names.task_stream)).state


@pytest.mark.parametrize("lane", [True, False])
async def test_a_onebox_hands_its_own_services_their_tasks_without_nats(nats_url, prefix, lane):
    names, echo = Names(prefix), make(Echo, "echo")
    async with onebox(nats_url, prefix, [echo], local_lane=lane), await Client.connect(nats_url, prefix) as client:
        summary = await client.wait(await client.submit_bytes([("a.txt", b"in process\n")]), timeout=30)
        state = await _task_stream(client, names)
        info = await client.js.consumer_info(names.task_stream, names.service_consumer("echo"))
    assert [r.service for r in summary.files[0].results] == ["echo"] and echo.executed
    if lane:  # nothing went through the task stream
        assert (state.last_seq, info.delivered.stream_seq) == (0, 0)
    else:
        assert state.last_seq >= 1 and info.delivered.stream_seq >= 1


async def test_a_service_of_another_process_gets_its_share_of_the_stage_through_nats(nats_url, prefix):
    # One stage, two services: `echo` runs beside the dispatcher, `other` on a connection of its
    # own that the dispatcher cannot call. One task message goes out, naming `other` alone: `echo`'s
    # consumer gets it too (both accept text) and skips it, so `echo` runs the file once, in-process.
    names, echo, other = Names(prefix), make(Echo, "echo"), make(Echo, "other")
    async with onebox(nats_url, prefix, [echo]) as box, await Client.connect(nats_url, prefix) as client:
        registered = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_service, other, nats_url, names, box.stop, registered)
            await registered.wait()
            await box.dispatcher.directory.wait_for({"echo", "other"})
            summary = await client.wait(await client.submit_bytes([("b.txt", b"half and half\n")]), timeout=30)
            state = await _task_stream(client, names)
            box.stop.set()
    assert sorted(r.service for r in summary.files[0].results) == ["echo", "other"]
    assert (len(echo.executed), len(other.executed)) == (1, 1)
    assert state.last_seq == 1


async def test_a_box_stopped_while_its_service_works_loses_nothing(nats_url, prefix):
    # The local task is cancelled with the box; the submission, never acknowledged, is handed
    # back and a second box finishes it.
    held = make(Gated, "gated", timeout=30.0)
    async with await Client.connect(nats_url, prefix) as client:
        with anyio.fail_after(30):
            async with onebox(nats_url, prefix, [held]):
                sid = await client.submit_bytes([("c.txt", b"stopped mid-task\n")])
                await held.entered.wait()
        again = make(Gated, "gated", timeout=30.0)
        again.release.set()
        async with onebox(nats_url, prefix, [again]):
            summary = await client.wait(sid, timeout=30)
    assert (held.calls, again.calls) == (1, 1)
    assert summary.files[0].errors == [] and [r.service for r in summary.files[0].results] == ["gated"]


class _Connection:
    def jetstream(self):
        return None


def test_the_lane_is_only_for_the_version_the_registry_names():
    # The cache files a result under the record's version, configuration and rules: an instance
    # that differs in any of them is not handed the task (it goes through NATS to one that does not).
    echo = make(Echo, "echo", config={"level": 1})
    runner = ServiceRunner(echo, _Connection(), Names("x"))
    record = runner.record()
    assert not runner.runs(record)  # not serving yet
    runner._config_hash, runner.serving = echo.manifest.config_hash, True
    assert runner.runs(record)
    for field, value in (("version", "2.0"), ("config_hash", "0" * 16), ("tool_version", "other"), ("name", "else")):
        changed = ServiceRecord(**{**{f: getattr(record, f) for f in record.__struct_fields__}, field: value})
        assert not runner.runs(changed), field



class _Huge(Echo):
    """A result too large for any NATS message (a section body of 9 MB)."""

    def execute(self, request) -> None:
        request.result = Result([ResultSection("everything", body="x" * 9_000_000)])


@pytest.mark.parametrize("lane", [True, False], ids=["in-process", "through-nats"])
async def test_a_result_too_large_for_a_message_is_an_error_either_way(nats_url, prefix, lane):
    # Through NATS the publish was refused and the task timed out three times; in-process the
    # result would have failed the cache write and the summary. Now: an error, said at once.
    huge, echo = make(_Huge, "huge", timeout=5.0), make(Echo, "echo")
    with anyio.fail_after(30):
        async with onebox(nats_url, prefix, [huge, echo], local_lane=lane), await Client.connect(nats_url, prefix) as client:
            summary = await client.wait(await client.submit_bytes([("d.txt", b"too much to say\n")]), timeout=25)
    [error] = summary.files[0].errors
    assert (error.service, error.type) == ("huge", ErrorType.CRASHED) and "over the" in error.message
    assert [r.service for r in summary.files[0].results] == ["echo"]
