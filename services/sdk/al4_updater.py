"""Assemblyline 4's `update_server.py`, run as is: a `ServiceUpdater` subclass with its own
`import_update`, and AL4's `Signature`, with only the imports changed
(`assemblyline_v4_service.updater.updater` and `assemblyline.odm.models.signature` become
`services.sdk.al4_updater`).

    python -m update_server          # in the service folder, as AL4's container runs it

fetches the manifest's `update_config` sources on their interval, hands each source's files to
`import_update(files_sha256, client, source_name, default_classification)`, and publishes the
signatures it adds (status DEPLOYED or NOISY, as AL4 serves them) as the service's rule set:
one rule file per signature, named after it. Running instances load it without a restart.
The NATS URL comes from $SLUICE_NATS_URL, the prefix from $SLUICE_PREFIX (default `sluice`).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import re
import signal
import tempfile
from pathlib import Path
from typing import Any

import anyio

from bus.connect import DEFAULT_URL_ENV
from bus.subjects import Names
from services.sdk.loader import load_service
from services.sdk.manifest import UpdateSource
from services.sdk.serve import run_updater

PREFIX_ENV = "SLUICE_PREFIX"
SERVED_STATUSES = ("DEPLOYED", "NOISY")


class Signature:
    """AL4's signature record: `Signature(dict(name=..., type=..., source=..., data=..., status=...))`."""

    STATUSES = ("DEPLOYED", "NOISY", "DISABLED", "TESTING", "STAGING", "INVALID")

    def __init__(self, data: dict[str, Any] | None = None, **fields: Any) -> None:
        record = {**(data or {}), **fields}
        missing = [k for k in ("name", "type", "data") if not record.get(k)]
        if missing:
            raise ValueError(f"Signature: missing {', '.join(missing)}")
        self.name = str(record["name"])
        self.type = str(record["type"])
        self.data = str(record["data"])
        self.source = str(record.get("source") or "")
        self.status = str(record.get("status") or "DEPLOYED").upper()
        self.classification = record.get("classification") or ""
        self.signature_id = record.get("signature_id")
        if self.status not in self.STATUSES:
            raise ValueError(f"Signature {self.name}: status {self.status!r} is not one of {', '.join(self.STATUSES)}")

    def as_primitives(self) -> dict[str, Any]:
        return dict(vars(self))


class _Signatures:
    """`client.signatures`: what `import_update` adds, collected for one source."""

    def __init__(self) -> None:
        self.added: list[Signature] = []

    def add_update(self, signature: Signature | dict[str, Any], *_: Any, **__: Any) -> bool:
        self.added.append(signature if isinstance(signature, Signature) else Signature(signature))
        return True

    def add_update_many(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """AL4's two forms: `add_update_many(signatures)` and `add_update_many(source, sig_type, data)`."""
        signatures = kwargs.get("data", args[-1] if args else [])
        for signature in signatures:
            self.add_update(signature)
        return {"success": len(signatures), "errors": False, "skipped": []}


class UpdateClient:
    """The `client` handed to `import_update`: only `client.signatures` is backed here."""

    def __init__(self) -> None:
        self.signatures = _Signatures()
        self.signature = self.signatures  # the AL4 client's singular spelling


def _rule_file_name(signature: Signature) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{signature.source}.{signature.name}".strip(".")) or "signature"


class ServiceUpdater:
    """Subclass it and override `import_update`, as for AL4; `serve_forever()` runs it."""

    def __init__(self, *args: Any, service_dir: str | Path | None = None, **kwargs: Any) -> None:
        self.log = logging.getLogger(f"sluice.updater.{type(self).__name__}")
        folder = Path(service_dir) if service_dir else Path(inspect.getfile(type(self))).resolve().parent
        self.service = load_service(folder)
        if self.service.manifest.update_config is None:
            raise ValueError(f"{folder}: the manifest has no update_config, so there is nothing to update")

    def __enter__(self) -> ServiceUpdater:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def import_update(self, files_sha256: list[tuple[str, str]], client: UpdateClient, source_name: str,
                      default_classification: str | None = None) -> None:
        """AL4's hook: turn a source's files into signatures with `client.signatures.add_update_many`.
        Not overridden, every file is a signature as it is."""
        for path, _ in files_sha256:
            client.signatures.add_update(Signature(name=Path(path).name, type="file", source=source_name,
                                                   data=Path(path).read_text(errors="replace")))

    def import_source(self, source: UpdateSource, files: dict[str, bytes]) -> dict[str, bytes]:
        """One source's fetched files, through `import_update`, as the rule files to publish."""
        client = UpdateClient()
        with tempfile.TemporaryDirectory(prefix=f"sluice-import-{source.name}-") as folder:
            listed = []
            for name, data in files.items():
                path = Path(folder) / name
                path.write_bytes(data)
                listed.append((str(path), hashlib.sha256(data).hexdigest()))
            self.import_update(listed, client, source.name, source.default_classification or None)
        return {_rule_file_name(s): s.data.encode() for s in client.signatures.added if s.status in SERVED_STATUSES}

    def serve_forever(self) -> None:
        """Update now and on every `update_interval_seconds` until SIGINT or SIGTERM."""
        anyio.run(self._serve)

    async def _serve(self) -> None:
        url = os.environ.get(DEFAULT_URL_ENV) or None
        names = Names(os.environ.get(PREFIX_ENV, "sluice"))
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            async def on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        stop.set()
                        return

            tg.start_soon(on_signal)
            await run_updater(self.service, url, names, stop, importer=self.import_source)
            tg.cancel_scope.cancel()
