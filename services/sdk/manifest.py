"""`service_manifest.yml`, validated into a Struct when the service starts, not at its first task."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, List

import msgspec
import orjson
import yaml

from schemas.messages import SampleKind, Stage


class ManifestError(ValueError):
    """A manifest that cannot run; the message names the file and the field."""


class HeuristicSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    heur_id: int
    name: str
    score: int
    filetype: str = ".*"
    description: str = ""
    attack_id: str | list[str] | None = None
    max_score: int | None = None
    signature_score_map: dict[str, int] = {}
    classification: str = ""  # Assemblyline's; accepted, no effect here

    @property
    def attack_ids(self) -> list[str]:
        """The manifest's ATT&CK ids, used when the section names none."""
        if self.attack_id is None:
            return []
        return [self.attack_id] if isinstance(self.attack_id, str) else list(self.attack_id)


class SubmissionParam(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    type: str
    default: Any
    value: Any = None
    list: List[Any] = []  # noqa: UP006 - `list` is a field name here, so the builtin is shadowed
    hide: bool = False


class UpdateSource(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where the updater fetches rules: an http(s) or file URI (a file, or a folder of files)."""

    name: str
    uri: str
    pattern: str = ".*"  # for a folder: which file names to take
    headers: dict[str, str] | list[dict[str, str]] = {}  # a mapping, or Assemblyline's [{name, value}]
    username: str | None = None
    password: str | None = None
    ssl_ignore_errors: bool = False
    # Assemblyline source fields accepted so its manifests load; Sluice does not use them yet.
    ca_cert: str | None = None
    private_key: str | None = None
    proxy: str | None = None
    default_classification: str = ""
    git_branch: str | None = None
    sync: bool = False
    fetch_method: str = "GET"
    configuration: dict[str, Any] = {}

    @property
    def header_map(self) -> dict[str, str]:
        if isinstance(self.headers, dict):
            return dict(self.headers)
        return {h["name"]: h.get("value", "") for h in self.headers}

    def __post_init__(self) -> None:
        if isinstance(self.headers, list) and not all("name" in h for h in self.headers):
            raise ValueError(f"update source {self.name}: each header in a list needs a `name`")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"update source name {self.name!r}: letters, digits, '_', '-', '.' only (it names a file)")
        if not self.uri.startswith(("http://", "https://", "file://")):
            raise ValueError(f"update source {self.name}: uri must be http(s):// or file://, got {self.uri!r}")


class UpdateConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    sources: list[UpdateSource]
    update_interval_seconds: int = 3600
    generates_signatures: bool = True
    wait_for_update: bool = False


class Manifest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The Assemblyline 4 manifest fields that mean something here, with the same defaults."""

    name: str
    version: str
    description: str = ""
    accepts: str = ".*"
    rejects: str = "empty|metadata/.*"
    stage: Stage = Stage.CORE
    # The kinds of sample it takes; `accepts` is matched within their types (a `.*` service
    # that says nothing here never sees a URI, domain or IP).
    kinds: list[SampleKind] = msgspec.field(default_factory=lambda: [SampleKind.FILE])
    category: str = "Static Analysis"
    file_required: bool = True
    timeout: float = 60.0
    enabled: bool = True
    concurrency: int = 1  # tasks at once per instance; 1 as Assemblyline, so ported services need no locks
    disable_cache: bool = False
    uses_temp_submission_data: bool = False  # reads temp data: the result cache keys on it too
    heuristics: list[HeuristicSpec] = []
    config: dict[str, Any] = {}
    submission_params: list[SubmissionParam] = []
    docker_config: dict[str, Any] = {}
    update_config: UpdateConfig | None = None
    tool_version: str | None = None
    # Accepted so an Assemblyline manifest loads unchanged; Sluice has no use for them.
    dependencies: dict[str, Any] = {}
    privileged: bool = False
    classification: str = ""
    default_result_classification: str = ""
    is_external: bool = False
    licence_count: int = 0
    uses_tags: bool = False
    uses_metadata: bool = False
    uses_tag_scores: bool = False
    max_queue_length: int = 0
    min_instances: int = 0
    monitored_keys: list[str] = []
    update_channel: str = ""
    privileged_mode: bool = False

    def __post_init__(self) -> None:
        for field in ("accepts", "rejects"):
            try:
                re.compile(getattr(self, field))
            except re.error as exc:
                raise ValueError(f"`{field}` is not a valid regex: {exc}") from None
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ValueError("`name` must be letters, digits, '_' or '-' (it names a NATS consumer)")
        if self.timeout <= 0 or self.concurrency < 1:
            raise ValueError("`timeout` must be > 0 and `concurrency` ≥ 1")
        ids = [h.heur_id for h in self.heuristics]
        if len(ids) != len(set(ids)):
            raise ValueError("`heuristics`: heur_id values must be unique")

    def heuristic(self, heur_id: int) -> HeuristicSpec | None:
        return next((h for h in self.heuristics if h.heur_id == heur_id), None)

    @property
    def config_hash(self) -> str:
        """Part of the result-cache key: a change of config or of heuristic scores must not reuse
        old results (a change of code must bump `version`)."""
        blob = orjson.dumps([self.config, msgspec.to_builtins(self.heuristics)], option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(blob).hexdigest()[:16]


def parse_manifest(raw: dict[str, Any], source: str, overrides: dict[str, Any] | None = None) -> Manifest:
    """Validate a manifest mapping; `overrides` replace keys of its `config` block (per deployment)."""
    if isinstance(raw.get("version"), (int, float)):  # `version: 1` in YAML is a number
        raw = {**raw, "version": str(raw["version"])}
    if overrides:
        # A deployment can change keys the manifest declares, not add new ones: a misspelled
        # key would otherwise be dropped without a word and the default used instead.
        declared = raw.get("config") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            known = ", ".join(sorted(declared)) or "none"
            raise ManifestError(f"{source}: config override {', '.join(map(repr, unknown))} is not a key of the "
                                f"manifest's config block (keys: {known})")
        raw = {**raw, "config": {**declared, **overrides}}
    try:
        return msgspec.convert(raw, Manifest)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ManifestError(f"{source}: {exc}") from None


def load_manifest(path: str | Path, overrides: dict[str, Any] | None = None) -> Manifest:
    path = Path(path)
    if path.is_dir():
        path = path / "service_manifest.yml"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a manifest is a mapping of fields, got {type(raw).__name__}")
    return parse_manifest(raw, str(path), overrides)
