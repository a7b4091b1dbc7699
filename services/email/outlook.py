"""Outlook .msg files: the same `Mail` as an .eml, read from the OLE compound file with olefile.

A .msg keeps each MAPI property as a stream named `__substg1.0_<tag><type>` (type 001F: UTF-16
text, 001E: 8-bit text, 0102: binary), and each attachment in a storage
`__attach_version1.0_#<n>` with its data (3701) and file names (3707 long, 3704 short). The
transport headers (007D) are the original Internet headers, parsed like an .eml's. The RTF body
(1009) is stored LZFu-compressed ([MS-OXRTFCP]); compressed_rtf inflates it (at most ~9x: its
back-references copy 17 bytes at most per 2-byte token).
"""

from __future__ import annotations

import io

import compressed_rtf
import olefile

from services.email.message import MAX_PARTS, Attachment, Mail, as_email_message, from_headers

SUBJECT, HEADERS, BODY, HTML, RTF, SENDER_NAME, SENDER_ADDRESS = "0037", "007D", "1000", "1013", "1009", "0C1A", "0C1F"
ATTACH_DATA, ATTACH_LONG_NAME, ATTACH_NAME, ATTACH_MIME, ATTACH_CONTENT_ID = "3701", "3707", "3704", "370E", "3712"


def _read(ole: olefile.OleFileIO, storage: list[str], tag: str) -> bytes | str | None:
    """A property from `storage` (a path prefix), as text for the string types, bytes for binary."""
    for kind in ("001F", "001E", "0102"):
        path = [*storage, f"__substg1.0_{tag}{kind}"]
        if ole.exists("/".join(path)):
            raw = ole.openstream(path).read()
            if kind == "001F":
                return raw.decode("utf-16-le", "replace").rstrip("\0")
            if kind == "001E":
                return raw.decode("latin-1").rstrip("\0")
            return raw
    return None


def _as_text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def parse_msg(data: bytes) -> Mail:
    mail = Mail()
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        headers = _as_text(_read(ole, [], HEADERS))
        if headers:
            from_headers(mail, as_email_message(headers))
        mail.subject = mail.subject or _as_text(_read(ole, [], SUBJECT))
        if not mail.sender[1]:
            mail.sender = (_as_text(_read(ole, [], SENDER_NAME)), _as_text(_read(ole, [], SENDER_ADDRESS)))
        mail.text = _as_text(_read(ole, [], BODY))
        mail.html = _as_text(_read(ole, [], HTML))
        rtf = _read(ole, [], RTF)
        if isinstance(rtf, bytes) and rtf:
            try:
                mail.rtf = compressed_rtf.decompress(rtf)
            except Exception:  # noqa: BLE001 - a damaged RTF body must not hide the rest of the message
                mail.rtf = b""
        storages = sorted({entry[0] for entry in ole.listdir(streams=True, storages=True)
                           if entry and entry[0].startswith("__attach_version1.0_#")})
        for index, storage in enumerate(storages):
            if index >= MAX_PARTS:
                mail.parts_cut = True
                break
            content = _read(ole, [storage], ATTACH_DATA)
            if not isinstance(content, bytes):
                continue
            name = _as_text(_read(ole, [storage], ATTACH_LONG_NAME)) or _as_text(_read(ole, [storage], ATTACH_NAME))
            mime = _as_text(_read(ole, [storage], ATTACH_MIME)) or "application/octet-stream"
            inline = bool(_as_text(_read(ole, [storage], ATTACH_CONTENT_ID)))
            mail.attachments.append(Attachment(name or f"attachment-{index}", content, mime, inline))
    return mail
