"""Office: what an Office document would run or drop, found with oletools.

Four independent looks at the file (encryption, macros, DDE links, embedded objects), each a
section with its heuristic. oletools parses hostile input with many libraries that raise many
kinds of exception, so each look is guarded on its own: one that fails becomes a "could not"
section and the others still report.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import logging
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import olefile

from schemas.tags import tag_problem
from services.extract.passwords import gather
from services.sdk import MaxExtractedExceeded, Request, Result, ResultSection, ResultTableSection, ServiceBase
from services.sdk.lazy import lazy_import

# oletools (about 0.15 s of CPU to import): loaded by the first Office file, not by every process
dde, embedded, encryption, macros = (lazy_import(f"services.office.{name}") for name in ("dde", "embedded", "encryption", "macros"))

# oletools logs each parsing step, and olevba turns its loggers on each time it runs pcodedmp:
# keep them out of the service's log (their only handler is then oletools' NullHandler).
for _name in ("olevba", "msodde", "crypto", "ppt", "ooxml", "oleobj"):
    logging.getLogger(_name).propagate = False

# olevba's indicator kinds → the tag each value gets (executable names are shown, not tagged).
INDICATOR_TAGS = {
    "URL": "network.static.uri", "IPv4 address": "network.static.ip", "E-mail address": "network.email.address",
}


def _add_tag(section: ResultSection, name: str, value: str) -> None:
    """Tag only values the framework keeps, so odd olevba matches never become result warnings."""
    if tag_problem(name, value) is None:
        section.add_tag(name, value)


def _tag_indicator(section: ResultSection, kind: str, value: str) -> None:
    tag = INDICATOR_TAGS.get(kind.split(" (obfuscation", 1)[0])
    if tag is None:
        return
    _add_tag(section, tag, value)
    if tag == "network.static.uri":
        try:
            host = urlsplit(value).hostname or ""
        except ValueError:
            return
        try:
            _add_tag(section, "network.static.ip", ipaddress.ip_address(host).compressed)
        except ValueError:
            _add_tag(section, "network.static.domain", host)


def _damaged_ole(data: bytes) -> str | None:
    """Why olefile cannot open this compound file (every look would fail the same way), or None."""
    if not embedded.is_ole(data):
        return None
    try:
        olefile.OleFileIO(io.BytesIO(data)).close()
    except Exception as exc:  # noqa: BLE001 - olefile raises OSError, struct.error, ValueError...
        return f"{type(exc).__name__}: {exc}"
    return None


class Office(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.max_lines = int(self.config.get("max_lines", 50))
        self.max_embedded = int(self.config.get("max_embedded_bytes", 100 * 1024 * 1024))

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        damage = _damaged_ole(request.file_contents)
        if damage:
            result.add_section(ResultSection("Damaged compound file", f"olefile cannot read it: {damage}"))
            return
        looks: list[tuple[str, Callable[[Request], Iterator[ResultSection]]]] = [
            ("encryption", self._encryption),
            ("macros", self._macros),
            ("DDE links", self._dde),
            ("embedded objects", self._embedded),
        ]
        for what, look in looks:
            try:
                for section in look(request):
                    result.add_section(section)
            except Exception as exc:  # noqa: BLE001 - oletools on hostile input raises anything
                result.add_section(ResultSection(f"Could not analyse {what}", f"{type(exc).__name__}: {exc}"))


    # -- the four looks -----------------------------------------------------------------------
    def _encryption(self, request: Request) -> Iterator[ResultSection]:
        if not encryption.is_encrypted(request.file_path):
            return
        yield ResultSection("Encrypted document", "The document's content is encrypted.", heuristic=10)
        # The submission's password, those a parent e-mail gave (temp data), oletools' list, the shared wordlist.
        passwords = gather(encryption.default_passwords(), request)
        found = encryption.decrypt(request.file_path, passwords, request.work_dir)
        if found is None:
            yield ResultSection("Not decrypted", "None of the known passwords opened it; its content was not analysed.")
            return
        section = ResultSection(
            "Decrypted", f"Opened with the password {found.password!r}; the decrypted document is extracted.")
        section.add_tag("info.password", found.password)
        request.add_extracted(found.data, f"decrypted-{request.file_name}", "the document, decrypted")
        yield section

    def _macros(self, request: Request) -> Iterator[ResultSection]:
        scan = macros.scan(request.file_path, deobfuscate=request.deep_scan)
        if scan is None:
            return
        source = scan.source().encode("utf-8")
        request.add_supplementary(source, "macros.vba", "VBA source of all modules")
        # Also a child, so the scripts service peels and judges the macro code like any script.
        request.add_extracted(source, "macros.vba", "VBA source of all modules")
        top = ResultSection(f"VBA macros: {len(scan.modules)} module(s), source in macros.vba (a child)", heuristic=1)
        top.add_tag("technique.macro", "VBA macros")
        for module in scan.modules:
            digest = hashlib.sha256(module.code.encode("utf-8")).hexdigest()
            top.add_line(f"{module.name} ({module.where}), {len(module.code):,} characters, sha256 {digest}")
            top.add_tag("file.ole.macro.sha256", digest)
        if scan.autoexec:
            top.add_subsection(ResultSection("Auto-executing macros", heuristic=2)
                .add_lines((f"{f.keyword}: {f.description}" for f in scan.autoexec), self.max_lines))
        if scan.suspicious:
            section = ResultSection("Suspicious VBA keywords", heuristic=3)
            section.add_lines((f"{f.keyword}: {f.description}" for f in scan.suspicious), self.max_lines)
            for finding in scan.suspicious:
                _add_tag(section, "file.ole.macro.suspicious_string", finding.keyword)
            top.add_subsection(section)
        if scan.indicators:
            section = ResultSection("Network indicators in macros", heuristic=4)
            section.add_lines((f"{f.description}: {f.keyword}" for f in scan.indicators), self.max_lines)
            for finding in scan.indicators:
                _tag_indicator(section, finding.description, finding.keyword)
            top.add_subsection(section)
        kinds = list(dict.fromkeys(scan.encodings + [d.kind for d in scan.decoded]))
        if kinds:
            section = ResultSection("Obfuscated strings in macros", heuristic=5)
            for kind in kinds:
                section.set_heuristic(5, signature=kind)
                section.add_tag("technique.obfuscation", f"VBA {kind} strings")
            section.add_line(f"Encoded strings: {', '.join(kinds)}")
            section.add_lines((f"{d.kind}: {d.encoded[:80]} → {d.decoded[:200]}" for d in scan.decoded), self.max_lines)
            top.add_subsection(section)
        if scan.stomping:
            top.add_subsection(ResultSection(
                "VBA stomping", "The P-code does not match the source; its disassembly is in macros.vba.", heuristic=6))
        yield top

    def _dde(self, request: Request) -> Iterator[ResultSection]:
        links = dde.dde_links(request.file_path, request.file_contents)
        if not links:
            return
        section = ResultSection("DDE links", heuristic=7).add_lines(links, self.max_lines)
        for link in links[:self.max_lines]:
            _add_tag(section, "file.ole.dde_link", link)
        yield section

    def _embedded(self, request: Request) -> Iterator[ResultSection]:
        objects = list(embedded.embedded_objects(request.file_contents, self.max_embedded))
        if not objects:
            return
        table = ResultTableSection("Embedded OLE objects", heuristic=8)
        full = False
        for obj in objects:
            if obj.data is None:
                status = f"not extracted: larger than {self.max_embedded:,} bytes"
            elif full:
                status = "not extracted: extraction limit reached"
            else:
                try:
                    request.add_extracted(obj.data, obj.name, f"embedded object {obj.origin}")
                    status = "extracted"
                except MaxExtractedExceeded:
                    full, status = True, "not extracted: extraction limit reached"
            table.add_row({"name": obj.name, "found in": obj.origin, "size": obj.size, "status": status})
        packages = [o for o in objects if o.package]
        if packages:
            section = ResultSection("OLE Package payloads", heuristic=9)
            section.add_lines((f"{p.name} ({p.size:,} bytes, from {p.origin})" for p in packages), self.max_lines)
            for package in packages:
                _add_tag(section, "file.name.extracted", package.name)
            table.add_subsection(section)
        yield table
