"""Clients ride through a JetStream leader election: nothing the user started is lost or doubled.

A 3-node cluster (`bus.cluster.LoopbackCluster`, what `sluice up --cluster 3` runs), the
dispatcher and the fault suite's `chaos` service as OS processes, and the client as the user
runs it: `sluice scan`, `sluice submit` and the web front, each a process of its own given all
three URLs. The submit stream's leader is SIGKILLed while files are being stored and submitted
(and, for `scan`, the summary stream's leader while it waits); every file must get exactly one
verdict, the command must exit 0, and nothing may print a traceback. When a majority of the
cluster stays down, the command gives up after its patience with one line saying what it could
not reach. The counts go to the fault table (tests/faultload.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from nats.errors import NoRespondersError

from bus.cluster import LoopbackCluster
from bus.codec import encode
from bus.embedded import free_port
from bus.provision import as_admin, provision
from bus.retry import PATIENCE_ENV, Unreachable, patiently
from bus.subjects import Names
from schemas.messages import Summary
from sluice import client as client_module
from sluice.client import Client
from faultload import Load
from procs import ROOT, Mesh
from test_faults import CHAOS

pytestmark = pytest.mark.timeout(300)

FILES = 300
ANALYSIS = ("--config", "delay=0.2")  # 300 files at 0.2 s on 2 instances x 2: ~15 s of waiting to fault


class Cli:
    """`python -m sluice ARGS` with stdout and stderr in files of their own (stdout is parsed)."""

    def __init__(self, tmp_path: Path, label: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.out, self.err = tmp_path / f"{label}.out", tmp_path / f"{label}.err"
        self.argv, self.env = argv, {**os.environ, **(env or {})}
        self.proc = None

    async def start(self) -> None:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = await anyio.open_process([sys.executable, "-m", "sluice", *self.argv], cwd=ROOT, stdin=None,
                                                 stdout=out, stderr=err, env=self.env, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def lines(self) -> list[str]:
        """Complete lines written so far (a line being written is not one yet)."""
        return self.out.read_text().splitlines(keepends=True) if self.out.exists() else []

    def stderr(self) -> str:
        return self.err.read_text()

    async def wait(self, timeout: float) -> int:
        try:
            with anyio.fail_after(timeout):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"sluice {self.argv[0]} did not finish in {timeout:g} s; stderr:\n{self.stderr()[-3000:]}") from None


def write_files(folder: Path, count: int) -> list[Path]:
    """Small unique text files: no two share a cache entry."""
    folder.mkdir()
    paths = [folder / f"file-{i:04d}.txt" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_text(f"file {i} {uuid.uuid4().hex}\n")
    return paths


async def stored(client: Client, stream: str) -> int:
    """Messages ever stored on `stream` (its last sequence), asked patiently: a node may be down."""
    return (await patiently(f"info of {stream}", lambda: client.js.stream_info(stream))).state.last_seq


async def leader(client: Client, stream: str) -> str:
    return (await patiently(f"info of {stream}", lambda: client.js.stream_info(stream))).cluster.leader


async def until(condition, timeout: float, what: str) -> None:
    try:
        with anyio.fail_after(timeout):
            while not await condition():
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"waited {timeout:g} s for {what}") from None


async def kill_leader(cluster: LoopbackCluster, client: Client, stream: str) -> tuple[str, float]:
    node = await leader(client, stream)
    await cluster.server(node).kill()
    return node, time.monotonic()


def no_traceback(cli: Cli) -> None:
    assert "Traceback" not in cli.stderr(), cli.stderr()[-3000:]


async def test_scan_rides_through_the_submit_and_summary_leaders_dying(tmp_path):
    prefix = "t" + uuid.uuid4().hex[:8]
    names = Names(prefix)
    paths = write_files(tmp_path / "files", FILES)
    async with LoopbackCluster(3, data_dir=tmp_path / "cluster") as cluster:
        async with Mesh(cluster.url, prefix, tmp_path, replicas=3) as mesh, await Client.connect(cluster.url, prefix) as client:
            await mesh.instances(2, CHAOS, *ANALYSIS)
            await mesh.dispatcher()
            scan = Cli(tmp_path, "scan", ["scan", "--json", "--timeout", "240", "--nats", cluster.url, "--prefix", prefix,
                                          str(tmp_path / "files")])
            await scan.start()
            load = Load(client)  # its clock starts with the scan
            await until(lambda: _at_least(client, names.submit_stream, 30), 60, "the first submissions")  # mid-submit
            before = await stored(client, names.submit_stream)
            node, killed_at = await kill_leader(cluster, client, names.submit_stream)
            assert before < FILES and scan.running, "the scan had submitted everything before the kill: it missed"
            await until(lambda: _at_least(client, names.submit_stream, before + 1), 60, "a submission after the kill")
            stalled = time.monotonic() - killed_at
            await cluster.restart(node)

            await until(lambda: _at_least(client, names.submit_stream, FILES), 120, "every submission")
            done = await stored(client, names.summary_stream)
            second, _ = await kill_leader(cluster, client, names.summary_stream)
            assert done < FILES and scan.running, "every verdict was in before the second kill: it missed the wait"
            await anyio.sleep(2)  # the election under way while the scan waits (its summary subscription must follow)
            await cluster.restart(second)

            code = await scan.wait(240)
            no_traceback(scan)
            assert code == 0, scan.stderr()[-3000:]
            summaries = [json.loads(line) for line in scan.lines()]
            assert sorted(s["files"][0]["name"] for s in summaries) == sorted(p.name for p in paths)
            load.sent = [s["sid"] for s in summaries]
            await load.outcome("client: `sluice scan` of 300 files, submit leader SIGKILLed while submitting, "
                               "summary leader while waiting (3-node cluster)", timeout=60,
                               notes=lambda _: f"submitting stalled {stalled:.1f} s at the first kill; exit 0, no traceback")


async def _at_least(client: Client, stream: str, count: int) -> bool:
    return await stored(client, stream) >= count


async def test_web_upload_rides_through_the_submit_leader_dying(tmp_path):
    prefix = "t" + uuid.uuid4().hex[:8]
    names = Names(prefix)
    uploads = 100
    async with LoopbackCluster(3, data_dir=tmp_path / "cluster") as cluster:
        async with Mesh(cluster.url, prefix, tmp_path, replicas=3) as mesh, await Client.connect(cluster.url, prefix) as client:
            await mesh.instances(2, CHAOS)
            await mesh.dispatcher()
            port = free_port()
            web = Cli(tmp_path, "web", ["web", "--bind", f"127.0.0.1:{port}", "--nats", cluster.url, "--prefix", prefix])
            await web.start()
            sids, slowest, load = [], 0.0, Load(client)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                await until(lambda: _answers(http), 60, "the web front")
                http.headers["X-CSRF-Token"] = (await http.get("/api/me")).json()["csrf"]  # the local user's
                for i in range(uploads):
                    if i == 20:
                        node, _ = await kill_leader(cluster, client, names.submit_stream)
                    started = time.monotonic()
                    response = await http.post("/api/submissions", params={"name": f"upload-{i}.txt"},
                                               content=f"upload {i} {uuid.uuid4().hex}\n".encode(),
                                               headers={"content-type": "application/octet-stream"})
                    slowest = max(slowest, time.monotonic() - started)
                    assert response.status_code == 201, response.text
                    sids.append(response.json()["sid"])
            await cluster.restart(node)
            web.proc.send_signal(signal.SIGTERM)
            await web.wait(30)
            no_traceback(web)
            load.sent = sids
            await load.outcome("client: 100 uploads through the web front, submit leader SIGKILLed after 20 "
                               "(3-node cluster)", timeout=90,
                               notes=lambda _: f"every upload 201; the slowest took {slowest:.1f} s (the election)")


async def _answers(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/api/limits")).status_code < 500
    except httpx.TransportError:
        return False


async def test_submit_json_interrupted_then_rerun_analyses_nothing_twice(nats_url, prefix, tmp_path):
    """`sluice submit --json` writes each submission as it is accepted: cut off by Ctrl-C, what it
    printed is what went through; run again, the cache answers for the files already analysed."""
    markers = tmp_path / "markers"
    markers.mkdir()
    paths = write_files(tmp_path / "files", 120)
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        await mesh.service(CHAOS, "--config", f"marker_dir={markers}")
        await mesh.dispatcher()
        argv = ["submit", "--json", "--nats", nats_url, "--prefix", prefix, str(tmp_path / "files")]
        first = Cli(tmp_path, "first", argv)
        await first.start()
        await until(lambda: _lines(first, 10), 60, "ten accepted submissions")
        first.proc.send_signal(signal.SIGINT)
        assert await first.wait(30) == 130
        no_traceback(first)
        assert first.stderr().strip().endswith("sluice: interrupted")
        went_through = [json.loads(line) for line in first.lines()]  # every line whole: written and flushed at once
        assert 10 <= len(went_through) < len(paths), "the interrupt came too late to cut the run off"
        for line in went_through:
            assert set(line) == {"sid", "path"}
        await client.wait_all([line["sid"] for line in went_through], timeout=60)

        again = Cli(tmp_path, "again", argv)
        await again.start()
        assert await again.wait(120) == 0
        no_traceback(again)
        resubmitted = [json.loads(line) for line in again.lines()]
        assert sorted(line["path"] for line in resubmitted) == sorted(str(p) for p in paths)
        done = await client.wait_all([line["sid"] for line in resubmitted], timeout=120)
        assert len(done) == len(paths)
        by_path = {line["path"]: done[line["sid"]] for line in resubmitted}
        for line in went_through:
            assert by_path[line["path"]].cached_results == 1, "a file analysed in the first run was analysed again"
        analysed = [p.name.split("-", 1)[1] for p in markers.iterdir()]
        assert len(analysed) == len(set(analysed)) == len(paths), "some file was analysed twice (or not at all)"


async def _lines(cli: Cli, count: int) -> bool:
    return len(cli.lines()) >= count


async def test_a_lost_majority_is_one_line_and_exit_3(tmp_path):
    """Two of three nodes down: connecting works, JetStream cannot answer. The command gives up
    after its patience ($SLUICE_NATS_PATIENCE, here 3 s) saying what it could not do, no traceback."""
    sample = tmp_path / "sample.txt"
    sample.write_text("a file\n")
    async with LoopbackCluster(3, data_dir=tmp_path / "cluster") as cluster:
        for server in cluster.servers[1:]:
            await server.kill()
        submit = Cli(tmp_path, "submit", ["submit", "--nats", cluster.url, str(sample)], env={PATIENCE_ENV: "3"})
        started = time.monotonic()
        await submit.start()
        assert await submit.wait(60) == 3
        took = time.monotonic() - started
        [line] = submit.stderr().splitlines()
        assert line.startswith("sluice: ") and "NATS did not answer for" in line, line
        assert submit.lines() == []  # nothing claims to have gone through
        assert took < 30, f"gave up only after {took:.0f} s"


async def test_a_summary_the_subscription_missed_is_found_in_the_stream(nats_url, prefix, monkeypatch):
    """The summary subscription can miss a summary while its consumer is re-created in an
    election; a wait must not then last until its timeout. Simulated: the subscription is gone,
    the summary is published straight to the stream; wait_all finds it once things go quiet."""
    monkeypatch.setattr(client_module, "QUIET", 0.3)
    async with await Client.connect(nats_url, prefix) as client:
        await client._sub.unsubscribe()
        client._sub = None
        summary = Summary(sid=uuid.uuid4().hex, score=0, verdict="safe", files=[])
        await client.js.publish(client.names.summary(summary.sid), encode(summary))
        started = time.monotonic()
        done = await client.wait_all([summary.sid], timeout=30)
        assert done[summary.sid].sid == summary.sid
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("many", [False, True], ids=["wait", "wait_all"])
async def test_a_wait_for_ones_own_submission_looks_it_up_when_things_go_quiet(nats_url, prefix, monkeypatch, many):
    """As above, for a submission this client made (its verdict is expected on the subscription,
    so it is not looked up at once): once the subscription has been quiet for QUIET s, the waiter
    reads the stream itself instead of waiting out its timeout."""
    monkeypatch.setattr(client_module, "QUIET", 0.3)
    async with await Client.connect(nats_url, prefix) as client:
        sid = await client.submit_sample("domain", "example.com")  # no dispatcher here: it stays unanswered
        await client._sub.unsubscribe()
        client._sub = None
        await client.js.publish(client.names.summary(sid), encode(Summary(sid=sid, score=0, verdict="safe", files=[])))
        started = time.monotonic()
        summary = (await client.wait_all([sid], timeout=30))[sid] if many else await client.wait(sid, timeout=30)
        assert summary.sid == sid and summary.verdict == "safe"
        assert 0.3 <= time.monotonic() - started < 10


async def test_patiently_retries_transient_failures_then_says_what_it_could_not_do():
    attempts = []

    async def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise NoRespondersError
        return "stored"

    assert await patiently("storing x", flaky, patience=5) == "stored"
    assert len(attempts) == 3 and attempts[2] - attempts[1] > attempts[1] - attempts[0]  # backing off

    async def down() -> None:
        raise NoRespondersError

    with pytest.raises(Unreachable, match=r"^storing y: NATS did not answer for 0 s \(last error: nats: no responders"):
        await patiently("storing y", down, patience=0.5)

    async def refused() -> None:
        raise ValueError("not transient")

    with pytest.raises(ValueError):  # a real error is the caller's at once, not retried
        await patiently("storing z", refused)


async def test_web_upload_past_the_patience_is_a_503_saying_why(tmp_path):
    """The web front up, then two of three nodes lost: an upload waits out its patience (here 3 s)
    and answers 503 with the one line a command would print, and the server prints no traceback."""
    prefix = "t" + uuid.uuid4().hex[:8]
    async with LoopbackCluster(3, data_dir=tmp_path / "cluster") as cluster:
        # As deployed: R3, so two lost nodes are a lost majority (creating R3 streams on a busy box can time out).
        await patiently("provisioning at R3", lambda: as_admin(cluster.url, lambda js: provision(js, Names(prefix), replicas=3)))
        port = free_port()
        web = Cli(tmp_path, "web", ["web", "--bind", f"127.0.0.1:{port}", "--nats", cluster.url, "--prefix", prefix],
                  env={PATIENCE_ENV: "3"})
        await web.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            await until(lambda: _answers(http), 60, "the web front")
            http.headers["X-CSRF-Token"] = (await http.get("/api/me")).json()["csrf"]  # the local user's
            for server in cluster.servers[1:]:
                await server.kill()
            response = await http.post("/api/submissions", params={"name": "late.txt"}, content=b"late\n",
                                       headers={"content-type": "application/octet-stream"})
        web.proc.send_signal(signal.SIGTERM)
        await web.wait(30)
        assert response.status_code == 503, response.text
        assert "NATS did not answer for" in response.json()["detail"]
        no_traceback(web)


async def test_a_placement_refused_for_an_offline_peer_is_retried_and_no_other_bad_request():
    from nats.js.errors import BadRequestError

    from bus.retry import patiently

    offline = BadRequestError(code=400, err_code=10005, description="no suitable peers for placement, peer offline")
    calls: list[int] = []

    async def places_on_the_second_try() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise offline
        return "placed"

    assert await patiently("placing", places_on_the_second_try, patience=5) == "placed" and len(calls) == 2
    too_many = BadRequestError(code=400, err_code=10005, description="no suitable peers for placement")

    async def never_fits() -> None:
        raise too_many

    with pytest.raises(BadRequestError):
        await patiently("placing", never_fits, patience=5)
