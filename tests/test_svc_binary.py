"""The binary service on real ELF files (this Python's own interpreter), hand-laid ELF and Mach-O
files in the shapes packers and bots leave, and a real .NET assembly (from the pythonnet wheel);
plus Authenticode in the pe service and lying names in the filename service."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dispatcher.identify import identify
from schemas.taxonomy import matching_types
from services.binary.service import has_clr_header
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from tests import binaries

BINARY = load_service("binary")
PACKED, ODD_ENTRY, STRIPPED_STATIC, WRITE_EXECUTE, CAPABILITIES, DOTNET_API = 1, 2, 3, 4, 5, 6


def run_binary(data: bytes, file_type: str | None = None):
    run = run_service_once(BINARY, data, file_type=file_type or identify(data))
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def signatures(run, heur_id: int) -> set[str]:
    return {sig for s in run.result.sections if s.heuristic and s.heuristic.heur_id == heur_id for sig in s.heuristic.signatures}


def test_accepts_unix_executables_and_windows_pes():
    m = BINARY.manifest
    types = matching_types(m.accepts, m.rejects, m.kinds)
    assert {"executable/linux/elf64", "executable/linux/elf32", "executable/mach-o", "executable/windows/pe32"} <= set(types)


def test_a_real_elf_is_described_and_clean():
    data = Path(sys.executable).resolve().read_bytes()
    run = run_binary(data)
    header = json.loads(run.section("ELF header").body)
    assert header["class"] == "ELF64" and header["interpreter"].startswith("/lib")
    sections = json.loads(run.section("Sections").body)
    assert any(s["name"] == ".text" and 0 < s["entropy"] < 8 for s in sections)
    assert run.section("Libraries") and run.section("Imported symbols")
    assert run.result.score == 0


def test_a_hand_laid_elf_is_stripped_and_static():
    run = run_binary(binaries.elf())
    header = json.loads(run.section("ELF header").body)
    assert header["static"] is True and header["stripped"] is True
    assert run.heuristics == {STRIPPED_STATIC} and run.result.score < 300


def test_upx_marks_and_a_removed_section_table_are_packing():
    run = run_binary(binaries.elf(bytes(range(256)) * 16, sections=False, marker=b"UPX!"))
    assert {"upx", "no_section_table"} <= signatures(run, PACKED)
    assert run.result.score >= 500


def test_capabilities_from_strings():
    bot = run_binary(binaries.elf(b"/bin/busybox MIRAI\x00POST /cdn-cgi/\x00"))
    assert "iot_bot" in signatures(bot, CAPABILITIES)
    miner = run_binary(binaries.elf(b"stratum+tcp://pool.example.net:3333\x00/etc/ld.so.preload\x00"))
    assert {"coin_miner", "preload_hijack"} <= signatures(miner, CAPABILITIES)


def test_a_macho_is_read():
    data = binaries.macho()
    assert identify(data) == "executable/mach-o"
    run = run_binary(data)
    header = json.loads(run.section("Mach-O header").body)
    assert header["cpu"] == "X86_64" and header["code signature"] is False
    assert [s["name"] for s in json.loads(run.section("Sections").body)] == ["__text"]


def test_garbage_with_an_elf_magic_is_malformed_not_a_crash():
    run = run_binary(b"\x7fELF" + b"\xff" * 40, "executable/linux/elf64")
    assert 8 in run.heuristics


def test_a_dotnet_assembly_is_described_and_its_resources_extracted():
    data = binaries.dotnet_assembly()
    assert has_clr_header(data)
    run = run_binary(data, "executable/windows/dll32")
    assembly = json.loads(run.section(".NET assembly").body)
    assert assembly["name"] == "Python.Runtime" and assembly["runtime"].startswith("v4.")
    assert "netstandard" in run.section("Referenced assemblies").body
    assert "dlopen" in run.section("P/Invoke imports").body
    assert {e.name for e in run.extracted} >= {"clr.py"}
    assert b"class clrproperty" in next(e.data for e in run.extracted if e.name == "clr.py")
    assert "reflection_load" in signatures(run, DOTNET_API)
    assert run.result.score < 500  # a legitimate interop library: reflection alone is no verdict


def test_a_pe_without_dotnet_metadata_is_left_to_the_pe_service():
    data = binaries.launcher()
    assert not has_clr_header(data)
    run = run_binary(data, "executable/windows/pe64")
    assert run.result.sections == [] and run.result.score == 0


# -- Authenticode (pe) -------------------------------------------------------------------------
needs_signing = pytest.mark.skipif(not binaries.signing_available(), reason="osslsigncode/openssl not installed: no signed PE to test with")


def run_pe(data: bytes):
    run = run_service_once(load_service("pe"), data, file_type="executable/windows/pe64", name="x.exe")
    assert run.result.error is None
    return run


@needs_signing
def test_a_signed_pe_names_its_signer_and_verifies():
    run = run_pe(binaries.signed(binaries.launcher(), "Contoso Tools Ltd"))
    facts = json.loads(run.section("Authenticode signature").body)
    assert facts["signature"].startswith("verifies") and facts["signer 1"] == "CN=Contoso Tools Ltd"
    assert facts["issuer 1"] == "CN=Example Code Signing CA"
    assert run.tags("cert.subject") == {"CN=Contoso Tools Ltd"}
    assert run.result.score == 0


@needs_signing
def test_a_pe_changed_after_signing_does_not_verify():
    run = run_pe(binaries.tampered(binaries.signed(binaries.launcher())))
    assert "does NOT verify" in json.loads(run.section("Authenticode signature").body)["signature"]
    assert "bad_digest" in {sig for s in run.result.sections if s.heuristic for sig in s.heuristic.signatures}
    assert run.result.score >= 500


def test_an_unsigned_pe_has_no_signature_section():
    assert not [s for s in run_pe(binaries.launcher()).result.sections if "Authenticode" in s.title]


# -- names that lie (filename) -------------------------------------------------------------------
@pytest.mark.parametrize(("name", "signature"), [
    ("invoice_2024.pdf.exe", "double_extension"),
    ("scan\u202efdp.exe", "bidi_override"),
    ("photo.jpg                      .scr", "padded_extension"),
    ("report.pdf", "type_mismatch"),
])
def test_names_that_lie(name, signature):
    run = run_service_once(load_service("filename"), binaries.launcher(), file_type="executable/windows/pe64", name=name)
    assert signature in {sig for s in run.result.sections if s.heuristic for sig in s.heuristic.signatures}
    assert run.result.score >= 500


@pytest.mark.parametrize(("name", "file_type"), [
    ("setup.exe", "executable/windows/pe64"), ("archive.tar.gz", "archive/gzip"), ("notes.txt", "text/plain"),
    ("v1.2.3.zip", "archive/zip"), ("report.pdf", "document/pdf"),
])
def test_honest_names(name, file_type):
    assert run_service_once(load_service("filename"), b"x", file_type=file_type, name=name).result.score == 0


def test_filename_never_reads_the_file_and_is_never_cached():
    m = load_service("filename").manifest
    assert m.file_required is False and m.disable_cache is True


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([b"\x7fELF\x02\x01\x01", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xca\xfe\xba\xbe"]), st.binary(max_size=600))
def test_hostile_elf_and_macho_never_crash(magic, rest):
    file_type = "executable/linux/elf64" if magic.startswith(b"\x7fELF") else "executable/mach-o"
    assert run_service_once(BINARY, magic + rest, file_type=file_type).result.error is None


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_dotnet_headers_never_crash(rest):
    """A PE whose .NET directory points at random bytes: dnfile meets garbage metadata."""
    import pefile

    pe = pefile.PE(data=binaries.launcher())
    text = pe.sections[0]
    directory = pe.OPTIONAL_HEADER.DATA_DIRECTORY[14]
    directory.VirtualAddress, directory.Size = text.VirtualAddress, 0x48
    data = bytearray(pe.write())
    data[text.PointerToRawData:text.PointerToRawData + len(rest)] = rest
    assert has_clr_header(bytes(data))
    assert run_service_once(BINARY, bytes(data), file_type="executable/windows/pe64").result.error is None
