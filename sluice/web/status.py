"""Which services are alive, how many tasks wait for each, and what failed lately.

Alive comes from the registry the dispatcher reads (`dispatcher.directory`, so the page and the
dispatcher agree on who counts as alive); queue depth from each service's consumer on the task
stream. A service whose consumer exists but whose instances stopped heartbeating is listed as
down, with the tasks piling up for it.
"""

from __future__ import annotations

from functools import partial

import anyio

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from bus.kv import kv_keys
from bus.subjects import Names
from dispatcher.directory import ServiceDirectory
from schemas.messages import ServiceRecord
from sluice.web.index import SubmissionIndex
from sluice.web.models import Failure, ServiceStatus


async def _directory(js: JetStreamContext, names: Names) -> ServiceDirectory:
    # Keys listed as the dispatcher lists them (nats-py's KeyValue.keys() can come back short).
    directory = ServiceDirectory(await js.key_value(names.registry_bucket), partial(kv_keys, js, names.registry_bucket))
    await directory.refresh()
    return directory


async def known_services(js: JetStreamContext, names: Names) -> set[str]:
    """The services registered (alive) now: what a submission may select."""
    return {record.name for record in (await _directory(js, names)).services.values()}


async def service_status(js: JetStreamContext, names: Names, index: SubmissionIndex) -> list[ServiceStatus]:
    directory = await _directory(js, names)
    consumer_prefix = names.service_consumer("")
    try:
        consumers = {info.name: info for info in await js.consumers_info(names.task_stream)
                     if info.name.startswith(consumer_prefix)}
    except NotFoundError:
        consumers = {}
    by_consumer = {record.consumer: record for record in directory.services.values()}
    statuses = []
    for consumer in sorted(consumers.keys() | by_consumer.keys()):
        record = by_consumer.get(consumer)
        name = record.name if record else consumer.removeprefix(consumer_prefix)
        failures = await anyio.to_thread.run_sync(index.history.failures, name)
        statuses.append(_status(name, record, consumers.get(consumer), failures))
    return statuses


def _status(name: str, record: ServiceRecord | None, consumer: ConsumerInfo | None, failures: list[Failure]) -> ServiceStatus:
    queued, in_flight = (consumer.num_pending or 0, consumer.num_ack_pending or 0) if consumer else (0, 0)
    if record is None:  # down: only its consumer (and what waits on it) is left
        return ServiceStatus(name, False, 0, "", "", queued, in_flight, 0.0, failures)
    return ServiceStatus(name, True, record.instances, record.version, record.stage.value, queued, in_flight,
                         record.heartbeat, failures)
