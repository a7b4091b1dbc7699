"""Checking a large upload while it is still arriving, so that the check overlaps the upload.

A large file crosses NATS three times in turn: the client's upload, the dispatcher's check (read
whole, sha256, name: bus.blobs.promote) and the services' download. Nothing may be typed or
routed on unchecked bytes, so the check cannot overlap the download; it can overlap the upload.
So a client announces an upload as it begins, on `<prefix>.upload.<identity>` (the FileRef it
will submit: sha256, size, upload token), and still submits only once the upload is whole: an
upload that fails is simply uploaded again and then submitted, nothing is lost. A dispatcher
that hears the announcement checks the upload as its chunks arrive and names it. When the
submission comes, the object is named (or its check is under way here, and the submission
waits for it rather than read the file a second time: dispatcher.identifier).

An announcement is only a hint, and costs its sender nothing it could turn against others:
nothing is named but bytes checked against their sha256, charged to the writer's stored-bytes
quota as any promotion is; an identity may announce only its own uploads (the subject is its
own, which the server lets no one else publish to, and so must be the upload's token); and one
check per identity, `most` in all, run at once: further announcements are dropped (their
submissions are checked when they come, as without this), so a flood of announcements of
uploads that never arrive holds `most` reads for a few seconds each, and no tree slot.
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskStatus
from nats.aio.client import Client
from nats.aio.msg import Msg

from bus.blobs import ANNOUNCED_SIZE, BlobError
from bus.codec import BadMessage, check_wire, decode
from bus.subjects import Names
from dispatcher.identifier import Identifier
from schemas.messages import FileRef

log = logging.getLogger("sluice.dispatcher")

MOST = 4  # checks at once per dispatcher; each holds one file in memory while it is read
SLOWEST = 5e6  # bytes per second: an upload announced but arriving slower than this is left to its submission


class EarlyChecks:
    """Serves the upload announcements of one prefix, in the dispatchers' queue group (one
    dispatcher checks each upload)."""

    def __init__(self, nc: Client, names: Names, identifier: Identifier, max_file_size: int, most: int = MOST) -> None:
        self._nc = nc
        self._names = names
        self._identifier = identifier
        self._max_file_size = max_file_size
        self._most = most
        self._running: set[str] = set()  # identities with a check under way

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled; started (`task_status`) once subscribed."""
        sub = await self._nc.subscribe(self._names.upload_notices, queue="dispatchers")
        task_status.started()
        try:
            async with anyio.create_task_group() as tg:
                async for msg in sub.messages:
                    accepted = self.accept(msg)
                    if accepted is not None:
                        self._running.add(accepted[0])
                        tg.start_soon(self._check, *accepted)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await sub.unsubscribe()

    def accept(self, msg: Msg) -> tuple[str, FileRef] | None:
        """The announcing identity and its upload, if this one is to be checked now."""
        identity = msg.subject.rsplit(".", 1)[-1]
        try:
            check_wire(msg.headers)
            ref = decode(msg.data, FileRef)
        except BadMessage as exc:
            log.info("ignoring an upload announcement from %s: %s", identity, exc)
            return None
        if ref.data is not None or ref.upload.split(".", 1)[0] != identity:
            log.info("ignoring an upload announcement from %s of %r: not an upload of its own", identity, ref.upload[:80])
            return None
        if not ANNOUNCED_SIZE <= ref.size <= self._max_file_size:
            return None
        if identity in self._running or len(self._running) >= self._most:
            return None  # checked when it is submitted instead
        return identity, ref

    async def _check(self, identity: str, ref: FileRef) -> None:
        try:
            with anyio.fail_after(5.0 + ref.size / SLOWEST):
                await self._identifier.check_early(ref)
        except (BlobError, TimeoutError) as exc:
            log.info("early check of %s's upload %s failed (its submission is checked when it comes): %s",
                     identity, ref.upload, exc)
        except Exception:  # noqa: BLE001 - a hint's failure must not stop the dispatcher
            log.exception("early check of %s's upload %s failed", identity, ref.upload)
        finally:
            self._running.discard(identity)
