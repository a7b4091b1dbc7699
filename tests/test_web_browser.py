"""The results browser in a real headless browser: Debian's chromium driven by Playwright.

Playwright (not Selenium) because its async API runs in the test's own event loop beside the
mesh and the web server, and its expectations wait for the event they name (no sleeps). It
drives the system chromium through `executable_path`; nothing is downloaded (`run.py test`
installs Debian's chromium when it can). Screenshots go to the test's tmp dir and to
tests/artifacts/ (gitignored), so a person can look at what the test saw.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import anyio
import pefile
import pytest

from bus.codec import encode
from bus.publish import jetstream_publish
from schemas.workspace import Role
from services.sdk.loader import load_service
from sluice.client import Client
from sluice.neuter import unpack_cart
from sluice.web.accounts import Accounts
from sluice.web.stores import provision_workspace
from test_svc_pe import launcher
from test_web_workspace import alert_summary, protected_zip
from svcs import Gated, make
from webmesh import HOSTILE, showcase, web_front, web_mesh

PASSWORD = "correct horse battery"

playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_FAILED = Path(__file__).resolve().parent.parent / ".venv" / ".chromium-install-failed"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VERDICT_TIMEOUT = 60_000  # ms


def _no_chromium_reason() -> str:
    why = f"{CHROMIUM} is missing"
    if INSTALL_FAILED.exists():
        return f"{why}; run.py could not install it: {INSTALL_FAILED.read_text()[:300]}"
    return f"{why}; `python3 run.py test` installs it (as root, with apt-get): apt-get install chromium"


@pytest.fixture
async def browser_page(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(_no_chromium_reason())
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []  # CSP violations and script errors show up here
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" and not expected(msg.text) else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.problems = problems
            yield page
        finally:
            await browser.close()


async def dropped_file(page, name: str, text: str):
    """A DataTransfer holding one file, as a drag from the desktop would bring it."""
    return await page.evaluate_handle(
        "([name, text]) => { const dt = new DataTransfer(); dt.items.add(new File([text], name)); return dt; }",
        [name, text])


def expected(console_error: str) -> bool:
    """The one console error the page causes on purpose: asking for a verdict that is not ready (404)."""
    return console_error.startswith("Failed to load resource: the server responded with a status of 404")


def keep_screenshot(path: Path) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return Path(shutil.copy(path, ARTIFACTS / path.name))


async def test_drop_a_hostile_file_watch_its_verdict_and_read_its_tree(nats_url, prefix, browser_page, tmp_path):
    page = browser_page
    async with web_mesh(nats_url, prefix) as web:
        await page.goto(web.url)
        await expect(page.locator("#live")).to_have_text("live")  # the event stream is open before we submit

        # A file over the gateway's limit (web_mesh's 1 MiB) is refused before it is sent.
        await page.dispatch_event("body", "drop", {"dataTransfer": await dropped_file(page, "huge.bin", "x" * (1 << 21))})
        await expect(page.locator("#notice")).to_contain_text("huge.bin: 2.0 MiB is over the 1.0 MiB upload limit")

        # Drag and drop a file whose text is markup meant to run.
        await page.dispatch_event("body", "drop", {"dataTransfer": await dropped_file(page, "hostile.html", HOSTILE.decode())})

        verdict = page.locator(".head .verdict.big")
        await expect(verdict).to_be_visible(timeout=VERDICT_TIMEOUT)
        assert await verdict.get_attribute("data-verdict") in {"info", "suspicious", "highly_suspicious", "malicious"}
        sid = page.url.rsplit("/", 1)[1]

        # The tree: the root is open, the extracted child is collapsed until clicked.
        child = page.locator("#tree details.node details.node").first
        await expect(child.locator("> summary .node-name")).to_have_text("inner.txt")
        await expect(child.locator("> summary .relation")).to_have_text("dropped-by")
        child_results = child.locator("> .node-body > .result")
        await expect(child_results.first).to_be_hidden()
        await child.locator("> summary").click()
        await expect(child_results.first).to_be_visible()

        await expect(page.locator("#view")).not_to_contain_text("undefined")  # fields the summary leaves out at their defaults
        await page.get_by_role("button", name="collapse all").click()
        await expect(page.locator("#tree details.node[open]")).to_have_count(0)
        await page.get_by_role("button", name="expand all").click()
        await expect(page.locator("#tree details.node:not([open])")).to_have_count(0)

        # Sections by body type, errors in plain sight.
        root = page.locator("#tree > details.node").first
        showcase = root.locator("> .node-body > .result[data-service=showcase]")
        for fmt in ("TEXT", "KEY_VALUE", "TABLE", "JSON", "URL"):
            await expect(showcase.locator(f".section[data-format={fmt}]")).to_have_count(1)
        await expect(showcase.locator(".section[data-format=KEY_VALUE] dl.kv dt").first).to_have_text("size")
        await expect(showcase.locator(".section[data-format=TABLE] th")).to_have_text(["offset", "text"])
        await expect(page.locator("#errors")).to_contain_text("raiser · crashed")
        await expect(page.locator("#tags")).to_contain_text("evil.example")
        await expect(page.locator("#heuristics .chip").first).to_have_text("+100showcase hit")  # with its score

        # The sample's markup is shown as text, and none of it ran or became an element.
        await expect(showcase.locator(".section[data-format=TEXT] pre")).to_have_text(HOSTILE.decode())
        await expect(showcase.locator(".section[data-format=TEXT] .stitle")).to_contain_text('<script>document.title="pwned"</script>')
        assert await page.title() == "Sluice"
        assert await page.locator("script").count() == 1  # app.js only
        assert await page.locator("img").count() == 0
        assert await page.locator('a[href^="javascript:"]').count() == 0  # a javascript: URL stays text
        await expect(showcase.locator('.section[data-format=URL] a[href="https://example.com/doc"]')).to_have_attribute("rel", "noopener noreferrer nofollow")

        # Downloads are links to attachments, neutered (CaRT) by default.
        link = root.locator("> .node-body > .downloads a.dl-cart")
        assert await link.get_attribute("download") == ""
        download = await page.request.get(web.url.rstrip("/") + await link.get_attribute("href"))
        assert download.headers["content-disposition"].startswith("attachment") and unpack_cart(await download.body())[0] == HOSTILE
        await expect(root.locator("> .node-body > .downloads a.dl-raw")).to_have_text("raw bytes")  # the local user is an admin

        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=tmp_path / "web-submission.png", full_page=True)
        assert keep_screenshot(tmp_path / "web-submission.png").stat().st_size > 10_000

        # The list shows it; the services page shows who is alive and what failed.
        await page.goto(web.url + "#/")
        await expect(page.locator(f"#submissions tr[data-sid='{sid}'] .verdict")).to_be_visible()
        await page.screenshot(path=tmp_path / "web-list.png")
        keep_screenshot(tmp_path / "web-list.png")
        await page.goto(web.url + "#/services")
        await expect(page.locator("#services tr[data-service=showcase] .dot.alive")).to_be_visible()
        await expect(page.locator("#services tr[data-service=raiser]")).to_contain_text("2 recent")
        await page.screenshot(path=tmp_path / "web-services.png", full_page=True)
        keep_screenshot(tmp_path / "web-services.png")

        assert page.problems == []  # no CSP violation, no script error


async def test_an_open_submission_page_shows_the_verdict_when_it_arrives(nats_url, prefix, browser_page):
    page = browser_page
    sid = "chosen-" + prefix  # known before it is submitted, so the page can be waiting for it
    async with web_mesh(nats_url, prefix) as web, await Client.connect(nats_url, prefix) as client:
        await page.goto(f"{web.url}#/s/{sid}")
        await expect(page.locator("#live")).to_have_text("live")
        await expect(page.locator("#pending")).to_contain_text(sid)
        await client.submit_bytes([("late.txt", b"arrives while the page waits\n")], sid=sid)
        await expect(page.locator(".head .title")).to_have_text("late.txt", timeout=VERDICT_TIMEOUT)
        await expect(page.locator("#pending")).to_have_count(0)
        assert page.problems == []


async def test_a_page_on_another_web_front_shows_a_pending_submission_as_analysing(nats_url, prefix, browser_page, tmp_path):
    """Submitted through one front, opened on a second: "Analysing" (the 202 every front gives),
    not "No submission", and the verdict once it is released."""
    page = browser_page
    gated = make(Gated, "gated", timeout=30)
    async with web_mesh(nats_url, prefix, services=[gated]) as first, web_front(nats_url, prefix) as second:
        sid = (await first.http.post("/api/submissions", params={"name": "held.txt"}, content=b"held\n",
                                     headers={"Content-Type": "application/octet-stream"})).json()["sid"]
        with anyio.fail_after(30):
            await gated.entered.wait()  # in flight, held by its one service
        await page.goto(f"{second.url}#/s/{sid}")
        await expect(page.locator("#live")).to_have_text("live")
        await expect(page.locator("#pending")).to_contain_text(f"Analysing {sid}")
        await page.screenshot(path=tmp_path / "web-pending-elsewhere.png")
        keep_screenshot(tmp_path / "web-pending-elsewhere.png")
        gated.release.set()
        await expect(page.locator(".head .title")).to_have_text("held.txt", timeout=VERDICT_TIMEOUT)
        assert page.problems == []


async def test_a_team_signs_in_searches_opens_a_file_downloads_triages_and_resubmits(nats_url, prefix, browser_page, tmp_path):
    page = browser_page
    locked = protected_zip(b"not-in-any-list-42")
    async with web_mesh(nats_url, prefix, services=[*showcase(), load_service("extract"), load_service("characterize")]) as web, \
            await Client.connect(nats_url, prefix) as client:
        stores = await provision_workspace(client.js, client.names)
        accounts = Accounts(client.js, client.names.accounts_bucket, stores.accounts, stores.sessions)
        await accounts.add_user("ana", Role.ANALYST, PASSWORD)
        sid = await client.submit_bytes([("locked.zip", locked)], metadata={"submitter": "bob"})
        await client.wait(sid, timeout=60)

        # Accounts exist: the page asks who you are first.
        await page.goto(web.url)
        await expect(page.locator("#login-form")).to_be_visible()
        await page.fill("#login-user", "ana")
        await page.fill("#login-password", "wrong password!")
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#login-problem")).to_contain_text("wrong user name or password")
        assert [p for p in page.problems if "401" not in p] == []  # the refused sign-in's 401 is the point
        page.problems.clear()
        await page.screenshot(path=tmp_path / "web-login.png")
        keep_screenshot(tmp_path / "web-login.png")
        await page.fill("#login-password", PASSWORD)
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#whoami")).to_contain_text("ana")
        await expect(page.locator("#live")).to_have_text("live")

        # Search the history by the zip's md5 (any hash of any file), then by who submitted it.
        md5 = hashlib.md5(locked).hexdigest()
        await page.fill("#search", md5)
        await page.click("#search-form button[type=submit]")
        await expect(page.locator(f"#submissions tr[data-sid='{sid}']")).to_be_visible()
        await page.fill("#search", "submitter:bob type:archive")
        await page.click("#search-form button[type=submit]")
        await expect(page.locator("#submissions tbody tr")).to_have_count(1)
        await page.screenshot(path=tmp_path / "web-search.png")
        keep_screenshot(tmp_path / "web-search.png")

        # The submission, then the file's page: hex with its ASCII dump, strings with offsets.
        await page.click(f"#submissions tr[data-sid='{sid}'] a")
        await expect(page.locator(".head .title")).to_have_text("locked.zip", timeout=VERDICT_TIMEOUT)
        sha256 = hashlib.sha256(locked).hexdigest()
        await page.click(f"a[href='#/f/{sha256}']")
        await expect(page.locator("#file-name")).to_have_text("locked.zip")
        await expect(page.locator("#hex")).to_contain_text("00000000  50 4b 03 04")
        await expect(page.locator("#hex")).to_contain_text("|PK")
        await expect(page.locator("#strings tbody tr").first).to_be_visible()
        await expect(page.locator("#strings")).to_contain_text("payload.txt")
        await expect(page.locator("#entropy .bar")).to_have_count(3)  # 189 bytes: three blocks of 64
        await page.screenshot(path=tmp_path / "web-file.png", full_page=True)
        keep_screenshot(tmp_path / "web-file.png")

        # A CaRT download: neutered bytes, restored by cart.
        async with page.expect_download() as started:
            await page.click("#view .downloads .dl-cart")
        download = await started.value
        assert download.suggested_filename == "locked.zip.cart"
        assert unpack_cart(Path(await download.path()).read_bytes())[0] == locked

        # Analyse again with the archive's password, a parameter from the extract manifest.
        await page.click("#resubmit > summary")
        await page.check(".rs-row[data-service=extract] .rs-service")
        await page.fill(".rs-param[data-service=extract][data-param=password]", "not-in-any-list-42")
        await page.click("#rs-submit")
        await expect(page.locator("#tree")).to_contain_text("payload.txt", timeout=VERDICT_TIMEOUT)

        # An alert: triage it, comment, and see the list follow.
        alert = alert_summary(f"alert-{prefix}")
        await jetstream_publish(client.js, client.names.summary(alert.sid), encode(alert))
        await page.goto(web.url + "#/alerts")
        row = page.locator(f"#alerts tr[data-sid='{alert.sid}']")
        await expect(row).to_contain_text("new")
        await row.click()
        await expect(page.locator("#techniques")).to_contain_text("T1059.001 Command and Scripting Interpreter: PowerShell")
        await expect(page.locator("#triage-state")).to_be_visible()
        await page.select_option("#triage-state", "malicious")
        await expect(page.locator("#triage")).to_contain_text("changed by ana")
        await page.fill("#triage-comment", "beacons to evil.example")
        await page.click("#triage-send")
        await expect(page.locator("#triage-comments")).to_contain_text("beacons to evil.example")
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=tmp_path / "web-alert.png", full_page=True)
        keep_screenshot(tmp_path / "web-alert.png")
        await page.goto(web.url + "#/alerts")
        await expect(row).to_contain_text("malicious")
        await page.screenshot(path=tmp_path / "web-alerts.png")
        keep_screenshot(tmp_path / "web-alerts.png")

        # At 800 px the header stays on one line.
        await page.set_viewport_size({"width": 800, "height": 600})
        header = await page.locator("header.top").bounding_box()
        assert header["height"] < 60
        await page.screenshot(path=tmp_path / "web-800px.png")
        keep_screenshot(tmp_path / "web-800px.png")
        assert page.problems == []


async def test_every_imported_name_of_a_pe_unfolds_on_the_page(nats_url, prefix, browser_page, tmp_path):
    """The import table names 50 functions per DLL; the folded section under it holds them all."""
    exe = launcher("t64.exe")  # pip's launcher, as test_svc_pe uses: KERNEL32 imports 83 names
    imports = [(i.dll.decode(), f.name.decode()) for i in pefile.PE(data=exe).DIRECTORY_ENTRY_IMPORT for f in i.imports if f.name]
    page = browser_page
    async with web_mesh(nats_url, prefix, services=[load_service("pe")]) as web, await Client.connect(nats_url, prefix) as client:
        sid = await client.submit_bytes([("launcher.exe", exe)])
        await client.wait(sid, timeout=60)
        await page.goto(f"{web.url}#/s/{sid}")
        listing = page.locator(".section", has=page.locator(".stitle", has_text="Every imported name")).first
        await expect(listing.locator(".stitle")).to_have_text(f"Every imported name ({len(imports)})", timeout=VERDICT_TIMEOUT)
        names = listing.locator("details.folded > pre")
        await expect(names).to_be_hidden()
        await listing.locator("details.folded > summary").click()
        await expect(names).to_be_visible()
        kernel = [n for d, n in imports if d == "KERNEL32.dll"]
        assert len(kernel) > 50
        await expect(names).to_contain_text(f"KERNEL32.dll!{kernel[-1]}")  # beyond the table's first 50
        assert (await names.inner_text()).splitlines() == [f"{d}!{n}" for d, n in imports]
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=tmp_path / "web-pe-imports.png", full_page=True)
        keep_screenshot(tmp_path / "web-pe-imports.png")
        assert page.problems == []
