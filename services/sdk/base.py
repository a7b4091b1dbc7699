"""`ServiceBase`: subclass it and override `execute`; the runner does everything else."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from services.sdk.manifest import Manifest
from services.sdk.request import Request


class RecoverableError(Exception):
    """Raise from `execute` when trying again may work (a busy back end, a flaky network).

    The dispatcher retries the task; any other exception is final for that file and service.
    """


class ServiceBase:
    """A service: `execute(request)` is the one method an author must write.

    `execute` may be a plain function (it runs in a worker thread) or `async def` (it runs on
    the event loop). `start`/`stop` bracket the service's life; `load_rules` gets rule files.
    """

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.service_attributes = manifest
        self.config: dict[str, Any] = dict(manifest.config)
        self.log = logging.getLogger(f"sluice.service.{manifest.name}")
        self.rules_list: list[str] = []
        self._rules_hash = ""

    def start(self) -> None:
        """Warm up once before the first task (load models, open handles)."""

    def stop(self) -> None:
        """Release what `start` took."""

    def execute(self, request: Request) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement execute(request)")

    def load_rules(self, rules_paths: list[str]) -> None:
        """Take a new rule set; called at start and whenever the rules change."""

    def set_rules(self, rules_paths: list[str]) -> None:
        """Hand rule files to the service and make their hash the tool version."""
        digest = hashlib.sha256()
        for path in sorted(rules_paths):
            digest.update(Path(path).read_bytes())
        self.load_rules(list(rules_paths))
        self.rules_list = list(rules_paths)
        self._rules_hash = digest.hexdigest()[:12]

    def get_tool_version(self) -> str:
        """Part of the cache key; by default the manifest's `tool_version` or the rules' hash."""
        return self.manifest.tool_version or self._rules_hash
