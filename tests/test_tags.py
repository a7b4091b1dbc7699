"""The tag taxonomy (schemas/tagnames.yml) and the value checks in schemas/tags.py."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time

import ppdeep
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.tags import KINDS, MAX_VALUE, WILDCARD, known_tags, parse, tag_kind, tag_problem, taxonomy

MD5, SHA1, SHA256 = (hashlib.new(alg, b"sluice").hexdigest() for alg in ("md5", "sha1", "sha256"))
SSDEEP = ppdeep.hash(b"The quick brown fox jumps over the lazy dog. " * 40)


def ok(name: str, value: str) -> bool:
    return tag_problem(name, value) is None


# -- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,value", [
    ("network.static.domain", "updates.example.com"),
    ("network.dynamic.domain", "c2.example.net"),
    ("network.static.ip", "192.0.2.53"),
    ("network.static.uri", "https://www.example.com/docs?lang=en"),
    ("network.email.address", "Jane.Doe@example.co.uk"),
    ("network.port", "443"),
    ("network.tls.ja3_hash", MD5),
    ("file.pe.imports.imphash", MD5),
    ("file.pe.imports.fuzzy", SSDEEP),
    ("file.pe.sections.name", ".text"),
    ("file.pe.linker.timestamp", "1700000000"),
    ("file.pe.exports.function_name", "DllRegisterServer"),
    ("file.pe.resources.name", "RT_MANIFEST"),
    ("file.pe.pdb_filename", r"C:\build\Release\tool.pdb"),
    ("file.rule.yara", "Suspicious_PowerShell_Download"),
    ("file.ole.macro.sha256", SHA256),
    ("file.ole.macro.suspicious_string", "CreateObject"),
    ("file.pdf.javascript.sha1", SHA1),
    ("file.string.extracted", "cmd.exe /c whoami"),
    ("file.name.extracted", "payload.bin"),
    ("code.sha256", SHA256),
    ("attribution.family", "EMOTET"),
    ("attribution.actor", "APT28"),
    ("av.virus_name", "Trojan.Generic"),
    ("technique.obfuscation", "base64"),
    ("technique.macro", "AutoOpen"),
    ("info.password", "infected"),
    ("info.phone_number", "+1 613-555-0199"),
    ("dynamic.operating_system.platform", "Windows"),
    ("file.swf.header.frame.count", "12"),
    ("vector", "email"),
])
def test_real_assemblyline_tags_are_kept(name, value):
    assert tag_problem(name, value) is None


@pytest.mark.parametrize("name,suggestion", [
    ("network.static.domian", "network.static.domain"),
    ("file.pe.imports.imphsh", "file.pe.imports.imphash"),
    ("file.ole.macro.suspicious_strings", "file.ole.macro.suspicious_string"),  # AL's spelling
    ("network.staticdomain", "network.static.domain"),
    ("file.rule.Yara", "file.rule.*"),
])
def test_an_unknown_name_is_refused_with_the_closest_known_names(name, suggestion):
    problem = tag_problem(name, "example.com")
    assert problem is not None
    assert repr(name) in problem and "did you mean" in problem
    assert suggestion in problem.split("did you mean", 1)[1]


def test_a_name_unlike_any_other_gets_no_suggestion():
    problem = tag_problem("zzzz", "x")
    assert problem is not None and "unknown tag 'zzzz'" in problem and "did you mean" not in problem


def test_a_huge_unknown_name_is_refused_quickly_and_shortened_in_the_message():
    started = time.perf_counter()
    problem = tag_problem("network.static." + "x" * 100_000, "x")
    assert time.perf_counter() - started < 1
    assert problem is not None and len(problem) < 300


@pytest.mark.parametrize("name,kind", [
    ("file.rule.yara", "text"),
    ("file.rule.sigma", "text"),
    ("file.rule.*", None),  # the pattern itself is not a tag
    ("file.rule", None),
    ("file.rule.yara.extra", None),
    ("file.rule.", None),
    ("file.rule.2x", None),
    ("network.static.domain", "domain"),
    ("network.port", "port"),
    ("Network.Static.Domain", None),
    ("", None),
])
def test_tag_kind_resolves_exact_names_and_the_file_rule_mapping(name, kind):
    assert tag_kind(name) == kind


# -- values, kind by kind -----------------------------------------------------------------------
GOOD_AND_BAD: dict[str, tuple[list[str], list[str]]] = {
    "text": (["hello", "multi\nline ✓", "x" * MAX_VALUE], ["nul\x00byte", "x" * (MAX_VALUE + 1)]),
    "domain": (["example.com", "a.b.example.co.uk", "xn--bcher-kva.example", "example.xn--p1ai", "a.bc"],
               ["Example.com", "example", "bücher.de", "-a.com", "a..com", "example.com.", "example.com\n",
                "exa_mple.com", "a" * 250 + ".com", "not a domain"]),
    "ip": (["10.0.0.1", "255.255.255.255", "0.0.0.0", "2001:db8::1", "::1"],
           ["999.1.1.1", "010.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.4\n", "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1", "example.com", ":::"]),
    "uri": (["http://example.com/x", "https://user@example.com:8443/a?b=c#d", "ftp://192.0.2.1/pub",
             "http://[2001:db8::1]/", "mailto:someone@example.com", "hxxp://evil.example/"],
            ["http://exa mple.com", "http://example.com/\x01", "http://example.com/\n", "example.com",
             "http:", "http://", "http:///x", "file:///etc/passwd", "1http://example.com",
             "http://example.com:99999/", "http://example.com:port/", "http://[::1/"]),
    "uri_path": (["/", "/index.php?id=1", "?q=1", "#top"], ["index.php", "/a b", "/a\x00"]),
    "unc_path": ([r"\\server\share", r"\\192.0.2.1\c$\Windows\x.exe", r"\\host\share\with space\f"],
                 [r"\server\share", r"\\server", "\\\\server\\\\", "//server/share", r"\\ser ver\share",
                  "\\\\server\\sh\x01are"]),
    "email": (["a@example.com", "Jane.Doe@example.co.uk", "x+tag@xn--bcher-kva.example"],
              ["nope", "a@b", "@example.com", "a b@example.com", "a@example.com\n", "a@@example.com",
               "x@" + "a." * 2000 + "1"]),
    "md5": ([MD5], [MD5.upper(), MD5[:-1], MD5 + "0", "g" * 32, SHA1]),
    "sha1": ([SHA1], [SHA1.upper(), SHA1[:-1], MD5, SHA256]),
    "sha256": ([SHA256], [SHA256.upper(), SHA256[:-1], SHA256 + "a", SHA1]),
    "ssdeep": ([SSDEEP, "3:abc:def", "96:ab+/:x"],
               ["3::", "abc:def:ghi", "3:abc", "3:ab c:de", '3:abc:def,"file"', "3:abc:def\n"]),
    "ja4": (["t13d1516h2_8daaf6152771_b0da82dd1658", "q13d0310h3_55b375c5d22e_cd85d2d88918"],
            ["t13d1516h2_8daaf6152771", "x13d1516h2_8daaf6152771_b0da82dd1658",
             "t13d1516h2_8DAAF6152771_b0da82dd1658", "t130200_1301_234ea6891581"]),
    "ja4s": (["t130200_1301_234ea6891581"],
             ["t13d1516h2_8daaf6152771_b0da82dd1658", "t130200_130_234ea6891581"]),
    "mac": (["00:1a:2b:3c:4d:5e", "00-1a-2b-3c-4d-5e"],
            ["00:1A:2B:3C:4D:5E", "00:1a-2b:3c:4d:5e", "00:1a:2b:3c:4d", "001a2b3c4d5e"]),
    "phone": (["+1 613-555-0199", "(613) 555-0199", "613.555.0199", "+44 20 7946 0958", "5550199"],
              ["12345", "call me", "+1 613 555 0199 ext 2", "1" * 16, "613-555-0199\n"]),
    "platform": (["Windows", "Linux", "MacOS", "Windows 10"], ["Windows\n", "win/dows", "x" * 65, " Linux"]),
    "processor": (["x86", "x86_64", "arm64"], ["x86;rm", " x86", "x86\x00"]),
    "integer": (["0", "42", "-7", "2147483647", "-2147483648"],
                ["2147483648", "-2147483649", "042", "+1", "-0", "1.5", "١٢", "1_000", " 1", "0x10"]),
    "port": (["0", "80", "65535"], ["65536", "-1", "080", "http", "1e3", "٨٠"]),
}


def _name_of_kind(kind: str) -> str:
    return next(name for name, k in sorted(taxonomy().exact.items()) if k == kind)


def test_every_kind_has_good_and_bad_examples_here():
    assert set(GOOD_AND_BAD) == set(KINDS)


@pytest.mark.parametrize("kind,value,expected", [
    (kind, value, expected)
    for kind, (goods, bads) in GOOD_AND_BAD.items()
    for expected, values in ((True, goods), (False, bads))
    for value in values
])
def test_values_are_checked_by_the_kind_of_their_name(kind, value, expected):
    name = _name_of_kind(kind)
    assert ok(name, value) == expected, (name, value, tag_problem(name, value))


def test_a_bad_value_is_named_with_the_tag_and_the_form_expected():
    problem = tag_problem("file.pe.imports.imphash", "ABC" * 100)
    assert problem is not None
    assert problem.startswith("tag file.pe.imports.imphash: ")
    assert "32 lowercase hex digits" in problem
    assert "ABC" * 26 in problem and "ABC" * 30 not in problem  # the value is shortened


@pytest.mark.parametrize("name", ["file.string.extracted", "network.static.domain", "network.port"])
def test_an_empty_value_is_refused_whatever_the_kind(name):
    assert tag_problem(name, "") == f"tag {name}: value must be 1..{MAX_VALUE} characters, not 0"


@given(st.tuples(*[st.integers(0, 300)] * 4), st.booleans())
def test_the_ipv4_fast_path_agrees_with_ipaddress(octets, pad):
    value = ".".join(f"{o:03d}" if pad else str(o) for o in octets)
    try:
        expected = str(ipaddress.ip_address(value)) == value
    except ValueError:
        expected = False
    assert ok("network.static.ip", value) == expected


# -- the data file ------------------------------------------------------------------------------
def test_every_name_in_tagnames_yml_is_well_formed_and_every_kind_has_a_check():
    token = r"[a-z][a-z0-9_]*"
    for name in known_tags():
        assert re.fullmatch(rf"{token}(\.{token})*(\.\*)?", name), name
    used = set(taxonomy().exact.values()) | set(taxonomy().wildcard.values())
    assert used <= set(KINDS)
    assert set(KINDS) <= used, "a kind no tag uses is dead code"
    assert len(known_tags()) > 200  # the whole taxonomy, not a sample of it
    assert {name.split(".")[0] for name in known_tags()} == {
        "attribution", "av", "cert", "code", "dynamic", "info", "file", "network", "source",
        "technique", "vector"}


def test_every_exact_name_is_a_tag_and_the_wildcard_is_not():
    for name in known_tags():
        if name.endswith("." + WILDCARD):
            assert tag_kind(name) is None
            assert tag_kind(name[:-1] + "anything") is not None
        else:
            assert tag_kind(name) is not None


@pytest.mark.parametrize("raw,error", [
    ({"Network.Static.Domain": "domain"}, "not a dotted name"),
    ({"network..domain": "domain"}, "not a dotted name"),
    ({"file.*.x": "text"}, "not a dotted name"),
    ({7: "text"}, "not a dotted name"),
    ({"network.static.domain": "hostname"}, "unknown kind 'hostname'"),
    (["network.static.domain"], "expected a mapping"),
])
def test_a_malformed_tagnames_file_fails_to_load_naming_the_problem(raw, error):
    with pytest.raises(ValueError, match=re.escape(error)) as info:
        parse(raw, "broken.yml")
    assert str(info.value).startswith("broken.yml")


def test_the_taxonomy_is_loaded_once():
    assert taxonomy() is taxonomy()


def test_checking_is_fast_enough_to_run_on_every_tag():
    tags = [("network.static.domain", "www.example.com"), ("network.static.ip", "192.0.2.1"),
            ("network.static.uri", "https://www.example.com/a?b=c"), ("file.string.extracted", "hello"),
            ("file.pe.imports.imphash", MD5), ("file.rule.yara", "Some_Rule"), ("network.static.domian", "x")]
    started = time.perf_counter()
    for i in range(100_000):
        tag_problem(*tags[i % len(tags)])
    assert time.perf_counter() - started < 2  # measured ~0.1 s; reloading the YAML per call takes minutes


# -- never a crash ------------------------------------------------------------------------------
@given(st.text(), st.text())
def test_tag_problem_never_raises_on_arbitrary_text(name, value):
    assert isinstance(tag_problem(name, value), (str, type(None)))


@given(st.sampled_from(sorted(known_tags())), st.text())
def test_tag_problem_never_raises_on_arbitrary_values_of_known_names(name, value):
    name = name.replace(WILDCARD, "yara")
    problem = tag_problem(name, value)
    assert problem is None or (isinstance(problem, str) and problem.startswith(f"tag {name}: "))
