"""Assemblyline 4.7's service API beyond the guide's sample: every section and body type, their
terminal and web rendering, heuristics with signatures, frequency and ATT&CK ids, section
options, partial results, service context, images, AL4's add_extracted arguments; manifests as
AL4 writes them; the code file found as AL4 finds it; loader errors of one line."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from schemas.messages import ObjectKind, SubmissionParams
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.sdk.manifest import load_manifest
from sluice.cli import main
from sluice.client import Client
from sluice.onebox import onebox
from sluice.render import node_tree
from sluice.section_text import body_lines
from sluice.service_cli import _local_node

EVERY_SECTION = '''
from services.sdk.base import ServiceBase
from services.sdk.result import *
from services.sdk.sandbox import *

class Every(ServiceBase):
    def execute(self, request):
        result = Result()
        ResultTextSection("text", body="plain words", parent=result, classification="TLP:CLEAR", auto_collapse=True)
        ResultMemoryDumpSection("dump", body="00 01 02", parent=result)
        graph = ResultGraphSection("entropy", parent=result)
        graph.set_colormap(0, 8, [0, 4, 8])
        graph.promote_as_entropy()
        urls = ResultURLSection("links", parent=result)
        urls.add_url("https://example.com/a", name="a")
        ResultJSONSection("json", body={"k": [1, 2]}, parent=result)
        ResultKeyValueSection("kv", body={"size": 3}, parent=result)
        okv = ResultOrderedKeyValueSection("okv", parent=result)
        okv.add_item("b", 1)
        okv.add_item("a", 2)
        tree = ResultProcessTreeSection("procs", parent=result)
        parent = ProcessItem(100, "cmd.exe", "cmd /c evil", signatures={"spawns": 10})
        parent.add_child_process(ProcessItem(101, "evil.exe", "evil.exe --go"))
        tree.add_process(parent)
        table = ResultTableSection("table", parent=result)
        table.add_row(TableRow(name=".text", entropy=6.1))
        table.set_column_order(["entropy", "name"])
        images = ResultImageSection(request, "shots", parent=result)
        images.add_image(b"\\x89PNG fake", "shot.png", "the first screen", ocr_heuristic_id=1)
        multi = ResultMultiSection("multi", parent=result)
        multi.add_section_part(TextSectionBody(body="part one"))
        multi.add_section_part(DividerSectionBody())
        kv = KVSectionBody(x=1)
        multi.add_section_part(kv)
        timeline = ResultTimelineSection("timeline", parent=result)
        timeline.add_node("start", "the sample ran", "00:00", score=5)
        box = ResultSandboxSection("sandbox", parent=result)
        box.set_sandbox("cape", "2.4", SandboxMachineMetadata(platform="windows"), SandboxAnalysisMetadata(start_time="t0"))
        box.add_process(SandboxProcessItem(image="evil.exe", start_time="t0", pid=101, command_line="evil.exe --go"))
        box.add_netflow(SandboxNetflowItem(destination_ip="192.0.2.1", destination_port=443, transport_layer_protocol="tcp"))
        box.add_signature(SandboxSignatureItem(name="injects", type="CUCKOO", classification="malicious"))
        heur = ResultSection("scored", parent=result, zeroize_on_tag_safe=True,
                             heuristic=Heuristic(1, signatures={"sig_a": 2}, attack_ids=["T1055"], score_map={"sig_a": 7}))
        heur.heuristic.add_signature_id("sig_b", frequency=3)
        ResultSection("counted", parent=result, heuristic=Heuristic(2, frequency=4))
        result.add_tag("network.static.domain", "tagged.example.com")
        request.add_extracted(b"child bytes", "child.bin", "a child", classification="TLP:CLEAR",
                              safelist_interface=None, allow_dynamic_recursion=True, parent_relation="DYNAMIC")
        request.set_service_context("engine 1.2, rules 2031-01-01")
        self.ontology.add_result_part(type("Sandbox", (), {}), {"sandbox_name": "cape"})
        self.ontology.add_other_part("note", "from the ontology")
        request.partial()
        request.result = result
'''

MANIFEST = '''
name: Every
version: 1.10
heuristics:
  - {heur_id: 1, name: Scored, score: 100, signature_score_map: {sig_b: 50}}
  - {heur_id: 2, name: Counted, score: 10}
'''

FORMATS = ["TEXT", "MEMORY_DUMP", "GRAPH_DATA", "URL", "JSON", "KEY_VALUE", "ORDERED_KEY_VALUE", "PROCESS_TREE",
           "TABLE", "IMAGE", "MULTI", "TIMELINE", "SANDBOX"]


def folder_with(tmp_path: Path, code: str = EVERY_SECTION, manifest: str = MANIFEST, name: str = "every") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "service.py").write_text(code)
    (folder / "service_manifest.yml").write_text(manifest)
    return folder


def test_every_section_type_heuristics_and_request_extras(tmp_path):
    run = run_service_once(folder_with(tmp_path), b"sample")
    assert run.result.error is None
    sections = {s.title: s for s in run.result.sections}
    assert [sections[t].body_format for t in ("text", "dump", "entropy", "links", "json", "kv", "okv", "procs", "table",
                                              "shots", "multi", "timeline", "sandbox")] == FORMATS
    assert sections["text"].classification == "TLP:CLEAR" and sections["text"].auto_collapse
    assert sections["entropy"].promote_to == "ENTROPY"
    assert json.loads(sections["okv"].body) == [["b", 1], ["a", 2]]
    assert sections["table"].body_config == {"column_order": ["entropy", "name"]}
    assert json.loads(sections["procs"].body)[0]["children"][0]["process_name"] == "evil.exe"
    assert json.loads(sections["multi"].body) == [["TEXT", "part one", {}], ["DIVIDER", None, {}], ["KEY_VALUE", {"x": 1}, {}]]
    assert json.loads(sections["sandbox"].body)["netflows"][0]["destination_port"] == 443
    assert sections["OCR not run"].depth == 1  # the image asked for OCR: said, not silently skipped
    # sig_a: the service's score_map 7 x 2; sig_b: the manifest's signature_score_map 50 x 3
    scored = sections["scored"]
    assert scored.heuristic.score == 7 * 2 + 50 * 3 and scored.heuristic.attack_ids == ["T1055"]
    assert scored.heuristic.signatures == ["sig_a", "sig_b"] and scored.zeroize_on_tag_safe
    assert sections["counted"].heuristic.score == 40  # score x frequency
    assert run.result.score == 164 + 40
    assert run.tags("network.static.domain") == {"tagged.example.com"}  # tags on the Result
    assert run.result.partial and run.result.context == "engine 1.2, rules 2031-01-01"
    ontology = json.loads(run.object("ontology"))
    assert ontology["results"]["sandbox"][0]["sandbox_name"] == "cape" and ontology["other"] == {"note": "from the ontology"}
    [image] = [p for p in run.produced if p.name == "shot.png"]
    assert image.kind == ObjectKind.SUPPLEMENTARY
    [child] = run.extracted
    assert (child.name, child.data) == ("child.bin", b"child bytes")


def test_every_section_type_renders_in_the_terminal(tmp_path, capsys):
    run = run_service_once(folder_with(tmp_path), b"sample")
    node = _local_node(run, "sample", b"sample", "unknown")
    console = Console(width=200, record=True, color_system=None)
    console.print(node_tree(node))
    out = console.export_text()
    for expected in ("plain words", "colormap 0..8: ▁▅█", "a  https://example.com/a", "size: 3", "b: 1",
                     "100 cmd.exe: cmd /c evil  [spawns]", "  101 evil.exe: evil.exe --go", "entropy: 6.1  name: .text",
                     "image shot.png", "part one", "────", "00:00  start: the sample ran  [+5]",
                     "sandbox cape 2.4 windows: 1 processes, 1 network flows, 1 signatures", "(partial)",
                     "engine 1.2, rules 2031-01-01"):
        assert expected in out, expected


def test_a_body_not_of_its_format_shows_as_text():
    assert body_lines("PROCESS_TREE", '{"not": "a list"}') == ["not: a list"]
    assert body_lines("GRAPH_DATA", "not json") == ["not json"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the web renderer is checked in a browser by test_web_browser")
def test_every_section_type_renders_in_the_web_front(tmp_path):
    """sluice/web/static/sections.js under node, with an el() that builds plain objects."""
    run = run_service_once(folder_with(tmp_path), b"sample")
    sections = [{"title": s.title, "body": s.body, "body_format": s.body_format, "body_config": s.body_config}
                for s in run.result.sections if s.body_format in FORMATS]
    script = tmp_path / "render.mjs"
    script.write_text(f'''
import {{ sectionBody }} from "{Path(__file__).resolve().parents[1] / "sluice/web/static/sections.js"}";
const el = (tag, attrs, ...children) => ({{ tag, attrs, children: children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false) }});
const text = (n) => (typeof n === "object" ? `<${{n.tag}}${{n.attrs.href ? " href=" + n.attrs.href : ""}}${{n.attrs.src ? " src=" + n.attrs.src : ""}}>` + n.children.map(text).join("") : String(n));
const sections = JSON.parse(process.argv[2]);
console.log(JSON.stringify(sections.map((s) => [s.body_format, text(sectionBody(s, el, (name) => "/obj/" + name))])));
''')
    done = subprocess.run(["node", str(script), json.dumps(sections)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    html = dict(json.loads(done.stdout))
    assert set(html) == set(FORMATS)
    assert "<dt>size<dd>3" in html["KEY_VALUE"] and "<dt>b<dd>1" in html["ORDERED_KEY_VALUE"]
    assert "<th>entropy<th>name" in html["TABLE"].replace("</th>", "")
    assert "<a href=https://example.com/a>a" in html["URL"]
    assert "▁▅█" in html["GRAPH_DATA"] and "evil.exe --go" in html["PROCESS_TREE"]
    assert "<img src=/obj/shot.png>" in html["IMAGE"] and "<hr>" in html["MULTI"]
    assert "the sample ran" in html["TIMELINE"] and "injects (CUCKOO)" in html["SANDBOX"]
    assert "<details>" in html["JSON"]


async def test_partial_results_are_not_cached(nats_url, prefix, tmp_path):
    service = load_service(folder_with(tmp_path))
    async with onebox(nats_url, prefix, [service]), await Client.connect(nats_url, prefix) as client:
        first = await client.wait(await client.submit_bytes([("a.bin", b"same bytes")]), timeout=60)
        again = await client.wait(await client.submit_bytes([("a.bin", b"same bytes")], SubmissionParams()), timeout=60)
    [view] = [v for v in first.files[0].results if v.service == "Every"]
    assert view.partial and view.context == "engine 1.2, rules 2031-01-01"
    [view] = [v for v in again.files[0].results if v.service == "Every"]
    assert not view.cached  # a partial result is run again, never taken from the cache


# -- manifests and loading ---------------------------------------------------------------------

def test_version_keeps_its_written_form(tmp_path):
    folder = folder_with(tmp_path)
    assert load_manifest(folder).version == "1.10"
    (folder / "service_manifest.yml").write_text(MANIFEST.replace("version: 1.10", "version: 1.1"))
    assert load_manifest(folder).version == "1.1"  # a different version: 1.10's cached results are not 1.1's


def test_fields_not_acted_on_are_named_in_one_warning(tmp_path, caplog):
    manifest = MANIFEST + "docker_config: {image: x, ram_mb: 512}\nuses_tags: true\nmonitored_keys: [passwords]\n"
    with caplog.at_level(logging.WARNING, logger="sluice.manifest"):
        load_manifest(folder_with(tmp_path, manifest=manifest))
    [record] = caplog.records
    for field in ("docker_config", "uses_tags", "monitored_keys"):
        assert f"`{field}`" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sluice.manifest"):
        load_manifest(folder_with(tmp_path, name="quiet"))
    assert caplog.records == []


SAMPLE = '''
from services.sdk.base import ServiceBase
from services.sdk.result import Result, ResultSection

class Sample(ServiceBase):
    def execute(self, request):
        request.result = Result([ResultSection("found")])
'''


def test_the_class_is_found_as_al4_finds_it(tmp_path, monkeypatch):
    # a Dockerfile's ENV SERVICE_PATH names module.Class
    folder = tmp_path / "docker"
    folder.mkdir()
    (folder / "sample.py").write_text(SAMPLE)
    (folder / "service_manifest.yml").write_text("name: sample\nversion: '1'\n")
    (folder / "Dockerfile").write_text("FROM base\nENV SERVICE_PATH=sample.Sample\n")
    assert type(load_service(folder)).__name__ == "Sample"
    # a service.py that imports the class from its module (found 0 classes before)
    other = tmp_path / "imported"
    other.mkdir()
    (other / "sample.py").write_text(SAMPLE.replace("Sample(", "Imported("))
    (other / "service.py").write_text("from sample import Imported\n")
    (other / "service_manifest.yml").write_text("name: imported\nversion: '1'\n")
    assert type(load_service(other)).__name__ == "Imported"
    # the environment, as AL4's container sets it
    (folder / "Dockerfile").unlink()
    monkeypatch.setenv("SERVICE_PATH", "sample.Sample")
    assert run_service_once(folder, b"x").section("found")


@pytest.mark.parametrize(("files", "message"), [
    ({"service.py": "from assemblyline_v4_service.common.base import ServiceBase\n"},
     "imports assemblyline_v4_service, which is not installed: change those imports to services.sdk"),
    ({"service.py": "def broken(:\n"}, "service.py:1: invalid syntax"),
    ({"service.py": "import nosuchmodule_xyz\n"}, "No module named 'nosuchmodule_xyz' (install it where the service runs"),
    ({"service.py": "x = 1\n"}, "expected one ServiceBase subclass, found 0 (none); name it with ENV SERVICE_PATH"),
    ({"Dockerfile": "ENV SERVICE_PATH sample.Nope\n", "sample.py": SAMPLE}, "SERVICE_PATH 'sample.Nope': sample has no class Nope"),
    ({"service.py": SAMPLE, "service_manifest.yml": "name: s\nversion: 1\nsources: []\n"},
     "unknown field `sources` (it is an update_config field: indent it under `update_config:`)"),
    ({"service.py": SAMPLE.replace("class Sample", "class NoManifest")}, "no service_manifest.yml; write one"),
])
def test_loader_errors_say_what_to_do_in_one_line(tmp_path, capsys, files, message):
    folder = tmp_path / "svc"
    folder.mkdir()
    files = {"service_manifest.yml": "name: s\nversion: '1'\n", **files} if "NoManifest" not in str(files) else files
    for name, text in files.items():
        (folder / name).write_text(text)
    sample = tmp_path / "x.txt"
    sample.write_text("x")
    assert main(["service", "test", str(folder), str(sample)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_common_utils_alarm_clock_and_passwords():
    from services.sdk.utils import TimeoutException, alarm_clock, extract_passwords

    started = time.monotonic()
    with pytest.raises(TimeoutException):
        with alarm_clock(0.3):
            while True:  # Python code: the alarm reaches it, in whatever thread runs it
                time.sleep(0.01)
    assert time.monotonic() - started < 5
    with alarm_clock(5):
        pass  # finished in time: nothing raised, and nothing later either
    time.sleep(0.1)
    found = extract_passwords('Open the zip.\nPassword: "infected123"\nmot de passe: s3cret')
    assert {"infected123", "s3cret", "Open"} <= found


def test_al4_module_names():
    from services.sdk.request import ServiceRequest
    from services.sdk.task import PARENT_RELATION, MaxExtractedExceeded

    assert ServiceRequest.__name__ == "Request" and PARENT_RELATION.DYNAMIC == "DYNAMIC"
    assert issubclass(MaxExtractedExceeded, RuntimeError)
