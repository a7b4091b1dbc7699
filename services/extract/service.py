"""Extract: one archive level per run; children are analysed (and unpacked again) by the mesh.

Everything unusual about an archive ends up as a section with a heuristic, never as an
exception: a bomb, a hostile name or a truncated file is a finding about the sample.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.extract.formats import CORRUPT_ERRORS, Kind, Member, detect, members
from services.extract.safety import Budget, Caps, LimitHit, name_problems, safe_basename
from services.sdk import BODY_FORMAT, Request, Result, ResultSection, ServiceBase
from services.sdk.request import MaxExtractedExceeded

# finding kind → (heuristic id, section title); sections come out in this order.
FINDINGS = {
    "ratio": (2, "Compression bomb"),
    "size": (8, "Size limit reached"),
    "traversal": (3, "Path traversal member names"),
    "entries": (4, "Too many entries"),
    "encrypted": (5, "Password-protected members skipped"),
    "link": (7, "Links and special members not extracted"),
    "corrupt": (6, "Corrupt archive"),
}
MAX_LINES = 50  # per finding section: a hostile archive must not make a huge result


class Findings:
    """Lines per finding kind, turned into one section per kind at the end."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def add(self, kind: str, line: str) -> None:
        self.lines.setdefault(kind, []).append(line)

    def sections(self) -> list[ResultSection]:
        out = []
        for kind, (heur_id, title) in FINDINGS.items():
            lines = self.lines.get(kind)
            if not lines:
                continue
            section = ResultSection(title, heuristic=heur_id)
            section.add_lines(lines[:MAX_LINES])
            if len(lines) > MAX_LINES:
                section.add_line(f"… and {len(lines) - MAX_LINES} more")
            out.append(section)
        return out


class Extract(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        fmt = detect(data, request.file_type)
        if fmt is None:
            result.add_section(ResultSection("Not a supported archive", f"file type {request.file_type}"))
            return
        findings = Findings()
        listing: list[dict[str, object]] = []
        try:
            stream, shared_packed = members(data, fmt, request.file_name)
            budget = Budget(Caps.from_config(self.config), shared_packed)
            self._unpack(request, stream, budget, findings, listing)
        except CORRUPT_ERRORS as exc:
            findings.add("corrupt", f"{fmt}: {type(exc).__name__}: {exc}")
        if listing:
            title = f"Extracted {len(listing)} file{'' if len(listing) == 1 else 's'}"
            result.add_section(ResultSection(title, listing, BODY_FORMAT.TABLE, heuristic=1))
            if not self.config.get("continue_after_extract", False):
                request.drop()
        for section in findings.sections():
            result.add_section(section)

    def _unpack(
        self, request: Request, stream: Iterator[Member], budget: Budget, findings: Findings, listing: list
    ) -> None:
        """Walk the members; return early when a limit ends the whole archive."""
        cap = budget.caps.entries
        for index, member in enumerate(stream):
            if index >= cap:
                findings.add("entries", f"more than {cap} entries; the rest were not looked at")
                return
            label = repr(member.name)
            safe = safe_basename(member.name, f"member-{index}")
            problems = name_problems(member.name)
            if problems:
                findings.add("traversal", f"{label}: {', '.join(problems)} (extracted as {safe!r})")
            if member.kind is Kind.DIR:
                continue
            if member.kind in (Kind.LINK, Kind.SPECIAL):
                findings.add("link", f"{label}: {member.detail or member.kind.value}")
                continue
            if member.kind is Kind.ENCRYPTED:
                findings.add("encrypted", label)
                continue
            content, stop = self._read(member, budget, findings)
            if stop:
                return
            if content is None:
                continue
            try:
                added = request.add_extracted(content, safe, f"member {member.name!r} of the archive")
            except MaxExtractedExceeded:
                limit = request.max_extracted
                findings.add("entries", f"stopped at {limit} extracted files (the per-file limit)")
                return
            if added:
                listing.append({"name": safe, "member": member.name, "size": len(content)})

    @staticmethod
    def _read(member: Member, budget: Budget, findings: Findings) -> tuple[bytes | None, bool]:
        """(the member's bytes or None, whether to stop reading the archive); failures are recorded."""
        label = repr(member.name)
        try:
            assert member.open is not None
            with member.open() as fh:
                return budget.read(fh, member.packed_size), False
        except LimitHit as hit:
            findings.add(hit.kind, f"{label}: {hit}")
            return None, hit.stop
        except CORRUPT_ERRORS as exc:
            # Zip members are independent; in a tar or a single stream the rest is unreachable.
            findings.add("corrupt", f"{label}: {type(exc).__name__}: {exc}")
            return None, not member.independent
