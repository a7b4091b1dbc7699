"""The ASGI app: the API under /api, the page at /, strict security headers on everything.

Litestar because it takes msgspec Structs natively: the wire types in `schemas/` (a `Summary`
is served as it was published) and the API's own shapes are validated, encoded and described
in OpenAPI without a second model layer (FastAPI would want pydantic twins of each).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from litestar import Litestar, Request, Router, get
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.response import File, Response
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from schemas.limits import Limits
from sluice.client import Client
from bus.auth import WEB
from bus.retry import Unreachable
from sluice.console import connect_client
from sluice.web.api import ROUTES, Gateway
from sluice.web.accounts import Accounts
from sluice.web.alerts_api import ROUTES as ALERT_ROUTES
from sluice.web.attack import ROUTES as ATTACK_ROUTES
from sluice.web.files_api import ROUTES as FILE_ROUTES
from sluice.web.auth import LocalMode, authenticate
from sluice.web.history import open_history
from sluice.web.index import SubmissionIndex
from sluice.web.oidc import ROUTES as OIDC_ROUTES
from sluice.web.oidc import OidcConfig
from sluice.web.pending import PendingSubmissions
from sluice.web.ratelimit import LoginThrottle
from sluice.web.resubmit_api import ROUTES as RESUBMIT_ROUTES
from sluice.web.session_api import ROUTES as SESSION_ROUTES
from sluice.web.stores import bind_workspace

WEB_HOSTS_ENV = "SLUICE_WEB_HOSTS"

log = logging.getLogger("sluice.web")

STATIC = Path(__file__).parent / "static"
BACKFILL_WAIT = 10.0  # seconds the start waits for the index to catch up with the stream before serving anyway

# No inline script or style, nothing from elsewhere: even a string that slipped past the page's
# escaping could not run. Downloads add `sandbox` on top (see api.attachment).
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def security_headers(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: the headers above on every response (a handler's own CSP wins)."""

    async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in present)]
            await send(message)

        await app(scope, receive, send_with_headers)

    return with_headers


@get("/", include_in_schema=False)
async def page() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline", media_type="text/html; charset=utf-8")


def _gateway(state: State) -> Gateway:
    return state.gateway


@contextlib.asynccontextmanager
async def _connected(nats: str | Client, prefix: str) -> AsyncIterator[Client]:
    """The given client (its owner closes it), or one connected to the given URL for as long as the block runs."""
    if isinstance(nats, Client):
        yield nats
        return
    async with connect_client(nats, prefix, WEB) as client:
        yield client


def allowed_hosts(bound_host: str, port: int) -> AllowedHostsConfig:
    """The `Host` values the front answers (attack 7, DNS rebinding: a page on another name that
    resolves to this address must not drive the API from a browser): the bound address and port,
    the loopback names when bound there, and the names in $SLUICE_WEB_HOSTS (comma-separated,
    each `name` or `name:port`)."""
    names = {f"[{bound_host}]" if ":" in bound_host else bound_host}
    if names & {"127.0.0.1", "[::1]", "0.0.0.0", "[::]"}:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    hosts = {f"{name}:{port}" for name in names} | ({*names} if port == 80 else set())
    hosts |= {n.strip() for n in os.environ.get(WEB_HOSTS_ENV, "").split(",") if n.strip()}
    return AllowedHostsConfig(allowed_hosts=sorted(hosts), www_redirect=False)


def _unreachable(_request: Request, exc: Unreachable) -> Response:
    """NATS did not answer for longer than an election takes (bus.retry): a 503 saying so, no traceback."""
    log.warning("%s", exc)
    return Response({"status_code": 503, "detail": str(exc)}, status_code=503)


@contextlib.asynccontextmanager
async def _index(given: SubmissionIndex | None) -> AsyncIterator[SubmissionIndex]:
    """The given index (its owner closes it), or one over a temporary SQLite file for as long as the app runs."""
    if given is not None:
        yield given
        return
    with open_history(None) as history:
        yield SubmissionIndex(history)


def create_app(nats: str | Client, prefix: str = "sluice", max_upload: int = Limits.max_file_size,
               index: SubmissionIndex | None = None, loopback: bool = True, oidc: OidcConfig | None = None,
               hosts: AllowedHostsConfig | None = None) -> Litestar:
    """The gateway for a Sluice: a connected client, or a NATS URL to connect to when the ASGI server starts the app.

    `loopback`: it listens on loopback only, so until the first account exists the local user may
    use it without signing in (and session cookies go without the Secure flag, for plain http).
    `hosts`: the `Host` values it answers (allowed_hosts); None answers any.
    """
    local = LocalMode(allowed=loopback, csrf=secrets.token_urlsafe(24))

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with _connected(nats, prefix) as client, _index(index) as own_index, anyio.create_task_group() as tg:
            stores = await bind_workspace(client.js, client.names)
            accounts = Accounts(client.js, client.names.accounts_bucket, stores.accounts, stores.sessions)
            app.state.gateway = Gateway(client, own_index, max_upload, accounts, local, stores.triage,
                                        LoginThrottle(stores.ratelimit), PendingSubmissions(stores.pending),
                                        secure_cookies=not loopback, oidc=oidc)
            tg.start_soon(own_index.follow, client.js, client.names)
            tg.start_soon(own_index.follow_triage, stores.triage)
            tg.start_soon(own_index.follow_digests, client.blobs)
            with anyio.move_on_after(BACKFILL_WAIT):
                await own_index.ready.wait()
            if not own_index.ready.is_set():
                log.warning("the history index is still catching up after %g s; serving meanwhile", BACKFILL_WAIT)
            try:
                yield
            finally:
                own_index.close_listeners()
                tg.cancel_scope.cancel()

    return Litestar(
        route_handlers=[
            page,
            Router("/api", route_handlers=[*SESSION_ROUTES, *ROUTES, *FILE_ROUTES, *ALERT_ROUTES, *RESUBMIT_ROUTES, *ATTACK_ROUTES, *OIDC_ROUTES]),
            create_static_files_router("/static", directories=[STATIC], include_in_schema=False),
        ],
        lifespan=[lifespan],
        dependencies={"gateway": Provide(_gateway, sync_to_thread=False)},
        middleware=[security_headers, authenticate],
        allowed_hosts=hosts,
        exception_handlers={Unreachable: _unreachable},
        state=State({"local_csrf": local.csrf}),
        request_max_body_size=max_upload,
        openapi_config=OpenAPIConfig(title="Sluice", version="0.1.0", path="/api", render_plugins=[JsonRenderPlugin()],
                                     description="Submit files and samples to Sluice, read their verdicts, watch them finish."),
    )
