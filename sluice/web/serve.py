"""Run the gateway with Hypercorn until a stop event.

Hypercorn rather than uvicorn because it takes a `shutdown_trigger` and leaves signals alone,
so it runs inside Sluice's own task group and stops on the same event as everything else
(`sluice up` runs it beside the mesh). The listening socket is bound here, before the server
starts, so the URL is known at once (port 0 picks a free one) and a bind failure is a clear error.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import anyio
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from litestar import Litestar

from schemas.limits import Limits
from bus.auth import WEB
from sluice.client import Client
from sluice.console import CliError, connect_client
from sluice.web.accounts import Accounts
from sluice.web.stores import bind_workspace
from sluice.web.app import allowed_hosts, create_app
from sluice.web.history import open_history
from sluice.web.index import SubmissionIndex
from sluice.web.oidc import OidcConfig

GRACE = 3.0  # seconds in-flight requests get at shutdown


def parse_bind(bind: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080` for IPv6) as a (host, port) pair; ValueError if it is not one."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def listen(bind: str) -> socket.socket:
    host, port = parse_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=False)


def is_loopback(sock: socket.socket) -> bool:
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


async def refuse_open_beyond_loopback(client: Client, sock: socket.socket) -> None:
    """Beyond loopback, only with accounts: otherwise anyone who reaches the port could read every
    verdict and download every sample (on loopback, the local user may work without one)."""
    if is_loopback(sock):
        return
    stores = await bind_workspace(client.js, client.names)
    if not await Accounts(client.js, client.names.accounts_bucket, stores.accounts, stores.sessions).has_users():
        raise CliError(f"refusing to serve on {url_of(sock)} without accounts: anyone reaching it could read every "
                       f"verdict and download every sample. Add one first (`sluice user add NAME --role admin`), "
                       f"or bind to loopback (127.0.0.1)")


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _config(sock: socket.socket) -> Config:
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) the descriptor from here
    config.graceful_timeout = GRACE
    config.errorlog = None
    return config


async def serve(nats_url: str, prefix: str, sock: socket.socket, stop: anyio.Event,
                max_upload: int = Limits.max_file_size, index_path: Path | None = None, oidc: OidcConfig | None = None) -> None:
    """Serve on `sock` (from `listen`; it is handed over and closed at the end) until `stop`.

    NATS is reached before the server starts, so an unreachable one is one clear error (a
    failure inside the app's start-up would only reach us as Hypercorn's traceback text).
    """
    halt = anyio.Event()

    async def shutdown() -> None:
        await halt.wait()
        index.close_listeners()  # open event streams would otherwise hold the whole grace period

    async def relay() -> None:
        try:
            await stop.wait()
        finally:
            halt.set()  # on `stop`, and also when this task is cancelled

    async def run_hypercorn(app: Litestar) -> None:
        # Shielded: Hypercorn's clean-up does not survive being cancelled (InvalidStateError), so a
        # cancellation of `serve` becomes a graceful shutdown instead (relay), bounded by GRACE.
        with anyio.CancelScope(shield=True):
            await hypercorn_serve(app, _config(sock), shutdown_trigger=shutdown)

    with sock, open_history(index_path) as history:  # sock: closed here if NATS cannot be reached; otherwise Hypercorn closes it
        index = SubmissionIndex(history)
        async with connect_client(nats_url, prefix, WEB) as client, anyio.create_task_group() as tg:
            if oidc is None:  # with OpenID Connect, the organisation's accounts sign in
                await refuse_open_beyond_loopback(client, sock)
            tg.start_soon(relay)
            # In a task of its own: Hypercorn's asyncio.TaskGroup cancels and then uncancels its
            # parent task at shutdown, which upsets the cancel scopes of a task that has any (the
            # caller's, e.g. `until_signal`) and surfaced as a stray CancelledError at exit.
            tg.start_soon(run_hypercorn, create_app(client, max_upload=max_upload, index=index, loopback=is_loopback(sock), oidc=oidc,
                                                    hosts=allowed_hosts(*sock.getsockname()[:2])))
            await halt.wait()
