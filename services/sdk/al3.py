"""Assemblyline 3's service API, with AL3's names and meanings, so its tutorial runs with only
its import lines changed (`from assemblyline.al.service.base import ...`,
`from assemblyline.al.common.result import ...`, `from assemblyline.common.timeout import ...`,
`from assemblyline.common.reaper import ...` all become `from services.sdk.al3 import ...`).

- `SERVICE_*` class attributes are the manifest: a folder needs no service_manifest.yml.
- `ResultSection(SCORE.HIGH, "title")`: score first, as AL3. Sluice scores only through
  heuristics, so each non-zero SCORE constant is a heuristic of the class's manifest (ids 3000
  and up, named after the constant); a section with a score fires it. A score that is not a
  SCORE constant is refused when the section is made, saying so.
- `result.add_tag(TAG_TYPE.NET_PROTOCOL, "tcp", TAG_WEIGHT.NULL, usage=TAG_USAGE.IDENTIFICATION)`:
  AL3 tag types are mapped to AL4's dotted names; weight, usage and classification are accepted
  and not kept (Sluice tags have none).
- `self.cfg` is the config (`SERVICE_DEFAULT_CONFIG`, then deployment overrides);
  `import_service_deps()` runs once when the service is built.
- `_register_update_callback(cb, utype=..., freq=..., blocking=..., execute_now=...)` runs `cb`
  now (unless execute_now=False) and then every `freq` seconds in the running service; a
  blocking callback never runs while `execute` does.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from services.sdk.base import ServiceBase as _ServiceBase
from services.sdk.request import Request
from services.sdk.result import BODY_FORMAT, ResultSection as _ResultSection
from services.sdk.result import Result as _Result
from services.sdk.timers import SubprocessTimer, TimeoutException, set_death_signal, timeout

__all__ = [
    "BODY_FORMAT", "SCORE", "TAG_TYPE", "TAG_USAGE", "TAG_WEIGHT", "Classification", "Result", "ResultSection",
    "ServiceBase", "SubprocessTimer", "TimeoutException", "UpdaterFrequency", "UpdaterType", "set_death_signal",
    "timeout",
]


class SCORE:
    """AL3's section scores, least to most suspicious. A file over 500 raises an alert."""

    NOT = -1000  # certainly not malicious
    OK = -100  # probably safe
    NULL = 0  # informational
    INFO = 1
    LOW = 10
    MED = 100
    HIGH = 500
    VHIGH = 750
    SURE = 1000  # certainly malicious, by itself


SCORE_HEURISTIC_BASE = 3000
_SCORES = [(name, value) for name, value in vars(SCORE).items() if name.isupper() and value != 0]
_HEURISTIC_OF_SCORE = {value: SCORE_HEURISTIC_BASE + i for i, (_, value) in enumerate(_SCORES)}


def score_heuristics() -> list[dict[str, Any]]:
    """The manifest heuristics that stand for AL3's SCORE constants."""
    return [{"heur_id": _HEURISTIC_OF_SCORE[value], "name": f"AL3 score {name}", "score": value,
             "description": f"an Assemblyline 3 section scored SCORE.{name}"} for name, value in _SCORES]


class TAG_TYPE:  # noqa: N801 - AL3's name
    """AL3 tag types, as the AL4 dotted names Sluice's taxonomy holds."""

    NET_PROTOCOL = "network.protocol"
    NET_DOMAIN_NAME = "network.static.domain"
    NET_IP = "network.static.ip"
    NET_FULL_URI = "network.static.uri"
    NET_PORT = "network.port"
    NET_EMAIL = "network.email.address"
    NET_UNC_PATH = "network.static.unc_path"
    FILE_NAME = "file.name.extracted"
    FILE_STRING = "file.string.extracted"
    FILE_DECODED_STRING = "file.string.decoded"
    FILE_API_STRING = "file.string.api"
    FILE_YARA_RULE = "file.rule.yara"
    FILE_CONFIG = "file.config"
    AV_VIRUS_NAME = "av.virus_name"
    PE_PDB_FILENAME = "file.pe.pdb_filename"
    PE_IMPORT_HASH = "file.pe.imports.imphash"
    PE_SECTION_HASH = "file.pe.sections.hash"
    PE_SECTION_NAME = "file.pe.sections.name"
    DYNAMIC_MUTEX_NAME = "dynamic.mutex"
    REGISTRY_KEY = "dynamic.registry_key"
    DYNAMIC_PROCESS_COMMANDLINE = "dynamic.process.command_line"
    TECHNIQUE_OBFUSCATION = "technique.obfuscation"
    TECHNIQUE_PACKER = "technique.packer"
    THREAT_ACTOR = "attribution.actor"
    IMPLANT_NAME = "attribution.implant"
    IMPLANT_FAMILY = "attribution.family"
    EXPLOIT_NAME = "attribution.exploit"


class TAG_WEIGHT:  # noqa: N801 - AL3's name; Sluice keeps no weights
    NULL = 0
    LOW = 1
    MED = 10
    HIGH = 50
    VHIGH = 100


class TAG_USAGE:  # noqa: N801 - AL3's name; Sluice keeps no usage
    CORRELATION = "CORRELATION"
    IDENTIFICATION = "IDENTIFICATION"
    INFO = "INFO"
    IGNORE = "IGNORE"


class Classification:
    """AL3's marking; Sluice has no classification engine, so every result is UNRESTRICTED."""

    UNRESTRICTED = ""


class UpdaterType:
    """Where AL3 ran an update; in Sluice every callback runs in each service process."""

    BOX = "box"
    CLUSTER = "cluster"
    PROCESS = "process"


class UpdaterFrequency:
    """Seconds between two runs of an update callback."""

    MINUTE = 60
    QUARTER_HOUR = 15 * 60
    HALF_HOUR = 30 * 60
    HOUR = 60 * 60
    QUARTER_DAY = 6 * 60 * 60
    HALF_DAY = 12 * 60 * 60
    DAY = 24 * 60 * 60
    WEEK = 7 * 24 * 60 * 60


class ResultSection(_ResultSection):
    """AL3's section: `ResultSection(score, title_text, classification, parent, body, body_format)`."""

    def __init__(self, score: int = SCORE.NULL, title_text: str | list[str] | None = None,
                 classification: str | None = None, parent: _ResultSection | _Result | None = None,
                 body: Any = None, body_format: str | None = None, **kwargs: Any) -> None:
        if isinstance(score, str) and title_text is None:  # AL4's order, title first: a section of score NULL
            score, title_text = SCORE.NULL, score
        if title_text is None:
            raise TypeError("an AL3 ResultSection needs a title: ResultSection(SCORE.X, 'title')")
        if not isinstance(score, int) or (score != 0 and score not in _HEURISTIC_OF_SCORE):
            known = ", ".join(f"SCORE.{n}" for n, _ in _SCORES)
            raise ValueError(f"section {title_text!r}: score {score!r} is not a SCORE constant (Sluice scores "
                             f"through the manifest's heuristics, one per constant: {known})")
        super().__init__(title_text, body, classification, body_format or BODY_FORMAT.TEXT, parent=parent, **kwargs)
        self.score = score
        if score:
            self.set_heuristic(_HEURISTIC_OF_SCORE[score])

    def add_tag(self, tag_type: str, value: str | bytes | int, weight: int | None = None,
                usage: str | None = None, classification: str | None = None, context: str | None = None) -> None:
        super().add_tag(tag_type, value)


class Result(_Result):
    """AL3's result: sections, and tags of the whole result with AL3's weight and usage."""

    def add_tag(self, tag_type: str, value: str | bytes | int, weight: int | None = None,
                usage: str | None = None, classification: str | None = None, context: str | None = None) -> None:
        super().add_tag(tag_type, value)


class ServiceBase(_ServiceBase):
    """An AL3 service: configured by its `SERVICE_*` class attributes, no manifest file needed."""

    SERVICE_NAME: ClassVar[str | None] = None  # default: the class's name
    SERVICE_DESCRIPTION: ClassVar[str] = ""
    SERVICE_VERSION: ClassVar[str] = "1"
    SERVICE_REVISION: ClassVar[str] = "0"
    SERVICE_ACCEPTS: ClassVar[str] = ".*"
    SERVICE_REJECTS: ClassVar[str] = "empty"
    SERVICE_CATEGORY: ClassVar[str] = "Static Analysis"
    SERVICE_STAGE: ClassVar[str] = "CORE"
    SERVICE_ENABLED: ClassVar[bool] = True
    SERVICE_TIMEOUT: ClassVar[int] = 60
    SERVICE_DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {}
    SERVICE_CPU_CORES: ClassVar[float | None] = None
    SERVICE_RAM_MB: ClassVar[int | None] = None

    @staticmethod
    def parse_revision(revision: str) -> str:
        """The revision number in a Subversion `$Id: file 1234 ... $` keyword, else "0"."""
        found = re.search(r"\$Id: \S+ (\d+)", revision or "")
        return found.group(1) if found else "0"

    @classmethod
    def class_manifest(cls) -> dict[str, Any]:
        """The manifest the `SERVICE_*` attributes describe; `version` is VERSION.REVISION, so a new
        revision does not reuse the old one's cached results."""
        docker = {k: v for k, v in (("cpu_cores", cls.SERVICE_CPU_CORES), ("ram_mb", cls.SERVICE_RAM_MB)) if v}
        return {
            "name": cls.SERVICE_NAME or cls.__name__, "version": f"{cls.SERVICE_VERSION}.{cls.SERVICE_REVISION}",
            "description": cls.SERVICE_DESCRIPTION or (cls.__doc__ or "").strip(), "accepts": cls.SERVICE_ACCEPTS,
            "rejects": cls.SERVICE_REJECTS, "category": cls.SERVICE_CATEGORY, "stage": cls.SERVICE_STAGE,
            "enabled": cls.SERVICE_ENABLED, "timeout": cls.SERVICE_TIMEOUT,
            "config": dict(cls.SERVICE_DEFAULT_CONFIG), "heuristics": score_heuristics(),
            **({"docker_config": docker} if docker else {}),
        }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A service's own `execute` waits while a blocking update callback runs."""
        super().__init_subclass__(**kwargs)
        if "execute" in vars(cls) and not inspect.iscoroutinefunction(cls.execute):
            inner = cls.execute

            @functools.wraps(inner)
            def execute(self: ServiceBase, request: Request) -> None:
                with self._updating:
                    return inner(self, request)

            cls.execute = execute  # type: ignore[method-assign]

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.cfg = self.config
        self._updating = threading.Lock()
        self._callbacks: list[_UpdateCallback] = []
        self.import_service_deps()

    def import_service_deps(self) -> None:
        """Import what the service needs beyond the standard library (`global x; import x`)."""

    def _register_update_callback(self, callback: Callable[..., Any], execute_now: bool = True,
                                  utype: str = UpdaterType.PROCESS, freq: float = UpdaterFrequency.HOUR,
                                  blocking: bool = False) -> None:
        entry = _UpdateCallback(callback, float(freq), blocking, utype)
        self._callbacks.append(entry)
        if execute_now:
            self._run_callback(entry)

    def _run_callback(self, entry: _UpdateCallback) -> None:
        entry.last = time.monotonic()
        if entry.blocking:
            with self._updating:
                entry.callback()
        else:
            entry.callback()

    def periodic(self) -> None:
        for entry in self._callbacks:
            if time.monotonic() - entry.last >= entry.freq:
                try:
                    self._run_callback(entry)
                except Exception:  # noqa: BLE001 - a failed update keeps the service running, as AL3
                    self.log.exception("update callback %s failed", getattr(entry.callback, "__name__", entry.callback))


class _UpdateCallback:
    def __init__(self, callback: Callable[..., Any], freq: float, blocking: bool, utype: str) -> None:
        self.callback, self.freq, self.blocking, self.utype = callback, freq, blocking, utype
        self.last = time.monotonic()
