"""The dispatcher and a set of services in one process, on one NATS connection each.

What `sluice scan` and `sluice up` run by default, and what integration tests start: the same
components as separate processes would run, only in one task group, and (unless `local_lane`
is off) with the services' tasks handed over in-process (dispatcher/lanes.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio

from bus.auth import ADMIN, DISPATCHER
from bus.connect import close, connect, credentials
from bus.logcontext import COMPONENT
from bus.subjects import Names
from bus.telemetry import PROBES
from dispatcher.dispatcher import Dispatcher
from dispatcher.lanes import Lanes
from services.sdk.approval import approval_for
from services.sdk.base import ServiceBase
from services.sdk.loader import builtin_services, fresh_instance, load_service
from services.sdk.serve import run_service, run_updater
from sluice.provision_cli import creds_dir, provision_and_approve, submitters_in

log = logging.getLogger("sluice")


async def run_dispatcher(url: str, names: Names, stop: anyio.Event,
                         on_ready: Callable[[Dispatcher], None] | None = None, **kwargs) -> None:
    COMPONENT.set("dispatcher")
    nc = await connect(url, name="sluice-dispatcher", role=DISPATCHER)
    dispatcher = Dispatcher(nc, names, **kwargs)
    try:
        with PROBES.registered("dispatcher", lambda: nc.is_connected and dispatcher.ready.is_set(), nc.jetstream(),
                               [(names.submit_stream, names.ROOT_CONSUMER), (names.submit_stream, names.CHILD_CONSUMER),
                                (names.reply_stream, names.dispatcher_consumer(dispatcher.id))]):
            async with anyio.create_task_group() as tg:
                tg.start_soon(dispatcher.run, stop)
                await dispatcher.ready.wait()
                if on_ready:
                    on_ready(dispatcher)
    finally:
        with anyio.CancelScope(shield=True):
            await close(nc)


@dataclass
class Box:
    """A running one-box mesh: its dispatcher, and the event that stops it all."""

    names: Names
    stop: anyio.Event
    dispatcher: Dispatcher | None = None


@asynccontextmanager
async def onebox(url: str, prefix: str = "sluice", services: Sequence[ServiceBase | str | Path] | None = None,
                 updaters: bool = False, local_lane: bool = True, **dispatcher_kwargs) -> AsyncIterator[Box]:
    """Run the dispatcher and `services` (default: every built-in) until the block exits.

    Yields once every service has registered and the dispatcher can see them all, so the first
    submission already routes to every service. With `updaters`, each service that has an
    `update_config` also gets its rule updater (on a scratch instance of its own). With
    `local_lane` (the default) the dispatcher hands these services their tasks directly, not
    through NATS (dispatcher/lanes.py); services of other processes get theirs through NATS.
    """
    box = Box(Names(prefix), anyio.Event())
    objs = [s if isinstance(s, ServiceBase) else load_service(s) for s in (services if services is not None else builtin_services())]
    if credentials(ADMIN) is not None:
        # Under auth only admin provisions and approves: the operator's step, done here for the
        # services this box runs (as their manifests say), before any of them starts.
        await provision_and_approve(url, box.names, [approval_for(s.manifest) for s in objs], submitters_in(creds_dir()))
    async with anyio.create_task_group() as tg:
        # Everything starts at once: each start is a few round trips to NATS (connect, bind,
        # register), and one after another they were a second of a one-file scan's wait.
        started = anyio.Event()

        def ready(dispatcher: Dispatcher) -> None:
            box.dispatcher = dispatcher
            started.set()

        lanes = Lanes()
        tg.start_soon(partial(run_dispatcher, url, box.names, box.stop, ready, lanes=lanes, **dispatcher_kwargs))
        registered = [anyio.Event() for _ in objs]
        for service, event in zip(objs, registered):
            tg.start_soon(partial(run_service, service, url, box.names, box.stop, event,
                                  local=(lambda runner: lanes.add(runner.m.name, runner)) if local_lane else None))
            if updaters and service.manifest.update_config is not None:
                tg.start_soon(run_updater, fresh_instance(service), url, box.names, box.stop)
        for event in (*registered, started):
            await event.wait()
        await box.dispatcher.directory.wait_for({s.manifest.name for s in objs})
        try:
            yield box
        finally:
            box.stop.set()
