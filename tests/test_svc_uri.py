"""The URI service: the parts it shows, each heuristic on a URI crafted for it, the host related
as a domain or an IP, and no crash on any value the sample check lets through."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.messages import Relation, SampleKind
from schemas.samples import KIND_TYPES, SampleError, canonical
from schemas.taxonomy import matching_types
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.sdk.manifest import ManifestError
from services.uri.findings import Policy, findings
from services.uri.hosts import label_concern, numeric_ipv4
from services.uri.parse import parse_uri

SERVICE = load_service("uri")


def uri(value: str):
    run = run_service_once(SERVICE, value.encode(), file_type="uri/https")
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]  # every tag valid
    return run


def related(run) -> list[tuple[SampleKind, str, Relation]]:
    return [(r.ref.kind, r.ref.name, r.relation) for r in run.related]


def test_the_service_takes_uri_samples_only():
    m = SERVICE.manifest
    assert matching_types(m.accepts, m.rejects, m.kinds) == list(KIND_TYPES[SampleKind.URI])


def test_clean_uri_fires_no_heuristic_and_relates_its_host_as_a_domain():
    run = uri("https://www.example.com/docs/index.html?lang=en")
    assert run.heuristics == set() and run.result.score == 0
    parts = json.loads(run.section("URI").body)
    assert parts["scheme"] == "https" and parts["host"] == "www.example.com" and parts["path"] == "/docs/index.html"
    assert parts["port"] == "443 (default)"
    assert run.tags("network.static.uri") == {"https://www.example.com/docs/index.html?lang=en"}
    assert run.tags("network.static.domain") == {"www.example.com"}
    assert run.tags("network.static.uri_path") == {"/docs/index.html"}
    assert related(run) == [(SampleKind.DOMAIN, "www.example.com", Relation.RESOLVED_BY)]


def test_query_parameters_are_a_table():
    run = uri("https://shop.example.com/p?id=42&ref=&q=a%20b&id=43")
    rows = json.loads(run.section("Query parameters (4)").body)
    assert rows == [{"name": "id", "value": "42"}, {"name": "ref", "value": ""},
                    {"name": "q", "value": "a b"}, {"name": "id", "value": "43"}]


@pytest.mark.parametrize(
    ("value", "heur_id", "says"),
    [
        ("ftp://admin:hunter2@files.example.com/", 1, "user 'admin' with a password"),
        ("https://www.bank.example.com@login.example.net/", 2, "'www.bank.example.com' before the '@'"),
        ("https://u:pw@www.bank.example.com@login.example.net/", 2, "'www.bank.example.com' before the '@'"),
        ("http://203.0.113.7/index.html", 3, "the host is the address 203.0.113.7"),
        ("http://0xcb.0x0.0x71.0x7/", 4, "is 203.0.113.7"),
        ("http://0313.0.0161.07/", 4, "is 203.0.113.7"),
        ("https://xn--bcher-kva.example/", 5, "reads as bücher.example"),
        ("https://xn--pypal-4ve.com/", 6, "mixes scripts: Cyrillic, Latin"),
        ("https://аррӏе.com/", 6, "reads as Latin 'appie'"),
        ("http://shop.example.xyz/", 7, ".xyz"),
        ("http://www.example.com:8081/", 8, "port 8081 (the http default is 80)"),
        ("http://www.example.com:4444/", 9, "port 4444"),
        ("https://www.example.com/" + "a" * 1100, 10, "characters (more than 1,024)"),
        ("https://login.bank.example.com.verify.example.top/", 11, "7 labels"),
        ("javascript:alert(document.cookie)", 12, "javascript: URI"),
        ("data:text/html;base64,PGgxPmhpPC9oMT4=", 12, "data: URI"),
        ("https://cdn.example.com/files/Update.EXE", 13, "ends in .exe"),
    ],
)
def test_each_heuristic_fires_on_its_uri(value, heur_id, says):
    run = uri(value)
    assert heur_id in run.heuristics
    hit = next(s for s in run.result.sections if s.heuristic and s.heuristic.heur_id == heur_id)
    assert says in hit.body and hit.heuristic.score > 0


def test_attack_ids_and_signatures_say_which_cause():
    assert uri("javascript:void(0)").section("Script or data URI").heuristic.attack_ids == ["T1059.007"]
    run = uri("data:,hello")
    assert run.section("Script or data URI").heuristic.signatures == ["data"]
    assert run.section("Script or data URI").heuristic.score == 300
    assert uri("javascript:void(0)").result.score == 500  # by the signature score map
    assert uri("http://www.example.com:4444/").section("Suspicious port").heuristic.attack_ids == ["T1571"]


def test_the_password_is_redacted_everywhere_but_its_presence_is_told():
    run = uri("ftp://admin:hunter2@files.example.com/pub/")
    everything = [s.body for s in run.result.sections] + [t.value for s in run.result.sections for t in s.tags]
    everything += [r.description for r in run.related]
    assert not [text for text in everything if "hunter2" in text]
    assert run.tags("network.static.uri") == {"ftp://admin:***@files.example.com/pub/"}
    parts = json.loads(run.section("URI").body)
    assert parts["user"] == "admin" and parts["password"] == "present (redacted)"


def test_a_port_is_tagged_and_usual_ports_fire_nothing():
    run = uri("https://www.example.com:8443/")
    assert run.tags("network.port") == {"8443"} and run.heuristics == set()
    assert uri("https://www.example.com:443/").heuristics == set()  # the default, written out


def test_ip_host_is_related_as_an_ip_contacted_by_the_uri():
    run = uri("http://198.51.100.7:8080/gate.php")
    assert related(run) == [(SampleKind.IP, "198.51.100.7", Relation.CONTACTED_BY)]
    assert run.tags("network.static.ip") == {"198.51.100.7"} and run.tags("network.static.domain") == set()


def test_ipv6_host_is_related_as_an_ip():
    run = uri("http://[2001:DB8::1]/")
    assert related(run) == [(SampleKind.IP, "2001:db8::1", Relation.CONTACTED_BY)]


def test_an_encoded_ipv4_host_relates_the_address_a_browser_contacts():
    run = uri("http://0x7f.1/")
    assert related(run) == [(SampleKind.IP, "127.0.0.1", Relation.CONTACTED_BY)]
    assert "loopback" in run.section("IP address host").body
    assert run.tags("network.static.ip") == {"127.0.0.1"}


def test_a_uri_without_a_host_relates_nothing():
    assert uri("mailto:someone@example.com").related == []
    assert uri("javascript:alert(1)").section("Script code").body == "alert(1)"


def test_a_data_uri_content_is_extracted():
    run = uri("data:text/html;base64,PGgxPmhpPC9oMT4=")
    [child] = run.extracted
    assert child.data == b"<h1>hi</h1>" and child.relation == Relation.DROPPED_BY
    assert json.loads(run.section("Data URI").body) == {"media type": "text/html", "size": 11}
    assert uri("data:,a%20b").extracted[0].data == b"a b"


def test_usual_script_mixes_and_plain_idn_are_not_look_alikes():
    assert uri("https://bücher.example/").heuristics == {5}
    assert label_concern("例えば") is None and label_concern("ドメイン名例") is None  # Japanese mixes scripts
    assert label_concern("яндекс") is None  # Cyrillic that does not read as Latin
    assert label_concern("pаypal").scripts == ["CYRILLIC", "LATIN"]
    assert uri("https://ехо.рф/").heuristics == {5}  # Cyrillic that reads as Latin, under a Cyrillic TLD
    assert uri("https://ехо.com/").heuristics == {5, 6}


@pytest.mark.parametrize(
    ("host", "address"),
    [("0x7f.0.0.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("3232235777", "192.168.1.1"),
     ("0xc0a80101", "192.168.1.1"), ("192.168.1.1.", "192.168.1.1"), ("0x", "0.0.0.0")],
)
def test_numeric_ipv4_forms_browsers_resolve(host, address):
    assert numeric_ipv4(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.16777216", "08.1.1.1", "example.com", "4294967296", "1..2"])
def test_names_and_out_of_range_numbers_are_not_ipv4(host):
    assert numeric_ipv4(host) is None


def test_a_malformed_value_is_refused_before_the_service_with_a_clear_error():
    with pytest.raises(SampleError, match="has no scheme"):
        run_service_once(SERVICE, b"www.example.com/path", file_type="uri/https")
    with pytest.raises(SampleError, match="bad host"):
        run_service_once(SERVICE, b"http://bad_host-.example/", file_type="uri/https")


@pytest.mark.parametrize("value", ["http://[::1]/", "foo:", "http://x.example:0/", "http://x.example/%ff%00",
                                   "https://" + "a." * 120 + "example", "data:;base64,!!!", "http://@x.example/"])
def test_odd_but_valid_uris_do_not_crash(value):
    assert uri(value).section("URI")


POLICY = SERVICE.config_as(Policy)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"[a-z]{2,6}://[^\s]{0,60}", fullmatch=True)))
def test_any_value_the_sample_check_accepts_parses_without_error(text):
    try:
        value = canonical("uri", text)
    except SampleError:
        return
    facts = parse_uri(value)
    assert all(f.lines for f in findings(facts, POLICY))
    assert ":" in facts.redacted


def test_a_file_handed_to_it_by_hand_is_not_a_crash():
    """`sluice service test uri FILE` ignores `accepts`: the sample is then the file's name."""
    run = run_service_once(SERVICE, b"\xff\xfe\x00", name="x.bin", file_type="unknown")
    assert run.result.error is None and run.related == []


def test_the_lists_are_config_and_a_bad_override_fails_at_load():
    custom = load_service("uri", config_overrides={"suspicious_tlds": ["example"], "suspicious_ports": [8080]})
    run = run_service_once(custom, b"http://shop.example:8080/", file_type="uri/http")
    assert {7, 9} <= run.heuristics
    with pytest.raises(ManifestError, match=r"service uri: .*suspicious_tlds"):
        load_service("uri", config_overrides={"suspicious_tlds": [".TOP"]})
    with pytest.raises(ManifestError, match=r"service uri: .*suspicious_ports"):
        load_service("uri", config_overrides={"suspicious_ports": [70000]})
