"""Read a PE with pefile into plain facts, decoded once for both the report and the checks.

pefile is lenient: it loads truncated and odd files and only refuses what has no PE header at
all (PEFormatError). What it tolerates but a loader would not (section data past the end of the
file, a directory it choked on) is kept in `problems`, so the service can call the file malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pefile

DIRECTORIES = [pefile.DIRECTORY_ENTRY[f"IMAGE_DIRECTORY_ENTRY_{name}"] for name in ("IMPORT", "EXPORT", "RESOURCE", "DEBUG")]
SECURITY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]
COM_DESCRIPTOR = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR"]  # set in .NET assemblies
IMPORT = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]
MEM_READ, MEM_WRITE, MEM_EXECUTE = (pefile.SECTION_CHARACTERISTICS[f"IMAGE_SCN_MEM_{f}"] for f in ("READ", "WRITE", "EXECUTE"))


def c_string(raw: bytes | None) -> str:
    """A NUL-terminated name from the file, as text (garbage after the NUL is ignored)."""
    return (raw or b"").split(b"\0", 1)[0].decode("utf-8", "replace")


@dataclass(frozen=True)
class Section:
    name: str
    virtual_address: int
    virtual_size: int
    raw_size: int  # as declared in the header
    data_size: int  # what the file really holds (less when truncated)
    entropy: float
    characteristics: int

    @property
    def writable(self) -> bool:
        return bool(self.characteristics & MEM_WRITE)

    @property
    def executable(self) -> bool:
        return bool(self.characteristics & MEM_EXECUTE)

    @property
    def flags(self) -> str:
        """"R-X" style, as a debugger shows memory protection."""
        bits = ((MEM_READ, "R"), (MEM_WRITE, "W"), (MEM_EXECUTE, "X"))
        return "".join(letter if self.characteristics & flag else "-" for flag, letter in bits)


@dataclass(frozen=True)
class Import:
    dll: str
    functions: list[str]  # names, or "ord123" for imports by ordinal


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    language: str
    size: int
    named: bool  # the name is a string chosen by the author, not a number


@dataclass(frozen=True)
class Overlay:
    offset: int
    size: int  # bytes after the last section, not counting a trailing Authenticode signature


@dataclass(frozen=True)
class PEInfo:
    machine: str
    subsystem: str
    is_dll: bool
    is_dotnet: bool
    characteristics: list[str]
    dll_characteristics: list[str]
    entry_point: int
    entry_section: int | None  # index into `sections`; None when the entry point is in none
    image_base: int
    timestamp: int
    sections: list[Section]
    imports: list[Import] | None  # None: an import table is declared but could not be read
    imphash: str
    export_name: str
    exports: list[str]  # exported names
    ordinal_exports: int  # exported by ordinal only, without a name
    resources: list[Resource]
    pdb_paths: list[str]
    signature_size: int  # Authenticode certificate table size; 0 when unsigned
    overlay: Overlay | None
    problems: list[str]  # what makes the file malformed, for the "Malformed PE" heuristic

    @property
    def compile_time(self) -> str:
        return datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat()


def read(data: bytes) -> PEInfo:
    """Parse `data`; raises pefile.PEFormatError when there is no PE to speak of."""
    pe = pefile.PE(data=data, fast_load=True)
    problems = [f"section {c_string(s.Name)!r}: raw data ends at 0x{s.PointerToRawData + s.SizeOfRawData:x}, "
                f"past the end of the file (0x{len(data):x})"
                for s in pe.sections if s.PointerToRawData + s.SizeOfRawData > len(data)]
    try:
        pe.parse_data_directories(directories=DIRECTORIES)
    except Exception as exc:  # noqa: BLE001 - hostile directories can trip pefile anywhere; keep what it read
        problems.append(f"pefile failed on the data directories: {type(exc).__name__}: {exc}")
    directory = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    entry = pe.OPTIONAL_HEADER.AddressOfEntryPoint
    entry_section = pe.get_section_by_rva(entry)
    signature = directory[SECURITY] if len(directory) > SECURITY else None
    export = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    return PEInfo(
        machine=_named(pefile.MACHINE_TYPE, "IMAGE_FILE_MACHINE_", pe.FILE_HEADER.Machine),
        subsystem=_named(pefile.SUBSYSTEM_TYPE, "IMAGE_SUBSYSTEM_", pe.OPTIONAL_HEADER.Subsystem),
        is_dll=pe.is_dll(),
        is_dotnet=len(directory) > COM_DESCRIPTOR and directory[COM_DESCRIPTOR].Size > 0,
        characteristics=_flags(pe.FILE_HEADER, pefile.IMAGE_CHARACTERISTICS, "IMAGE_FILE_"),
        dll_characteristics=_flags(pe.OPTIONAL_HEADER, pefile.DLL_CHARACTERISTICS, "IMAGE_DLLCHARACTERISTICS_"),
        entry_point=entry,
        entry_section=pe.sections.index(entry_section) if entry_section is not None else None,
        image_base=pe.OPTIONAL_HEADER.ImageBase,
        timestamp=pe.FILE_HEADER.TimeDateStamp,
        sections=[_section(s) for s in pe.sections],
        imports=_imports(pe),
        imphash=pe.get_imphash() if hasattr(pe, "DIRECTORY_ENTRY_IMPORT") else "",
        export_name=c_string(getattr(export, "name", None)),
        exports=[c_string(s.name) for s in getattr(export, "symbols", []) if s.name],
        ordinal_exports=sum(1 for s in getattr(export, "symbols", []) if not s.name),
        resources=_resources(pe),
        pdb_paths=[c_string(d.entry.PdbFileName) for d in getattr(pe, "DIRECTORY_ENTRY_DEBUG", [])
                   if getattr(d.entry, "PdbFileName", None)],
        signature_size=signature.Size if signature else 0,
        overlay=None if problems else _overlay(pe, len(data), signature),
        problems=problems,
    )


def _named(table: dict, prefix: str, value: int) -> str:
    """A header constant by its pefile name, without the common prefix ("AMD64", "WINDOWS_GUI")."""
    name = table.get(value)
    return name.removeprefix(prefix) if isinstance(name, str) else f"unknown (0x{value:x})"


def _flags(struct: pefile.Structure, table: dict, prefix: str) -> list[str]:
    return [name.removeprefix(prefix) for name, _ in pefile.retrieve_flags(table, prefix) if getattr(struct, name, False)]


def _section(section: pefile.SectionStructure) -> Section:
    data = section.get_data()
    return Section(
        name=c_string(section.Name),
        virtual_address=section.VirtualAddress,
        virtual_size=section.Misc_VirtualSize,
        raw_size=section.SizeOfRawData,
        data_size=len(data),
        entropy=section.entropy_H(data),
        characteristics=section.Characteristics,
    )


def _imports(pe: pefile.PE) -> list[Import] | None:
    entries = getattr(pe, "DIRECTORY_ENTRY_IMPORT", None)
    if entries is None:
        declared = len(pe.OPTIONAL_HEADER.DATA_DIRECTORY) > IMPORT and pe.OPTIONAL_HEADER.DATA_DIRECTORY[IMPORT].Size > 0
        return None if declared else []
    return [Import(c_string(e.dll), [c_string(i.name) if i.name else f"ord{i.ordinal}" for i in e.imports]) for e in entries]


def _resources(pe: pefile.PE) -> list[Resource]:
    """Type → name → language leaves of the resource tree (pefile already caps its size)."""
    root = getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None)
    found = []
    for rtype in getattr(root, "entries", []):
        type_name = str(rtype.name) if rtype.name else pefile.RESOURCE_TYPE.get(rtype.id, str(rtype.id))
        for named in getattr(getattr(rtype, "directory", None), "entries", []):
            name = str(named.name) if named.name else str(named.id)
            for leaf in getattr(getattr(named, "directory", None), "entries", []):
                lang = getattr(leaf, "data", None)
                if lang is None:
                    continue
                language = _language(lang.lang, lang.sublang)
                found.append(Resource(type_name, name, language, lang.struct.Size, named=named.name is not None))
    return found


def _language(lang: int, sublang: int) -> str:
    """"ENGLISH_US"; pefile's sublanguage lookup guesses for unknown languages, so those stay numeric."""
    if lang not in pefile.LANG:
        return f"0x{lang:x}"
    return pefile.get_sublang_name_for_lang(lang, sublang).removeprefix("SUBLANG_")


def _overlay(pe: pefile.PE, file_size: int, signature: pefile.Structure | None) -> Overlay | None:
    """Bytes after the last section; the certificate table lives there too, so it is left out."""
    start = pe.get_overlay_data_start_offset()
    if start is None:
        return None
    size = file_size - start
    if signature and signature.Size:
        overlap = min(file_size, signature.VirtualAddress + signature.Size) - max(start, signature.VirtualAddress)
        size -= max(0, overlap)
    return Overlay(start, size) if size > 0 else None
