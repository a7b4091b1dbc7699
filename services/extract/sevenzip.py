"""7z archives through py7zr: list the members, find the password, decompress under the budget.

py7zr pushes each member's bytes into a writer from a `WriterFactory` instead of handing out
a stream, so the budget is charged inside that writer: a limit raises LimitHit out of py7zr's
decompression loop and nothing more is decompressed. Nothing is written to disk (a factory
keeps py7zr in memory), and py7zr itself refuses member names that would leave a directory.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import py7zr
from py7zr.exceptions import Bad7zFile, PasswordRequired
from py7zr.io import Py7zIO, WriterFactory
from py7zr.properties import COMPRESSION_METHOD
from py7zr.py7zr import ArchiveFile, Worker

from services.extract.formats import Kind, Member, corrupt_errors
from services.extract.passwords import Keyring
from services.extract.safety import CHUNK, Budget, LimitHit

# 7z derives each key with 2**cycles SHA-256 rounds, a number the archive chooses: 7-Zip uses 19
# (0.1 s a password here), py7zr accepts up to 24 (4 s), a crafted header may ask for 2**62.
MAX_KEY_CYCLES = 20


class Locked(Exception):
    """No candidate password opened the archive (or none was tried); the message says why."""


@dataclass
class Outcome:
    """What one decompression pass produced, in py7zr's order."""

    done: list[tuple[str, bytes]] = field(default_factory=list)  # complete members, CRC checked
    limited: list[tuple[str, LimitHit]] = field(default_factory=list)  # a limit hit in this member
    error: Exception | None = None  # the damage that ended the pass early


class SevenZip:
    """One 7z archive, opened with the password its header needed (if it was encrypted)."""

    def __init__(self, data: bytes, keyring: Keyring) -> None:
        self._data = data
        self._keyring = keyring
        try:
            self._archive = _parse(data, None)
            header_password = None
        except PasswordRequired as required:  # raised with the header's coders as first argument
            _check_key_cost(required.args[0] if required.args else [])
            found = keyring.first(lambda password: _parse_or_none(data, password))
            if found is None:
                raise Locked(f"headers are encrypted (member names hidden): {keyring.refusal()}") from None
            header_password, self._archive = found
        with _failures_as_damage("unreadable member list"):
            self.members = [_member(info) for info in self._archive.files]
            self._nonempty = {info.filename for info in self._archive.files if info.uncompressed}
        # An encrypted header's password also decrypts the content; otherwise it is still to find.
        self._content_locked = self._archive.needs_password() and header_password is None

    def __enter__(self) -> SevenZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self._archive.close()

    def extract(self, targets: list[str], budget: Budget) -> Outcome:
        """Decompress the members named; encrypted content is tried with each password in turn."""
        wanted = [name for name in targets if name in self._nonempty]
        if not wanted:  # empty members need no decompression (and would "prove" any password)
            return Outcome()
        if not self._content_locked:
            return _run(self._archive, wanted, budget)
        streams = self._archive.header.main_streams
        _check_key_cost(coder for folder in streams.unpackinfo.folders for coder in folder.coders)
        found = self._keyring.first(lambda password: self._attempt(password, wanted, budget))
        if found is None:
            raise Locked(self._keyring.refusal())
        return found[1]

    def _attempt(self, password: str, targets: list[str], budget: Budget) -> Outcome | None:
        """The pass's outcome, or None when it looks like a wrong password.

        7z content has no password check of its own: a wrong key decrypts to noise, which the
        decompressor or a CRC rejects before any member completes. Those few bytes still count
        against the budget, so guessing cannot be used to decompress for free.
        """
        with _parse(self._data, password) as archive:
            outcome = _run(archive, targets, budget)
        if outcome.done or outcome.limited or outcome.error is None:
            return outcome
        return None


def _check_key_cost(coders: Iterable[dict[str, Any]]) -> None:
    """Locked when an AES coder asks for more key rounds than MAX_KEY_CYCLES: no password is tried."""
    for coder in coders:
        properties = coder.get("properties") or b"\0"
        if coder.get("method") == COMPRESSION_METHOD.CRYPT_AES256_SHA256 and properties[0] & 0x3F > MAX_KEY_CYCLES:
            cycles = properties[0] & 0x3F
            raise Locked(f"each password would cost 2^{cycles} SHA-256 rounds (more than 2^{MAX_KEY_CYCLES}): none tried")


@contextmanager
def _failures_as_damage(what: str) -> Iterator[None]:
    """Any error out of py7zr becomes Bad7zFile, so a finding rather than a crash.

    The header is attacker-written (with valid CRCs, if need be), and py7zr fails on a crafted
    one with whatever error the bad field leads to (TypeError, OverflowError, AssertionError…),
    not only its own exceptions. Limits and a missing password pass through unchanged.
    """
    try:
        yield
    except (PasswordRequired, LimitHit, *corrupt_errors()):
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring: hostile input, any failure
        raise Bad7zFile(f"{what}: {type(exc).__name__}: {exc}") from exc


def _parse(data: bytes, password: str | None) -> py7zr.SevenZipFile:
    """The archive with its header read, decompressing in chunks of at most CHUNK bytes."""
    with _failures_as_damage("unreadable header"):
        archive = py7zr.SevenZipFile(io.BytesIO(data), password=password)
    archive.worker = _ChunkedWorker(archive.files, archive.afterheader, archive.header)
    return archive


def _parse_or_none(data: bytes, password: str) -> py7zr.SevenZipFile | None:
    """The archive if `password` decrypts its header (a wrong one yields an unparsable header)."""
    try:
        return _parse(data, password)
    except corrupt_errors():
        return None


def _member(info: ArchiveFile) -> Member:
    if info.is_directory:
        return Member(info.filename, Kind.DIR)
    if info.is_symlink:
        return Member(info.filename, Kind.LINK, detail="symlink")
    if not info.is_file:
        return Member(info.filename, Kind.SPECIAL, detail="socket or junction")
    return Member(info.filename, Kind.FILE)


def _run(archive: py7zr.SevenZipFile, targets: list[str], budget: Budget) -> Outcome:
    """One decompression pass over `targets`; damage or a stopping limit ends it, recorded."""
    sinks = _Sinks(budget)
    try:
        with _failures_as_damage("decompression failed"):
            archive.extract(targets=targets, factory=sinks)
    except LimitHit:
        pass  # the sink that hit it has recorded it
    except corrupt_errors() as exc:
        sinks.outcome.error = exc
    return sinks.outcome


class _Sinks(WriterFactory):
    """py7zr asks for one writer per member, named with its (sanitised) path."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.outcome = Outcome()

    def create(self, filename: str) -> Py7zIO:
        return _Sink(filename, self.budget, self.outcome)


class _Sink(Py7zIO):
    """One member's bytes, charged to the budget as they arrive.

    A member past a member limit is given up but its remaining bytes still arrive (a solid
    stream is decompressed through it); they are counted and dropped, so the archive's total
    and ratio limits still stop a bomb hiding in it.
    """

    def __init__(self, name: str, budget: Budget, outcome: Outcome) -> None:
        self._name = name
        self._budget = budget
        self._outcome = outcome
        self._chunks: list[bytes] = []
        self._size = 0
        self._given_up = False

    def write(self, s: bytes | bytearray) -> int:
        try:
            self._take(s)
        except LimitHit as hit:
            self._outcome.limited.append((self._name, hit))
            if hit.stop:  # out through py7zr: nothing more is decompressed
                raise
            self._given_up, self._chunks = True, []
        return len(s)

    def _take(self, s: bytes | bytearray) -> None:
        if self._given_up:
            self._budget.charge(len(s))
            return
        self._size += len(s)
        self._budget.charge(len(s), self._size)
        self._chunks.append(bytes(s))

    def close(self) -> None:
        """py7zr calls this only once the member is complete and its CRC matched."""
        if not self._given_up:
            self._outcome.done.append((self._name, b"".join(self._chunks)))

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self._size


class _ChunkedWorker(Worker):
    """py7zr's worker, asking its decompressors for at most CHUNK bytes at a time.

    The stock worker asks for up to 128 MB per call (py7zr's memory limit), so a bomb's first
    chunk alone would be that big before any writer could refuse it.
    """

    def decompress(self, fp: Any, folder: Any, *args: Any, **kwargs: Any) -> int:
        return super().decompress(fp, _ChunkedFolder(folder), *args, **kwargs)


class _ChunkedFolder:
    """A 7z folder whose decompressor yields at most CHUNK bytes per call."""

    def __init__(self, folder: Any) -> None:
        self._folder = folder

    def get_decompressor(self, packsize: int, reset: bool = False) -> _ChunkedDecompressor:
        return _ChunkedDecompressor(self._folder.get_decompressor(packsize, reset))


class _ChunkedDecompressor:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def decompress(self, fp: Any, max_length: int = -1) -> bytes:
        return self._inner.decompress(fp, CHUNK if max_length < 0 else min(max_length, CHUNK))

    def __getattr__(self, name: str) -> Any:  # crc, digest, check_crc: the real decompressor's
        return getattr(self._inner, name)
