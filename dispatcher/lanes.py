"""Services in the dispatcher's own process, handed their tasks directly: a one-box's local lane.

A one-box process (`sluice scan`, `sluice up` and each of their `--workers`) runs a dispatcher
and every built-in service side by side. Sent through NATS, each of a file's tasks cost the
task's publish and store, its delivery and ack, and the result's publish, store, delivery and
ack: five JetStream messages, two encodes and two decodes a task, most of a small file's cost
(a scan of random bytes runs six tasks a file). When the service the plan picked runs in this
very process, the stage hands it the task as a call instead, and the result comes back as the
call's value.

What is kept: the plan (the operator's approvals and the registry decide who runs, as for any
task), the service's own concurrency, timeout and error handling (the same `execute_task`), the
cache, the policing of each result, retries and children. What goes: the task's copy in the
task stream. The submission's own message stays unacknowledged until its verdict, so a process
that dies mid-tree loses nothing; another dispatcher redoes the tree from the cache. A lane is
used only for the very version, configuration and rules the registry's record names (else the
cache would file its result under another key), and only while its service is running; other
services, and every service of another process, get their tasks through NATS as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from schemas.messages import ServiceRecord, ServiceResult, Task


class Handed(Protocol):
    """A task handed to a service in this process."""

    def withdraw(self) -> None:
        """No longer wanted: if it has not started it never will, and if it runs it is cancelled."""


class LocalService(Protocol):
    """What the dispatcher needs of a service running in its process (services.sdk.runner)."""

    def runs(self, record: ServiceRecord) -> bool:
        """Whether it is running now as `record` says: name, version, configuration and rules."""

    def take(self, task: Task, started: Callable[[], None], deliver: Callable[[ServiceResult], None]) -> Handed:
        """Queue `task` for one of the service's slots; there, `started()`, then its result (an
        error result on any failure) to `deliver`."""


class Lanes:
    """The services this process runs, by name.

    A task handed over waits in its service's own queue for one of the service's slots (its
    concurrency), as it would in the service's consumer: a hand-off costs a queue put, not a
    task of its own (a task each was a third of a stage's CPU in a scan). Its stage withdraws it
    when it gives up on it (timed out, then retried) and when the stage ends without its result;
    only those are cancelled (anyio's cancel(), which formats its reason, was a tenth of a stage's
    CPU when every finished attempt was cancelled too).
    """

    def __init__(self) -> None:
        self._services: dict[str, LocalService] = {}

    def add(self, name: str, service: LocalService) -> None:
        self._services[name] = service

    def lane(self, record: ServiceRecord) -> LocalService | None:
        """The local service to hand `record`'s task to, or None: send it through NATS."""
        service = self._services.get(record.name)
        return service if service is not None and service.runs(record) else None
