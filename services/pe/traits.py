"""The classic signs of a packed, patched or hand-made PE, each a `Finding` with a heuristic.

Every check reads `PEInfo` only and is cheap; thresholds and the packer names come from the
manifest config, so tuning them changes the cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import msgspec

from services.pe.parse import PEInfo

MALFORMED, WRITE_EXECUTE, PACKER_SECTION, FEW_IMPORTS = 1, 2, 3, 4
FUTURE_TIMESTAMP, OLD_TIMESTAMP, HIGH_ENTROPY_SECTION, LARGE_OVERLAY, ODD_ENTRY_POINT = 5, 6, 7, 8, 9

FUTURE_SLACK = 86400  # a day, for clock and time-zone differences
OLDEST_PLAUSIBLE = int(datetime(1995, 1, 1, tzinfo=timezone.utc).timestamp())  # before Windows 95 and PE32 tools
# Importing only these means every other API is looked up at run time.
RESOLVERS = frozenset({
    "LoadLibraryA", "LoadLibraryW", "LoadLibraryExA", "LoadLibraryExW", "GetProcAddress",
    "GetModuleHandleA", "GetModuleHandleW", "LdrLoadDll", "LdrGetProcedureAddress",
})


@dataclass(frozen=True)
class Finding:
    heur_id: int
    title: str
    lines: list[str]
    signatures: tuple[str, ...] = ()


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """The checks' thresholds; the field names are the manifest's config keys."""

    packer_sections: dict[str, str]  # section name → packer (the list lives in the manifest)
    few_imports: int = 3  # an EXE importing at most this many functions has a "tiny" import table
    section_entropy: float = 7.2  # bits per byte above which a section looks packed or encrypted...
    section_entropy_min_bytes: int = 1024  # ...once it holds at least this many bytes
    large_overlay_min_bytes: int = 65536  # an overlay is "large" from this size...
    large_overlay_min_ratio: float = 0.5  # ...when it is also at least this fraction of the file


def malformed(lines: list[str]) -> Finding:
    return Finding(MALFORMED, "Malformed PE", lines)


def findings(info: PEInfo, file_size: int, policy: Policy, now: float) -> list[Finding]:
    found = [
        malformed(info.problems) if info.problems else None,
        _write_execute(info),
        _packer_sections(info, policy),
        _few_imports(info, policy),
        _timestamp(info, now),
        _high_entropy_sections(info, policy),
        _large_overlay(info, file_size, policy),
        _entry_point(info),
    ]
    return [f for f in found if f is not None]


def _write_execute(info: PEInfo) -> Finding | None:
    names = [s.name for s in info.sections if s.writable and s.executable]
    if not names:
        return None
    return Finding(WRITE_EXECUTE, "Writable and executable section", [f"{n!r} is mapped RWX" for n in names])


def _packer_sections(info: PEInfo, policy: Policy) -> Finding | None:
    hits = {s.name: policy.packer_sections[s.name] for s in info.sections if s.name in policy.packer_sections}
    if not hits:
        return None
    lines = [f"section {name!r}: {packer}" for name, packer in hits.items()]
    return Finding(PACKER_SECTION, "Packer section names", lines, tuple(dict.fromkeys(hits.values())))


def _few_imports(info: PEInfo, policy: Policy) -> Finding | None:
    """.NET assemblies import one function (mscoree!_CorExeMain) by design, so they are left out."""
    if info.imports is None or info.is_dotnet:
        return None
    names = [f for imp in info.imports for f in imp.functions]
    if names and set(names) <= RESOLVERS:
        line = f"Only {', '.join(sorted(set(names)))}: the real APIs are looked up at run time"
        return Finding(FEW_IMPORTS, "Imports only API resolvers", [line], ("resolver_only",))
    if not info.is_dll and len(names) <= policy.few_imports:
        line = f"The EXE imports {len(names)} function(s): {', '.join(names) or 'nothing'}"
        return Finding(FEW_IMPORTS, "Tiny import table", [line], ("few_imports",))
    return None


def _timestamp(info: PEInfo, now: float) -> Finding | None:
    """0 means "not set" (Go and reproducible builds), neither future nor old."""
    if info.timestamp > now + FUTURE_SLACK:
        return Finding(FUTURE_TIMESTAMP, "Compile time in the future", [f"{info.compile_time} ({info.timestamp})"])
    if 0 < info.timestamp < OLDEST_PLAUSIBLE:
        return Finding(OLD_TIMESTAMP, "Compile time before 1995", [f"{info.compile_time} ({info.timestamp})"])
    return None


def _high_entropy_sections(info: PEInfo, policy: Policy) -> Finding | None:
    lines = [f"{s.name!r}: {s.entropy:.2f} bits per byte over {s.data_size:,} bytes"
             for s in info.sections if s.entropy > policy.section_entropy and s.data_size >= policy.section_entropy_min_bytes]
    return Finding(HIGH_ENTROPY_SECTION, "High-entropy section", lines) if lines else None


def _large_overlay(info: PEInfo, file_size: int, policy: Policy) -> Finding | None:
    overlay = info.overlay
    if overlay is None or overlay.size < max(policy.large_overlay_min_bytes, policy.large_overlay_min_ratio * file_size):
        return None
    share = overlay.size / file_size
    return Finding(LARGE_OVERLAY, "Large overlay",
                   [f"{overlay.size:,} bytes ({share:.0%} of the file) appended at offset 0x{overlay.offset:x}"])


def _entry_point(info: PEInfo) -> Finding | None:
    """A DLL may have no entry point at all (0): resource-only DLLs."""
    if info.is_dll and info.entry_point == 0:
        return None
    where = f"entry point 0x{info.entry_point:x}"
    if info.entry_section is None:
        return Finding(ODD_ENTRY_POINT, "Entry point outside every section",
                       [f"The {where} is in no section"], ("outside_sections",))
    section = info.sections[info.entry_section]
    if not section.executable:
        return Finding(ODD_ENTRY_POINT, "Entry point in a non-executable section",
                       [f"The {where} is in {section.name!r} ({section.flags})"], ("not_executable",))
    if len(info.sections) > 1 and info.entry_section == len(info.sections) - 1:
        return Finding(ODD_ENTRY_POINT, "Entry point in the last section",
                       [f"The {where} is in {section.name!r}, the last of {len(info.sections)} sections"], ("last_section",))
    return None
