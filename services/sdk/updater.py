"""The rule updater (Assemblyline 4's update server, without a server).

For a service whose manifest has `update_config`, it fetches every source (http(s) or file
URIs), checks the set by loading it into a scratch instance of the service (a rule set that
`load_rules` refuses is never published), stores it once in the rule-set object store and
announces its version in the rules KV. Running instances see the announcement (`RulesFollower`)
and call `load_rules` with the new files, without a restart.
"""

from __future__ import annotations

import logging
import re
import shutil
import ssl
import tempfile
import time
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from bus.blobs import BlobStore
from bus.codec import BadMessage, decode, encode
from bus.provision import Stores
from bus.subjects import Names
from schemas.messages import FileRef, RuleSet, RulesAnnouncement
from services.sdk.base import ServiceBase, rules_digest
from services.sdk.manifest import UpdateConfig, UpdateSource

log = logging.getLogger("sluice.updater")

FETCH_TIMEOUT = 60.0
MAX_SOURCE_BYTES = 256 * 1024 * 1024


class UpdateError(RuntimeError):
    """A source could not be fetched, or the rule set it gave was refused."""


@dataclass(frozen=True)
class UpdateOutcome:
    version: str
    published: bool  # False: the set was already current
    files: list[str]


def _fetch_http(source: UpdateSource) -> bytes:
    request = urllib.request.Request(source.uri, headers=source.header_map)
    if source.username is not None:
        token = b64encode(f"{source.username}:{source.password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl._create_unverified_context() if source.ssl_ignore_errors else None  # noqa: S323 - operator's explicit choice
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT, context=context) as response:  # noqa: S310 - scheme checked by the manifest
        data = response.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise UpdateError(f"{source.name}: more than {MAX_SOURCE_BYTES} bytes")
    return data


def fetch_source(source: UpdateSource) -> dict[str, bytes]:
    """One source's files: a file URI or URL gives one file named after the source; a folder
    gives its files whose names match `pattern`, as `<source>.<file name>`."""
    if source.uri.startswith("file://"):
        path = Path(unquote(urlsplit(source.uri).path))
        if path.is_dir():
            pattern = re.compile(source.pattern)
            return {f"{source.name}.{p.name}": p.read_bytes() for p in sorted(path.iterdir())
                    if p.is_file() and pattern.fullmatch(p.name)}
        if not path.is_file():
            raise UpdateError(f"{source.name}: {path} does not exist")
        return {source.name: path.read_bytes()}
    try:
        return {source.name: _fetch_http(source)}
    except OSError as exc:
        raise UpdateError(f"{source.name}: {source.uri}: {exc}") from None


Importer = Callable[[UpdateSource, dict[str, bytes]], dict[str, bytes]]


def fetch_all(config: UpdateConfig, importer: Importer | None = None) -> dict[str, bytes]:
    """Every source's files; an `importer` (AL4's `import_update`) may turn each source's files
    into the rule files to publish."""
    files: dict[str, bytes] = {}
    for source in config.sources:
        if not source.enabled:  # AL4's switch for one source
            continue
        fetched = fetch_source(source)
        files.update(importer(source, fetched) if importer else fetched)
    if not files:
        raise UpdateError("the sources gave no files")
    return files


def write_rules(files: dict[str, bytes], folder: Path) -> list[str]:
    """Write a rule set's files into `folder`; names are plain (checked) so nothing escapes it."""
    paths = []
    for name, data in sorted(files.items()):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            raise UpdateError(f"rule file name {name!r} is not a plain file name")
        path = folder / name
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def check_rules(service: ServiceBase, files: dict[str, bytes]) -> None:
    """Load the set into `service` (a scratch instance); raise UpdateError if it refuses it."""
    with tempfile.TemporaryDirectory(prefix=f"sluice-rules-{service.manifest.name}-") as folder:
        try:
            service.set_rules(write_rules(files, Path(folder)))
        except UpdateError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever load_rules raises means "refused"
            raise UpdateError(f"{service.manifest.name} refused the rule set: {type(exc).__name__}: {exc}") from None


class Updater:
    """Keeps one service's rule set current in NATS."""

    def __init__(self, service: ServiceBase, js: JetStreamContext, names: Names, stores: Stores,
                 config: UpdateConfig | None = None, importer: Importer | None = None) -> None:
        self.service = service
        self.importer = importer
        self.name = service.manifest.name
        self.config = config or service.manifest.update_config
        if self.config is None:
            raise UpdateError(f"{self.name}: the manifest has no update_config")
        self.names = names
        self.stores = stores
        self.blobs = BlobStore(js, stores.rulesets, names.ruleset_store, inline_max=0)

    async def current(self) -> RulesAnnouncement | None:
        return await current_rules(self.stores, self.name)

    async def update_once(self) -> UpdateOutcome:
        """Fetch, check, and publish if the set changed. Raises UpdateError; the last good set stays."""
        files = await anyio.to_thread.run_sync(fetch_all, self.config, self.importer)
        version = rules_digest(files)
        current = await self.current()
        if current is not None and current.version == version:
            return UpdateOutcome(version, False, sorted(files))
        await anyio.to_thread.run_sync(check_rules, self.service, files)
        ruleset = RuleSet(self.name, version, files, [s.uri for s in self.config.sources], time.time())
        ref = await self.blobs.put(encode(ruleset), f"{self.name}-{version}")
        announcement = RulesAnnouncement(version, FileRef(ref.sha256, ref.size, ref.name), sorted(files), time.time())
        await self.stores.rules.put(self.name, encode(announcement))
        log.info("%s: published rule set %s (%d files)", self.name, version, len(files))
        return UpdateOutcome(version, True, sorted(files))

    async def run(self, stop: anyio.Event, on_update=None) -> None:
        """Update now and then every `update_interval_seconds` until `stop`; failures are logged."""
        while not stop.is_set():
            try:
                outcome = await self.update_once()
                if on_update:
                    on_update(outcome)
            except UpdateError as exc:
                log.error("%s: update failed, keeping the last good rule set: %s", self.name, exc)
            with anyio.move_on_after(self.config.update_interval_seconds):
                await stop.wait()


async def current_rules(stores: Stores, service: str) -> RulesAnnouncement | None:
    try:
        entry = await stores.rules.get(service)
    except KeyNotFoundError:
        return None
    return decode(entry.value, RulesAnnouncement) if entry.value else None


class RulesFollower:
    """In a running service: load each rule set the updater announces, keeping the last good one."""

    def __init__(self, service: ServiceBase, js: JetStreamContext, names: Names, stores: Stores, work_root: Path) -> None:
        self.service = service
        self.stores = stores
        self.blobs = BlobStore(js, stores.rulesets, names.ruleset_store, inline_max=0)
        self.work_root = work_root
        self.folder: Path | None = None  # the loaded set's files (services may read them lazily)
        self.refused: set[str] = set()  # versions that failed here; not retried every beat
        self.unreadable = ""  # why the announcement in the KV cannot be read, once said

    async def refresh(self) -> bool:
        """Load the announced set if it is new; True when the service's rules changed."""
        try:
            announced = await current_rules(self.stores, self.service.manifest.name)
        except BadMessage as exc:
            # A damaged or forged announcement: keep the current rules, and keep beating (this
            # runs in the heartbeat, and a service that stops beating is dropped from the mesh).
            if str(exc) != self.unreadable:
                self.unreadable = str(exc)
                log.error("%s: rules announcement ignored, keeping %s: %s", self.service.manifest.name,
                          self.service.rules_version or "the current rules", exc)
            return False
        if announced is None or announced.version in (self.service.rules_version, *self.refused):
            return False
        folder = Path(tempfile.mkdtemp(prefix=f"rules-{announced.version}-", dir=self.work_root))
        try:
            ruleset = decode(await self.blobs.get(announced.ref), RuleSet)
            paths = write_rules(ruleset.files, folder)
            await anyio.to_thread.run_sync(self.service.set_rules, paths)
        except Exception as exc:  # noqa: BLE001 - a bad set must never stop the service
            shutil.rmtree(folder, ignore_errors=True)
            self.refused.add(announced.version)
            log.error("%s: rule set %s refused, keeping %s: %s", self.service.manifest.name,
                      announced.version, self.service.rules_version or "the current rules", exc)
            return False
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = folder
        log.info("%s: now on rule set %s", self.service.manifest.name, announced.version)
        return True
