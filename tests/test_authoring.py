"""The service author's loop: the guides' own services run unchanged but for imports, the
scaffold writes a service whose test passes, results carry typed bodies and report objects, and
tools that hang are killed with everything they started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import orjson
import pytest

from bus.blobs import BlobError
from schemas.messages import ErrorType, FileRef, ObjectKind, Stage, Task
from services.sdk import ToolTimeout, run_tool
from services.sdk.execution import execute_task
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.sdk.manifest import ManifestError
from sluice.cli import main

# The Assemblyline 4 guide's sample service (001_c221179fb73d3818.txt), comments trimmed, with only
# its import lines changed from `assemblyline_v4_service.common.*` to `services.sdk.*`.
AL4_SAMPLE = '''
from services.sdk.base import ServiceBase
from services.sdk.result import Result, ResultSection

class Sample(ServiceBase):
    def __init__(self, config=None):
        super(Sample, self).__init__(config)

    def start(self):
        self.log.info(f"start() from {self.service_attributes.name} service called")

    def load_rules(self) -> None:
        self.log.info(f'Sample will load the following rule files: {self.rules_list}')

    def execute(self, request):
        result = Result()
        text_section = ResultSection('Example of a default section')
        text_section.add_line("This is a line displayed in the body of the section")
        text_section.set_heuristic(1)
        text_section.add_tag("network.static.domain", "cyber.gc.ca")
        result.add_section(text_section)
        request.result = result
'''

# The guide's manifest (its update_config indentation fixed; the guide's own is mis-indented).
AL4_MANIFEST = '''
name: Sample
version: 4.0.0.dev0
description: ALv4 Sample service from the documentation
accepts: .*
rejects: empty
stage: CORE
category: Static Analysis
file_required: true
timeout: 10
enabled: true
heuristics:
  - description: This is a demo heuristic
    filetype: "*"
    heur_id: 1
    name: Demo
    score: 100
docker_config:
  image: ${REGISTRY}testing/assemblyline-service-sample:latest
  cpu_cores: 1.0
  ram_mb: 1024
dependencies:
    updates:
        container:
            allow_internet_access: true
            command: ["python", "-m", "update_server"]
            image: ${REGISTRY}cccs/assemblyline-service-sample:$SERVICE_TAG
            ports: ["5003"]
        run_as_core: True
update_config:
  sources:
    - uri: https://file-examples-com.github.io/uploads/2017/02/file_example_JSON_1kb.json
      name: sample_1kb_file
  update_interval_seconds: 300
  generates_signatures: true
'''

# The MASS tutorial's size analysis (004_baba469138249c06.txt), imports changed.
MASS_SIZE = '''
from services.sdk.mass import FileAnalysisClient
from services.sdk.mass import temporary_sample_file
import os

class SizeAnalysisInstance(FileAnalysisClient):
    def __init__(self, config):
        super(SizeAnalysisInstance, self).__init__(config)

    def do_analysis(self, analysis_request):
        """ Analyse the size of the file.
        """
        with self.temporary_sample_file() as file:
            file_size = os.path.getsize(file)
            file_size_report = {'file size': file_size}
            self.submit_report(analysis_request['url'],
                               additional_metadata=file_size_report,
                               json_report_objects={'file size analysis': file_size_report},
                               raw_report_objects={'size.txt': str(file_size).encode('ascii')},
                               )
'''


def write_service(folder: Path, code: str, manifest: str) -> Path:
    folder.mkdir()
    (folder / "service.py").write_text(code)
    (folder / "service_manifest.yml").write_text(manifest)
    return folder


def test_assemblyline_sample_runs_with_only_imports_changed(tmp_path):
    folder = write_service(tmp_path / "sample", AL4_SAMPLE, AL4_MANIFEST)
    run = run_service_once(folder, b"any file at all", name="x.bin")
    assert run.result.error is None
    section = run.section("Example of a default section")
    assert section.body == "This is a line displayed in the body of the section"
    assert section.heuristic.heur_id == 1 and section.heuristic.name == "Demo"
    assert run.result.score == 100  # from the manifest, not the code
    assert run.tags("network.static.domain") == {"cyber.gc.ca"}


def test_mass_size_analysis_reports_metadata_and_objects(tmp_path):
    manifest = "name: size_analysis\nversion: '1.0'\n"
    folder = write_service(tmp_path / "size", MASS_SIZE, manifest)
    data = b"x" * 1234
    run = run_service_once(folder, data)
    assert run.result.error is None
    assert run.result.metadata == {"file size": 1234}
    kinds = {p.name: p.kind for p in run.produced}
    assert kinds == {"file size analysis": ObjectKind.JSON_REPORT, "size.txt": ObjectKind.RAW_REPORT}
    assert orjson.loads(run.object("file size analysis")) == {"file size": 1234}
    assert run.object("size.txt") == b"1234"


def test_scaffold_writes_a_service_whose_test_passes(tmp_path, capsys):
    assert main(["service", "new", "my-scanner", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "my-scanner"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile", "service.py", "service_manifest.yml", "test_my_scanner.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout

    sample = tmp_path / "evil.txt"
    sample.write_bytes(b"this is EVIL")
    capsys.readouterr()
    assert main(["service", "test", str(folder), str(sample), "--json"]) == 0
    node = json.loads(capsys.readouterr().out)
    assert node["score"] == 500 and node["results"][0]["service"] == "my-scanner"
    assert main(["service", "test", str(folder), str(sample), "--json", "--config", "marker=XYZ"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == 0  # the deployment's marker, not the manifest's

    assert main(["service", "new", "my-scanner", "--dir", str(tmp_path)]) == 2  # never overwrites
    assert main(["service", "new", "Bad Name", "--dir", str(tmp_path)]) == 2


def test_bad_manifest_fails_at_load_naming_file_and_field(tmp_path):
    folder = write_service(tmp_path / "bad", AL4_SAMPLE, AL4_MANIFEST.replace("timeout: 10", "timeout: soon"))
    with pytest.raises(ManifestError, match=r"bad/service_manifest.yml: .*`\$.timeout`"):
        run_service_once(folder, b"x")


TYPED = '''
from services.sdk import *

class Typed(ServiceBase):
    def execute(self, request):
        result = Result()
        kv = ResultKeyValueSection("Facts", parent=result)
        kv.set_item("size", request.file_size)
        table = ResultTableSection("Rows", parent=kv)
        table.add_row(TableRow(name=".text", entropy=6.1))
        table.add_row(TableRow({"name": ".rsrc", "entropy": 7.9}))
        table.set_heuristic(1, signature="packed")
        table.set_heuristic(1, attack_id="T1027.002", signature="other")
        urls = ResultURLSection("Links", parent=result)
        urls.add_url("https://attack.mitre.org/techniques/T1027/", "T1027")
        ResultMemoryDumpSection("Head", data=request.file_contents[:20], parent=result)
        bad = ResultSection("Tags", parent=result)
        bad.add_tag("network.static.domain", "not a domain")
        bad.add_tag("network.static.ip", "10.0.0.1")
        request.add_supplementary(b"decoded payload", "payload.bin", "what the sample hid")
        request.result = result
'''

TYPED_MANIFEST = '''
name: typed
version: "1"
heuristics:
  - {heur_id: 1, name: Packed, score: 10, signature_score_map: {packed: 200}, max_score: 250}
'''


def test_typed_sections_heuristic_signatures_and_bad_tags(tmp_path):
    folder = write_service(tmp_path / "typed", TYPED, TYPED_MANIFEST)
    run = run_service_once(folder, b"MZ\x90\x00" + bytes(range(40)))
    assert run.result.error is None
    facts, rows = run.section("Facts"), run.section("Rows")
    assert facts.body_format == "KEY_VALUE" and json.loads(facts.body) == {"size": 44}
    assert rows.depth == 1 and rows.body_format == "TABLE"
    assert json.loads(rows.body) == [{"name": ".text", "entropy": 6.1}, {"name": ".rsrc", "entropy": 7.9}]
    # signatures add up (packed 200 from the map, other the heuristic's 10) and max_score caps them
    assert rows.heuristic.score == 210 and run.result.score == 210
    assert rows.heuristic.signatures == ["packed", "other"] and rows.heuristic.attack_ids == ["T1027.002"]
    assert json.loads(run.section("Links").body) == [{"url": "https://attack.mitre.org/techniques/T1027/", "name": "T1027"}]
    assert run.section("Head").body.startswith("00000000  4d 5a 90 00")
    assert run.tags("network.static.ip") == {"10.0.0.1"} and run.tags("network.static.domain") == set()
    assert "not a domain" in run.section("Result warnings").body
    [supp] = run.produced
    assert (supp.name, supp.kind, supp.data) == ("payload.bin", ObjectKind.SUPPLEMENTARY, b"decoded payload")


def test_run_tool_kills_the_whole_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(marker)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match="killed"):
        run_tool([sys.executable, "-c", script], timeout=1.5)
    assert time.monotonic() - started < 10
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kill is sent; the kernel reaps the orphan shortly after
    assert not _alive(child), "the tool's own child outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_run_tool_output_and_missing_tool():
    out = run_tool([sys.executable, "-c", "import sys; sys.stdout.write('x' * 5000); sys.exit(3)"], timeout=30, max_output=100)
    assert out.returncode == 3 and out.stdout == b"x" * 100 and out.truncated
    with pytest.raises(FileNotFoundError):
        run_tool(["/nonexistent/tool"], timeout=5)


async def test_mesh_fixture_runs_a_custom_service(sluice_mesh, tmp_path):
    folder = write_service(tmp_path / "sample", AL4_SAMPLE, AL4_MANIFEST)
    async with sluice_mesh([folder, "extract"]) as mesh:
        summary = await mesh.scan("a.txt", b"hello mesh\n")
    [view] = summary.files[0].results
    assert view.service == "Sample" and summary.score == 100
    assert summary.tags["network.static.domain"] == ["cyber.gc.ca"]


def test_sync_and_async_execute_both_run(tmp_path):
    code = '''
import anyio
from services.sdk import Result, ResultSection, ServiceBase

class Waits(ServiceBase):
    async def execute(self, request):
        await anyio.sleep(0)
        request.result = Result([ResultSection("async ran")])
'''
    folder = write_service(tmp_path / "waits", code, "name: waits\nversion: '1'\n")
    assert run_service_once(folder, b"x").section("async ran")


async def test_report_objects_are_stored_once_and_fetched_by_name(sluice_mesh, tmp_path, capsys):
    folder = write_service(tmp_path / "size", MASS_SIZE, "name: size_analysis\nversion: '1.0'\n")
    async with sluice_mesh([folder]) as mesh:
        summary = await mesh.scan("a.bin", b"y" * 777)
        [view] = summary.files[0].results
        assert view.metadata == {"file size": 777}
        refs = {obj.name: obj for obj in view.objects}
        assert set(refs) == {"file size analysis", "size.txt"}
        assert all(obj.file.data is None for obj in view.objects)  # the summary holds references only
        obj, data = await mesh.client.fetch_object(summary, "file size analysis")
        assert obj.kind == ObjectKind.JSON_REPORT and orjson.loads(data) == {"file size": 777}

        out = tmp_path / "size.txt"
        argv = ["result", summary.sid, "--object", "size.txt", "-o", str(out), "--nats", mesh.url, "--prefix", mesh.prefix]
        assert await anyio.to_thread.run_sync(main, argv) == 0
        assert out.read_bytes() == b"777"
        missing = ["result", summary.sid, "--object", "nope", "--nats", mesh.url, "--prefix", mesh.prefix]
        assert await anyio.to_thread.run_sync(main, missing) == 1
        assert "no object named 'nope'" in capsys.readouterr().err


LAZY = '''
from services.sdk import Result, ResultSection, ServiceBase

class Lazy(ServiceBase):
    def execute(self, request):
        if request.file_name.endswith(".skip"):
            request.result = Result([ResultSection("decided from the name")])
            return
        request.result = Result([ResultSection(f"read {len(request.file_contents)} bytes")])
'''


@pytest.mark.parametrize("name, fetches", [("a.skip", 0), ("a.bin", 1)])
async def test_file_bytes_are_fetched_only_when_a_sync_service_uses_them(tmp_path, name, fetches):
    folder = write_service(tmp_path / "lazy", LAZY, "name: lazy\nversion: '1'\n")
    service = load_service(folder)
    calls = []

    async def fetch() -> bytes:
        calls.append(1)
        return b"12345"

    task = Task(corr="c", sid="s", file=FileRef("0" * 64, 5, name), file_type="unknown", stage=Stage.CORE,
                targets=["lazy"], deadline=time.time() + 30, reply_to="")
    outcome = await execute_task(service, task, fetch, tmp_path, 10)
    assert outcome.result.error is None
    assert len(calls) == fetches
    assert outcome.result.sections[0].title == ("decided from the name" if fetches == 0 else "read 5 bytes")


async def test_a_file_that_cannot_be_fetched_is_an_unreachable_error(tmp_path):
    folder = write_service(tmp_path / "lazy", LAZY, "name: lazy\nversion: '1'\n")

    async def fetch() -> bytes:
        raise BlobError("gone from the store")

    task = Task(corr="c", sid="s", file=FileRef("0" * 64, 5, "a.bin"), file_type="unknown", stage=Stage.CORE,
                targets=["lazy"], deadline=time.time() + 30, reply_to="")
    outcome = await execute_task(load_service(folder), task, fetch, tmp_path, 10)
    assert outcome.result.error.type == ErrorType.UNREACHABLE and "gone from the store" in outcome.result.error.message


def test_max_score_caps_the_signatures_sum(tmp_path):
    code = TYPED.replace('signature="other"', 'signature="packed2"')
    folder = write_service(tmp_path / "typed", code, TYPED_MANIFEST.replace("{packed: 200}", "{packed: 200, packed2: 200}"))
    assert run_service_once(folder, b"x" * 44).section("Rows").heuristic.score == 250


def test_a_custom_service_imports_its_own_modules(tmp_path, capsys):
    folder = write_service(tmp_path / "helped", "from helper import shout\nfrom services.sdk import *\n\n"
                           "class Helped(ServiceBase):\n    def execute(self, request):\n"
                           "        request.result = Result([ResultSection(shout('hi'))])\n",
                           "name: helped\nversion: 1\n")
    (folder / "helper.py").write_text("def shout(text):\n    return text.upper() + '!'\n")
    sample = tmp_path / "x.txt"
    sample.write_text("x")
    assert main(["service", "test", str(folder), str(sample)]) == 0
    assert "HI!" in capsys.readouterr().out


def test_service_test_shows_metadata_and_report_objects(tmp_path, capsys):
    folder = write_service(tmp_path / "size", MASS_SIZE, "name: size_analysis\nversion: '1.0'\n")
    sample = tmp_path / "x.bin"
    sample.write_bytes(b"z" * 321)
    assert main(["service", "test", str(folder), str(sample), "--json"]) == 0
    [view] = json.loads(capsys.readouterr().out)["results"]
    assert view["metadata"] == {"file size": 321}
    assert {o["name"]: o["file"]["size"] for o in view["objects"]} == {"file size analysis": 22, "size.txt": 3}


async def test_disabled_service_runs_only_when_selected(sluice_mesh, tmp_path):
    from schemas.messages import SubmissionParams
    folder = write_service(tmp_path / "sample", AL4_SAMPLE, AL4_MANIFEST.replace("enabled: true", "enabled: false"))
    async with sluice_mesh([folder, "iocs"]) as mesh:
        plain = await mesh.scan("a.txt", b"plain text\n")
        chosen = await mesh.scan("b.txt", b"other text\n", SubmissionParams(services=["Sample"]))
    assert [v.service for v in plain.files[0].results] == ["iocs"]
    assert [v.service for v in chosen.files[0].results] == ["Sample"]


def test_mass_client_can_reach_the_whole_request(tmp_path):
    code = MASS_SIZE.replace("            self.submit_report(", "            self.request.result = Result([ResultSection('sized', heuristic=1)])\n            self.submit_report(")
    code = "from services.sdk import Result, ResultSection\n" + code
    folder = write_service(tmp_path / "size", code, "name: size_analysis\nversion: '1.0'\nheuristics: [{heur_id: 1, name: Sized, score: 5}]\n")
    run = run_service_once(folder, b"abc")
    assert run.result.score == 5 and run.result.metadata == {"file size": 3}


def _sluice(*args: str, cwd: Path, creds: str | None = None, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_NATS_URL", "SLUICE_NATS_CREDS")}
    if creds:
        env["SLUICE_NATS_CREDS"] = creds
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "sluice", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_scan_with_service_dirs_runs_them_beside_the_built_ins(tmp_path):
    sample = write_service(tmp_path / "sample", AL4_SAMPLE, AL4_MANIFEST)
    size = write_service(tmp_path / "size", MASS_SIZE, "name: size_analysis\nversion: '1.0'\n")
    (tmp_path / "a.txt").write_text("hello one-box\n")
    proc = _sluice("scan", "--json", "--data-dir", str(tmp_path / "data"), "--service-dir", str(sample),
                   "--service-dir", str(size), "a.txt", cwd=tmp_path)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    [doc] = [json.loads(line) for line in out.splitlines()]
    services = {r["service"] for r in doc["files"][0]["results"]}
    assert {"Sample", "size_analysis", "iocs"} <= services  # theirs and the built-ins
    assert doc["score"] >= 100


@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth"])
def test_up_with_a_service_dir_serves_it(tmp_path, auth):
    """With --auth, the service gets an identity of its own, made with the built-ins' ones."""
    sample = write_service(tmp_path / "sample", AL4_SAMPLE, AL4_MANIFEST)
    (tmp_path / "a.txt").write_text("hello up\n")
    extra = ["--auth", str(tmp_path / "auth")] if auth else ["--no-auth"]
    up = _sluice("up", "--data-dir", str(tmp_path / "data"), "--service-dir", str(sample), "--web", "off", *extra,
                 cwd=tmp_path)
    creds = None
    try:
        line = up.stdout.readline()
        if auth:  # `export SLUICE_NATS_CREDS=...submitter.nk` comes first
            assert line.startswith("export SLUICE_NATS_CREDS="), line + up.stderr.read()
            creds = line.split("=", 1)[1].strip()
            line = up.stdout.readline()
        assert line.startswith("export SLUICE_NATS_URL="), line + up.stderr.read()  # once everything is up
        url = line.split("=", 1)[1].split()[0]
        scan = _sluice("scan", "--json", "--nats", url, "--service", "Sample", "a.txt", cwd=tmp_path, creds=creds)
        out, err = scan.communicate(timeout=120)
        assert scan.returncode == 0, err
        [view] = json.loads(out)["files"][0]["results"]
        assert view["service"] == "Sample" and view["score"] == 100
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=60)
    assert up.returncode == 0


def test_a_service_dir_that_names_a_built_in_is_refused(tmp_path, capsys):
    clash = write_service(tmp_path / "clash", AL4_SAMPLE, AL4_MANIFEST.replace("name: Sample", "name: iocs"))
    (tmp_path / "a.txt").write_text("x")
    assert main(["scan", "--data-dir", str(tmp_path / "data"), "--service-dir", str(clash), str(tmp_path / "a.txt")]) == 2
    assert "iocs is the name of a built-in service" in capsys.readouterr().err
