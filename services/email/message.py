"""An e-mail as the few things triage needs, whatever it came as (.eml here, Outlook .msg in
outlook.py): headers, addresses, received hops, authentication results, bodies, attachments.

The standard library's `email` package parses MIME leniently (defects are recorded, never
raised), which is what hostile mail needs.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

MAX_PARTS = 500  # MIME parts walked per message: a message of a million parts is cut, and says so


@dataclass
class Attachment:
    name: str
    data: bytes
    content_type: str
    inline: bool  # an inline part (an image shown in the body) rather than an attached file


@dataclass
class Hop:
    raw: str
    hosts: list[str]
    ips: list[str]


@dataclass
class Mail:
    headers: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    date: str = ""
    message_id: str = ""
    sender: tuple[str, str] = ("", "")  # From: (display name, address)
    reply_to: list[str] = field(default_factory=list)
    return_path: str = ""
    to: list[str] = field(default_factory=list)
    text: str = ""
    html: str = ""
    rtf: bytes = b""  # an Outlook message's RTF body, when it has one
    attachments: list[Attachment] = field(default_factory=list)
    parts_cut: bool = False

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def hops(self) -> list[Hop]:
        return [parse_hop(value) for value in self.header("Received")]

    @property
    def auth_results(self) -> dict[str, str]:
        """spf/dkim/dmarc → the first verdict found (pass, fail, softfail, none, ...)."""
        found: dict[str, str] = {}
        for value in self.header("Authentication-Results") + self.header("ARC-Authentication-Results"):
            for method, verdict in _AUTH.findall(value):
                found.setdefault(method.lower(), verdict.lower())
        for value in self.header("Received-SPF"):
            verdict = value.strip().split(None, 1)[0].lower() if value.strip() else ""
            if verdict:
                found.setdefault("spf", verdict)
        return found


_AUTH = re.compile(r"\b(spf|dkim|dmarc|arc)\s*=\s*([a-z]+)", re.I)
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])|\[?IPv6:([0-9a-f:]+)\]?", re.I)
_HOST = re.compile(r"\b(?:from|by)\s+([a-z0-9][a-z0-9.-]*\.[a-z]{2,})\b", re.I)


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_hop(value: str) -> Hop:
    """One Received header: the hosts it names (from/by) and the IP addresses in it (valid ones only)."""
    ips = [ip for m in _IP.finditer(value) if (ip := _valid_ip(m.group(1) or m.group(0)))]
    return Hop(" ".join(value.split()), list(dict.fromkeys(h.lower() for h in _HOST.findall(value))), list(dict.fromkeys(ips)))


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _str(value: object) -> str:
    return str(value) if value is not None else ""


def from_headers(mail: Mail, message: Message) -> None:
    """Fill the header fields of `mail` from a parsed message (its body is not looked at)."""
    mail.headers = [(key, _str(value)) for key, value in message.items()]
    mail.subject = _str(message.get("Subject"))
    mail.date = _str(message.get("Date"))
    mail.message_id = _str(message.get("Message-ID")).strip()
    mail.sender = parseaddr(_str(message.get("From")))
    mail.reply_to = [addr for _, addr in getaddresses([_str(v) for v in message.get_all("Reply-To", [])]) if addr]
    mail.return_path = parseaddr(_str(message.get("Return-Path")))[1]
    mail.to = [addr for _, addr in getaddresses([_str(v) for v in message.get_all("To", []) + message.get_all("Cc", [])]) if addr]


def _parts(message: Message) -> Iterator[Message]:
    """The leaf parts, depth first, without descending into an attached message (it becomes a
    child of its own, analysed by this service in turn)."""
    stack = [message]
    while stack:
        part = stack.pop()
        if part.get_content_type() == "message/rfc822" and part is not message:
            yield part
        elif part.is_multipart():
            payload = part.get_payload()
            stack.extend(reversed(payload if isinstance(payload, list) else []))
        else:
            yield part


def parse_eml(data: bytes) -> Mail:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    mail = Mail()
    from_headers(mail, message)
    for index, part in enumerate(_parts(message)):
        if index >= MAX_PARTS:
            mail.parts_cut = True
            break
        content_type = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        name = part.get_filename()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            content = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
            mail.attachments.append(Attachment(name or f"attached-{index}.eml", content, content_type, False))
        elif name or disposition == "attachment" or (part.get("Content-ID") and not content_type.startswith("text/")):
            content = part.get_payload(decode=True) or b""
            label = name or f"part-{index}.{content_type.split('/')[-1]}"
            mail.attachments.append(Attachment(label, content, content_type, disposition != "attachment" and bool(part.get("Content-ID"))))
        elif content_type == "text/html" and not mail.html:
            mail.html = _text(part)
        elif content_type == "text/plain" and not mail.text:
            mail.text = _text(part)
    return mail


def as_email_message(raw_headers: str) -> EmailMessage:
    """Transport headers kept as text (an Outlook .msg's) parsed as a message with no body."""
    return email.message_from_string(raw_headers.strip() + "\n\n", policy=email.policy.compat32)  # type: ignore[return-value]
