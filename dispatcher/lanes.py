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

import anyio

from schemas.messages import ServiceRecord, ServiceResult, Task


class LocalService(Protocol):
    """What the dispatcher needs of a service running in its process (services.sdk.runner)."""

    def runs(self, record: ServiceRecord) -> bool:
        """Whether it is running now as `record` says: name, version, configuration and rules."""

    def take(self, task: Task, scope: anyio.CancelScope, started: Callable[[], None],
             deliver: Callable[[ServiceResult], None]) -> None:
        """Queue `task` for one of the service's slots; there, `started()`, the task run inside
        `scope`, and its result (an error result on any failure) given to `deliver`. Nothing is
        run or delivered once `scope` is cancelled."""


class Lanes:
    """The services this process runs, by name.

    A task handed over waits in its service's own queue for one of the service's slots (its
    concurrency), as it would in the service's consumer: a hand-off costs a queue put, not a
    task of its own (a task each was a third of a stage's CPU in a scan). Each has a cancel
    scope, which its stage cancels when it gives up on it (timed out, then retried) and when it
    ends.
    """

    def __init__(self) -> None:
        self._services: dict[str, LocalService] = {}

    def add(self, name: str, service: LocalService) -> None:
        self._services[name] = service

    def lane(self, record: ServiceRecord) -> LocalService | None:
        """The local service to hand `record`'s task to, or None: send it through NATS."""
        service = self._services.get(record.name)
        return service if service is not None and service.runs(record) else None

    @staticmethod
    def hand_over(service: LocalService, task: Task, started: Callable[[], None],
                  deliver: Callable[[ServiceResult], None]) -> anyio.CancelScope:
        """Queue `task` on `service` (one `lane` gave); its result goes to `deliver`. Cancel the
        scope returned when the result is no longer wanted."""
        scope = anyio.CancelScope()
        service.take(task, scope, started, deliver)
        return scope
