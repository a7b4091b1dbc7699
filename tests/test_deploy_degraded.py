"""Optional native parts missing: the install still works and says what it did not do.

TLSH has wheels only for Linux x86_64 (tlsh-python); libmagic comes from the pylibmagic wheel
or the system. Both are simulated missing here, as on a platform without them.
"""

from __future__ import annotations

import json

import pytest

from dispatcher import identify, libmagic
from services.characterize import digests
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

TEXT = b"".join(b"%d: a line of plain text, long enough for a fuzzy hash.\n" % i for i in range(50))


@pytest.mark.parametrize("missing", ["ssdeep", "tlsh"])
def test_a_fuzzy_hash_library_missing_is_said_in_the_hash_section(monkeypatch, missing):
    monkeypatch.setattr(digests, missing, None)
    run = run_service_once(load_service("characterize"), TEXT, file_type="text/plain")
    assert run.result.error is None
    kv = json.loads(run.section("File hashes").body)
    assert kv[missing] == digests.MISSING[missing] and kv[missing].startswith("not computed: no ")
    other = ({"ssdeep", "tlsh"} - {missing}).pop()
    assert not kv[other].startswith("not computed") and kv["sha256"]  # everything else is still computed


def test_libmagic_in_use_comes_from_a_wheel_or_the_system():
    assert libmagic.missing() is None
    assert identify.identify(b"%PDF-1.7\n" + b"0" * 200).startswith("document/pdf")


def test_libmagic_missing_degrades_to_our_own_rules_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(libmagic, "magic", None)
    monkeypatch.setattr(libmagic, "_MISSING", "libmagic could not be loaded (test); files are typed by Sluice's own rules only")
    libmagic._warn_missing.cache_clear()
    monkeypatch.setattr(identify, "_local", type(identify._local)())  # this thread's handles are made anew
    with caplog.at_level("WARNING", logger="sluice.identify"):
        assert identify.identify(TEXT) != "unknown"  # text is still typed, by the text rule
        assert isinstance(identify.identify(b"MZ" + bytes(300)), str)  # binary: typed as far as our rules go, no crash
    assert [r.getMessage() for r in caplog.records].count(libmagic.missing()) == 1
    libmagic._warn_missing.cache_clear()
