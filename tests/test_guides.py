"""Every code example of the three service guides (`../shared/seeds/`: the AL3 tutorial, the AL4
service guide, the MASS tutorial) runs on a real mesh with only its import lines changed.

The code is read out of the guides at test time (tests/guides.py), so these tests follow the
guides and cannot drift from them. Where a guide has a plain bug, the test fixes exactly that
and says so where it does; where a guide gives a fragment (a method, a few lines), the test
puts it where the guide says it goes, in the guide's own tutorial service.

Not run, and why: the AL3 tutorial's shell commands (`register_service.py`, `run_service_live.py`:
`sluice service run DIR` is theirs), its `__init__.py` line (an `al_services` package path; the
loader finds the class in the folder), its `installer.py` (AL3's SiteInstaller: dependencies go
in the image), and its "Nested ResultSections" example, which is not Python (a positional
argument after a keyword one, Python 2 prints, `def execute():` without self).
"""

from __future__ import annotations

import configparser
import json
import os
import signal
import subprocess
import sys
import textwrap
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import orjson
import pytest

from bus.provision import provision
from bus.subjects import Names
from schemas.messages import ObjectKind
from services.sdk.al3 import UpdaterFrequency, UpdaterType
from services.sdk.loader import load_service
from sluice.client import Client
from sluice.onebox import onebox
from guides import AL3, AL4, MASS, SEEDS, guide, swap_imports

pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the guides are not at {SEEDS} (the shared folder "
                                                         "sits beside the repository in CI)")
REPO = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def mesh(url: str, prefix: str, services: list):
    async with onebox(url, prefix, services), await Client.connect(url, prefix) as client:
        yield client


async def scan(client: Client, name: str, data: bytes):
    return await client.wait(await client.submit_bytes([(name, data)]), timeout=90)


def body(code: str, indent: int) -> str:
    return textwrap.indent(code, " " * indent)


def only_result(summary, service: str):
    [view] = [v for v in summary.files[0].results if v.service == service]
    assert not summary.files[0].errors, summary.files[0].errors
    return view


# -- Assemblyline 4 ---------------------------------------------------------------------------

def al4_manifest(source_uri: str) -> str:
    """The guide's manifest with two changes: the indentation it lost under `update_config`
    (its sources and settings sit at the top level, and `name` outside its list item) put
    back, and the source's URI pointed at a local file (no internet here)."""
    manifest = guide(AL4).block("name: Sample", "update_config:")
    head, _, tail = manifest.partition("update_config:\n")
    fixed = []
    for line in tail.splitlines():
        extra = "    " if line.strip().startswith("name:") else "  "
        fixed.append(extra + line if line.strip() else line)
    fixed_text = "\n".join(fixed).replace(
        "https://file-examples-com.github.io/uploads/2017/02/file_example_JSON_1kb.json", source_uri)
    return head + "update_config:\n" + fixed_text + "\n"


def al4_folder(tmp_path: Path) -> Path:
    """The guide's service folder: sample.py, update_server.py, service_manifest.yml, Dockerfile
    (whose ENV SERVICE_PATH sample.Sample is how the class is found)."""
    g = guide(AL4)
    folder = tmp_path / "assemblyline-service-sample"
    folder.mkdir()
    source = tmp_path / "file_example_JSON_1kb.json"
    source.write_text(json.dumps({"rule": "sample", "version": 1}))
    (folder / "sample.py").write_text(swap_imports(g.block("class Sample(ServiceBase)")))
    (folder / "update_server.py").write_text(swap_imports(g.block("class SampleUpdateServer")))
    (folder / "service_manifest.yml").write_text(al4_manifest(source.as_uri()))
    (folder / "Dockerfile").write_text(g.block("ENV SERVICE_PATH"))
    return folder


async def test_al4_sample_service_runs_found_through_its_dockerfile(nats_url, prefix, tmp_path):
    service = load_service(al4_folder(tmp_path))
    assert type(service).__name__ == "Sample" and service.manifest.version == "4.0.0.dev0"
    async with mesh(nats_url, prefix, [service]) as client:
        summary = await scan(client, "any.txt", b"a file the sample service scans\n")
    view = only_result(summary, "Sample")
    [section] = view.sections
    assert section.title == "Example of a default section"
    assert section.body == "This is a line displayed in the body of the section"
    assert section.heuristic.heur_id == 1 and view.score == 100
    assert summary.tags["network.static.domain"] == ["cyber.gc.ca"]


async def test_al4_update_server_publishes_rules_the_running_service_loads(nats_url, prefix, tmp_path):
    folder = al4_folder(tmp_path)
    service = load_service(folder)
    async with mesh(nats_url, prefix, [service]):
        env = {**os.environ, "SLUICE_NATS_URL": nats_url, "SLUICE_PREFIX": prefix,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        # As the manifest's dependency runs it: `python -m update_server` in the service folder.
        proc = subprocess.Popen([sys.executable, "-m", "update_server"], cwd=folder, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            with anyio.fail_after(60):
                while not service.rules_list:  # the follower loads each announced set on its heartbeat
                    assert proc.poll() is None, proc.stdout.read().decode()
                    await anyio.sleep(0.2)
            [rule_file] = service.rules_list
            # import_update made one signature of the source's file; it is the published rule file
            assert Path(rule_file).name == "sample_1kb_file.sample_signature0"
            assert json.loads(Path(rule_file).read_text()) == {"rule": "sample", "version": 1}
            assert service.get_tool_version() == service.rules_version != ""
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()


# -- Assemblyline 3 ---------------------------------------------------------------------------

def al3_tutorial() -> str:
    """The tutorial service, its one bug fixed: `super(Example, self)` names a class that does not
    exist (the guide renamed the class to ServiceTutorial and not its super call)."""
    code = guide(AL3).block("from assemblyline.al.service.base import ServiceBase\n", "SERVICE_CATEGORY", "def execute")
    return swap_imports(code).replace("super(Example, self)", "super(ServiceTutorial, self)")


def class_members(snippet: str) -> str:
    """A snippet's class body, without its `class` line and the `...`/`....` that stands for the rest."""
    lines = snippet.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class ")) + 1
    return "\n".join(line for line in lines[start:] if line.strip() not in ("...", "....")) + "\n"


def al3_snippets_service() -> str:
    """The tutorial with every snippet of "Tags", "Making it Useful", "import_service_deps()",
    "Service Configuration" and "Self-updating services" where the guide puts it."""
    g = guide(AL3)
    tutorial = al3_tutorial()
    update = g.block("_register_update_callback")
    imports = [line for line in update.splitlines() if line.startswith("from ")]
    # "your service should import TAG_TYPE, TAG_WEIGHT and TAG_USAGE from assemblyline.al.common.result"
    imports.append("from assemblyline.al.common.result import TAG_TYPE, TAG_WEIGHT, TAG_USAGE")
    members = (class_members(g.block("SERVICE_DEFAULT_CONFIG")) + class_members(update)
               + body(g.block("def import_service_deps"), 4))
    useful = body(g.block("request.download()"), 4).splitlines()[1:]  # the lines of its execute
    tagging = body(g.block("result.add_tag(TAG_TYPE.NET_PROTOCOL"), 4).splitlines()[1:]
    tutorial_execute = tutorial.split("    def execute(self, request):\n")[1].splitlines()
    # the tagging snippet's `...` is the tutorial's own execute: its section, then request.result
    middle = tutorial_execute[1:-1]
    execute = "\n".join(useful + [tagging[0]] + middle + tagging[2:] + [tutorial_execute[-1]])
    head = tutorial.split("    def execute(self, request):\n")[0]
    return swap_imports("\n".join(imports)) + "\n" + head + members + "\n    def execute(self, request):\n" + execute + "\n"


async def test_al3_tutorial_runs_without_a_manifest(nats_url, prefix, tmp_path):
    folder = tmp_path / "alsvc_tutorial"
    folder.mkdir()
    (folder / "service_tutorial.py").write_text(al3_tutorial())
    service = load_service(folder)  # the SERVICE_* class attributes are its manifest
    m = service.manifest
    assert (m.name, m.version, m.category, m.accepts, m.stage.value) == ("ServiceTutorial", "1.0", "Static Analysis",
                                                                         ".*", "CORE")
    async with mesh(nats_url, prefix, [service]) as client:
        summary = await scan(client, "t.txt", b"tutorial input\n")
    [section] = only_result(summary, "ServiceTutorial").sections
    assert (section.title, section.body, section.heuristic) == ("Tutorial service completed", "Nothing done.", None)
    assert summary.score == 0


async def test_al3_snippets_tags_config_deps_and_update_callbacks(nats_url, prefix, tmp_path):
    folder = tmp_path / "alsvc_tutorial"
    folder.mkdir()
    (folder / "service_tutorial.py").write_text(al3_snippets_service())
    service = load_service(folder)
    assert service.cfg.get("TOOL_PATH") == "/opt/al/support/service_tutorial/"
    assert service.cfg.get("IS_BOOLEAN") is True
    module = sys.modules[type(service).__module__]
    assert module.yara.__name__ == "yara" and module.requests.__name__ == "requests"  # import_service_deps ran
    async with mesh(nats_url, prefix, [service]) as client:
        [callback] = service._callbacks  # registered by start(), which the runner called
        assert (callback.utype, callback.freq) == (UpdaterType.BOX, UpdaterFrequency.QUARTER_DAY)
        summary = await scan(client, "t.txt", b"tutorial input\n")
    view = only_result(summary, "ServiceTutorial")
    assert [s.title for s in view.sections] == ["Tutorial service completed", "Result tags"]
    assert summary.tags["network.protocol"] == ["tcp"]


def al3_tool_version_service() -> str:
    """ "get_tool_version()": the tutorial with the guide's canonical paradigm. Its plain bugs
    fixed: `super(Example, self)` again, `start` and `get_tool_version` indented one space too
    deep, and `start` holding only comments (`pass` added)."""
    snippet = guide(AL3).block("def get_tool_version").replace("super(Example, self)", "super(ServiceTutorial, self)")
    snippet = "\n".join(line[1:] if (len(line) - len(line.lstrip(" "))) % 4 == 1 else line  # 5 or 9 spaces
                        for line in snippet.splitlines())
    snippet = snippet.replace("        # and put the result in self._mytool_version\n",
                              "        # and put the result in self._mytool_version\n        pass\n")
    tutorial = al3_tutorial()
    head, _, execute = tutorial.partition("    def __init__(self, cfg=None):")
    execute = "    def execute" + execute.split("    def execute", 1)[1]
    return head + class_members(snippet) + "\n" + execute


async def test_al3_tool_version_is_part_of_the_result(nats_url, prefix, tmp_path):
    folder = tmp_path / "alsvc_tutorial"
    folder.mkdir()
    (folder / "service_tutorial.py").write_text(al3_tool_version_service())
    service = load_service(folder)
    assert service.get_tool_version() == "unknown"
    async with mesh(nats_url, prefix, [service]) as client:
        summary = await scan(client, "t.txt", b"tool version\n")
    assert only_result(summary, "ServiceTutorial").sections[0].title == "Tutorial service completed"


def al3_execution_service() -> str:
    """ "Execution gone wild": the reaper, the Python timer and the subprocess timer, run in a
    service's execute. Changes: imports only (the snippets use `time`, `subprocess`,
    `Subprocess`, `PIPE` and `TimeoutException` without importing them), and Python 2's
    `print "..."` statements as print() calls, which the service sends to its section."""
    g = guide(AL3)
    snippets = [g.block("set_death_signal()", "Popen"), g.block("timeout(my_function"), g.block("SubprocessTimer(2)")]
    code = "\n".join(s for s in snippets).replace('print "', 'print("')
    code = "\n".join(line + ")" if 'print("' in line else line for line in code.splitlines())
    imports = [line for line in code.splitlines() if line.startswith("from ")]
    run = "\n".join(line for line in code.splitlines() if not line.startswith("from "))
    return swap_imports("\n".join([
        "import subprocess", "import subprocess as Subprocess", "import time", "from subprocess import PIPE",
        "from assemblyline.common.timeout import TimeoutException",
        "from assemblyline.al.service.base import ServiceBase",
        "from assemblyline.al.common.result import Result, ResultSection, SCORE", *imports, "",
        "class GoneWild(ServiceBase):",
        "    def execute(self, request):",
        "        section = ResultSection(SCORE.NULL, 'Execution gone wild')",
        "        print = section.add_line",
        body(run, 8),
        "        result = Result()",
        "        result.add_section(section)",
        "        request.result = result",
    ])) + "\n"


async def test_al3_timers_and_reaper(nats_url, prefix, tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "my_shell_command").write_text("#!/bin/sh\necho done\n")  # the reaper snippet's command
    (tools / "my_shell_command").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    folder = tmp_path / "gone_wild"
    folder.mkdir()
    (folder / "service.py").write_text(al3_execution_service())
    async with mesh(nats_url, prefix, [folder]) as client:
        summary = await scan(client, "t.txt", b"x\n")
    [section] = only_result(summary, "GoneWild").sections
    assert section.body.splitlines() == ["Timeout reached", "Process timeout!"]


# -- MASS -------------------------------------------------------------------------------------

def mass_first_client() -> str:
    """The tutorial's first client, whose do_analysis holds only a comment (not valid Python):
    `pass` added."""
    return swap_imports(guide(MASS).block("# DO FILE ANALYSIS HERE")).rstrip() + "\n        pass\n"


def mass_report_client() -> str:
    """The first client with the tutorial's fragments where it puts them: the temporary file,
    then all three ways to report ("Of course we can do any combination of these three").
    `import os` added, which the fragments use."""
    g = guide(MASS)
    fragments = [g.block("with self.temporary_sample_file() as filename"), g.block("additional_metadata={'file size'"),
                 g.block("json_report_objects"), g.block("raw_report_objects")]
    code = mass_first_client().replace("        # DO FILE ANALYSIS HERE\n        pass\n", body("\n".join(fragments), 8))
    return "import os\n" + code


async def test_mass_clients_as_the_tutorial_writes_them(nats_url, prefix, tmp_path):
    folders = {}
    for name, code in [("mass_empty", mass_first_client()), ("mass_report", mass_report_client()),
                       ("mass_size", swap_imports(guide(MASS).block("Analyse the size of the file")))]:
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "service.py").write_text(code)
        (folders[name] / "service_manifest.yml").write_text(f"name: {name}\nversion: '1'\n")
    data = b"s" * 1234
    async with mesh(nats_url, prefix, list(folders.values())) as client:
        summary = await scan(client, "sample.bin", data)
        views = {v.service: v for v in summary.files[0].results}
        assert not summary.files[0].errors
        assert views["mass_empty"].sections == [] and views["mass_empty"].metadata == {}
        assert views["mass_size"].metadata == {"file size": 1234}
        report = views["mass_report"]
        assert report.metadata == {"file size": 1234}
        # the JSON and the raw object share a name in the tutorial; each is fetched by its own
        assert {o.name: o.kind for o in report.objects} == {"file size analysis": ObjectKind.JSON_REPORT,
                                                           "file size analysis (raw)": ObjectKind.RAW_REPORT}
        _, js = await client.fetch_object(summary, "file size analysis")
        _, raw = await client.fetch_object(summary, "file size analysis (raw)")
    assert orjson.loads(js) == {"file size": 1234} and raw == b"1234"


async def test_mass_run_model_ini_config_and_start(nats_url, prefix, tmp_path):
    """The tutorial's run model: the client built from its INI config, then `client.start()`.
    The INI changes: ServerURL is the NATS server's URL, and Prefix (Sluice's) names this mesh."""
    g = guide(MASS)
    namespace: dict = {}
    module = tmp_path / "size_client.py"
    module.write_text(swap_imports(g.block("Analyse the size of the file")))
    exec(compile(module.read_text(), str(module), "exec"), namespace)  # noqa: S102 - the guide's code, on purpose
    ini = g.block("[GLOBAL]").replace("ServerURL = http://localhost:5000/", f"ServerURL = {nats_url}\nPrefix = {prefix}")
    config = configparser.ConfigParser()
    config.read_string(ini)
    run = {"config": config, "SizeAnalysisInstance": namespace["SizeAnalysisInstance"]}
    async with await Client.connect(nats_url, prefix) as probe:
        await provision(probe.js, Names(prefix))
    exec(g.block("client.start()"), run)  # noqa: S102 - `client = SizeAnalysisInstance(config); client.start()`
    client_thread = run["client"]
    try:
        assert await anyio.to_thread.run_sync(client_thread.ready.wait, 60)
        async with mesh(nats_url, prefix, []) as client:
            summary = await scan(client, "sample.bin", b"m" * 321)
        assert only_result(summary, "size_analysis").metadata == {"file size": 321}
    finally:
        await anyio.to_thread.run_sync(client_thread.shutdown)
    assert not client_thread.is_alive()
