"""`service_manifest.yml`, validated into a Struct when the service starts, not at its first task."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any, List

import msgspec
import orjson
import yaml

from schemas.messages import SampleKind, Stage


log = logging.getLogger("sluice.manifest")


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
    use_managed_identity: bool = False
    enabled: bool = True
    override_classification: bool = False
    update_interval: int | None = None
    ignore_cache: bool = False
    data: str | None = None

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
    # Assemblyline's, accepted so its manifests load; a rule file is used whole here.
    signature_delimiter: str = "double_new_line"
    custom_delimiter: str | None = None
    default_pattern: str = ".*"


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
    service_path: str | None = None  # Sluice's: `module.Class`, when neither a Dockerfile nor service.py says
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
    recursion_prevention: list[str] = []
    auto_update: bool | None = None

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


# Assemblyline 4 fields a manifest may carry that Sluice reads but does not act on: a manifest
# that sets one (to something other than its default) is told so in one warning at load.
NOT_ACTED_ON = {
    "docker_config": "containers are the operator's, in compose.yaml",
    "dependencies": "the updater runs as `sluice service update` or `python -m update_server`",
    "privileged": "every service talks to NATS only",
    "privileged_mode": "every service talks to NATS only",
    "classification": "no classification engine",
    "default_result_classification": "no classification engine",
    "is_external": "no external-service accounting",
    "licence_count": "scale by starting instances",
    "uses_tags": "services see the file, not other services' tags",
    "uses_tag_scores": "services see the file, not other services' tags",
    "uses_metadata": "submission metadata is not passed to services",
    "max_queue_length": "JetStream consumers bound the queue",
    "min_instances": "scale by starting instances",
    "monitored_keys": "partial results are not re-run on temp data changes",
    "update_channel": "one update stream",
    "recursion_prevention": "cycles end by sha256 per tree",
    "auto_update": "deployments are the operator's",
    "heuristics[].classification": "no classification engine",
}


def not_acted_on(raw: dict[str, Any]) -> list[str]:
    """The fields of `raw` (a manifest as written) that Sluice accepts but does not act on."""
    defaults = Manifest(name="x", version="0")
    fields = [f for f in NOT_ACTED_ON if f in raw and raw[f] != getattr(defaults, f)]
    for heur in raw.get("heuristics") or []:
        if isinstance(heur, dict) and heur.get("classification"):
            fields.append("heuristics[].classification")
            break
    return fields


def _unknown_field_hint(message: str) -> str:
    """A top-level field that belongs under update_config: the indentation the AL4 guide lost."""
    found = re.search(r"unknown field `([a-z_]+)`", message)
    if found and found.group(1) in UpdateConfig.__struct_fields__:
        return f"{message} (it is an update_config field: indent it under `update_config:`)"
    return message


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
        manifest = msgspec.convert(raw, Manifest)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ManifestError(f"{source}: {_unknown_field_hint(str(exc))}") from None
    ignored = not_acted_on(raw)
    if ignored:
        log.warning("%s: fields Sluice accepts but does not act on: %s (services/WRITING.md §2)",
                    source, "; ".join(f"`{f}`: {NOT_ACTED_ON[f]}" for f in ignored))
    return manifest


def version_as_written(text: str) -> str | None:
    """The top-level `version` exactly as the YAML source writes it.

    YAML reads `version: 1.10` as the float 1.1, so bumping 1.1 to 1.10 would look like no
    change and reuse 1.1's cached results; the source text keeps them apart.
    """
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if key.value == "version" and isinstance(value, yaml.ScalarNode):
            return value.value
    return None


def load_manifest(path: str | Path, overrides: dict[str, Any] | None = None) -> Manifest:
    path = Path(path)
    if path.is_dir():
        path = path / "service_manifest.yml"
    try:
        text = path.read_text()
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a manifest is a mapping of fields, got {type(raw).__name__}")
    if isinstance(raw.get("version"), (int, float)):
        raw["version"] = version_as_written(text)
    return parse_manifest(raw, str(path), overrides)
