"""Samples that are not files: URIs, domains and IP addresses, checked and put in canonical form.

A non-file sample travels like a small file: its canonical value (UTF-8) is the content, its
sha256 names it, and it always rides inline in the `FileRef` (`kind` says what it is). So the
cache, the cycle check of a tree and the routing by type all work on samples unchanged. Every
entry point (client, CLI, dispatcher, a service relating a sample) goes through `canonical`, so
a malformed value is refused where it enters with a message that says what is wrong.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import string
import unicodedata
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

from schemas.messages import FileRef, Relation, SampleKind

MAX_URI = 8192  # longer "URIs" are data smuggled in a URI, not something to route
MAX_DOMAIN = 253

# Letters, digits, inner hyphens; and underscores, which DNS allows and malware hosts use.
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_UNSAFE = set(string.whitespace) | {chr(c) for c in range(32)} | {"\x7f"}
_NETWORK_SCHEMES = {"http", "https", "ftp", "ftps", "ws", "wss"}
_URI_TYPES = {"http": "uri/http", "https": "uri/https", "ftp": "uri/ftp"}
# Controls, lone surrogates (not even encodable), line and paragraph separators: never in any kind.
_REFUSED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}

# Each kind's types in the taxonomy, and the relation a found sample of that kind has to its finder.
KIND_TYPES = {
    SampleKind.URI: ("uri/http", "uri/https", "uri/ftp", "uri/other"),
    SampleKind.DOMAIN: ("network/domain",),
    SampleKind.IP: ("network/ip",),
}
DEFAULT_RELATION = {
    SampleKind.FILE: Relation.DROPPED_BY,
    SampleKind.URI: Relation.RETRIEVED_BY,
    SampleKind.DOMAIN: Relation.RESOLVED_BY,
    SampleKind.IP: Relation.CONTACTED_BY,
}


class SampleError(ValueError):
    """A URI, domain or IP value that is malformed; the message says what is wrong with it."""


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def canonical_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        raise SampleError(f"{_shown(value)} is not an IPv4 or IPv6 address") from None


def canonical_domain(value: str) -> str:
    """Lower case, no trailing dot, IDN as punycode (`bücher.example` -> `xn--bcher-kva.example`)."""
    name = value.strip().rstrip(".")
    if not name:
        raise SampleError("a domain cannot be empty")
    if _is_ip(name):
        raise SampleError(f"{_shown(value)} is an IP address, not a domain (submit it as an IP)")
    ascii_name = name.lower() if name.isascii() else _punycode(name, value)
    labels = ascii_name.split(".")
    if len(ascii_name) > MAX_DOMAIN:
        raise SampleError(f"{_shown(value)} is longer than {MAX_DOMAIN} characters")
    if len(labels) < 2:
        raise SampleError(f"{_shown(value)} has no top-level domain (expected e.g. example.com)")
    bad = [label for label in labels if not _LABEL.match(label)]
    if bad:
        raise SampleError(f"{_shown(value)}: label {_shown(bad[0])} must be 1-63 letters, digits, '_' or inner hyphens")
    return ascii_name


def _punycode(name: str, value: str) -> str:
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise SampleError(f"{_shown(value)} is not a valid domain name: {exc}") from None


def canonical_uri(value: str) -> str:
    """Scheme and host in lower case (IDN as punycode); path, query and fragment kept as given."""
    uri = value.strip()
    if not uri:
        raise SampleError("a URI cannot be empty")
    if len(uri) > MAX_URI:
        raise SampleError(f"a URI of {len(uri)} characters is over the {MAX_URI}-character limit")
    if any(c in _UNSAFE for c in uri):
        raise SampleError(f"{_shown(uri)} contains whitespace or control characters")
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise SampleError(f"{_shown(uri)} is not a valid URI: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme):
        raise SampleError(f"{_shown(uri)} has no scheme (expected e.g. https://example.com/)")
    if scheme not in _NETWORK_SCHEMES:
        return urlunsplit(parts._replace(scheme=scheme))
    if not parts.hostname:
        raise SampleError(f"{_shown(uri)} has no host")
    host = _canonical_host(parts.hostname, uri)
    return urlunsplit(SplitResult(scheme, _netloc(parts, host, port), parts.path, parts.query, parts.fragment))


# WHATWG's IPv4 parser, which browsers follow: `ipaddress` refuses these forms on purpose, and
# `socket.inet_aton` differs between C libraries. A host whose last label is a number is an IPv4
# address to a browser, or nothing.
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,11}")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


def _ipv4_part(part: str) -> int | None:
    """One dotted part as WHATWG reads it: `0x` hex, a leading `0` octal, else decimal."""
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCTAL.fullmatch(part):
        return int(part, 8)
    if _DECIMAL.fullmatch(part):
        return int(part)
    return None


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a browser would contact for `host`, if `host` is one in any numeric form.

    One to four parts; every part but the last is one byte, the last fills the bytes left
    (`127.1` is 127.0.0.1, `3232235777` is 192.168.1.1). None for anything else.
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:  # a trailing dot is allowed
        parts.pop()
    if not 1 <= len(parts) <= 4 or len(host) > 64:
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return ipaddress.IPv4Address(value)



def _canonical_host(host: str, uri: str) -> str:
    if _is_ip(host):
        return canonical_ip(host)
    if _NUMBER.fullmatch(host.rstrip(".").rpartition(".")[2]):
        # `0x7f.1`, `3232235777`: kept as written (that it is written so is the finding) but
        # checked, since a browser goes to the address or nowhere (`1.2.3.4.5` is nowhere).
        if numeric_ipv4(host) is None:
            raise SampleError(f"{_shown(uri)}: host {_shown(host)} ends in a number but is no IPv4 address")
        return host.lower()
    try:
        return canonical_domain(host)
    except SampleError as exc:
        raise SampleError(f"{_shown(uri)}: bad host: {exc}") from None


def _netloc(parts: SplitResult, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    userinfo = parts.netloc.rpartition("@")[0]
    return (f"{userinfo}@" if userinfo else "") + shown + (f":{port}" if port is not None else "")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


_CANONICAL = {SampleKind.URI: canonical_uri, SampleKind.DOMAIN: canonical_domain, SampleKind.IP: canonical_ip}


def canonical(kind: SampleKind | str, value: str) -> str:
    """The value in the form Sluice keeps it, or SampleError saying why it is refused."""
    try:
        kind = SampleKind(kind)
    except ValueError:
        raise SampleError(f"unknown sample kind {kind!r} (known: uri, domain, ip)") from None
    if kind is SampleKind.FILE:
        raise SampleError("files are submitted as bytes, not as a value")
    if not isinstance(value, str):
        raise SampleError(f"a {kind.value} must be given as text, not {type(value).__name__}")
    refused = next((c for c in value.strip() if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if refused is not None:
        raise SampleError(f"{_shown(value)} contains a control character or a lone surrogate (U+{ord(refused):04X})")
    return _CANONICAL[kind](value)


def sample_type(kind: SampleKind, value: str) -> str:
    """The taxonomy type a sample routes by (its value already canonical)."""
    if kind is SampleKind.URI:
        return _URI_TYPES.get(value.partition(":")[0], "uri/other")
    return KIND_TYPES[kind][0]


def kind_of_type(file_type: str) -> SampleKind:
    """Which kind of sample a taxonomy type belongs to (everything not listed is a file type)."""
    for kind, types in KIND_TYPES.items():
        if file_type in types:
            return kind
    return SampleKind.FILE


def sample_ref(kind: SampleKind | str, value: str) -> FileRef:
    """A checked sample as it travels: named by its value, carried inline, hashed like a file."""
    data = canonical(kind, value).encode()  # first: it refuses an unknown kind with a SampleError
    return FileRef(hashlib.sha256(data).hexdigest(), len(data), data.decode(), data, SampleKind(kind))


def ref_key(ref: FileRef) -> str:
    """What identifies a sample in a tree: a file by its sha256, any other sample by kind too
    (a domain and a text file holding just that name are different samples)."""
    return node_key(ref.kind, ref.sha256)


def node_key(kind: SampleKind, sha256: str) -> str:
    return sha256 if kind is SampleKind.FILE else f"{kind.value}:{sha256}"


def sample_value(ref: FileRef) -> str:
    """The value of a URI, domain or IP sample as it arrived, or SampleError unless the ref is one
    `sample_ref` would make: value inline, matching its sha256 and size, already canonical.

    The dispatcher checks this where a sample enters (a hand-published message need not have come
    through `sample_ref`), so a routed sample is always one the services can trust to be well formed.
    """
    kind = ref.kind.value
    if ref.data is None:
        raise SampleError(f"a {kind} sample must carry its value inline")
    if len(ref.data) != ref.size or hashlib.sha256(ref.data).hexdigest() != ref.sha256:
        raise SampleError(f"the {kind} sample's inline value does not match its sha256 and size")
    try:
        value = ref.data.decode()
    except UnicodeDecodeError:
        raise SampleError(f"a {kind} sample's value must be UTF-8 text") from None
    expected = canonical(ref.kind, value)
    if expected != value:
        raise SampleError(f"{_shown(value)} is not in canonical form (expected {_shown(expected)})")
    return value
