"""Accounts, API keys, sessions, CSRF, rate limiting and audit, against a real nats-server over real HTTP.

Each attack is performed: no credentials, a wrong password, guessing past the limit, a cross-site
style POST without the CSRF token, a viewer trying to submit, a revoked and an expired key.
"""

from __future__ import annotations

import io
import json
import time

import anyio
import httpx
import msgspec
import pytest
import pyzipper
from nats.js.errors import NoStreamResponseError

import bus.publish
from bus.codec import encode
from bus.subjects import Names
from schemas.workspace import ApiKey
from sluice.cli import main
from sluice.client import Client
from sluice.neuter import Format, unpack_cart
from sluice.web_client import WebClient, WebError
from services.sdk.loader import load_service
from svcs import Echo, make
from test_web_workspace import protected_zip
from sluice.web.ratelimit import LoginThrottle
from sluice.web.stores import audit, provision_workspace
from webmesh import web_front, web_mesh

BINARY = {"Content-Type": "application/octet-stream"}
PASSWORD = "correct horse battery"


async def sluice(capsys, monkeypatch, nats_url, prefix, *args, stdin: str = "") -> str:
    """Run a `sluice` command (in a thread: it runs its own event loop) and return its stdout."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = await anyio.to_thread.run_sync(main, [*args, "--nats", nats_url, "--prefix", prefix])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


async def add_user(capsys, monkeypatch, nats_url, prefix, name: str, role: str) -> None:
    await sluice(capsys, monkeypatch, nats_url, prefix, "user", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")


async def signed_in(base: str, name: str, password: str = PASSWORD) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base, timeout=30)
    response = await http.post("/api/login", json={"user": name, "password": password})
    assert response.status_code == 200, response.text
    assert response.json()["role"] and "sluice_session" in http.cookies
    http.headers["X-CSRF-Token"] = response.json()["csrf"]
    return http


async def test_accounts_roles_csrf_keys_and_audit(nats_url, prefix, capsys, monkeypatch):
    await add_user(capsys, monkeypatch, nats_url, prefix, "alice", "admin")
    await add_user(capsys, monkeypatch, nats_url, prefix, "sam", "submitter")
    await add_user(capsys, monkeypatch, nats_url, prefix, "vic", "viewer")
    listed = json.loads(await sluice(capsys, monkeypatch, nats_url, prefix, "user", "list", "--json"))
    assert {(u["name"], u["role"]) for u in listed} == {("alice", "admin"), ("sam", "submitter"), ("vic", "viewer")}
    key = json.loads(await sluice(capsys, monkeypatch, nats_url, prefix, "user", "apikey", "create", "sam", "--json"))
    assert key["token"].startswith("slk_")

    async with web_mesh(nats_url, prefix, services=[]) as web:
        anonymous = httpx.AsyncClient(base_url=web.url, timeout=30)
        # Accounts exist: the local no-login mode is off, nothing is readable without signing in.
        me = (await anonymous.get("/api/me")).json()
        assert me["signed_in"] is False
        assert (await anonymous.get("/api/submissions")).status_code == 401
        assert (await anonymous.post("/api/submissions", content=b"x", headers=BINARY)).status_code == 401
        assert (await anonymous.post("/api/login", json={"user": "sam", "password": "wrong password"})).status_code == 401
        assert (await anonymous.post("/api/login", json={"user": "nobody", "password": PASSWORD})).status_code == 401

        sam = await signed_in(web.url, "sam")
        cookie = sam.cookies.get("sluice_session")
        set_cookie = (await anonymous.post("/api/login", json={"user": "sam", "password": PASSWORD})).headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "samesite=strict" in set_cookie.lower()

        # A cross-site page can make the browser send the cookie, not the token: refused.
        forged = httpx.AsyncClient(base_url=web.url, cookies={"sluice_session": cookie}, timeout=30)
        refused = await forged.post("/api/submissions", content=b"forged\n", headers=BINARY)
        assert refused.status_code == 403 and "x-csrf-token" in refused.json()["detail"]
        wrong = await forged.post("/api/submissions", content=b"forged\n", headers={**BINARY, "X-CSRF-Token": "guess"})
        assert wrong.status_code == 403
        assert (await forged.get("/api/submissions")).status_code == 200  # reading needs no token

        submitted = await sam.post("/api/submissions", params={"name": "a.txt"}, content=b"hello\n", headers=BINARY)
        assert submitted.status_code == 201, submitted.text

        vic = await signed_in(web.url, "vic")
        assert (await vic.get("/api/submissions")).status_code == 200
        denied = await vic.post("/api/submissions", content=b"x", headers=BINARY)
        assert denied.status_code == 403 and "submitter" in denied.json()["detail"]
        assert (await vic.get("/api/audit")).status_code == 403

        # An API key: no cookie, no CSRF token; a bad key is refused, not ignored.
        keyed = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {key['token']}"}, timeout=30)
        assert (await keyed.post("/api/submissions", params={"name": "k.txt"}, content=b"by key\n", headers=BINARY)).status_code == 201
        assert (await keyed.get("/api/me")).json()["user"] == "sam"
        bad = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {key['token'][:-2]}xx"}, timeout=30)
        assert (await bad.get("/api/submissions")).status_code == 401
        await sluice(capsys, monkeypatch, nats_url, prefix, "user", "apikey", "revoke", key["key_id"])
        assert (await keyed.get("/api/submissions")).status_code == 401

        # Logging out ends the session server-side: the old cookie is worthless.
        assert (await sam.post("/api/logout")).status_code == 200
        replayed = httpx.AsyncClient(base_url=web.url, cookies={"sluice_session": cookie}, timeout=30)
        assert (await replayed.get("/api/submissions")).status_code == 401

        # Removing a user ends their sessions' rights at once.
        await sluice(capsys, monkeypatch, nats_url, prefix, "user", "remove", "vic")
        assert (await vic.get("/api/submissions")).status_code == 401

        alice = await signed_in(web.url, "alice")
        events = (await alice.get("/api/audit", params={"limit": 100})).json()["items"]
        seen = {(e["user"], e["action"]) for e in events}
        assert {("sam", "login"), ("sam", "submit"), ("sam", "logout"), ("sam", "login_failed"),
                ("nobody", "login_failed"), ("cli", "user_add"), ("cli", "apikey_revoke"), ("cli", "user_remove")} <= seen
        assert [e["action"] for e in (await alice.get("/api/audit", params={"user": "sam", "action": "submit"})).json()["items"]] == ["submit", "submit"]
        for client in (anonymous, sam, forged, vic, keyed, bad, replayed, alice):
            await client.aclose()


async def test_expired_keys_are_refused(nats_url, prefix, capsys, monkeypatch):
    await add_user(capsys, monkeypatch, nats_url, prefix, "ed", "viewer")
    key = json.loads(await sluice(capsys, monkeypatch, nats_url, prefix, "user", "apikey", "create", "ed", "--expires-days", "1", "--json"))
    async with web_mesh(nats_url, prefix, services=[]) as web:
        keyed = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {key['token']}"}, timeout=30)
        assert (await keyed.get("/api/submissions")).status_code == 200
        # Expire it in the store, as time would.
        async with await Client.connect(nats_url, prefix) as client:
            kv = await client.js.key_value(client.names.accounts_bucket)
            record = msgspec.msgpack.decode((await kv.get(f"key.{key['key_id']}")).value, type=ApiKey)
            await kv.put(f"key.{key['key_id']}", encode(msgspec.structs.replace(record, expires_at=time.time() - 1)))
        assert (await keyed.get("/api/submissions")).status_code == 401
        await keyed.aclose()


async def test_login_is_rate_limited_per_account(nats_url, prefix, capsys, monkeypatch):
    await add_user(capsys, monkeypatch, nats_url, prefix, "target", "viewer")
    async with web_mesh(nats_url, prefix, services=[]) as web:
        http = httpx.AsyncClient(base_url=web.url, timeout=30)
        for n in range(5):
            assert (await http.post("/api/login", json={"user": "target", "password": f"guess number {n}"})).status_code == 401
        limited = await http.post("/api/login", json={"user": "target", "password": PASSWORD})  # even the right one, for now
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        await http.aclose()


async def test_login_rate_limits_hold_across_web_fronts(nats_url, prefix, capsys, monkeypatch):
    """Guesses spread over two fronts share one budget (per account and per address)."""
    await add_user(capsys, monkeypatch, nats_url, prefix, "spread", "viewer")
    await add_user(capsys, monkeypatch, nats_url, prefix, "bystander", "viewer")
    async with web_mesh(nats_url, prefix, services=[]) as one, web_front(nats_url, prefix) as two:
        fronts = [httpx.AsyncClient(base_url=web.url, timeout=30) for web in (one, two)]
        for n in range(5):  # alternately on each front: 3 on one, 2 on the other
            guess = await fronts[n % 2].post("/api/login", json={"user": "spread", "password": f"guess number {n}"})
            assert guess.status_code == 401
        for http in fronts:
            limited = await http.post("/api/login", json={"user": "spread", "password": PASSWORD})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        # The same address is out of guesses for any account, on either front.
        assert (await fronts[1].post("/api/login", json={"user": "bystander", "password": PASSWORD})).status_code == 429
        for http in fronts:
            await http.aclose()


async def test_concurrent_failures_from_two_fronts_all_count(nats_url, prefix):
    """Compare-and-set on the entry's revision: failures counted at once by two fronts (two
    connections) are all kept, none overwrites another."""
    async with await Client.connect(nats_url, prefix) as a, await Client.connect(nats_url, prefix) as b:
        stores = await provision_workspace(a.js, a.names)
        throttles = [LoginThrottle(await c.js.key_value(a.names.ratelimit_bucket), max_failures=100) for c in (a, b)]
        async with anyio.create_task_group() as tg:
            for n in range(24):
                tg.start_soon(throttles[n % 2].failed, "ip:192.0.2.9")
        times, _ = await throttles[0]._recent(LoginThrottle._key("ip:192.0.2.9"), time.time())
        assert len(times) == 24
        assert await LoginThrottle(stores.ratelimit, max_failures=24).retry_after("ip:192.0.2.9") > 0
        assert await LoginThrottle(stores.ratelimit, max_failures=25).retry_after("ip:192.0.2.9") == 0


def test_the_web_front_refuses_to_serve_beyond_loopback_without_accounts(nats_url, prefix, capsys):
    assert main(["web", "--nats", nats_url, "--prefix", prefix, "--bind", "0.0.0.0:0"]) == 2
    assert "refusing to serve" in capsys.readouterr().err


async def test_the_python_client_and_the_cli_use_the_api_with_a_key(nats_url, prefix, capsys, monkeypatch, tmp_path):
    await add_user(capsys, monkeypatch, nats_url, prefix, "sam", "submitter")
    key = json.loads(await sluice(capsys, monkeypatch, nats_url, prefix, "user", "apikey", "create", "sam", "--json"))["token"]
    sample = tmp_path / "invoice.pdf.exe"
    sample.write_bytes(b"MZ pretend executable\n")
    async with web_mesh(nats_url, prefix, services=[make(Echo, "echo")]) as web:
        async with WebClient(web.url, key) as client:
            sid = await client.submit_file(sample)
            summary = await client.wait(sid, timeout=60)
            assert summary.sid == sid and summary.metadata["submitter"] == "sam"
            assert [i["sid"] for i in (await client.search("submitter:sam name:invoice.pdf.exe"))["items"]] == [sid]
            cart_bytes = await client.download_file(sid, summary.files[0].sha256)
            assert unpack_cart(cart_bytes)[0] == sample.read_bytes()
            with pytest.raises(WebError, match="403"):  # raw bytes are for analysts
                await client.download_file(sid, summary.files[0].sha256, Format.RAW)
        with pytest.raises(ValueError, match="API key"):
            WebClient(web.url, "")

        async def result(*args: str) -> tuple[int, str, str]:
            code = await anyio.to_thread.run_sync(main, ["result", sid, "--api", web.url, "--api-key", key, *args])
            out = capsys.readouterr()
            return code, out.out, out.err

        code, out, _ = await result("--json")
        assert code == 0 and json.loads(out)["sid"] == sid
        code, _, err = await result("--file", summary.files[0].sha256, "--format", "zip", "-o", str(tmp_path / "x.zip"))
        assert code == 0 and "(zip," in err
        with pyzipper.AESZipFile(tmp_path / "x.zip") as archive:
            archive.setpassword(b"infected")
            assert archive.read("invoice.pdf.exe") == sample.read_bytes()
        code, _, err = await result("--file", summary.files[0].sha256, "--format", "raw", "-o", str(tmp_path / "raw"))
        assert code == 1 and "403" in err and not (tmp_path / "raw").exists()
        code, _, err = await result("--json", "--api-key", "slk_000000000000_nope")
        assert code == 1 and "401" in err

        async def submit(*args: str) -> tuple[int, str, str]:
            code = await anyio.to_thread.run_sync(main, ["submit", *args, "--api", web.url, "--api-key", key, "--json"])
            out = capsys.readouterr()
            return code, out.out, out.err

        code, out, _ = await submit(str(sample), "--domain", "example.com")
        lines = [json.loads(line) for line in out.splitlines()]
        assert code == 0 and [line.get("path") or line["value"] for line in lines] == [str(sample), "example.com"]
        async with WebClient(web.url, key) as client:
            assert {(await client.wait(line["sid"], timeout=60)).metadata["submitter"] for line in lines} == {"sam"}

    # The same choice over NATS: CaRT by default for a file of the tree.
    code = await anyio.to_thread.run_sync(main, ["result", sid, "--file", summary.files[0].sha256, "-o", str(tmp_path / "x.cart"),
                                                 "--nats", nats_url, "--prefix", prefix])
    assert code == 0 and unpack_cart((tmp_path / "x.cart").read_bytes())[0] == sample.read_bytes()


async def test_service_parameters_go_through_the_api_from_python_and_the_cli(nats_url, prefix, capsys, monkeypatch, tmp_path):
    """An archive password reaches the extract service through the web front, as it does over NATS."""
    await add_user(capsys, monkeypatch, nats_url, prefix, "pat", "submitter")
    key = json.loads(await sluice(capsys, monkeypatch, nats_url, prefix, "user", "apikey", "create", "pat", "--json"))["token"]
    locked = tmp_path / "locked.zip"
    locked.write_bytes(protected_zip(b"api-password-77"))
    async with web_mesh(nats_url, prefix, services=[load_service("extract")]) as web:
        async with WebClient(web.url, key) as client:
            sid = await client.submit_file(locked, ignore_cache=True, service_params={"extract": {"password": "api-password-77"}})
            summary = await client.wait(sid, timeout=60)
            assert [c.name for c in summary.files[0].children] == ["payload.txt"]
            with pytest.raises(WebError, match="takes no parameter 'pasword'"):
                await client.submit_file(locked, service_params={"extract": {"pasword": "x"}})
            with pytest.raises(WebError, match="no service named nosuch"):
                await client.submit_sample("domain", "example.com", service_params={"nosuch": {"x": "y"}})

        async def submit(*args: str) -> tuple[int, str, str]:
            code = await anyio.to_thread.run_sync(main, ["submit", *args, "--api", web.url, "--api-key", key, "--json"])
            out = capsys.readouterr()
            return code, out.out, out.err

        code, out, err = await submit(str(locked), "--ignore-cache", "--param", "extract.password=api-password-77")
        assert code == 0, err
        async with WebClient(web.url, key) as client:
            summary = await client.wait(json.loads(out)["sid"], timeout=60)
        assert [c.name for c in summary.files[0].children] == ["payload.txt"]
        code, _, err = await submit(str(locked), "--param", "extract.pasword=x")
        assert code == 1 and "takes no parameter 'pasword'" in err


async def test_an_audit_event_rides_through_a_stream_without_a_leader(nats_url, prefix, monkeypatch):
    # The request's work is done when its audit event is written: a stream in an election
    # (simulated: its first publish answered "no response from stream") must delay the event,
    # not turn the request into a 500.
    names, real, refused = Names(prefix), bus.publish.jetstream_publish, []

    async def electing(js, subject, payload, headers=None, **kwargs):
        if subject.startswith(names.audit("")) and not refused:
            refused.append(subject)
            raise NoStreamResponseError
        return await real(js, subject, payload, headers, **kwargs)

    async with await Client.connect(nats_url, prefix) as client:
        await provision_workspace(client.js, names)
        monkeypatch.setattr(bus.publish, "jetstream_publish", electing)
        await audit(client.js, names, "alice", "submit", "some-sid")
        state = (await client.js.stream_info(names.audit_stream)).state
    assert refused and state.messages == 1
