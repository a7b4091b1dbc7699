"""Run one task through a service and turn what it did into a `ServiceResult`.

Shared by the runner (tasks from NATS) and the harness (one file, no NATS), so a service
behaves the same under test as in the mesh.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel

from bus.blobs import BlobError
from schemas.messages import ErrorType, HeuristicHit, Section, ServiceError, ServiceResult, Tag, Task
from schemas.tags import tag_problem
from services.sdk import ontology
from services.sdk.base import RecoverableError, ServiceBase
from services.sdk.request import Extracted, MaxExtractedExceeded, Produced, Related, Request
from services.sdk.manifest import HeuristicSpec
from services.sdk.result import Heuristic, Result, ResultSection
from services.sdk.threads import THREADS

log = logging.getLogger("sluice.service")


def heuristic_score(spec: HeuristicSpec, fired: Heuristic) -> int:
    """As Assemblyline 4: each signature scores its `signature_score_map` score (else the score the
    service gave it, else the heuristic's) times how often it fired, and they add up; with no
    signature, the heuristic's score times its frequency. Capped at `max_score`."""
    if fired.signatures:
        score = sum(spec.signature_score_map.get(sig, fired.score_map.get(sig, spec.score)) * freq
                    for sig, freq in fired.signatures.items())
    else:
        score = spec.score * (fired.frequency or 1)
    return min(score, spec.max_score) if spec.max_score is not None else score


def flatten(result: Result | None, service: ServiceBase) -> tuple[list[Section], int]:
    """Sections in reading order with their depth; heuristic scores from the manifest."""
    if result is None or not (result.sections or result.tags):  # most tasks of a mesh: nothing to walk
        return [], 0
    sections: list[Section] = []
    total = 0
    warnings: list[str] = []

    def kept(tags: list[tuple[str, str]]) -> list[Tag]:
        out = []
        for name, value in tags:
            problem = tag_problem(name, value)
            if problem:
                warnings.append(problem)
            else:
                out.append(Tag(name, value))
        return out

    def walk(section: ResultSection, depth: int) -> None:
        nonlocal total
        hit = None
        fired = section.heuristic
        if fired is not None:
            spec = service.manifest.heuristic(fired.heur_id)
            if spec is None:
                warnings.append(f"section {section.title_text!r}: heuristic {fired.heur_id} is not in the manifest")
            else:
                score = heuristic_score(spec, fired)
                total += score
                attacks = fired.attack_ids or spec.attack_ids
                hit = HeuristicHit(spec.heur_id, spec.name, score, list(attacks), list(fired.signatures))
        body = section.body  # first: a typed section brings its body up to date here
        sections.append(Section(section.title_text, body, section.body_format, hit, kept(section.tags), depth,
                                body_config=dict(section.body_config), auto_collapse=section.auto_collapse,
                                classification=section.classification, promote_to=section.promote_to or "",
                                zeroize_on_tag_safe=section.zeroize_on_tag_safe))
        for sub in section.subsections:
            walk(sub, depth + 1)

    for section in result.sections:
        walk(section, 0)
    if result.tags:
        sections.append(Section("Result tags", tags=kept(result.tags)))
    if warnings:
        sections.append(Section("Result warnings", "\n".join(warnings)))
        log.warning("%s: %s", service.manifest.name, "; ".join(warnings))
    return sections, total


@functools.lru_cache(maxsize=256)
def _coroutine_function(execute: Callable) -> bool:
    """Whether a service's bound `execute` is async, looked up once per service, not per task."""
    return inspect.iscoroutinefunction(execute)


@dataclass
class Outcome:
    """What one task produced: the result, the blobs the runner still has to store, and the
    URI/domain/IP samples it relates (inline, nothing to store)."""

    result: ServiceResult
    extracted: list[Extracted]
    produced: list[Produced]
    related: list[Related]


async def execute_task(
    service: ServiceBase, task: Task, fetch: Callable[[], Awaitable[bytes]] | None, work_root: Path, max_extracted: int
) -> Outcome:
    """Execute under the manifest timeout; an exception becomes an error result, never a dead worker.

    `fetch` gets the file's bytes (None when the manifest says file_required: false). A sync
    `execute` downloads a stored file on first use of `request.file_contents`/`file_path`, so a
    service that decides from the file's facts alone never pays for the download; an async one,
    and any that gets an inline file, has the bytes before it starts.
    """
    name, version = service.manifest.name, service.manifest.version
    started = time.monotonic()
    is_async = _coroutine_function(service.execute)
    # Inline bytes are already here: hand them over now rather than have the thread come back
    # to the event loop for them (a round trip that cost more than many a small file's analysis).
    preload = fetch is not None and (is_async or task.file.data is not None)
    load = None
    if fetch is not None and not preload:
        token = anyio.lowlevel.current_token()
        load = lambda: anyio.from_thread.run(fetch, token=token)  # noqa: E731 - the request calls it once
    request = Request(task, load, service.manifest, work_root, max_extracted)
    error: ServiceError | None = None
    notes: list[Section] = []
    ontology_token = ontology.begin()
    try:
        if is_async:
            # A bare cancel scope, not fail_after: its generator wrapper cost more than the scope.
            # The deadline on the loop's clock (anyio's own on asyncio), without anyio's look-up of its backend.
            with anyio.CancelScope(deadline=asyncio.get_running_loop().time() + service.manifest.timeout) as deadline:
                if preload:
                    request.set_contents(await fetch())
                await service.execute(request)
            if deadline.cancelled_caught:
                raise TimeoutError
        else:
            if preload:  # inline bytes: checked against their sha256, nothing to wait for
                request.set_contents(await fetch())
            # A hung sync execute cannot be interrupted, but the task still ends on time; its
            # thread finishes (or not) on its own (services/sdk/threads.py).
            await THREADS.run(service.execute, request, timeout=service.manifest.timeout)
    except BlobError as exc:
        error = ServiceError(name, ErrorType.UNREACHABLE, str(exc))
    except TimeoutError:
        error = ServiceError(name, ErrorType.TIMEOUT, f"execute ran past the {service.manifest.timeout:g}s timeout")
    except RecoverableError as exc:
        error = ServiceError(name, ErrorType.RECOVERABLE, f"{type(exc).__name__}: {exc}")
    except MaxExtractedExceeded as exc:  # the files before the limit are kept, and the cut is said
        notes.append(Section("Extraction limit reached", f"{exc}; the rest were not extracted"))
    except Exception as exc:  # noqa: BLE001 - any failure of service code is reported, not raised
        log.exception("%s crashed on %s", name, task.file.sha256)
        error = ServiceError(name, ErrorType.CRASHED, f"{type(exc).__name__}: {exc}")
    finally:
        request.cleanup()
        parts = ontology.end(ontology_token)
    if parts is not None and error is None:  # AL4's self.ontology: kept as the report object "ontology"
        request.submit_report(json_report_objects={"ontology": parts})
    sections, score = flatten(request.result, service) if error is None else ([], 0)
    sections += notes
    result = ServiceResult(
        corr=task.corr,
        service=name,
        service_version=version,
        tool_version=service.get_tool_version(),
        sections=sections,
        score=score,
        drop=request.dropped and error is None,
        metadata=request.metadata if error is None else {},
        temp_data=request.temp_data_changes() if error is None else {},
        error=error,
        elapsed=time.monotonic() - started,
        partial=request.is_partial and error is None,
        context=request.service_context if error is None else "",
    )
    if error is not None:
        return Outcome(result, [], [], [])
    return Outcome(result, request.extracted, request.produced, request.related)
