"""The web front's REST API against a real mesh on a real nats-server, over real HTTP (Hypercorn)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import httpx
import pytest
import pyzipper
import schemathesis
from hypothesis import settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from schemas.messages import ErrorType, FileNode, ServiceError, Summary
from services.sdk.loader import builtin_services
from sluice.cli import main
from sluice.client import Client
from sluice.neuter import unpack_cart
from sluice.onebox import onebox
from sluice.web.api import attachment
from sluice.web.app import create_app
from sluice.web.history import open_history
from sluice.web.index import LISTENER_BACKLOG, SubmissionIndex
from sluice.web.query import parse
from sluice.web.serve import listen, url_of
from sluice.web.status import service_status
from svcs import Echo, make
from webmesh import HOSTILE, web_mesh

BINARY = {"Content-Type": "application/octet-stream"}


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


async def submit_and_see_it_finish(http: httpx.AsyncClient, name: str, data: bytes) -> tuple[str, dict]:
    """Submit through the API with the live stream open; return the sid and the row the stream announced."""
    async with http.stream("GET", "/api/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream)
        with anyio.fail_after(10):
            assert (await anext(events))[0] == "hello"  # listening before the submission: nothing can slip by
        response = await http.post("/api/submissions", params={"name": name}, content=data, headers=BINARY)
        assert response.status_code == 201, response.text
        sid = response.json()["sid"]
        assert response.json() == {"sid": sid, "name": name, "size": len(data)}
        with anyio.fail_after(60):
            async for event, payload in events:
                row = json.loads(payload)
                if event == "submission" and row["sid"] == sid:
                    return sid, row
    raise AssertionError("the stream ended before the submission finished")


async def test_submit_watch_read_and_download(nats_url, prefix):
    async with web_mesh(nats_url, prefix) as web:
        http = web.http
        sid, row = await submit_and_see_it_finish(http, "hostile.html", HOSTILE)
        assert row["name"] == "hostile.html" and row["file_count"] == 2 and row["errors"] == 2  # raiser failed on both

        summary = (await http.get(f"/api/submissions/{sid}")).json()
        assert summary["sid"] == sid and summary["score"] == row["score"] and summary["verdict"] == row["verdict"]
        root = summary["files"][0]
        assert [child["name"] for child in root["children"]] == ["inner.txt"]
        assert root["children"][0]["relation"] == "dropped-by"
        showcase = next(r for r in root["results"] if r["service"] == "showcase")
        formats = {s.get("body_format", "TEXT") for s in showcase["sections"]}
        assert formats == {"TEXT", "KEY_VALUE", "TABLE", "JSON", "URL"}
        assert all("data" not in obj["file"] for obj in showcase["objects"])  # inline bytes are not in the page's JSON
        assert {e["service"] for n in walk_dicts(summary["files"]) for e in n.get("errors", [])} == {"raiser"}

        # Filters: each one both ways.
        async def listed(**params) -> list[str]:
            body = (await http.get("/api/submissions", params=params)).json()
            return [item["sid"] for item in body["items"]]

        assert sid in await listed()
        assert sid in await listed(verdict=summary["verdict"])
        assert sid not in await listed(verdict="malicious" if summary["verdict"] != "malicious" else "safe")
        assert sid in await listed(tag="EVIL.example") and sid not in await listed(tag="not-there")
        assert sid in await listed(file_type="text") and sid not in await listed(file_type="executable")
        assert sid in await listed(min_score=summary["score"]) and sid not in await listed(min_score=summary["score"] + 1)
        assert (await http.get("/api/submissions", params={"verdict": "bogus"})).status_code == 400

        # Downloads: always attachments, never sniffed or rendered; neutered (CaRT) unless asked otherwise.
        download = await http.get(f"/api/submissions/{sid}/files/{root['sha256']}")
        assert download.status_code == 200 and download.content != HOSTILE
        assert unpack_cart(download.content) == (HOSTILE, {"name": "hostile.html"})
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"].startswith('attachment; filename="hostile.html.cart"')
        assert download.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in download.headers["content-security-policy"]
        raw = await http.get(f"/api/submissions/{sid}/files/{root['sha256']}", params={"format": "raw"})
        assert raw.content == HOSTILE and raw.headers["content-disposition"].startswith('attachment; filename="hostile.html"')
        child = root["children"][0]
        zipped = await http.get(f"/api/submissions/{sid}/files/{child['sha256']}", params={"format": "zip"})
        with pyzipper.AESZipFile(io.BytesIO(zipped.content)) as archive:
            archive.setpassword(b"infected")
            assert archive.read("inner.txt") == b"inner file\n"
        obj = await http.get(f"/api/submissions/{sid}/object", params={"name": "said.txt", "format": "raw"})
        assert obj.status_code == 200 and obj.content == HOSTILE and obj.headers["content-disposition"].startswith("attachment")
        by_hash = await http.get(f"/api/files/{child['sha256']}/download")
        assert unpack_cart(by_hash.content)[0] == b"inner file\n"

        assert (await http.get(f"/api/submissions/{sid}/object", params={"name": "nope"})).status_code == 404
        assert (await http.get(f"/api/submissions/{sid}/files/{'0' * 64}")).status_code == 404
        assert (await http.get("/api/submissions/unknown-sid")).status_code == 404
        assert (await http.get("/api/submissions/not a sid!")).status_code == 400

        services = {s["name"]: s for s in (await http.get("/api/services")).json()}
        assert services["showcase"]["alive"] and services["showcase"]["instances"] == 1
        assert services["showcase"]["queued"] == 0 and services["showcase"]["failures"] == []
        assert {f["sid"] for f in services["raiser"]["failures"]} == {sid}
        assert {f["file"] for f in services["raiser"]["failures"]} == {"hostile.html", "inner.txt"}


def walk_dicts(nodes: list[dict]):
    for node in nodes:
        yield node
        yield from walk_dicts(node.get("children", []))


async def test_uploads_over_the_limit_are_refused_whatever_the_framing(nats_url, prefix):
    async with web_mesh(nats_url, prefix, services=[], max_upload=1000) as web:
        http = web.http
        declared = await http.post("/api/submissions", content=b"x" * 1001, headers=BINARY)
        assert declared.status_code == 413 and "1000-byte upload limit" in declared.json()["detail"]

        async def chunks():  # no Content-Length: the limit is enforced on the bytes as they arrive
            for _ in range(20):
                yield b"y" * 100

        streamed = await http.post("/api/submissions", content=chunks(), headers=BINARY)
        assert streamed.status_code == 413 and "1000-byte upload limit" in streamed.json()["detail"]

        as_form = await http.post("/api/submissions", content=b"z", headers={"Content-Type": "text/plain"})
        assert as_form.status_code == 415  # what a cross-site form could send is refused

        assert (await http.get("/api/limits")).json() == {"max_upload": 1000}  # the page checks before sending
        at_limit = await http.post("/api/submissions", content=b"x" * 1000, headers=BINARY)
        assert at_limit.status_code == 201


async def test_recent_submissions_are_backfilled_at_start(nats_url, prefix):
    async with onebox(nats_url, prefix, [make(Echo, "echo")]):
        async with await Client.connect(nats_url, prefix) as client:
            sids = []
            for name, data in (("a.txt", b"first\n"), ("b.txt", b"second\n")):  # one after the other, so
                sids.append(await client.submit_bytes([(name, data)]))        # "newest first" has one answer
                await client.wait(sids[-1], timeout=30)
    async with web_mesh(nats_url, prefix, services=[]) as web:  # starts after they finished
        body = (await web.http.get("/api/submissions")).json()
        assert [item["sid"] for item in body["items"]] == sids[::-1]  # newest first
        assert body["indexed"] == 2


async def test_page_and_static_files_carry_a_strict_policy(nats_url, prefix):
    async with web_mesh(nats_url, prefix, services=[]) as web:
        page = await web.http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
        assert '<script type="module" src="/static/app.js">' in page.text
        assert (await web.http.get("/api/openapi.json")).json() == json.loads(json.dumps(schema.raw_schema))
        for module in ("app.js", "dom.js", "workspace.js"):
            script = await web.http.get(f"/static/{module}")
            assert script.status_code == 200 and "javascript" in script.headers["content-type"]
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                assert sink not in script.text, module  # every service string goes through text nodes
        assert (await web.http.get("/static/style.css")).headers["content-security-policy"] == policy


async def test_samples_are_submitted_through_the_client(nats_url, prefix):
    async with web_mesh(nats_url, prefix, services=[]) as web:
        done = await web.http.post("/api/samples", json={"kind": "domain", "value": "example.com"})
        assert done.status_code == 201 and done.json()["kind"] == "domain"
        assert (await web.http.post("/api/samples", json={"kind": "file", "value": "x"})).status_code == 400
        assert (await web.http.post("/api/samples", json={"kind": "ip", "value": "not an ip"})).status_code == 400


async def started_web(proc: anyio.abc.Process) -> str:
    """The URL a `sluice web`/`sluice up` process says its web front listens on."""
    said = b""
    with anyio.fail_after(60):
        while not (found := re.search(rb"sluice web at (http://127\.0\.0\.1:\d+/)", said)):
            said += await proc.stderr.receive()
    return found[1].decode()


async def stop(proc: anyio.abc.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    with anyio.fail_after(30):
        assert await proc.wait() == 0


async def test_sluice_web_serves_until_sigterm_even_with_a_page_listening(nats_url, prefix):
    command = [sys.executable, "-m", "sluice", "web", "--nats", nats_url, "--prefix", prefix, "--bind", "127.0.0.1:0"]
    async with await anyio.open_process(command) as proc:
        async with httpx.AsyncClient(base_url=await started_web(proc), timeout=10) as http:
            assert (await http.get("/api/services")).status_code == 200
            async with http.stream("GET", "/api/stream") as stream:
                events = sse_events(stream)
                assert (await anext(events))[0] == "hello"
                await stop(proc)
                # The server ended the stream itself: a stream cut at the end of the grace period
                # would raise here (an incomplete chunked body) instead of ending.
                assert [event async for event in events] == []


def test_sluice_web_refuses_bad_options_clearly(nats_url, capsys):
    taken = listen("127.0.0.1:0")
    with taken:
        busy = url_of(taken).removeprefix("http://").rstrip("/")
        assert main(["web", "--nats", nats_url, "--bind", busy]) == 2
        assert "cannot listen on" in capsys.readouterr().err
    assert main(["web", "--nats", nats_url, "--bind", "nonsense"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main(["web", "--nats", nats_url, "--max-upload", "0"]) == 2
    assert "--max-upload 0" in capsys.readouterr().err


async def test_sluice_up_serves_the_web_front_beside_the_mesh(tmp_path):
    command = [sys.executable, "-m", "sluice", "up", "--data-dir", str(tmp_path / "data"), "--web", "127.0.0.1:0"]
    async with await anyio.open_process(command, env={**os.environ, "SLUICE_NATS_URL": ""}) as proc:
        async with httpx.AsyncClient(base_url=await started_web(proc), timeout=10) as http:
            services = (await http.get("/api/services")).json()
            assert {s["name"] for s in services if s["alive"]} == set(builtin_services())
        await stop(proc)


async def test_a_service_whose_instances_stopped_is_listed_as_down(nats_url, prefix, history):
    async with onebox(nats_url, prefix, [make(Echo, "echo")]), await Client.connect(nats_url, prefix) as client:
        [echo] = await service_status(client.js, client.names, SubmissionIndex(history))
        assert (echo.name, echo.alive, echo.instances, echo.version) == ("echo", True, 1, "1.0")
    # The service stopped; its consumer (and whatever waits on it) stays.
    async with await Client.connect(nats_url, prefix) as client:
        [echo] = await service_status(client.js, client.names, SubmissionIndex(history))
        assert (echo.name, echo.alive, echo.instances) == ("echo", False, 0)


def test_download_names_cannot_break_out_of_the_header():
    headers = attachment('../../evil"; filename="x.html\r\nSet-Cookie: a=b', b"x").headers
    disposition = headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "\r" not in disposition and "\n" not in disposition and disposition.count('"') == 2
    assert "sandbox" in headers["Content-Security-Policy"]


# -- the index, on its own -----------------------------------------------------------------------

def summary(sid: str, score: int = 0, file_type: str = "text/plain", tags: dict | None = None, errors=(),
            at: float | None = None) -> Summary:
    node = FileNode(hashlib.sha256(sid.encode()).hexdigest(), f"{sid}.bin", file_type, 1, 0, errors=list(errors))
    return Summary(sid, score, "suspicious" if score >= 300 else "info", [node], tags=tags or {},
                   completed_at=at if at is not None else float(len(sid)))


@pytest.fixture
def history(tmp_path):
    with open_history(tmp_path / "h.sqlite") as h:
        yield h


def test_the_history_keeps_everything_newest_first_and_a_resent_summary_replaces_its_row(history):
    history.apply([summary(sid, at=n) for n, sid in enumerate(("a", "b", "c", "d"))], last_seq=4)
    assert [r.sid for r in history.search(parse("")).rows] == ["d", "c", "b", "a"]
    history.apply([summary("b", score=500, at=9)], last_seq=5)  # published again after a dispatcher restart
    page = history.search(parse(""))
    assert [r.sid for r in page.rows] == ["b", "d", "c", "a"] and page.matched == 4 and page.rows[0].score == 500
    assert [r.sid for r in history.search(parse(""), limit=2, offset=2).rows] == ["c", "a"]
    assert history.last_seq() == 5


def test_history_filters_by_type_branch_and_tag(history):
    history.apply([summary("pe", 800, "executable/windows/pe32", {"network.static.uri": ["http://Evil.example/x"]}),
                   summary("doc", 100, "document/office/word")], last_seq=2)

    def sids(text: str) -> list[str]:
        return [row.sid for row in history.search(parse(text)).rows]

    assert sids("type:executable") == ["pe"] and sids("type:executable/windows/pe32") == ["pe"]
    assert sids("type:exec") == []  # a branch of the taxonomy, not a prefix of a word
    assert sids("evil.EXAMPLE") == ["pe"] and sids("nothing") == []
    assert sids("tag:network.static.uri=http://evil.example/x") == ["pe"] and sids("tag:network.static.uri=http://evil.example") == []
    assert sids("verdict:suspicious") == ["pe"] and sids("score<=100") == ["doc"] and sids("score>100") == ["pe"]
    pe = hashlib.sha256(b"pe").hexdigest()
    assert sids(pe) == ["pe"] and sids(f"sha256:{pe.upper()}") == ["pe"] and sids(f"sha256:{'0' * 64}") == []


def test_failures_are_kept_per_service_newest_first(history):
    crash = ServiceError("pe", ErrorType.CRASHED, "boom")
    history.apply([summary("one", errors=[crash], at=1)], 1)
    history.apply([summary("two", errors=[crash, ServiceError("yara", ErrorType.TIMEOUT, "slow")], at=2)], 2)
    assert [f.sid for f in history.failures("pe")] == ["two", "one"]
    assert [(f.type, f.message) for f in history.failures("yara")] == [("timeout", "slow")]


async def test_a_listener_that_falls_behind_is_dropped_not_waited_for(history):
    index = SubmissionIndex(history)
    with index.listen() as slow, index.listen() as keeping_up:
        for n in range(LISTENER_BACKLOG + 1):
            await index.apply([summary(f"s{n}")], n + 1)
            assert (await keeping_up.receive())[1].sid == f"s{n}"
        received = [row.sid async for _, row in slow]  # ends: it was dropped when its queue was full
        assert received == [f"s{n}" for n in range(LISTENER_BACKLOG)]


# -- the OpenAPI description against what is served (schemathesis, in-process ASGI) -----------------

# The description as the app builds it; test_page_and_static_files_carry_a_strict_policy checks it is what /api/openapi.json serves.
schema = schemathesis.openapi.from_dict(create_app("nats://127.0.0.1:1").openapi_schema.to_schema())


@pytest.fixture(scope="module")
def asgi_app(nats_server):
    """The app under test; schemathesis starts it (lifespan and all) in its own event-loop thread, in-process."""
    return create_app(nats_server.url, "tschema", max_upload=4096)


@schema.exclude(path="/api/stream").parametrize()  # an endless stream; test_submit_watch_read_and_download reads it
@settings(max_examples=15, deadline=None)
def test_openapi_description_matches_what_is_served(case, asgi_app):
    # Whether a value is a well-formed URI, domain or IP is more than a JSON schema says, so a
    # schema-valid sample may rightly get a 400 naming what is wrong with it.
    # Likewise a search query is a small language (an unclosed quote, an unknown field), and an
    # upload may name a service that is not registered or be empty: all rightly refused with a 400.
    excluded = [positive_data_acceptance] if case.path in ("/api/samples", "/api/submissions") else []
    response = case.call(app=asgi_app, headers={"X-CSRF-Token": asgi_app.state.local_csrf})  # the local user's token
    if response.status_code == 413:  # a body over the size limit is refused before it is read: a rejection too
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded)
