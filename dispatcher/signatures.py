"""A fast signature table for the common formats, asked before libmagic.

libmagic runs hundreds of soft-magic tests (regexes over the whole head) on every file: 0.3-0.7
ms of a dispatcher's CPU per small file, more than all the rest of its work. Most files are one
of a few formats whose first bytes settle what libmagic would say, so `describe` answers those
with the start of the description libmagic gives them ("PE32+ executable (DLL)", "ELF 64-bit",
"PDF document", "ASCII text", ...). The taxonomy's rules (schemas/filetypes.yml) are then read
over that description exactly as over libmagic's, so a file gets the same type either way.

`describe` answers only when it is sure; anything unusual (a PE whose header lies outside the
head, a zip whose first member names a special format, text with syntax that some detector keys
on) returns None and goes to libmagic. tests/test_signatures.py checks that both give the same
type on a corpus built at test time.
"""

from __future__ import annotations

import re
import struct

_FIXED: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF document"),
    (b"\x7fELF\x01", "ELF 32-bit"),
    (b"\x7fELF\x02", "ELF 64-bit"),
    (b"\xcf\xfa\xed\xfe", "Mach-O 64-bit"),
    (b"\xce\xfa\xed\xfe", "Mach-O"),
    (b"\xfe\xed\xfa\xcf", "Mach-O 64-bit"),
    (b"\xfe\xed\xfa\xce", "Mach-O"),
    (b"\x1f\x8b", "gzip compressed data"),
    (b"\xfd7zXZ\x00", "XZ compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "7-zip archive data"),
    (b"Rar!\x1a\x07\x00", "RAR archive data"),
    (b"Rar!\x1a\x07\x01\x00", "RAR archive data, v5"),
)

_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")

# Text whose every byte is a letter, a digit, white space or one of a few marks that no text
# detector of libmagic keys on (no '<', '{', '#', ':', '=', ',', '(' ... : markup, code, mail
# headers, CSV and JSON all need some of them).
_PLAIN = re.compile(rb"[A-Za-z0-9 \t\r\n.'?_+-]+")

# Words libmagic reads as a format at the start of a file (or at offset 4, QuickTime/MP4 atoms),
# even when the rest is plain letters: such text goes to libmagic.
_MAGIC_WORDS = re.compile(
    rb"(-----BEGIN|MZ|BM|P[1-7]\s|FWS|CWS|ZWS|OggS|RIFF|FORM|ITSF|LZIP|MSCF|ISc|BZh|begin|diff|Index|Only in|"
    rb"0707|true|ttcf|OTTO|wOFF|wOF2|fLaC|GIMP|8BPS|TZif|IIN1|MMOR|LZ4|KCF|Draw|SIMPLE|dex|"
    rb"PAR2|PACK|SQLite|ustar|xar|qoif|glTF|MThd|FUJI|RPM|ARC|ZOO|LHA|cpio|ID3|icns|CDF|AT)"
    rb"|....(ftyp|moov|mdat|free|skip|wide|pnot|jP)", re.DOTALL)

# Zip members that libmagic recognises a format by (OOXML, Java, Android, OpenDocument, EPUB...).
_ZIP_SPECIAL = re.compile(rb"(\[Content_Types\]|_rels/|docProps|word/|xl/|ppt/|mimetype|META-INF|Android|"
                          rb"classes|resources|res/|assets/|lib/|doc\.kml|install\.rdf|chrome|content|"
                          rb"settings|styles|meta|manifest|Payload|AppxManifest|\[trash\])", re.IGNORECASE)
_ZIP_PLAIN_MEMBER = re.compile(rb"[A-Za-z0-9 _.-]{1,200}\.(txt|exe|dll|bin|js|vbs|ps1|bat|pdf|jpg|png|doc|xls|csv|dat|log|ini|py|sh)")


def describe(head: bytes) -> str | None:
    """The start of libmagic's description of a file beginning with `head`, or None if unsure."""
    for magic, description in _FIXED:
        if head.startswith(magic):
            return description
    if head.startswith(b"MZ"):
        return _pe(head)
    if head.startswith(b"PK\x03\x04"):
        return _zip(head)
    if _BZIP2.match(head):
        return "bzip2 compressed data"
    return _text(head)


def _pe(head: bytes) -> str | None:
    """PE32 / PE32+ (DLL or not), when the PE header is in the head and its optional header says which."""
    if len(head) < 0x40:
        return None
    offset = struct.unpack_from("<I", head, 0x3C)[0]
    if offset < 0x40 or offset + 26 > len(head) or head[offset:offset + 4] != b"PE\0\0":
        return None
    characteristics, magic = struct.unpack_from("<HH", head, offset + 22)
    bits = {0x10B: "PE32", 0x20B: "PE32+"}.get(magic)
    if bits is None:
        return None
    return f"{bits} executable (DLL)" if characteristics & 0x2000 else f"{bits} executable"


def _zip(head: bytes) -> str | None:
    """A plain zip: its first member an ordinary file name, with no extra field (Java marks one)."""
    if len(head) < 30:
        return None
    name_len, extra_len = struct.unpack_from("<HH", head, 26)
    name = head[30:30 + name_len]
    if extra_len or len(name) != name_len or _ZIP_SPECIAL.search(name) or not _ZIP_PLAIN_MEMBER.fullmatch(name):
        return None
    return "Zip archive data"


def _text(head: bytes) -> str | None:
    if not head or not _PLAIN.fullmatch(head) or _MAGIC_WORDS.match(head) or b"CD001" in head:
        return None
    if len(head) >= 512 and re.fullmatch(rb"[0-7 \x00]{8}", head[148:156]):  # could pass as an old tar header
        return None
    return "ASCII text"
