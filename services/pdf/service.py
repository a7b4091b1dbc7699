"""PDF: the pdfid census for what a PDF asks a reader to do, pypdf for the content itself.

The census sees every name written in the file even when pypdf cannot parse it; pypdf sees
inside compressed object streams, which the census cannot. A finding fires when either saw it,
and its section shows what each one found. A PDF pypdf cannot open still gets its census.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from schemas.tags import tag_problem
from services.pdf.census import KEYWORDS, Census, take_census
from services.pdf.structure import Limits, Structure, read_structure
from services.sdk import MaxExtractedExceeded, Request, Result, ResultSection, ResultTableSection, ServiceBase

MAX_NAME = 200


def safe_name(name: str, fallback: str) -> str:
    """An attachment's file name without its path, printable and bounded (a name, never a path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:MAX_NAME].strip()
    return fallback if base in ("", ".", "..") else base


class PDF(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.limits = Limits(
            objects=int(self.config.get("max_objects", 100_000)),
            seconds=float(self.config.get("walk_seconds", 30)),
            file_bytes=int(self.config.get("max_file_bytes", 100 * 1024 * 1024)),
        )
        self.max_scripts = int(self.config.get("max_scripts", 20))
        self.preview_lines = int(self.config.get("preview_lines", 10))
        self.max_lines = int(self.config.get("max_lines", 50))

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        census = take_census(data)
        problem = ""
        try:
            found = read_structure(data, self.limits)
        except Exception as exc:  # noqa: BLE001 - pypdf on a hostile file raises anything
            found, problem = Structure(), f"{type(exc).__name__}: {exc}"
        if census.counts:
            result.add_section(self._census(census))
        for section in self._findings(request, census, found):
            result.add_section(section)
        if problem:
            section = ResultSection("Could not parse the PDF")
            section.add_line(f"pypdf: {problem}")
            if census.counts:
                section.add_line("What is reported above comes from the keyword census of the raw bytes.")
            result.add_section(section)
        if found.notes:
            result.add_section(ResultSection("Parsing incomplete", "\n".join(found.notes)))


    @staticmethod
    def _census(census: Census) -> ResultTableSection:
        table = ResultTableSection("PDF keyword census")
        for keyword in KEYWORDS:
            if census[keyword]:
                table.add_row({"keyword": keyword, "count": census[keyword], "obfuscated": census.obfuscated[keyword]})
        return table

    def _findings(self, request: Request, census: Census, found: Structure) -> Iterator[ResultSection]:
        javascript = census.any("/JS", "/JavaScript") or bool(found.scripts)
        launch = bool(census["/Launch"] or found.launches)
        if javascript:
            yield self._javascript(request, census, found.scripts)
        if (census.any("/OpenAction", "/AA") or found.auto_action) and (javascript or launch):
            what = " and ".join(w for w, on in (("JavaScript", javascript), ("a Launch action", launch)) if on)
            yield ResultSection(
                "Automatic action runs JavaScript or Launch",
                f"/OpenAction ×{census['/OpenAction']}, /AA ×{census['/AA']}; the file also holds {what}.",
                heuristic=2)
        if launch:
            section = ResultSection("Launch action", heuristic=3)
            section.add_line(f"/Launch ×{census['/Launch']}")
            yield section.add_lines((f"starts: {target}" for target in found.launches), self.max_lines)
        if census.any("/EmbeddedFile", "/EmbeddedFiles") or found.attachments:
            yield self._attachments(request, found)
        if census.obfuscated:
            spellings = (f"{raw} = {name}" for name, raws in sorted(census.spellings.items()) for raw in sorted(raws))
            section = ResultSection("Obfuscated names", heuristic=5).add_lines(spellings, self.max_lines)
            section.add_tag("technique.obfuscation", "PDF names with #xx escapes")
            yield section
        if census["/Encrypt"] or found.encrypted:
            yield self._encryption(found)
        if found.uris:
            uris = list(dict.fromkeys(found.uris))
            section = ResultSection("Link targets", heuristic=7).add_lines(uris, self.max_lines)
            for uri in uris[:self.max_lines]:
                if tag_problem("network.static.uri", uri) is None:
                    section.add_tag("network.static.uri", uri)
            yield section

    def _javascript(self, request: Request, census: Census, scripts: list[str]) -> ResultSection:
        unique = list(dict.fromkeys(s for s in scripts if s.strip()))
        section = ResultSection("JavaScript", heuristic=1)
        section.add_line(f"/JS ×{census['/JS']}, /JavaScript ×{census['/JavaScript']}; "
                         f"{len(unique)} distinct script(s) read from /JS entries")
        for index, code in enumerate(unique[:self.max_scripts], 1):
            name = f"javascript-{index}.js"
            blob = code.encode("utf-8")
            request.add_supplementary(blob, name, "JavaScript from a /JS entry")
            lines = code.splitlines()
            preview = lines[:self.preview_lines] + ([f"… ({len(lines) - self.preview_lines} more lines)"]
                                                    if len(lines) > self.preview_lines else [])
            sub = ResultSection(f"{name}: {len(code):,} characters", "\n".join(preview))
            sub.add_tag("file.pdf.javascript.sha1", hashlib.sha1(blob).hexdigest())
            section.add_subsection(sub)
        if len(unique) > self.max_scripts:
            section.add_line(f"only the first {self.max_scripts} are kept as supplementary files")
        return section

    def _attachments(self, request: Request, found: Structure) -> ResultSection:
        section = ResultSection("Embedded files", heuristic=4)
        full = False
        for index, attachment in enumerate(found.attachments, 1):
            name = safe_name(attachment.name, f"attachment-{index}")
            if attachment.data is None:
                section.add_line(f"{name}: not extracted, {attachment.note}")
            elif full:
                section.add_line(f"{name}: not extracted, extraction limit reached")
            else:
                try:
                    request.add_extracted(attachment.data, name, f"file {attachment.name!r} attached to the PDF")
                    section.add_line(f"{name}: {len(attachment.data):,} bytes, extracted")
                    section.add_tag("file.name.extracted", name)
                except MaxExtractedExceeded:
                    full = True
                    section.add_line(f"{name}: not extracted, extraction limit reached")
        if not found.attachments:
            section.add_line("/EmbeddedFile names are present but no attached file could be read")
        return section

    @staticmethod
    def _encryption(found: Structure) -> ResultSection:
        if found.decrypted:
            return ResultSection("Encrypted PDF", "Encrypted with an empty user password; opened and analysed.",
                                 heuristic=6)
        if not found.encrypted:  # the census saw /Encrypt, pypdf could not say more
            return ResultSection("Encrypted PDF", "The file has an /Encrypt entry.", heuristic=6)
        section = ResultSection("Encrypted PDF", "Encrypted with a user password: its objects were not read.")
        section.set_heuristic(6, signature="not_decrypted")
        return section
