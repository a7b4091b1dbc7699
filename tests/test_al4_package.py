"""A service written against the real assemblyline-v4-service package runs unchanged: its own
imports, its own task handling (the package's handle_task), its result turned into ours.

Skipped unless the package is installed. It cannot be a default dependency: its `assemblyline`
base library is published as source only and builds a Cython extension (needs a C compiler).
To run it: `.venv/bin/pip install -e '.[al4,test]' && .venv/bin/python -m pytest tests/test_al4_package.py`
(the `al4` extra; about a minute with a compiler).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("assemblyline_v4_service") is None,
                                reason="assemblyline-v4-service is not installed (it needs a C compiler); "
                                       "see this file's docstring to run it")

CODE = '''
from assemblyline_v4_service.common.base import ServiceBase
from assemblyline_v4_service.common.result import Heuristic, Result, ResultKeyValueSection, ResultSection


class Real(ServiceBase):
    def execute(self, request):
        result = Result()
        kv = ResultKeyValueSection("Facts")
        kv.set_item("size", request.file_size)
        result.add_section(kv)
        section = ResultSection("Marker", heuristic=Heuristic(1, signatures={"marker": 2}))
        section.add_tag("network.static.domain", "real.example.com")
        kv.add_subsection(section)
        with open(request.file_path, "rb") as fh:
            data = fh.read()
        child = f"{self.working_directory}/child.txt"
        with open(child, "wb") as fh:
            fh.write(data.upper())
        request.add_extracted(child, "child.txt", "the file, upper case")
        request.set_service_context("real package")
        request.result = result
'''

MANIFEST = '''
name: Real
version: 4.7.0.stable1
description: a service against the real package
accepts: .*
rejects: empty
stage: CORE
category: Static Analysis
file_required: true
timeout: 30
enabled: true
heuristics:
  - {heur_id: 1, name: Marker, score: 10, filetype: "*", description: marker, signature_score_map: {marker: 100}}
docker_config:
  image: real:latest
'''


def real_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "real.py").write_text(CODE)
    (folder / "service_manifest.yml").write_text(MANIFEST)
    (folder / "Dockerfile").write_text("FROM cccs/assemblyline-v4-service-base:stable\nENV SERVICE_PATH real.Real\n")
    return folder


def test_the_package_runs_the_task_and_its_result_is_ours(tmp_path):
    from services.sdk.harness import run_service_once

    run = run_service_once(real_folder(tmp_path), b"hello real\n", name="a.txt")
    assert run.result.error is None, run.result.error
    facts, marker = run.result.sections
    assert facts.body_format == "KEY_VALUE" and json.loads(facts.body) == {"size": 11}
    assert marker.depth == 1 and marker.heuristic.score == 200  # signature_score_map 100 x frequency 2
    assert run.tags("network.static.domain") == {"real.example.com"}
    [child] = run.extracted
    assert (child.name, child.data) == ("child.txt", b"HELLO REAL\n")
    assert run.result.context == "real package"


async def test_sluice_service_run_serves_it_on_the_mesh(nats_url, prefix, tmp_path):
    from sluice.client import Client
    from sluice.onebox import onebox

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "sluice", "service", "run", str(real_folder(tmp_path)),
                             "--nats", nats_url, "--prefix", prefix], env=env, stderr=subprocess.PIPE)
    try:
        async with await Client.connect(nats_url, prefix) as client:
            with anyio.fail_after(90):
                while "Real" not in {r.name for r in await _registry(client)}:
                    assert proc.poll() is None, proc.stderr.read().decode()
                    await anyio.sleep(0.2)
            async with onebox(nats_url, prefix, []):
                summary = await client.wait(await client.submit_bytes([("a.txt", b"on the mesh\n")]), timeout=90)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    [view] = summary.files[0].results
    assert view.service == "Real" and view.score == 200
    assert [c.name for c in summary.files[0].children] == ["child.txt"]


async def _registry(client):
    from bus.codec import decode
    from bus.kv import kv_keys
    from schemas.messages import ServiceRecord

    try:
        kv = await client.js.key_value(client.names.registry_bucket)
    except Exception:  # noqa: BLE001 - not provisioned yet: nothing has registered
        return []
    return [decode((await kv.get(key)).value, ServiceRecord) for key in await kv_keys(client.js, client.names.registry_bucket)]
