"""What a URI's host really is: an IP address however it is written, and how its name reads.

Two tricks hide a host from a reader. An IPv4 address written as numbers a browser still
resolves (`0x7f.0.0.1`, `0177.0.0.1`, `127.1`) reads as a name and passes as a domain; and an
international name can borrow letters from another script that look Latin (`pаypal`, with a
Cyrillic `а`). The first is decoded here by the WHATWG URL standard's IPv4 parser, which is
what browsers follow: `ipaddress` refuses these forms on purpose, and `socket.inet_aton` differs
between C libraries (glibc ignores whatever follows a space). The second is judged with
`confusable_homoglyphs`, which carries Unicode's script and confusables tables.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import idna
from confusable_homoglyphs import categories, confusables

from schemas.samples import numeric_ipv4

# Scripts that a language writes together, so mixing them is normal (UTS 39's "highly
# restrictive" level): Japanese, Chinese and Korean with Latin. Any other mix is suspicious.
_USUAL_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_NEUTRAL = {"COMMON", "INHERITED"}  # digits, hyphens, combining marks belong to no script


def unicode_host(host: str) -> str:
    """The host as a reader sees it (`xn--bcher-kva.example` -> `bücher.example`); unchanged
    when it is not valid IDNA (the punycode is then all there is to show)."""
    if "xn--" not in host:
        return host
    try:
        return idna.decode(host)
    except (idna.IDNAError, UnicodeError):
        return host


@dataclass
class LabelConcern:
    """One label of an international host that may pass for another name."""

    label: str
    scripts: list[str]
    looks_like: str = ""  # the Latin name it imitates, when every letter has a Latin twin

    def describe(self) -> str:
        if self.looks_like:
            return f"{self.label!r} is all {self.scripts[0].title()} but reads as Latin {self.looks_like!r}"
        return f"{self.label!r} mixes scripts: {', '.join(s.title() for s in self.scripts)}"


def _latin_twin(label: str) -> str:
    """`label` spelled with the ASCII letters its characters look like, or "" if one has none."""
    found = confusables.is_confusable(label, greedy=True, preferred_aliases=["latin"]) or []
    twins = {}
    for item in found:
        ascii_glyphs = [h["c"] for h in item["homoglyphs"] if h["c"].isascii() and h["c"].isalnum()]
        if ascii_glyphs:
            twins[item["character"]] = ascii_glyphs[0].lower()
    if not all(c.isascii() or c in twins for c in label):
        return ""
    return "".join(twins.get(c, c) for c in label)


def _scripts(label: str) -> list[str]:
    return sorted(categories.unique_aliases(label) - _NEUTRAL)


def label_concern(label: str) -> LabelConcern | None:
    """Why this (Unicode) label could deceive, or None: mixed scripts outside the usual
    combinations, or a whole label in another script that reads as a Latin word."""
    if label.isascii():
        return None
    scripts = _scripts(label)
    if len(scripts) > 1 and not any(set(scripts) <= usual for usual in _USUAL_MIXES):
        return LabelConcern(label, scripts)
    if len(scripts) == 1 and scripts[0] != "LATIN":
        twin = _latin_twin(label)
        if twin:
            return LabelConcern(label, scripts, twin)
    return None


@dataclass
class HostFacts:
    """The host of a network URI: the address it names, or the name and how it reads."""

    host: str  # as canonical (lower case, punycode, IPv6 without brackets)
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    encoded_ip: bool = False  # written in a numeric form other than the dotted quad
    display: str = ""  # the Unicode form of a punycode name
    concerns: list[LabelConcern] = field(default_factory=list)

    @property
    def is_punycode(self) -> bool:
        return any(label.startswith("xn--") for label in self.host.split("."))

    @property
    def labels(self) -> list[str]:
        return [] if self.ip else self.host.rstrip(".").split(".")


def host_facts(host: str) -> HostFacts:
    try:
        return HostFacts(host, ipaddress.ip_address(host))
    except ValueError:
        pass
    numeric = numeric_ipv4(host)
    if numeric is not None:
        return HostFacts(host, numeric, encoded_ip=True)
    display = unicode_host(host)
    labels = display.split(".")
    # A name wholly in one script under a TLD of that script is the normal case (`ехо.рф`).
    tld_scripts = _scripts(labels[-1])
    concerns = [c for c in map(label_concern, labels) if c and not (c.looks_like and c.scripts == tld_scripts)]
    return HostFacts(host, display=display if display != host else "", concerns=concerns)
