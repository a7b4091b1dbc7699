"""Worker threads for sync `execute`: one hand-off each way per task, the deadline a plain timer.

`anyio.to_thread.run_sync` with a cancel scope around it cost ~0.1 ms of CPU per task (its
capacity limiter, its cancel-scope bookkeeping, an event per call), more than most services'
own work on a small file, for six tasks per file. Here a task is one `SimpleQueue.put` to an
idle worker (a new one is started when none is idle), one `call_soon_threadsafe` back, and an
`asyncio` timer for the deadline, as bus/publish.py times its acks.

A sync `execute` cannot be interrupted: at its deadline the caller gets TimeoutError and goes
on; the thread runs on until `execute` returns, and is only then idle again (so a hung service
costs one thread, never a stalled loop or a shrinking pool). Threads are daemons and one idle
for `IDLE` seconds ends. The call runs in a copy of the caller's context (the log context's
submission id, the task's ontology); to come back to the loop from it, pass
`anyio.from_thread.run` the loop's token (services/sdk/execution.py does, for a lazy download).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

IDLE = 10.0  # seconds an idle thread waits for work before it ends

_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future, contextvars.Context, Callable[..., Any], tuple]


class _Worker:
    """One daemon thread and its inbox; it puts itself back on the idle stack after each job."""

    def __init__(self, idle: deque[_Worker]) -> None:
        self.inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = idle
        threading.Thread(target=self._serve, name="sluice-execute", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                loop, future, context, func, args = self.inbox.get(timeout=IDLE)
            except queue.Empty:
                try:
                    self._idle.remove(self)  # atomic: nobody can hand us a job any more
                    return
                except ValueError:  # taken off the stack just now: its job is on its way
                    continue
            try:
                outcome, failed = context.run(func, *args), False
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
                outcome, failed = exc, True
            try:
                loop.call_soon_threadsafe(_settle, future, outcome, failed)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass
            del loop, future, context, func, args, outcome  # hold nothing while idle
            self._idle.append(self)


def _settle(future: asyncio.Future, outcome: Any, failed: bool) -> None:
    if future.done():  # timed out or cancelled: nobody waits for it
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _expire(future: asyncio.Future, timeout: float) -> None:
    if not future.done():
        future.set_exception(TimeoutError(f"ran past {timeout:g}s"))


class Threads:
    """A growing set of worker threads shared by every service of a process."""

    def __init__(self) -> None:
        self._idle: deque[_Worker] = deque()  # append/pop are atomic: threads put themselves back

    async def run(self, func: Callable[..., T], *args: Any, timeout: float) -> T:
        """`func(*args)` in a worker thread; TimeoutError after `timeout` s (the thread runs on)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        context = contextvars.copy_context()
        try:
            worker = self._idle.pop()
        except IndexError:
            worker = _Worker(self._idle)
        worker.inbox.put((loop, future, context, func, args))
        timer = loop.call_later(timeout, _expire, future, timeout)
        try:
            return await future
        finally:
            timer.cancel()


THREADS = Threads()
# A forked child has none of its parent's threads: the idle ones must not be handed work there.
os.register_at_fork(after_in_child=THREADS._idle.clear)
