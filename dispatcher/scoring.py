"""From a finished tree to the `Summary` users read: scores, verdict, tags, heuristics, errors."""

from __future__ import annotations

import time

from schemas.messages import FileNode, Submission, Summary, walk
from schemas.verdict import verdict_for


def summarise(submission: Submission, roots: list[FileNode]) -> Summary:
    """The submission scores as its worst file (as Assemblyline's max_score); a file as the sum of its results."""
    tags: dict[str, set[str]] = {}
    heuristics: set[str] = set()
    score = errors = files = cached = 0
    for node in walk(roots):
        if node.duplicate:
            continue
        files += 1
        errors += len(node.errors)
        score = max(score, node.score) if files > 1 else node.score
        for result in node.results:
            cached += result.cached
            for section in result.sections:
                if section.heuristic:
                    heuristics.add(f"{result.service}.{section.heuristic.heur_id}: {section.heuristic.name}")
                for tag in section.tags:
                    tags.setdefault(tag.name, set()).add(tag.value)
    return Summary(
        sid=submission.sid, score=score, verdict=verdict_for(score), files=roots,
        tags={name: sorted(values) for name, values in sorted(tags.items())}, heuristics=sorted(heuristics),
        errors=errors, file_count=files, cached_results=cached, metadata=submission.metadata,
        submitted_at=submission.submitted_at, completed_at=time.time(),
    )
