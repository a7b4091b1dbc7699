"""File type identification: libmagic (python-magic) read through the rules in schemas/filetypes.yml."""

from __future__ import annotations

import functools
import re
import threading

import magic

from dispatcher.signatures import describe
from schemas.taxonomy import TypeRule, taxonomy

_local = threading.local()
MAGIC_WINDOW = 1024 * 1024  # libmagic's rules look at the head of a file; don't hand it 100 MiB


def _magic() -> tuple[magic.Magic, magic.Magic]:
    # libmagic handles are not thread-safe: one pair per thread.
    if not hasattr(_local, "pair"):
        _local.pair = (magic.Magic(), magic.Magic(mime=True))
    return _local.pair


@functools.cache
def _compiled() -> list[tuple[TypeRule, re.Pattern[str] | None]]:
    return [(rule, re.compile(rule.magic) if rule.magic else None) for rule in taxonomy().rules]


def warm_up() -> None:
    """Parse the taxonomy and open this thread's libmagic handles now (tens of milliseconds), not
    on the first file."""
    _compiled()
    _magic()


def _is_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(sample) - 4  # a multi-byte character cut by the sample
    return True


def _mime(description: str, head: bytes) -> str:
    """libmagic's mime type, without asking libmagic again when its description already says it.

    A libmagic call costs 0.3-0.7 ms on small text (its soft-magic regexes), so the second call
    is made only for descriptions that do not settle the mime type.
    """
    if _PLAIN_TEXT.match(description):
        return "text/plain"
    if description == "data":
        return "application/octet-stream"
    return _magic()[1].from_buffer(head)


# Descriptions libmagic gives text that no magic rule recognised: its mime type is text/plain.
_PLAIN_TEXT = re.compile(r"^(ASCII|Unicode|UTF-8 Unicode|ISO-8859|Non-ISO extended-ASCII) text(,|$)")


def identify(data: bytes) -> str:
    """The taxonomy type of `data`; `unknown` when no rule matches."""
    if not data:
        return "empty"
    head = data[:MAGIC_WINDOW]
    description = describe(head) or _magic()[0].from_buffer(head)  # the common formats without libmagic
    mime: str | None = None  # asked for only when a rule needs it
    for rule, pattern in _compiled():
        if rule.special == "empty":
            continue
        if pattern is not None and pattern.search(description):
            return rule.type
        if rule.mime:
            mime = mime or _mime(description, head)
            if mime in rule.mime:
                return rule.type
        if rule.text and _is_text(data):
            return rule.type
    return "unknown"
