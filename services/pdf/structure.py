"""What a PDF's objects hold, read with pypdf: scripts, attached files, links, launch actions.

Every indirect object in the cross-reference table (and in object streams, which the raw census
cannot see into) is visited once, with the direct objects nested in it; no page tree or name
tree is followed, so a cyclic or hostile structure cannot make the walk loop. The walk stops at
a number of objects and at a time budget, and says so. pypdf runs with strict=False, so it
repairs what it can; what it cannot repair is reported by the caller as a parse failure.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from services.sdk.lazy import lazy_import

# pypdf (about 0.1 s of CPU to import): loaded by the first PDF, not by every process
pypdf = lazy_import("pypdf")
generic = lazy_import("pypdf.generic")

MAX_DEPTH = 64  # nesting of direct objects inside one object; deeper is not looked at


@dataclass(frozen=True)
class Limits:
    objects: int
    seconds: float
    file_bytes: int


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes | None  # None: larger than the limit, or unreadable (see `note`)
    note: str = ""


@dataclass
class Structure:
    scripts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    launches: list[str] = field(default_factory=list)
    auto_action: bool = False              # an /OpenAction or /AA entry exists
    encrypted: bool = False
    decrypted: bool = False                # opened with the empty user password
    notes: list[str] = field(default_factory=list)  # limits reached, objects pypdf could not read


def _text(value: Any) -> str:
    """A PDF string or stream as text: pypdf decodes text strings; streams and bytes are guessed."""
    if isinstance(value, generic.StreamObject):
        value = value.get_data()
    if isinstance(value, bytes):
        if value.startswith((b"\xfe\xff", b"\xff\xfe")):
            return value.decode("utf-16", "replace")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return str(value)


def _get(obj: generic.DictionaryObject, key: str) -> Any:
    """The entry's value with an indirect reference resolved, or None."""
    return obj[key] if key in obj else None


def _object_refs(reader: pypdf.PdfReader) -> Iterator[generic.IndirectObject]:
    for generation, numbers in reader.xref.items():
        for number in numbers:
            yield generic.IndirectObject(number, generation, reader)
    for number in reader.xref_objStm:
        yield generic.IndirectObject(number, 0, reader)


class _Walk:
    def __init__(self, reader: pypdf.PdfReader, limits: Limits) -> None:
        self.reader = reader
        self.limits = limits
        self.found = Structure()
        self.file_streams: dict[int, generic.IndirectObject] = {}  # embedded file streams by object number, in order seen
        self.file_names: dict[int, str] = {}               # ... and their file names, from the file specs
        self.unreadable = 0

    def run(self) -> Structure:
        deadline = time.monotonic() + self.limits.seconds
        seen: set[tuple[int, int]] = set()
        for ref in _object_refs(self.reader):
            if (ref.idnum, ref.generation) in seen:
                continue
            if len(seen) >= self.limits.objects or time.monotonic() > deadline:
                self.found.notes.append(f"stopped after {len(seen):,} objects (limit reached); the rest was not read")
                break
            seen.add((ref.idnum, ref.generation))
            try:
                obj = ref.get_object()
                if isinstance(obj, generic.StreamObject) and _get(obj, "/Type") == "/EmbeddedFile":
                    self.file_streams.setdefault(ref.idnum, ref)
                self._visit(obj, 0)
            except Exception:  # noqa: BLE001 - pypdf on a damaged object raises anything
                self.unreadable += 1
        if self.unreadable:
            self.found.notes.append(f"{self.unreadable:,} object(s) could not be read")
        self._collect_attachments()
        return self.found

    def _visit(self, obj: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(obj, generic.DictionaryObject):
            self._inspect(obj)
            children = list(dict.values(obj))  # raw values: indirect ones are visited on their own
        elif isinstance(obj, generic.ArrayObject):
            children = list(list.__iter__(obj))
        else:
            return
        for child in children:
            if not isinstance(child, generic.IndirectObject):
                self._visit(child, depth + 1)

    def _inspect(self, obj: generic.DictionaryObject) -> None:
        found = self.found
        action = _get(obj, "/S")
        if "/JS" in obj:
            found.scripts.append(_text(obj["/JS"]))
        if action == "/URI" and "/URI" in obj:
            found.uris.append(_text(obj["/URI"]))
        if action == "/Launch":
            found.launches.append(self._launch_target(obj))
        if "/OpenAction" in obj or "/AA" in obj:
            found.auto_action = True
        embedded = _get(obj, "/EF")
        if isinstance(embedded, generic.DictionaryObject):
            name = _text(_get(obj, "/UF") or _get(obj, "/F") or "")
            for ref in dict.values(embedded):
                if isinstance(ref, generic.IndirectObject):
                    self.file_streams.setdefault(ref.idnum, ref)
                    self.file_names.setdefault(ref.idnum, name)

    @staticmethod
    def _launch_target(action: generic.DictionaryObject) -> str:
        """What a Launch action starts: the Windows form (/Win /F, /P) or the file spec /F."""
        win = _get(action, "/Win")
        if isinstance(win, generic.DictionaryObject):
            return " ".join(_text(win[k]) for k in ("/F", "/P") if k in win)
        target = _get(action, "/F")
        if isinstance(target, generic.DictionaryObject):
            target = _get(target, "/UF") or _get(target, "/F")
        return _text(target) if target is not None else "(no target)"

    def _collect_attachments(self) -> None:
        for number, ref in self.file_streams.items():
            name = self.file_names.get(number) or f"embedded-{number}"
            try:
                data = ref.get_object().get_data()
            except Exception as exc:  # noqa: BLE001 - a damaged or unsupported stream filter
                self.found.attachments.append(Attachment(name, None, f"unreadable: {type(exc).__name__}: {exc}"))
                continue
            if len(data) > self.limits.file_bytes:
                self.found.attachments.append(Attachment(name, None, f"larger than {self.limits.file_bytes:,} bytes"))
            else:
                self.found.attachments.append(Attachment(name, data))


def read_structure(data: bytes, limits: Limits) -> Structure:
    """The scripts, attachments, links and launch actions pypdf finds. Raises if pypdf cannot open it."""
    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if not reader.is_encrypted:
        return _Walk(reader, limits).run()
    # Most encrypted PDFs have an empty user password: any reader opens them without asking.
    if not reader.decrypt(""):
        return Structure(encrypted=True)
    found = _Walk(reader, limits).run()
    found.encrypted = found.decrypted = True
    return found
