"""The Characterize service: hashes checked against hashlib, ppdeep (an independent ssdeep
implementation) and tlsh, and the high-entropy heuristic on text, random bytes, a random payload inside text, and compressed types.
"""

from __future__ import annotations

import hashlib
import json
import os

import ppdeep
import pytest

from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

HIGH_ENTROPY = 1
TEXT = b"".join(b"%d: the quick brown fox jumps over the lazy dog, then naps by the river.\n" % i for i in range(400))


def characterize(data: bytes, file_type: str = "unknown", **config):
    run = run_service_once(load_service("characterize", config_overrides=config or None), data, file_type=file_type)
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def reference_tlsh(data: bytes) -> str:
    """TLSH straight from the binding (tlsh-python), with the "T1" version prefix."""
    tlsh = pytest.importorskip("tlsh", reason="no TLSH binding on this platform (tlsh-python: Linux x86_64 wheels only)")
    state = tlsh.Tlsh(data)
    state.final()
    return state.hexdigest(1)


def hashes(run) -> dict:
    return json.loads(run.section("File hashes").body)


def overall_entropy(run) -> float:
    """From the Entropy section's first line: "Overall: 4.321 bits per byte over ..."."""
    first = run.section("Entropy").body.splitlines()[0]
    return float(first.split()[1])


def test_text_hashes_match_the_libraries_and_entropy_is_low():
    run = characterize(TEXT, "text/plain")
    kv = hashes(run)
    assert kv["size"] == len(TEXT)
    for name in ("md5", "sha1", "sha256"):
        assert kv[name] == hashlib.new(name, TEXT).hexdigest()
    assert kv["ssdeep"] == ppdeep.hash(TEXT)
    assert kv["tlsh"] == reference_tlsh(TEXT) and kv["tlsh"].startswith("T1")
    assert run.heuristics == set()
    assert 3.0 < overall_entropy(run) < 5.0
    blocks = -(-len(TEXT) // 4096)  # 4 KiB blocks, each about 4.5 bits per byte
    assert run.section("Entropy").body.splitlines()[2] == "00000000 |" + "▅" * blocks + "|"


def test_random_bytes_fire_high_entropy():
    data = os.urandom(256 * 1024)
    run = characterize(data)
    assert run.heuristics == {HIGH_ENTROPY}
    assert run.result.score == 100
    assert overall_entropy(run) > 7.99
    assert run.section("High-entropy content").body.startswith("The whole file is")
    kv = hashes(run)
    assert kv["ssdeep"] == ppdeep.hash(data)
    assert kv["tlsh"] == reference_tlsh(data)
    assert kv["sha256"] == hashlib.sha256(data).hexdigest()


def test_random_payload_inside_text_fires_on_the_block_run():
    filler = TEXT * 20
    data = filler + os.urandom(128 * 1024) + filler
    run = characterize(data, "executable/windows/pe32")
    assert run.heuristics == {HIGH_ENTROPY}
    assert overall_entropy(run) < 7.5  # so it is the run of random blocks that fired
    body = run.section("High-entropy content").body
    start = len(filler) // 4096 * 4096 + 4096  # the first block wholly inside the random bytes
    assert f"from offset 0x{start:x}" in body


def test_compressed_types_are_not_scored_for_entropy():
    run = characterize(os.urandom(64 * 1024), "archive/zip")
    assert run.heuristics == set()
    assert "as expected for archive/zip" in run.section("Entropy").body


def test_tiny_file_has_no_tlsh_and_does_not_crash():
    run = characterize(b"0123456789")
    kv = hashes(run)
    assert kv["tlsh"].startswith("not computable")
    assert kv["md5"] == hashlib.md5(b"0123456789").hexdigest()
    assert kv["ssdeep"] == ppdeep.hash(b"0123456789")
    assert run.heuristics == set()


def test_fuzzy_hashes_are_skipped_above_the_size_limit():
    run = characterize(TEXT, max_fuzzy_hash_bytes=1000)
    kv = hashes(run)
    assert kv["ssdeep"] == kv["tlsh"] == "not computed: the file is larger than 1,000 bytes"
    assert kv["sha1"] == hashlib.sha1(TEXT).hexdigest()
