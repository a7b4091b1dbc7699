"""Unit tests for the pieces with no I/O: verdicts, taxonomy, identification, tags, manifests, codec."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from nats.js.errors import BadRequestError

from bus import provision as prov
from bus.codec import BadMessage, decode, encode
from bus.subjects import Names
from dispatcher.identify import identify
from dispatcher.replies import ReplyAcks
from schemas.messages import FileRef, Submission
from schemas.tags import tag_problem
from schemas.taxonomy import matching_types, taxonomy
from schemas.verdict import verdict_for
from services.sdk.loader import builtin_services
from services.sdk.manifest import ManifestError, load_manifest, parse_manifest


@pytest.mark.parametrize("score,verdict", [(-1000, "safe"), (-1, "safe"), (0, "info"), (299, "info"), (300, "suspicious"),
                                           (700, "highly_suspicious"), (999, "highly_suspicious"), (1000, "malicious")])
def test_verdict_thresholds(score, verdict):
    assert verdict_for(score) == verdict


def test_taxonomy_expansion_follows_assemblyline_regex_rules():
    assert "archive/zip" in matching_types("archive/", "")
    assert "empty" not in matching_types(".*", "empty|metadata/.*")
    assert matching_types("archive/(zip|tar)$", "") == ["archive/zip", "archive/tar"]
    assert len(set(taxonomy().types)) == len(taxonomy().types)


def test_task_subjects_are_per_stage_and_type():
    names = Names("sluice")
    assert names.task("CORE", "executable/windows/pe32") == "sluice.task.CORE.executable.windows.pe32"
    with pytest.raises(ValueError):
        Names("Bad.Prefix")


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "a")
    return buf.getvalue()


@pytest.mark.parametrize("data,expected", [
    (b"", "empty"),
    (b"plain words\n", "text/plain"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "document/pdf"),
    (gzip.compress(b"x" * 100), "archive/gzip"),
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00\x3e\x00" + b"\x00" * 44, "executable/linux/elf64"),
    (bytes(range(256)) * 4, "unknown"),
])
def test_identify(data, expected):
    assert identify(data) == expected


def test_identify_zip():
    assert identify(_zip()) == "archive/zip"


@pytest.mark.parametrize("name,value,ok", [
    ("network.static.domain", "example.com", True),
    ("network.static.domain", "not a domain", False),
    ("network.static.ip", "10.0.0.1", True),
    ("network.static.ip", "999.1.1.1", False),
    ("network.static.uri", "http://example.com/x", True),
    ("network.email.address", "a@example.com", True),
    ("network.email.address", "nope", False),
    ("Bad Name", "x", False),
    ("file.string.extracted", "", False),
])
def test_tag_checks(name, value, ok):
    assert (tag_problem(name, value) is None) == ok


def test_manifest_errors_name_the_field_and_file(tmp_path):
    with pytest.raises(ManifestError, match=r"m\.yml.*timeout"):
        parse_manifest({"name": "x", "version": "1", "timeout": "soon"}, "m.yml")
    with pytest.raises(ManifestError, match="acepts"):
        parse_manifest({"name": "x", "version": "1", "acepts": ".*"}, "m.yml")
    with pytest.raises(ManifestError, match="accepts"):
        parse_manifest({"name": "x", "version": "1", "accepts": "("}, "m.yml")
    bad = tmp_path / "service_manifest.yml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ManifestError, match="mapping"):
        load_manifest(tmp_path)


def test_manifest_config_override_changes_the_cache_key():
    base = parse_manifest({"name": "x", "version": "1", "config": {"a": 1}}, "m")
    same = parse_manifest({"name": "x", "version": "1", "config": {"a": 1}}, "m")
    other = parse_manifest({"name": "x", "version": "1", "config": {"a": 1}}, "m", overrides={"a": 2})
    assert base.config_hash == same.config_hash != other.config_hash
    assert other.config == {"a": 2}


def test_codec_round_trip_and_rejects():
    sub = Submission("s1", [FileRef("0" * 64, 3, "x", b"abc")])
    assert decode(encode(sub), Submission) == sub
    with pytest.raises(BadMessage, match="Submission"):
        decode(b"\x93\x01\x02", Submission)


def test_every_builtin_service_loads():
    from services.sdk.loader import load_service

    names = builtin_services()
    assert {"extract", "iocs"} <= set(names)
    for name in names:
        assert load_service(name).manifest.name == name


def test_extraction_limit_is_said_in_the_result():
    from services.sdk import ServiceBase
    from services.sdk.harness import run_service_once

    class Spray(ServiceBase):
        def execute(self, request):
            for i in range(5):
                request.add_extracted(f"child {i}".encode(), f"c{i}.txt")

    service = Spray(parse_manifest({"name": "spray", "version": "1"}, "test"))
    run = run_service_once(service, b"parent", max_extracted=2)
    assert [e.name for e in run.extracted] == ["c0.txt", "c1.txt"]
    assert "more than 2" in run.section("Extraction limit reached").body



class _Reply:
    def __init__(self, acked: list[int], seq: int) -> None:
        self.acked, self.seq = acked, seq

    async def ack(self) -> None:
        self.acked.append(self.seq)


async def test_replies_on_an_interest_stream_are_acked_a_run_at_a_time():
    acked: list[int] = []
    waiting = [10]  # replies still queued behind the one routed
    acks = ReplyAcks(batched=True, waiting=lambda: waiting[0], every=4)
    for seq in range(1, 11):
        waiting[0] -= 1
        await acks.routed(_Reply(acked, seq))
    assert acked == [4, 8, 10]  # every 4th while more wait, and the last once none does
    explicit: list[int] = []
    each = ReplyAcks(batched=False, waiting=lambda: 5)
    for seq in range(1, 4):
        await each.routed(_Reply(explicit, seq))
    assert explicit == [1, 2, 3]  # a work-queue reply stream's: every reply


async def test_provisioning_waits_while_a_new_cluster_cannot_place_replicas(monkeypatch):
    # A just-started cluster's meta leader may count a peer offline for a moment: "no suitable
    # peers for placement" (10005) is waited out, and any other refusal is not.
    tries: list[int] = []

    async def step(code: int, succeed_after: int) -> str:
        tries.append(code)
        if len(tries) <= succeed_after:
            raise BadRequestError(code=400, err_code=code, description="refused")
        return "provisioned"

    assert await prov.once_placed(lambda: step(prov.NO_PLACEMENT, 2)) == "provisioned" and len(tries) == 3
    tries.clear()
    with pytest.raises(BadRequestError):
        await prov.once_placed(lambda: step(10058, 1))
    assert len(tries) == 1
    tries.clear()
    with pytest.raises(BadRequestError):  # not forever
        await prov.once_placed(lambda: step(prov.NO_PLACEMENT, 1000), wait=0.3)
    assert 1 < len(tries) < 10
