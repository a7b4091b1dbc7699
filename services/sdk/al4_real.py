"""Run a service written against the real `assemblyline-v4-service` package, unchanged.

Where that package is installed (it needs a C compiler: its `assemblyline` base library is
published as source only), a folder whose class subclasses the package's own `ServiceBase`
runs on the mesh: `AL4PackageService` hands each task to the package's own `handle_task` (its
`ServiceRequest`, `Result.finalize`, `Task.save_result`, as in an AL4 container), reads the
result or error file the package writes, and turns it into a Sluice result. The manifest is
read by both: the package reads it through $SERVICE_MANIFEST_PATH.

What such a service cannot use here: the service server (`api_interface`, safelist and badlist
lookups), the AL4 updater's HTTP API (`_download_rules`), tags of other services (`uses_tags`),
the submission's metadata, and the classification engine beyond its default marking.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from services.sdk.base import ServiceBase
from services.sdk.manifest import Manifest
from services.sdk.request import Request
from services.sdk.result import Heuristic, Result, ResultSection

PACKAGE = "assemblyline_v4_service"


def is_package_service(cls: object) -> bool:
    """Whether `cls` subclasses the real package's ServiceBase (only if the package is imported)."""
    base = getattr(sys.modules.get(f"{PACKAGE}.common.base"), "ServiceBase", None)
    return base is not None and isinstance(cls, type) and issubclass(cls, base)


def _flat_tags(tags: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """AL4's nested tag dict (`{"network": {"static": {"domain": [...]}}}`) as (name, value) pairs."""
    pairs = []
    for key, value in tags.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            pairs += _flat_tags(value, name)
        else:
            pairs += [(name, str(v[0] if isinstance(v, list | tuple) else v)) for v in value]
    return pairs


def _sections(flat: list[dict[str, Any]]) -> list[ResultSection]:
    """The package's flattened sections (with their depth) nested again as our sections."""
    roots: list[ResultSection] = []
    stack: list[ResultSection] = []
    for item in flat:
        heur = item.get("heuristic")
        section = ResultSection(
            item["title_text"], item.get("body") or None, item.get("classification") or None,
            item.get("body_format") or "TEXT", auto_collapse=bool(item.get("auto_collapse")),
            zeroize_on_tag_safe=bool(item.get("zeroize_on_tag_safe")),
            heuristic=Heuristic(heur["heur_id"], attack_ids=list(heur.get("attack_ids") or []),
                                signatures=dict(heur.get("signatures") or {}), frequency=heur.get("frequency") or 1,
                                score_map=dict(heur.get("score_map") or {})) if heur else None,
        )
        if isinstance(item.get("body"), str) and item.get("body_format") not in (None, "TEXT", "MEMORY_DUMP"):
            section._body = json.loads(item["body"])
        section._config = dict(item.get("body_config") or {})
        for name, value in _flat_tags(item.get("tags") or {}):
            section.add_tag(name, value)
        depth = int(item.get("depth") or 0)
        del stack[depth:]
        (stack[-1].add_subsection(section) if stack else roots.append(section))
        stack.append(section)
    return roots


class AL4PackageService(ServiceBase):
    """A Sluice service that drives a real assemblyline-v4-service class (one task at a time)."""

    def __init__(self, package_class: type, manifest: Manifest, manifest_path: Path) -> None:
        super().__init__(manifest)
        os.environ["SERVICE_MANIFEST_PATH"] = str(manifest_path)  # the package reads it again here
        self.inner = package_class(dict(manifest.config))
        self.log = self.inner.log

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def get_tool_version(self) -> str:
        return "+".join(v for v in (self.manifest.tool_version, self.inner.get_tool_version()) if v)

    def execute(self, request: Request) -> None:
        tasking = Path(tempfile.mkdtemp(prefix="al4-task-", dir=request.work_dir))
        os.environ["TASKING_DIR"] = str(tasking)  # where the package's Task reads and writes
        try:
            (tasking / request.sha256).write_bytes(request.file_contents)
            sid = uuid.uuid4().hex
            self.inner.handle_task(self._task(request, sid))
            self._convert(request, tasking, sid)
        finally:
            shutil.rmtree(tasking, ignore_errors=True)

    def _task(self, request: Request, sid: str) -> Any:
        from assemblyline.odm.messages.task import Task as ServiceTask

        return ServiceTask({
            "sid": sid, "min_classification": "TLP:C", "filename": request.file_name,
            "service_name": self.manifest.name, "max_files": request.max_extracted, "depth": request.depth,
            "deep_scan": request.deep_scan, "service_config": dict(request.task.service_params.get(self.manifest.name, {})),
            "temporary_submission_data": [{"name": k, "value": v} for k, v in request.temp_submission_data.items()],
            "fileinfo": {"magic": request.file_type, "md5": request.md5, "sha1": request.sha1, "sha256": request.sha256,
                         "size": request.file_size, "type": request.file_type},
        })

    def _convert(self, request: Request, tasking: Path, sid: str) -> None:
        error = tasking / f"{sid}_{request.sha256}_error.json"
        if error.exists():
            response = json.loads(error.read_text())["response"]
            raise RuntimeError(f"{response['status']}: {response['message']}")
        done = json.loads((tasking / f"{sid}_{request.sha256}_result.json").read_text())
        response = done["response"]
        request.result = Result(_sections(done["result"]["sections"]))
        for item in response.get("extracted") or []:
            request.add_extracted(Path(item["path"]), item["name"], item.get("description", ""))
        for item in response.get("supplementary") or []:
            request.add_supplementary(Path(item["path"]), item["name"], item.get("description", ""))
        if done.get("drop_file"):
            request.drop()
        if done.get("partial"):
            request.partial()
        if response.get("service_context"):
            request.set_service_context(response["service_context"])
        request.temp_submission_data.update(done.get("temp_submission_data") or {})
