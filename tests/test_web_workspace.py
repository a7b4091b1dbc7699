"""The shared workspace over real HTTP on a real mesh: search of the whole history, a page per
file, alert triage (kept in NATS KV, pushed live), and the index surviving a restart."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time

import anyio
import pytest
import pyzipper

from bus.codec import encode
from bus.provision import provision, summary_retention
from bus.publish import jetstream_publish
from schemas.messages import FileNode, HeuristicHit, ResultView, Section, Summary
from services.sdk.loader import builtin_services, load_service, service_folder
from services.sdk.manifest import load_manifest
from sluice.web.attack import techniques
from sluice.web.entropy import entropy_profile
from sluice.client import Client
from sluice.onebox import onebox
from sluice.web.history import open_history
from sluice.web.index import SubmissionIndex
from sluice.web.query import QueryError, parse
from sluice.web.strings import strings_in
from svcs import Echo, Gated, make
from test_web_api import sse_events, submit_and_see_it_finish
from webmesh import HOSTILE, web_front, web_mesh

BINARY = {"Content-Type": "application/octet-stream"}


def alert_summary(sid: str, score: int = 800) -> Summary:
    """A summary as the dispatcher publishes it, scoring at the alert threshold, with an ATT&CK id."""
    hit = HeuristicHit(3, "runs powershell", score, attack_ids=["T1059.001"])
    view = ResultView("pe", score, [Section("suspicious", heuristic=hit)])
    node = FileNode(hashlib.sha256(sid.encode()).hexdigest(), f"{sid}.exe", "executable/windows/pe32", 10, 0, score, results=[view])
    return Summary(sid, score, "highly_suspicious", [node], tags={"network.static.domain": ["evil.example"]},
                   metadata={"submitter": "mallory"}, completed_at=time.time())


async def publish_summary(client: Client, summary: Summary) -> None:
    await jetstream_publish(client.js, client.names.summary(summary.sid), encode(summary))


async def test_search_the_file_page_and_the_small_refusals(nats_url, prefix):
    async with web_mesh(nats_url, prefix) as web:
        http = web.http
        sid, _ = await submit_and_see_it_finish(http, "hostile.html", HOSTILE)
        summary = (await http.get(f"/api/submissions/{sid}")).json()
        root = summary["files"][0]
        child = root["children"][0]

        async def found(q: str) -> list[str]:
            response = await http.get("/api/submissions", params={"q": q})
            assert response.status_code == 200, response.text
            return [item["sid"] for item in response.json()["items"]]

        assert await found(child["sha256"]) == [sid]  # a file deep in the tree, by its hash
        assert await found("tag:network.static.domain=evil.example") == [sid]
        assert await found("tag:network.static.domain=good.example") == []
        assert await found("submitter:local name:inner.txt service:showcase") == [sid]
        assert await found("service:showcase submitter:someone-else") == []
        assert await found(f"score>={summary['score']} verdict:{summary['verdict']}") == [sid]
        bad = await http.get("/api/submissions", params={"q": "colour:red"})
        assert bad.status_code == 400 and "unknown field" in bad.json()["detail"]

        page = (await http.get(f"/api/files/{root['sha256']}")).json()
        assert page["name"] == "hostile.html" and page["size"] == len(HOSTILE) and page["latest_sid"] == sid
        assert [s["sid"] for s in page["submissions"]] == [sid]
        assert {r["service"] for r in page["results"]} >= {"showcase"}
        hexed = (await http.get(f"/api/files/{root['sha256']}/hex", params={"offset": 8, "length": 16})).json()
        assert bytes.fromhex(hexed["hex"]) == HOSTILE[8:24] and hexed["size"] == len(HOSTILE)
        strings = (await http.get(f"/api/files/{root['sha256']}/strings", params={"min_length": 8})).json()
        assert strings["strings"][0] == {"offset": 0, "encoding": "ascii", "text": HOSTILE.decode()}
        assert strings["next_offset"] == len(HOSTILE)
        assert (await http.get(f"/api/files/{'0' * 64}")).status_code == 404
        profile = (await http.get(f"/api/files/{root['sha256']}/entropy")).json()
        assert profile["size"] == len(HOSTILE) and profile["block_size"] == 64 and len(profile["values"]) == 2

        empty = await http.post("/api/submissions", params={"name": "empty.bin"}, content=b"", headers=BINARY)
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]
        nosuch = await http.post("/api/submissions", params={"service": "nosuch"}, content=b"x", headers=BINARY)
        assert nosuch.status_code == 400 and "no service named nosuch" in nosuch.json()["detail"]
        assert (await http.get("/api/submissions/never-submitted")).status_code == 404


async def test_a_pending_submission_is_202_not_404(nats_url, prefix):
    async with web_mesh(nats_url, prefix, services=[make(Echo, "echo")]) as web:
        async with web.http.stream("GET", "/api/stream") as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "hello"
            sid = (await web.http.post("/api/submissions", content=b"wait for me\n", headers=BINARY)).json()["sid"]
            first = await web.http.get(f"/api/submissions/{sid}")
            assert first.status_code in (200, 202)  # 202 unless it already finished
            with anyio.fail_after(60):
                async for event, payload in events:
                    if event == "submission" and json.loads(payload)["sid"] == sid:
                        break
        assert (await web.http.get(f"/api/submissions/{sid}")).status_code == 200


async def test_every_web_front_answers_202_for_a_pending_submission_and_404_for_an_unknown_one(nats_url, prefix):
    """Two fronts on one NATS: a submission made through the first is 202 on the second while it
    runs (its service is held), 200 on both once it finishes; an id nobody submitted is 404."""
    gated = make(Gated, "gated", timeout=30)
    async with web_mesh(nats_url, prefix, services=[gated]) as first, web_front(nats_url, prefix) as second:
        sid = (await first.http.post("/api/submissions", content=b"hold me\n", headers=BINARY)).json()["sid"]
        with anyio.fail_after(30):
            await gated.entered.wait()  # in flight: its one service holds it
        elsewhere = await second.http.get(f"/api/submissions/{sid}")
        assert elsewhere.status_code == 202 and elsewhere.json()["sid"] == sid
        assert (await first.http.get(f"/api/submissions/{sid}")).status_code == 202
        assert (await second.http.get("/api/submissions/never-submitted-anywhere")).status_code == 404
        async with second.http.stream("GET", "/api/stream") as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "hello"
            gated.release.set()
            with anyio.fail_after(60):
                async for event, payload in events:
                    if event == "submission" and json.loads(payload)["sid"] == sid:
                        break
        for front in (first, second):
            assert (await front.http.get(f"/api/submissions/{sid}")).status_code == 200


async def test_every_file_of_every_tree_is_found_by_md5_and_sha1_without_characterize(nats_url, prefix, tmp_path):
    """No characterize service: the index hashes the files itself (from the file store), the root
    and the file extracted from it alike, and a domain by its value; a file whose bytes are gone
    stays findable by sha256."""
    inner = b"the inner file, never seen by characterize\n"
    archive = io.BytesIO()
    with pyzipper.ZipFile(archive, "w") as zf:
        zf.writestr("inner.txt", inner)
    outer = archive.getvalue()
    async with onebox(nats_url, prefix, [load_service("extract"), make(Echo, "echo")]), \
            await Client.connect(nats_url, prefix) as client:
        sid = await client.submit_bytes([("outer.zip", outer)])
        domain_sid = await client.submit_sample("domain", "hashed.example")
        summary = await client.wait(sid, timeout=60)
        await client.wait(domain_sid, timeout=60)
        assert [c.name for c in summary.files[0].children] == ["inner.txt"]
        gone = FileNode("f" * 64, "expired.bin", "unknown", 5, 0)
        await publish_summary(client, Summary("bytes-gone", 0, "info", [gone], completed_at=time.time()))
        with open_history(tmp_path / "history.sqlite") as history:
            index = SubmissionIndex(history)
            async with anyio.create_task_group() as tg:
                tg.start_soon(index.follow, client.js, client.names)
                tg.start_soon(index.follow_digests, client.blobs)
                with anyio.fail_after(60):
                    await index.ready.wait()
                    await index.digested()
                tg.cancel_scope.cancel()

            def found(text: str) -> list[str]:
                return [row.sid for row in history.search(parse(text)).rows]

            for data in (outer, inner):
                assert found(hashlib.md5(data).hexdigest()) == [sid]
                assert found(f"sha1:{hashlib.sha1(data).hexdigest()}") == [sid]
            assert found(hashlib.md5(b"hashed.example").hexdigest()) == [domain_sid]
            assert found("f" * 64) == ["bytes-gone"] and history.undigested(10) == []


async def test_alerts_are_triaged_in_kv_and_pushed_live(nats_url, prefix):
    async with web_mesh(nats_url, prefix, services=[]) as web, await Client.connect(nats_url, prefix) as client:
        http = web.http
        async with http.stream("GET", "/api/stream") as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "hello"
            await publish_summary(client, alert_summary("alert-one"))
            await publish_summary(client, Summary("quiet-one", 0, "info", [], completed_at=time.time()))
            seen = set()
            with anyio.fail_after(30):
                async for event, payload in events:
                    seen.add(json.loads(payload)["sid"])
                    if seen == {"alert-one", "quiet-one"}:
                        break
            alerts = (await http.get("/api/alerts")).json()
            assert [(a["submission"]["sid"], a["state"], a["owner"]) for a in alerts["items"]] == [("alert-one", "new", "")]
            assert (await http.post("/api/alerts/quiet-one/triage", json={"state": "benign"})).status_code == 404

            changed = await http.post("/api/alerts/alert-one/triage", json={"state": "in_progress", "owner": "local"})
            assert changed.status_code == 200 and changed.json()["state"] == "in_progress"
            commented = await http.post("/api/alerts/alert-one/triage", json={"comment": "calls home to evil.example"})
            assert [c["text"] for c in commented.json()["comments"]] == ["calls home to evil.example"]
            assert commented.json()["state"] == "in_progress"  # a comment leaves the rest as it was
            with anyio.fail_after(30):
                async for event, payload in events:
                    if event == "triage" and json.loads(payload).get("comments"):
                        break
            assert (await http.post("/api/alerts/alert-one/triage", json={"owner": "nobody-here"})).status_code == 400
            assert (await http.post("/api/alerts/alert-one/triage", json={"state": "bogus"})).status_code == 400

        # The truth is in KV: a new web front (a fresh index) shows the same triage.
        kv = await client.js.key_value(client.names.triage_bucket)
        assert json.loads(json.dumps(__import__("msgspec").msgpack.decode((await kv.get("alert-one")).value)))["state"] == "in_progress"
        in_progress = (await http.get("/api/alerts", params={"state": "in_progress"})).json()["items"]
        assert [a["submission"]["sid"] for a in in_progress] == ["alert-one"] and in_progress[0]["comments"] == 1
        assert (await http.get("/api/alerts", params={"state": "new"})).json()["items"] == []
        found = (await http.get("/api/submissions", params={"q": "attack:T1059.001 heuristic:pe.3 submitter:mallory"})).json()
        assert [i["sid"] for i in found["items"]] == ["alert-one"]


async def test_the_index_survives_a_restart_and_catches_up_from_the_stream(nats_url, prefix, tmp_path):
    path = tmp_path / "history.sqlite"

    async def caught_up() -> tuple[int, int]:
        """(summaries applied this time, summaries in the index) once the index has caught up."""
        with open_history(path) as history:
            index = SubmissionIndex(history)
            async with await Client.connect(nats_url, prefix) as client, anyio.create_task_group() as tg:
                tg.start_soon(index.follow, client.js, client.names)
                with anyio.fail_after(30):
                    await index.ready.wait()
                tg.cancel_scope.cancel()
            return index.applied, history.count()

    async with await Client.connect(nats_url, prefix) as client:
        await provision(client.js, client.names)
        for n in range(3):
            await publish_summary(client, alert_summary(f"s{n}"))
    assert await caught_up() == (3, 3)
    async with await Client.connect(nats_url, prefix) as client:
        await publish_summary(client, alert_summary("s3"))
    assert await caught_up() == (1, 4)  # only what it missed
    path.unlink()
    assert await caught_up() == (4, 4)  # a lost index is rebuilt from the stream
    async with await Client.connect(nats_url, prefix, role="admin") as client:  # the stream itself is made again
        await client.js.delete_stream(client.names.summary_stream)
        await provision(client.js, client.names)
        await publish_summary(client, alert_summary("after-reset"))
    assert await caught_up() == (1, 1)  # an index of the old stream is not mixed with the new one


def test_the_query_language():
    q = parse('tag:network.static.domain=Evil.Example score:300..699 score<600 name:"my file.doc" type:executable/ '
              'after:2026-01-31 before:2026-01-31 attack:t1059 powershell')
    assert q.terms == ["tag:network.static.domain=evil.example", "name:my file.doc", "attack:T1059"]
    assert (q.min_score, q.max_score) == (300, 599) and q.type_branches == ["executable"] and q.words == ["powershell"]
    assert q.before - q.after == 86400
    assert parse("D41D8CD98F00B204E9800998ECF8427E").terms == ["md5:d41d8cd98f00b204e9800998ecf8427e"]
    for bad in ("colour:red", "score>>5", "verdict:evil", "after:yesterday", 'name:"open', "sha1:abc", "md5:" + "0" * 40):
        with pytest.raises(QueryError):
            parse(bad)


def test_strings_are_found_in_both_encodings_with_offsets_a_window_at_a_time():
    data = b"\x00\x01hello world\x00\x00" + "wide string".encode("utf-16-le") + b"\xff" * 10 + b"second window here"
    found, more = strings_in(data, 0, 30)
    assert [(s.offset, s.encoding, s.text) for s in found] == [(2, "ascii", "hello world"), (15, "utf-16le", "wide string")]
    assert not more
    later, _ = strings_in(data, 30, len(data))
    assert [s.text for s in later] == ["second window here"]


def protected_zip(password: bytes) -> bytes:
    out = io.BytesIO()
    with pyzipper.AESZipFile(out, "w", encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password)
        archive.writestr("payload.txt", b"the hidden payload\n")
    return out.getvalue()


async def test_resubmit_with_an_archive_password_from_the_manifest(nats_url, prefix):
    async with web_mesh(nats_url, prefix, services=[load_service("extract")]) as web:
        http = web.http
        forms = {f["name"]: f for f in (await http.get("/api/services/params")).json()}
        assert [p["name"] for p in forms["extract"]["params"]] == ["password"]
        sid, row = await submit_and_see_it_finish(http, "locked.zip", protected_zip(b"not-in-any-list-42"))
        assert row["file_count"] == 1  # nothing could be extracted without the password

        refused = await http.post(f"/api/submissions/{sid}/resubmit", json={"service_params": {"extract": {"pasword": "x"}}})
        assert refused.status_code == 400 and "takes no parameter 'pasword'" in refused.json()["detail"]
        wrong_type = await http.post(f"/api/submissions/{sid}/resubmit", json={"service_params": {"extract": {"password": 42}}})
        assert wrong_type.status_code == 400 and "is a str" in wrong_type.json()["detail"]
        assert (await http.post(f"/api/submissions/{sid}/resubmit", json={"services": ["nosuch"]})).status_code == 400

        async with http.stream("GET", "/api/stream") as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "hello"
            again = await http.post(f"/api/submissions/{sid}/resubmit", json={
                "ignore_cache": True, "services": ["extract"], "service_params": {"extract": {"password": "not-in-any-list-42"}}})
            assert again.status_code == 201, again.text
            new_sid = again.json()["sid"]
            with anyio.fail_after(60):
                async for event, payload in events:
                    if event == "submission" and json.loads(payload)["sid"] == new_sid:
                        break
        tree = (await http.get(f"/api/submissions/{new_sid}")).json()
        assert [c["name"] for c in tree["files"][0]["children"]] == ["payload.txt"]
        assert tree["metadata"]["resubmitted_from"] == sid


def test_every_attack_id_a_built_in_service_declares_has_a_name():
    declared = {a for name in builtin_services() for h in load_manifest(service_folder(name) / "service_manifest.yml").heuristics
                for a in h.attack_ids}
    assert declared and not declared - techniques().keys()


async def test_the_history_retention_is_configurable_by_age_and_size(nats_url, prefix, monkeypatch):
    monkeypatch.setenv("SLUICE_SUMMARY_MAX_AGE_DAYS", "30")
    monkeypatch.setenv("SLUICE_SUMMARY_MAX_BYTES", "50000000")
    async with await Client.connect(nats_url, prefix, role="admin") as client:
        await provision(client.js, client.names)
        config = (await client.js.stream_info(client.names.summary_stream)).config
        assert (config.max_age, config.max_bytes) == (30 * 86400, 50_000_000)
    monkeypatch.setenv("SLUICE_SUMMARY_MAX_AGE_DAYS", "0")  # forever
    monkeypatch.setenv("SLUICE_SUMMARY_MAX_BYTES", "soon")
    with pytest.raises(ValueError, match="SLUICE_SUMMARY_MAX_BYTES"):
        summary_retention()


def test_the_entropy_profile_draws_a_curve_for_small_and_large_files_alike():
    block, values = entropy_profile(bytes(1000) + secrets.token_bytes(3000))
    assert block == 64 and len(values) == 63 and values[0] == 0.0 and min(values[20:]) > 4.5  # 64 random bytes: at most 6 bits
    big = secrets.token_bytes(1 << 20)
    block, values = entropy_profile(big)
    assert block == 4096 and len(values) == 256 and all(v > 7.9 for v in values)
    assert entropy_profile(b"") == (0, [])
