"""Issue 14's delivery chains through a real mesh (nats-server, dispatcher, the services):
an e-mail whose body gives the password of its attached zip, which holds an ISO, which holds
a shortcut; an HTML page smuggling a zip; a JPEG carrying a PE and a QR code."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from formats import make_iso, make_lnk
from schemas.messages import walk
from sluice.client import Client
from sluice.onebox import onebox
from test_svc_email import encrypted_zip_of

pytestmark = pytest.mark.timeout(120)
SERVICES = ["email", "extract", "shortcut", "html", "carve"]


def phishing_mail(attachment: bytes) -> bytes:
    return (b"From: \"IT Service Desk\" <helpdesk@evil.example>\nTo: v@victim.example\nSubject: Your invoice\n"
            b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
            b"Open the attached archive. Password: Spring#2026\n--b\nContent-Type: application/zip\n"
            b"Content-Disposition: attachment; filename=invoice.zip\nContent-Transfer-Encoding: base64\n\n"
            + base64.encodebytes(attachment) + b"--b--\n")


async def run(nats_url: str, prefix: str, name: str, data: bytes):
    async with onebox(nats_url, prefix, SERVICES), await Client.connect(nats_url, prefix) as client:
        sid = await client.submit_bytes([(name, data)])
        return await client.wait(sid, timeout=90)


async def test_mail_password_opens_the_zip_then_the_iso_then_the_shortcut(nats_url, prefix):
    lnk = make_lnk(r"C:\Windows\System32\cmd.exe", "/c calc.exe -testCommands", machine_id="desktop-9")
    iso = make_iso({"invoice.pdf.lnk": lnk})
    summary = await run(nats_url, prefix, "invoice.eml", phishing_mail(encrypted_zip_of({"invoice.iso": iso}, "Spring#2026")))
    chain = [(n.depth, n.name, n.type) for n in walk(summary.files)]
    assert (1, "invoice.zip", "archive/zip") in chain
    assert (2, "invoice.iso", "archive/iso") in chain
    assert (3, "invoice.pdf.lnk", "shortcut/windows") in chain
    assert summary.tags["file.shortcut.command_line"] == [r"C:\Windows\System32\cmd.exe /c calc.exe -testCommands"]
    assert "Spring#2026" in summary.tags["info.password"]
    assert summary.score >= 300  # a file's score is its own; the shortcut running cmd.exe alone is 300


async def test_smuggled_zip_is_decoded_and_unpacked(nats_url, prefix):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("update.js", "WScript.CreateObject('WScript.Shell').Run('calc')")
    page = (b"<html><body><script>var d = '" + base64.b64encode(buf.getvalue()) + b"';"
            b"var blob = new Blob([Uint8Array.from(atob(d), c => c.charCodeAt(0))]);"
            b"var a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = 'update.zip'; a.click();"
            b"</script></body></html>")
    summary = await run(nats_url, prefix, "invoice.html", page)
    names = {n.name for n in walk(summary.files)}
    assert {"invoice.html", "update.zip", "update.js", "script-1.js"} <= names
