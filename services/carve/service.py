"""Carve: payloads hidden inside other files, out as children.

- data after an image's real end (a PE or RAR appended to a JPEG, PNG, GIF or BMP);
- a PE's overlay (the bytes after its last section, minus its signature) when it is a known
  format, such as a zip or a second PE;
- base64 and hex runs in text that decode to an executable or a container;
- PyInstaller bundles: the entry scripts and the PYZ of modules.
"""

from __future__ import annotations

import zlib

import pefile

from services.carve import pyinstaller
from services.carve.blobs import decoded_payloads
from services.carve.images import image_end
from services.carve.signatures import known
from services.sdk import BODY_FORMAT, MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase

_SECURITY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]


def overlay_start(data: bytes) -> int | None:
    """Where a PE's overlay begins, past an Authenticode signature placed right at its start."""
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError:
        return None
    # No pe.close(): it only unmaps files (this PE is bytes in memory) and runs gc.collect(), which
    # costs 100+ ms in a service process with a large heap.
    start = pe.get_overlay_data_start_offset()
    directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    directory = directories[_SECURITY] if len(directories) > _SECURITY else None
    if start is not None and directory is not None and directory.Size and directory.VirtualAddress == start:
        start += directory.Size
    return start if start is not None and start < len(data) else None


class Carve(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        file_type = request.file_type
        try:
            if file_type.startswith("image/"):
                self._appended(request, result, data)
            elif file_type.startswith("executable/windows/"):
                self._overlay(request, result, data)
                self._pyinstaller(request, result, data)
            else:
                self._blobs(request, result, data)
        except MaxExtractedExceeded:
            result.add_section(ResultSection("Too many carved files", f"stopped at {request.max_extracted} children"))

    def _appended(self, request: Request, result: Result, data: bytes) -> None:
        end = image_end(data)
        if end is None or len(data) - end < int(self.config.get("min_appended_bytes", 16)):
            return
        tail = data[end:]
        fmt = known(tail)
        section = ResultSection("Data after the image's end", heuristic=1 if fmt else None)
        section.add_line(f"{len(tail):,} bytes after offset {end:#x}" + (f": a {fmt}" if fmt else " (no known format)"))
        if fmt:
            request.add_extracted(tail, f"appended-{end:x}.{fmt}", f"{fmt} appended after the image's end")
        result.add_section(section)

    def _overlay(self, request: Request, result: Result, data: bytes) -> None:
        start = overlay_start(data)
        if start is None:
            return
        fmt = known(data[start:])
        if fmt:
            request.add_extracted(data[start:], f"overlay-{start:x}.{fmt}", f"the PE's overlay: a {fmt}")
            result.add_section(ResultSection("Known format in the PE overlay",
                                             f"{len(data) - start:,} bytes at offset {start:#x}: a {fmt}", heuristic=2))

    def _pyinstaller(self, request: Request, result: Result, data: bytes) -> None:
        try:
            bundle = pyinstaller.parse(data, int(self.config.get("max_entries", 5000)))
        except pyinstaller.NotPyInstaller:
            return
        max_bytes = int(self.config.get("max_entry_bytes", 100 * 2**20))
        rows = [{"name": e.name, "type": e.kind, "size": e.size} for e in bundle.entries]
        section = ResultSection(f"PyInstaller bundle (Python {bundle.python}, {len(rows)} entries)", rows[:200],
                                BODY_FORMAT.TABLE, heuristic=3)
        section.add_tag("file.compiler", f"PyInstaller (Python {bundle.python})")
        result.add_section(section)
        problems = []
        for entry in bundle.entries:
            if entry.kind not in ("s", "z"):
                continue
            try:
                content = bundle.read(data, entry, max_bytes)
            except (ValueError, zlib.error) as exc:
                problems.append(f"{entry.name}: {type(exc).__name__}: {exc}")
                continue
            if entry.kind == "s":
                pyc = pyinstaller.as_pyc(content, bundle.python)
                name, what = (f"{entry.name}.pyc", "compiled") if pyc else (f"{entry.name}.marshal", "marshalled code")
                request.add_extracted(pyc or content, name, f"PyInstaller entry script {entry.name!r} ({what}, Python {bundle.python})")
            else:
                request.add_extracted(content, entry.name, "PyInstaller PYZ archive of the bundled modules")
        if problems:
            damaged = ResultSection("Damaged PyInstaller entries")
            damaged.add_lines(problems, limit=50)
            result.add_section(damaged)

    def _blobs(self, request: Request, result: Result, data: bytes) -> None:
        scan = data[: int(self.config.get("max_scan_bytes", 32 * 2**20))]
        lines = []
        for encoding, offset, decoded, fmt in decoded_payloads(scan, int(self.config.get("max_blobs", 20))):
            request.add_extracted(decoded, f"{encoding}-{offset:x}.{fmt}", f"{encoding} text at offset {offset:#x} decoded: a {fmt}")
            lines.append(f"{encoding} at offset {offset:#x}: {len(decoded):,} bytes, a {fmt}")
        if lines:
            section = ResultSection("Encoded executable or archive", heuristic=4)
            section.add_lines(lines)
            result.add_section(section)
