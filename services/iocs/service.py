"""IOCs: tag the network indicators in a file's strings, and score the suspicious ones.

One section per kind of indicator (tagged, values as lines); suspicious URLs and domains get a
subsection with a heuristic, so the score says why. Each kind is capped so that a file stuffed
with indicators cannot blow up the result; the section says when it was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from schemas.samples import SampleError, canonical
from services.iocs.indicators import (
    DOMAIN,
    EMAIL,
    IP,
    TAGS,
    URI,
    Finder,
    Policy,
    has_suspicious_tld,
    url_downloads_executable,
    url_has_credentials,
    url_uses_ip,
)
from services.iocs.strings import text_batches
from services.sdk import MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase

TITLES = {URI: "URLs", DOMAIN: "Domains", IP: "IP addresses", EMAIL: "E-mail addresses"}
OVERFLOW_TRACKED = 100_000  # distinct values counted past the cap, to say "N of M" without unbounded memory


class Bucket:
    """Distinct values of one kind, in order of appearance, up to a cap; the rest only counted."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.values: dict[str, None] = {}
        self.overflow: set[str] = set()

    def add(self, value: str) -> None:
        if value in self.values:
            return
        if len(self.values) < self.cap:
            self.values[value] = None
        elif len(self.overflow) < OVERFLOW_TRACKED:
            self.overflow.add(value)


class Limits(msgspec.Struct, frozen=True):
    """Bounds on the work per file; the field names are the manifest's config keys."""

    max_per_kind: int = 200  # distinct values tagged per kind; more are counted, not tagged
    max_scan_chars: int = 64 * 1024 * 1024  # characters of strings scanned (a time bound)


class IOCs(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.policy = self.config_as(Policy)
        self.limits = self.config_as(Limits)
        # (kind, heuristic, title, test): a subsection listing the values of `kind` that pass `test`.
        self.checks: list[tuple[str, int, str, Callable[[str], bool]]] = [
            (URI, 2, "URL to raw IP address", url_uses_ip),
            (URI, 4, "Executable download URL", lambda u: url_downloads_executable(u, self.policy)),
            (URI, 5, "Credentials in URL", url_has_credentials),
            (DOMAIN, 3, "Suspicious TLD", lambda d: has_suspicious_tld(d, self.policy)),
        ]

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        finder = Finder(self.policy)
        buckets = {kind: Bucket(self.limits.max_per_kind) for kind in TITLES}
        scanned = 0
        for text in text_batches(request.file_contents):
            if scanned >= self.limits.max_scan_chars:
                # A bound on time, not on what is kept: said in the result, never a silent cut.
                note = f"Only the first {scanned:,} characters of the file's strings were scanned."
                result.add_section(ResultSection("Scan limit reached", note))
                break
            scanned += len(text)
            for kind, value in finder.find(text):
                buckets[kind].add(value)
        for kind, bucket in buckets.items():
            if bucket.values:
                result.add_section(self._section(kind, bucket))
        if request.get_param("relate_uris") and buckets[URI].values:
            result.add_section(relate_uris(request, buckets[URI].values))

    def _section(self, kind: str, bucket: Bucket) -> ResultSection:
        section = ResultSection(TITLES[kind], heuristic=1)
        values = list(bucket.values)
        section.add_lines(values)
        if bucket.overflow:
            more = len(bucket.overflow)
            total = f"{len(values) + more}{'+' if more >= OVERFLOW_TRACKED else ''}"
            section.add_line(f"(capped: {len(values)} of {total} distinct values shown and tagged)")
        for value in values:
            section.add_tag(TAGS[kind], value)
        for check_kind, heur_id, title, test in self.checks:
            hits = [v for v in values if test(v)] if check_kind == kind else []
            if hits:
                section.add_subsection(ResultSection(title, "\n".join(hits), heuristic=heur_id))
        return section


def _canonical_uri(url: str) -> str | None:
    try:
        return canonical("uri", url)
    except SampleError:
        return None


def relate_uris(request: Request, urls: Iterable[str]) -> ResultSection:
    """Relate the URLs tagged (`retrieved-by`), at most `max_related_uris` distinct ones in the
    order found (`HTTP://A.example/x` and `http://a.example/x` are one); the section lists
    them and says where a cap stopped it."""
    cap = max(0, int(request.get_param("max_related_uris")))
    distinct = [u for u in dict.fromkeys(map(_canonical_uri, urls)) if u]
    related: list[str] = []
    note = ""
    for url in distinct:
        if len(related) >= cap:
            note = f"(capped: {cap} of {len(distinct)} distinct URLs related; max_related_uris is {cap})"
            break
        try:
            request.add_related("uri", url, description="URL in the file's strings")
        except MaxExtractedExceeded:
            note = f"(stopped at {len(related)}: this file's limit of {request.max_extracted} children was reached)"
            break
        related.append(url)
    section = ResultSection("URLs related for analysis").add_lines(related)
    if note:
        section.add_line(note)
    return section
