"""Submissions in flight, known to every web front: `GET /api/submissions/{sid}` answers 202 for
one of them on any front, and 404 only for an id no front submitted (or one long expired).

Each submission a web front makes is written to the KV bucket `<prefix>-pending`
(sluice.web.stores) as it is accepted; a finished submission is answered from its summary before
this is asked, so nothing has to remove the entry: the bucket's TTL (a day) ends it. A submission
made over NATS, not through a web front, is not in it (a 404 until its summary arrives).
"""

from __future__ import annotations

import logging

from nats.errors import Error as NatsError
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

log = logging.getLogger("sluice.web")


class PendingSubmissions:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def add(self, sid: str, submitter: str) -> None:
        """Record `sid` as in flight. A failure (the bucket full) costs only the 202 on other fronts."""
        try:
            await self.kv.put(sid, submitter.encode() or b"-")
        except NatsError as exc:
            log.warning("submission %s not recorded as pending (other web fronts answer 404 until it finishes): %s", sid, exc)

    async def known(self, sid: str) -> bool:
        try:
            await self.kv.get(sid)
        except (KeyNotFoundError, KeyDeletedError):
            return False
        return True
