"""The PE service on real Windows executables (pip's distlib launchers) and on copies of them
edited with pefile into the classic suspicious shapes: packer-named RWX sections, forged compile
times, odd entry points, random payloads, appended data, truncation and garbage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

import pefile
import pip._vendor.distlib
import pytest

from services.pe import parse, report, traits
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

LAUNCHERS = Path(pip._vendor.distlib.__file__).parent
MEM_WRITE = pefile.SECTION_CHARACTERISTICS["IMAGE_SCN_MEM_WRITE"]
MEM_EXECUTE = pefile.SECTION_CHARACTERISTICS["IMAGE_SCN_MEM_EXECUTE"]
SECURITY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]
IMPHASH, SECTION_NAME = "file.pe.imports.imphash", "file.pe.sections.name"
MALFORMED, WRITE_EXECUTE, PACKER, FEW_IMPORTS, FUTURE, OLD, HIGH_ENTROPY, OVERLAY, ENTRY = range(1, 10)


def launcher(name: str = "t64.exe") -> bytes:
    return (LAUNCHERS / name).read_bytes()


def edited(edit, name: str = "t64.exe") -> bytes:
    """A launcher changed by `edit(pe)` and written back with pefile."""
    pe = pefile.PE(data=launcher(name))
    edit(pe)
    return bytes(pe.write())


def run_pe(data: bytes, file_type: str = "executable/windows/pe64"):
    run = run_service_once(load_service("pe"), data, file_type=file_type, name="sample.exe")
    assert run.result.error is None
    # The runner adds "Result warnings" for an invalid tag or unknown heuristic: there must be none.
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


@pytest.mark.parametrize("name", ["t64.exe", "w64.exe"])
def test_real_launcher_is_described_and_clean(name):
    data = launcher(name)
    reference = pefile.PE(data=data)
    run = run_pe(data)

    assert run.heuristics == set()  # no W+X, packer, timestamp, entry point or import finding
    assert run.result.score == 0
    assert {".text", ".rdata", ".data", ".pdata", ".rsrc", ".reloc"} == run.tags(SECTION_NAME)
    (imphash,) = run.tags(IMPHASH)
    assert re.fullmatch(r"[0-9a-f]{32}", imphash) and imphash == reference.get_imphash()
    assert run.tags("file.pe.linker.timestamp") == {str(reference.FILE_HEADER.TimeDateStamp)}
    (pdb,) = run.tags("file.pe.pdb_filename")
    assert pdb.endswith("\\" + name.replace(".exe", ".pdb"))

    header = json.loads(run.section("PE header").body)
    assert header["Type"] == "EXE" and header["Machine"] == "AMD64"
    assert header["Compile time"].startswith("2022-08-06T")
    assert header["Entry point"].endswith("in '.text'")
    assert header["Authenticode signature"] == "absent" and header["Overlay"] == "none"

    rows = {row["name"]: row for row in json.loads(run.section("Sections").body)}
    assert rows[".text"]["flags"] == "R-X" and rows[".data"]["flags"] == "RW-"
    assert 5.5 < rows[".text"]["entropy"] < 7.0
    dlls = {row["dll"] for row in json.loads(run.section("Imports").body)}
    assert "KERNEL32.dll" in dlls
    resources = json.loads(run.section("Resources").body)
    assert {"RT_ICON", "RT_MANIFEST"} <= {row["type"] for row in resources}


def test_every_imported_name_is_listed_in_a_folded_section():
    """The table names 50 functions per DLL ("… (+33)" for the launcher's KERNEL32); the folded
    section under it names every one, as pefile reads them."""
    run = run_pe(launcher("t64.exe"))
    reference = pefile.PE(data=launcher("t64.exe"))
    expected = [f"{i.dll.decode()}!{f.name.decode() if f.name else f'ord{f.ordinal}'}"
                for i in reference.DIRECTORY_ENTRY_IMPORT for f in i.imports]
    table = json.loads(run.section("Imports").body)
    assert any("(+33)" in row["functions"] for row in table)
    listing = run.section("Every imported name")
    assert listing.auto_collapse and listing.title == f"Every imported name ({len(expected)})"
    assert listing.body.splitlines() == expected


def test_a_huge_import_table_is_listed_up_to_the_bound_and_says_so():
    info = dataclasses.replace(parse.read(launcher("t64.exe")), imports=[
        parse.Import(f"lib{d}.dll", [f"fn{n}" for n in range(3000)]) for d in range(5)])
    table = report.imports(info, report.Caps())
    [listing] = table.subsections
    assert listing.title_text == "Every imported name (15000, first 10000 listed (max_import_names_listed))"
    assert len(listing.body.splitlines()) == 10_000 and listing.auto_collapse
    small = dataclasses.replace(info, imports=[parse.Import("a.dll", ["x", "y"])])
    assert report.imports(small, report.Caps()).subsections == []  # the table shows them all already


def test_upx_named_rwx_section_with_future_timestamp():
    future = int(time.time()) + 365 * 86400

    def disguise(pe):
        text = pe.sections[0]
        text.Name = b"UPX0".ljust(8, b"\0")
        text.Characteristics |= MEM_WRITE | MEM_EXECUTE
        pe.FILE_HEADER.TimeDateStamp = future

    run = run_pe(edited(disguise))
    assert run.heuristics == {WRITE_EXECUTE, PACKER, FUTURE}
    assert run.section("Packer section names").heuristic.signatures == ["UPX"]
    assert "'UPX0'" in run.section("Writable and executable section").body
    assert str(future) in run.section("Compile time in the future").body
    assert "UPX0" in run.tags(SECTION_NAME)
    assert run.tags("file.pe.linker.timestamp") == {str(future)}
    assert run.result.score == 250 + 300 + 100


def test_old_timestamp_fires_but_zero_means_not_set():
    delphi = 0x2A425E19  # the fixed stamp old Delphi linkers write: 1992-06-19
    run = run_pe(edited(lambda pe: setattr(pe.FILE_HEADER, "TimeDateStamp", delphi)))
    assert run.heuristics == {OLD}
    assert "1992-06-19" in run.section("Compile time before 1995").body

    run = run_pe(edited(lambda pe: setattr(pe.FILE_HEADER, "TimeDateStamp", 0)))
    assert run.heuristics == set()
    assert json.loads(run.section("PE header").body)["Compile time"] == "not set (0)"


def test_entry_point_in_data_section_or_outside_every_section():
    def into_rdata(pe):
        pe.OPTIONAL_HEADER.AddressOfEntryPoint = pe.sections[1].VirtualAddress + 0x10

    run = run_pe(edited(into_rdata))
    assert run.heuristics == {ENTRY}
    hit = run.section("Entry point in a non-executable section").heuristic
    assert hit.signatures == ["not_executable"] and hit.score == 250

    run = run_pe(edited(lambda pe: setattr(pe.OPTIONAL_HEADER, "AddressOfEntryPoint", 0x10)))  # in the headers
    hit = run.section("Entry point outside every section").heuristic
    assert hit.signatures == ["outside_sections"] and hit.score == 300


def test_random_section_content_is_high_entropy():
    data = bytearray(launcher())
    section = pefile.PE(data=bytes(data)).sections[2]  # .data: nothing the parser needs lives there
    assert section.Name.startswith(b".data")
    start, size = section.PointerToRawData, section.SizeOfRawData
    data[start:start + size] = os.urandom(size)
    run = run_pe(bytes(data))
    assert run.heuristics == {HIGH_ENTROPY}
    assert "'.data'" in run.section("High-entropy section").body


def test_large_overlay_but_not_a_trailing_signature():
    base = launcher()
    payload = os.urandom(200_000)
    run = run_pe(base + payload)
    assert run.heuristics == {OVERLAY}
    assert json.loads(run.section("PE header").body)["Overlay"] == f"200,000 bytes at offset 0x{len(base):x}"

    def signed(pe):  # a certificate table covering the appended bytes, as signing makes
        pe.OPTIONAL_HEADER.DATA_DIRECTORY[SECURITY].VirtualAddress = len(base)
        pe.OPTIONAL_HEADER.DATA_DIRECTORY[SECURITY].Size = len(payload)

    pe = pefile.PE(data=base + payload)
    signed(pe)
    run = run_pe(bytes(pe.write()))
    assert run.heuristics == set()
    header = json.loads(run.section("PE header").body)
    assert header["Authenticode signature"] == "present, 200,000 bytes (not verified)"
    assert header["Overlay"] == "none"


def test_import_checks_spare_dotnet_and_dlls():
    info = parse.read(launcher())
    policy = load_service("pe").config_as(traits.Policy)

    def import_findings(**changes):
        return [f for f in traits.findings(dataclasses.replace(info, **changes), 1, policy, time.time())
                if f.heur_id == FEW_IMPORTS]

    resolvers = [parse.Import("KERNEL32.dll", ["LoadLibraryA", "GetProcAddress"])]
    (found,) = import_findings(imports=resolvers)
    assert found.signatures == ("resolver_only",)
    (found,) = import_findings(imports=[parse.Import("USER32.dll", ["MessageBoxW"])])
    assert found.signatures == ("few_imports",)
    assert import_findings(imports=[parse.Import("USER32.dll", ["MessageBoxW"])], is_dll=True) == []
    assert import_findings(imports=[parse.Import("mscoree.dll", ["_CorExeMain"])], is_dotnet=True) == []
    assert import_findings() == []  # the real launcher's 86 imports


def test_truncated_pe_is_malformed_not_an_error():
    run = run_pe(launcher()[:1024])
    assert run.heuristics == {MALFORMED}
    section = run.section("Malformed PE")
    assert "'.text'" in section.body and "past the end of the file" in section.body
    assert "could not read" in run.section("Imports").body
    assert run.tags(SECTION_NAME)  # the header facts that survived are still reported


@pytest.mark.parametrize("data", [
    b"MZ" + bytes(range(256)) * 4,  # garbage after MZ: e_lfanew points nowhere
    b"MZ" + bytes(58) + (64).to_bytes(4, "little") + b"\xb4\x4c\xcd\x21" * 64,  # DOS only: no PE signature
    b"MZ",
])
def test_unparseable_files_give_a_malformed_section(data):
    run = run_pe(data, "executable/windows/dos")
    assert [s.title for s in run.result.sections] == ["Malformed PE"]
    assert run.section("Malformed PE").body.startswith("pefile could not parse it:")
    assert run.result.score == 100
