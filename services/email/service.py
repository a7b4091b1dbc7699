"""E-mail: an .eml or Outlook .msg read as an analyst reads it.

Header facts (addresses, received hops, authentication results) become tags and sections; the
HTML body and every attachment or inline image become children (the HTML body goes to the html
service); passwords the body gives are handed down through the tree's temporary data, where
extract and office look for them, so an archive attached with "the password is 2026" opens.
"""

from __future__ import annotations

import html as html_lib
import re

from schemas.tags import tag_problem
from services.email.message import Mail, parse_eml
from services.email.outlook import parse_msg
from services.email.signals import (
    auth_failures,
    display_name_spoof,
    domain_of,
    envelope_elsewhere,
    passwords_in_text,
    reply_elsewhere,
    risky_attachments,
)
from services.html.parse import parse as parse_html
from services.html.parse import text_target_mismatch
from services.sdk import BODY_FORMAT, MaxExtractedExceeded, Request, Result, ResultSection, ServiceBase

OUTLOOK_TYPE = "document/office/email"
_TAGS = re.compile(r"<[^>]+>")


def _html_text(html: str) -> str:
    """The visible words of an HTML body, for the password search (not for display)."""
    return html_lib.unescape(_TAGS.sub(" ", html))


def _tag(section: ResultSection, name: str, value: str) -> None:
    """Tag what the taxonomy keeps: values from hostile headers and markup (an address without a
    domain, a host with an underscore) are shown in the section's text, not turned into warnings."""
    if tag_problem(name, value) is None:
        section.add_tag(name, value)


class Email(ServiceBase):
    def execute(self, request: Request) -> None:
        request.result = result = Result()
        data = request.file_contents
        try:
            mail = parse_msg(data) if request.file_type == OUTLOOK_TYPE else parse_eml(data)
        except (OSError, ValueError, EOFError) as exc:  # olefile on a damaged .msg
            result.add_section(ResultSection("Unreadable message", f"{type(exc).__name__}: {exc}"))
            return
        self._headers(result, mail)
        self._hops(result, mail)
        self._auth(result, mail)
        self._sender(result, mail)
        self._children(request, result, mail)
        self._links(result, mail)
        self._passwords(request, result, mail)

    def _headers(self, result: Result, mail: Mail) -> None:
        facts = {"From": f"{mail.sender[0]} <{mail.sender[1]}>".strip(), "To": ", ".join(mail.to[:20]),
                 "Reply-To": ", ".join(mail.reply_to), "Return-Path": mail.return_path, "Subject": mail.subject,
                 "Date": mail.date, "Message-ID": mail.message_id}
        section = ResultSection("E-mail headers", {k: v for k, v in facts.items() if v}, BODY_FORMAT.KEY_VALUE)
        for address in [mail.sender[1], *mail.reply_to, mail.return_path, *mail.to[:50]]:
            if address:
                _tag(section, "network.email.address", address)
        for name, value in (("network.email.subject", mail.subject), ("network.email.date", mail.date),
                            ("network.email.msg_id", mail.message_id)):
            if value:
                _tag(section, name, value[:4096])
        result.add_section(section)
        if mail.parts_cut:
            result.add_section(ResultSection("Message cut", "only the first MIME parts were read: the message has "
                                                            "more than the limit"))

    def _hops(self, result: Result, mail: Mail) -> None:
        hops = mail.hops
        if not hops:
            return
        rows = [{"hop": index, "hosts": ", ".join(hop.hosts), "ips": ", ".join(hop.ips), "received": hop.raw[:300]}
                for index, hop in enumerate(reversed(hops), start=1)]
        section = ResultSection(f"Received hops ({len(hops)})", rows[:100], BODY_FORMAT.TABLE)
        for hop in hops[:100]:
            for ip in hop.ips:
                _tag(section, "network.static.ip", ip)
            for host in hop.hosts:
                _tag(section, "network.static.domain", host)
        result.add_section(section)

    def _auth(self, result: Result, mail: Mail) -> None:
        verdicts = mail.auth_results
        if not verdicts:
            return
        failed = auth_failures(mail)
        section = ResultSection("Authentication results", verdicts, BODY_FORMAT.KEY_VALUE, heuristic=2 if failed else None)
        result.add_section(section)

    def _sender(self, result: Result, mail: Mail) -> None:
        spoofed = display_name_spoof(mail)
        if spoofed:
            result.add_section(ResultSection(
                "Display name shows another domain", f"the From name {mail.sender[0]!r} shows {spoofed}, "
                f"the message comes from {domain_of(mail.sender[1])}", heuristic=3))
        envelope = envelope_elsewhere(mail)
        if envelope:
            result.add_section(ResultSection("Envelope sender in another domain", f"Return-Path {mail.return_path} "
                                             f"({envelope}) for a message From {domain_of(mail.sender[1])}", heuristic=8))
        elsewhere = reply_elsewhere(mail)
        if elsewhere:
            section = ResultSection("Replies go to another domain", heuristic=6)
            section.add_lines([f"Reply-To: {a}" for a in elsewhere])
            result.add_section(section)

    def _children(self, request: Request, result: Result, mail: Mail) -> None:
        rows = []
        try:
            if mail.html:
                request.add_extracted(mail.html.encode(), "body.html", "the message's HTML body")
            if mail.rtf:
                request.add_extracted(mail.rtf, "body.rtf", "the message's RTF body (Outlook)")
            for attachment in mail.attachments:
                if request.add_extracted(attachment.data, attachment.name,
                                         f"{'inline image' if attachment.inline else 'attachment'} ({attachment.content_type})"):
                    rows.append({"name": attachment.name, "type": attachment.content_type, "size": len(attachment.data),
                                 "inline": attachment.inline})
        except MaxExtractedExceeded:
            result.add_section(ResultSection("Too many attachments", f"stopped at {request.max_extracted} children"))
        if rows:
            section = ResultSection(f"Attachments ({len(rows)})", rows, BODY_FORMAT.TABLE, heuristic=1)
            for row in rows:
                section.add_tag("file.name.extracted", str(row["name"]))
            result.add_section(section)
        risky = risky_attachments(mail, set(self.config.get("risky_extensions", [])))
        if risky:
            section = ResultSection("Risky attachment types", heuristic=4)
            section.add_lines(risky)
            result.add_section(section)

    def _links(self, result: Result, mail: Mail) -> None:
        if not mail.html:
            return
        lying = [(link, shown) for link in parse_html(mail.html).links if (shown := text_target_mismatch(link))]
        if lying:
            section = ResultSection("Link text shows another host than its target", heuristic=7)
            section.add_lines([f"shows {shown}, goes to {link.href[:300]}" for link, shown in lying], limit=50)
            for link, _ in lying:
                _tag(section, "network.static.uri", link.href)
            result.add_section(section)

    def _passwords(self, request: Request, result: Result, mail: Mail) -> None:
        found = passwords_in_text(mail.subject, mail.text, _html_text(mail.html))
        if not found:
            return
        temp = request.temp_submission_data
        known = temp.get("passwords") if isinstance(temp.get("passwords"), list) else []
        temp["passwords"] = list(dict.fromkeys([*known, *found]))
        section = ResultSection("Password given in the message", heuristic=5)
        section.add_lines([f"candidate: {p!r}" for p in found])
        for password in found:
            section.add_tag("info.password", password)
        section.add_line("passed down to this message's attachments (temporary data 'passwords')")
        result.add_section(section)
