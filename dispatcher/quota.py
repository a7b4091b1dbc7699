"""Quotas per submitter identity that hold across every dispatcher of a prefix.

A per-process count lets N dispatchers allow N times the quota. Here the count lives in a KV
bucket every dispatcher shares (`Names.quota_bucket`, made by provisioning), one key per
identity and window (`<kind>.<identity>.<window number>`), and each dispatcher adds to it by
compare-and-set: it writes the new total only if the key is still at the revision it read, and
on a conflict (another dispatcher counted meanwhile) reads again and retries. So the sum over
all dispatchers never passes the quota. Windows are fixed (wall-clock minutes or hours, so
dispatchers agree on them without talking): an identity can spend one window's quota at its end
and the next one's at its start, at most twice the quota over any window's length.

Submissions in flight are held by the server itself, not here: each identity's queue consumer
has `max_ack_pending` = its in-flight quota (bus.provision), across all dispatchers.
"""

from __future__ import annotations

import time

import anyio
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from bus.kv import write_at

LEASE_SHARE = 64  # a lease is at most this fraction of the quota...
LEASE_MOST = 64  # ...and at most this many (submissions, or bytes: see SharedQuota)
ATTEMPTS = 50  # compare-and-set retries before giving up (each conflict means another dispatcher counted)


class QuotaError(RuntimeError):
    """The shared count could not be updated (too many conflicting writers)."""


class SharedQuota:
    """`most` per identity per fixed `window` seconds, e.g. submissions per minute, bytes per hour.

    A dispatcher counts in leases: one compare-and-set takes up to `most / LEASE_SHARE` (at most
    LEASE_MOST) from the shared total, and later takes spend what is left of it here, without a
    round trip. A KV write per submission was about two of the mesh's messages per file and a
    round trip on every root, under the default quota that is always on. The shared total still
    never passes `most`; what a dispatcher leased and did not spend (it stopped, or the window
    ended) is simply not granted to anyone, at most one lease per dispatcher and window. A quota
    under twice LEASE_SHARE is counted one by one, exactly.
    """

    def __init__(self, kv: KeyValue, kind: str, most: int, window: float) -> None:
        self.kv, self.kind, self.most, self.window = kv, kind, most, window
        self.lease = max(1, min(LEASE_MOST, most // LEASE_SHARE))
        # The last total and revision this process saw per key: usually still current (one
        # dispatcher takes most of an identity's queue), so a take is one write, not a read and a write.
        self._seen: dict[str, tuple[int, int | None]] = {}
        self._leased: dict[str, int] = {}  # counted in the shared total, not yet spent here
        self._locks: dict[str, anyio.Lock] = {}  # this process's takes on one key one at a time

    async def take(self, identity: str, amount: int = 1, now: float | None = None) -> bool:
        """Count `amount` for `identity` in the current window; False (nothing counted) if that would put it over."""
        key = f"{self.kind}.{identity}.{int((time.time() if now is None else now) // self.window)}"
        async with self._locks.setdefault(key, anyio.Lock()):
            if len(self._locks) > 4096:  # keys of past windows
                self._forget(key)
            leased = self._leased.get(key, 0)
            if leased >= amount:
                self._leased[key] = leased - amount
                return True
            need = amount - leased
            for _ in range(ATTEMPTS):
                used, revision = self._seen.get(key) or await self._read(key)
                if used + need > self.most:
                    # The seen total only ever lags the true one, so over here is over for real.
                    return False
                grab = min(self.most - used, max(need, self.lease))
                try:
                    revision = await write_at(self.kv, key, str(used + grab).encode(), revision)
                except KeyWrongLastSequenceError:
                    self._seen.pop(key, None)  # someone else counted: read the total again
                    continue
                self._seen[key] = (used + grab, revision)
                self._leased[key] = grab - need
                return True
        raise QuotaError(f"{self.kind} quota of {identity}: {ATTEMPTS} conflicting updates in a row")

    async def _read(self, key: str) -> tuple[int, int | None]:
        try:
            entry = await self.kv.get(key)
        except NotFoundError:  # never counted, or expired with its window
            return 0, None
        try:
            return int(entry.value or b"0"), entry.revision
        except ValueError:
            raise QuotaError(f"quota key {key}: {entry.value[:40]!r} is not a count") from None

    def _forget(self, current: str) -> None:
        for key in [k for k in self._locks if k != current and not self._locks[k].locked()]:
            del self._locks[key]
            self._seen.pop(key, None)
            self._leased.pop(key, None)
