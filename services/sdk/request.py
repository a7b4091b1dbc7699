"""One task as a service sees it: the file, its facts, and what the service hands back."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from schemas.messages import FileRef, ObjectKind, Relation, SampleKind, Task
from schemas.samples import DEFAULT_RELATION, SampleError, sample_ref
from services.sdk.manifest import Manifest
from services.sdk.result import Result, ResultSection


@dataclass(frozen=True)
class Extracted:
    """A file a service found; the runner stores it once by sha256 and reports it as a child."""

    data: bytes
    name: str
    description: str
    relation: Relation


@dataclass(frozen=True)
class Related:
    """A URI, domain or IP a service found, checked and in canonical form, to analyse as a child."""

    ref: FileRef
    description: str
    relation: Relation


@dataclass(frozen=True)
class Produced:
    """A supplementary file or report object; stored once by sha256, referenced by the result."""

    data: bytes
    name: str
    kind: ObjectKind
    description: str


def _read(path_or_data: str | os.PathLike | bytes) -> bytes:
    return bytes(path_or_data) if isinstance(path_or_data, (bytes, bytearray)) else Path(path_or_data).read_bytes()


class MaxExtractedExceeded(RuntimeError):
    """More extracted files than a parent may have; the service may stop extracting."""


class Request:
    def __init__(self, task: Task, load: Callable[[], bytes] | None, manifest: Manifest, work_root: Path,
                 max_extracted: int) -> None:
        self.task = task
        self._load = load
        self._content: bytes | None = None
        self._manifest = manifest
        self._work_root = work_root
        self._work_dir: Path | None = None
        self._file_path: str | None = None
        self.max_extracted = max_extracted
        self.result: Result | None = None
        self.extracted: list[Extracted] = []
        self.related: list[Related] = []
        self.produced: list[Produced] = []
        self.metadata: dict[str, str | int | float | bool] = {}
        self.dropped = False
        self.is_partial = False
        self.service_context = ""
        self.temp_submission_data: dict[str, Any] = dict(task.temp_data)

    # -- the file ---------------------------------------------------------------------------
    @property
    def sha256(self) -> str:
        return self.task.file.sha256

    @property
    def file_name(self) -> str:
        return self.task.file.name or self.sha256

    @property
    def file_type(self) -> str:
        return self.task.file_type

    @property
    def sample_kind(self) -> SampleKind:
        """`file`, or `uri`/`domain`/`ip` for a sample whose content is its (canonical) value."""
        return self.task.file.kind

    @property
    def sample(self) -> str:
        """A URI, domain or IP sample's value (for a file: its name)."""
        if self.sample_kind is SampleKind.FILE:
            return self.file_name
        return self.file_contents.decode()

    @property
    def file_size(self) -> int:
        return self.task.file.size

    @property
    def file_contents(self) -> bytes:
        """The file's bytes, downloaded on first use and checked against their sha256."""
        if self._content is None:
            if self._load is None:
                raise RuntimeError(f"{self._manifest.name}: file_required is false, so there are no contents")
            self._content = self._load()
        return self._content

    def set_contents(self, data: bytes) -> None:
        self._content = data

    @property
    def file_path(self) -> str:
        """The file on disk inside this task's work directory, written on first use."""
        if self._file_path is None:
            fd, path = tempfile.mkstemp(dir=self.work_dir, prefix="sample-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.file_contents)
            self._file_path = path
        return self._file_path

    @cached_property  # services (and the MASS adapter's sample_dict) ask more than once
    def md5(self) -> str:
        return hashlib.md5(self.file_contents).hexdigest()

    @cached_property
    def sha1(self) -> str:
        return hashlib.sha1(self.file_contents).hexdigest()

    @property
    def file_hashes(self) -> dict[str, str]:
        return {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256}

    # -- the submission ---------------------------------------------------------------------
    @property
    def sid(self) -> str:
        return self.task.sid

    @property
    def depth(self) -> int:
        return self.task.depth

    @property
    def deep_scan(self) -> bool:
        return self.task.deep_scan

    @property
    def work_dir(self) -> Path:
        """This task's own scratch folder, made on first use (most tasks never need one)."""
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix=f"{self._manifest.name}-", dir=self._work_root))
        return self._work_dir

    def cleanup(self) -> None:
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    def temp_data_changes(self) -> dict[str, Any]:
        """Keys of `temp_submission_data` this service set or changed (they go on to later
        stages and to this file's children)."""
        before = self.task.temp_data
        return {k: v for k, v in self.temp_submission_data.items() if k not in before or before[k] != v}

    def get_param(self, name: str) -> Any:
        """A submission parameter for this service, falling back to the manifest's default."""
        given = self.task.service_params.get(self._manifest.name, {})
        if name in given:
            return given[name]
        for param in self._manifest.submission_params:
            if param.name == name:
                return param.default
        raise KeyError(f"{self._manifest.name}: no submission parameter {name!r} in the manifest")

    # -- what the service hands back --------------------------------------------------------
    def _check_room(self) -> None:
        if len(self.extracted) + len(self.related) >= self.max_extracted:
            raise MaxExtractedExceeded(f"more than {self.max_extracted} extracted files and related samples")

    def add_extracted(self, path: str | os.PathLike | bytes, name: str, description: str = "",
                      classification: str | None = None, safelist_interface: object = None,
                      allow_dynamic_recursion: bool = False, parent_relation: str = "EXTRACTED",
                      relation: Relation | str = Relation.DROPPED_BY) -> bool:
        """Report a file found inside this one (a path, or the bytes themselves).

        Returns False for an empty file (nothing to analyse); raises MaxExtractedExceeded past the limit.
        AL4's `classification`, `safelist_interface`, `allow_dynamic_recursion` and `parent_relation`
        are accepted: every AL4 relation of a file to its parent (EXTRACTED, DYNAMIC, MEMDUMP,
        DOWNLOADED, ...) is Sluice's `dropped-by`, and the safelist service, not this call,
        filters safelisted children.
        """
        self._check_room()
        data = _read(path)
        if not data:
            return False
        self.extracted.append(Extracted(data, str(name), description, Relation(relation)))
        return True

    def add_related(self, kind: SampleKind | str, value: str, relation: Relation | str | None = None,
                    description: str = "") -> bool:
        """Report a URI, domain or IP this sample relates to, analysed as its child (MASS's relations).

        `relation` defaults by kind: a domain is `resolved-by`, an IP `contacted-by`, a URI
        `retrieved-by` this sample. Returns False, and relates nothing, for a malformed value (a
        service reporting what it found in hostile input must not crash on it); raises
        MaxExtractedExceeded past the limit, which extracted files and related samples share.
        """
        self._check_room()
        try:
            ref = sample_ref(kind, value)
        except SampleError:
            return False
        if any(r.ref == ref for r in self.related):
            return True
        self.related.append(Related(ref, description, Relation(relation or DEFAULT_RELATION[ref.kind])))
        return True

    def add_extracted_uri(self, description: str, uri: str, parent_relation: str = "DOWNLOADED") -> bool:
        """AL4's: a URI found here, analysed as a child (`add_related("uri", ...)`)."""
        return self.add_related(SampleKind.URI, uri, Relation.RETRIEVED_BY, description)

    def add_supplementary(self, path: str | os.PathLike | bytes, name: str, description: str = "",
                          classification: str | None = None, parent_relation: str = "INFORMATION") -> bool:
        """Keep a file for the analyst (a macro's source, a decoded script) without analysing it."""
        self.produced.append(Produced(_read(path), str(name), ObjectKind.SUPPLEMENTARY, description))
        return True

    def add_image(self, path: str | os.PathLike | bytes, name: str, description: str,
                  classification: str | None = None, ocr_heuristic_id: int | None = None,
                  ocr_io: object = None) -> dict[str, Any]:
        """Store an image beside the result (as a supplementary file) and return the entry an
        IMAGE body lists: `{"img": {...}, "thumb": {...}}`, each with name, description, sha256.

        Sluice makes no thumbnail (the web front scales the image) and runs no OCR: with
        `ocr_heuristic_id`, the entry carries an `ocr_section` saying so, which
        `ResultImageSection.add_image` adds as a subsection.
        """
        data = _read(path)
        self.add_supplementary(data, name, description)
        img = {"name": str(name), "description": description, "sha256": hashlib.sha256(data).hexdigest()}
        entry: dict[str, Any] = {"img": img, "thumb": {**img, "name": f"{name}_thumb"}}
        if ocr_heuristic_id is not None:
            entry["ocr_section"] = ResultSection(
                "OCR not run", f"{name}: Sluice has no OCR engine, so heuristic {ocr_heuristic_id} was not checked")
        return entry

    def partial(self) -> None:
        """Say this result is incomplete (a password was missing, a tool gave up): it is not cached,
        so the next scan runs the service again."""
        self.is_partial = True

    def set_service_context(self, context: str) -> None:
        """One line shown with the result (e.g. the engine and signature versions used)."""
        self.service_context = str(context)

    def download(self) -> str:
        """Assemblyline 3's name for `file_path`: the file on disk."""
        return self.file_path

    def get(self) -> bytes:
        """Assemblyline 3's name for `file_contents`."""
        return self.file_contents

    def submit_report(
        self,
        additional_metadata: dict[str, str | int | float | bool] | None = None,
        json_report_objects: dict[str, Any] | None = None,
        raw_report_objects: dict[str, bytes] | None = None,
        tags: list[str] | None = None,
        analysis_date: datetime | str | None = None,
    ) -> None:
        """MASS's ways to report, usable together.

        Metadata is small and stays in the summary; report objects are stored once in NATS and
        the summary keeps a reference (fetch them with `sluice result SID --object NAME`). MASS's
        report `tags` (free labels) and `analysis_date` go into the metadata as `tags` (joined
        with ", ") and `analysis_date` (ISO 8601). A report object whose name is already taken
        (the MASS tutorial names its JSON and raw objects alike) is kept as `NAME (json)` or
        `NAME (raw)`, so each can be fetched by name.
        """
        for key, value in (additional_metadata or {}).items():
            if not isinstance(value, (str, int, float, bool)):
                raise TypeError(f"additional_metadata[{key!r}] must be a str, int, float or bool, not {type(value).__name__}")
            self.metadata[str(key)] = value
        if tags:
            self.metadata["tags"] = ", ".join(str(t) for t in tags)
        if analysis_date is not None:
            self.metadata["analysis_date"] = analysis_date.isoformat() if isinstance(analysis_date, datetime) else str(analysis_date)
        for name, obj in (json_report_objects or {}).items():
            data = orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2)
            self._add_report(data, name, ObjectKind.JSON_REPORT)
        for name, raw in (raw_report_objects or {}).items():
            self._add_report(_read(raw), name, ObjectKind.RAW_REPORT)

    def _add_report(self, data: bytes, name: str, kind: ObjectKind) -> None:
        taken = {p.name for p in self.produced}
        name = str(name) if str(name) not in taken else f"{name} ({kind.value})"
        self.produced.append(Produced(data, name, kind, ""))

    def drop(self) -> None:
        """Stop later stages from running on this file (what FILTER and EXTRACT services are for)."""
        self.dropped = True

ServiceRequest = Request  # AL4's name for the request (type hints: `def execute(self, request: ServiceRequest)`)
