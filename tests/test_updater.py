"""Rule updates end to end: a rule source on a loopback HTTP server, the updater publishing into
NATS, a running service loading new rules without a restart, and broken sets refused on both
sides (by the updater before publishing, by the service if one gets through).
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
import pytest_asyncio
from nats.js import JetStreamContext

from bus.blobs import BlobStore
from bus.codec import encode
from bus.connect import close, connect
from bus.provision import Stores, provision
from bus.subjects import Names
from schemas.messages import FileRef, RuleSet, RulesAnnouncement
from services.sdk.base import rules_digest
from services.sdk.loader import load_service
from services.sdk.manifest import ManifestError, load_manifest
from services.sdk.updater import RulesFollower, UpdateError, Updater, current_rules
from sluice.client import Client
from sluice.onebox import onebox

SERVICE = '''
from services.sdk import Result, ResultSection, ServiceBase


class Ruled(ServiceBase):
    """Reports the words of its rule files; a file containing BROKEN is a rule syntax error."""

    def __init__(self, config=None):
        super().__init__(config)
        self.words = []

    def load_rules(self, rules_paths):
        words = []
        for path in rules_paths:
            text = open(path).read()
            if "BROKEN" in text:
                raise ValueError("syntax error in " + path)
            words += text.split()
        self.words = words

    def execute(self, request):
        result = Result()
        result.add_section(ResultSection("Rules", body=" ".join(self.words)))
        request.result = result
'''


class RuleServer:
    """A loopback HTTP server whose one document the test rewrites."""

    def __init__(self) -> None:
        self.body = b"alpha"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/rules.txt"


@pytest.fixture
def rule_server() -> Iterator[RuleServer]:
    server = RuleServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    thread.join(5)


@pytest_asyncio.fixture(loop_scope="session")
async def bus(nats_url: str, prefix: str) -> AsyncIterator[tuple[JetStreamContext, Names, Stores]]:
    """A connection with this test's prefix provisioned."""
    nc = await connect(nats_url)
    try:
        js, names = nc.jetstream(), Names(prefix)
        yield js, names, await provision(js, names)
    finally:
        await close(nc)


@pytest.fixture
def ruled(tmp_path: Path, rule_server: RuleServer) -> Path:
    folder = tmp_path / "ruled"
    folder.mkdir()
    (folder / "service.py").write_text(SERVICE)
    (folder / "service_manifest.yml").write_text(textwrap.dedent(f"""
        name: ruled
        version: "1.0"
        accepts: .*
        timeout: 10
        update_config:
          update_interval_seconds: 60
          sources:
            - name: words.txt
              uri: {rule_server.url}
    """))
    return folder


async def test_rules_flow_from_source_to_running_service(nats_url, prefix, ruled, rule_server, bus):
    js, names, stores = bus
    updater = Updater(load_service(ruled), js, names, stores)
    first = await updater.update_once()
    assert first.published and first.files == ["words.txt"]
    assert first.version == rules_digest({"words.txt": b"alpha"})
    again = await updater.update_once()
    assert not again.published and again.version == first.version  # unchanged: nothing stored again

    async with onebox(nats_url, prefix, [ruled]) as box, await Client.connect(nats_url, prefix) as client:
        sid = await client.submit_bytes([("a.txt", b"some text\n")])
        summary = await client.wait(sid, timeout=30)
        [view] = summary.files[0].results
        assert view.sections[0].body == "alpha"

        rule_server.body = b"beta gamma"
        second = await updater.update_once()
        assert second.published and second.version != first.version
        # The running instance picks the new set up on its next heartbeat and says so in the registry.
        with anyio.fail_after(15):
            while not box.dispatcher.directory.services["ruled"].tool_version.endswith(second.version):
                await box.dispatcher.directory.changed.wait()
        sid = await client.submit_bytes([("a.txt", b"some text\n")])
        summary = await client.wait(sid, timeout=30)
        [view] = summary.files[0].results
        assert view.sections[0].body == "beta gamma"
        assert not view.cached  # a new tool version: the old rules' result is not reused

        rule_server.body = b"BROKEN rules"
        with pytest.raises(UpdateError, match="refused"):
            await updater.update_once()
        assert (await current_rules(stores, "ruled")).version == second.version


async def test_running_service_keeps_last_good_rules(ruled, tmp_path, bus):
    """A broken set that reaches the store anyway (published by hand) is refused by the service."""
    js, names, stores = bus
    blobs = BlobStore(js, stores.rulesets, names.ruleset_store, inline_max=0)

    async def announce(files: dict[str, bytes]) -> str:
        version = rules_digest(files)
        ref = await blobs.put(encode(RuleSet("ruled", version, files)))
        await stores.rules.put("ruled", encode(RulesAnnouncement(version, FileRef(ref.sha256, ref.size))))
        return version

    service = load_service(ruled)
    follower = RulesFollower(service, js, names, stores, tmp_path)
    good = await announce({"words.txt": b"one two"})
    assert await follower.refresh()
    assert service.words == ["one", "two"] and service.get_tool_version() == good
    assert not await follower.refresh()  # same version: nothing to do

    bad = await announce({"words.txt": b"BROKEN"})
    assert not await follower.refresh()
    assert bad in follower.refused
    assert service.words == ["one", "two"] and service.rules_version == good

    hostile = await announce({"../escape.txt": b"x"})
    assert not await follower.refresh()
    assert hostile in follower.refused and not (tmp_path.parent / "escape.txt").exists()


def test_manifest_rejects_bad_update_sources(tmp_path):
    (tmp_path / "service_manifest.yml").write_text(
        "name: x\nversion: '1'\nupdate_config:\n  sources:\n    - {name: r, uri: 'ftp://example.com/r'}\n")
    with pytest.raises(ManifestError, match=r"service_manifest.yml: .*http.*update_config.sources\[0\]"):
        load_manifest(tmp_path)
