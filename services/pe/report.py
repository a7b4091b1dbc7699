"""`PEInfo` and `Finding`s as result sections, with Assemblyline's file.pe.* tags.

Lists that a hostile file can make huge (sections, imports, exports, resources, finding lines)
are capped; a capped section says how many there are in its title.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import msgspec

from services.pe.parse import PEInfo
from services.pe.traits import Finding
from services.sdk import Heuristic, ResultKeyValueSection, ResultSection, ResultTableSection

T = TypeVar("T")
MAX_FINDING_LINES = 50


class Caps(msgspec.Struct, frozen=True):
    """How much of each list is shown; the field names are the manifest's config keys."""

    max_sections: int = 96  # section rows (the Windows loader's own limit)
    max_import_dlls: int = 100  # import rows, one per DLL...
    max_import_names_per_dll: int = 50  # ...each naming at most this many functions
    max_import_names_listed: int = 10_000  # every imported name, in a folded section, up to this many
    max_exports: int = 100  # export names listed and tagged
    max_resources: int = 100  # resource rows


def _capped(title: str, items: Sequence[T], cap: int) -> tuple[str, Sequence[T]]:
    """The title with the count ("Exports (12)", "Exports (500, first 100 shown)") and the items to show."""
    shown = items[:cap]
    note = f", first {len(shown)} shown" if len(shown) < len(items) else ""
    return f"{title} ({len(items)}{note})", shown


def facts(info: PEInfo, caps: Caps) -> list[ResultSection]:
    """The descriptive sections, in reading order; empty parts (no exports, ...) are left out."""
    parts = [header(info), sections(info, caps), imports(info, caps), exports(info, caps), resources(info, caps), debug(info)]
    return [p for p in parts if p is not None]


def finding(found: Finding) -> ResultSection:
    heuristic = Heuristic(found.heur_id)
    for signature in found.signatures:
        heuristic.add_signature_id(signature)
    section = ResultSection(found.title, heuristic=heuristic)
    section.add_lines(found.lines[:MAX_FINDING_LINES])
    if len(found.lines) > MAX_FINDING_LINES:
        section.add_line(f"… and {len(found.lines) - MAX_FINDING_LINES} more")
    return section


def header(info: PEInfo) -> ResultKeyValueSection:
    entry = f"0x{info.entry_point:x}"
    if info.entry_section is not None:
        entry += f" in {info.sections[info.entry_section].name!r}"
    if info.imports is None:
        imphash = "unknown (the import table could not be read)"
    else:
        imphash = info.imphash or "none (no imports)"
    section = ResultKeyValueSection("PE header", {
        "Type": ("DLL" if info.is_dll else "EXE") + (", .NET" if info.is_dotnet else ""),
        "Machine": info.machine,
        "Subsystem": info.subsystem,
        "Characteristics": ", ".join(info.characteristics),
        "DLL characteristics": ", ".join(info.dll_characteristics) or "none",
        "Entry point": entry,
        "Image base": f"0x{info.image_base:x}",
        "Compile time": f"{info.compile_time} ({info.timestamp})" if info.timestamp else "not set (0)",
        "Imphash": imphash,
        "Authenticode signature": f"present, {info.signature_size:,} bytes (not verified)" if info.signature_size else "absent",
        "Overlay": f"{info.overlay.size:,} bytes at offset 0x{info.overlay.offset:x}" if info.overlay else "none",
    })
    section.add_tag("file.pe.linker.timestamp", str(info.timestamp))
    return section


def sections(info: PEInfo, caps: Caps) -> ResultTableSection | None:
    if not info.sections:
        return None
    title, shown = _capped("Sections", info.sections, caps.max_sections)
    table = ResultTableSection(title)
    for s in shown:
        table.add_row({
            "name": s.name, "virtual_address": f"0x{s.virtual_address:x}", "virtual_size": s.virtual_size,
            "raw_size": s.raw_size, "entropy": round(s.entropy, 3), "flags": s.flags,
        })
        if s.name:
            table.add_tag("file.pe.sections.name", s.name)
    return table


def imports(info: PEInfo, caps: Caps) -> ResultSection | None:
    if info.imports is None:
        return ResultSection("Imports", "An import table is declared but pefile could not read it.")
    if not info.imports:
        return None
    title, shown = _capped("Imports: DLLs", info.imports, caps.max_import_dlls)
    table = ResultTableSection(f"{title}, {sum(len(i.functions) for i in info.imports)} functions")
    for imp in shown:
        more = len(imp.functions) - caps.max_import_names_per_dll
        names = ", ".join(imp.functions[:caps.max_import_names_per_dll]) + (f", … (+{more})" if more > 0 else "")
        table.add_row({"dll": imp.dll, "count": len(imp.functions), "functions": names})
    if info.imphash:
        table.add_tag("file.pe.imports.imphash", info.imphash)
    listing = every_import(info, caps)
    if listing is not None:
        table.add_subsection(listing)
    return table


def every_import(info: PEInfo, caps: Caps) -> ResultSection | None:
    """Every imported name, `DLL!name` a line, in a section shown folded (auto_collapse): the table
    above names the first few per DLL. None when the table already shows them all. Bounded by
    max_import_names_listed, so a hostile table of millions cannot swell the summary; the title
    says when it was cut."""
    imports = info.imports or []
    if len(imports) <= caps.max_import_dlls and all(len(i.functions) <= caps.max_import_names_per_dll for i in imports):
        return None
    total = sum(len(i.functions) for i in imports)
    lines = [f"{imp.dll}!{name}" for imp in imports for name in imp.functions][:caps.max_import_names_listed]
    note = "" if len(lines) == total else f", first {len(lines)} listed (max_import_names_listed)"
    section = ResultSection(f"Every imported name ({total}{note})", auto_collapse=True)
    section.add_lines(lines)
    return section


def exports(info: PEInfo, caps: Caps) -> ResultSection | None:
    if not info.exports and not info.ordinal_exports:
        return None
    title, shown = _capped("Exports by name", info.exports, caps.max_exports)
    section = ResultSection(f"{title}, {info.ordinal_exports} by ordinal only")
    if info.export_name:
        section.add_line(f"Module name: {info.export_name}")
        section.add_tag("file.pe.exports.module_name", info.export_name)
    section.add_lines(list(shown))
    for name in shown:
        section.add_tag("file.pe.exports.function_name", name)
    return section


def resources(info: PEInfo, caps: Caps) -> ResultTableSection | None:
    if not info.resources:
        return None
    title, shown = _capped("Resources", info.resources, caps.max_resources)
    table = ResultTableSection(title)
    for res in shown:
        table.add_row({"type": res.type, "name": res.name, "language": res.language, "size": res.size})
        if res.named:  # numeric ids say nothing; a name the author chose may
            table.add_tag("file.pe.resources.name", res.name)
        table.add_tag("file.pe.resources.language", res.language)
    return table


def debug(info: PEInfo) -> ResultSection | None:
    if not info.pdb_paths:
        return None
    section = ResultSection("Debug information")
    for path in dict.fromkeys(info.pdb_paths):
        section.add_line(f"PDB path: {path}")
        section.add_tag("file.pe.pdb_filename", path)
    return section
