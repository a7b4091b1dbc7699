"""MASS's analysis-client API on Sluice: an analysis written as in the MASS tutorial runs as a
Sluice service with only its import lines changed.

    from services.sdk.mass import FileAnalysisClient

    class SizeAnalysisInstance(FileAnalysisClient):
        def do_analysis(self, analysis_request):
            with self.temporary_sample_file() as file:
                self.submit_report(analysis_request["url"], additional_metadata={"file size": os.path.getsize(file)})

MASS has four client classes, one per kind of sample, and so has this module:
`FileAnalysisClient`, `DomainAnalysisClient`, `IPAnalysisClient` and `URIAnalysisClient`. Each
gets only its kind (a domain client's manifest need not say `kinds: [domain]`), and its
`sample_dict` has the keys MASS gives for that kind (`domain`, `ip_address`, `uri`, ...).

What MASS polls its server for, Sluice delivers as a task; the report goes into the result
(metadata in the summary, report objects stored once in NATS and referenced). A sample the
analysis finds is related with MASS's relation methods (`submit_contacted_by_sample_relation`,
...) and analysed as a child.

MASS's own run model works too: build the client from its INI config (a `ConfigParser`) and
call `start()`; it joins the mesh in a thread of its own until `shutdown()`:

    config = configparser.ConfigParser(); config.read("size.ini")
    client = SizeAnalysisInstance(config)
    client.start()

The INI's `[GLOBAL] ServerURL` is the NATS URL (a MASS http:// URL falls back to
$SLUICE_NATS_URL), `[GLOBAL] Prefix` the Sluice prefix (default `sluice`); the client's own
section (named after its class) gives the service's name (`SystemName`) and its config (every
other key). MASS's `APIEndpoint`, `SleepTime`, `PollTime`, `UUID` and `mass api key` have no
use here: NATS pushes the work, and NATS credentials come from $SLUICE_NATS_CREDS.
"""

from __future__ import annotations

import configparser
import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import anyio
import anyio.to_thread
import msgspec

from bus.connect import DEFAULT_URL_ENV
from bus.subjects import Names
from schemas.messages import Relation, SampleKind
from schemas.samples import canonical, node_key
from services.sdk.base import ServiceBase
from services.sdk.manifest import Manifest, ManifestError, parse_manifest
from services.sdk.request import Request
from services.sdk.serve import run_service

log = logging.getLogger("sluice.mass")

_current: contextvars.ContextVar[Request] = contextvars.ContextVar("mass_request")


def _request() -> Request:
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("only usable while do_analysis runs") from None


@contextlib.contextmanager
def temporary_sample_file() -> Iterator[str]:
    """The tutorial imports this too: the current sample's path, inside `do_analysis`."""
    yield _request().file_path


def _for_kind(manifest: Manifest, kind: SampleKind, client: str) -> Manifest:
    """The manifest, taking `kind`: a client of one kind never gets another (MASS checks `_cls`)."""
    if manifest.kinds == [kind]:
        return manifest
    if manifest.kinds == [SampleKind.FILE]:  # the default: the manifest did not say
        return msgspec.structs.replace(manifest, kinds=[kind])
    listed = ", ".join(k.value for k in manifest.kinds)
    raise ManifestError(f"service {manifest.name}: a {client} analyses {kind.value} samples only, "
                        f"but its manifest lists kinds [{listed}] (list [{kind.value}], or leave kinds out)")


def ini_manifest(cls: type, config: configparser.ConfigParser) -> Manifest:
    """The manifest a MASS INI config describes for client class `cls`: its section names the
    service (`SystemName`) and holds its config."""
    if not config.has_section(cls.__name__):
        raise ManifestError(f"MASS config: no [{cls.__name__}] section (the client's section is named after its class)")
    section = dict(config[cls.__name__])
    mass_only = {"polltime", "uuid", "systemname", "mass api key"}
    raw = {"name": section.get("systemname", cls.__name__), "version": "1",
           "config": {k: v for k, v in section.items() if k not in mass_only and k not in config.defaults()}}
    return parse_manifest(raw, f"MASS config [{cls.__name__}]")


def ini_connection(config: configparser.ConfigParser) -> tuple[str, str]:
    """(NATS URL, prefix) from the INI's [GLOBAL] section."""
    glob = config["GLOBAL"] if config.has_section("GLOBAL") else {}
    url = glob.get("ServerURL", "")
    if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
        url = os.environ.get(DEFAULT_URL_ENV, "")
        if not url:
            raise ManifestError(f"MASS config: [GLOBAL] ServerURL {glob.get('ServerURL')!r} is not a NATS URL; "
                                f"set it to nats://HOST:4222 (or set {DEFAULT_URL_ENV})")
    return url, glob.get("Prefix", "sluice")


class AnalysisClient(ServiceBase):
    """What MASS's four client classes share. Subclass one of them, not this."""

    kind: ClassVar[SampleKind]
    mass_class: ClassVar[str]  # MASS's `_cls` for the kind of sample
    sample_key: ClassVar[str]  # the sample dict's key for the sample's value

    def __init__(self, config: Manifest | dict[str, Any] | configparser.ConfigParser | None = None) -> None:
        self._standalone: tuple[str, str] | None = None
        if isinstance(config, configparser.ConfigParser):  # MASS's run model: an INI, then start()
            self._standalone = ini_connection(config)
            config = ini_manifest(type(self), config)
        super().__init__(config)
        client = next(c.__name__ for c in type(self).__mro__ if "kind" in vars(c))  # e.g. DomainAnalysisClient
        self.manifest = self.service_attributes = _for_kind(self.manifest, self.kind, client)
        self.ready = threading.Event()  # set once the client, started with start(), takes tasks
        self._shutdown = threading.Event()
        self._thread: threading.Thread | None = None

    # -- MASS's run model: a thread per client ------------------------------------------------
    def start(self) -> None:
        """MASS's `start()`: join the mesh in a thread of its own (for a client built from an INI
        config). Called by Sluice's runner it is the warm-up hook, and does nothing."""
        if self._standalone is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=anyio.run, args=(self._serve,), name=f"mass-{self.manifest.name}")
        self._thread.start()

    async def _serve(self) -> None:
        url, prefix = self._standalone or ("", "")
        stop, started = anyio.Event(), anyio.Event()

        async def until_shutdown() -> None:
            await anyio.to_thread.run_sync(self._shutdown.wait, abandon_on_cancel=True)
            stop.set()

        async def mark_ready() -> None:
            await started.wait()
            self.ready.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(until_shutdown)
            tg.start_soon(mark_ready)
            try:
                await run_service(self, url, Names(prefix), stop, started)
            finally:
                tg.cancel_scope.cancel()

    def shutdown(self, timeout: float | None = 30) -> None:
        """Stop a client started with `start()`: it finishes its task, leaves the mesh, and its thread ends."""
        self._shutdown.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def do_analysis(self, analysis_request: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement do_analysis(analysis_request)")

    def execute(self, request: Request) -> None:
        if request.sample_kind is not self.kind:  # only by hand (`sluice service test`): the mesh routes by kind
            raise ValueError(f"ERROR - No {self.kind.value} found to scan (got a {request.sample_kind.value} sample)")
        # Each task runs in its own context (worker thread), so concurrent tasks never share this.
        token = _current.set(request)
        try:
            self.do_analysis({"url": request.sid, "sample": self.sample_dict, "parameters": request.temp_submission_data})
        finally:
            _current.reset(token)

    @property
    def request(self) -> Request:
        """The task's whole `Request`, for what MASS has no word for (sections, scores, children)."""
        return _request()

    @property
    def sample_dict(self) -> dict[str, Any]:
        """The sample's meta-information, with the keys MASS gives for its kind."""
        r = _request()
        # `url` names the sample in MASS's API; here it is the sample's key in the tree.
        return {"_cls": self.mass_class, "id": r.sha256, "url": node_key(self.kind, r.sha256), "sid": r.sid,
                **self._sample_fields(r)}

    def _sample_fields(self, request: Request) -> dict[str, Any]:
        return {self.sample_key: request.sample}

    def temporary_sample_file(self) -> contextlib.AbstractContextManager[str]:
        """The sample on disk (a path, not a file object); removed when the task ends. For a
        domain, IP or URI the file holds its value."""
        return temporary_sample_file()

    def submit_report(self, url: str | None = None, additional_metadata: dict[str, Any] | None = None,
                      json_report_objects: dict[str, Any] | None = None,
                      raw_report_objects: dict[str, bytes] | None = None, tags: list[str] | None = None,
                      analysis_date: datetime | str | None = None) -> None:
        """`url` is accepted for MASS compatibility; the report goes to the task being analysed."""
        _request().submit_report(additional_metadata, json_report_objects, raw_report_objects, tags, analysis_date)

    # -- relations: a sample found during the analysis, analysed in turn as this one's child ---
    def relate_sample(self, kind: SampleKind | str, value: str, relation: Relation | str | None = None,
                      description: str = "") -> None:
        """Relate a domain, IP or URI found here; the relation defaults by kind (resolved-by,
        contacted-by, retrieved-by). A malformed value raises `SampleError` (a ValueError)
        saying what is wrong, as MASS's `submit_ip` raises for a bad address."""
        value = canonical(kind, value)
        _request().add_related(kind, value, relation, description)

    def submit_contacted_by_sample_relation(self, sample_url: str | None, contacted_ip: str) -> None:
        """MASS's own: `contacted_ip` was contacted by this sample (`sample_url` is not needed)."""
        self.relate_sample(SampleKind.IP, contacted_ip, Relation.CONTACTED_BY)

    def submit_resolved_by_sample_relation(self, sample_url: str | None, domain: str) -> None:
        self.relate_sample(SampleKind.DOMAIN, domain, Relation.RESOLVED_BY)

    def submit_retrieved_by_sample_relation(self, sample_url: str | None, uri: str) -> None:
        self.relate_sample(SampleKind.URI, uri, Relation.RETRIEVED_BY)


class FileAnalysisClient(AnalysisClient):
    """Subclass and write `do_analysis(analysis_request)`, as for MASS."""

    kind = SampleKind.FILE
    mass_class = "Sample.FileSample"

    def _sample_fields(self, r: Request) -> dict[str, Any]:
        return {"file_name": r.file_name, "file_size": r.file_size, "mime_type": r.file_type,
                "md5sum": r.md5, "sha1sum": r.sha1, "sha256sum": r.sha256}


class DomainAnalysisClient(AnalysisClient):
    """A domain's analysis: `self.sample_dict["domain"]` is the name (lower case, IDN as punycode)."""

    kind = SampleKind.DOMAIN
    mass_class = "Sample.DomainSample"
    sample_key = "domain"


class IPAnalysisClient(AnalysisClient):
    """An IP address's analysis: `self.sample_dict["ip_address"]` (IPv4 or compressed IPv6)."""

    kind = SampleKind.IP
    mass_class = "Sample.IPSample"
    sample_key = "ip_address"


class URIAnalysisClient(AnalysisClient):
    """A URI's analysis: `self.sample_dict["uri"]` (scheme and host lower case, IDN as punycode)."""

    kind = SampleKind.URI
    mass_class = "Sample.URISample"
    sample_key = "uri"
