"""The whole history the page searches, fed by the summaries stream into the SQLite index.

One ordered consumer reads the stream from just after the last sequence the index applied (the
catch-up; from the stream's start for a new index) and then stays on it for new summaries, so
there is no gap and no overlap between "what was indexed" and "what arrived since". Messages
are applied in batches (one transaction each) while catching up, one by one once caught up.
Live listeners (the page's event stream) get each new row through a bounded queue; one that
falls behind is dropped, and its browser reconnects and reloads the list.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from bus.blobs import BlobStore
from bus.codec import BadMessage, decode
from bus.subjects import Names
from nats.js.kv import KeyValue

from schemas.messages import Summary
from schemas.workspace import Triage
from sluice.web.digests import BATCH as DIGEST_BATCH
from sluice.web.digests import RETRY_AFTER as DIGEST_RETRY_AFTER
from sluice.web.digests import digest
from sluice.web.history import History, row_of
from sluice.web.models import SubmissionRow

log = logging.getLogger("sluice.web")

Event = tuple[str, SubmissionRow | Triage]  # (the server-sent event's name, its payload)

LISTENER_BACKLOG = 64  # rows a live listener may fall behind before it is dropped
BATCH = 2000  # summaries per transaction while catching up
OPTIMIZE_AFTER = 10_000  # summaries applied before the planner's statistics are refreshed


class SubmissionIndex:
    """The history (SQLite) kept current from the stream, and the live listeners."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.ready = anyio.Event()  # set once caught up with the stream
        self.applied = 0  # summaries applied since start (catch-up included)
        self._listeners: set[ObjectSendStream[Event]] = set()
        self._to_digest = anyio.Event()  # set when files were queued for md5/sha1 hashing
        self._digested = anyio.Event()  # set while nothing waits to be hashed

    # -- feeding ---------------------------------------------------------------------------
    async def apply(self, summaries: list[Summary], last_seq: int) -> None:
        if await anyio.to_thread.run_sync(self.history.apply, summaries, last_seq):
            if self._digested.is_set():  # an unset one is never replaced: whoever waits on it is woken
                self._digested = anyio.Event()
            self._to_digest.set()
        before, self.applied = self.applied, self.applied + len(summaries)
        if before // OPTIMIZE_AFTER != self.applied // OPTIMIZE_AFTER:
            await anyio.to_thread.run_sync(self.history.optimize)
        for summary in summaries:
            self._announce(("submission", row_of(summary)))

    def _announce(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener.send_nowait(event)
            except anyio.WouldBlock:
                self._drop(listener)

    async def follow(self, js: JetStreamContext, names: Names) -> None:
        """Catch up from the last applied sequence, then apply every new summary, until cancelled."""
        state = (await js.stream_info(names.summary_stream)).state
        applied = await anyio.to_thread.run_sync(self.history.last_seq)
        if applied > state.last_seq:  # the stream was deleted and made again: this index is of another one
            log.warning("the history index is ahead of the summary stream (%d > %d): rebuilding it", applied, state.last_seq)
            await anyio.to_thread.run_sync(self.history.reset)
            applied = 0
        start = max(applied + 1, state.first_seq, 1)
        if start > state.last_seq:
            self.ready.set()
        sub = await js.subscribe(names.summaries, stream=names.summary_stream, ordered_consumer=True, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start))
        batch: list[Summary] = []
        try:
            async for msg in sub.messages:
                try:
                    batch.append(decode(msg.data, Summary))
                except BadMessage as exc:
                    log.warning("summary %s ignored: %s", msg.subject, exc)
                caught_up = msg.metadata.num_pending == 0
                if caught_up or len(batch) >= BATCH:
                    await self.apply(batch, msg.metadata.sequence.stream)
                    batch = []
                if caught_up:
                    self.ready.set()
        finally:
            with anyio.CancelScope(shield=True):
                await sub.unsubscribe()

    async def follow_triage(self, kv: KeyValue) -> None:
        """Mirror the triage bucket into the index and announce each change, until cancelled."""
        watcher = await kv.watchall()
        try:
            async for entry in watcher:
                if entry is None or not entry.value:
                    continue  # the end-of-initial-values marker, or a deleted key
                try:
                    triage = decode(entry.value, Triage)
                except BadMessage as exc:
                    log.warning("triage %s ignored: %s", entry.key, exc)
                    continue
                await anyio.to_thread.run_sync(self.history.apply_triage, [triage])
                self._announce(("triage", triage))
        finally:
            with anyio.CancelScope(shield=True):
                await watcher.stop()

    async def follow_digests(self, blobs: BlobStore) -> None:
        """Hash the files the summaries gave no md5/sha1 for (sluice.web.digests), as they are
        queued, until cancelled."""
        while True:
            todo = await anyio.to_thread.run_sync(self.history.undigested, DIGEST_BATCH)
            if not todo:
                self._digested.set()
                await self._to_digest.wait()
                self._to_digest = anyio.Event()
                continue
            done = []
            for sha256, size in todo:
                found = await digest(blobs, sha256, size)
                if found is not None:
                    done.append((sha256, *found))
            await anyio.to_thread.run_sync(self.history.add_digests, done)
            if len(done) < len(todo):  # the file store did not answer for some: not in a tight loop
                await anyio.sleep(DIGEST_RETRY_AFTER)

    async def digested(self) -> None:
        """Return once every file indexed so far has its md5/sha1 (or cannot have them)."""
        await self._digested.wait()

    # -- reading ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def listen(self) -> Iterator[ObjectReceiveStream[Event]]:
        """New events as they arrive (finished submissions, triage changes), for as long as the
        block runs (ends early if the listener lags)."""
        send, receive = anyio.create_memory_object_stream[Event](LISTENER_BACKLOG)
        self._listeners.add(send)
        try:
            with receive:
                yield receive
        finally:
            self._drop(send)

    def close_listeners(self) -> None:
        """End every live stream (at shutdown, so open pages do not hold the server up)."""
        for listener in list(self._listeners):
            self._drop(listener)

    def _drop(self, listener: ObjectSendStream[Event]) -> None:
        self._listeners.discard(listener)
        listener.close()
