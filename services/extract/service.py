"""Extract: one archive level per run; children are analysed (and unpacked again) by the mesh.

Everything unusual about an archive ends up as a section with a heuristic, never as an
exception: a bomb, a hostile name, a truncated file or a password that nobody knows is a
finding about the sample.
"""

from __future__ import annotations

from pathlib import Path

from services.extract import archive_comment, diskimage, libarchive_formats, msi, sevenzz
from services.extract.formats import DISK_IMAGES, LIBARCHIVE, SEVENZZ, corrupt_errors, detect, members
from services.extract.libarchive_formats import is_encryption_error
from services.extract.passwords import Keyring, gather
from services.extract.safety import Caps
from services.extract.unpack import Unpack
from services.sdk import BODY_FORMAT, Request, Result, ResultSection, ServiceBase


class Extract(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        fmt = detect(data, request.file_type)
        if fmt is None:
            result.add_section(ResultSection("Not a supported archive", f"file type {request.file_type}"))
            return
        unpack = Unpack(request, Caps.from_config(self.config))
        keyring = Keyring(gather(self.config.get("passwords", []), request, bool(self.config.get("wordlist", True))))
        notes = sevenzz.Notes()  # filled with the comment of a RAR (the one format asked for it)
        try:
            if fmt == "7zip":
                unpack.seven_zip(data, keyring)
            elif fmt in SEVENZZ:
                seconds = float(self.config.get("tool_seconds", 20))
                unpack.stream(*sevenzz.members(Path(request.file_path), request.work_dir, keyring, seconds,
                                               unpack.caps.entries, notes if fmt == "rar" else None))
            elif fmt in LIBARCHIVE:
                unpack.stream(*libarchive_formats.members(data))
            elif fmt == "msi":
                unpack.stream(msi.members(data), None)
            elif fmt in DISK_IMAGES:
                unpack.stream(*diskimage.members(data, fmt))
            else:
                stream, shared = members(data, fmt, request.file_name, keyring)
                unpack.stream(stream, shared)
        except diskimage.UnreadableVolume as exc:
            unpack.findings.add("unread", str(exc))
        except sevenzz.ToolMissing as exc:
            unpack.findings.add("reader", str(exc))
        except corrupt_errors() as exc:
            kind = "encrypted" if is_encryption_error(exc) else "corrupt"
            unpack.findings.add(kind, f"{fmt}: {type(exc).__name__}: {exc}")
        for password in keyring.worked:
            unpack.findings.add("password", f"opened with the password {password!r}", ("info.password", password))
        if unpack.listing:
            count = len(unpack.listing)
            title = f"Extracted {count} file{'' if count == 1 else 's'}"
            result.add_section(ResultSection(title, unpack.listing, BODY_FORMAT.TABLE, heuristic=1))
            if not self.config.get("continue_after_extract", False):
                request.drop()
        elif not unpack.findings:
            result.add_section(ResultSection("Empty archive", f"the {fmt} holds no files"))
        if notes.comment is not None:
            result.add_section(archive_comment.section(notes.comment))
        for section in unpack.findings.sections():
            result.add_section(section)
