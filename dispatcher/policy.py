"""The operator's word over the submitter's and the service's: limits clamped, claims policed,
quotas per submitter identity.

A submission asking for more than the operator allows gets the operator's maximum, and its tree
says so (a `policy` error on its first file). A service result is held to what the operator
approved for that service (`ApprovedService`): a score outside the approved range is clamped, a
`drop` from a service not approved to drop is ignored, each with a `policy` error in the tree.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

import msgspec

from schemas.limits import OperatorLimits
from schemas.messages import ApprovedService, ServiceError, ServiceResult, SubmissionParams, policy_error

DISPATCHER = "dispatcher"


def clamp_params(params: SubmissionParams, limits: OperatorLimits) -> tuple[SubmissionParams, list[ServiceError]]:
    """`params` within `limits`, and what was cut, as errors for the tree."""
    changes: dict[str, object] = {}
    notes: list[ServiceError] = []
    for field in ("max_depth", "max_files", "max_children"):
        asked, most = getattr(params, field), getattr(limits, field)
        if asked > most or asked < 0:
            changes[field] = most if asked > most else 0
            notes.append(policy_error(DISPATCHER, f"{field} {asked} asked; the operator allows {most}, so {changes[field]} applies"))
    if params.deep_scan and not limits.allow_deep_scan:
        changes["deep_scan"] = False
        notes.append(policy_error(DISPATCHER, "deep scan asked; the operator does not allow it"))
    return (msgspec.structs.replace(params, **changes) if changes else params), notes


def police(result: ServiceResult, approved: ApprovedService | None) -> ServiceError | None:
    """Hold `result` to its service's approval, in place; what was overridden, as an error."""
    if approved is None:  # planned only from approvals, so only a result that raced a revocation
        result.score, result.drop = 0, False
        return policy_error(result.service, "not approved by the operator: its score and drop ignored")
    said: list[str] = []
    if not approved.score_min <= result.score <= approved.score_max:
        said.append(f"score {result.score} outside the approved range [{approved.score_min}, {approved.score_max}], clamped")
        result.score = min(max(result.score, approved.score_min), approved.score_max)
    if result.drop and not approved.may_drop:
        said.append("asked to drop the file, which it is not approved to do: ignored")
        result.drop = False
    return policy_error(result.service, "; ".join(said)) if said else None


class FairShare:
    """Trees in flight per submitter identity, and when an identity may start another.

    Alone, an identity may have `most` in flight. While another identity is active (has a tree
    in flight, or had one within `window` seconds), an identity may have no more in flight than
    the least busy active other plus `slack`, and always at least one (equal shares: nobody is
    ever held at zero, so two identities can never wait for each other). Separate queues already keep a flood from standing
    in front of anyone; this keeps it from crowding the dispatcher's CPU: a light submitter's
    tree shares the process with a few of the flood's trees, not dozens, and its latency stays
    near idle (bench/fairness.py). The flood goes on at full width once the others are quiet.
    """

    def __init__(self, most: int, slack: int = 0, window: float = 1.0) -> None:
        self.most, self.slack, self.window = most, slack, window
        self.in_flight: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        # Trees waiting for a place, per identity, in arrival order: a place is handed to one
        # waiter at a time (`_grant`), so a release wakes one tree, not every waiting one.
        self._waiting: dict[str, deque[anyio.Event]] = {}

    def cap(self, identity: str, now: float) -> int:
        busy = [self.in_flight[who] for who, last in self._last.items()
                if who != identity and (self.in_flight[who] or now - last < self.window)]
        return min(self.most, max(1, min(busy) + self.slack)) if busy else self.most

    @asynccontextmanager
    async def slot(self, identity: str) -> AsyncIterator[None]:
        """Wait until `identity` may start a tree; hold its place while the block runs."""
        self._last[identity] = time.monotonic()  # arriving makes it active: the others make room from now on
        queue = self._waiting.setdefault(identity, deque())
        if queue or self.in_flight[identity] >= self.cap(identity, time.monotonic()):
            granted = anyio.Event()
            queue.append(granted)
            try:
                while not granted.is_set():
                    with anyio.move_on_after(self.window):
                        await granted.wait()
                    self._grant()  # others' windows expire without any release
            except BaseException:
                if granted.is_set():
                    self._release(identity)  # a place handed over that will not be used
                else:
                    queue.remove(granted)
                raise
        else:
            self.in_flight[identity] += 1
        try:
            yield
        finally:
            self._release(identity)

    def _release(self, identity: str) -> None:
        self.in_flight[identity] -= 1
        self._last[identity] = time.monotonic()
        self._grant()

    def _grant(self) -> None:
        now = time.monotonic()
        for identity, queue in self._waiting.items():
            while queue and self.in_flight[identity] < self.cap(identity, now):
                self.in_flight[identity] += 1
                queue.popleft().set()
