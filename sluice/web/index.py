"""The recent submissions the page lists, kept in memory and fed by the summaries stream.

One ordered consumer reads the stream from a little before its end (the backfill: the last
`capacity` summaries, roughly) and then stays on it for new ones, so there is no gap and no
overlap between "what was there at start" and "what arrived since". Each summary becomes a
small `Entry` (the row shown, plus the types and tags the filters look at); the tree itself is
fetched again when someone opens the submission.
Live listeners (the page's event stream) get each new row through a bounded queue; one that
falls behind is dropped, and its browser reconnects and reloads the list.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from bus.codec import BadMessage, decode
from bus.subjects import Names
from schemas.messages import Summary, walk
from sluice.web.models import Failure, SubmissionRow

log = logging.getLogger("sluice.web")

LISTENER_BACKLOG = 64  # rows a live listener may fall behind before it is dropped
FAILURES_KEPT = 20  # per service
TAGS_KEPT = 1000  # tag values per submission the tag filter searches (an IOC-heavy tree can have many more)


@dataclass(frozen=True)
class Entry:
    """One indexed submission: the row the API shows, and what the filters look at (not sent)."""

    row: SubmissionRow
    types: frozenset[str]
    tags: tuple[str, ...]


def entry_of(summary: Summary) -> Entry:
    nodes = list(walk(summary.files))
    first = nodes[0] if nodes else None
    row = SubmissionRow(
        sid=summary.sid, verdict=summary.verdict, score=summary.score,
        name=first.name if first else "", type=first.type if first else "",
        file_count=summary.file_count or len(nodes), errors=summary.errors, completed_at=summary.completed_at,
    )
    tags = {value.casefold() for values in summary.tags.values() for value in values}
    return Entry(row, frozenset(node.type for node in nodes), tuple(sorted(tags))[:TAGS_KEPT])


def failures_of(summary: Summary) -> Iterator[tuple[str, Failure]]:
    """(service, failure) for every service error in the tree."""
    for node in walk(summary.files):
        for error in node.errors:
            yield error.service, Failure(summary.sid, node.name or node.sha256, error.type.value, error.message,
                                         summary.completed_at)


class SubmissionIndex:
    """The last `capacity` completed submissions, the recent failures of each service, and live listeners."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, Entry] = OrderedDict()  # oldest first
        self.failures: dict[str, deque[Failure]] = {}
        self.ready = anyio.Event()  # set once the backfill has been read
        self._listeners: set[ObjectSendStream[SubmissionRow]] = set()

    # -- feeding ---------------------------------------------------------------------------
    def add(self, summary: Summary) -> None:
        entry = entry_of(summary)
        row = entry.row
        self.entries.pop(row.sid, None)  # a republished summary (after a dispatcher crash) moves to the front
        self.entries[row.sid] = entry
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        for service, failure in failures_of(summary):
            self.failures.setdefault(service, deque(maxlen=FAILURES_KEPT)).appendleft(failure)
        for listener in list(self._listeners):
            try:
                listener.send_nowait(row)
            except anyio.WouldBlock:
                self._drop(listener)

    async def follow(self, js: JetStreamContext, names: Names) -> None:
        """Read the stream's recent summaries, then every new one, until cancelled."""
        state = (await js.stream_info(names.summary_stream)).state
        # Alerts share the stream, so twice the capacity in sequence numbers covers the last `capacity` summaries.
        start = max(state.first_seq, state.last_seq - 2 * self.capacity + 1, 1)
        sub = await js.subscribe(names.summaries, ordered_consumer=True, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start))
        try:
            info = await sub.consumer_info()
            if info.num_pending == 0 and not info.delivered.consumer_seq:
                self.ready.set()  # nothing to backfill; otherwise the last backfilled message says so
            async for msg in sub.messages:
                try:
                    self.add(decode(msg.data, Summary))
                except BadMessage as exc:
                    log.warning("summary %s ignored: %s", msg.subject, exc)
                if msg.metadata.num_pending == 0:
                    self.ready.set()
        finally:
            with anyio.CancelScope(shield=True):
                await sub.unsubscribe()

    # -- reading ---------------------------------------------------------------------------
    def newest_first(self) -> Iterator[Entry]:
        return reversed(self.entries.values())

    @contextlib.contextmanager
    def listen(self) -> Iterator[ObjectReceiveStream[SubmissionRow]]:
        """New rows as they arrive, for as long as the block runs (ends early if the listener lags)."""
        send, receive = anyio.create_memory_object_stream[SubmissionRow](LISTENER_BACKLOG)
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

    def _drop(self, listener: ObjectSendStream[SubmissionRow]) -> None:
        self._listeners.discard(listener)
        listener.close()


def select(entries: Iterator[Entry], verdict: str | None = None, min_score: int | None = None,
           max_score: int | None = None, file_type: str | None = None, tag: str | None = None) -> Iterator[SubmissionRow]:
    """The rows of the entries that pass every filter given.

    `file_type` matches a type or any type under it (`executable` matches `executable/windows/pe32`)
    anywhere in the tree; `tag` is a case-insensitive substring of any tag value, so `evil.com`
    finds `http://evil.com/x`.
    """
    needle = tag.casefold() if tag else None
    for entry in entries:
        row = entry.row
        if verdict and row.verdict != verdict:
            continue
        if min_score is not None and row.score < min_score:
            continue
        if max_score is not None and row.score > max_score:
            continue
        if file_type and not any(t == file_type or t.startswith(file_type + "/") for t in entry.types):
            continue
        if needle and not any(needle in value for value in entry.tags):
            continue
        yield row
