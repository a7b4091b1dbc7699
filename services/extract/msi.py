"""Windows Installer (.msi) packages as a stream of `Member`s: the OLE streams that carry payloads.

An MSI is an OLE compound file. Its database tables are streams too (their names start with
`!` once decoded); the payloads are the other streams: embedded cabinets (which the mesh then
unpacks as archive/cab), `Binary.*` custom-action DLLs and scripts, icons. Stream names are
stored compressed (MSI packs two name characters into one code point from U+3800), so they are
decoded to what an analyst reads in Orca or msitools.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import olefile

from services.extract.formats import Kind, Member

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"
_TABLE_MARK = 0x4840  # a leading code point that marks a database table stream


def decode_stream_name(name: str) -> str:
    """The readable name of an MSI stream (`䡀䈏䗤䕸䠨` → `!_Tables`)."""
    out = []
    for char in name:
        code = ord(char)
        if code == _TABLE_MARK:
            out.append("!")
        elif 0x3800 <= code < 0x4800:
            code -= 0x3800
            out.append(_ALPHABET[code & 0x3F] + _ALPHABET[(code >> 6) & 0x3F])
        elif 0x4800 <= code < _TABLE_MARK:
            out.append(_ALPHABET[code - 0x4800])
        else:
            out.append(char)
    return "".join(out)


def members(data: bytes) -> Iterator[Member]:
    """Each payload stream (not the tables, not the property-set streams) as a file member."""
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        for path in ole.listdir(streams=True, storages=False):
            name = "/".join(decode_stream_name(part) for part in path)
            if name.startswith("!") or name.startswith("\x05"):
                continue
            yield Member(name, Kind.FILE, lambda path=path: ole.openstream(path), ole.get_size(path))
