"""schemas.samples without a server: canonical forms, refusals, and the keys that tell samples apart."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.codec import BadMessage
from dispatcher.cache import cache_key
from dispatcher.dispatcher import check_submission
from schemas.messages import FileRef, SampleKind, ServiceRecord, Stage, Submission, SubmissionParams
from schemas.samples import (
    MAX_DOMAIN,
    MAX_URI,
    SampleError,
    canonical,
    kind_of_type,
    ref_key,
    sample_ref,
    sample_type,
    sample_value,
)


@pytest.mark.parametrize("kind, given_value, expected", [
    # international names become punycode (IDNA 2008 / UTS 46), in hosts of URIs too
    ("domain", "Bücher.Example", "xn--bcher-kva.example"),
    ("domain", "例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("uri", "https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/パス"),
    # case: scheme and host lowered, path, query and fragment kept
    ("uri", "HTTPS://A.Example/Path?Q=1#Frag", "https://a.example/Path?Q=1#Frag"),
    # trailing dots and surrounding whitespace
    ("domain", "a.example.", "a.example"),
    ("uri", "http://a.example./x", "http://a.example/x"),
    ("ip", " 192.0.2.1\n", "192.0.2.1"),
    # underscores, as DNS allows and malware hosts use
    ("domain", "_dmarc.mail_host.example", "_dmarc.mail_host.example"),
    ("uri", "http://bad_host.example/", "http://bad_host.example/"),
    # IPv6, bare, bracketed and as URI hosts (with ports)
    ("ip", "2001:DB8:0:0::1", "2001:db8::1"),
    ("ip", "[2001:db8::1]", "2001:db8::1"),
    ("uri", "http://[2001:DB8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
    ("uri", "http://192.0.2.1:80/", "http://192.0.2.1:80/"),
    # ports: kept when given, an empty one dropped
    ("uri", "https://a.example:8443/", "https://a.example:8443/"),
    ("uri", "https://a.example:/", "https://a.example/"),
    # userinfo kept as given (it is evidence), an empty one dropped
    ("uri", "ftp://User:Secret@A.Example/f", "ftp://User:Secret@a.example/f"),
    ("uri", "http://@a.example/", "http://a.example/"),
    # schemes that name no network host are kept as given, scheme lowered
    ("uri", "MAILTO:Someone@Example.com", "mailto:Someone@Example.com"),
])
def test_canonical_forms(kind: str, given_value: str, expected: str) -> None:
    assert canonical(kind, given_value) == expected
    assert canonical(kind, expected) == expected  # a fixed point


@pytest.mark.parametrize("kind, bad, says", [
    ("uri", "", "cannot be empty"),
    ("uri", "a.example/x", "has no scheme"),
    ("uri", "http://a.example:65536/", "Port out of range"),
    ("uri", "http://a.example:port/", "not a valid URI"),
    ("uri", "http://[2001:db8::1/", "not a valid URI"),
    ("uri", "http://user@/", "has no host"),
    ("uri", "http://a b.example/", "whitespace or control"),
    ("uri", "http://a.example/\x00", "control character"),
    ("uri", "http://a.example/\x1b[2J", "control character"),
    ("uri", "http://a.example/\u2028x", "control character"),
    ("uri", "http://a.example/\ud800", "lone surrogate"),
    ("uri", "http://-a.example/", "bad host"),
    ("uri", "https://" + "a" * MAX_URI + ".example/", "over the 8192-character limit"),
    ("domain", "", "cannot be empty"),
    ("domain", ".", "cannot be empty"),
    ("domain", "example", "no top-level domain"),
    ("domain", "a..example", "label ''"),
    ("domain", "-a.example", "inner hyphens"),
    ("domain", "a" * 64 + ".example", "inner hyphens"),  # a label is at most 63
    ("domain", ".".join(["a" * 63] * 4) + ".example", f"longer than {MAX_DOMAIN}"),
    ("domain", "☃.example", "not a valid domain name"),
    ("domain", "a\tb.example", "control character"),
    ("domain", "192.0.2.1", "is an IP address"),
    ("ip", "192.0.2", "not an IPv4 or IPv6 address"),
    ("ip", "192.0.2.256", "not an IPv4 or IPv6 address"),
    ("ip", "2001:db8::1::2", "not an IPv4 or IPv6 address"),
    ("ip", "fe80::1%eth0\x00", "control character"),
    ("ip", b"192.0.2.1", "must be given as text, not bytes"),
    ("url", "http://a.example/", "unknown sample kind"),
    ("file", "a.txt", "files are submitted as bytes"),
])
def test_malformed_values_are_refused_with_what_is_wrong(kind: str, bad, says: str) -> None:
    with pytest.raises(SampleError) as caught:
        canonical(kind, bad)
    assert says in str(caught.value)
    assert len(str(caught.value)) < 300  # a long value is cut short in the message
    assert "\x00" not in str(caught.value) and "\x1b" not in str(caught.value)  # shown escaped
    with pytest.raises(SampleError):
        sample_ref(kind, bad)


def test_types_and_kinds() -> None:
    assert [sample_type(SampleKind.URI, canonical("uri", u)) for u in ("http://a.example", "HTTPS://a.example", "ftp://a.example",
                                                                          "ws://a.example", "data:text/plain,x")] == [
        "uri/http", "uri/https", "uri/ftp", "uri/other", "uri/other"]
    assert sample_type(SampleKind.DOMAIN, "a.example") == "network/domain"
    assert sample_type(SampleKind.IP, "192.0.2.1") == "network/ip"
    assert [kind_of_type(t) for t in ("uri/other", "network/domain", "network/ip", "text/plain", "unknown")] == [
        SampleKind.URI, SampleKind.DOMAIN, SampleKind.IP, SampleKind.FILE, SampleKind.FILE]


def test_a_sample_and_a_file_with_the_same_bytes_have_different_keys() -> None:
    domain = sample_ref("domain", "a.example")
    file = FileRef(hashlib.sha256(b"a.example").hexdigest(), 9, "a.example", b"a.example")
    assert domain.sha256 == file.sha256 and domain.data == file.data
    assert ref_key(file) == file.sha256 and ref_key(domain) == f"domain:{domain.sha256}"
    assert ref_key(sample_ref("uri", "HTTP://A.example/")) == ref_key(sample_ref("uri", "http://a.example/"))
    record = ServiceRecord("svc", "1", Stage.CORE, ".*", "", 10.0, "c")
    keys = {cache_key(domain.sha256, record, SubmissionParams(), kind) for kind in SampleKind}
    assert len(keys) == len(SampleKind)
    assert all(":" not in key for key in keys)  # a KV key allows no ':'


def test_sample_value_trusts_only_what_sample_ref_makes() -> None:
    good = sample_ref("uri", "https://a.example/x")
    assert sample_value(good) == "https://a.example/x"
    refusals = {
        "inline": msgspec.structs.replace(good, data=None),
        "does not match": msgspec.structs.replace(good, size=good.size + 1),
        "not in canonical form": _ref(SampleKind.URI, b"HTTPS://a.example/x"),
        "UTF-8": _ref(SampleKind.DOMAIN, b"\xffa.example"),
        "has no scheme": _ref(SampleKind.URI, b"a.example/x"),
    }
    for says, ref in refusals.items():
        with pytest.raises(SampleError, match=says):
            sample_value(ref)


def _ref(kind: SampleKind, data: bytes) -> FileRef:
    return FileRef(hashlib.sha256(data).hexdigest(), len(data), "x", data, kind)


def test_check_submission_refuses_a_bad_sample_and_says_which() -> None:
    files = [FileRef("0" * 64, 1, "x", b"x"), sample_ref("ip", "192.0.2.1"), _ref(SampleKind.IP, b"300.0.0.1")]
    check_submission(Submission("sid", files[:2]))  # a file's inline bytes are the blob store's to check
    with pytest.raises(BadMessage, match=r"^sample 3: '300.0.0.1' is not an IPv4 or IPv6 address"):
        check_submission(Submission("sid", files))


# -- properties ----------------------------------------------------------------------------------

# Any character (lone surrogates too: hypothesis leaves them out by default), and often one that URI
# parsers, IDNA or terminals treat specially.
TRICKY = st.sampled_from(list("\ud800\udfff\x00\x1b\u2028\u200b\u202e %@:[]/\\#?.-_üß\uff0e"))
ANY_TEXT = st.lists(st.one_of(st.characters(exclude_categories=()), TRICKY), max_size=40).map("".join)  # st.text drops surrogates
HOSTS = st.sampled_from(["a.example", "Bücher.Example", "[2001:db8::1]", "192.0.2.1", "_x.example.", "xn--bcher-kva.example",
                         "", "-x-", "0x7f.1"])
URIS = st.tuples(  # mostly well formed up to the path, so the hostile part gets through to canonical's end
    st.sampled_from(["http", "https", "HTTPS", "ftp", "ws", "mailto", ""]),
    st.sampled_from(["://", "://", "://", ":", "//"]),
    st.one_of(st.just(""), st.just("User:Pw@"), ANY_TEXT.map(lambda text: text + "@")),
    HOSTS,
    st.sampled_from(["", "", ":80", ":", ":99999"]),
    st.sampled_from(["/", "/", "", "?", "#"]),
    ANY_TEXT,
).map("".join)
DOMAINS = st.lists(st.one_of(HOSTS, ANY_TEXT), min_size=1, max_size=4).map(".".join)
IPS = st.tuples(st.ip_addresses().map(str), st.sampled_from(["", "", "%", " "]), ANY_TEXT).map("".join)
SAMPLES = st.one_of(
    st.tuples(st.just("uri"), URIS), st.tuples(st.just("domain"), DOMAINS), st.tuples(st.just("ip"), IPS),
    st.tuples(st.sampled_from(["uri", "domain", "ip"]), ANY_TEXT),
)


@settings(max_examples=500, deadline=None)
@given(sample=SAMPLES)
def test_canonical_refuses_or_gives_a_fixed_point_that_travels(sample: tuple[str, str]) -> None:
    """Whatever a service or a user hands in: a SampleError, or a value that is its own canonical
    form, encodes as UTF-8, and comes back out of a sample ref unchanged."""
    kind, value = sample
    try:
        value = canonical(kind, value)
    except SampleError:
        return
    assert canonical(kind, value) == value
    ref = sample_ref(kind, value)
    assert sample_value(ref) == value and ref.name == value
    assert sample_type(SampleKind(kind), value).startswith(("uri/", "network/"))
