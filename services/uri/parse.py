"""A URI taken apart with the standard library, its password redacted before anything shows it."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, unquote, unquote_to_bytes, urlsplit

from services.uri.hosts import HostFacts, host_facts

REDACTED = "***"
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 990, "ws": 80, "wss": 443}


@dataclass
class UriFacts:
    """The parts of one URI (already canonical: scheme and host lower case, IDN as punycode)."""

    uri: str
    parts: SplitResult
    host: HostFacts | None  # None for a URI without a host (`data:`, `javascript:`, `mailto:`)
    port: int | None  # as written; None when the scheme's default applies

    @property
    def scheme(self) -> str:
        return self.parts.scheme

    @property
    def user(self) -> str | None:
        return self.parts.username

    @property
    def has_password(self) -> bool:
        return self.parts.password is not None

    @property
    def redacted(self) -> str:
        """The URI with its password, if any, replaced by `***` (the user name stays)."""
        if not self.has_password:
            return self.uri
        userinfo, _, hostport = self.parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        return self.parts._replace(netloc=f"{user}:{REDACTED}@{hostport}").geturl()

    @property
    def default_port(self) -> int | None:
        return DEFAULT_PORTS.get(self.scheme)

    @property
    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.parts.query, keep_blank_values=True)

    @property
    def path_extension(self) -> str:
        """The last path segment's extension, lower case, without the dot ("" if none)."""
        segment = unquote(self.parts.path).rsplit("/", 1)[-1]
        stem, dot, ext = segment.rpartition(".")
        return ext.lower() if dot and stem else ""


def parse_uri(uri: str) -> UriFacts:
    """Raises ValueError only for what `urlsplit` refuses (the sample check refuses it first)."""
    parts = urlsplit(uri)
    port = parts.port
    host = host_facts(parts.hostname) if parts.hostname else None
    return UriFacts(uri, parts, host, port)


@dataclass
class DataPayload:
    media_type: str
    data: bytes


def data_payload(facts: UriFacts) -> DataPayload | None:
    """What a `data:` URI carries (RFC 2397), or None without a comma or with broken base64."""
    header, comma, body = facts.uri.partition(":")[2].partition(",")
    if not comma:
        return None
    is_base64 = header.lower().endswith(";base64")
    media_type = header[: -len(";base64")] if is_base64 else header
    data = unquote_to_bytes(body)
    if is_base64:
        try:
            data = base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return None
    return DataPayload(media_type or "text/plain", data)
