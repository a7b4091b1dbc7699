"""Verdicts on a subset of the labelled corpus (tests/corpus.py), through a real one-box mesh with
every built-in service: the malicious specimens reach the alert threshold, the benign look-alikes
do not. `bench/detection.py` runs the whole corpus and prints the rates."""

from __future__ import annotations

import pytest

from tests.corpus import ALERT, BENIGN_SPECIMENS, MALICIOUS_SPECIMENS, buildable, scan_corpus

# One or two of each format the built-in services cover, the issue's own cases among them.
MALICIOUS = {"invoice.docm", "invoice.hta", "encoded_cradle.txt", "xor_stage.ps1", "invoice.js", "chr.vbs", "setvars.bat",
             "loader.wsf", "shell.php", "invoice_2024.pdf.exe", "invoice.zip", "upx_elf", "payload.txt", "smuggle.html",
             "login-microsoftonline.com.secure-auth.top", "xn--pypal-4ve.com", "http://198.51.100.9/a.ps1"}
BENIGN = {"welcome.docm", "install_tools.ps1", "maintenance_task.ps1", "analytics.js", "ipconfig.vbs", "build.bat", "setup_ui.hta",
          "t64.exe", "tools.zip", "Python.Runtime.dll", "hello_elf", "README.md", "newsletter.html", "login.microsoftonline.com",
          "8.8.8.8", "https://login.microsoftonline.com/common/oauth2/authorize", "signed_setup.exe"}


@pytest.mark.timeout(300)
async def test_malicious_patterns_are_flagged_and_look_alikes_are_not(sluice_mesh):
    chosen = [s for s in MALICIOUS_SPECIMENS if s.name in MALICIOUS] + [s for s in BENIGN_SPECIMENS if s.name in BENIGN]
    assert len(chosen) == len(MALICIOUS) + len(BENIGN)  # every name above is in the corpus
    specimens, _skipped = buildable(chosen)  # signed PEs need osslsigncode
    async with sluice_mesh(None) as mesh:
        outcomes = await scan_corpus(mesh.client, specimens, timeout=240)
    missed = [(o.specimen.name, o.score, o.why) for o in outcomes if o.specimen.name in MALICIOUS and o.score < ALERT]
    flagged = [(o.specimen.name, o.score, o.why) for o in outcomes if o.specimen.name in BENIGN and o.score >= ALERT]
    assert missed == [] and flagged == []
    assert all(o.errors == 0 for o in outcomes), [(o.specimen.name, o.errors) for o in outcomes if o.errors]
