"""`sluice service new NAME`: a service folder that runs and whose test passes, to edit from."""

from __future__ import annotations

import re
import string
from pathlib import Path

from sluice.console import CliError

NAME = re.compile(r"[a-z][a-z0-9_-]{0,40}")

SERVICE = '''\
"""${title}: what it looks for, in one sentence (edit me)."""

from services.sdk import Request, Result, ResultKeyValueSection, ResultSection, ServiceBase


class ${cls}(ServiceBase):
    def start(self) -> None:
        # Warm up once (open models, compile patterns); self.config is the manifest's config block.
        self.marker = self.config["marker"].encode()

    def execute(self, request: Request) -> None:
        result = Result()
        facts = ResultKeyValueSection("File facts")
        facts.set_item("name", request.file_name)
        facts.set_item("type", request.file_type)
        facts.set_item("size", request.file_size)
        result.add_section(facts)

        if self.marker in request.file_contents:
            found = ResultSection("Marker found", parent=result)
            found.add_line(f"the file contains {self.marker!r}")
            found.set_heuristic(1)  # the score comes from the manifest's heuristic 1
        request.result = result
'''

MANIFEST = '''\
# Every field is explained in services/WRITING.md.
name: ${name}
version: "0.1.0"
description: ${title} (edit me).
accepts: .*                  # regex over Sluice file types, e.g. executable/windows/.*
rejects: empty|metadata/.*
stage: CORE                  # FILTER, EXTRACT, CORE, SECONDARY or POST
category: Static Analysis
file_required: true
timeout: 30                  # seconds per file; the runner enforces it
concurrency: 4               # files at once per instance

config:
  marker: "EVIL"

heuristics:
  - heur_id: 1
    name: Marker found
    score: 500
    description: The file contains the configured marker.
'''

DOCKERFILE = '''\
# Built on the Sluice image (the repository's Dockerfile, tagged sluice:latest).
FROM sluice:latest
COPY --chown=sluice . /opt/services/${name}
CMD ["service", "run", "/opt/services/${name}"]
'''

TEST = '''\
"""Runs with plain pytest: `pytest ${folder}` (no NATS needed)."""

from pathlib import Path

from services.sdk.harness import run_service_once

HERE = Path(__file__).parent


def test_clean_file_has_facts_and_no_score():
    run = run_service_once(HERE, b"just some text", name="clean.txt", file_type="text/plain")
    assert run.result.error is None
    assert run.result.score == 0
    assert '"name": "clean.txt"' in run.section("File facts").body


def test_marker_fires_heuristic_1():
    run = run_service_once(HERE, b"xx EVIL xx", name="bad.txt", file_type="text/plain")
    assert run.heuristics == {1}
    assert run.result.score == 500
'''


def new_service(name: str, parent: Path) -> Path:
    """Write the folder `parent/name`; refuse to overwrite anything."""
    if not NAME.fullmatch(name):
        raise CliError(f"{name!r}: a service name is lowercase letters, digits, '-' or '_', starting with a letter")
    folder = parent / name
    if folder.exists():
        raise CliError(f"{folder} already exists")
    title = name.replace("-", " ").replace("_", " ").title()
    values = {"name": name, "title": title, "cls": title.replace(" ", ""), "folder": str(folder)}
    folder.mkdir(parents=True)
    for file_name, template in (("service.py", SERVICE), ("service_manifest.yml", MANIFEST),
                                ("Dockerfile", DOCKERFILE), (f"test_{name.replace('-', '_')}.py", TEST)):
        (folder / file_name).write_text(string.Template(template).substitute(values))
    return folder
