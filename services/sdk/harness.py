"""Run a service once on a file, with no NATS: for `sluice service test` and for unit tests."""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio

from schemas.limits import Limits
from schemas.messages import FileRef, SampleKind, ServiceResult, Task
from schemas.samples import kind_of_type, sample_ref
from services.sdk.base import ServiceBase
from services.sdk.execution import execute_task
from services.sdk.loader import load_service
from services.sdk.request import Extracted, Produced, Related


@dataclass
class LocalRun:
    result: ServiceResult
    extracted: list[Extracted]
    produced: list[Produced]
    related: list[Related]

    def section(self, title_prefix: str):
        """The first section whose title starts with `title_prefix` (for assertions)."""
        return next(s for s in self.result.sections if s.title.startswith(title_prefix))

    def tags(self, name: str) -> set[str]:
        return {t.value for s in self.result.sections for t in s.tags if t.name == name}

    @property
    def heuristics(self) -> set[int]:
        return {s.heuristic.heur_id for s in self.result.sections if s.heuristic}

    def object(self, name: str) -> bytes:
        """A supplementary file or report object's bytes, by name."""
        return next(p.data for p in self.produced if p.name == name)


async def run_service_once_async(
    service: ServiceBase | str | Path,
    data: bytes | Path,
    file_type: str = "unknown",
    name: str = "",
    deep_scan: bool = False,
    service_params: dict[str, object] | None = None,
    max_extracted: int = Limits.max_children,
    temp_data: dict[str, object] | None = None,
    depth: int = 0,
) -> LocalRun:
    """Run `service` once on `data`. A `file_type` of a URI, domain or IP (e.g. `uri/https`,
    `network/domain`) makes `data` that sample's value, checked and made canonical as in the mesh."""
    if not isinstance(service, ServiceBase):
        service = load_service(service)
    if isinstance(data, Path):
        name = name or data.name
        data = data.read_bytes()
    kind = kind_of_type(file_type)
    if kind is SampleKind.FILE:
        ref = FileRef(hashlib.sha256(data).hexdigest(), len(data), name)
    else:
        ref = sample_ref(kind, data.decode())
        data = ref.data
    task = Task(
        corr=uuid.uuid4().hex,
        sid="local",
        file=ref,
        file_type=file_type,
        stage=service.manifest.stage,
        targets=[service.manifest.name],
        deadline=time.time() + service.manifest.timeout,
        reply_to="",
        depth=depth,
        deep_scan=deep_scan,
        service_params={service.manifest.name: dict(service_params or {})},
        temp_data=dict(temp_data or {}),
    )
    service.start()
    try:
        with tempfile.TemporaryDirectory(prefix="sluice-harness-") as work:
            async def fetch() -> bytes:
                return data

            outcome = await execute_task(service, task, fetch if service.manifest.file_required else None,
                                         Path(work), max_extracted)
    finally:
        service.stop()
    return LocalRun(outcome.result, outcome.extracted, outcome.produced, outcome.related)


def run_service_once(service: ServiceBase | str | Path, data: bytes | Path, **kwargs) -> LocalRun:
    """Synchronous wrapper, for plain pytest functions and scripts."""
    return anyio.run(lambda: run_service_once_async(service, data, **kwargs))
