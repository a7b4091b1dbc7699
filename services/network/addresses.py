"""What kind of address an IP is, offline: the special-purpose ranges of RFC 6890 and its
successors (private, loopback, link-local, CGNAT, documentation, benchmarking, multicast,
reserved) and bogons. An indicator pointing at one of them is not a place on the internet: a
lab, a sample's placeholder, or a configuration leak, which is worth saying and not worth a score.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_RANGES: list[tuple[str, str]] = [
    ("0.0.0.0/8", "this network (bogon)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (bogon)"),
    ("255.255.255.255/32", "limited broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "NAT64"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
]
RANGES = [(ipaddress.ip_network(net), what) for net, what in _RANGES]


def special_purpose(address: Address) -> tuple[str, str] | None:
    """(range, what it is) for an address in a special-purpose range, None for a public one."""
    for net, what in RANGES:
        if address.version == net.version and address in net:
            return str(net), what
    if not address.is_global:
        return "", "not globally routable"
    return None
