"""The email service on an .eml and an Outlook .msg built here: headers and hops as tags,
authentication failures, display-name spoofing, the HTML body and attachments as children,
and a password given in the body passed down to an encrypted zip attached beside it."""

from __future__ import annotations

import io
from email.message import EmailMessage

import pyzipper

from formats import make_msg
from dispatcher.identify import identify
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

HEADERS = """Received: from mail.evil.example (mail.evil.example [203.0.113.7])
\tby mx.victim.example with ESMTPS id 1234; Mon, 1 Dec 2026 09:00:01 +0000
Received: from [198.51.100.23] (helo=desk) by mail.evil.example; Mon, 1 Dec 2026 08:59:59 +0000
Authentication-Results: mx.victim.example; spf=softfail smtp.mailfrom=evil.example; dkim=none; dmarc=fail header.from=evil.example
From: "Microsoft 365 <no-reply@microsoft.com>" <billing@evil.example>
Reply-To: payments@collector.example
Return-Path: <bounce@bulk-mailer.example>
To: victim@victim.example
Subject: Invoice 2026-118 overdue
Date: Mon, 1 Dec 2026 09:00:00 +0000
Message-ID: <abc123@evil.example>
"""


def encrypted_zip_of(files: dict[str, bytes], password: str) -> bytes:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(password.encode())
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def encrypted_zip(password: str) -> bytes:
    return encrypted_zip_of({"invoice.pdf.lnk": b"L\0\0\0 shortcut"}, password)


def make_eml() -> bytes:
    msg = EmailMessage()
    for line in HEADERS.replace("\n\t", " ").strip().splitlines():
        name, value = line.split(": ", 1)
        msg[name] = value
    msg.set_content("Please find the invoice attached.\nThe password is: Inv2026x\n")
    msg.add_alternative('<html><body><p>Pay here: <a href="https://pay.collector.example/x">'
                        'https://www.microsoft.com/billing</a></p><img src="cid:logo1"></body></html>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image", "png", cid="<logo1>")
    msg.add_attachment(encrypted_zip("Inv2026x"), maintype="application", subtype="zip", filename="invoice.zip")
    msg.add_attachment(b"L\0\0\0 shortcut", maintype="application", subtype="octet-stream", filename="scan.pdf.lnk")
    return msg.as_bytes()


def test_eml_headers_hops_auth_spoofing_children_and_password():
    data = make_eml()
    assert identify(data) == "text/email"
    run = run_service_once("email", data, file_type="text/email", name="invoice.eml")
    assert run.result.error is None
    assert "billing@evil.example" in run.tags("network.email.address")
    assert run.tags("network.email.subject") == {"Invoice 2026-118 overdue"}
    assert {"203.0.113.7", "198.51.100.23"} <= run.tags("network.static.ip")
    assert "mail.evil.example" in run.tags("network.static.domain")
    assert {2, 3, 4, 5, 6, 7, 8} <= run.heuristics
    children = {e.name: e.data for e in run.extracted}
    assert {"body.html", "invoice.zip", "scan.pdf.lnk"} <= set(children)
    assert any(name.endswith(".png") for name in children)  # the inline logo
    assert run.tags("info.password") == {"Inv2026x"}
    assert run.result.temp_data["passwords"] == ["Inv2026x"]
    # The password travels with the tree's temporary data to the attachment, and opens it.
    extract = load_service("extract")
    inner = run_service_once(extract, children["invoice.zip"], file_type="archive/zip", name="invoice.zip",
                             temp_data=run.result.temp_data)
    assert {e.name: e.data for e in inner.extracted} == {"invoice.pdf.lnk": b"L\0\0\0 shortcut"}


def test_outlook_msg_gives_the_same_facts():
    rtf = b"{\\rtf1\\ansi Pay at {\\field{\\fldinst HYPERLINK \"https://pay.collector.example/x\"}}}"
    data = make_msg(HEADERS, "the password is Inv2026x", '<a href="https://pay.collector.example/x">microsoft.com</a>',
                    {"invoice.iso": b"CD001 image", "notes.txt": b"hello"}, rtf=rtf)
    assert identify(data) == "document/office/email"
    run = run_service_once("email", data, file_type="document/office/email", name="invoice.msg")
    assert run.result.error is None
    assert run.tags("network.email.subject") == {"Invoice 2026-118 overdue"}
    children = {e.name: e.data for e in run.extracted}
    assert children["invoice.iso"] == b"CD001 image" and children["notes.txt"] == b"hello"
    assert children["body.rtf"] == rtf
    assert {2, 3, 4, 5, 7} <= run.heuristics


def test_broken_mime_is_read_without_error():
    data = b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nhi\n--zz"
    run = run_service_once("email", data, file_type="text/email", name="broken.eml")
    assert run.result.error is None
    assert "a@b.example" in run.tags("network.email.address")


def test_a_message_of_too_many_parts_is_cut_and_says_so():
    parts = b"".join(b"--b\nContent-Type: text/x-note\nContent-Disposition: attachment; filename=f%d.txt\n\nn%d\n" % (i, i)
                     for i in range(700))
    data = b"From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n\n" + parts + b"--b--\n"
    run = run_service_once("email", data, file_type="text/email", name="parts.eml", max_extracted=1000)
    assert run.result.error is None
    assert "only the first MIME parts" in run.section("Message cut").body
    assert len(run.extracted) == 500  # leaf parts only: the first 500 of 700


def test_an_attached_message_is_one_child_not_its_parts():
    inner = EmailMessage()
    inner["From"] = "boss@victim.example"
    inner["Subject"] = "forwarded"
    inner.set_content("see attachment")
    inner.add_attachment(b"MZ inner payload", maintype="application", subtype="octet-stream", filename="inner.exe")
    outer = EmailMessage()
    outer["From"] = "a@b.example"
    outer["Subject"] = "fwd"
    outer.set_content("forwarding")
    outer.add_attachment(inner)
    run = run_service_once("email", outer.as_bytes(), file_type="text/email", name="fwd.eml")
    assert run.result.error is None
    [child] = run.extracted
    assert child.data.startswith(b"From: boss@victim.example") and b"inner.exe" in child.data


def test_odd_header_values_are_shown_not_turned_into_tag_warnings():
    data = (b"From: undisclosed-sender\nReply-To: @@@\nReceived: from bad_host.example ([999.1.1.1]) by mx.example\n"
            b"Subject: x\n\nbody\n")
    run = run_service_once("email", data, file_type="text/email", name="odd.eml")
    assert run.result.error is None
    assert "Result warnings" not in {s.title for s in run.result.sections}
    assert "undisclosed-sender" in run.section("E-mail headers").body


def test_a_damaged_outlook_message_is_said_not_a_crash():
    data = make_msg(HEADERS, "x", "", {"a.txt": b"a"})
    run = run_service_once("email", data[:1500], file_type="document/office/email", name="cut.msg")
    assert run.result.error is None
    assert run.section("Unreadable message")
