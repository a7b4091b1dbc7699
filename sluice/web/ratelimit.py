"""Login rate limiting: a few failed sign-ins per client address and per account, then a pause,
held across every web front of a Sluice.

The failures live in the KV bucket `<prefix>-ratelimit` (sluice.web.stores): one entry per
address or account (its SHA-256: an IPv6 address or a user name is not a KV key), holding the
times of its last few failures. A failure is recorded by compare-and-set on the entry's revision,
so two fronts counting at once both land (the loser reads again and retries), and an attacker who
spreads guesses over several fronts gets one budget, not one per front. The bucket's TTL is the
window: an entry with no recent failure expires by itself.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable

import anyio
import msgspec
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from bus.kv import write_at
from sluice.web.stores import RATELIMIT_WINDOW

MAX_FAILURES = 5
COUNT_PATIENCE = 10.0  # seconds a failure may take to be counted under contention; then the sign-in is refused
CONTENTION_PAUSE = 0.005  # at most this many seconds between tries after losing a compare-and-set


class Contended(RuntimeError):
    """A failure could not be counted in time: refuse the sign-in rather than let it go uncounted."""


class LoginThrottle:
    def __init__(self, kv: KeyValue, max_failures: int = MAX_FAILURES, window: float = RATELIMIT_WINDOW,
                 clock: Callable[[], float] = time.time) -> None:
        self.kv = kv
        self.max_failures = max_failures
        self.window = window
        self.clock = clock  # wall-clock: the fronts compare each other's times

    @staticmethod
    def _key(what: str) -> str:
        return "f." + hashlib.sha256(what.encode()).hexdigest()

    async def _recent(self, key: str, now: float) -> tuple[list[float], int]:
        """The failures still inside the window, and the entry's revision (0: no live entry)."""
        try:
            entry = await self.kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return [], 0
        try:
            times = msgspec.msgpack.decode(entry.value or b"\x90", type=list[float])
        except msgspec.DecodeError:
            times = []  # unreadable: counted afresh (it is overwritten by the next failure)
        return [t for t in times if t > now - self.window], entry.revision or 0

    async def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for these keys (0: now)."""
        now = self.clock()
        waits = []
        for key in keys:
            times, _ = await self._recent(self._key(key), now)
            if len(times) >= self.max_failures:
                waits.append(times[-self.max_failures] + self.window - now)
        return max(waits, default=0.0)

    async def failed(self, *keys: str) -> None:
        for key in keys:
            await self._count(self._key(key))

    async def _count(self, key: str) -> None:
        with anyio.move_on_after(COUNT_PATIENCE):
            while True:
                now = self.clock()
                times, revision = await self._recent(key, now)
                value = msgspec.msgpack.encode([*times, now][-self.max_failures:])
                try:
                    await write_at(self.kv, key, value, revision)
                    return
                except KeyWrongLastSequenceError:
                    # Another request counted a failure meanwhile: read it and add ours, after a
                    # random pause so many at once (a parallel guesser) do not collide in lockstep.
                    await anyio.sleep(random.uniform(0, CONTENTION_PAUSE))
        raise Contended(f"a failed sign-in could not be counted within {COUNT_PATIENCE:g} s (too many at once)")

    async def succeeded(self, account: str) -> None:
        """A right password clears the account's failures (not its address's: one good account
        must not reset a guesser's budget for the others)."""
        await self.kv.delete(self._key(account))
