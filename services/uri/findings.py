"""The heuristics a URI can fire, each a small check over its parsed facts.

A check returns a `Finding` (which heuristic, a line or two saying why, and a signature or
ATT&CK id when the heuristic has more than one cause) or None. The thresholds and lists are
the manifest's config, read once into `Policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

import msgspec

from services.uri.hosts import numeric_ipv4
from services.uri.parse import REDACTED, UriFacts

Label = Annotated[str, msgspec.Meta(pattern="^[a-z0-9-]+$")]  # lower case, no dot
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]

SCRIPT_SCHEMES = {"javascript": "T1059.007", "vbscript": "T1059.005", "data": "T1027"}


class Policy(msgspec.Struct, frozen=True):
    """The manifest's config keys that the checks read."""

    suspicious_tlds: frozenset[Label]
    executable_extensions: frozenset[Label]
    usual_ports: frozenset[Port]  # explicit ports that are not worth a word (8080, 8443)
    suspicious_ports: frozenset[Port]  # ports backdoors, IRC bots and remote shells favour
    max_length: int = 1024  # longer URIs hide their real target past what a reader sees
    max_labels: int = 5  # more labels in a host name: `login.bank.example.verify.evil.top`


@dataclass
class Finding:
    heur_id: int
    title: str
    lines: list[str]
    signature: str | None = None
    attack_id: str | None = None


def _credentials(f: UriFacts, policy: Policy) -> Finding | None:
    if f.user is None or (_user_poses_as_host(f) and not f.has_password):
        return None
    said = f"user {f.user!r}" + (f" with a password (shown as {REDACTED})" if f.has_password else "")
    return Finding(1, "Credentials in URI", [said])


def _user_poses_as_host(f: UriFacts) -> bool:
    """A user name like a host (`www.bank.example`, `3232235777`), a `\\` a browser reads as the end
    of the host, or a second `@` hiding one in the password (`u:p@bank.example@evil.example`)."""
    user = unquote(f.user or "")
    return "." in user or numeric_ipv4(user) is not None or "\\" in user or "@" in (f.parts.password or "")


def _at_trick(f: UriFacts, policy: Policy) -> Finding | None:
    if f.user is None or f.host is None or not _user_poses_as_host(f):
        return None
    decoy = (f.parts.password or "").rpartition("@")[2] or f.user  # never the password itself
    lines = [f"{decoy!r} before the '@' reads like the host, but the host is {f.host.host!r}"]
    if "\\" in f.user:
        browser_host = unquote(f.user).partition("\\")[0]
        lines.append(f"a browser takes the '\\' as a path separator: it goes to {browser_host!r}, not {f.host.host!r}")
    return Finding(2, "Host disguised by user info", lines)


def _ip_literal(f: UriFacts, policy: Policy) -> Finding | None:
    if f.host is None or f.host.ip is None:
        return None
    ip = f.host.ip
    lines = [f"the host is the address {ip}"]
    kinds = [name for name in ("loopback", "private", "link_local", "reserved", "multicast") if getattr(ip, f"is_{name}")]
    if kinds:
        lines.append(f"the address is {', '.join(k.replace('_', '-') for k in kinds)}")
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped:
        lines.append(f"an IPv4 address ({mapped}) written as IPv6")
    return Finding(3, "IP address host", lines)


def _encoded_ip(f: UriFacts, policy: Policy) -> Finding | None:
    if f.host is None or not f.host.encoded_ip:
        return None
    return Finding(4, "Encoded IPv4 host", [f"{f.host.host!r} is {f.host.ip} written as numbers a browser resolves"])


def _punycode(f: UriFacts, policy: Policy) -> Finding | None:
    if f.host is None or not f.host.is_punycode:
        return None
    return Finding(5, "International (punycode) host", [f"{f.host.host} reads as {f.host.display or f.host.host}"])


def _look_alike(f: UriFacts, policy: Policy) -> Finding | None:
    if f.host is None or not f.host.concerns:
        return None
    signature = "whole_script" if any(c.looks_like for c in f.host.concerns) else "mixed_script"
    return Finding(6, "Look-alike host name", [c.describe() for c in f.host.concerns], signature)


def _suspicious_tld(f: UriFacts, policy: Policy) -> Finding | None:
    tld = f.host.labels[-1] if f.host and f.host.labels else ""
    if tld not in policy.suspicious_tlds:
        return None
    return Finding(7, "Suspicious TLD", [f".{tld}: cheap, free or popular for abuse"])


def _port(f: UriFacts, policy: Policy) -> Finding | None:
    port = f.port
    if port is None or port == f.default_port:
        return None
    if port in policy.suspicious_ports:
        return Finding(9, "Suspicious port", [f"port {port} is favoured by backdoors and remote shells"], attack_id="T1571")
    if port in policy.usual_ports:
        return None
    default = f" (the {f.scheme} default is {f.default_port})" if f.default_port else ""
    return Finding(8, "Non-standard port", [f"port {port}{default}"], attack_id="T1571")


def _long(f: UriFacts, policy: Policy) -> Finding | None:
    if len(f.uri) <= policy.max_length:
        return None
    return Finding(10, "Very long URI", [f"{len(f.uri):,} characters (more than {policy.max_length:,})"])


def _many_labels(f: UriFacts, policy: Policy) -> Finding | None:
    labels = f.host.labels if f.host else []
    if len(labels) <= policy.max_labels:
        return None
    return Finding(11, "Many subdomains", [f"{len(labels)} labels in {f.host.host} (more than {policy.max_labels})"])


def _script_scheme(f: UriFacts, policy: Policy) -> Finding | None:
    attack = SCRIPT_SCHEMES.get(f.scheme)
    if attack is None:
        return None
    what = "carries its content inline" if f.scheme == "data" else "runs script where it is opened"
    return Finding(12, "Script or data URI", [f"a {f.scheme}: URI {what}"], f.scheme, attack)


def _executable(f: UriFacts, policy: Policy) -> Finding | None:
    ext = f.path_extension
    if f.scheme in SCRIPT_SCHEMES or ext not in policy.executable_extensions:
        return None
    return Finding(13, "Executable download", [f"the path ends in .{ext}: {f.parts.path}"], attack_id="T1204.002")


CHECKS: tuple[Callable[[UriFacts, Policy], Finding | None], ...] = (
    _script_scheme, _at_trick, _credentials, _encoded_ip, _ip_literal, _look_alike, _punycode,
    _suspicious_tld, _many_labels, _port, _executable, _long,
)


def findings(facts: UriFacts, policy: Policy) -> list[Finding]:
    return [found for check in CHECKS if (found := check(facts, policy)) is not None]
