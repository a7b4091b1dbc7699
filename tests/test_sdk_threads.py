"""A sync `execute` in the SDK's worker threads (services/sdk/threads.py): on time, isolated, in context.

No NATS here: `execute_task` is what the runner calls per task, with the file's bytes from a
plain coroutine (the runner's is `BlobStore.get`).
"""

from __future__ import annotations

import hashlib
import threading
import time

import anyio

from bus.logcontext import CURRENT_SID
from schemas.messages import ErrorType, FileRef, Stage, Task
from services.sdk import Result, ResultSection, ServiceBase
from services.sdk.execution import execute_task
from svcs import make

DATA = b"some file\n"
REF = FileRef(hashlib.sha256(DATA).hexdigest(), len(DATA), "f.txt")


def task(ref: FileRef = REF) -> Task:
    return Task(corr="c1", sid="s1", file=ref, file_type="text/plain", stage=Stage.CORE, targets=["t"],
                deadline=time.time() + 60, reply_to="r")


class Blocker(ServiceBase):
    """Blocks in `execute` until released, on the files named `block.txt`; records where it ran."""

    def __init__(self, manifest) -> None:
        super().__init__(manifest)
        self.release = threading.Event()
        self.threads: list[int] = []
        self.sids: list[str | None] = []

    def execute(self, request) -> None:
        self.threads.append(threading.get_ident())
        self.sids.append(CURRENT_SID.get(None))
        if request.file_name == "block.txt":
            self.release.wait(30)
        if request.file_name == "crash.txt":
            raise ValueError("cannot parse this")
        request.result = Result([ResultSection(f"read {len(request.file_contents)} bytes")])


async def test_a_hung_sync_execute_times_out_and_the_service_goes_on(tmp_path):
    service = make(Blocker, "t", timeout=0.3)

    async def fetch() -> bytes:
        return DATA

    CURRENT_SID.set("s1")
    started = time.monotonic()
    with anyio.fail_after(10):
        hung = await execute_task(service, task(FileRef(REF.sha256, REF.size, "block.txt")), fetch, tmp_path, 10)
    assert 0.3 <= time.monotonic() - started < 3
    assert (hung.result.error.type, hung.result.error.message) == (ErrorType.TIMEOUT, "execute ran past the 0.3s timeout")
    # The hung thread is still busy: the next task gets another one, and finishes.
    done = await execute_task(service, task(), fetch, tmp_path, 10)
    assert done.result.error is None and done.result.sections[0].title == "read 10 bytes"
    assert service.threads[0] != service.threads[1]
    assert service.sids == ["s1", "s1"]  # the caller's log context reaches the thread
    crashed = await execute_task(service, task(FileRef(REF.sha256, REF.size, "crash.txt")), fetch, tmp_path, 10)
    assert (crashed.result.error.type, crashed.result.error.message) == (ErrorType.CRASHED, "ValueError: cannot parse this")
    service.release.set()


async def test_a_sync_execute_downloads_a_stored_file_from_its_thread_on_first_use(tmp_path):
    service = make(Blocker, "t", timeout=5)
    fetched: list[str] = []

    async def fetch() -> bytes:  # runs on the event loop, called from the worker thread
        fetched.append(threading.current_thread().name)
        await anyio.sleep(0)
        return DATA

    outcome = await execute_task(service, task(), fetch, tmp_path, 10)  # REF has no inline data
    assert outcome.result.error is None and outcome.result.sections[0].title == "read 10 bytes"
    assert fetched == [threading.current_thread().name] and service.threads[0] != threading.get_ident()
