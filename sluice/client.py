"""The async Python client: submit files (or URIs, domains, IPs), wait for verdicts, watch them stream by.

    async with await Client.connect(url) as client:
        summaries = await client.scan([Path("sample.exe")])
        sid = await client.submit_sample("uri", "https://example.com/payload")

Every operation rides through a reconnect or a cluster's leader election (bus.retry): storing a
file (content-addressed: a repeat finds it there), publishing a submission (its id is the
Nats-Msg-Id: a resend is de-duplicated), reading a summary or an object, setting up the summary
subscription. Past bus.retry.PATIENCE it raises bus.retry.Unreachable, whose message says what
could not be reached and for how long.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import anyio
from nats.aio.client import Client as Nats
from nats.errors import ConnectionClosedError, NoServersError, StaleConnectionError, UnexpectedEOF
from nats.js.errors import NotFoundError

from bus.auth import SUBMITTER, identity_of
from bus.blobs import BlobStore
from bus.codec import BadMessage, decode, encode, wire_headers
from bus.connect import close, connect, provisions
from bus.objread import read_named
from bus.provision import provision
from bus.publish import publish
from bus.retry import Unreachable, patiently
from bus.subjects import Names
from schemas.limits import Limits
from schemas.messages import SID, FileRef, SampleKind, StoredObject, Submission, SubmissionParams, Summary, walk
from schemas.samples import SampleError, sample_ref


log = logging.getLogger("sluice.client")

TRACKED = 10_000  # own submissions whose verdicts are kept for a later wait()
# Seconds without a summary on the subscription, while verdicts are awaited, before the awaited
# ones are looked up in the stream: a plain subscription misses what is published while the
# connection is down (a reconnect, an election).
QUIET = 5.0


# A node going away, as in an election: what patience rides through, and says in one line if it
# cannot. Logged for -v only; any other NATS error (a permissions violation shows up only
# here) stays a warning.
TRANSPORT_ERRORS = (OSError, UnexpectedEOF, StaleConnectionError, ConnectionClosedError, NoServersError)


async def _on_nats_error(exc: Exception) -> None:
    log.log(logging.INFO if isinstance(exc, TRANSPORT_ERRORS) else logging.WARNING, "sluice-client: nats error: %s", exc)


class SubmitError(ValueError):
    """A submission refused before it is sent (too large, unreadable, empty, a malformed URI/domain/IP)."""


class _Batch:
    """The verdicts one `wait_all` awaits from this client's own submissions, as they land."""

    def __init__(self, sids: Iterable[str]) -> None:
        self.missing = set(sids)
        self.arrived: list[Summary] = []
        self.landed = anyio.Event()

    def land(self, summary: Summary) -> None:
        if summary.sid in self.missing:
            self.missing.discard(summary.sid)
            self.arrived.append(summary)
            self.landed.set()

    def take(self) -> list[Summary]:
        """What has landed since the last take."""
        arrived, self.arrived = self.arrived, []
        if self.landed.is_set():
            self.landed = anyio.Event()
        return arrived


class Client:
    def __init__(self, nc: Nats, names: Names, max_file_size: int = Limits.max_file_size, role: str = SUBMITTER) -> None:
        self.nc = nc
        self.identity = identity_of(role)  # names its submission subject and its uploads (bus.auth)
        self.js = nc.jetstream()
        self.names = names
        self.max_file_size = max_file_size
        self._waiting: dict[str, anyio.Event] = {}
        self._done: dict[str, Summary] = {}
        self._batches: dict[str, list[_Batch]] = {}  # sid -> the wait_all calls awaiting it
        # Submitted here (so after our summary subscription started) -> its summary once it arrived:
        # waiting for these needs no look-up in the stream. The oldest are forgotten past a bound.
        self._mine: OrderedDict[str, Summary | None] = OrderedDict()
        self._sub = None
        self._last_summary = time.monotonic()

    @classmethod
    async def connect(cls, url: str | None = None, prefix: str = "sluice", role: str = SUBMITTER,
                      connect_timeout: float | None = None, **kwargs) -> Client:
        """`connect_timeout`: give up (Unreachable) if no server accepts the connection within it;
        None waits as long as it takes (bus.connect reconnects forever)."""
        try:
            with anyio.fail_after(connect_timeout):
                nc = await connect(url, name="sluice-client", role=role, error_cb=_on_nats_error)
        except TimeoutError:
            raise Unreachable(f"connecting to {url}", connect_timeout,
                              ConnectionError("no server accepted the connection")) from None
        client = cls(nc, Names(prefix), role=role, **kwargs)
        try:
            stores = await patiently("setting up the client (streams and file store)",
                                     lambda: provision(client.js, client.names, create=provisions(role)))
            client.files = stores.files
            client.blobs = BlobStore(client.js, stores.files, client.names.file_bucket, writer=client.identity,
                                     announce=client._announce)
            # A plain subscription, not a JetStream consumer: a submitter may create none (bus.auth),
            # so no submitter can use up the account's consumers. What it misses while disconnected
            # is looked up in the stream (`_look_up_when_quiet`).
            client._sub = await patiently("subscribing to summaries", lambda: client.nc.subscribe(
                client.names.summaries, cb=client._on_summary))
        except BaseException:
            await nc.close()
            raise
        return client

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        await close(self.nc)

    async def _on_summary(self, msg) -> None:
        self._last_summary = time.monotonic()
        try:
            summary = decode(msg.data, Summary)
        except BadMessage:
            return
        self._arrived(summary)

    def _arrived(self, summary: Summary) -> None:
        if summary.sid in self._mine:
            self._mine[summary.sid] = summary
        for batch in self._batches.get(summary.sid, ()):
            batch.land(summary)
        arrived = self._waiting.get(summary.sid)
        if arrived is None:
            return  # nobody here waits for it
        self._done[summary.sid] = summary
        arrived.set()

    # -- submit ----------------------------------------------------------------------------
    async def _announce(self, ref: FileRef) -> None:
        """Tell the dispatchers that a large upload has begun (dispatcher.early): a hint, core
        NATS, lost harmlessly (the submission, sent once the upload is whole, is checked anyway)."""
        await self.nc.publish(self.names.upload_notice(self.identity), encode(ref), headers=wire_headers())

    async def store(self, data: bytes, name: str) -> FileRef:
        if len(data) > self.max_file_size:
            raise SubmitError(f"{name}: {len(data)} bytes is over the {self.max_file_size}-byte limit")
        return await patiently(f"storing {name}", lambda: self.blobs.put(data, name))

    async def submit_bytes(self, files: Iterable[tuple[str, bytes]], params: SubmissionParams | None = None,
                           metadata: dict[str, str] | None = None, sid: str | None = None) -> str:
        refs = [await self.store(data, name) for name, data in files]
        return await self._publish(refs, params, metadata, sid)

    async def submit_samples(self, samples: Iterable[tuple[SampleKind | str, str]], params: SubmissionParams | None = None,
                             metadata: dict[str, str] | None = None, sid: str | None = None) -> str:
        """URIs, domains and IPs (`(kind, value)` pairs) as one submission, i.e. one verdict tree.

        Each value is checked and made canonical first; a malformed one raises SubmitError saying
        why, and nothing is sent. Nothing goes to the file store: samples travel inline.
        """
        try:
            refs = [sample_ref(kind, value) for kind, value in samples]
        except SampleError as exc:
            raise SubmitError(str(exc)) from None
        return await self._publish(refs, params, metadata, sid)

    async def submit_sample(self, kind: SampleKind | str, value: str, params: SubmissionParams | None = None,
                            metadata: dict[str, str] | None = None, sid: str | None = None) -> str:
        """One URI, domain or IP (`kind` "uri", "domain" or "ip") as its own submission."""
        return await self.submit_samples([(kind, value)], params, metadata, sid)

    async def submit_refs(self, refs: list[FileRef], params: SubmissionParams | None = None,
                          metadata: dict[str, str] | None = None, sid: str | None = None) -> str:
        """Files already in the file store (e.g. a finished submission's, analysed again) as a new submission."""
        return await self._publish(list(refs), params, metadata, sid)

    async def _publish(self, refs: list[FileRef], params: SubmissionParams | None, metadata: dict[str, str] | None,
                       sid: str | None) -> str:
        if not refs:
            raise SubmitError("nothing to submit")
        sub = Submission(sid or uuid.uuid4().hex, refs, params or SubmissionParams(), metadata or {}, time.time())
        self._mine[sub.sid] = None
        if len(self._mine) > TRACKED:
            self._mine.popitem(last=False)
        try:
            await publish(self.js, self.names.submit_root_for(self.identity), encode(sub), sub.sid)
        except BaseException:
            self._mine.pop(sub.sid, None)
            raise
        return sub.sid

    async def submit(self, path: Path, params: SubmissionParams | None = None, **kwargs) -> str:
        path = Path(path)
        if path.stat().st_size > self.max_file_size:
            raise SubmitError(f"{path}: {path.stat().st_size} bytes is over the {self.max_file_size}-byte limit")
        return await self.submit_bytes([(path.name, path.read_bytes())], params, **kwargs)

    # -- results ---------------------------------------------------------------------------
    async def fetch_object(self, summary: Summary, name: str) -> tuple[StoredObject, bytes]:
        """A supplementary file or report object of a submission, by name (KeyError if none)."""
        found = [obj for node in walk(summary.files) for view in node.results for obj in view.objects if obj.name == name]
        if not found:
            raise KeyError(name)
        return found[0], await patiently(f"reading object {name}", lambda: read_named(
            self.js, self.files, self.names.file_bucket, found[0].file))

    def pending(self, sid: str) -> bool:
        """Submitted through this client and not finished (as far as its summary subscription has seen)."""
        return sid in self._mine and self._mine[sid] is None

    async def result(self, sid: str) -> Summary | None:
        """The stored summary of a finished submission, or None if it is not finished (or unknown)."""
        if not SID.match(sid):
            raise SubmitError(f"{sid[:80]!r} is not a submission id")
        if sid in self._done:
            return self._done[sid]
        try:
            msg = await patiently(f"reading the summary of {sid}",
                                  lambda: self.js.get_last_msg(self.names.summary_stream, self.names.summary(sid)))
            return decode(msg.data, Summary)
        except NotFoundError:
            return None
        except BadMessage:  # not a summary (anyone who may publish there could put anything): not finished
            return None

    async def wait(self, sid: str, timeout: float = 300.0) -> Summary:
        """The verdict, from the summary subscription, or TimeoutError after `timeout` s.

        One not submitted here is looked up in the stream first. While it has not come and the
        subscription has been quiet for QUIET s, or the connection came back since the last look,
        it is looked up in the stream again: a plain subscription misses what is published while
        the connection is down (a reconnect, an election). The waiter does that itself, one cancel
        scope per QUIET s of waiting: with a look-up task of its own per wait (spawned, then
        cancelled) the client's CPU per file in bench/mesh.py was 0.30-0.45 ms, without 0.19-0.30."""
        arrived = self._waiting.setdefault(sid, anyio.Event())  # before the lookup, so nothing slips between
        end = anyio.current_time() + timeout
        reconnects = self.nc.stats["reconnects"]
        try:
            summary = self._mine[sid] if sid in self._mine else await self._look_up(sid, end)
            while summary is None:
                with anyio.CancelScope(deadline=min(end, anyio.current_time() + QUIET)):
                    await arrived.wait()
                if arrived.is_set():
                    return self._done[sid]
                if anyio.current_time() >= end:
                    raise TimeoutError(f"no verdict for {sid} within {timeout:g} s")
                if time.monotonic() - self._last_summary >= QUIET or self.nc.stats["reconnects"] != reconnects:
                    reconnects = self.nc.stats["reconnects"]
                    try:
                        summary = await self._look_up(sid, end)
                    except Unreachable as exc:  # the wait has its own timeout; the look-up only helps it
                        log.info("looking up an awaited summary: %s", exc)
            return summary
        finally:
            self._waiting.pop(sid, None)
            self._done.pop(sid, None)
            self._mine.pop(sid, None)

    async def _look_up(self, sid: str, end: float) -> Summary | None:
        """`result(sid)`, or TimeoutError at `end` (the wait's deadline)."""
        with anyio.fail_after(max(0.0, end - anyio.current_time())):
            return await self.result(sid)

    async def wait_all(self, sids: Iterable[str], timeout: float = 300.0,
                       on_done: Callable[[Summary], None] | None = None) -> dict[str, Summary]:
        """Wait for many verdicts at once; those not there within `timeout` are missing from the result.

        `on_done` sees each summary as it arrives (in completion order), e.g. to move a progress bar.
        Those submitted here are awaited by one loop, not a `wait` each: a task and a cancel scope
        per file were a tenth of a 2,000-file `sluice scan`'s client. The rest (another client's,
        or ones this client no longer tracks) are each looked up in the stream first, by `wait`.
        """
        done: dict[str, Summary] = {}

        def finished(summary: Summary) -> None:
            done[summary.sid] = summary
            if on_done:
                on_done(summary)

        async def wait_one(sid: str) -> None:
            with contextlib.suppress(TimeoutError):
                finished(await self.wait(sid, timeout))

        wanted = list(dict.fromkeys(sids))
        async with anyio.create_task_group() as waiters:
            for sid in wanted:
                if sid not in self._mine:
                    waiters.start_soon(wait_one, sid)
            await self._wait_mine([sid for sid in wanted if sid in self._mine], timeout, finished)
        return done

    async def _wait_mine(self, sids: list[str], timeout: float, finished: Callable[[Summary], None]) -> None:
        """`wait_all` for submissions made here: each summary as the subscription brings it; while
        some are missing and the subscription has been quiet for QUIET s (or the connection came
        back since), those are looked up in the stream."""
        batch = _Batch(sids)
        for sid in sids:
            self._batches.setdefault(sid, []).append(batch)
            if self._mine.get(sid) is not None:  # arrived before this wait began
                batch.land(self._mine[sid])
        end = anyio.current_time() + timeout
        reconnects = self.nc.stats["reconnects"]
        try:
            while True:
                for summary in batch.take():
                    self._mine.pop(summary.sid, None)
                    finished(summary)
                if not batch.missing or anyio.current_time() >= end:
                    return
                with anyio.move_on_after(min(end - anyio.current_time(), QUIET)):
                    await batch.landed.wait()
                if batch.arrived:
                    continue
                if time.monotonic() - self._last_summary >= QUIET or self.nc.stats["reconnects"] != reconnects:
                    reconnects = self.nc.stats["reconnects"]
                    for sid in list(batch.missing):
                        try:
                            summary = await self._look_up(sid, end)
                        except (Unreachable, TimeoutError) as exc:  # the wait has its own deadline; looks only help it
                            log.info("looking up an awaited summary: %s", exc)
                            break
                        if summary is not None:
                            batch.land(summary)
        finally:
            for sid in sids:
                waiting = self._batches.get(sid)
                if waiting is not None:
                    waiting.remove(batch)
                    if not waiting:
                        del self._batches[sid]

    async def scan(self, paths: Iterable[Path], params: SubmissionParams | None = None,
                   timeout: float = 300.0) -> list[Summary]:
        """Submit each file as its own submission and wait for all verdicts (in submission order)."""
        sids = [await self.submit(p, params) for p in paths]
        done = await self.wait_all(sids, timeout)
        missing = [sid for sid in sids if sid not in done]
        if missing:
            raise TimeoutError(f"no verdict within {timeout:g} s for {len(missing)} submission(s): {', '.join(missing[:5])}")
        return [done[sid] for sid in sids]

    async def watch(self, alerts: bool = False) -> AsyncIterator[Summary]:
        """Completed submissions as they finish (from now on); `alerts`: only those at the alert threshold."""
        subject = self.names.alerts if alerts else self.names.summaries
        # A plain subscription (a submitter may create no consumer): what finishes while the
        # connection is down is not shown; `sluice result SID` reads any of them from the stream.
        sub = await patiently("subscribing to summaries", lambda: self.nc.subscribe(subject))
        try:
            async for msg in sub.messages:
                try:
                    yield decode(msg.data, Summary)
                except BadMessage:
                    continue
        finally:
            await sub.unsubscribe()
