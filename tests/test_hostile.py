"""The hostile corpus (tests/hostile.py) through a real mesh with every built-in service.

One mesh takes the whole corpus at once, as a busy deployment would. Each case must end in a
summary whose tree says what was wrong (a heuristic, or a limit recorded as an error), with no
crash and no timeout anywhere; nothing may be written outside the services' work directory
(which the test points at a scratch folder and then searches around); peak memory stays under
a bound derived from the extract service's limits; and a normal file sent afterwards still
gets its verdict. With SLUICE_HOSTILE_TABLE=DIR the run writes its table to DIR/files.md.
"""

from __future__ import annotations

import io
import os
import resource
import secrets
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from rich.console import Console

from hostile import CASES, EICAR, write_table
from schemas.limits import Limits
from schemas.messages import ErrorType, FileNode, SubmissionParams, Summary, walk
from services.extract.safety import CHUNK
from services.sdk.loader import load_service
from sluice.client import Client, SubmitError
from sluice.onebox import onebox
from sluice.render import summary_tree
from zipquine import zip_quine

pytestmark = pytest.mark.timeout(120)

BOMB, SIZE, ENTRIES, TRAVERSAL, LINKS, CORRUPT, EMPTY, EMPTIES = FINDINGS = (
    "Compression bomb", "Size limit reached", "Too many entries", "Path traversal member names",
    "Links and special members not extracted", "Corrupt archive", "Empty archive", "Empty members not extracted")


@dataclass
class Run:
    """What the corpus run left for the tests to check (each case was sent once)."""

    summaries: dict[str, Summary]  # by case name; a case missing here was lost
    rss_growth: int  # bytes
    work: Path
    token: str
    after: list[Summary]  # the normal files sent after the corpus
    oversize: SubmitError | None
    submitted_while_refusing: int


def nodes(summary: Summary) -> list[FileNode]:
    return list(walk(summary.files))


def sections(summary: Summary) -> set[str]:
    return {s.title for n in walk(summary.files) for r in n.results for s in r.sections}


def errors(summary: Summary) -> set[ErrorType]:
    return {e.type for n in walk(summary.files) for e in n.errors}


def extract_body(summary: Summary, title: str) -> str:
    return "\n".join(s.body for n in walk(summary.files) for r in n.results for s in r.sections if s.title == title)


def memory_bound() -> int:
    """What the corpus may add to peak RSS: twice one member limit per extract slot, plus 256 MiB.

    An extract slot holds at most one member limit (plus a chunk) of bytes at a time; twice
    that, because memory a worker thread frees is not always handed back to the OS before
    another thread's allocation raises the peak. The 256 MiB cover everything else in the
    process (the dispatcher, seven other services, the client, the corpus itself).
    """
    extract = load_service("extract")
    return 2 * extract.manifest.concurrency * (int(extract.config["max_member_bytes"]) + CHUNK) + 256 * 1024 * 1024


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(nats_server, tmp_path_factory) -> Run:
    token = secrets.token_hex(6)
    prefix = "h" + secrets.token_hex(4)
    work = tmp_path_factory.mktemp("servicework")
    # Built before the mesh starts: building blocks the event loop for seconds, and a mesh whose
    # heartbeats stall that long would see its own services as gone.
    payloads = {case.name: case.make(token) for case in CASES}
    saved = tempfile.tempdir
    tempfile.tempdir = str(work)  # every service's work directory is made under here
    try:
        async with onebox(nats_server.url, prefix), await Client.connect(nats_server.url, prefix) as client:
            before = peak_rss()
            sids = {await client.submit_bytes([(case.sent_as(token), payloads[case.name])], SubmissionParams(**case.params)): case
                    for case in CASES}
            done = await client.wait_all(sids, timeout=90)
            growth = peak_rss() - before
            oversize, refused_count = await _oversize(client)
            after = [await client.wait(await client.submit_bytes([(name, data)]), timeout=30)
                     for name, data in (("eicar.com", EICAR), ("readme.txt", (Path(__file__).parents[1] / "samples" / "readme.txt").read_bytes()))]
    finally:
        tempfile.tempdir = saved
    summaries = {case.name: done[sid] for sid, case in sids.items() if sid in done}
    run = Run(summaries, growth, work, token, after, oversize, refused_count)
    write_table(os.environ.get("SLUICE_HOSTILE_TABLE"), "files.md", _table(run),
                f"Peak RSS growth of the test process (dispatcher, all services, client) while the corpus ran: "
                f"{growth / 2**20:.0f} MiB (bound {memory_bound() / 2**20:.0f} MiB).")
    return run


async def _oversize(client: Client) -> tuple[SubmitError | None, int]:
    """A file one byte over the client's limit: refused before anything is stored or published."""
    async def last_seq() -> int:  # every tree has completed: only this attempt could publish now
        return (await client.js.stream_info(client.names.submit_stream)).state.last_seq

    published = await last_seq()
    try:
        await client.submit_bytes([("huge.bin", bytes(Limits.max_file_size + 1))])
    except SubmitError as exc:
        return exc, await last_seq() - published
    return None, 0


def outcome(summary: Summary) -> str:
    """One line for the table: verdict, what fired, what was refused."""
    titles = [t for t in FINDINGS if t in sections(summary)]
    errs = sorted(e.value for e in errors(summary))
    tree = nodes(summary)
    dups = sum(n.duplicate for n in tree)
    parts = [f"{summary.verdict} ({summary.score})", summary.files[0].type, f"{summary.file_count} file(s) analysed"]
    parts += [f"{dups} duplicates"] if dups else []
    parts += titles + [f"error: {e}" for e in errs]
    return "; ".join(parts)


def tree_lines(summary: Summary) -> str:
    """The tree, one line per analysed node, for a failure message."""
    return "\n".join(f"{'  ' * n.depth}{n.name} {n.type} services={[r.service for r in n.results]} "
                     f"errors={[(e.service, e.type.value) for e in n.errors]} children={len(n.children)}"
                     for n in nodes(summary) if not n.duplicate)


def _table(run: Run) -> list[tuple[str, ...]]:
    rows = [("input", "what", "sent", "completed", "lost", "outcome")]
    for case in CASES:
        summary = run.summaries.get(case.name)
        done = int(summary is not None)
        rows.append((case.name, case.what, "1", str(done), str(1 - done), outcome(summary) if summary else "LOST"))
    refused = f"refused at submit: {run.oversize}" if run.oversize else "NOT refused"
    rows.append(("file over max_file_size", f"{Limits.max_file_size + 1:,} bytes", "1", "0", "0", refused))
    return rows


# -- every case ------------------------------------------------------------------------------------

def _bomb_stopped(s: Summary) -> bool:
    return BOMB in sections(s) and not [n for n in nodes(s) if n.depth > 0 and n.size >= Limits.max_file_size]


EXPECTED: dict[str, Callable[[Summary], bool]] = {
    "flat zip bomb": lambda s: _bomb_stopped(s) and "overlap another member" in extract_body(s, BOMB),
    "nested zip bomb": lambda s: _bomb_stopped(s) and sum(n.duplicate for n in nodes(s)) >= 15 * 4,
    "gzip bomb": lambda s: BOMB in sections(s) and len(nodes(s)) == 1,
    "bzip2 bomb": lambda s: BOMB in sections(s) and len(nodes(s)) == 1,
    "xz bomb": lambda s: BOMB in sections(s) and len(nodes(s)) == 1,
    "tar.gz bomb": lambda s: BOMB in sections(s) and len(nodes(s)) == 1,
    "copies of one zip": lambda s: ENTRIES in sections(s) and s.file_count == 3 and sum(n.duplicate for n in nodes(s)) == 2 * 99,
    "zip that contains itself": lambda s: len(nodes(s)) == 1 and "the archive itself" in extract_body(s, BOMB),
    "zip of 3 copies of itself": lambda s: len(nodes(s)) == 1 and "the archive itself" in extract_body(s, BOMB)
    and extract_body(s, BOMB).count("overlap another member") == 2,
    "50-level nesting": lambda s: errors(s) == {ErrorType.MAX_DEPTH} and max(n.depth for n in nodes(s)) == Limits.max_depth,
    "10,000 entries": lambda s: ENTRIES in sections(s) and s.file_count == 1 + Limits.max_children,
    "10,000 entries, max_files 20": lambda s: errors(s) == {ErrorType.MAX_FILES} and s.file_count == 20,
    "path traversal (zip)": lambda s: TRAVERSAL in sections(s) and s.file_count == 6,
    "path traversal (tar)": lambda s: TRAVERSAL in sections(s) and s.file_count == 3,
    "path traversal (7z)": lambda s: TRAVERSAL in sections(s) and [n.name for n in nodes(s)][1:] == ["fine.txt"],
    "hostile submission name": lambda s: TRAVERSAL in sections(s) and nodes(s)[1].name.startswith("hostile-name-"),
    "symlinks in tar": lambda s: LINKS in sections(s) and "'/etc/passwd'" in extract_body(s, LINKS),
    "symlink in zip": lambda s: LINKS in sections(s),
    "executable members": lambda s: {n.type for n in nodes(s)} >= {"code/shell", "code/python", "executable/linux/elf64"},
    "truncated zip": lambda s: CORRUPT in sections(s),
    "corrupt zip": lambda s: CORRUPT in sections(s),
    "truncated tar.gz": lambda s: CORRUPT in sections(s) and s.file_count == 3,
    "truncated 7z": lambda s: CORRUPT in sections(s),
    "zip magic + noise": lambda s: CORRUPT in sections(s),
    "gzip magic + noise": lambda s: CORRUPT in sections(s),
    "empty file": lambda s: s.files[0].type == "empty",
    "empty zip": lambda s: EMPTY in sections(s) and s.file_count == 1,
    "zip of empty files": lambda s: "'empty-19.txt'" in extract_body(s, EMPTIES) and s.file_count == 1,
    "random bytes": lambda s: s.files[0].type == "unknown",
    "CAB bomb": lambda s: BOMB in sections(s) and len(nodes(s)) == 1,
    "path traversal (cpio)": lambda s: TRAVERSAL in sections(s) and LINKS in sections(s)
    and "symlink to '/etc'" in extract_body(s, LINKS) and "character device" in extract_body(s, LINKS),
    "path traversal (RAR)": lambda s: TRAVERSAL in sections(s) and s.file_count == 4,
    "truncated ISO": lambda s: CORRUPT in sections(s),
    "truncated CAB": lambda s: CORRUPT in sections(s),
    "truncated VHD": lambda s: bool(sections(s) & {CORRUPT, "Volumes not read"}),
    "truncated VHDX": lambda s: bool(sections(s) & {CORRUPT, "Volumes not read"}),
    "DMG bomb": lambda s: BOMB in sections(s) and len(nodes(s)) == 1,
    "path traversal (RAR 5, AES, encrypted headers)": lambda s: TRAVERSAL in sections(s) and s.file_count == 4
    and "infected" in s.tags.get("info.password", []),
    "path traversal (xar)": lambda s: TRAVERSAL in sections(s) and LINKS in sections(s) and s.file_count == 3,
    "truncated RAR 5 (AES)": lambda s: CORRUPT in sections(s) and [n.name for n in nodes(s)][1:] == ["a.txt"],
    "hostile RAR comment": lambda s: [n.name for n in nodes(s)][1:] == ["real.txt"]
    and "only the first 64 KiB of the comment are shown" in extract_body(s, "Archive comment")
    and "Path = forged.exe" in extract_body(s, "Archive comment") and "\x1b" not in extract_body(s, "Archive comment"),
    "truncated DMG": lambda s: CORRUPT in sections(s) and len(nodes(s)) == 1,
    "truncated UDF": lambda s: CORRUPT in sections(s) and len(nodes(s)) == 1,
    "e-mail of 5,000 parts": lambda s: "only the first MIME parts were read" in extract_body(s, "Message cut")
    and s.file_count == 1 + Limits.max_children,
    "OneNote lying lengths": lambda s: [n.name for n in nodes(s)][1:] == ["embedded-1.bin"],
    "truncated LNK": lambda s: s.files[0].type == "shortcut/windows" and not errors(s),
    "PNG pixel bomb": lambda s: "Image not read" in sections(s) and not errors(s),
    "HTML of 100,000 handlers": lambda s: s.files[0].type == "code/html" and not errors(s)
    and "199,000 more scripts, links" in extract_body(s, "Page cut"),
    "PNG lying chunk length": lambda s: s.file_count == 1 and not errors(s),
}


def test_every_case_has_an_expectation():
    assert set(EXPECTED) == {case.name for case in CASES}


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_case_completes_with_a_clear_outcome(corpus: Run, name: str):
    summary = corpus.summaries.get(name)
    assert summary is not None, f"{name}: no summary (lost)"
    # No service crashed or ran out of time on it, whatever it was.
    assert not errors(summary) & {ErrorType.CRASHED, ErrorType.TIMEOUT, ErrorType.RECOVERABLE}, outcome(summary)
    assert EXPECTED[name](summary), f"{outcome(summary)}\n{tree_lines(summary)}"


async def test_extracted_names_are_bare_file_names(corpus: Run):
    for name in ("path traversal (zip)", "path traversal (tar)", "path traversal (7z)", "hostile submission name",
                 "symlinks in tar", "symlink in zip", "path traversal (RAR 5, AES, encrypted headers)",
                 "path traversal (xar)"):
        children = [n.name for n in nodes(corpus.summaries[name]) if n.depth > 0]
        assert children and not [c for c in children if "/" in c or "\\" in c or c in (".", "..")], children


async def test_nothing_is_written_or_run_outside_the_work_directory(corpus: Run):
    """The escape targets and execution markers exist nowhere near the work dir, and the work dir is left empty."""
    around = [corpus.work, *corpus.work.parents, Path(tempfile.gettempdir()), Path.cwd(), *Path.cwd().parents, Path.home()]
    strays = [p for folder in around for p in folder.glob(f"*{corpus.token}*")]
    strays += list(corpus.work.rglob(f"*{corpus.token}*"))
    assert strays == []
    assert list(corpus.work.iterdir()) == []  # every task's and service's work dir was removed


async def test_memory_stays_bounded(corpus: Run):
    """Peak RSS growth while the corpus ran stays under `memory_bound`: the corpus declares
    petabytes, and what can be held at once is what the limits allow."""
    assert corpus.rss_growth < memory_bound(), f"{corpus.rss_growth / 2**20:.0f} MiB"


async def test_oversized_file_is_refused_at_submit_with_a_clear_error(corpus: Run):
    assert corpus.oversize is not None and "over the" in str(corpus.oversize) and "huge.bin" in str(corpus.oversize)
    assert corpus.submitted_while_refusing == 0


async def test_normal_files_after_the_corpus_still_get_their_verdicts(corpus: Run):
    eicar, readme = corpus.after
    assert (eicar.verdict, eicar.score) == ("malicious", 1000)
    assert "yara" in {r.service for r in eicar.files[0].results}
    assert readme.tags["network.static.ip"] == ["203.0.113.7"]
    assert not errors(eicar) and not errors(readme)


def test_the_self_containing_zips_really_contain_themselves():
    for copies in (1, 3):
        data = zip_quine(copies=copies)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert [zf.open(info).read() == data for info in zf.infolist()] == [True] * copies


async def test_every_verdict_tree_renders_without_the_inputs_control_characters(corpus: Run):
    """Names and findings come from the files: none of their escape sequences reaches a terminal."""
    for name, summary in corpus.summaries.items():
        out = io.StringIO()
        Console(file=out, width=160, color_system=None).print(summary_tree(summary))
        assert "\x1b" not in out.getvalue(), name
