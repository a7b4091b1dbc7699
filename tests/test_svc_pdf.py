"""The pdf service on PDFs built in memory (tests/pdfdocs.py): with pypdf's writer, and by hand
for what no writer produces (names spelled with #xx escapes, Launch actions)."""

from __future__ import annotations

import hashlib
import json

import pytest

from pdfdocs import (
    attachment_annotation,
    encrypted,
    launch_action,
    obfuscated_javascript,
    one_page,
    with_attachments,
    with_javascript,
    with_link,
    written,
)
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

DOC_JS = "app.alert('Please enable the plugin');"
OPEN_JS = "var shell = 'unescape(%u9090%u9090)';\nvar n = 45000;\nutil.printf('%' + n + 'f', 1);\n// line 4"


def pdf(data: bytes, config: dict | None = None, **kwargs):
    service = load_service("pdf", config_overrides=config)
    run = run_service_once(service, data, file_type="document/pdf", name="sample.pdf", **kwargs)
    assert run.result.error is None
    # The runner adds "Result warnings" for an unknown tag or heuristic: there must be none.
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def census(run) -> dict[str, tuple[int, int]]:
    rows = json.loads(run.section("PDF keyword census").body)
    return {row["keyword"]: (row["count"], row["obfuscated"]) for row in rows}


def test_manifest_loads_and_every_heuristic_is_described():
    service = load_service("pdf")
    assert service.manifest.stage == "CORE"
    assert service.manifest.heuristics and all(h.description for h in service.manifest.heuristics)


def test_clean_one_page_pdf_reports_nothing():
    run = pdf(written(one_page()))
    assert run.heuristics == set() and run.result.score == 0
    assert run.result.sections == []
    assert run.extracted == [] and run.produced == []


def test_javascript_with_open_action_is_kept_and_scored():
    run = pdf(written(with_javascript(DOC_JS, OPEN_JS)))
    assert run.heuristics == {1, 2}
    assert run.section("Automatic action runs JavaScript or Launch").heuristic.score == 500
    scripts = {p.name: p.data.decode() for p in run.produced}
    assert set(scripts.values()) == {DOC_JS, OPEN_JS}  # the /JS stream decompressed by pypdf
    assert set(scripts) == {"javascript-1.js", "javascript-2.js"}
    assert run.tags("file.pdf.javascript.sha1") == {hashlib.sha1(s.encode()).hexdigest() for s in (DOC_JS, OPEN_JS)}
    preview = next(s for s in run.result.sections if s.title.startswith("javascript-") and "util.printf" in s.body)
    assert preview.body.splitlines()[0] == "var shell = 'unescape(%u9090%u9090)';"
    assert census(run)["/OpenAction"] == (1, 0) and census(run)["/JS"][0] >= 1


def test_preview_shows_only_the_first_lines():
    run = pdf(written(with_javascript(DOC_JS, OPEN_JS)), config={"preview_lines": 2})
    preview = next(s for s in run.result.sections if s.title.startswith("javascript-") and "unescape" in s.body)
    assert preview.body.splitlines() == ["var shell = 'unescape(%u9090%u9090)';", "var n = 45000;", "… (2 more lines)"]


def test_attachment_is_extracted_with_its_name_and_bytes():
    payload = b"MZ\x90\x00" + bytes(range(256)) * 4
    run = pdf(with_attachments({"invoice.exe": payload}))
    assert [(e.name, e.data) for e in run.extracted] == [("invoice.exe", payload)]
    section = run.section("Embedded files")
    assert section.heuristic.heur_id == 4 and "invoice.exe" in section.body
    assert run.tags("file.name.extracted") == {"invoice.exe"}
    assert census(run)["/EmbeddedFile"] == (1, 0)


def test_file_attachment_annotation_is_extracted_with_its_path_removed():
    run = pdf(attachment_annotation(b"C:\\\\Users\\\\bob\\\\notes.txt", b"hello from the annotation"))
    assert [(e.name, e.data) for e in run.extracted] == [("notes.txt", b"hello from the annotation")]
    assert run.heuristics == {4}


def test_attachments_past_the_extraction_limit_are_listed():
    run = pdf(with_attachments({"a.txt": b"aaa", "b.txt": b"bbb"}), max_extracted=1)
    assert len(run.extracted) == 1
    assert "extraction limit reached" in run.section("Embedded files").body


def test_obfuscated_names_are_counted_and_still_read():
    code = b"app.launchURL\\('http://payload.example.com/x'\\);"
    run = pdf(obfuscated_javascript(code))
    section = run.section("Obfuscated names")
    assert section.heuristic.heur_id == 5 and section.heuristic.attack_ids == ["T1027"]
    assert "/J#61vaScript = /JavaScript" in section.body and "/J#53 = /JS" in section.body
    assert census(run)["/JavaScript"] == (1, 1) and census(run)["/JS"] == (1, 1)
    assert {1, 2, 5} <= run.heuristics  # pypdf decodes the names, so the script is found and kept
    assert run.object("javascript-1.js") == b"app.launchURL('http://payload.example.com/x');"


def test_launch_action_shows_what_it_starts():
    run = pdf(launch_action(b"cmd.exe", b"/c calc.exe"))
    assert "starts: cmd.exe /c calc.exe" in run.section("Launch action").body
    assert run.heuristics == {2, 3}  # run from the page's /AA, so also an automatic action


def test_link_targets_are_tagged_but_not_scored():
    run = pdf(with_link("http://login.example.net/verify?id=7"))
    assert run.tags("network.static.uri") == {"http://login.example.net/verify?id=7"}
    assert run.heuristics == {7} and run.result.score == 0


def test_encrypted_with_empty_password_is_opened_and_analysed():
    run = pdf(encrypted(with_javascript(DOC_JS, OPEN_JS), owner_password="owner"))
    section = run.section("Encrypted PDF")
    assert section.heuristic.heur_id == 6 and section.heuristic.score == 10
    assert {p.data.decode() for p in run.produced} == {DOC_JS, OPEN_JS}  # read through the decryption


def test_encrypted_with_user_password_scores_higher():
    run = pdf(encrypted(one_page(), owner_password="owner", user_password="user"))
    section = run.section("Encrypted PDF")
    assert section.heuristic.signatures == ["not_decrypted"] and section.heuristic.score == 100


def test_object_limit_is_reported():
    run = pdf(written(with_javascript(DOC_JS, OPEN_JS)), config={"max_objects": 2})
    assert "stopped after 2 objects" in run.section("Parsing incomplete").body


# -- what it cannot parse ---------------------------------------------------------------------
def test_truncated_pdf_keeps_its_census_findings():
    data = written(with_javascript(DOC_JS, OPEN_JS))
    run = pdf(data[: len(data) // 2])
    assert 1 in run.heuristics  # /JS and /JavaScript are still counted in the bytes that are left


@pytest.mark.parametrize("data", [
    b"%PDF-1.4\n" + bytes(range(256)) * 20,
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R",
    b"",
], ids=["garbage", "cut-in-an-object", "empty"])
def test_unparseable_pdf_is_a_section_not_a_crash(data):
    run = pdf(data)
    assert "pypdf:" in run.section("Could not parse the PDF").body
    assert run.heuristics == set()
