"""URIs, domains and IPs as samples, end to end against a real nats-server: routing by kind,
relations in the tree, cycles, limits, and malformed values at every entry point."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import anyio
import pytest
from nats.js.api import DeliverPolicy
from rich.console import Console

from bus.codec import decode, encode
from schemas.messages import (
    DeadLetter,
    ErrorType,
    FileNode,
    FileRef,
    Relation,
    SampleKind,
    Submission,
    SubmissionParams,
    Summary,
)
from schemas.samples import sample_ref
from services.sdk.harness import run_service_once_async
from sluice.cli import main
from sluice.client import Client, SubmitError
from sluice.onebox import onebox
from sluice.render import summary_tree, to_json
from samplesvcs import Smuggler, relater
from svcs import Echo, make
from test_cli import sluice

pytestmark = pytest.mark.timeout(90)

URI = "https://a.example/x"
DOMAIN = "a.example"
IP = "192.0.2.1"
LOGIN = "http://192.0.2.1/login"

MALFORMED = [  # (kind, value, what the refusal says)
    ("uri", "example.com/payload", "has no scheme"),
    ("uri", "http://example.com:99999/", "Port out of range"),
    ("uri", "http:///nohost", "has no host"),
    ("uri", "http://x.example/\x1b[31mred", "control character"),
    ("domain", "-bad-.example", "label"),
    ("domain", "192.0.2.1", "is an IP address"),
    ("domain", "localhost", "no top-level domain"),
    ("ip", "999.1.1.1", "not an IPv4 or IPv6 address"),
    ("ip", "a.example", "not an IPv4 or IPv6 address"),
    ("url", "https://a.example/", "unknown sample kind"),
    ("file", "a.txt", "files are submitted as bytes"),
]


async def scan(nats_url: str, prefix: str, services, samples: Iterable[tuple[str, str]] = (), *,
               files: dict[str, bytes] | None = None, params: SubmissionParams | None = None) -> Summary:
    """Run a one-box mesh with `services`, submit `samples` (or `files`) as one submission, return its summary."""
    async with onebox(nats_url, prefix, services), await Client.connect(nats_url, prefix) as client:
        if files:
            sid = await client.submit_bytes(files.items(), params)
        else:
            sid = await client.submit_samples(samples, params)
        return await client.wait(sid, timeout=60)


def by_relation(node: FileNode) -> dict[Relation, list[FileNode]]:
    found: dict[Relation, list[FileNode]] = {}
    for child in node.children:
        found.setdefault(child.relation, []).append(child)
    return found


def shape(node: FileNode) -> tuple[str, str, str, bool]:
    return node.kind, node.type, node.name, node.duplicate


# -- routing by kind ------------------------------------------------------------------------------

async def test_each_kind_routes_by_its_type_to_the_services_that_take_it(nats_url, prefix):
    rel = relater()
    echo = make(Echo, "echo")  # accepts '.*' and says nothing of kinds: files only
    samples = [("uri", "HTTPS://A.Example./x"), ("domain", "Bücher.example."), ("ip", "2001:DB8::1"),
               ("uri", URI)]  # the first one again, spelt canonically: the same sample
    summary = await scan(nats_url, prefix, [rel, echo, "characterize"], samples)
    assert [shape(n) for n in summary.files] == [
        ("uri", "uri/https", URI, False),
        ("uri", "uri/https", URI, True),  # a duplicate stays beside the root it repeats
        ("domain", "network/domain", "xn--bcher-kva.example", False),
        ("ip", "network/ip", "2001:db8::1", False),
    ]
    for node in summary.files[:1] + summary.files[2:]:
        assert [r.service for r in node.results] == ["relater"] and not node.errors
        assert node.relation == Relation.ROOT and node.depth == 0
    assert sorted(rel.seen) == sorted([("uri", "uri/https", URI), ("domain", "network/domain", "xn--bcher-kva.example"),
                                       ("ip", "network/ip", "2001:db8::1")])
    assert echo.executed == []  # a '.*' file service never sees a URI, domain or IP
    assert summary.file_count == 3 and summary.errors == 0


async def test_files_still_go_to_file_services_only(nats_url, prefix):
    rel = relater()
    echo = make(Echo, "echo")
    summary = await scan(nats_url, prefix, [rel, echo, "characterize"], files={"note.txt": b"plain text\n"})
    [node] = summary.files
    assert node.kind == SampleKind.FILE and node.type == "text/plain"
    assert sorted(r.service for r in node.results) == ["characterize", "echo"]
    assert rel.seen == []


async def test_a_sample_resubmitted_is_answered_from_the_cache(nats_url, prefix):
    rel = relater()
    async with onebox(nats_url, prefix, [rel]), await Client.connect(nats_url, prefix) as client:
        first, second = [await client.wait(await client.submit_sample("domain", DOMAIN), timeout=30) for _ in range(2)]
    assert [r.cached for r in first.files[0].results] == [False]
    assert [r.cached for r in second.files[0].results] == [True] and second.cached_results == 1
    assert rel.seen == [("domain", "network/domain", DOMAIN)]  # ran once


# -- relations ------------------------------------------------------------------------------------

async def test_every_relation_in_the_tree_and_a_cycle_ends(nats_url, prefix):
    """A URI resolves a domain and drops a file; the domain contacts an IP and retrieves the same
    URI again (a cycle: a duplicate stub); the IP retrieves another URI."""
    rel = relater(**{URI: [["domain", DOMAIN], ["extract", "payload.txt"]], DOMAIN: [["ip", IP], ["uri", URI]],
                     IP: [["uri", LOGIN]]})
    echo = make(Echo, "echo")
    summary = await scan(nats_url, prefix, [rel, echo], [("uri", URI)])
    [root] = summary.files
    assert shape(root) == ("uri", "uri/https", URI, False)
    first = by_relation(root)
    assert set(first) == {Relation.RESOLVED_BY, Relation.DROPPED_BY}
    [domain], [payload] = first[Relation.RESOLVED_BY], first[Relation.DROPPED_BY]
    assert shape(domain) == ("domain", "network/domain", DOMAIN, False) and domain.depth == 1
    assert shape(payload) == ("file", "text/plain", "payload.txt", False)
    assert [r.service for r in payload.results] == ["echo"]
    second = by_relation(domain)
    [ip], [again] = second[Relation.CONTACTED_BY], second[Relation.RETRIEVED_BY]
    assert shape(ip) == ("ip", "network/ip", IP, False) and ip.depth == 2
    assert shape(again) == ("uri", "uri/https", URI, True) and again.depth == 2  # the cycle ends here
    assert again.results == [] and again.children == []
    [login] = ip.children
    assert (login.relation, *shape(login)) == (Relation.RETRIEVED_BY, "uri", "uri/http", LOGIN, False)
    assert [value for _, _, value in rel.seen].count(URI) == 1  # analysed once
    assert summary.file_count == 5 and summary.errors == 0


async def test_a_domain_and_a_text_file_with_the_same_bytes_are_two_samples(nats_url, prefix):
    rel = relater(kinds=["file", "domain"], **{"site.txt": [["domain", DOMAIN]]})
    summary = await scan(nats_url, prefix, [rel], files={"site.txt": DOMAIN.encode()})
    [root] = summary.files
    [child] = root.children
    assert child.sha256 == root.sha256  # same bytes...
    assert (child.relation, *shape(child)) == (Relation.RESOLVED_BY, "domain", "network/domain", DOMAIN, False)
    assert [r.service for r in child.results] == ["relater"]  # ...analysed as a domain, not a duplicate
    assert ("domain", "network/domain", DOMAIN) in rel.seen and ("file", "text/plain", "site.txt") in rel.seen


async def test_depth_limit_applies_to_related_samples(nats_url, prefix):
    rel = relater(**{URI: [["domain", DOMAIN]], DOMAIN: [["ip", IP]]})
    summary = await scan(nats_url, prefix, [rel], [("uri", URI)], params=SubmissionParams(max_depth=1))
    [domain] = summary.files[0].children
    assert domain.children == []
    [error] = domain.errors
    assert error.type == ErrorType.MAX_DEPTH and IP in error.message
    assert ("ip", "network/ip", IP) not in rel.seen


async def test_files_per_tree_limit_applies_to_related_samples(nats_url, prefix):
    domains = [f"d{i}.example" for i in range(4)]
    rel = relater(**{URI: [["domain", d] for d in domains]})
    summary = await scan(nats_url, prefix, [rel], [("uri", URI)], params=SubmissionParams(max_files=2))
    [root] = summary.files
    assert len(root.children) == 1 and root.children[0].name in domains
    [error] = root.errors
    assert error.type == ErrorType.MAX_FILES and error.message.startswith("3 child sample(s) not analysed")


async def test_children_per_sample_limit_applies_to_related_samples(nats_url, prefix):
    rel = relater(**{URI: [["domain", f"d{i}.example"] for i in range(3)] + [["ip", IP]]})
    summary = await scan(nats_url, prefix, [rel], [("uri", URI)], params=SubmissionParams(max_children=2))
    [root] = summary.files
    assert sorted(c.name for c in root.children) == ["d0.example", "d1.example"]
    notes = [s.title for r in root.results for s in r.sections]
    assert "Extraction limit reached" in notes  # the service was cut off at the limit, and said so


# -- malformed values at every entry point ------------------------------------------------------

async def test_client_refuses_malformed_samples_and_sends_nothing(nats_url, prefix):
    async with await Client.connect(nats_url, prefix) as client:
        before = (await client.js.stream_info(client.names.submit_stream)).state.messages
        for kind, value, says in MALFORMED:
            with pytest.raises(SubmitError, match=says):
                await client.submit_sample(kind, value)
        with pytest.raises(SubmitError, match="has no scheme"):  # one bad sample sinks the whole submission
            await client.submit_samples([("domain", DOMAIN), ("uri", "no-scheme")])
        with pytest.raises(SubmitError, match="nothing to submit"):
            await client.submit_samples([])
        assert (await client.js.stream_info(client.names.submit_stream)).state.messages == before


def hand_made(kind: SampleKind, data: bytes | None, sha_of: bytes | None = None) -> FileRef:
    """A sample ref as a hand-written publisher might make it, bypassing every check."""
    body = data if sha_of is None else sha_of
    return FileRef(hashlib.sha256(body or b"").hexdigest(), len(body or b""), "hand-made", data, kind)


async def test_hand_published_malformed_samples_are_dead_lettered_with_the_reason(nats_url, prefix):
    cases = {  # sid -> (the bad sample, what the dead letter says)
        "noinline": (hand_made(SampleKind.URI, None, sha_of=URI.encode()), "must carry its value inline"),
        "mismatch": (hand_made(SampleKind.DOMAIN, DOMAIN.encode(), sha_of=b"other.example"), "does not match its sha256"),
        "malformed": (hand_made(SampleKind.IP, b"999.1.1.1"), "not an IPv4 or IPv6 address"),
        "notcanonical": (hand_made(SampleKind.URI, b"HTTPS://A.EXAMPLE/x"), "not in canonical form"),
        "notutf8": (hand_made(SampleKind.DOMAIN, b"\xff\xfe.example"), "must be UTF-8 text"),
    }
    async with onebox(nats_url, prefix, [relater()]) as box, await Client.connect(nats_url, prefix) as client:
        letters: dict[str, str] = {}
        arrived = anyio.Event()

        async def on_letter(msg) -> None:
            letter = decode(msg.data, DeadLetter)
            letters[decode(letter.data, Submission).sid] = letter.reason
            if len(letters) == len(cases):
                arrived.set()

        sub = await client.js.subscribe(f"{prefix}.dlq.>", cb=on_letter, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        good = sample_ref("domain", DOMAIN)
        for sid, (bad, _) in cases.items():  # a good sample beside the bad one does not save it
            await client.js.publish(box.names.submit_root, encode(Submission(sid, [good, bad])))
        with anyio.fail_after(20):
            await arrived.wait()
        await sub.unsubscribe()
        for sid, (_, says) in cases.items():
            assert letters[sid].startswith("sample 2: ") and says in letters[sid], (sid, letters[sid])
        summary = await client.wait(await client.submit_sample("ip", IP), timeout=20)  # nothing is stuck
        assert summary.files[0].results[0].service == "relater"
        for sid in cases:
            assert await client.result(sid) is None


async def test_a_malformed_related_sample_is_bad_input_on_its_node_not_a_crash(nats_url, prefix):
    smuggler = make(Smuggler, "smuggler")
    summary = await scan(nats_url, prefix, [smuggler], files={"page.html.txt": b"see the link\n"})
    [root] = summary.files
    [child] = root.children
    assert (child.kind, child.relation, child.type) == (SampleKind.URI, Relation.RETRIEVED_BY, "unknown")
    [error] = child.errors
    assert (error.service, error.type) == ("dispatcher", ErrorType.BAD_INPUT) and "has no scheme" in error.message
    assert child.results == []


async def test_add_related_refuses_malformed_values_and_relates_nothing():
    links = [[kind, value] for kind, value, _ in MALFORMED] + [["domain", DOMAIN], ["domain", "A.EXAMPLE."]]
    service = relater(**{URI: links})
    run = await run_service_once_async(service, URI.encode(), file_type="uri/https")
    assert service.answers == [False] * len(MALFORMED) + [True, True]
    [related] = run.related  # the second spelling of the domain is the same sample
    assert (related.ref.kind, related.ref.name, related.relation) == (SampleKind.DOMAIN, DOMAIN, Relation.RESOLVED_BY)
    assert related.ref.data == DOMAIN.encode()


# -- the command line -----------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, says", [
    ("--uri", "example.com/payload", "has no scheme"),
    ("--uri", "http://x.example/\x1b]0;title\x07", "control character"),
    ("--domain", "-bad-.example", "label"),
    ("--ip", "999.1.1.1", "not an IPv4 or IPv6 address"),
])
@pytest.mark.parametrize("command", ["submit", "scan"])
def test_cli_refuses_malformed_values_before_anything_starts(command, flag, value, says,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "--nats", "nats://127.0.0.1:1", "--uri", URI, f"{flag}={value}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and says in err
    assert "\x1b" not in err and "\x07" not in err  # the hostile value is shown escaped


@pytest.mark.parametrize("command", ["submit", "scan"])
def test_cli_needs_something_to_submit(command, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--nats", "nats://127.0.0.1:1"]) == 2
    assert "nothing to submit" in capsys.readouterr().err


def test_cli_submit_prints_what_each_id_is(nats_url, prefix, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["submit", "--nats", nats_url, "--prefix", prefix, "--json", "--domain", "Bücher.example", "--uri", URI, "--ip", IP]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["kind"], d["value"]) for d in lines] == [("domain", "xn--bcher-kva.example"), ("uri", URI), ("ip", IP)]
    assert len({d["sid"] for d in lines}) == 3


def test_cli_scan_samples_beside_a_file(tmp_path: Path) -> None:
    """The built-in '.*' file service (characterize, selected alone) runs on the file, never on the samples."""
    (tmp_path / "notes.txt").write_text("hello\n")
    proc = sluice("scan", "--json", "--data-dir", str(tmp_path / "data"), "--service", "characterize", "notes.txt",
                  "--uri", "HTTPS://Example.com/a", "--domain", "example.com", "--ip", IP, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    nodes = [doc["files"][0] for doc in docs]
    assert [(n["kind"], n["type"], n["name"]) for n in nodes] == [
        ("file", "text/plain", "notes.txt"), ("uri", "uri/https", "https://example.com/a"),
        ("domain", "network/domain", "example.com"), ("ip", "network/ip", IP)]
    assert [r["service"] for r in nodes[0]["results"]] == ["characterize"]
    assert all(n["results"] == [] and n["errors"] == [] for n in nodes[1:])


def test_tree_shows_relation_kind_and_type_escaped() -> None:
    hostile = "http://x.example/\x1b[2J"
    child = FileNode("b" * 64, URI, "uri/https", len(URI), 1, relation=Relation.RETRIEVED_BY, kind=SampleKind.URI)
    odd = FileNode("c" * 64, hostile, "uri/http", len(hostile), 1, relation=Relation.RETRIEVED_BY, kind=SampleKind.URI)
    bad = FileNode("d" * 64, "not-a-uri", "unknown", 9, 1, relation=Relation.RETRIEVED_BY, kind=SampleKind.URI)
    root = FileNode("a" * 64, DOMAIN, "network/domain", len(DOMAIN), 0, kind=SampleKind.DOMAIN, children=[child, odd, bad])
    summary = Summary("sid1", 0, "safe", [root], file_count=4)
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(summary_tree(summary))
    out = buffer.getvalue()
    assert f"{DOMAIN}  network/domain  0" in out
    assert f"retrieved-by  {URI}  uri/https  0\n" in out  # the type says the kind...
    assert "retrieved-by  not-a-uri  unknown  0  (uri)\n" in out  # ...and where it cannot, the kind is shown
    assert "\x1b[2J" not in out and "\\x1b[2J" in out
    doc = json.loads(to_json(summary))
    assert doc["files"][0]["kind"] == "domain"
    assert [(c["kind"], c["relation"]) for c in doc["files"][0]["children"]] == [("uri", "retrieved-by")] * 3


DNS_MANIFEST = """\
name: dns
version: "1.0"
kinds: [domain]
heuristics:
  - {heur_id: 1, name: Sinkholed, score: 100}
"""
DNS_SERVICE = """\
from services.sdk import Result, ResultSection, ServiceBase


class Dns(ServiceBase):
    def execute(self, request):
        request.add_related("ip", "192.0.2.7")
        request.result = Result([ResultSection(f"{request.sample} resolves to 192.0.2.7", heuristic=1)])
"""


def test_service_test_runs_a_service_on_a_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "dns"
    folder.mkdir()
    (folder / "service_manifest.yml").write_text(DNS_MANIFEST)
    (folder / "service.py").write_text(DNS_SERVICE)
    assert main(["service", "test", str(folder), "--domain", "Bücher.Example", "--json"]) == 0
    node = json.loads(capsys.readouterr().out)
    assert (node["kind"], node["type"], node["name"], node["score"]) == ("domain", "network/domain", "xn--bcher-kva.example", 100)
    assert [(c["relation"], c["kind"], c["type"], c["name"]) for c in node["children"]] == [
        ("contacted-by", "ip", "network/ip", "192.0.2.7")]
    assert main(["service", "test", str(folder), "--uri", URI]) == 2
    assert "dns takes no uri samples (its manifest's kinds: [domain])" in capsys.readouterr().err
    for argv in ([], ["--domain", DOMAIN, "--domain", "b.example"], [str(folder / "service.py"), "--domain", DOMAIN]):
        assert main(["service", "test", str(folder), *argv]) == 2
        assert "takes one FILE, or one --uri, --domain or --ip VALUE" in capsys.readouterr().err


# -- the built-ins together -----------------------------------------------------------------------

async def test_built_ins_relate_the_urls_in_a_file_and_their_hosts(nats_url, prefix):
    """iocs, asked to, relates the URLs it finds in a text file (retrieved-by); uri takes each
    apart and relates its host: a domain (resolved-by), or the IP address it names
    (contacted-by). Not asked, iocs relates nothing."""
    text = b"beacon to http://203.0.113.9:4444/stage2.exe then https://cdn.example.org/lib.js\n"
    asked = SubmissionParams(service_params={"iocs": {"relate_uris": True}})
    summary = await scan(nats_url, prefix, ["iocs", "uri"], files={"note.txt": text}, params=asked)
    [root] = summary.files
    uris = {node.name: node for node in root.children}
    assert set(uris) == {"http://203.0.113.9:4444/stage2.exe", "https://cdn.example.org/lib.js"}
    for node in uris.values():
        assert (node.relation, node.kind) == (Relation.RETRIEVED_BY, SampleKind.URI)
        assert [r.service for r in node.results] == ["uri"] and not node.errors
    hidden = uris["http://203.0.113.9:4444/stage2.exe"]
    assert hidden.score > 0  # a raw IP host, an odd port, an executable download
    assert [(n.relation, n.kind, n.name) for n in hidden.children] == [(Relation.CONTACTED_BY, SampleKind.IP, "203.0.113.9")]
    plain = uris["https://cdn.example.org/lib.js"]
    assert [(n.relation, n.kind, n.name) for n in plain.children] == [(Relation.RESOLVED_BY, SampleKind.DOMAIN, "cdn.example.org")]

    quiet = await scan(nats_url, prefix + "q", ["iocs", "uri"], files={"note.txt": text})
    assert quiet.files[0].children == [] and quiet.file_count == 1
