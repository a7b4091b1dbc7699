"""Patience for operations that a NATS reconnect or a JetStream election interrupts.

While a cluster elects a new stream (or meta) leader, requests get 'no responders', 503s or
time out: for about 3 s on an idle box, tens of seconds on a loaded one; while a client moves to
another node, for as long as the reconnect takes. An operation that is safe to repeat (a publish
with a Nats-Msg-Id, a content-addressed object, a read) is retried here with backoff for as long
as that can take, and past it fails with one line saying what could not be done and for how long.
A stream at its size (nats-server's 503 "maximum bytes exceeded") is retried alike, since a
queue drains as its consumers work, and past the patience the line says the stream is full.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from nats.errors import ConnectionReconnectingError, NoRespondersError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import BadRequestError, NoStreamResponseError, ServiceUnavailableError

log = logging.getLogger("sluice.bus")

# Failures that a little patience cures; TimeoutError is our own bounds' (an ack or a call not in time).
TRANSIENT = (NoRespondersError, NoStreamResponseError, NatsTimeout, ServiceUnavailableError, TimeoutError,
             ConnectionReconnectingError, OutboundBufferLimitError)
PLACEMENT = 10005  # JetStream's "no suitable peers for placement"
STORE_FAILED = 10077  # JetStream's "stream store failed", e.g. 'maximum bytes exceeded' (a 503)
PATIENCE_ENV = "SLUICE_NATS_PATIENCE"
# Seconds: a leader election on a loaded 2-core box has been seen to take ~30 s. An operator may
# want a command to give up sooner (or a component to hold on longer): $SLUICE_NATS_PATIENCE.
DEFAULT_PATIENCE = 60.0


def _patience() -> float:
    raw = os.environ.get(PATIENCE_ENV) or str(DEFAULT_PATIENCE)
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"${PATIENCE_ENV}={raw!r}: expected a number of seconds, e.g. 60") from None


PATIENCE = _patience()
FIRST_DELAY, MAX_DELAY = 0.1, 2.0

T = TypeVar("T")


class Unreachable(TimeoutError):
    """NATS did not do `what` within the patience (no answer, or a full stream refusing it); the
    message is the one line a user sees.
    A TimeoutError, so code that treats a timed-out NATS call as transient treats this alike."""

    def __init__(self, what: str, waited: float, cause: BaseException) -> None:
        if full(cause):
            line = (f"{what}: refused for {waited:.0f} s, the stream is full ({cause.description}); its size is "
                    "the operator's (SLUICE_MAX_BYTES_*, docs/trust.md)")
        else:
            line = (f"{what}: NATS did not answer for {waited:.0f} s (last error: {describe(cause)}); "
                    "is the server or a majority of the cluster up?")
        super().__init__(line)
        self.what = what
        self.waited = waited


def full(exc: BaseException) -> bool:
    """Whether `exc` is JetStream refusing a write to a stream at its size (bytes or messages)."""
    return (isinstance(exc, ServiceUnavailableError) and exc.err_code == STORE_FAILED
            and (exc.description or "").startswith("maximum"))


def peer_offline(exc: BaseException) -> bool:
    """Whether `exc` is a cluster refusing to place a replicated stream because a peer is offline:
    a node restarting, or one a just-formed cluster's meta leader does not count as current yet
    (seen in CI provisioning R3 on a loopback cluster right after it became healthy)."""
    return isinstance(exc, BadRequestError) and exc.err_code == PLACEMENT and "peer offline" in (exc.description or "")


def describe(exc: BaseException) -> str:
    """nats-py's errors print as 'nats: timeout' and the like; say which kind when they print nothing."""
    return str(exc).strip() or type(exc).__name__


async def patiently(what: str, operation: Callable[[], Awaitable[T]], patience: float = PATIENCE) -> T:
    """`operation()`, retried on TRANSIENT failures with backoff (0.1 s doubling to 2 s) for up
    to `patience` seconds; then Unreachable. `operation` must be safe to repeat."""
    started = time.monotonic()
    delay = FIRST_DELAY
    while True:
        try:
            return await operation()
        except (*TRANSIENT, BadRequestError) as exc:
            if isinstance(exc, BadRequestError) and not peer_offline(exc):
                raise
            waited = time.monotonic() - started
            if waited + delay > patience:
                raise Unreachable(what, waited, exc) from exc
            log.info("%s failed (%s); retrying in %.1f s", what, describe(exc), delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
