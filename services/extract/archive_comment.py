"""A RAR archive's comment, shown as text (bounded, hidden characters escaped) with its network
indicators tagged as the iocs service tags a file's strings.

RAR 5: 7zz prints the comment raw, between a `Comment = ` / `{` pair of lines and a `}` line, among the
archive's properties, so the comment's text can hold any line 7zz itself prints. It is read
from a listing that excludes every entry (`-x!*`), whose output then has a fixed shape: 7zz's
own single-line properties (the archive's path, type, size...), the comment, and a fixed tail
(`}`, a blank line, the separator) at the very end. The comment is what lies between the first
opening and that tail, anchored at both ends, so no text in it can move either end; a listing
that ends otherwise gives no text, only a note. That listing never feeds the members (they
come from the bare listing), so a comment can at worst show itself, never forge an entry.

RAR 4: 7zz does not show the comment at all, so its block is rewrapped as the one member of a
small archive that 7zz extracts (`rar4_comment_archive`); its bytes are never parsed as lines.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from functools import cache

import msgspec

from services.iocs.indicators import TAGS, Finder, Policy
from services.sdk import ResultSection
from services.sdk.loader import service_folder
from services.sdk.manifest import load_manifest

MAX_CHARS = 64 * 1024  # of the comment shown (bytes of 7zz's UTF-8 output); RAR 5 allows 256 KiB
MAX_HEAD = 8 * 1024  # 7zz's banner and the archive's single-line properties before the comment
CUT = f"cut: only the first {MAX_CHARS // 1024} KiB of the comment are shown"
MAX_TAGS = 200  # indicators tagged from one comment
OPENING = b"\nComment = \n{\n"
TAIL = b"\n}\n\n----------\n"
_FLAGGED = re.compile(rb"\nCharacteristics = [^\n]*\bComment\b")
# What a terminal or a viewer would act on rather than show: C0/C1 controls (escape sequences),
# bidirectional overrides and isolates (text that reads backwards), zero-width characters.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


RAR4_MARK, RAR5_MARK = b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00"
RAR4_COMMENT_WINDOW = 4 * 1024 * 1024  # of the file read for a RAR 4's comment block (an SFX stub comes first)
_MAIN, _FILE, _SUB, _END = 0x73, 0x74, 0x7A, 0x7B


@dataclass
class Comment:
    """The comment's text (escaped, at most MAX_CHARS of it) and what the reader should know."""

    text: str
    note: str = ""


def read_listing(output: bytes, more: bool) -> Comment | None:
    """The comment in `output`, 7zz's `l -slt -x!*` listing (`more`: the output went on past
    what was read). None when the archive has no comment."""
    start = output.find(OPENING, 0, MAX_HEAD)
    if start < 0:
        flagged = _FLAGGED.search(output[:MAX_HEAD])  # the header says there is one, 7zz did not print it
        return Comment("", "not shown: 7zz shows no comment over 256 KiB (RAR's own limit)") if flagged else None
    body = output[start + len(OPENING) - 1:]  # from the opening's last line break, which TAIL starts with
    if not more:
        if not body.endswith(TAIL):
            return Comment("", "not shown: 7zz's listing of it did not end as expected")
        body = body[: -len(TAIL)]
    text = body[1:]
    if len(text) > MAX_CHARS:
        return Comment(_text(text[:MAX_CHARS]), CUT)
    return Comment(_text(text)) if text else None


def is_rar4(head: bytes) -> bool:
    """Whether `head` (a RAR's first bytes, perhaps after an SFX stub) starts a RAR 4 rather than a RAR 5."""
    start, newer = head.find(RAR4_MARK), head.find(RAR5_MARK)
    return start >= 0 and not 0 <= newer < start


def rar4_comment_archive(head: bytes) -> bytes | None:
    """A RAR 4 archive whose one member is the comment of the RAR 4 archive that `head` starts
    (None: no comment, or one this does not read: encrypted headers or comment).

    RAR 3.x/4.x keep the archive comment in a "CMT" sub-block between the archive header and
    the first file; a sub-block's header is laid out as a file header's, so with its type set to
    "file" (and its CRC redone) it is one, and 7zz extracts it as it does any member.
    """
    start = head.find(RAR4_MARK)
    pos = start + len(RAR4_MARK)
    while pos + 11 <= len(head):
        _, kind, flags, size, added = struct.unpack_from("<HBHHI", head, pos)
        added = added if flags & 0x8000 or kind in (_FILE, _SUB) else 0
        if size < 7 or kind in (_FILE, _END) or (kind == _MAIN and flags & 0x80):
            return None  # the files begin (the comment comes before them), or the headers are encrypted
        if kind == _SUB and size >= 35 and head[pos + 26:pos + 28] == b"\x03\x00" and head[pos + 32:pos + 35] == b"CMT":
            if flags & 0x104 or pos + size + added > len(head):  # encrypted, over 4 GiB, or past the window
                return None
            block = bytearray(head[pos:pos + size])
            block[2] = _FILE
            struct.pack_into("<H", block, 3, flags & ~0x13)  # not split, not solid
            data = head[pos + size:pos + size + added]
            return RAR4_MARK + _rar4_block(_MAIN, 0, bytes(6)) + _seal(block) + data + _rar4_block(_END, 0x4000, b"")
        pos += size + added
    return None


def _rar4_block(kind: int, flags: int, body: bytes) -> bytes:
    return _seal(bytearray(struct.pack("<HBHH", 0, kind, flags, 7 + len(body)) + body))


def _seal(block: bytearray) -> bytes:
    """A RAR 4 block with its header CRC (CRC-32's low half over the header after it) set."""
    struct.pack_into("<H", block, 0, zlib.crc32(block[2:]) & 0xFFFF)
    return bytes(block)


def rar4_comment(output: bytes, more: bool, code: int) -> Comment | None:
    """The comment 7zz extracted from `rar4_comment_archive`'s archive (at most MAX_CHARS of it)."""
    if not more and code != 0:
        return Comment(_text(output), f"damaged (7zz exited with {code})")
    text = _text(output)
    note = CUT if more else ""
    return Comment(text, note) if text or note else None


def _text(raw: bytes) -> str:
    """The comment's bytes as text: UTF-8 (what 7zz prints; RAR 4's own bytes are read as such
    too), Windows line ends as line ends, the rest escaped."""
    return escape(raw.decode("utf-8", "replace").replace("\r\n", "\n"))


def escape(text: str) -> str:
    """`text` with the characters a reader would not see written as `\\x..` / `\\u....`."""
    return _HIDDEN.sub(lambda match: ascii(match.group())[1:-1], text)


@cache
def _policy() -> Policy:
    """The iocs service's idea of a real domain (its manifest's lists), so a comment is tagged
    as that service tags a file's strings."""
    return msgspec.convert(load_manifest(service_folder("iocs")).config, Policy, strict=False)


def section(comment: Comment) -> ResultSection:
    """"Archive comment": the text, the note, and its URLs, domains, IPs and e-mail addresses as tags."""
    out = ResultSection("Archive comment")
    if comment.text:
        out.add_lines(comment.text.rstrip("\n").split("\n"))
    if comment.note:
        out.add_line(f"[comment {comment.note}]")
    seen: dict[tuple[str, str], None] = {}
    for kind, value in Finder(_policy()).find(comment.text):
        seen.setdefault((TAGS[kind], value))
        if len(seen) >= MAX_TAGS:
            break
    for name, value in seen:
        out.add_tag(name, value)
    return out
