"""Which services are alive, how many tasks wait for each, and what failed lately.

Alive comes from the registry the dispatcher reads (`dispatcher.directory`, so the page and the
dispatcher agree on who counts as alive); queue depth from each service's consumer on the task
stream. A service whose consumer exists but whose instances stopped heartbeating is listed as
down, with the tasks piling up for it.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bus.subjects import Names
from dispatcher.directory import ServiceDirectory
from sluice.web.index import SubmissionIndex
from sluice.web.models import ServiceStatus


async def service_status(js: JetStreamContext, names: Names, index: SubmissionIndex) -> list[ServiceStatus]:
    directory = ServiceDirectory(await js.key_value(names.registry_bucket))
    await directory.refresh()
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
        info = consumers.get(consumer)
        name = record.name if record else consumer.removeprefix(consumer_prefix)
        statuses.append(ServiceStatus(
            name=name, alive=record is not None, instances=record.instances if record else 0,
            version=record.version if record else "", stage=record.stage.value if record else "",
            queued=info.num_pending or 0 if info else 0, in_flight=info.num_ack_pending or 0 if info else 0,
            last_seen=record.heartbeat if record else 0.0,
            failures=list(index.failures.get(name, ())),
        ))
    return statuses
