"""A client outside Python: the Node.js example (docs/clients/node/) against a real mesh.

Its packages (`nats`, `@msgpack/msgpack`) are installed from the npm registry into
.venv/node-client (not in the repo; reinstalled only when package.json or its lock change).
Skipped, saying why, where node or npm is missing or the registry cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import anyio
import pytest

from bus import auth
from bus.connect import CREDS_ENV, close, connect
from bus.embedded import EmbeddedServer
from bus.subjects import Names
from sluice.onebox import onebox
from svcs import Echo, make

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "clients" / "node"
NODE_DIR = ROOT / ".venv" / "node-client"
PACKAGE_FILES = ("package.json", "package-lock.json")


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The example's folder with its packages installed; its script copied in fresh each run."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not on PATH: the Node.js client cannot run")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256(b"".join((EXAMPLE / f).read_bytes() for f in PACKAGE_FILES)).hexdigest()
    stamp_file = NODE_DIR / ".stamp"
    if not ((NODE_DIR / "node_modules").is_dir() and stamp_file.exists() and stamp_file.read_text() == stamp):
        for name in PACKAGE_FILES:
            shutil.copy(EXAMPLE / name, NODE_DIR / name)
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True,
                              timeout=300)
        if done.returncode:
            pytest.skip(f"npm ci could not install the client's packages (registry unreachable?):\n{done.stderr[-2000:]}")
        stamp_file.write_text(stamp)
    shutil.copy(EXAMPLE / "sluice-submit.mjs", NODE_DIR / "sluice-submit.mjs")
    return NODE_DIR


def samples(tmp_path: Path) -> tuple[Path, Path, str]:
    """A small file, one over the 64 KiB inline limit (it goes through the object store), a URI."""
    small = tmp_path / "hello.txt"
    small.write_bytes(b"hello from node\n")
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(200 * 1024))
    return small, large, "https://example.com/node/payload"


def services() -> list:
    return [make(Echo, "echo"),
            make(Echo, "urlcheck", kinds=["uri"], heuristics=[{"heur_id": 1, "name": "bad url", "score": 1000}])]


async def run_client(node_client: Path, url: str, prefix: str, small: Path, large: Path, uri: str,
                     *options: str) -> dict[str, dict]:
    """Run the example on the three samples; its JSON lines by what was submitted."""
    done = await anyio.run_process(
        ["node", str(node_client / "sluice-submit.mjs"), "--server", url, "--prefix", prefix, "--json",
         "--timeout", "90", "--file", str(small), "--file", str(large), "--uri", uri, *options],
        cwd=node_client, check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, f"{output}\n{done.stderr.decode()[-3000:]}"
    return {line["submitted"]: line for line in map(json.loads, output.splitlines())}


def check_verdicts(lines: dict[str, dict], small: Path, large: Path, uri: str) -> None:
    """Every verdict whole: each file analysed under its own sha256 and size, the URI raising an alert."""
    assert set(lines) == {str(small), str(large), uri}
    for path in (small, large):
        summary = lines[str(path)]["summary"]
        [node] = summary["files"]
        assert (node["name"], node["size"], node["sha256"]) == (path.name, path.stat().st_size,
                                                                  hashlib.sha256(path.read_bytes()).hexdigest())
        assert [r["service"] for r in node["results"]] == ["echo"]
        assert summary["verdict"] == "info" and summary.get("errors", 0) == 0 and not lines[str(path)]["alert"]
        assert summary["metadata"] == {"client": "node"}
    summary = lines[uri]["summary"]
    [node] = summary["files"]
    assert (node["name"], node["kind"], node["type"]) == (uri, "uri", "uri/https")
    assert [r["service"] for r in node["results"]] == ["urlcheck"]
    assert summary["verdict"] == "malicious" and lines[uri]["alert"]


async def uploaded_chunks(url: str, names: Names, identity: str) -> int:
    """Chunks in the file store under `identity`'s upload token (`$O.<bucket>.C.<identity>.<id>`)."""
    nc = await connect(url, name="test-node-uploads")
    try:
        subjects = f"$O.{names.file_bucket}.C.{identity}.>"
        info = await nc.jetstream().stream_info(f"OBJ_{names.file_bucket}", subjects_filter=subjects)
        return sum((info.state.subjects or {}).values())
    finally:
        await close(nc)


async def test_node_client_submits_files_and_a_uri_and_reads_verdicts_and_alerts(node_client, nats_url, prefix, tmp_path):
    """The large file is uploaded under the default identity's token, once: the second run finds
    it named by the dispatcher (checked) and sends its reference without uploading again."""
    small, large, uri = samples(tmp_path)
    async with onebox(nats_url, prefix, services()):
        lines = await run_client(node_client, nats_url, prefix, small, large, uri)
        check_verdicts(lines, small, large, uri)
        uploaded = await uploaded_chunks(nats_url, Names(prefix), "submitter")
        assert uploaded == 1  # 200 KiB in one chunk; the small file and the URI only inline
        again = await run_client(node_client, nats_url, prefix, small, large, uri)
        check_verdicts(again, small, large, uri)
        assert await uploaded_chunks(nats_url, Names(prefix), "submitter") == uploaded


@pytest.mark.parametrize("submitter", [None, "alice"], ids=["default-submitter", "submitter-alice"])
async def test_node_client_as_the_submitter_under_auth(node_client, tmp_path, monkeypatch, submitter):
    """With only a submitter's nkey, as `sluice auth init` writes it: what the client does is what
    that role may do (upload files under its own token, publish submissions on its own subject,
    read the summaries stream). Its identity is read off the seed file's name."""
    names = Names("tn" + secrets.token_hex(3))
    creds = auth.init(tmp_path / "creds", names, ["echo", "urlcheck"], [submitter] if submitter else [])
    role = auth.submitter_role(submitter) if submitter else auth.SUBMITTER
    monkeypatch.setenv(CREDS_ENV, str(tmp_path / "creds"))  # each component of the one-box picks its own
    small, large, uri = samples(tmp_path)
    async with EmbeddedServer(data_dir=tmp_path / "nats", auth_config=tmp_path / "creds" / auth.CONF_NAME) as server:
        async with onebox(server.url, names.prefix, services()):
            lines = await run_client(node_client, server.url, names.prefix, small, large, uri,
                                     "--nkey", str(creds[role]))
    check_verdicts(lines, small, large, uri)
