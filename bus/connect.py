"""Connecting to NATS the way every Sluice component should: reconnect forever, log, don't crash."""

from __future__ import annotations

import logging
import os

from pathlib import Path

from nats.aio.client import Client

from bus.auth import PROVISIONERS, creds_file_name, inbox_prefix, public_key
from bus.nats_client import NatsClient

log = logging.getLogger("sluice.bus")

DEFAULT_URL_ENV = "SLUICE_NATS_URL"
CREDS_ENV = "SLUICE_NATS_CREDS"


def credentials(role: str | None) -> Path | None:
    """This component's nkey seed file, from $SLUICE_NATS_CREDS: a file (this identity), or a
    directory written by `sluice auth init` (the file named after `role` in it). None: no auth."""
    given = os.environ.get(CREDS_ENV)
    if not given:
        return None
    path = Path(given)
    if path.is_dir():
        if role is None:
            raise ValueError(f"{CREDS_ENV}={given} is a directory, and this component has no role to pick a file by")
        path = path / creds_file_name(role)
    return path


def provisions(role: str) -> bool:
    """Whether a component of `role` creates the streams itself: always without auth (nothing
    depends on start order); under auth only the dispatcher and admin may, the rest bind."""
    return credentials(role) is None or role in PROVISIONERS


def _auth_options(creds: Path) -> dict:
    try:
        seed = creds.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"NATS credentials {creds} do not exist: `sluice auth init` writes one file per component "
                         "(--services NAME for a service of your own)") from None
    except OSError as exc:
        raise ValueError(f"NATS credentials {creds}: {exc.strerror}") from None
    # Each identity may subscribe only below its own inbox prefix (bus.auth).
    return {"nkeys_seed": str(creds), "inbox_prefix": inbox_prefix(public_key(seed))}


async def connect(url: str | None = None, name: str = "sluice", *, role: str | None = None,
                  creds: Path | None = None, **kwargs) -> Client:
    """Connect as `role` (its credentials from $SLUICE_NATS_CREDS), or as the identity in `creds`."""
    url = url or os.environ.get(DEFAULT_URL_ENV, "nats://127.0.0.1:4222")
    creds = creds or credentials(role)
    if creds is not None:
        kwargs = {**_auth_options(Path(creds)), **kwargs}

    async def on_error(exc: Exception) -> None:
        # Without an error callback nats-py logs a traceback per reconnect attempt; and a
        # permissions violation surfaces only here (the call itself just times out).
        log.warning("%s: nats error: %s", name, exc)

    async def on_disconnect() -> None:
        log.info("%s: disconnected from NATS", name)

    async def on_reconnect() -> None:
        log.info("%s: reconnected to NATS", name)

    options = dict(servers=url.split(","), name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                   error_cb=on_error, disconnected_cb=on_disconnect, reconnected_cb=on_reconnect)
    nc = NatsClient()
    await nc.connect(**{**options, **kwargs})  # a caller's own callbacks win
    return nc


async def close(nc: Client) -> None:
    """Flush, then close: acks and naks sent just before a stop must reach the server."""
    if nc.is_closed:
        return
    try:
        await nc.flush(timeout=2)
    except Exception as exc:  # noqa: BLE001 - closing anyway; the server redelivers what it missed
        log.info("flush before close failed: %s", exc)
    await nc.close()
