"""The network service: domain and IP samples judged offline, the issue's look-alikes above the
alert threshold, real brands' own domains left alone, and an operator's deny list delivered
through the rules updater to a running service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import pytest
import pytest_asyncio

from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from schemas.samples import KIND_TYPES
from schemas.messages import SampleKind
from schemas.taxonomy import matching_types
from services.network import lists
from services.network.names import skeleton
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.sdk.manifest import UpdateConfig, UpdateSource
from services.sdk.updater import Updater
from sluice.client import Client
from sluice.onebox import onebox

SERVICE = load_service("network")
SERVICE.start()


def judge(value: str, kind: str = "domain"):
    run = run_service_once(SERVICE, value.encode(), file_type=f"network/{kind}")
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def signatures(run, heur_id: int) -> set[str]:
    return {sig for s in run.result.sections if s.heuristic and s.heuristic.heur_id == heur_id for sig in s.heuristic.signatures}


def test_every_domain_and_ip_sample_is_taken():
    m = SERVICE.manifest
    assert set(matching_types(m.accepts, m.rejects, m.kinds)) == set(KIND_TYPES[SampleKind.DOMAIN]) | set(KIND_TYPES[SampleKind.IP])


def test_the_issue_look_alike_scores_at_least_500():
    run = judge("login-microsoftonline.com.secure-auth.top")
    assert run.result.score >= 500
    assert {"brand_domain_in_subdomain", "brand_in_subdomain", "phishing_words"} <= signatures(run, 1)
    assert 5 in run.heuristics  # .top
    facts = run.section("Domain").body
    assert '"registrable": "secure-auth.top"' in facts and '"subdomains": "login-microsoftonline.com"' in facts


@pytest.mark.parametrize(("domain", "heur_id", "signature"), [
    ("xn--pypal-4ve.com", 3, "mixed_script"),  # pаypal with a Cyrillic а
    ("paypa1-secure-login.com", 1, "homoglyph"),
    ("rnicrosoft.com", 1, "homoglyph"),  # rn reads as m
    ("micrsoft.com", 1, "typosquat"),
    ("microsoft-update.info", 1, "brand_in_name"),
    ("paypal.com.account-verify.example.net", 1, "brand_domain_in_subdomain"),
])
def test_look_alikes(domain, heur_id, signature):
    run = judge(domain)
    assert signature in signatures(run, heur_id)
    assert run.result.score >= 500


@pytest.mark.parametrize("domain", ["paypal.com", "www.paypal.com", "login.microsoftonline.com", "accounts.google.com",
                                    "bbc.co.uk", "someuser.github.io", "www.example.com", "stackoverflow.com", "wikipedia.org"])
def test_real_domains_are_not_flagged(domain):
    assert judge(domain).result.score < 300


def test_punycode_is_shown_in_unicode():
    run = judge("xn--bcher-kva.example")
    assert 2 in run.heuristics and json.loads(run.section("Domain").body)["unicode"] == "bücher.example"


def test_generated_names_are_told_from_chosen_ones():
    assert 4 in judge("xkqjzvbwpfhd.com").heuristics
    assert 4 in judge("qwrtzpxmvbn.net").heuristics
    for chosen in ("washingtonpost.com", "mountainview.org", "stackoverflow.com", "brightfield.co.uk"):
        assert 4 not in judge(chosen).heuristics, chosen


def test_bigram_model_prefers_language_to_noise():
    model = lists.load(lists.bundled_files()).model
    assert model.score("weatherforecast") > model.score("xqzvjkwplm") + 0.5


def test_deep_subdomains():
    assert 6 in judge("a.b.c.d.e.example.com").heuristics
    assert 6 not in judge("a.b.example.com").heuristics


@pytest.mark.parametrize(("ip", "what"), [
    ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("100.64.0.1", "carrier-grade NAT"), ("127.0.0.1", "loopback"),
    ("169.254.1.1", "link-local"), ("192.0.2.10", "documentation"), ("198.51.100.9", "documentation"), ("203.0.113.5", "documentation"),
    ("198.18.0.1", "benchmarking"), ("240.0.0.1", "reserved"), ("0.1.2.3", "bogon"), ("224.0.0.1", "multicast"),
    ("2001:db8::1", "documentation"), ("fd00::1", "unique local"), ("fe80::1", "link-local"),
])
def test_special_purpose_addresses(ip, what):
    run = judge(ip, "ip")
    assert 8 in run.heuristics and what in run.section("Special-purpose address").body
    assert run.result.score == 0


def test_a_public_address_gets_a_service_that_says_so():
    run = judge("8.8.8.8", "ip")
    assert '"range": "public"' in run.section("Address").body and run.heuristics == set()


def test_the_shipped_deny_list_marks_the_issue_address():
    run = judge("185.220.101.45", "ip")
    assert signatures(run, 7) == {"suspicious"}


def test_bad_rule_files_are_refused(tmp_path):
    bad = tmp_path / "x.deny"
    bad.write_text("evil.example terrible\n")
    with pytest.raises(ValueError, match="CATEGORY"):
        lists.load([str(bad)])
    brands = tmp_path / "x.brands"
    brands.write_text("ab\n")
    with pytest.raises(ValueError, match="brand"):
        lists.load([str(brands)])


def test_skeleton_reads_look_alike_characters():
    assert skeleton("paypa1") == "paypal" and skeleton("rnicrosoft") == "microsoft" and skeleton("g00gle") == "google"


@pytest_asyncio.fixture(loop_scope="session")
async def stores(nats_url: str, prefix: str) -> AsyncIterator:
    nc = await connect(nats_url)
    try:
        js, names = nc.jetstream(), Names(prefix)
        yield js, names, await provision(js, names)
    finally:
        await close(nc)


async def test_an_operator_deny_list_reaches_a_running_service_through_the_updater(nats_url, prefix, stores, tmp_path):
    js, names, provisioned = stores
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "ops.deny").write_text("c2.badcorp.example malicious seen in incident 42\n203.0.113.66 malicious beacon target\n")
    config = UpdateConfig([UpdateSource(name="ops", uri=folder.as_uri(), pattern=r".*\.deny")])
    async with onebox(nats_url, prefix, ["network"]) as box, await Client.connect(nats_url, prefix) as client:
        before = await client.wait(await client.submit_sample("domain", "www.c2.badcorp.example"), timeout=30)
        assert before.score < 500
        outcome = await Updater(load_service("network"), js, names, provisioned, config=config).update_once()
        assert outcome.published and outcome.files == ["ops.ops.deny"]
        with anyio.fail_after(30):
            while not box.dispatcher.directory.services["network"].tool_version.endswith(outcome.version):
                await box.dispatcher.directory.changed.wait()
        domain = await client.wait(await client.submit_sample("domain", "www.c2.badcorp.example"), timeout=30)
        address = await client.wait(await client.submit_sample("ip", "203.0.113.66"), timeout=30)
        assert domain.score >= 1000 and address.score >= 1000
        # the bundled brands still apply: an update of one kind of file keeps the others
        look_alike = await client.wait(await client.submit_sample("domain", "paypa1-secure-login.com"), timeout=30)
        assert look_alike.score >= 500
