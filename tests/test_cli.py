"""The `sluice` command.

Commands that run the mesh (`scan` on the embedded default) run as subprocesses with a timeout,
as a user would run them; the rest call `main(argv)` in-process (each `anyio.run` gets its own
event loop, which is fine in a plain test function: no loop is running there).
"""

from __future__ import annotations

import fcntl
import io
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from bus.codec import encode
from bus.connect import DEFAULT_URL_ENV
from bus.publish import jetstream_publish
from schemas.messages import ErrorType, FileNode, HeuristicHit, ResultView, Section, ServiceError, Summary, Tag
from sluice.cli import InOrder, _params, _parse, build_parser, main
from sluice.client import Client
from sluice.console import CliError
from sluice.render import summary_tree, to_json

ROOT = Path(__file__).resolve().parent.parent
VERDICTS = {"safe", "info", "suspicious", "highly_suspicious", "malicious"}
NODE_KEYS = {"sha256", "name", "type", "depth", "score", "results", "errors", "children"}


def sluice(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m sluice ...` with no NATS URL in the environment, bounded in time."""
    env = {k: v for k, v in os.environ.items() if k != DEFAULT_URL_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "sluice", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def walk(node: dict):
    yield node
    for child in node["children"]:
        yield from walk(child)


# -- scan on the embedded default ---------------------------------------------------------------

def test_scan_json_one_document_per_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("see http://192.0.2.7/payload.exe\n")
    make_zip(tmp_path / "bundle.zip", {"inner.txt": b"just text\n"})
    proc = sluice("scan", "--json", "--data-dir", str(tmp_path / "data"), "notes.txt", "bundle.zip", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(docs) == 2
    for doc, name in zip(docs, ["notes.txt", "bundle.zip"]):
        assert {"sid", "score", "verdict", "files"} <= doc.keys()
        assert doc["verdict"] in VERDICTS
        assert doc["files"][0]["name"] == name
        for node in walk(doc["files"][0]):
            assert NODE_KEYS <= node.keys()  # present even when empty or zero
            for result in node["results"]:
                assert {"service", "score", "sections"} <= result.keys()
                for section in result["sections"]:
                    assert {"title", "body", "heuristic", "tags"} <= section.keys()
    bundle = docs[1]["files"][0]
    assert [c["name"] for c in bundle["children"]] == ["inner.txt"]
    assert bundle["children"][0]["depth"] == 1
    assert not (tmp_path / ".sluice").exists()  # --data-dir was used instead of the default


def test_a_scan_shows_verdicts_in_the_order_given_as_soon_as_those_before_are_shown() -> None:
    shown: list[str] = []
    order = InOrder(["a", "b", "c", "d"], lambda summary: shown.append(summary.sid))
    for sid, before in (("b", []), ("a", ["a", "b"]), ("d", ["a", "b"])):
        order.arrived(Summary(sid=sid, score=0, verdict="safe", files=[]))
        assert shown == before
    assert list(order.rest()) == [(2, "c")]  # c never came: told missing; d still shown, after it
    assert shown == ["a", "b", "d"]


def test_scan_directory_prints_a_tree_per_file(tmp_path: Path) -> None:
    tree = tmp_path / "samples"
    (tree / "nested" / "deeper").mkdir(parents=True)
    (tree / "top.txt").write_text("hello\n")
    (tree / "nested" / "deeper" / "low.txt").write_text("mail admin@example.com\n")
    make_zip(tree / "nested" / "arc.zip", {"member.txt": b"member\n"})
    proc = sluice("scan", "--data-dir", str(tmp_path / "data"), str(tree), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("sid ") == 3
    for name in ("top.txt", "low.txt", "arc.zip", "member.txt"):
        assert name in out


# -- in-process commands -------------------------------------------------------------------------

def test_service_list_shows_extract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "list"]) == 0
    out = capsys.readouterr().out
    assert "extract" in out and "EXTRACT" in out


def test_service_test_shows_extracted_children(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = make_zip(tmp_path / "some.zip", {"a.txt": b"alpha\n", "dir/b.txt": b"beta\n"})
    assert main(["service", "test", "extract", str(archive), "--json"]) == 0
    node = json.loads(capsys.readouterr().out)
    assert node["type"] == "archive/zip"
    assert node["results"][0]["service"] == "extract"
    assert sorted(child["name"] for child in node["children"]) == ["a.txt", "b.txt"]
    assert all(child["type"] == "text/plain" for child in node["children"])


def test_submit_without_nats_url_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(DEFAULT_URL_ENV, raising=False)
    sample = tmp_path / "x.txt"
    sample.write_text("x")
    assert main(["submit", str(sample)]) == 2
    err = capsys.readouterr().err
    assert "sluice up" in err and "--nats" in err


def test_result_unknown_sid_exits_1(nats_url: str, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nats", nats_url, "--prefix", prefix, "result", "0123456789abcdef"]) == 1
    assert "not found or not finished" in capsys.readouterr().err


def test_scan_without_dispatcher_times_out_with_exit_1(nats_url: str, prefix: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "x.txt"
    sample.write_text("nobody will analyse this")
    assert main(["scan", "--nats", nats_url, "--prefix", prefix, "--timeout", "0.3", str(sample)]) == 1
    assert "no verdict within" in capsys.readouterr().err


def test_oversized_file_is_refused_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("schemas.limits.Limits.max_file_size", 10)
    sample = tmp_path / "big.bin"
    sample.write_bytes(b"x" * 11)
    assert main(["scan", "--data-dir", str(tmp_path / "data"), str(sample)]) == 2
    assert "over the 10-byte file size limit" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_a_data_dir_in_use_is_refused_with_the_url_to_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sample = tmp_path / "x.txt"
    sample.write_text("x")
    with open(data / "sluice.lock", "w") as held:  # as a running `sluice up` holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("nats://127.0.0.1:4999")
        held.flush()
        assert main(["scan", "--data-dir", str(data), str(sample)]) == 2
    assert "--nats nats://127.0.0.1:4999" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--nats", "nats://h:1", "result", "s"], ["result", "--nats", "nats://h:1", "s"]])
def test_global_options_before_or_after_the_command(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_URL_ENV, raising=False)
    assert build_parser().parse_args(argv).nats == "nats://h:1"


def test_scan_imports_none_of_the_other_commands_modules() -> None:
    others = ("sluice.api_cli", "sluice.result_cli", "sluice.service_cli", "sluice.user_cli", "sluice.dlq_cli",
              "sluice.status_cli", "sluice.safelist_cli", "sluice.web.cli", "httpx", "cart", "argon2")
    code = (f"import json, sys\nfrom sluice.cli import _parse\nassert _parse(['scan', 'x.txt']).command == 'scan'\n"
            f"print(json.dumps([m for m in {others!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(("argv", "command", "prefix"), [
    (["--prefix", "scan", "result", "s"], "result", "scan"),  # a global option's value is not the command
    (["--pre", "scan", "result", "s"], "result", "scan"),  # abbreviated, it looks like one: parsed again in full
    (["-v", "service", "list"], "service", "sluice"),
])
def test_the_command_is_found_whatever_the_options_before_it(argv: list[str], command: str, prefix: str) -> None:
    args = _parse(argv)
    assert (args.command, args.prefix) == (command, prefix)
    assert callable(args.func)


# -- rendering -----------------------------------------------------------------------------------

def hostile_summary() -> Summary:
    section = Section(
        title="[bold]<script>alert(1)</script>",
        body="[red]not red[/red]\n\x1b[2Jclear screen",
        heuristic=HeuristicHit(1, "[link=http://x]hit[/link]", 100),
        tags=[Tag("network.static.uri", "http://[i]x[/i]")],
    )
    child = FileNode("b" * 64, "[blink]child\x1b]0;title\x07", "text/plain", 3, 1, relation="dropped-by")
    root = FileNode("a" * 64, "root.zip", "archive/zip", 10, 0, score=100,
                    results=[ResultView("evil", 100, [section])],
                    errors=[ServiceError("other", ErrorType.CRASHED, "[bold red]boom")], children=[child])
    return Summary("sid1", 100, "info", [root], file_count=2)


def rendered(summary: Summary) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=200, force_terminal=True, color_system="truecolor").print(summary_tree(summary))
    return buffer.getvalue()


def test_text_renderer_escapes_markup_and_control_characters() -> None:
    out = rendered(hostile_summary())
    for literal in ("[bold]<script>alert(1)</script>", "[red]not red[/red]", "[link=http://x]hit[/link]",
                    "http://[i]x[/i]", "[blink]child", "[bold red]boom"):
        assert literal in out  # shown as typed, not interpreted as markup
    assert "\x1b[2J" not in out and "\\x1b[2J" in out  # a terminal escape is made visible, not obeyed
    assert "\x1b]0;" not in out and "\x07" not in out


def test_result_folds_a_collapsed_section_and_expand_prints_every_line(nats_url: str, prefix: str,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`sluice result` over NATS: a section its service folds (the PE import list) says how many
    lines it holds; --expand prints each of them, as the page's "show all" does."""
    names = [f"KERNEL32.dll!Function{n}" for n in range(120)]
    folded = Section("Every imported name (120)", "\n".join(names), auto_collapse=True, depth=1)
    root = FileNode("c" * 64, "x.exe", "executable/windows/pe32", 10, 0, results=[ResultView("pe", 0, [Section("Imports"), folded])])
    summary = Summary(f"fold-{prefix}", 0, "info", [root], file_count=1)

    async def publish() -> None:
        async with await Client.connect(nats_url, prefix) as client:
            await jetstream_publish(client.js, client.names.summary(summary.sid), encode(summary))

    anyio.run(publish)
    capsys.readouterr()
    assert main(["--nats", nats_url, "--prefix", prefix, "result", summary.sid]) == 0
    out = capsys.readouterr().out
    assert "Every imported name (120)" in out and "120 lines folded (--expand shows them" in out
    assert "Function0" not in out
    assert main(["--nats", nats_url, "--prefix", prefix, "result", summary.sid, "--expand"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in names) and "folded" not in out


def test_json_keeps_zero_and_empty_fields() -> None:
    doc = json.loads(to_json(hostile_summary()))
    child = doc["files"][0]["children"][0]
    assert child["score"] == 0 and child["results"] == [] and child["errors"] == [] and child["children"] == []
    assert doc["files"][0]["errors"][0] == {"service": "other", "type": "crashed", "message": "[bold red]boom", "policy": False}


def test_safelist_add_list_remove(nats_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    known = hashlib.sha256(b"known good").hexdigest()
    listing = tmp_path / "good.txt"
    listing.write_text(f"# vendor installers\n{hashlib.md5(b'a').hexdigest()}  setup.exe\n")
    base = ["--nats", nats_url, "--prefix", prefix, "safelist"]
    assert main([*base, "add", known.upper(), "--reason", "our own build", "-f", str(listing)]) == 0
    capsys.readouterr()
    assert main([*base, "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert entries == {known: "our own build", hashlib.md5(b"a").hexdigest(): "setup.exe"}

    bad = tmp_path / "bad.txt"
    bad.write_text(f"{known}\nnot-a-hash\n")
    assert main([*base, "add", "-f", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err

    assert main([*base, "remove", known, hashlib.sha1(b"never").hexdigest()]) == 1  # one was not listed
    assert "was not safelisted" in capsys.readouterr().err
    assert main([*base, "list", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {hashlib.md5(b"a").hexdigest()}


def test_param_options_become_service_params() -> None:
    args = build_parser().parse_args(["submit", "x", "--param", "extract.password=infected", "--param", "iocs.max_per_kind=3",
                                      "--param", "extract.deep=true"])
    assert _params(args).service_params == {"extract": {"password": "infected", "deep": True}, "iocs": {"max_per_kind": 3}}
    bad = build_parser().parse_args(["submit", "x", "--param", "nodot=1"])
    with pytest.raises(CliError, match="SERVICE.NAME=VALUE"):
        _params(bad)
