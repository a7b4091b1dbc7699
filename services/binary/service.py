"""Binary: ELF and Mach-O executables (lief) and .NET assemblies (dnfile).

The pe service reads every Windows PE; this one adds what a .NET assembly carries beyond its PE
shape (and skips a PE without .NET metadata in a few microseconds), and reads the Unix formats
that nothing else looks inside.
"""

from __future__ import annotations

import msgspec

from services.binary.common import Finding
from services.sdk import (
    Heuristic,
    MaxExtractedExceeded,
    Request,
    Result,
    ResultKeyValueSection,
    ResultSection,
    ResultTableSection,
    ServiceBase,
    TableRow,
)
from services.sdk.lazy import lazy_import

# lief takes 0.5-0.8 s of CPU to import: loaded by the first ELF or Mach-O file, not by every process
native = lazy_import("services.binary.native")
dotnet = lazy_import("services.binary.dotnet")

CLR_DIRECTORY_INDEX = 14  # IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR


class Settings(msgspec.Struct, frozen=True):
    packed_entropy: float = 7.2
    packed_min_bytes: int = 1024
    max_rows: int = 200
    max_resources: int = 20


def has_clr_header(data: bytes) -> bool:
    """Whether a PE's COM descriptor (.NET) directory is set, read from the headers alone."""
    if data[:2] != b"MZ" or len(data) < 0x40:
        return False
    pe = int.from_bytes(data[0x3C:0x40], "little")
    if data[pe:pe + 4] != b"PE\x00\x00":
        return False
    optional = pe + 24
    magic = int.from_bytes(data[optional:optional + 2], "little")
    directories = optional + (96 if magic == 0x10B else 112)
    entry = directories + 8 * CLR_DIRECTORY_INDEX
    return len(data) >= entry + 8 and int.from_bytes(data[entry + 4:entry + 8], "little") > 0


class Binary(ServiceBase):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.settings = self.config_as(Settings)

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        if request.file_type.startswith("executable/windows/"):
            if has_clr_header(data):
                self._dotnet(request, result, data)
            return
        s = self.settings
        report = native.read(data, native.Limits(s.packed_entropy, s.packed_min_bytes, s.max_rows))
        if report.header:
            result.add_section(ResultKeyValueSection(f"{report.format} header", report.header))
            table = ResultTableSection(f"Sections ({len(report.sections)})")
            for row in report.sections:
                table.add_row(TableRow(row))
            if report.sections:
                result.add_section(table)
            _listing(result, "Libraries", report.libraries, s.max_rows)
            _listing(result, "Imported symbols", report.imports, s.max_rows)
            _listing(result, "Exported symbols", report.exports, s.max_rows)
        _findings(result, report.findings)

    def _dotnet(self, request: Request, result: Result, data: bytes) -> None:
        try:
            report = dotnet.read(data)
        except Exception as exc:  # noqa: BLE001 - dnfile on hostile metadata raises anything
            result.add_section(ResultSection(".NET metadata unreadable", f"{type(exc).__name__}: {exc}"))
            return
        if report is None:
            return
        info = ResultKeyValueSection(".NET assembly", report.assembly)
        result.add_section(info)
        _listing(result, "Referenced assemblies", report.references, self.settings.max_rows)
        _listing(result, "P/Invoke imports", report.pinvoke, self.settings.max_rows)
        if report.resources:
            section = ResultSection(f"Managed resources ({len(report.resources)}), extracted", parent=result)
            try:
                for resource in report.resources[: self.settings.max_resources]:
                    request.add_extracted(resource.data, resource.name, f".NET resource of {report.assembly.get('name', 'the assembly')}")
                    section.add_line(f"{resource.name}: {len(resource.data):,} bytes")
            except MaxExtractedExceeded:
                section.add_line(f"(stopped: this file's limit of {request.max_extracted} children was reached)")
        _findings(result, report.findings)


def _listing(result: Result, title: str, items: list[str], cap: int) -> None:
    if not items:
        return
    shown = items[:cap]
    more = f", first {len(shown)} shown" if len(shown) < len(items) else ""
    result.add_section(ResultSection(f"{title} ({len(items)}{more})", "\n".join(shown)))


def _findings(result: Result, findings: dict[int, Finding]) -> None:
    for found in findings.values():
        heuristic = Heuristic(found.heur_id)
        for signature in found.signatures:
            heuristic.add_signature_id(signature)
        section = ResultSection(found.title, heuristic=heuristic)
        section.add_lines(found.lines, 50)
        result.add_section(section)
