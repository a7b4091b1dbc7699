"""Tag names (Assemblyline's dotted taxonomy, in `tagnames.yml`) and the checks their values pass.

A tag a service reports is kept only when its name is in the taxonomy and its value passes the
check for the name's kind: `network.static.domain` holds a domain, `file.pe.imports.imphash` an
MD5, and so on. Values are only checked, never rewritten: a check accepts the one form
Assemblyline stores (lowercase domains and digests, compressed IPs, plain decimal integers), so
the same indicator reported by two services is the same tag. `tag_problem` runs on every tag
every service reports, so the taxonomy is loaded once and the checks are precompiled.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

import yaml

MAX_VALUE = 4096
TAGNAMES = Path(__file__).with_name("tagnames.yml")
WILDCARD = "*"  # as the last token in tagnames.yml: any one lowercase token (file.rule.<source>)

_TOKEN = r"[a-z][a-z0-9_]*"
_TOKEN_RE = re.compile(_TOKEN)
_ENTRY_RE = re.compile(rf"{_TOKEN}(?:\.{_TOKEN})*(?:\.\*)?")  # a name as written in tagnames.yml

_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{2,59})")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{2,59})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_URI_PATH = re.compile(r"[/?#][^\s\x00-\x1f\x7f]*")
_UNC_PATH = re.compile(r"\\\\[^\\/\s\x00-\x1f\x7f]+\\[^\\\x00-\x1f\x7f]+(?:\\[^\x00-\x1f\x7f]*)?")
_MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")
_PHONE = re.compile(r"\+?[0-9(][0-9 ().-]{5,28}[0-9]")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,63}")
_JA4_VERSION = r"(?:[0-9]{2}|[sd][0-9])"  # TLS 1.x as two digits, SSL as s#, DTLS as d#
_JA4 = re.compile(rf"[tqd]{_JA4_VERSION}[di][0-9]{{4}}[A-Za-z0-9]{{2}}_[0-9a-f]{{12}}_[0-9a-f]{{12}}")
_JA4S = re.compile(rf"[tqd]{_JA4_VERSION}[0-9]{{2}}[A-Za-z0-9]{{2}}_[0-9a-f]{{4}}_[0-9a-f]{{12}}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # 0..255 without leading zeros
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,9}")
_PORT = re.compile(r"0|[1-9][0-9]{0,4}")


def _domain(value: str) -> bool:
    return len(value) <= 253 and _DOMAIN.fullmatch(value) is not None


def _email(value: str) -> bool:
    # 254 is the longest address SMTP carries; the cap also bounds the regex's backtracking.
    return len(value) <= 254 and _EMAIL.fullmatch(value) is not None


def _ip(value: str) -> bool:
    if ":" not in value:  # IPv4, the common case: a regex is ten times faster than ipaddress
        return _IPV4.fullmatch(value) is not None
    try:
        return ipaddress.IPv6Address(value).compressed == value
    except ValueError:
        return False


def _uri(value: str) -> bool:
    """`scheme:` then a host or a path; a `//` promises a host (`http:///x` names no server)."""
    scheme, colon, rest = value.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme) or _SPACE_OR_CONTROL.search(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        return False
    if rest.startswith("//"):
        return bool(parts.hostname)
    return bool(parts.path)


def _integer(value: str) -> bool:
    return _INTEGER.fullmatch(value) is not None and -(2**31) <= int(value) < 2**31


def _port(value: str) -> bool:
    return _PORT.fullmatch(value) is not None and int(value) <= 65535


def _phone(value: str) -> bool:
    return _PHONE.fullmatch(value) is not None and 7 <= sum(c.isdigit() for c in value) <= 15


def _matches(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda value: pattern.fullmatch(value) is not None


def _hex(length: int) -> Callable[[str], bool]:
    return _matches(re.compile(f"[0-9a-f]{{{length}}}"))


class Kind(NamedTuple):
    check: Callable[[str], bool]
    expected: str  # completes "... is not {expected}" in the message a failed check gives


# Every kind tagnames.yml may use; loading the file fails on any other.
KINDS: Mapping[str, Kind] = MappingProxyType({
    "text": Kind(lambda value: "\x00" not in value, "text without NUL characters"),
    "domain": Kind(_domain, "a lowercase domain name (IDNA as xn--)"),
    "ip": Kind(_ip, "an IP address in compressed form"),
    "uri": Kind(_uri, "a URI (scheme: with a host or path, no whitespace or control characters)"),
    "uri_path": Kind(_matches(_URI_PATH), "a URI path starting with /, ? or #, without whitespace"),
    "unc_path": Kind(_matches(_UNC_PATH), r"a UNC path (\\host\share)"),
    "email": Kind(_email, "an e-mail address"),
    "md5": Kind(_hex(32), "an MD5 (32 lowercase hex digits)"),
    "sha1": Kind(_hex(40), "a SHA1 (40 lowercase hex digits)"),
    "sha256": Kind(_hex(64), "a SHA256 (64 lowercase hex digits)"),
    "ssdeep": Kind(_matches(re.compile(r"[0-9]{1,18}:[A-Za-z0-9/+]{1,64}:[A-Za-z0-9/+]{1,64}")),
                   "an ssdeep hash (blocksize:hash:hash)"),
    "ja4": Kind(_matches(_JA4), "a JA4 fingerprint (t13d1516h2_8daaf6152771_b0da82dd1658)"),
    "ja4s": Kind(_matches(_JA4S), "a JA4S fingerprint (t130200_1301_234ea6891581)"),
    "mac": Kind(_matches(_MAC), "a MAC address (six lowercase hex pairs joined by : or -)"),
    "phone": Kind(_phone, "a phone number (7..15 digits with + ( ) . - or spaces)"),
    "platform": Kind(_matches(_KEYWORD), "a platform keyword (letters, digits, space . _ + -)"),
    "processor": Kind(_matches(_KEYWORD), "a processor keyword (letters, digits, space . _ + -)"),
    "integer": Kind(_integer, "a decimal 32-bit integer"),
    "port": Kind(_port, "a port number (0..65535, no leading zeros)"),
})


@dataclass(frozen=True)
class Taxonomy:
    exact: Mapping[str, str]  # name -> kind
    wildcard: Mapping[str, str]  # prefix of a `prefix.*` entry -> kind
    names: tuple[str, ...]  # every entry as written, sorted: what close matches are drawn from


def parse(raw: object, source: str = TAGNAMES.name) -> Taxonomy:
    """Validate a loaded tagnames.yml: a mapping of well-formed names to known kinds."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping of tag name -> kind")
    exact: dict[str, str] = {}
    wildcard: dict[str, str] = {}
    for name, kind in raw.items():
        if not isinstance(name, str) or not _ENTRY_RE.fullmatch(name):
            raise ValueError(f"{source}: {name!r} is not a dotted name of [a-z0-9_] tokens")
        if kind not in KINDS:
            raise ValueError(f"{source}: {name}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if name.endswith("." + WILDCARD):
            wildcard[name[:-2]] = kind
        else:
            exact[name] = kind
    return Taxonomy(MappingProxyType(exact), MappingProxyType(wildcard), tuple(sorted(raw)))


@functools.cache
def taxonomy() -> Taxonomy:
    return parse(yaml.safe_load(TAGNAMES.read_text(encoding="utf-8")), str(TAGNAMES))


def known_tags() -> frozenset[str]:
    """Every name in tagnames.yml as written (`file.rule.*` stands for file.rule.<source>)."""
    return frozenset(taxonomy().names)


def tag_kind(name: str) -> str | None:
    """The kind of value a tag name holds, or None for a name outside the taxonomy."""
    tax = taxonomy()
    kind = tax.exact.get(name)
    if kind is None:
        prefix, _, last = name.rpartition(".")
        kind = tax.wildcard.get(prefix)
        if kind is not None and not _TOKEN_RE.fullmatch(last):
            return None
    return kind


@functools.lru_cache(maxsize=256)
def _unknown(name: str) -> str:
    # Bounded: a misbehaving service may report huge names, and matching is quadratic in length.
    close = difflib.get_close_matches(name, taxonomy().names, n=3) if len(name) <= 200 else []
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown tag {name[:80]!r}: not in Assemblyline's taxonomy (schemas/tagnames.yml){hint}"


def tag_problem(name: str, value: str) -> str | None:
    """Why this tag cannot be kept, or None when it is fine."""
    kind = tag_kind(name)
    if kind is None:
        return _unknown(name)
    if not value or len(value) > MAX_VALUE:
        return f"tag {name}: value must be 1..{MAX_VALUE} characters, not {len(value)}"
    spec = KINDS[kind]
    if not spec.check(value):
        return f"tag {name}: {value[:80]!r} is not {spec.expected}"
    return None
