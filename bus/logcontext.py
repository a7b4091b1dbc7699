"""What a log line is about, carried by context variables rather than passed around.

A handler sets the submission id once (`CURRENT_SID.set(...)`) where it takes a submission or a task;
every record logged from that task, from the tasks it starts and from the worker threads it runs
(anyio copies the context into both) then carries it, added by `ContextFilter` on the handler.
`COMPONENT` is set where a component starts, so one-box logs still say which part spoke.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

CURRENT_SID: ContextVar[str | None] = ContextVar("sluice_sid", default=None)
COMPONENT: ContextVar[str] = ContextVar("sluice_component", default="sluice")


class ContextFilter(logging.Filter):
    """Adds `sid` (None outside a submission) and `component` to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.sid = CURRENT_SID.get()
        record.component = COMPONENT.get()
        return True
