"""Which submitter identity's tree the dispatcher starts next: equal shares, the lighter first.

Separate queues (one per identity, bus.provision) keep a flood from standing in front of anyone
in the stream; this keeps it from crowding everything behind the queues, which all identities
share: the dispatcher's CPU and every service's task queue (first in, first out). What was
measured (bench/fairness.py, a flood of 10,000 from A, B submitting one file at a time): with
equal shares alone, B's tree ran beside one of A's at every moment, and on a 2-core box two
trees at once take about twice as long each, so B's latency sat at 2-3x its idle figure.

So, besides the width rule (`cap`), an identity **yields to a lighter one**: each identity's
use is counted in tree-seconds, decayed with a time constant of `memory` seconds, and an
identity starts no new tree while another that used less lately is *present*: has a tree in
flight or waiting, or finished one less than `grace` seconds ago (the moment between one of
its submissions and the next). A flood that ran wide a moment ago is the heavier for about
four time constants, so a light submitter's trees run alone, as if idle, but for trees of the
flood already in flight when it arrived. The heavier identity is not starved: it starts one
tree per `window` seconds anyway when it has none in flight, and as it gets less its use
decays below the other's, and then the other yields to it (equal shares over time, each
alternately first, as a fair scheduler does by recent use).

The width rule: alone, an identity may have `most` trees in flight. While another identity is
active (a tree in flight, or one within `window` seconds), no more than the least demanding
active other wants (in flight plus waiting) plus `slack`, and always at least one: beside a
light submitter, a flood starts one tree at a time in the light one's pauses, not dozens; two
floods each keep their width (matching the other's trees in flight instead held two floods to
one tree each, the whole dispatcher to two). The lightest present identity never yields and
always has a place, so no two identities can wait for each other.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class FairShare:
    """Trees in flight per submitter identity, and when an identity may start another."""

    def __init__(self, most: int, slack: int = 0, window: float = 1.0, grace: float = 0.25, memory: float = 10.0) -> None:
        self.most, self.slack, self.window, self.grace, self.memory = most, slack, window, grace, memory
        self.in_flight: Counter[str] = Counter()
        self._last: dict[str, float] = {}  # when each identity last arrived or finished a tree
        self._started: dict[str, float] = {}  # when each identity last started one
        self._use: dict[str, tuple[float, float]] = {}  # identity -> (decayed tree-seconds, as of when)
        # Trees waiting for a place, per identity, in arrival order: a place is handed to one
        # waiter at a time (`_grant`), so a release wakes one tree, not every waiting one.
        self._waiting: dict[str, deque[_Waiter]] = {}

    def use(self, identity: str, now: float) -> float:
        """Tree-seconds `identity` used, each second's weight decayed by e^(-age/memory)."""
        used, since = self._use.get(identity, (0.0, now))
        decay = math.exp(-(now - since) / self.memory)
        # Constant in-flight since `since`: the integral of in_flight * e^(-age/memory).
        return used * decay + self.in_flight[identity] * self.memory * (1 - decay)

    def cap(self, identity: str, now: float) -> int:
        wants = [self.in_flight[who] + len(self._waiting.get(who, ())) for who, last in self._last.items()
                 if who != identity and (self.in_flight[who] or now - last < self.window)]
        return min(self.most, max(1, min(wants) + self.slack)) if wants else self.most

    def yields(self, identity: str, now: float) -> bool:
        """Whether a lighter identity is present, so `identity` starts nothing new for now."""
        mine = self.use(identity, now)
        return any(self.use(other, now) < mine for other, last in self._last.items()
                   if other != identity and (self.in_flight[other] or self._waiting.get(other) or now - last < self.grace))

    def _may_start(self, identity: str, now: float) -> bool:
        if self.in_flight[identity] >= self.cap(identity, now):
            return False
        return (not self.yields(identity, now)
                or (not self.in_flight[identity] and now - self._started.get(identity, -math.inf) >= self.window))

    @asynccontextmanager
    async def slot(self, identity: str) -> AsyncIterator[None]:
        """Wait until `identity` may start a tree; hold its place while the block runs."""
        now = time.monotonic()
        self._last[identity] = now  # arriving makes it active: the others make room from now on
        queue = self._waiting.setdefault(identity, deque())
        if queue or not self._may_start(identity, now):
            waiter = _Waiter()
            queue.append(waiter)
            try:
                while not waiter.granted:
                    # The first in line looks again once a grace has passed (another identity's
                    # may have ended without a release); the rest wait to be first (`_grant`
                    # wakes the next in line), looking now and then all the same.
                    with anyio.move_on_after(self.grace if queue and queue[0] is waiter else self.window):
                        await waiter.wake.wait()
                    if not waiter.granted:
                        waiter.wake = anyio.Event()
                        self._grant()  # others' windows and graces end without any release
            except BaseException:
                if waiter.granted:
                    self._release(identity)  # a place handed over that will not be used
                else:
                    queue.remove(waiter)
                    if queue:
                        queue[0].wake.set()
                raise
        else:
            self._count(identity, +1)
        try:
            yield
        finally:
            self._release(identity)

    def _count(self, identity: str, change: int) -> None:
        now = time.monotonic()
        self._use[identity] = (self.use(identity, now), now)  # the use so far, at the old width
        self.in_flight[identity] += change
        if change > 0:
            self._started[identity] = now

    def _release(self, identity: str) -> None:
        self._count(identity, -1)
        self._last[identity] = time.monotonic()
        self._grant()

    def _grant(self) -> None:
        now = time.monotonic()
        for identity, queue in self._waiting.items():
            while queue and self._may_start(identity, now):
                self._count(identity, +1)
                waiter = queue.popleft()
                waiter.granted = True
                waiter.wake.set()
                if queue:
                    queue[0].wake.set()  # first in line now: it looks again every grace


class _Waiter:
    """A tree waiting for a place: `wake` is set when it is granted one or becomes first in line."""

    __slots__ = ("granted", "wake")

    def __init__(self) -> None:
        self.granted = False
        self.wake = anyio.Event()
