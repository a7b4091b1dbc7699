"""Per-component NATS identities (`bus.auth`) against a real nats-server run with the generated
config: the mesh works end to end with each component on its own credentials, and every
forbidden action is refused by the server.

A refusal is asserted concretely: the server reports a permissions violation naming the very
subject (nats-py hands it to the error callback; the call itself only times out), and the
call does not succeed.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import signal
import stat
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.streams.text
import nats.errors
import pytest
import pytest_asyncio
import yaml
from nats.aio.client import Client as Nats
from nats.js.api import ConsumerConfig, StreamConfig

from bus import auth
from bus.blobs import BlobStore
from bus.codec import decode, encode
from bus.connect import CREDS_ENV, close, connect
from bus.embedded import EmbeddedServer
from bus.exhausted import watch_exhausted
from bus.provision import NotProvisioned, provision
from bus.subjects import Names
from dispatcher.directory import ServiceDirectory
from dispatcher.replies import ReplyRouter
from schemas.messages import DeadLetter, FileRef, ServiceRecord, ServiceResult, Stage, Submission, walk
from services.sdk.loader import load_service
from sluice.cli import main
from sluice.client import Client
from sluice.onebox import onebox
from svcs import Echo, make

SERVICES = ["echo", "extract", "safelist"]
REFUSAL_WAIT = 0.3  # seconds a refused request waits for the answer that never comes


@dataclass
class Authed:
    server: EmbeddedServer
    names: Names
    creds: dict[str, Path]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def authed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Authed]:
    root = tmp_path_factory.mktemp("auth")
    names = Names("ta" + secrets.token_hex(3))
    creds = auth.init(root / "creds", names, SERVICES)
    async with EmbeddedServer(data_dir=root / "nats", auth_config=root / "creds" / auth.CONF_NAME) as server:
        nc = await connect(server.url, creds=creds[auth.ADMIN])
        try:
            await provision(nc.jetstream(), names)  # the operator's step (`sluice provision`)
        finally:
            await close(nc)
        yield Authed(server, names, creds)


@dataclass
class Session:
    nc: Nats
    errors: list[str]
    violation: anyio.Event

    @property
    def js(self):
        return self.nc.jetstream(timeout=REFUSAL_WAIT)


@asynccontextmanager
async def session(authed: Authed, role: str) -> AsyncIterator[Session]:
    """A connection as `role` whose error callback records what the server refuses."""
    errors: list[str] = []
    violation = anyio.Event()

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))
        violation.set()

    nc = await connect(authed.server.url, name=f"test-{role}", creds=authed.creds[role], error_cb=on_error)
    try:
        yield Session(nc, errors, violation)
    finally:
        await close(nc)


async def assert_refused(s: Session, action: Awaitable, subject: str) -> None:
    """`action` fails, and the server said why: a permissions violation on `subject`."""
    with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
        await action
    with anyio.fail_after(2):
        await s.violation.wait()
    expected = f'permissions violation for publish to "{subject}"'.lower()
    assert any(expected in e.lower() for e in s.errors), s.errors


# -- credentials on disk --------------------------------------------------------------------------

def test_init_writes_private_seeds_and_a_config_of_public_keys(tmp_path: Path) -> None:
    names = Names("demo")
    files = auth.init(tmp_path, names, ["pe"])
    assert set(files) == {"admin", "dispatcher", "submitter", "updater", "web", "service:pe"}
    conf = (tmp_path / auth.CONF_NAME).read_text()
    for role, path in files.items():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, role
        seed = path.read_bytes().strip()
        assert seed.startswith(b"SU")
        assert seed.decode() not in conf  # only public keys in the server config
        assert auth.public_key(seed) in conf
    again = auth.init(tmp_path, names, ["pe", "yara"])  # re-running keeps deployed identities
    assert again["service:pe"].read_bytes() == files["service:pe"].read_bytes()
    assert "service:yara" in again


def test_permissions_are_data_per_role() -> None:
    names = Names("demo")
    pe = auth.permissions("service:pe", names, "UKEY")
    assert "demo.reply.*.result.pe" in pe.publish
    assert not any(p.startswith(("demo.summary", "demo.alert", "demo.submit", "demo.task")) for p in pe.publish)
    assert not any(".STREAM.DELETE." in p or ".STREAM.PURGE." in p for p in pe.publish)
    assert pe.subscribe == ("_INBOX_UKEY.>",)
    submitter = auth.permissions("submitter", names, "UKEY")
    assert "demo.submit.root" in submitter.publish and "demo.submit.child" not in submitter.publish
    with pytest.raises(ValueError, match="unknown role"):
        auth.permissions("root", names, "UKEY")


# -- the mesh, each component on its own identity --------------------------------------------------

async def test_scan_completes_with_per_component_credentials(authed: Authed, monkeypatch, caplog) -> None:
    monkeypatch.setenv(CREDS_ENV, str(authed.creds[auth.ADMIN].parent))  # each component picks its own file
    caplog.set_level(logging.WARNING, logger="sluice.bus")
    big = os.urandom(200 * 1024)  # over the inline limit: stored and fetched through the object store
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("big.bin", big)
        z.writestr("small.txt", "hello " * 20)
    with anyio.fail_after(60):
        async with onebox(authed.server.url, authed.names.prefix, [make(Echo, "echo"), "extract"]):
            async with await Client.connect(authed.server.url, authed.names.prefix) as client:
                sid = await client.submit_bytes([("sample.zip", archive.getvalue())])
                summary = await client.wait(sid, timeout=45)
    nodes = {node.name: node for node in walk(summary.files)}
    assert set(nodes) == {"sample.zip", "big.bin", "small.txt"}
    assert [r.service for r in nodes["sample.zip"].results] == ["extract"]
    assert [r.service for r in nodes["big.bin"].results] == ["echo"]
    assert not any(n.errors for n in nodes.values()), [n.errors for n in nodes.values()]
    assert not [r.message for r in caplog.records if "permissions violation" in r.message.lower()]


async def test_a_service_without_provisioned_streams_says_what_to_do(authed: Authed) -> None:
    async with session(authed, "service:echo") as s:
        with pytest.raises(NotProvisioned, match="sluice provision"):
            await provision(s.js, Names("nothere"), create=False, wait=0.5)


# -- refused actions -------------------------------------------------------------------------------

Forbidden = Callable[[Session, Names], tuple[Awaitable, str]]


def publish(subject: Callable[[Names], str]) -> Forbidden:
    def act(s: Session, n: Names) -> tuple[Awaitable, str]:
        return s.js.publish(subject(n), b"forged", timeout=REFUSAL_WAIT), subject(n)
    return act


def delete_stream(s: Session, n: Names) -> tuple[Awaitable, str]:
    return s.js.delete_stream(n.task_stream), f"$JS.API.STREAM.DELETE.{n.task_stream}"


def purge_files(s: Session, n: Names) -> tuple[Awaitable, str]:
    return s.js.purge_stream(f"OBJ_{n.file_bucket}"), f"$JS.API.STREAM.PURGE.OBJ_{n.file_bucket}"


def create_stream(s: Session, n: Names) -> tuple[Awaitable, str]:
    return s.js.add_stream(StreamConfig(name="EVIL", subjects=["evil.>"])), "$JS.API.STREAM.CREATE.EVIL"


def read_consumer(consumer: str) -> Forbidden:
    """Pull from another component's durable consumer on the task stream."""
    def act(s: Session, n: Names) -> tuple[Awaitable, str]:
        async def fetch() -> None:
            sub = await s.js.pull_subscribe_bind(consumer, stream=n.task_stream)
            await sub.fetch(1, timeout=REFUSAL_WAIT)
        return fetch(), f"$JS.API.CONSUMER.MSG.NEXT.{n.task_stream}.{consumer}"
    return act


def tap_tasks(s: Session, n: Names) -> tuple[Awaitable, str]:
    """Make a consumer of one's own on the task stream, to read every task."""
    name = "tap"
    config = ConsumerConfig(durable_name=name, filter_subject=f"{n.prefix}.task.>")
    return s.js.add_consumer(n.task_stream, config), f"$JS.API.CONSUMER.DURABLE.CREATE.{n.task_stream}.{name}"


SERVICE_REFUSED: dict[str, Forbidden] = {
    "publish a summary": publish(lambda n: n.summary("forged")),
    "publish an alert": publish(lambda n: n.alert("forged")),
    "publish a submission": publish(lambda n: n.submit_root),
    "publish a child submission": publish(lambda n: n.submit_child),
    "publish a task": publish(lambda n: n.task("CORE", "text/plain")),
    "publish another service's result": publish(lambda n: n.result_reply(n.reply("d1", "result"), "extract")),
    "publish a node report": publish(lambda n: n.reply("d1", "node")),
    "heartbeat as another service": publish(lambda n: f"$KV.{n.registry_bucket}.extract.i1"),
    "read another service's consumer": read_consumer("svc-extract"),
    "make a consumer on the task stream": tap_tasks,
    "delete a stream": delete_stream,
    "purge the file store": purge_files,
    "create a stream": create_stream,
}

SUBMITTER_REFUSED: dict[str, Forbidden] = {
    "publish a task": publish(lambda n: n.task("CORE", "text/plain")),
    "publish a result": publish(lambda n: n.result_reply(n.reply("d1", "result"), "echo")),
    "publish a child submission": publish(lambda n: n.submit_child),
    "publish a summary": publish(lambda n: n.summary("forged")),
    "read a service's tasks": read_consumer("svc-echo"),
    "make a consumer on the task stream": tap_tasks,
    "delete a stream": delete_stream,
    "purge the file store": purge_files,
}

DISPATCHER_REFUSED: dict[str, Forbidden] = {
    "delete a stream": delete_stream,
    "purge the file store": purge_files,
    "publish a service's result": publish(lambda n: n.result_reply(n.reply("d1", "result"), "echo")),
}


def cases(role: str, refused: dict[str, Forbidden]) -> list:
    return [pytest.param(role, act, id=f"{role} may not {what}") for what, act in refused.items()]


@pytest.mark.parametrize("role, act", cases("service:echo", SERVICE_REFUSED) + cases("submitter", SUBMITTER_REFUSED)
                         + cases("dispatcher", DISPATCHER_REFUSED))
async def test_refused(authed: Authed, role: str, act: Forbidden) -> None:
    async with session(authed, role) as s:
        action, subject = act(s, authed.names)
        await assert_refused(s, action, subject)


async def test_nobody_reads_another_identitys_inbox(authed: Authed) -> None:
    """The default `_INBOX.>` (or another key's inbox) would show others' API replies and pulled tasks."""
    async with session(authed, "service:echo") as s:
        await s.nc.subscribe("_INBOX.>")
        with anyio.fail_after(2):
            await s.violation.wait()
        assert any('permissions violation for subscription to "_inbox.>"' in e.lower() for e in s.errors), s.errors


async def test_no_credentials_no_connection(authed: Authed) -> None:
    with pytest.raises(Exception, match="(?i)authorization"):
        await connect(authed.server.url, name="anonymous", max_reconnect_attempts=0, allow_reconnect=False)


async def test_a_result_in_another_services_name_is_dead_lettered(authed: Authed) -> None:
    """Even where a subject is allowed, a service cannot speak for another: the dispatcher checks
    that a result's service is the one in its subject (its publisher under auth)."""
    letters: list[str] = []

    async def dead_letter(msg, reason: str) -> None:
        letters.append(reason)

    class Msg:  # the three things the router reads of a message
        headers = None
        subject = authed.names.result_reply(authed.names.reply("d1", "result"), "echo")
        data = encode(ServiceResult("corr", "extract", "1.0"))

    await ReplyRouter(dead_letter).handle(Msg())
    assert letters == ["a result for 'extract' published as 'echo'"]


async def test_a_heartbeat_in_its_own_key_cannot_claim_another_name(authed: Authed) -> None:
    """The one registry write a service may do, its own key, still cannot make it another service."""
    async with session(authed, "service:echo") as svc, session(authed, "dispatcher") as disp:
        registry = (await provision(svc.js, authed.names, create=False)).registry
        posing = ServiceRecord("extract", "1", Stage.EXTRACT, ".*", "", 10, "svc-extract", heartbeat=time.time())
        honest = ServiceRecord("echo", "1", Stage.CORE, ".*", "", 10, "svc-echo", heartbeat=time.time())
        await registry.put("echo.posing", encode(posing))
        await registry.put("echo.honest", encode(honest))
        directory = ServiceDirectory((await provision(disp.js, authed.names, create=False)).registry)
        await directory.refresh()
        assert set(directory.services) == {"echo"}
        for key in ("echo.posing", "echo.honest"):
            await registry.delete(key)


async def test_the_dispatcher_may_dead_letter_what_a_consumer_gave_up_on(authed: Authed) -> None:
    names = authed.names
    async with session(authed, "dispatcher") as disp, session(authed, "admin") as admin:
        watching = await watch_exhausted(disp.nc, disp.nc.jetstream(), names)
        arrived: list[bytes] = []
        got = anyio.Event()

        async def on_letter(msg) -> None:
            arrived.append(msg.data)
            got.set()

        await admin.nc.subscribe(names.dead_letter("svc-crashy"), cb=on_letter)
        subject = names.task("CORE", "application/x-crash")
        js = admin.nc.jetstream()
        await js.add_consumer(names.task_stream, ConsumerConfig(
            durable_name="svc-crashy", filter_subject=subject, ack_wait=0.3, max_deliver=1))
        crashy = await js.pull_subscribe_bind("svc-crashy", stream=names.task_stream)
        await js.publish(subject, b"task bytes")
        await crashy.fetch(1, timeout=5)  # and never acknowledged
        with pytest.raises(TimeoutError):
            await crashy.fetch(1, timeout=1)  # the server gives up here, and says so
        with anyio.fail_after(5):
            await got.wait()
        assert decode(arrived[0], DeadLetter).data == b"task bytes"
        assert not disp.errors
        for sub in watching:
            await sub.unsubscribe()


async def test_the_safelist_service_mirrors_its_bucket_under_its_own_credentials(authed: Authed) -> None:
    async with session(authed, auth.service_role("safelist")) as s:
        service = load_service("safelist")
        await service.attach(s.nc.jetstream(), authed.names)
        assert service.mirror is not None  # no permissions violation: it did not fall back to per-file gets
        with anyio.fail_after(5):
            await service.mirror.loaded.wait()
        assert service.mirror.usable and not s.errors


async def test_allowed_actions_still_work(authed: Authed) -> None:
    """The submitter can upload a file (under its own token: only the dispatcher names objects)
    and submit it; a refused identity is not a broken one."""
    async with session(authed, "submitter") as s:
        stores = await provision(s.js, authed.names, create=False)
        ref: FileRef = FileRef("0" * 64, 0)
        uploaded = await BlobStore(s.js, stores.files, authed.names.file_bucket, writer="submitter").put(b"probe", inline=False)
        assert uploaded.upload.startswith("submitter.")
        ack = await s.js.publish(authed.names.submit_root, encode(Submission("probe", [ref])),
                                 headers={"Nats-Msg-Id": secrets.token_hex(8)})
        assert ack.stream == authed.names.submit_stream
        assert not s.errors


# -- how operators get it -------------------------------------------------------------------------

def test_auth_init_command_says_how_to_use_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "creds"
    assert main(["--prefix", "demo", "auth", "init", "--out", str(out_dir), "--services", "pe,yara"]) == 0
    out = capsys.readouterr().out
    assert f"{CREDS_ENV}={out_dir / 'service-pe.nk'}" in out
    assert f"sluice up --auth {out_dir}" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "admin.nk", "auth.conf", "dispatcher.nk", "service-pe.nk", "service-yara.nk", "submitter.nk", "updater.nk", "web.nk"]
    assert stat.S_IMODE(os.stat(out_dir).st_mode) == 0o700
    assert '"demo.reply.*.result.yara"' in (out_dir / auth.CONF_NAME).read_text()


def test_compose_auth_gives_each_container_its_own_identity() -> None:
    root = Path(__file__).resolve().parent.parent
    base = yaml.safe_load((root / "compose.yaml").read_text())
    override = yaml.safe_load((root / "compose.auth.yaml").read_text())
    for name, container in base["services"].items():
        command = container.get("command", [])
        if command[:1] == ["dispatcher"]:
            role = auth.DISPATCHER
        elif command[:2] == ["service", "run"]:
            role = auth.service_role(command[2])
        else:
            continue  # nats itself
        [secret] = override["services"][name]["secrets"]
        assert override["secrets"][secret["source"]]["file"] == f"./.sluice/auth/{auth.creds_file_name(role)}", name
        assert override["services"][name]["environment"][CREDS_ENV] == f"/run/secrets/{secret['target']}"
    assert "./.sluice/auth/auth.conf:/etc/nats/auth.conf:ro" in override["services"]["nats"]["volumes"]
    assert 'include "./auth.conf"' in (root / "compose.nats-auth.conf").read_text()


async def test_missing_credentials_say_how_to_make_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(CREDS_ENV, str(tmp_path))  # a directory without this component's file
    with pytest.raises(ValueError, match=r"service-mine\.nk do not exist: `sluice auth init`.*--services"):
        await connect("nats://127.0.0.1:1", role=auth.service_role("mine"))


async def read_exports(proc, timeout: float = 90) -> dict[str, str]:
    """The `export NAME=VALUE` lines `sluice up` prints, up to the URL (printed once all is up)."""
    exports: dict[str, str] = {}
    lines = anyio.streams.text.TextReceiveStream(proc.stdout)
    buffered = ""
    with anyio.fail_after(timeout):
        while "SLUICE_NATS_URL" not in exports:
            buffered += await lines.receive()
            *done, buffered = buffered.split("\n")
            exports.update(line.removeprefix("export ").split("=", 1) for line in done if line.startswith("export "))
    return exports


async def test_sluice_up_auth_runs_the_mesh_on_its_identities(tmp_path: Path, monkeypatch) -> None:
    """`sluice up --auth` as a user runs it: the exports it prints are all a submitter needs, its
    embedded server refuses anyone without credentials, and no component oversteps its rights."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in (CREDS_ENV, "SLUICE_NATS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "sluice", "up", "--auth", str(tmp_path / "creds"), "--data-dir", str(tmp_path / "data")]
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:  # a file, not a pipe nobody reads while it runs
        async with await anyio.open_process(command, env=env, cwd=tmp_path, stderr=stderr) as proc:
            try:
                exports = await read_exports(proc)
                assert exports[CREDS_ENV] == str((tmp_path / "creds" / "submitter.nk").resolve())
                url = exports["SLUICE_NATS_URL"].split()[0]
                with pytest.raises(Exception, match="(?i)authorization"):
                    await connect(url, name="anonymous", allow_reconnect=False)
                monkeypatch.setenv(CREDS_ENV, exports[CREDS_ENV])  # as the user's shell would have it
                async with await Client.connect(url) as client:
                    sid = await client.submit_bytes([("note.txt", b"contact admin@example.com\n")])
                    summary = await client.wait(sid, timeout=60)
                assert {r.service for r in summary.files[0].results} >= {"characterize", "iocs"}
            finally:
                proc.send_signal(signal.SIGTERM)
                with anyio.fail_after(30):
                    assert await proc.wait() == 0
    # Every built-in service, the dispatcher and the rule updaters did all they did within their rights.
    assert "permissions violation" not in log.read_text().lower(), log.read_text()[-3000:]
