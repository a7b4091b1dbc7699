"""Network: domain and IP samples examined offline (no DNS, no WHOIS, no lookups at all).

A domain gets its parts (registrable domain, public suffix, subdomains, Unicode form) and the
findings of `names`; an IP its range; both the operator's deny list. Rule files arrive through the
SDK's rule mechanism, so an update replaces brands, deny list or model without a restart.
"""

from __future__ import annotations

import ipaddress

import msgspec

from services.network import lists
from services.network.addresses import special_purpose
from services.sdk import Heuristic, Request, Result, ResultKeyValueSection, ResultSection, ServiceBase
from services.sdk.lazy import lazy_import

# the public suffix list (0.2 s of CPU to build): built by the first domain sample, not by every process
names = lazy_import("services.network.names")

BRAND_SIGNATURES = ("brand_domain_in_subdomain", "brand_in_subdomain", "brand_in_name", "homoglyph", "typosquat", "phishing_words")
SCRIPT_SIGNATURES = ("mixed_script", "confusable_script")


class Settings(msgspec.Struct, frozen=True):
    suspicious_tlds: frozenset[str]
    max_subdomains: int = 3
    dga_min_length: int = 8
    dga_threshold: float = -3.6


class Network(ServiceBase):
    rules: lists.Rules | None = None

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.settings = self.config_as(Settings)

    def start(self) -> None:
        if self.rules is None:
            self.set_rules(lists.bundled_files())

    def load_rules(self, rules_paths: list[str]) -> None:
        self.rules = lists.load(rules_paths)  # one assignment: running tasks keep the set they began with

    def execute(self, request: Request) -> None:
        request.result = result = Result()
        rules = self.rules
        if rules is None:
            raise RuntimeError("no rules loaded: start() was not called")
        if request.sample_kind == "ip":
            self._ip(result, ipaddress.ip_address(request.sample), rules)
        elif request.sample_kind == "domain":
            self._domain(result, request.sample, rules)
        else:
            result.add_section(ResultSection("Not a domain or IP sample", f"sample kind {request.sample_kind!r}: nothing examined"))

    def _ip(self, result: Result, address: ipaddress.IPv4Address | ipaddress.IPv6Address, rules: lists.Rules) -> None:
        special = special_purpose(address)
        facts = ResultKeyValueSection("Address", {"address": address.compressed, "version": address.version,
                                                  "range": special[1] if special else "public"})
        facts.add_tag("network.static.ip", address.compressed)
        result.add_section(facts)
        if special:
            ResultSection("Special-purpose address", f"{address} is in {special[0] or 'a range'}: {special[1]}",
                          heuristic=8, parent=result)
        _deny(result, rules.deny.ip(address), str(address))

    def _domain(self, result: Result, host: str, rules: lists.Rules) -> None:
        facts = names.examine(host, rules)
        s = self.settings
        parts = ResultKeyValueSection("Domain", {"domain": host, "registrable": facts.registrable, "public suffix": facts.suffix,
                                                 "subdomains": ".".join(facts.subdomains) or "(none)"})
        if facts.display != host:
            parts.set_item("unicode", facts.display)
        parts.add_tag("network.static.domain", host)
        result.add_section(parts)
        _signed(result, "Impersonates a brand", 1, facts.findings, BRAND_SIGNATURES)
        if "xn--" in host:
            ResultSection("International (punycode) name", f"{host} reads as {facts.display}", heuristic=2, parent=result)
        _signed(result, "Mixed or confusable script", 3, facts.findings, SCRIPT_SIGNATURES)
        name = facts.registrable.split(".")[0]
        if len(name) >= s.dga_min_length and "xn--" not in name:
            likelihood = rules.model.score(name)
            if likelihood < s.dga_threshold:
                ResultSection("Algorithmically generated name",
                              f"{name!r}: {likelihood:.2f} per letter pair, below {s.dga_threshold:g}", heuristic=4, parent=result)
        tld = facts.suffix.rsplit(".", 1)[-1]
        if tld in s.suspicious_tlds:
            ResultSection("Suspicious TLD", f".{tld}", heuristic=5, parent=result)
        if len(facts.subdomains) > s.max_subdomains:
            ResultSection("Deep subdomains", f"{len(facts.subdomains)} labels before {facts.registrable}", heuristic=6, parent=result)
        _deny(result, rules.deny.domain(host), host)


def _signed(result: Result, title: str, heur_id: int, findings: dict[str, list[str]], signatures: tuple[str, ...]) -> None:
    hits = [sig for sig in signatures if sig in findings]
    if not hits:
        return
    heuristic = Heuristic(heur_id)
    section = ResultSection(title, parent=result)
    for sig in hits:
        heuristic.add_signature_id(sig)
        section.add_lines([f"{sig}: {line}" for line in dict.fromkeys(findings[sig])])
    section.set_heuristic(heuristic)


def _deny(result: Result, entry: lists.DenyEntry | None, value: str) -> None:
    if entry is not None:
        ResultSection("On the operator's deny list", f"{value}: listed as {entry.value}, {entry.category}: {entry.note}",
                      heuristic=Heuristic(7, signature=entry.category), parent=result)
