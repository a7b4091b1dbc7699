"""OneNote: the files embedded in a .one section (the 2023 delivery trick: a "double-click to view"
button over an embedded .hta, .cmd, .vbs or .exe).

OneNote keeps each embedded file in a FileDataStoreObject ([MS-ONESTORE] 2.6.13): a header
GUID, the length (64 bits), 12 reserved bytes, the bytes themselves, a footer GUID. Scanning
for the header GUID finds them without parsing the whole revision store, as Assemblyline's and
Strelka's OneNote scanners do; the declared length is checked against the footer and the file.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from services.sdk import BODY_FORMAT, MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase

HEADER = bytes.fromhex("E716E3BD65261145A4C48D4D0B7A9EAC")  # {BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC}
FOOTER = bytes.fromhex("22A7FB71790F0B4ABB13899256426B24")  # {71FBA722-0F79-4A0B-BB13-899256426B24}
_DATA_OFFSET = 16 + 8 + 4 + 8  # header GUID, cbLength, unused, reserved
_SCRIPT = re.compile(rb"<script|<hta:application|wscript\.|createobject\(|powershell|@echo off|cmd(?:\.exe)? /c|"
                     rb"\bdim\s+\w+|function\s+\w+\s*\(|mshta|rundll32", re.I)


def embedded(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, bytes, footer found) of each embedded file, in order."""
    start = data.find(HEADER)
    while start != -1:
        length_at = start + 16
        if length_at + 8 > len(data):
            return
        (length,) = struct.unpack_from("<Q", data, length_at)
        begin = start + _DATA_OFFSET
        end = begin + length
        if length and end <= len(data):
            footer_at = end + (-length % 8)  # the data is padded to 8 bytes before the footer
            yield begin, data[begin:end], data[footer_at:footer_at + 16] == FOOTER
            start = data.find(HEADER, end)
        else:
            start = data.find(HEADER, start + 16)


def kind_of(content: bytes) -> str:
    """What an embedded file is, for the heuristic: executable, script, or other."""
    if content[:2] == b"MZ" or content[:4] == b"\x7fELF":
        return "executable"
    if _SCRIPT.search(content[:64 * 1024]):
        return "script"
    return "other"


class OneNote(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        rows = []
        dangerous = []
        try:
            for index, (offset, content, footer) in enumerate(embedded(request.file_contents), start=1):
                kind = kind_of(content)
                name = f"embedded-{index}.bin"
                request.add_extracted(content, name, f"file embedded in the OneNote section at offset {offset:#x}")
                rows.append({"name": name, "offset": offset, "size": len(content), "kind": kind, "footer": footer})
                if kind != "other":
                    dangerous.append(f"{name}: {kind} ({len(content):,} bytes)")
        except MaxExtractedExceeded:
            result.add_section(ResultSection("Too many embedded files", f"stopped at {request.max_extracted}"))
        if not rows:
            result.add_section(ResultSection("No embedded files", "the section embeds no files"))
            return
        result.add_section(ResultSection(f"Embedded files ({len(rows)})", rows, BODY_FORMAT.TABLE, heuristic=1))
        if dangerous:
            section = ResultSection("Embedded scripts or executables", heuristic=2)
            section.add_lines(dangerous)
            result.add_section(section)
