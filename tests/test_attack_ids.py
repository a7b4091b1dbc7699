"""ATT&CK ids live in the manifests: every built-in heuristic where a technique applies carries
one (in the form ATT&CK writes it), and the few without one are listed here with the reason."""

from __future__ import annotations

import re

import pytest

from services.sdk.loader import builtin_services, load_service

# (service, heuristic id): why no technique applies
NO_TECHNIQUE = {
    ("carve", 3): "informational: a PyInstaller bundle was unpacked",
    ("email", 1): "informational: attachments listed; the risky cases are heuristic 4",
    ("html", 1): "informational: scripts extracted; what they do is judged by the scripts service",
    ("onenote", 1): "informational: embedded files listed; the risky cases are heuristic 2",
    ("shortcut", 1): "informational: what the shortcut opens; the risky cases are heuristics 2-5 and 7",
    ("shortcut", 6): "a file that cannot be parsed is a fact about the file, not a technique",
    ("binary", 8): "a file lief cannot parse is a fact about the file, not a technique",
    ("extract", 1): "informational: an archive was unpacked",
    ("extract", 2): "a decompression bomb attacks the analyser; ATT&CK has no technique for it",
    ("extract", 3): "path traversal in member names attacks the unpacker, not the victim host",
    ("extract", 4): "a resource limit of the analyser",
    ("extract", 6): "informational: the archive is damaged",
    ("extract", 7): "symlinks and devices in an archive attack the unpacker",
    ("extract", 8): "a resource limit of the analyser",
    ("iocs", 1): "informational: indicators were found",
    ("network", 2): "informational: the name is international; the deceptive cases are heuristic 3",
    ("network", 7): "the operator's own list: its entries carry no technique",
    ("network", 8): "informational: the address is not on the internet",
    ("office", 8): "informational: embedded objects listed; the payload cases are heuristic 9",
    ("pdf", 7): "informational: link targets listed",
    ("pe", 1): "a file pefile cannot parse is a fact about the file, not a technique",
    ("safelist", 1): "a known-good file",
    ("uri", 5): "informational: the host is international; the deceptive cases are heuristic 6",
    ("uri", 10): "a long URI hides its target, but no technique names that alone",
    ("yara", 1): "a rule's own metadata carries its technique (attack_id), added to the section",
    ("yara", 2): "as above",
    ("yara", 3): "as above",
}
ATTACK_ID = re.compile(r"^T\d{4}(\.\d{3})?$")


@pytest.mark.parametrize("name", builtin_services())
def test_heuristics_carry_attack_ids(name):
    for heuristic in load_service(name).manifest.heuristics:
        ids = heuristic.attack_id if isinstance(heuristic.attack_id, list) else [heuristic.attack_id] if heuristic.attack_id else []
        if (name, heuristic.heur_id) in NO_TECHNIQUE:
            assert not ids, f"{name} heuristic {heuristic.heur_id} has an id now: take it off NO_TECHNIQUE"
            continue
        assert ids, f"{name} heuristic {heuristic.heur_id} ({heuristic.name}) has no ATT&CK id"
        assert all(ATTACK_ID.match(i) for i in ids), ids


def test_bundled_yara_rules_that_name_a_technique_say_which():
    from pathlib import Path

    for path in (Path(__file__).resolve().parent.parent / "services" / "yara" / "rules").glob("*.yar"):
        for rule in re.split(r"^rule ", path.read_text(), flags=re.M)[1:]:
            if "EICAR" not in rule:
                assert "attack_id" in rule, f"{path.name}: rule {rule.split()[0]} names no technique"


def test_the_terminal_tree_shows_a_sections_attack_ids():
    from rich.console import Console

    from schemas.messages import HeuristicHit, Section
    from sluice.render import section_label

    section = Section("Download cradle", heuristic=HeuristicHit(2, "Download cradle", 300, ["T1105", "T1059.001"]))
    console = Console(width=200, record=True)
    console.print(section_label(section, "scripts"))
    assert "[Download cradle +300 T1105 T1059.001]" in console.export_text()
