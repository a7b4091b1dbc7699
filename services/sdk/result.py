"""`Result` and `ResultSection`, shaped as Assemblyline's, so a service ports by changing imports.

Scores are not set here: a section names a heuristic from the manifest and the runner turns it
into a score, so an operator tunes scores in one place.
"""

from __future__ import annotations

import json
from typing import Any


class BODY_FORMAT:  # noqa: N801 - the name service authors know from Assemblyline
    TEXT = "TEXT"
    KEY_VALUE = "KEY_VALUE"
    JSON = "JSON"
    TABLE = "TABLE"
    URL = "URL"
    MEMORY_DUMP = "MEMORY_DUMP"


class ResultSection:
    def __init__(
        self,
        title_text: str,
        body: str | dict | list | None = None,
        body_format: str = BODY_FORMAT.TEXT,
        heuristic: int | None = None,
        tags: dict[str, list[str]] | None = None,
        parent: ResultSection | Result | None = None,
    ) -> None:
        self.title_text = str(title_text)
        self.body_format = body_format
        self._lines: list[str] = []
        self._body: Any = None
        self.heur_id: int | None = None
        self.attack_ids: list[str] = []
        self.signatures: list[str] = []
        self.tags: list[tuple[str, str]] = []
        self.subsections: list[ResultSection] = []
        if body is not None:
            self.set_body(body, body_format)
        if heuristic is not None:
            self.set_heuristic(heuristic)
        for name, values in (tags or {}).items():
            for value in values:
                self.add_tag(name, value)
        if parent is not None:
            parent.add_subsection(self) if isinstance(parent, ResultSection) else parent.add_section(self)

    def add_line(self, text: str | list[str]) -> None:
        self._lines.append("".join(text) if isinstance(text, list) else str(text))

    def add_lines(self, lines: list[str]) -> None:
        self._lines.extend(str(line) for line in lines)

    def set_body(self, body: Any, body_format: str | None = None) -> None:
        self._body = body
        if body_format:
            self.body_format = body_format

    def set_heuristic(self, heur_id: int, attack_id: str | None = None, signature: str | None = None) -> None:
        if self.heur_id is not None and self.heur_id != heur_id:
            raise ValueError(f"section {self.title_text!r} already has heuristic {self.heur_id}")
        self.heur_id = int(heur_id)
        if attack_id:
            self.attack_ids.append(attack_id)
        if signature:
            self.signatures.append(signature)

    def add_tag(self, name: str, value: str | bytes) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        tag = (str(name), str(value))
        if tag not in self.tags:
            self.tags.append(tag)

    def add_subsection(self, section: ResultSection) -> None:
        self.subsections.append(section)

    @property
    def body(self) -> str:
        """The body as text: lines joined, or structured bodies as JSON."""
        if self._body is None:
            return "\n".join(self._lines)
        if isinstance(self._body, str):
            return self._body
        return json.dumps(self._body, default=str)


class Result:
    def __init__(self, sections: list[ResultSection] | None = None) -> None:
        self.sections: list[ResultSection] = list(sections or [])

    def add_section(self, section: ResultSection, on_top: bool = False) -> None:
        self.sections.insert(0, section) if on_top else self.sections.append(section)
