"""Run one service, or one service's rule updater, on its own NATS connection.

What `sluice service run`, the one-box, a MASS client's `start()` and an AL4 `update_server.py`
all do; here in the SDK so that code below `sluice/` can run a service too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from bus.auth import UPDATER, service_role
from bus.connect import close, connect, provisions
from bus.logcontext import COMPONENT
from bus.provision import provision
from bus.subjects import Names
from bus.telemetry import PROBES
from services.sdk.base import ServiceBase
from services.sdk.manifest import UpdateConfig
from services.sdk.runner import ServiceRunner
from services.sdk.updater import Importer, Updater


async def run_service(service: ServiceBase, url: str, names: Names, stop: anyio.Event,
                      started: anyio.Event | None = None, concurrency: int | None = None,
                      local: Callable[[ServiceRunner], None] | None = None) -> None:
    """`local` is given the runner, to hand it tasks in-process (a one-box's dispatcher: dispatcher/lanes.py)."""
    name = service.manifest.name
    COMPONENT.set(f"svc-{name}")
    nc = await connect(url, name=f"sluice-svc-{name}", role=service_role(name))
    try:
        runner = ServiceRunner(service, nc, names, concurrency)
        if local is not None:
            local(runner)
        with PROBES.registered(f"svc-{name}", lambda: nc.is_connected and runner.ready.is_set(), nc.jetstream(),
                               [(names.task_stream, names.service_consumer(name))]):
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run, stop)
                await runner.ready.wait()
                if started:
                    started.set()
    finally:
        with anyio.CancelScope(shield=True):
            await close(nc)


@asynccontextmanager
async def connected_updater(service: ServiceBase, url: str, names: Names, config: UpdateConfig | None = None,
                            importer: Importer | None = None) -> AsyncIterator[Updater]:
    """An `Updater` for `service` on its own connection, closed when the block exits."""
    nc = await connect(url, name=f"sluice-updater-{service.manifest.name}", role=UPDATER)
    try:
        js = nc.jetstream()
        yield Updater(service, js, names, await provision(js, names, create=provisions(UPDATER)), config, importer)
    finally:
        with anyio.CancelScope(shield=True):
            await close(nc)


async def run_updater(service: ServiceBase, url: str, names: Names, stop: anyio.Event,
                      importer: Importer | None = None) -> None:
    """Keep `service`'s rules current (its manifest has update_config) until `stop`."""
    COMPONENT.set(f"updater-{service.manifest.name}")
    async with connected_updater(service, url, names, importer=importer) as updater:
        await updater.run(stop)


