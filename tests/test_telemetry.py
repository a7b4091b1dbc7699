"""Metrics, health endpoints, structured logs and `sluice status`, against a real mesh.

Counters are process-wide (other tests in this process move them too), so each test reads them
before and after and asserts the difference, for services named only here.
"""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from prometheus_client.parser import text_string_to_metric_families

from bus import telemetry
from bus.codec import encode
from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from schemas.limits import Limits
from schemas.messages import ErrorType, ServiceRecord, Stage, SubmissionParams
from services.sdk import Result, ResultSection, ServiceBase
from sluice.cli import main
from sluice.client import Client
from sluice.logs import log_handler
from sluice.onebox import onebox
from sluice.status_cli import gather
from tests.svcs import Echo, Gated, Hanger, Raiser, make


async def get(port: int, path: str) -> tuple[int, str]:
    """GET with the standard library's client (in a thread): the status and the body, errors included."""

    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return await anyio.to_thread.run_sync(fetch)


class Metrics:
    """One scrape of /metrics, read by sample name and labels."""

    def __init__(self, text: str) -> None:
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def series(self, name: str | None = None, **labels: str) -> list:
        return [s for s in self.samples if name in (None, s.name) and labels.items() <= s.labels.items()]

    def __call__(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.series(name, **labels))


async def scrape(port: int) -> Metrics:
    status, body = await get(port, "/metrics")
    assert status == 200
    return Metrics(body)


@asynccontextmanager
async def endpoint(probes: telemetry.Probes = telemetry.PROBES) -> AsyncIterator[int]:
    """The telemetry endpoint on a free loopback port, in this test's task group, for the block."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(telemetry.serve, 0, "127.0.0.1", probes)
        yield port
        tg.cancel_scope.cancel()


async def until_in_flight(port: int, value: float) -> None:
    """The gauge drops just after the verdict is published: wait (bounded) for the scrape to show it."""
    with anyio.fail_after(10):
        while (await scrape(port))("sluice_dispatcher_submissions_in_flight") != value:
            await anyio.sleep(0.02)


async def test_counters_move_for_the_services_that_ran(nats_url, prefix):
    echo, raiser = make(Echo, "tm-echo"), make(Raiser, "tm-raiser")
    only = SubmissionParams(services=["tm-echo", "tm-raiser"])
    async with endpoint() as port, onebox(nats_url, prefix, [echo, raiser]), await Client.connect(nats_url, prefix) as client:
        before = await scrape(port)
        for _ in range(2):  # the second one finds echo's result cached (a failure is never cached)
            summary = await client.wait(await client.submit_bytes([("m.txt", b"metrics\n")], only), timeout=30)
            assert [e.service for e in summary.files[0].errors] == ["tm-raiser"]
        await until_in_flight(port, 0)
        after = await scrape(port)

    def moved(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    assert moved("sluice_service_tasks_received_total", service="tm-echo") == 1
    assert moved("sluice_service_tasks_completed_total", service="tm-echo") == 1
    assert moved("sluice_service_tasks_failed_total", service="tm-echo") == 0
    assert moved("sluice_service_execute_seconds_count", service="tm-echo") == 1
    assert moved("sluice_service_tasks_received_total", service="tm-raiser") == 2
    assert moved("sluice_service_tasks_failed_total", service="tm-raiser") == 2
    assert moved("sluice_service_tasks_completed_total", service="tm-raiser") == 0
    # The first submission's file is new to the file store, so nothing is looked up for it (nothing
    # can be cached); the second looks both services up: echo's result is there, the failure is not.
    assert moved("sluice_dispatcher_cache_misses_total", service="tm-echo") == 0
    assert moved("sluice_dispatcher_cache_hits_total", service="tm-echo") == 1
    assert moved("sluice_dispatcher_cache_misses_total", service="tm-raiser") == 1
    assert moved("sluice_dispatcher_submissions_completed_total") == 2
    assert moved("sluice_dispatcher_tree_seconds_count") == 2
    assert moved("sluice_dispatcher_stage_seconds_count", stage="CORE") == 2
    assert after("sluice_service_tasks_in_progress", service="tm-echo") == 0
    # Queue depth comes from consumer info at scrape time: the service's consumer, drained.
    depth = after.series("sluice_consumer_pending_messages", consumer="svc-tm-echo")
    assert [(s.labels["stream"], s.value) for s in depth] == [(Names(prefix).task_stream, 0)]


async def test_in_flight_gauge_and_status_while_a_submission_is_held(nats_url, prefix, capsys):
    gated = make(Gated, "tm-gated")
    async with endpoint() as port, onebox(nats_url, prefix, [gated]), await Client.connect(nats_url, prefix) as client:
        sid = await client.submit_bytes([("held.txt", b"hold me\n")])
        with anyio.fail_after(10):
            await gated.entered.wait()
        assert (await scrape(port))("sluice_dispatcher_submissions_in_flight") == 1
        with anyio.fail_after(10):  # the instance says what it runs in its next heartbeat (every 2 s)
            while True:
                assert await anyio.to_thread.run_sync(main, ["status", "--json", "--nats", nats_url, "--prefix", prefix]) == 0
                status = json.loads(capsys.readouterr().out)
                if status["services"][0]["working"]:
                    break
                await anyio.sleep(0.2)
        assert await anyio.to_thread.run_sync(main, ["status", "--nats", nats_url, "--prefix", prefix]) == 0
        table = capsys.readouterr().out
        gated.release.set()
        await client.wait(sid, timeout=30)
        await until_in_flight(port, 0)

    names = Names(prefix)
    assert "1 in flight, 0 waiting" in table and "0 dead letter(s)" in table
    assert "tm-gated" in table and f"{names.task_stream}/svc-tm-gated" in table
    assert status["prefix"] == prefix
    assert status["submissions"]["in_flight"] == 1 and status["submissions"]["waiting"] == 0
    assert status["submissions"]["dispatchers"] == 1
    assert status["dead_letters"] == 0
    [svc] = status["services"]
    assert (svc["name"], svc["stage"], svc["version"], svc["alive"]) == ("tm-gated", "CORE", "1.0", 1)
    assert (svc["queued"], svc["working"]) == (0, 1)
    assert svc["instances"][0]["alive"] and 0 <= svc["instances"][0]["heartbeat_age"] < 8
    consumers = {(c["stream"], c["name"]): c for c in status["consumers"]}
    assert consumers[(names.task_stream, "svc-tm-gated")]["ack_pending"] == 0  # tasks are not acknowledged
    assert consumers[(names.submit_stream, names.ROOT_CONSUMER)]["ack_pending"] == 1
    streams = {s["name"]: s for s in status["streams"]}
    assert streams[names.submit_stream]["messages"] == 1  # work queue: the submission stays until its verdict
    assert {names.task_stream, names.dlq_stream, f"KV_{names.registry_bucket}"} <= streams.keys()


async def test_timeouts_are_counted_by_the_service(nats_url, prefix):
    hanger = make(Hanger, "tm-hanger", timeout=0.3)
    async with endpoint() as port, onebox(nats_url, prefix, [hanger]), await Client.connect(nats_url, prefix) as client:
        before = await scrape(port)
        summary = await client.wait(await client.submit_bytes([("h.txt", b"hang\n")]), timeout=30)
        after = await scrape(port)
    assert [e.type for e in summary.files[0].errors] == [ErrorType.TIMEOUT]
    for name, expected in (("timed_out", 3), ("failed", 0), ("completed", 0)):
        metric = f"sluice_service_tasks_{name}_total"
        assert after(metric, service="tm-hanger") - before(metric, service="tm-hanger") == expected, name


async def test_results_missing_their_deadline_are_counted_by_the_dispatcher(nats_url, prefix, monkeypatch):
    """A grace of minus the timeout, and no wait allowed in a queue, make every task's deadline the
    moment it is sent: the service skips it as given up, so no result ever comes, as when an
    instance dies holding its task."""
    monkeypatch.setattr(Limits, "queue_wait", 0.0)
    hanger = make(Hanger, "tm-late", timeout=0.3)
    async with endpoint() as port, onebox(nats_url, prefix, [hanger], grace=-0.3), await Client.connect(nats_url, prefix) as client:
        before = await scrape(port)
        summary = await client.wait(await client.submit_bytes([("late.txt", b"late\n")]), timeout=30)
        after = await scrape(port)
    assert "no result within" in summary.files[0].errors[0].message
    for metric, expected in (("sluice_dispatcher_tasks_expired_total", 3), ("sluice_service_tasks_received_total", 0)):
        assert after(metric, service="tm-late") - before(metric, service="tm-late") == expected, metric


async def test_health_and_readiness(nats_url, prefix):
    async with endpoint(telemetry.Probes()) as port:  # nothing registered yet: alive, not ready
        assert await get(port, "/healthz") == (200, "ok\n")
        status, body = await get(port, "/readyz")
        assert status == 503 and json.loads(body) == {"ready": False, "components": {}}
    async with endpoint() as port:
        async with onebox(nats_url, prefix, [make(Echo, "tm-ready")]):
            status, body = await get(port, "/readyz")
            assert status == 200
            components = json.loads(body)["components"]
            assert components["svc-tm-ready"] is True and components["dispatcher"] is True
            [depth] = (await scrape(port)).series("sluice_consumer_pending_messages", consumer="svc-tm-ready")
            assert depth.value == 0
            assert (await get(port, "/nowhere"))[0] == 404
        # A stopped component leaves: not asked for readiness, its queue no longer reported.
        assert "svc-tm-ready" not in telemetry.PROBES.readiness()
        assert (await scrape(port)).series(consumer="svc-tm-ready") == []


async def test_a_component_not_ready_fails_readyz_and_bad_requests_do_not_stop_the_endpoint():
    probes = telemetry.Probes()
    with probes.registered("svc-up", lambda: True), probes.registered("svc-down", lambda: False):
        async with endpoint(probes) as port:
            status, body = await get(port, "/readyz")
            assert status == 503
            assert json.loads(body)["components"] == {"svc-up": True, "svc-down": False}
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(b"this is not HTTP\r\n\r\n")
                with anyio.fail_after(5):  # closed on us, not left hanging
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        while True:
                            await stream.receive()
            assert await get(port, "/healthz") == (200, "ok\n")


class Chatty(ServiceBase):
    """Logs from its execute (which the runner runs in a worker thread)."""

    def execute(self, request) -> None:
        logging.getLogger("tests.chatty").info("looking at %s", request.sha256[:12])
        request.result = Result([ResultSection("said something", heuristic=1)])


async def test_json_logs_carry_the_submission_id(nats_url, prefix):
    lines = io.StringIO()
    handler = log_handler(json_lines=True, stream=lines)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with onebox(nats_url, prefix, [make(Chatty, "tm-chatty")]), await Client.connect(nats_url, prefix) as client:
            sid = await client.submit_bytes([("log.txt", b"log me\n")])
            await client.wait(sid, timeout=30)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert all({"time", "level", "logger", "component", "sid", "message"} <= r.keys() for r in records)
    [said] = [r for r in records if r["logger"] == "tests.chatty"]
    assert (said["sid"], said["component"], said["level"]) == (sid, "svc-tm-chatty", "INFO")
    [done] = [r for r in records if r["message"].startswith(f"{sid} complete")]
    assert (done["sid"], done["component"]) == (sid, "dispatcher")
    assert any(r["sid"] is None for r in records)  # lines about no submission say so


def test_status_of_an_empty_prefix_says_so(nats_url, capsys):
    assert main(["status", "--nats", nats_url, "--prefix", "tnothinghere"]) == 1
    assert "nothing under prefix 'tnothinghere'" in capsys.readouterr().err


async def test_dispatcher_command_serves_the_endpoint_until_sigterm(nats_url, prefix):
    """`sluice dispatcher --metrics-port 0`: the endpoint is up (its JSON log line says where), ready,
    and gone with the process after one SIGTERM."""
    command = [sys.executable, "-m", "sluice", "dispatcher", "-v", "--nats", nats_url, "--prefix", prefix, "--metrics-port", "0"]
    async with await anyio.open_process(command, stdout=subprocess.DEVNULL) as proc:
        lines = TextReceiveStream(proc.stderr)
        port = None
        with anyio.fail_after(30):
            buffered = ""
            while port is None:
                *complete, buffered = (buffered + await lines.receive()).split("\n")
                for line in complete:
                    found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
                    if found:
                        assert json.loads(line)["component"] == "sluice"
                        port = int(found.group(1))
            while (await get(port, "/readyz"))[0] != 200:  # ready once its consumers are bound
                await anyio.sleep(0.05)
        assert (await scrape(port))("sluice_dispatcher_submissions_in_flight") == 0
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await proc.wait() == 0
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", port)


async def test_status_shows_a_crashed_instance_as_stale(nats_url, prefix):
    """A registry entry whose heartbeat stopped (the instance died without removing it): listed, not alive."""
    names = Names(prefix)
    nc = await connect(nats_url)
    try:
        stores = await provision(nc.jetstream(), names)
        record = ServiceRecord(name="tm-ghost", version="2.0", stage=Stage.CORE, accepts=".*", rejects="",
                               timeout=10.0, consumer="svc-tm-ghost", heartbeat=time.time() - 60)
        await stores.registry.put("tm-ghost.host-1-abc", encode(record))
        status = await gather(nc.jetstream(), names)
    finally:
        await close(nc)
    [ghost] = status.services
    assert (ghost.name, ghost.version, ghost.alive) == ("tm-ghost", "2.0", 0)
    [instance] = ghost.instances
    assert (instance.instance, instance.alive) == ("host-1-abc", False) and instance.heartbeat_age >= 60
    assert status.submissions.in_flight == 0 and status.submissions.dispatchers == 0


def test_a_bad_log_level_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("SLUICE_LOG_LEVEL", "loud")
    assert main(["service", "list"]) == 2
    assert "SLUICE_LOG_LEVEL='loud'" in capsys.readouterr().err
