"""`Result` and `ResultSection`, shaped as Assemblyline's, so a service ports by changing imports.

Scores are not set here: a section names a heuristic from the manifest and the runner turns it
into a score, so an operator tunes scores in one place.

Typed sections (`ResultKeyValueSection`, `ResultTableSection`, ...) build structured bodies that
the terminal, JSON output and the web front each render in their own way; on the wire a
structured body is JSON text with its `body_format` beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


class BODY_FORMAT:  # noqa: N801 - the name service authors know from Assemblyline
    TEXT = "TEXT"
    KEY_VALUE = "KEY_VALUE"
    JSON = "JSON"
    TABLE = "TABLE"
    URL = "URL"
    MEMORY_DUMP = "MEMORY_DUMP"


class Heuristic:
    """A heuristic fired by a section: the manifest's `heur_id`, plus ATT&CK ids and signatures.

    `ResultSection(..., heuristic=Heuristic(3, signature="packer"))` and
    `section.set_heuristic(3, signature="packer")` do the same thing.
    """

    def __init__(self, heur_id: int, attack_id: str | None = None, signature: str | None = None) -> None:
        self.heur_id = int(heur_id)
        self.attack_ids: list[str] = []
        self.signatures: list[str] = []
        self.add_attack_id(attack_id)
        self.add_signature_id(signature)

    def add_attack_id(self, attack_id: str | None) -> None:
        if attack_id and attack_id not in self.attack_ids:
            self.attack_ids.append(attack_id)

    def add_signature_id(self, signature: str | None) -> None:
        if signature and signature not in self.signatures:
            self.signatures.append(signature)


class ResultSection:
    def __init__(
        self,
        title_text: str,
        body: str | dict | list | None = None,
        body_format: str = BODY_FORMAT.TEXT,
        heuristic: int | Heuristic | None = None,
        tags: dict[str, list[str]] | None = None,
        parent: ResultSection | Result | None = None,
    ) -> None:
        self.title_text = str(title_text)
        self.body_format = body_format
        self._lines: list[str] = []
        self._body: Any = None
        self.heuristic: Heuristic | None = None
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
        self._text_lines().append("".join(text) if isinstance(text, list) else str(text))

    def _text_lines(self) -> list[str]:
        """The lines of a text body; a structured body (key-value, table, ...) has none to add to."""
        if isinstance(self._body, str):
            self._lines, self._body = self._body.splitlines(), None
        elif self._body is not None:
            raise TypeError(f"section {self.title_text!r} has a {self.body_format} body: add_line is for text "
                            f"sections (use the typed section's own methods, or a text subsection)")
        return self._lines

    def add_lines(self, lines: Iterable[str], limit: int | None = None) -> ResultSection:
        """Add lines; with `limit`, at most that many and then a line saying how many more there were
        (a hostile file can make any list huge). Returns the section, so calls chain."""
        lines = [str(line) for line in lines]
        shown = lines if limit is None else lines[:limit]
        target = self._text_lines()
        target.extend(shown)
        if len(lines) > len(shown):
            target.append(f"… and {len(lines) - len(shown)} more")
        return self

    def set_body(self, body: Any, body_format: str | None = None) -> None:
        self._body = body
        if body_format:
            self.body_format = body_format

    def set_heuristic(self, heur_id: int | Heuristic, attack_id: str | None = None, signature: str | None = None) -> None:
        """Fire heuristic `heur_id` of the manifest; one per section, as in Assemblyline.

        Firing the same heuristic again adds the new ATT&CK id or signature to it.
        """
        new = heur_id if isinstance(heur_id, Heuristic) else Heuristic(heur_id)
        new.add_attack_id(attack_id)
        new.add_signature_id(signature)
        if self.heuristic is None:
            self.heuristic = new
        elif self.heuristic.heur_id != new.heur_id:
            raise ValueError(f"section {self.title_text!r} already has heuristic {self.heuristic.heur_id}")
        else:
            for attack in new.attack_ids:
                self.heuristic.add_attack_id(attack)
            for sig in new.signatures:
                self.heuristic.add_signature_id(sig)

    @property
    def heur_id(self) -> int | None:
        return self.heuristic.heur_id if self.heuristic else None

    def add_tag(self, name: str, value: str | bytes | int) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        tag = (str(name), str(value))
        if tag not in self.tags:
            self.tags.append(tag)

    def add_subsection(self, section: ResultSection, on_top: bool = False) -> None:
        self.subsections.insert(0, section) if on_top else self.subsections.append(section)

    @property
    def body(self) -> str:
        """The body as text: lines joined, or structured bodies as JSON."""
        if self._body is None:
            return "\n".join(self._lines)
        if isinstance(self._body, str):
            return self._body
        return json.dumps(self._body, default=str)


class ResultTextSection(ResultSection):
    """Plain text lines; the same as `ResultSection`, named for symmetry with the typed ones."""


class ResultKeyValueSection(ResultSection):
    """A small table of facts: `set_item("Compile time", "2031-01-01")`."""

    def __init__(self, title_text: str, body: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(title_text, dict(body or {}), BODY_FORMAT.KEY_VALUE, **kwargs)

    def set_item(self, key: str, value: Any) -> None:
        self._body[str(key)] = value

    def update_items(self, items: dict[str, Any]) -> None:
        for key, value in items.items():
            self.set_item(key, value)


class ResultJSONSection(ResultSection):
    """Any JSON document, shown folded."""

    def __init__(self, title_text: str, body: Any = None, **kwargs: Any) -> None:
        super().__init__(title_text, body if body is not None else {}, BODY_FORMAT.JSON, **kwargs)

    def set_json(self, data: Any) -> None:
        self._body = data

    def update_json(self, data: dict[str, Any]) -> None:
        self._body.update(data)


class TableRow(dict):
    """One table row: `TableRow(name=".text", entropy=6.2)` or `TableRow({"name": ".text"})`."""


class ResultTableSection(ResultSection):
    """Rows of the same columns, in order."""

    def __init__(self, title_text: str, rows: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(title_text, [dict(r) for r in rows or []], BODY_FORMAT.TABLE, **kwargs)

    def add_row(self, row: dict[str, Any]) -> None:
        self._body.append(dict(row))


class ResultURLSection(ResultSection):
    """Links: `add_url("https://attack.mitre.org/techniques/T1055/", name="T1055")`."""

    def __init__(self, title_text: str, **kwargs: Any) -> None:
        super().__init__(title_text, [], BODY_FORMAT.URL, **kwargs)

    def add_url(self, url: str, name: str | None = None) -> None:
        self._body.append({"url": url, "name": name or url})


class ResultMemoryDumpSection(ResultSection):
    """A hex dump of bytes (shown as text, monospaced, never interpreted)."""

    def __init__(self, title_text: str, data: bytes = b"", **kwargs: Any) -> None:
        super().__init__(title_text, hexdump(data), BODY_FORMAT.MEMORY_DUMP, **kwargs)


def hexdump(data: bytes, width: int = 16) -> str:
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset:offset + width]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<{width * 3}} {text}")
    return "\n".join(lines)


class Result:
    def __init__(self, sections: list[ResultSection] | None = None) -> None:
        self.sections: list[ResultSection] = list(sections or [])

    def add_section(self, section: ResultSection, on_top: bool = False) -> None:
        self.sections.insert(0, section) if on_top else self.sections.append(section)
