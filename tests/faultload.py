"""Load for the fault suite: submissions that survive a NATS outage, and an honest count of what came out.

`sent` counts submissions the server acknowledged (a submit that fails while NATS is down is
retried under the same sid, which the submit stream de-duplicates, so a retry is not a second
submission). What came out is read from the summary stream itself, which keeps the last summary
per sid: `completed` is how many sids have one, `duplicated` how many summaries were stored
beyond one per sid (a summary re-published after the de-duplication window would show here).
The tests' submissions all score below the alert threshold, so that stream holds summaries only.
Each test records its row (fault, sent, completed, lost, duplicated, seconds from the first
submission to the last summary, notes) to the file named
by $SLUICE_FAULT_TABLE, if set; `python tests/fault_table.py FILE` turns the rows into a table.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable

import anyio
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError
from nats.js.errors import ServiceUnavailableError

from bus.codec import decode
from schemas.messages import SubmissionParams, Summary
from sluice.client import Client

TABLE_ENV = "SLUICE_FAULT_TABLE"
SUBMIT_RETRY = 0.25  # seconds between attempts while NATS is away


class Load:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.names = client.names
        self.sent: list[str] = []
        self.accepted_at: list[float] = []  # when the server acknowledged each of `sent`
        self.started = time.monotonic()
        self.resubmits = 0

    async def submit(self, files: Iterable[tuple[str, bytes]], params: SubmissionParams | None = None) -> str:
        """Submit until the server acknowledges; the same sid each time, so never twice."""
        files, sid = list(files), uuid.uuid4().hex
        while True:
            try:
                await self.client.submit_bytes(files, params, sid=sid)
                break
            except (NatsError, JetStreamError, TimeoutError):
                self.resubmits += 1
                await anyio.sleep(SUBMIT_RETRY)
        self.sent.append(sid)
        self.accepted_at.append(time.monotonic())
        return sid

    async def trickle(self, files: Callable[[int], list[tuple[str, bytes]]], count: int, interval: float = 0.05) -> None:
        """Submit `count` submissions (`files(i)` each), one every `interval` s: load still
        arriving when the fault strikes."""
        for i in range(count):
            await self.submit(files(i))
            await anyio.sleep(interval)

    async def stored_summaries(self) -> tuple[int, int]:
        """(summaries kept, summaries ever stored) on the summary stream; (0, 0) while it is unreachable."""
        try:
            state = (await self.client.js.stream_info(self.names.summary_stream)).state
        except (NatsError, JetStreamError, TimeoutError):
            return 0, 0
        return state.messages, state.last_seq

    async def wait_completed(self, count: int, timeout: float) -> float:
        """Wait until `count` summaries are stored; the time it took."""
        started = time.monotonic()
        with anyio.fail_after(timeout):
            while (await self.stored_summaries())[0] < count:
                await anyio.sleep(0.1)
        return time.monotonic() - started

    async def first_completed_after(self, index: int, timeout: float) -> float:
        """Seconds until one of the submissions sent from position `index` on has its summary:
        new work flowing again, not work that was already under way finishing."""
        started = time.monotonic()
        with anyio.fail_after(timeout):
            while True:
                for sid in self.sent[index:index + 5]:  # the earliest are taken first
                    try:
                        if await self.client.result(sid) is not None:
                            return time.monotonic() - started
                    except (NatsError, JetStreamError, TimeoutError):
                        break
                await anyio.sleep(0.1)

    async def summaries(self) -> tuple[dict[str, Summary], int]:
        """Every stored summary by sid, and how many were stored beyond one per sid. Read again
        from the start while the stream answers 503: right after a fault a cluster may still be
        placing the reader's consumer (seen once in CI, just after a killed leader's restart)."""
        with anyio.fail_after(60):
            while True:
                try:
                    return await self._read_summaries()
                except ServiceUnavailableError:
                    await anyio.sleep(0.5)

    async def _read_summaries(self) -> tuple[dict[str, Summary], int]:
        kept, ever = await self.stored_summaries()
        sub = await self.client.js.pull_subscribe(
            self.names.summaries, stream=self.names.summary_stream,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0))
        found: dict[str, Summary] = {}
        try:
            while len(found) < kept:
                for msg in await sub.fetch(500, timeout=5):
                    summary = decode(msg.data, Summary)
                    found[summary.sid] = summary
        finally:
            await sub.unsubscribe()
        return found, ever - kept

    async def outcome(self, fault: str, timeout: float,
                      notes: Callable[[dict[str, Summary]], str] | None = None) -> dict[str, Summary]:
        """Wait for every sent submission's summary (up to `timeout`), record the row, return the summaries.

        `notes` says, from the summaries, what else the test measured (for the table's last column).
        Records before asserting, so a run that loses submissions still leaves its count behind.
        """
        with anyio.move_on_after(timeout):
            await self.wait_completed(len(self.sent), timeout)
        found, duplicated = await self.summaries()
        completed = [sid for sid in self.sent if sid in found]
        row = {"fault": fault, "sent": len(self.sent), "completed": len(completed),
               "lost": len(self.sent) - len(completed), "duplicated": duplicated,
               "seconds": round(time.monotonic() - self.started, 1), "notes": notes(found) if notes else ""}
        record(row)
        assert row["lost"] == 0, f"{row['lost']} submission(s) lost: {row}"
        assert duplicated == 0 and len(found) == len(self.sent), f"duplicated or unexpected summaries: {row}"
        return found


def record(row: dict) -> None:
    print(f"\nFAULT ROW {json.dumps(row)}")
    path = os.environ.get(TABLE_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")

