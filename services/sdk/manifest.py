"""`service_manifest.yml`, validated into a Struct when the service starts, not at its first task."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, List

import msgspec
import orjson
import yaml

from schemas.messages import Stage


class ManifestError(ValueError):
    """A manifest that cannot run; the message names the file and the field."""


class Heuristic(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    heur_id: int
    name: str
    score: int
    filetype: str = ".*"
    description: str = ""
    attack_id: str | list[str] | None = None
    max_score: int | None = None
    signature_score_map: dict[str, int] = {}


class SubmissionParam(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    type: str
    default: Any
    value: Any = None
    list: List[Any] = []  # noqa: UP006 - `list` is a field name here, so the builtin is shadowed
    hide: bool = False


class Manifest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The Assemblyline 4 manifest fields that mean something here, with the same defaults."""

    name: str
    version: str
    description: str = ""
    accepts: str = ".*"
    rejects: str = "empty|metadata/.*"
    stage: Stage = Stage.CORE
    category: str = "Static Analysis"
    file_required: bool = True
    timeout: float = 60.0
    enabled: bool = True
    concurrency: int = 4
    disable_cache: bool = False
    heuristics: list[Heuristic] = []
    config: dict[str, Any] = {}
    submission_params: list[SubmissionParam] = []
    docker_config: dict[str, Any] = {}
    update_config: dict[str, Any] | None = None
    tool_version: str | None = None

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

    def heuristic(self, heur_id: int) -> Heuristic | None:
        return next((h for h in self.heuristics if h.heur_id == heur_id), None)

    @property
    def config_hash(self) -> str:
        """Part of the result-cache key: a config change must not reuse old results."""
        blob = orjson.dumps(self.config, option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(blob).hexdigest()[:16]


def parse_manifest(raw: dict[str, Any], source: str, overrides: dict[str, Any] | None = None) -> Manifest:
    """Validate a manifest mapping; `overrides` replace keys of its `config` block (per deployment)."""
    if overrides:
        raw = {**raw, "config": {**raw.get("config", {}), **overrides}}
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
