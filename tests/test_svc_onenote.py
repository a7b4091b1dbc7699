"""The onenote service on a section built here: embedded files come out, scripts and executables fire."""

from __future__ import annotations

from formats import make_onenote
from dispatcher.identify import identify
from services.sdk.harness import run_service_once

HTA = b'<html><head><hta:application id="x"/></head><script language="VBScript">CreateObject("WScript.Shell").Run "calc"</script></html>'


def test_embedded_files_come_out_and_the_hta_fires():
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    data = make_onenote([png, HTA])
    assert identify(data) == "document/office/onenote"
    run = run_service_once("onenote", data, file_type="document/office/onenote", name="lure.one")
    assert run.result.error is None
    assert [e.data for e in run.extracted] == [png, HTA]
    assert run.heuristics == {1, 2}
    assert "embedded-2.bin: script" in run.section("Embedded scripts").body


def test_a_length_past_the_end_is_skipped_not_read():
    data = make_onenote([b"MZ" + bytes(50)])
    cut = data[: len(data) - 100]
    run = run_service_once("onenote", cut, file_type="document/office/onenote", name="cut.one")
    assert run.result.error is None and run.extracted == []
    assert run.section("No embedded files")
