"""Tag names (Assemblyline's dotted taxonomy) and the checks their values must pass.

A tag a service reports is kept only when its name is well formed and its value passes the
check for its kind: a `network.*.domain` is a domain, a `*.ip` an IP address, and so on.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{2,59})$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
MAX_VALUE = 4096


def _domain(value: str) -> bool:
    return bool(_DOMAIN.match(value.lower()))


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _uri(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme and (parts.netloc or parts.path))


def _email(value: str) -> bool:
    return bool(_EMAIL.match(value))


# The last name token decides the check; names not listed take any non-empty value.
_CHECKS: dict[str, Callable[[str], bool]] = {
    "domain": _domain,
    "ip": _ip,
    "uri": _uri,
    "address": _email,
}


def tag_problem(name: str, value: str) -> str | None:
    """Why this tag cannot be kept, or None when it is fine."""
    if not _NAME.match(name):
        return f"tag name {name!r} is not a dotted lowercase name such as network.static.domain"
    if not value or len(value) > MAX_VALUE:
        return f"tag {name}: value must be 1..{MAX_VALUE} characters"
    check = _CHECKS.get(name.rsplit(".", 1)[1])
    if check and not check(value):
        return f"tag {name}: {value[:80]!r} is not a valid {name.rsplit('.', 1)[1]}"
    return None
