"""Find network indicators in a string and keep only the ones that look real.

Regexes find candidates cheaply (compiled once, at import); the checks after them carry the
false-positive policy: a bare word like `kernel32.dll` or `System.IO` is not a domain, a version
string is an IP only if it is a valid dotted quad, and every value must pass the tag checks in
`schemas.tags` before it is reported.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from schemas.tags import tag_problem

URI, DOMAIN, IP, EMAIL = "uri", "domain", "ip", "email"
TAGS = {
    URI: "network.static.uri",
    DOMAIN: "network.static.domain",
    IP: "network.static.ip",
    EMAIL: "network.email.address",
}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = rf"(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{2,59}})"
_END = r"(?![\w-]|\.[\w-])"  # no partial matches: `a.com` is not found inside `a.community`
URL_RE = re.compile(r"\b(?:https?|ftp)://[^\s\"'<>`{}|\\^\u2018\u2019\u201c\u201d\u00ab\u00bb]+", re.I)
# A domain followed by `@` is a user name (`http://bank.example@evil.example`), not a host.
DOMAIN_RE = re.compile(rf"(?<![\w.@%+-]){_HOST}{_END}(?!@)", re.I)
# After `/` or `:` an address is a URL's user info (`ftp://user:pw@host`), except after `mailto:`.
EMAIL_RE = re.compile(rf"(?:(?<=mailto:)|(?<![\w.%+/:-]))[a-z0-9][a-z0-9._%+-]{{0,63}}@{_HOST}{_END}", re.I)
# No look-behind here: a pattern that starts with \d lets `re` skip ahead to digits, three times
# faster on text; `find` rejects a match glued to a preceding digit or dot instead.
IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\d|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){3,7}[0-9a-f]{0,4}(?![\w:])", re.I)
_URL_TAIL = ".,;:!?'\"*`\u2019\u201d\u00bb\u2018\u201c"
# What an HTML or encoded context leaves glued to a URL's end: `&quot;`, `&#39;`, `%22`, `%27`.
_URL_TAIL_ESCAPED = re.compile(r"(?:&(?:quot|apos|#0*3[49]|#x0*2[27]|gt|lt);?|%2[27]|%3[eE])+$", re.I)
# A dotted quad right after one of these is a version, not an address: `FileVersion` (the PE
# version resource puts it on the string before), `v1.2.3.4`, `Chrome/120.0.0.0`.
_VERSION_BEFORE = re.compile(r"(?:version|\bver\.?|\bbuild|\brelease|\brev(?:ision)?|\bv|[a-z]/)[\s:=\"'(#]*$", re.I)


# How the checks compare TLDs and extensions: lower case, no dot (`.EXE` in the config fails at start).
Label = Annotated[str, msgspec.Meta(pattern="^[a-z0-9-]+$")]


class Policy(msgspec.Struct, frozen=True):
    """Which TLDs and extensions count; the field names are the manifest's config keys, whose
    lists live in the manifest (so changing them changes the cache key)."""

    tlds: frozenset[Label]  # a bare word is a domain only under one of these (or a suspicious one)
    suspicious_tlds: frozenset[Label]
    file_extension_tlds: frozenset[Label]  # TLDs that are also file extensions: `notes.md`, `archive.zip`
    executable_extensions: frozenset[Label]

    @property
    def exe_suffixes(self) -> tuple[str, ...]:
        return tuple(f".{e}" for e in self.executable_extensions)

    def domain_ok(self, domain: str, bare: bool) -> bool:
        """A known TLD written in one case; a bare word needs more (see below).

        URL hosts and e-mail domains come with their own evidence (`://`, `@`); a bare word does
        not, so it also needs a lowercase TLD that is not a file extension (`System.IO`,
        `notes.md`) and a name longer than the two characters random bytes often make (`q.pw`).
        """
        labels = domain.split(".")
        tld = labels[-1]
        known = tld.lower() in self.tlds or tld.lower() in self.suspicious_tlds
        if not known or not (tld.islower() or tld.isupper()):
            return False
        if not bare:
            return True
        return tld.islower() and tld not in self.file_extension_tlds and (len(labels) > 2 or len(labels[0]) > 2)


def _valid(kind: str, value: str) -> bool:
    return tag_problem(TAGS[kind], value) is None


def _ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def _ipv4_candidates(text: str) -> Iterator[str]:
    """IPV4_RE's matches that do not continue a longer dotted number (its missing look-behind)."""
    for match in IPV4_RE.finditer(text):
        start = match.start()
        if start and text[start - 1] in "0123456789.":
            continue
        if not _VERSION_BEFORE.search(text, max(0, start - 40), start):
            yield match.group()


def _trim_url(url: str) -> str:
    """Drop the sentence punctuation and unbalanced closing brackets a URL is usually followed by."""
    while True:
        before = url
        url = _URL_TAIL_ESCAPED.sub("", url).rstrip(_URL_TAIL)
        for close, open_ in ((")", "("), ("]", "[")):
            if url.endswith(close) and url.count(close) > url.count(open_):
                url = url[:-1]
        if url == before:
            return url


def url_host(url: str) -> str | None:
    """The host of a well-formed URL (the standard library's parser: a bad port or bracket is not a URL)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        return parts.hostname
    except ValueError:
        return None


class Finder:
    """Candidates → validated (kind, value) pairs; a candidate seen before is not checked again.

    Files repeat the same indicator many times (a log, a config), and the checks cost far more
    than the regex, so remembering raw candidates is what keeps large text files fast.
    """

    SEEN_MAX = 200_000  # remembered candidates; past this, repeats are merely re-checked

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._seen: set[tuple[str, str]] = set()

    def find(self, text: str) -> Iterator[tuple[str, str]]:
        """(kind, value) for every plausible indicator in `text`, values normalised."""
        # The substring tests are cheap prefilters: most text has no `://`, `@` or `::` at all.
        if "://" in text:
            for raw in self._new(URI, URL_RE.findall(text)):
                yield from self._url(_trim_url(raw))
        for raw in self._new(DOMAIN, DOMAIN_RE.findall(text)):
            yield from self._domain(raw, bare=True)
        if "@" in text:
            for address in self._new(EMAIL, EMAIL_RE.findall(text)):
                domain = address.rsplit("@", 1)[1]
                if self.policy.domain_ok(domain, bare=False) and _valid(EMAIL, address):
                    yield EMAIL, address
                    yield from self._domain(domain, bare=False)
        for raw in self._new(IP, _ipv4_candidates(text)):
            yield from self._address(raw)
        if "::" in text or text.count(":") >= 7:
            for raw in self._new(IP, IPV6_RE.findall(text)):
                yield from self._address(raw)

    def _new(self, kind: str, candidates: Iterable[str]) -> Iterator[str]:
        seen = self._seen
        for raw in candidates:
            key = (kind, raw)
            if key in seen:
                continue
            if len(seen) < self.SEEN_MAX:
                seen.add(key)
            yield raw

    def _url(self, url: str) -> Iterator[tuple[str, str]]:
        host = url_host(url)
        if not host or not _valid(URI, url):
            return
        if _ip(host):
            yield URI, url
            yield from self._address(host)
        elif _valid(DOMAIN, host):
            yield URI, url
            yield from self._domain(host, bare=False)

    def _domain(self, domain: str, bare: bool) -> Iterator[tuple[str, str]]:
        if self.policy.domain_ok(domain, bare) and _valid(DOMAIN, domain.lower()):
            yield DOMAIN, domain.lower()

    @staticmethod
    def _address(text: str) -> Iterator[tuple[str, str]]:
        ip = _ip(text)
        if ip and ip != "::" and _valid(IP, ip):
            yield IP, ip


# -- what makes an indicator worth a score ------------------------------------------------------
def url_uses_ip(url: str) -> bool:
    host = url_host(url)
    return bool(host and _ip(host))


def url_has_credentials(url: str) -> bool:
    """`user:pass@host` (and `trusted.com@evil.com`, the same trick without a password)."""
    try:
        return urlsplit(url).username is not None
    except ValueError:
        return False


def url_downloads_executable(url: str, policy: Policy) -> bool:
    try:
        path = urlsplit(url).path.lower()
    except ValueError:
        return False
    return path.endswith(policy.exe_suffixes)


def has_suspicious_tld(domain: str, policy: Policy) -> bool:
    return domain.rsplit(".", 1)[-1] in policy.suspicious_tlds
