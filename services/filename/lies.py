"""Names that lie: what a file's name makes a reader believe against what the file is.

Windows hides known extensions, so `invoice.pdf.exe` shows as `invoice.pdf`; a right-to-left
override turns `invoice[RLO]fdp.exe` into `invoiceexe.pdf` on screen; a run of spaces pushes the
real extension out of a narrow column. Each is checked on every file's name (the submitted or
extracted name), whatever the file's type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Extensions Windows runs (or opens in something that runs code) on a double click.
EXECUTABLE = {"exe", "scr", "com", "pif", "bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "wsh", "hta", "lnk", "ps1",
              "msi", "jar", "dll", "cpl", "msc", "reg", "iso", "img", "vhd", "vhdx", "one", "application", "appref-ms"}
# Extensions a reader trusts as a document or media.
DOCUMENT = {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "rtf", "txt", "csv", "jpg", "jpeg", "png", "gif", "bmp",
            "mp3", "mp4", "wav", "avi", "mov", "odt", "ods", "htm", "html", "xml", "eml", "msg", "zip", "rar", "7z"}
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_SPACE_RUN = re.compile(r"[\s\u2000-\u200b\u3000\u00a0_]{3,}\.[A-Za-z0-9]{1,5}$")
_TYPE_LIKE = re.compile(r"^(executable/|code/(javascript|vbs|vba|powershell|batch|hta|wsf|jscript))")


@dataclass(frozen=True)
class NameLie:
    signature: str
    line: str


def _extensions(name: str) -> list[str]:
    return [part.lower().strip() for part in name.split(".")[1:]]


def lies(name: str, file_type: str) -> list[NameLie]:
    found: list[NameLie] = []
    bidi = _BIDI.findall(name)
    if bidi:
        shown = _BIDI.sub("", name)
        found.append(NameLie("bidi_override", f"{name!r} hides {len(bidi)} direction control(s) (U+{ord(bidi[0]):04X}); "
                                              f"the characters in order are {shown!r}"))
    exts = _extensions(_BIDI.sub("", name))
    if len(exts) >= 2 and exts[-1] in EXECUTABLE and exts[-2] in DOCUMENT:
        found.append(NameLie("double_extension", f"{name!r} reads as .{exts[-2]} but is .{exts[-1]}"))
    if _SPACE_RUN.search(name):
        found.append(NameLie("padded_extension", f"{name!r} pushes its real extension away with a run of blanks"))
    if exts and exts[-1] in DOCUMENT and _TYPE_LIKE.match(file_type):
        found.append(NameLie("type_mismatch", f"{name!r} ends in .{exts[-1]} but the content is {file_type}"))
    return found
