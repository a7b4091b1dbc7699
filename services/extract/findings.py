"""What an archive did that an analyst should hear about, gathered as lines per kind.

Unpacking records a line as soon as something unusual happens; the sections (one per kind,
each with its heuristic) are only built at the end, so a thousand hostile members make one
bounded section rather than a thousand.
"""

from __future__ import annotations

from services.sdk import ResultSection

# finding kind → (heuristic id or None, section title); sections come out in this order.
FINDINGS = {
    "ratio": (2, "Compression bomb"),
    "size": (8, "Size limit reached"),
    "traversal": (3, "Path traversal member names"),
    "entries": (4, "Too many entries"),
    "password": (5, "Password protected archive"),
    "encrypted": (5, "Password-protected members not extracted"),
    "link": (7, "Links and special members not extracted"),
    "corrupt": (6, "Corrupt archive"),
    "unread": (None, "Volumes not read"),
    "reader": (None, "Reader not installed"),
    "empty": (None, "Empty members not extracted"),
}
MAX_LINES = 50  # per finding section: a hostile archive must not make a huge result


class Findings:
    """Lines (and tags) per finding kind, turned into one section per kind at the end."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.tags: dict[str, list[tuple[str, str]]] = {}

    def add(self, kind: str, line: str, tag: tuple[str, str] | None = None) -> None:
        self.lines.setdefault(kind, []).append(line)
        if tag is not None:
            self.tags.setdefault(kind, []).append(tag)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def sections(self) -> list[ResultSection]:
        """One section per kind; a heuristic shared by two kinds scores on the first one only."""
        out = []
        fired: set[int] = set()
        for kind, (heur_id, title) in FINDINGS.items():
            lines = self.lines.get(kind)
            if not lines:
                continue
            section = ResultSection(title, heuristic=None if heur_id in fired else heur_id)
            fired.add(heur_id)
            section.add_lines(lines[:MAX_LINES])
            if len(lines) > MAX_LINES:
                section.add_line(f"… and {len(lines) - MAX_LINES} more")
            for name, value in self.tags.get(kind, []):
                section.add_tag(name, value)
            out.append(section)
        return out
