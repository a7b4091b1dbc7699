"""ELF and Mach-O through lief: header facts, sections with entropy, libraries, imported and
exported symbols, and the signs of packing and tampering (UPX, no section table, a near-random
code section, an entry point outside the code, writable+executable mappings, stripped static
builds, encrypted Mach-O segments).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lief

from services.binary.capabilities import capabilities
from services.binary.common import (
    CAPABILITIES,
    MALFORMED,
    ODD_ENTRY,
    PACKED,
    STRIPPED_STATIC,
    WRITE_EXECUTE,
    Finding,
    add,
    entropy,
)

lief.logging.disable()  # lief logs parse warnings to stderr; problems are reported as findings instead
# lief warns when a hostile header holds a value outside its enums; the value is shown as a number.
warnings.filterwarnings("ignore", message=r"-?\d+ is not a valid [A-Z_]+", category=RuntimeWarning)


@dataclass
class Report:
    format: str
    header: dict[str, str | int | bool]
    sections: list[dict[str, str | int | float]]
    libraries: list[str]
    imports: list[str]
    exports: list[str]
    findings: dict[int, Finding] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    packed_entropy: float = 7.2
    packed_min_bytes: int = 1024
    max_rows: int = 200


def _enum_name(value: object) -> str:
    """An enum member's name (`CLASS.ELF64` -> `ELF64`); an out-of-range value shows as its number."""
    return str(value).split(".")[-1]


def _parse(data: bytes) -> lief.Binary | None:
    return lief.parse(list(data)) if data else None


def read(data: bytes, limits: Limits) -> Report:
    binary = _parse(data)
    if binary is None or not isinstance(binary, (lief.ELF.Binary, lief.MachO.Binary)):
        report = Report("unknown", {}, [], [], [], [])
        add(report.findings, MALFORMED, "Malformed executable", "unparsable", "lief could not parse the file as ELF or Mach-O")
        return report
    if isinstance(binary, lief.ELF.Binary):
        report = _elf(binary)
    else:
        report = _macho(binary)
    _sections(binary, report, data, limits)
    imported = {name.lstrip("_") for name in report.imports}
    for signature, evidence in capabilities(imported, data):
        add(report.findings, CAPABILITIES, "Suspicious capabilities", signature, evidence)
    if b"UPX!" in data[:4096] or b"UPX!" in data[-4096:] or any(s["name"].startswith("UPX") for s in report.sections):
        add(report.findings, PACKED, "Packed executable", "upx", "UPX marker (UPX! or UPX section names)")
    return report


def _elf(binary: lief.ELF.Binary) -> Report:
    header = binary.header
    static = not binary.has_interpreter and not list(binary.libraries)
    stripped = not any(True for _ in binary.symtab_symbols)
    facts: dict[str, str | int | bool] = {
        "class": _enum_name(header.identity_class), "machine": _enum_name(header.machine_type),
        "type": _enum_name(header.file_type), "entry point": f"0x{binary.entrypoint:x}",
        "interpreter": binary.interpreter if binary.has_interpreter else "(none: static or a loader)",
        "PIE": binary.is_pie, "NX stack": binary.has_nx, "stripped": stripped, "static": static,
    }
    report = Report("ELF", facts, [], [str(lib) for lib in binary.libraries],
                    sorted({s.name for s in binary.imported_symbols if s.name}), sorted({s.name for s in binary.exported_symbols if s.name}))
    if static and stripped:
        add(report.findings, STRIPPED_STATIC, "Stripped static executable", "stripped_static",
            "no interpreter, no libraries and no symbol table: nothing to tell what it calls")
    for segment in binary.segments:
        if segment.type == lief.ELF.Segment.TYPE.LOAD and segment.has(lief.ELF.Segment.FLAGS.W) and segment.has(lief.ELF.Segment.FLAGS.X):
            add(report.findings, 4, "Writable and executable mapping", "wx_segment",
                f"LOAD segment at 0x{segment.virtual_address:x} is mapped writable and executable")
    if not list(binary.segments) and not list(binary.sections):
        add(report.findings, MALFORMED, "Malformed executable", "nothing_to_load", "neither program headers nor sections: nothing a loader could map")
    elif header.file_type in (lief.ELF.Header.FILE_TYPE.EXEC, lief.ELF.Header.FILE_TYPE.DYN) and not list(binary.sections):
        add(report.findings, PACKED, "Packed executable", "no_section_table", "no section header table (removed, as packers do)")
    return report


def _macho(binary: lief.MachO.Binary) -> Report:
    header = binary.header
    facts: dict[str, str | int | bool] = {
        "cpu": _enum_name(header.cpu_type), "file type": _enum_name(header.file_type),
        "entry point": f"0x{binary.entrypoint:x}" if binary.has_entrypoint else "(none)",
        "PIE": binary.is_pie, "code signature": binary.has_code_signature,
        "platform": _enum_name(binary.platform) if hasattr(binary, "platform") else "",
    }
    report = Report("Mach-O", facts, [], [lib.name for lib in binary.libraries],
                    sorted({s.name for s in binary.imported_symbols if s.name}), sorted({s.name for s in binary.exported_symbols if s.name}))
    if binary.has_encryption_info and binary.encryption_info.crypt_id:
        add(report.findings, PACKED, "Packed executable", "encrypted_segment", "LC_ENCRYPTION_INFO with a non-zero cryptid: the code is encrypted")
    for segment in binary.segments:
        prot = segment.init_protection
        if prot & 2 and prot & 4 and segment.name != "__PAGEZERO":
            add(report.findings, WRITE_EXECUTE, "Writable and executable mapping", "wx_segment",
                f"segment {segment.name} is mapped writable and executable")
    return report


def _sections(binary: lief.Binary, report: Report, data: bytes, limits: Limits) -> None:
    entry = binary.entrypoint
    in_section = None
    for section in binary.sections:
        content = bytes(section.content) if section.size and section.size < 256 * 1024 * 1024 else b""
        value = round(entropy(content), 2)
        name = section.name
        report.sections.append({"name": name, "address": f"0x{section.virtual_address:x}", "size": section.size, "entropy": value})
        if section.virtual_address <= entry < section.virtual_address + section.size:
            in_section = name
        if value > limits.packed_entropy and len(content) >= limits.packed_min_bytes and _is_code(section):
            add(report.findings, PACKED, "Packed executable", "high_entropy_code",
                f"code section {name!r} is near-random ({value} bits per byte): compressed or encrypted code")
    report.sections = report.sections[: limits.max_rows]
    has_entry = entry and (not isinstance(binary, lief.MachO.Binary) or binary.has_entrypoint)
    if has_entry and list(binary.sections) and in_section is None:
        add(report.findings, ODD_ENTRY, "Unusual entry point", "outside_sections", f"entry point 0x{entry:x} lies in no section")


def _is_code(section: lief.Section) -> bool:
    if isinstance(section, lief.ELF.Section):
        return section.has(lief.ELF.Section.FLAGS.EXECINSTR)
    return section.segment_name == "__TEXT" and section.name == "__text"
