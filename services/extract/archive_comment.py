"""A RAR archive's comment: cut out of 7zz's listing of the archive's own properties, shown
as text (bounded, control characters escaped) and its network indicators tagged.

7zz prints the comment raw, between a `Comment = ` / `{` pair of lines and a `}` line, among the
archive's properties, so the comment's text can hold any line 7zz itself prints. It is read
from a listing that excludes every entry (`-x!*`), whose output then has a fixed shape: 7zz's
own single-line properties (the archive's path, type, size...), the comment, and a fixed tail
(`}`, a blank line, the separator) at the very end. The comment is what lies between the first
opening and that tail, anchored at both ends, so no text in it can move either end; a listing
of another shape gives no text, only a note. That listing never feeds the members (they come
from the bare listing), so a comment can at worst show itself, never forge an entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import msgspec

from services.iocs.indicators import TAGS, Finder, Policy
from services.sdk import ResultSection
from services.sdk.loader import service_folder
from services.sdk.manifest import load_manifest

MAX_CHARS = 64 * 1024  # of the comment shown (bytes of 7zz's UTF-8 output); RAR 5 allows 256 KiB
MAX_HEAD = 8 * 1024  # 7zz's banner and the archive's single-line properties before the comment
MAX_TAGS = 200  # indicators tagged from one comment
OPENING = b"\nComment = \n{\n"
TAIL = b"\n}\n\n----------\n"
# What a terminal or a viewer would act on rather than show: C0/C1 controls (escape sequences),
# bidirectional overrides and isolates (text that reads backwards), zero-width characters.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


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
        return None
    body = output[start + len(OPENING) - 1:]  # from the opening's last line break, which TAIL starts with
    if not more:
        if not body.endswith(TAIL):
            return Comment("", "not shown: 7zz's listing of it did not end as expected")
        body = body[: -len(TAIL)]
    text = body[1:]
    if len(text) > MAX_CHARS:
        return Comment(escape(text[:MAX_CHARS].decode("utf-8", "replace")),
                       f"cut: only the first {MAX_CHARS // 1024} KiB of the comment are shown")
    return Comment(escape(text.decode("utf-8", "replace"))) if text else None


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
        out.add_lines(comment.text.split("\n"))
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
