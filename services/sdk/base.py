"""`ServiceBase`: subclass it and override `execute`; the runner does everything else."""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from services.sdk import ontology
from services.sdk.manifest import Manifest, ManifestError
from services.sdk.ontology import OntologyHelper
from services.sdk.request import Request

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from bus.subjects import Names

# The manifest of the service being built by the loader: Assemblyline services call
# `super().__init__(config)` with no manifest, so the base class finds it here.
building_manifest: contextvars.ContextVar[Manifest] = contextvars.ContextVar("building_manifest")

T = TypeVar("T", bound=msgspec.Struct)


def rules_digest(files: dict[str, bytes]) -> str:
    """The version of a rule set: its files' names and bytes, hashed in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:12]


class RecoverableError(Exception):
    """Raise from `execute` when trying again may work (a busy back end, a flaky network).

    The dispatcher retries the task; any other exception is final for that file and service.
    """


class ServiceBase:
    """A service: `execute(request)` is the one method an author must write.

    `execute` may be a plain function (it runs in a worker thread) or `async def` (it runs on
    the event loop). `start`/`stop` bracket the service's life; `load_rules` gets rule files.
    """

    def __init__(self, config: Manifest | dict[str, Any] | None = None) -> None:
        if isinstance(config, Manifest):
            manifest, overrides = config, {}
        else:
            try:
                manifest = building_manifest.get()
            except LookupError:
                raise TypeError(f"build {type(self).__name__} with services.sdk.loader.load_service(folder), "
                                "or pass it its Manifest") from None
            overrides = dict(config or {})
        self.manifest = manifest
        self.service_attributes = manifest
        self.config: dict[str, Any] = {**manifest.config, **overrides}
        self.log = logging.getLogger(f"sluice.service.{manifest.name}")
        self.rules_list: list[str] = []
        self._rules_hash = ""

    @property
    def ontology(self) -> OntologyHelper:
        """AL4's ontology helper for the task being executed (services/sdk/ontology.py)."""
        return ontology.current()

    @classmethod
    def class_manifest(cls) -> dict[str, Any] | None:
        """The manifest a class gives itself when its folder has no service_manifest.yml
        (Assemblyline 3's `SERVICE_*` attributes); None: it needs the file."""
        return None

    def config_as(self, model: type[T]) -> T:
        """`self.config` as a typed `model` (a msgspec Struct whose field names are config keys).

        Why: typed values instead of `int(config.get(key, default))` scattered over a service;
        validated at start when called from `__init__` (a bad deployment override fails as the
        service is built, naming the key, not at the first file); and one place for the
        defaults, the model's fields. Lenient about form (a YAML int for a float field is fine).
        Keys the model does not declare are ignored, since a service may read other keys
        directly, unless the model sets `forbid_unknown_fields`. Nothing is cached: keep the
        result.
        """
        try:
            return msgspec.convert(self.config, model, strict=False)
        except msgspec.ValidationError as exc:  # its message ends with the key: "- at `$.max_sections`"
            raise ManifestError(f"service {self.manifest.name}: config for {model.__name__}: {exc}") from None

    def start(self) -> None:
        """Warm up once before the first task (load models, open handles)."""

    def stop(self) -> None:
        """Release what `start` took."""

    def periodic(self) -> None:
        """Called every few seconds while the service runs (in a worker thread, beside the tasks):
        for work on a clock, such as AL3's update callbacks."""

    def execute(self, request: Request) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement execute(request)")

    def load_rules(self, rules_paths: list[str]) -> None:
        """Take a new rule set; called at start and whenever the updater publishes new rules.

        Raise if the rules are unusable: the service then keeps the rules it had. Assemblyline's
        zero-argument form, `load_rules(self)` reading `self.rules_list`, works too.
        """

    async def attach(self, js: JetStreamContext, names: Names) -> None:
        """Called by the runner once connected, before `start`: for services that keep state in
        NATS (the safelist reads its KV bucket). The no-NATS harness never calls it."""

    def set_rules(self, rules_paths: list[str]) -> None:
        """Hand rule files to the service and make their hash the tool version.

        If `load_rules` raises, the previous rules, and the previous tool version, stay.
        """
        version = rules_digest({Path(p).name: Path(p).read_bytes() for p in rules_paths})
        previous = self.rules_list
        self.rules_list = list(rules_paths)
        try:
            if len(inspect.signature(self.load_rules).parameters) == 0:
                self.load_rules()  # type: ignore[call-arg]
            else:
                self.load_rules(list(rules_paths))
        except BaseException:
            self.rules_list = previous
            raise
        self._rules_hash = version

    def get_tool_version(self) -> str:
        """Part of the cache key: the manifest's `tool_version` and the rules' version, so results
        made with older rules are not reused."""
        tool, rules = self.manifest.tool_version, self._rules_hash
        return f"{tool}+{rules}" if tool and rules else tool or rules

    @property
    def rules_version(self) -> str:
        return self._rules_hash
