"""Issue 14's delivery chains through a real mesh (nats-server, dispatcher, the services):
an e-mail whose body gives the password of its attached zip, which holds an ISO, which holds
a shortcut (and the same with an AES-encrypted RAR, its names hidden or not); an HTML page smuggling a zip; a JPEG carrying a PE and a QR code."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from formats import make_iso, make_lnk, make_rar5_stored
from schemas.messages import walk
from sluice.client import Client
from sluice.onebox import onebox
from test_svc_email import encrypted_zip_of

pytestmark = pytest.mark.timeout(120)
SERVICES = ["email", "extract", "shortcut", "html", "carve"]


def phishing_mail(attachment: bytes, name: bytes = b"invoice.zip") -> bytes:
    return (b"From: \"IT Service Desk\" <helpdesk@evil.example>\nTo: v@victim.example\nSubject: Your invoice\n"
            b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
            b"Open the attached archive. Password: Spring#2026\n--b\nContent-Type: application/octet-stream\n"
            b"Content-Disposition: attachment; filename=" + name + b"\nContent-Transfer-Encoding: base64\n\n"
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


@pytest.mark.parametrize("encrypt_headers", [False, True], ids=["aes-members", "encrypted-headers"])
async def test_mail_password_opens_an_aes_rar_then_its_shortcut(nats_url, prefix, encrypt_headers):
    lnk = make_lnk(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", "-nop -w hidden -enc SQBFAFgA")
    rar = make_rar5_stored({"invoice.pdf.lnk": lnk}, password="Spring#2026", encrypt_headers=encrypt_headers)
    summary = await run(nats_url, prefix, "invoice.eml", phishing_mail(rar, b"invoice.rar"))
    chain = [(n.depth, n.name, n.type) for n in walk(summary.files)]
    assert (1, "invoice.rar", "archive/rar") in chain
    assert (2, "invoice.pdf.lnk", "shortcut/windows") in chain
    assert "Spring#2026" in summary.tags["info.password"]


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
