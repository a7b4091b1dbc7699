"""Login rate limiting: a few failed sign-ins per client address and per account, then a pause.

Per web front and in memory: an attacker spreading guesses over several web fronts gets that
many times the budget, still far too little to guess an argon2-hashed password of 10+ characters.
"""

from __future__ import annotations

import time
from collections import deque

MAX_FAILURES = 5
WINDOW = 300.0  # seconds a failure counts against its address and account
TRACKED = 10_000  # addresses/accounts remembered at once (the oldest are forgotten first)


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for these keys (0: now)."""
        now = time.monotonic()
        waits = [times[0] + self.window - now for key in keys
                 if len(times := self._recent(key, now)) >= self.max_failures]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        while len(self._failures) > TRACKED:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, account: str) -> None:
        self._failures.pop(account, None)
