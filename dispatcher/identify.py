"""File type identification: `head:` rules on the first bytes, then libmagic (python-magic, see
dispatcher/libmagic.py) read through the rules in schemas/filetypes.yml, then, for what is still
`unknown`, magika's opinion."""

from __future__ import annotations

import functools
import logging
import re
import threading
import zlib
from collections.abc import Callable
from re import _constants, _parser  # to tell a line-anchored content rule (see _content_patterns)

from dispatcher import libmagic
from dispatcher.signatures import describe
from schemas.taxonomy import TypeRule, taxonomy

_local = threading.local()
MAGIC_WINDOW = 1024 * 1024  # libmagic's rules look at the head of a file; don't hand it 100 MiB
MAGIKA_MIN_SCORE = 0.9  # below this magika is guessing
HEAD_WINDOW = 64 * 1024  # what `head:` rules see: enough for an ISO/UDF volume descriptor at 32 KiB
log = logging.getLogger(__name__)


def _magic() -> tuple:
    # libmagic handles are not thread-safe: one pair per thread.
    if not hasattr(_local, "pair"):
        _local.pair = (libmagic.handle(), libmagic.handle(mime=True))
    return _local.pair


@functools.cache
def _compiled() -> list[tuple[TypeRule, re.Pattern[str] | None]]:
    return [(rule, re.compile(rule.magic) if rule.magic else None) for rule in taxonomy().rules]


@functools.cache
def _head_rules() -> list[tuple[str, re.Pattern[str]]]:
    """The `head:` rules, in order: formats told by their first bytes where libmagic says nothing
    useful (OneNote, VHD/VHDX, UDF, .iqy, .settingcontent-ms, .jnlp, HTML fragments, e-mails
    starting with a header libmagic does not know)."""
    return [(rule.type, re.compile(rule.head)) for rule in taxonomy().rules if rule.head]


def _by_head(data: bytes) -> str | None:
    head = data[:HEAD_WINDOW].decode("latin-1")
    for file_type, pattern in _head_rules():
        if pattern.match(head):
            return file_type
    return None


@functools.cache
def _content_patterns() -> dict[str, Callable[[str], bool]]:
    """Each content rule as a test of a text's head. A rule whose every alternative starts with
    `^` is tried at line starts only: `re` tries a search at every character (a third of typing
    a small text file went to five such searches)."""
    tests: dict[str, Callable[[str], bool]] = {}
    for rule in taxonomy().rules:
        if rule.content:
            pattern = re.compile(rule.content, re.I | re.M)
            tests[rule.content] = functools.partial(_at_line_starts, pattern) if _line_anchored(rule.content) else \
                (lambda text, pattern=pattern: pattern.search(text) is not None)
    return tests


def _line_anchored(source: str) -> bool:
    """Whether every match of `source` (compiled MULTILINE) must begin at a line start."""
    def starts_anchored(items) -> bool:
        if not len(items):
            return False
        op, arg = items[0]
        if op is _constants.AT:
            return arg is _constants.AT_BEGINNING
        if op is _constants.BRANCH:
            return all(starts_anchored(alternative) for alternative in arg[1])
        if op is _constants.SUBPATTERN:
            return starts_anchored(arg[3])
        return False

    return starts_anchored(_parser.parse(source, re.I | re.M))


def _at_line_starts(pattern: re.Pattern[str], text: str) -> bool:
    start = 0
    while True:
        if pattern.match(text, start):
            return True
        start = text.find("\n", start) + 1
        if not start:
            return False


CONTENT_WINDOW = 65536  # content rules look at the head of a text file only


def warm_up() -> None:
    """Parse the taxonomy and open this thread's libmagic handles now (tens of milliseconds), not
    on the first file."""
    _compiled()
    _head_rules()
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
    """The taxonomy type of `data`; when no rule matches, magika's second opinion or `unknown`."""
    found = first_opinion(data)
    return found if found != "unknown" else second_opinion(data)


def first_opinion(data: bytes) -> str:
    """The type the `head:` rules and libmagic give (`unknown` when neither knows): the cheap part
    of identification, which the dispatcher runs on its event loop for small files."""
    if not data:
        return "empty"
    by_head = _by_head(data)
    if by_head is not None:
        return by_head
    return _by_libmagic(data)


@functools.lru_cache(maxsize=4096)
def _rules_for(description: str) -> tuple[tuple[TypeRule, ...], str]:
    """What the taxonomy's rules make of a description, worked out once per description: the
    rules before the first whose `magic` matches it that look at the file itself (content, mime,
    text), in order, and the type that first match gives ("unknown" if none does). Fifty regexes
    per file were most of identifying a small text file."""
    checks: list[TypeRule] = []
    for rule, pattern in _compiled():
        if rule.special == "empty":
            continue
        if pattern is not None and pattern.search(description):
            return tuple(checks), rule.type
        if rule.content or rule.mime or rule.text:
            checks.append(rule)
    return tuple(checks), "unknown"


def _by_libmagic(data: bytes) -> str:
    head = data[:MAGIC_WINDOW]
    description = describe(head) or _magic()[0].from_buffer(head)  # the common formats without libmagic
    mime: str | None = None  # asked for only when a rule needs it
    head_text: str | None = None  # for content rules: the head decoded once ("" when the file is not text)
    checks, by_description = _rules_for(description)
    for rule in checks:
        if rule.content:
            if head_text is None:
                head_text = data[:CONTENT_WINDOW].decode("utf-8", "replace") if _is_text(data) else ""
            if head_text and _content_patterns()[rule.content](head_text):
                return rule.type
        if rule.mime:
            mime = mime or _mime(description, head)
            if mime in rule.mime:
                return rule.type
        if rule.text and _is_text(data):
            return rule.type
    return by_description


@functools.cache
def _magika() -> object | None:
    """Google's magika (its model ships in the wheel), loaded once per process (0.6-1.4 s measured)
    on the first file that needs it; None, and said once in the log, if it cannot be loaded."""
    try:
        from magika import Magika

        return Magika()
    except Exception as exc:  # noqa: BLE001 - an optional second opinion must never stop identification
        log.warning("magika unavailable, unknown files stay unknown: %s", exc)
        return None


def second_opinion(data: bytes) -> str:
    """magika's type for a file libmagic had no specific answer for, through the taxonomy's
    `magika:` table; `unknown` when magika is unsure, answers a label we do not map, or is absent.

    Only files that would otherwise be `unknown` get here, so the common path never pays for the
    model (10-55 ms a file on a 2-core box: bench/identify_fallback.py), and of those only the
    ones `worth_a_second_opinion`.
    """
    return magika_type(data) if worth_a_second_opinion(data) else "unknown"


NOISE_WINDOW = 4096  # how much of each end of a file the noise test compresses


def worth_a_second_opinion(data: bytes) -> bool:
    """Whether magika could tell anything from `data`: not for one byte repeated (padding, a wiped
    file: magika calls zeros an ISO), nor when both ends are noise that zlib cannot shrink
    (random, encrypted or compressed bytes with no header or trailer): magika answers
    `randombytes` or guesses there, and asking cost every such file 10-17 ms of the dispatcher's
    CPU (a scan of random files spent a third of its time on it). magika reads a file's ends, so
    a format with a structured trailer (a DMG's koly block) is still asked about."""
    if not data.strip(data[:1]):
        return False
    ends = (data,) if len(data) <= 2 * NOISE_WINDOW else (data[:NOISE_WINDOW], data[-NOISE_WINDOW:])
    return not all(len(zlib.compress(end, 1)) >= len(end) for end in ends)


def magika_type(data: bytes) -> str:
    """magika's answer for `data` through the taxonomy's `magika:` table (`unknown` when unsure)."""
    model = _magika()
    if model is None:
        return "unknown"
    result = model.identify_bytes(data[:MAGIC_WINDOW])  # type: ignore[attr-defined]
    if not result.ok or result.score < MAGIKA_MIN_SCORE:
        return "unknown"
    return taxonomy().magika.get(str(result.output.label), "unknown")
