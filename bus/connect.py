"""Connecting to NATS the way every Sluice component should: reconnect forever, log, don't crash."""

from __future__ import annotations

import logging
import os

import nats
from nats.aio.client import Client

log = logging.getLogger("sluice.bus")

DEFAULT_URL_ENV = "SLUICE_NATS_URL"


async def connect(url: str | None = None, name: str = "sluice", **kwargs) -> Client:
    url = url or os.environ.get(DEFAULT_URL_ENV, "nats://127.0.0.1:4222")

    async def on_error(exc: Exception) -> None:
        # Without an error callback nats-py logs a traceback per reconnect attempt; and a
        # permissions violation surfaces only here (the call itself just times out).
        log.warning("%s: nats error: %s", name, exc)

    async def on_disconnect() -> None:
        log.info("%s: disconnected from NATS", name)

    async def on_reconnect() -> None:
        log.info("%s: reconnected to NATS", name)

    return await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        **kwargs,
    )


async def close(nc: Client) -> None:
    """Flush, then close: acks and naks sent just before a stop must reach the server."""
    if nc.is_closed:
        return
    try:
        await nc.flush(timeout=2)
    except Exception as exc:  # noqa: BLE001 - closing anyway; the server redelivers what it missed
        log.info("flush before close failed: %s", exc)
    await nc.close()
