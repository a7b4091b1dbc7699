"""The HTTP endpoint every component process serves: /metrics, /healthz, /readyz.

It runs as a task in the component's own task group (anyio listener + h11 for the HTTP/1.1
parsing), so a stop cancels it like any other task: no server thread left behind, nothing to
join. One request per connection, which is how Prometheus and health checkers call.

- `/metrics`: the process's Prometheus registry (text, or OpenMetrics when asked); the consumer
  gauges are refreshed from JetStream consumer info right before, so queue depth costs one
  request per watched consumer per scrape, and nothing between scrapes.
- `/healthz`: 200 while the process's event loop answers (alive; restart it if not).
- `/readyz`: 200 when every component registered in `Probes` says it is ready (connected to
  NATS, consumer bound, first heartbeat sent), else 503; the JSON body says which is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.abc
import h11
import orjson
from anyio.abc import SocketAttribute
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from bus.metrics import CONSUMER_ACK_PENDING, CONSUMER_PENDING

log = logging.getLogger("sluice.telemetry")

REQUEST_TIMEOUT = 10.0  # a client that sends nothing does not hold a connection for longer
SAMPLE_TIMEOUT = 2.0  # the most a scrape waits for consumer info (NATS down: stale gauges, not a hang)
METRICS_PORT_ENV = "SLUICE_METRICS_PORT"
METRICS_HOST_ENV = "SLUICE_METRICS_HOST"


@dataclass(eq=False)
class Component:
    name: str
    ready: Callable[[], bool]
    js: JetStreamContext | None
    consumers: tuple[tuple[str, str], ...]  # (stream, durable consumer) whose depth to report


class Probes:
    """The components running in this process: what /readyz asks and whose queues /metrics reports."""

    def __init__(self) -> None:
        self._components: list[Component] = []

    @contextmanager
    def registered(self, name: str, ready: Callable[[], bool], js: JetStreamContext | None = None,
                   consumers: Sequence[tuple[str, str]] = ()) -> Iterator[Component]:
        component = Component(name, ready, js, tuple(consumers))
        self._components.append(component)
        try:
            yield component
        finally:
            self._components.remove(component)
            watched = {pair for c in self._components for pair in c.consumers}
            for pair in set(component.consumers) - watched:  # a stopped component's queues are not ours to report
                CONSUMER_PENDING.remove(*pair)  # (a label set never sampled is no error)
                CONSUMER_ACK_PENDING.remove(*pair)

    def readiness(self) -> dict[str, bool]:
        states: dict[str, bool] = {}
        for c in self._components:
            states[c.name] = states.get(c.name, True) and bool(c.ready())
        return states

    async def sample_queues(self) -> None:
        with anyio.move_on_after(SAMPLE_TIMEOUT):
            for c in list(self._components):
                for stream, consumer in c.consumers:
                    try:
                        info = await c.js.consumer_info(stream, consumer)
                    except Exception as exc:  # noqa: BLE001 - not yet made, or NATS restarting: keep the last value
                        log.debug("consumer info %s/%s: %s", stream, consumer, exc)
                        continue
                    CONSUMER_PENDING.labels(stream, consumer).set(info.num_pending or 0)
                    CONSUMER_ACK_PENDING.labels(stream, consumer).set(info.num_ack_pending or 0)


PROBES = Probes()  # the process's components; one endpoint per process reads them all


async def serve(port: int, host: str = "127.0.0.1", probes: Probes = PROBES, *,
                task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
    """Serve the endpoint on host:port until cancelled; `task_status` gets the bound port (port 0: a free one)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        bound = listener.extra(SocketAttribute.local_port)
        log.info("metrics and health on http://%s:%d/metrics", host, bound)
        task_status.started(bound)
        await listener.serve(partial(_connection, probes))


async def _connection(probes: Probes, stream: anyio.abc.ByteStream) -> None:
    """One request, one response, close; nothing a client does ends the listener."""
    async with stream:
        try:
            with anyio.fail_after(REQUEST_TIMEOUT):
                await _exchange(probes, stream, h11.Connection(h11.SERVER))
        except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, h11.ProtocolError) as exc:
            log.debug("telemetry connection dropped: %r", exc)
        except Exception:  # noqa: BLE001 - a bug in one response must not take the endpoint down
            log.exception("telemetry endpoint failed on a request")


async def _exchange(probes: Probes, stream: anyio.abc.ByteStream, conn: h11.Connection) -> None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive())
            continue
        if not isinstance(event, h11.Request):
            return  # closed before asking anything
        status, content_type, body = await _respond(probes, event)
        headers = [("content-type", content_type), ("content-length", str(len(body))), ("connection", "close")]
        await stream.send(conn.send(h11.Response(status_code=status, headers=headers)))
        if event.method != b"HEAD":
            await stream.send(conn.send(h11.Data(data=body)))
        await stream.send(conn.send(h11.EndOfMessage()))
        return


async def _respond(probes: Probes, request: h11.Request) -> tuple[int, str, bytes]:
    if request.method not in (b"GET", b"HEAD"):
        return 405, "text/plain", b"GET only\n"
    path = request.target.split(b"?", 1)[0]
    if path == b"/metrics":
        await probes.sample_queues()
        accept = b",".join(value for name, value in request.headers if name == b"accept").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        return 200, content_type, encoder(REGISTRY)
    if path == b"/healthz":
        return 200, "text/plain", b"ok\n"
    if path == b"/readyz":
        states = probes.readiness()
        ready = bool(states) and all(states.values())
        return (200 if ready else 503), "application/json", orjson.dumps({"ready": ready, "components": states})
    return 404, "text/plain", b"not found: try /metrics, /healthz or /readyz\n"
