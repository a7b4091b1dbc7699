"""Who is asking, and may they: API keys, session cookies, CSRF, role guards.

Every request gets a `Principal` (or none) before it reaches a handler, from, in order:
an `Authorization: Bearer slk_...` API key; the session cookie; or, only when the web front is
bound to loopback and no account exists yet, the local user (one person on their own machine,
as before accounts existed). A request changing state on the strength of a cookie (or of the
local mode) must carry the session's CSRF token in `X-CSRF-Token`: another site's page can make
the browser send the cookie, but cannot read the token nor set the header without a CORS
preflight this server never grants. API-key requests carry no ambient credential, so no token.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from bus.retry import Unreachable, patiently
from schemas.workspace import Role

if TYPE_CHECKING:
    from sluice.web.api import Gateway

log = logging.getLogger("sluice.web")

SESSION_COOKIE = "sluice_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_EXEMPT = frozenset({"/api/login"})  # no session yet; it takes only JSON, which a cross-site form cannot send


class Principal(msgspec.Struct):
    user: str
    role: Role
    via: str  # "key", "session" or "local"
    csrf: str = ""


@dataclass
class LocalMode:
    """Whether the no-accounts local user is available: loopback bind and no account yet.

    Checked on every request until the first account appears (one KV listing, on loopback), then
    never again: from the moment an account exists, everyone signs in.
    """

    allowed: bool
    csrf: str

    async def active(self, gateway: Gateway) -> bool:
        if self.allowed and await gateway.accounts.has_users():
            self.allowed = False
        return self.allowed


async def principal_of(request: Request, gateway: Gateway) -> Principal | None:
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        user = await gateway.accounts.check_key(token.strip()) if scheme.lower() == "bearer" else None
        return Principal(user.name, user.role, "key") if user else None  # a bad key is not silently ignored
    session = await gateway.accounts.session(request.cookies.get(SESSION_COOKIE, ""))
    if session is not None:
        return Principal(session.user, session.role, "session", session.csrf)
    if await gateway.local.active(gateway):
        return Principal("local", Role.ADMIN, "local", gateway.local.csrf)
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = msgspec.json.encode({"status_code": status, "detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def authenticate(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: sets `scope["user"]` to the Principal (or None) and enforces CSRF."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            scope["user"] = None
            await app(scope, receive, send)
            return
        request = Request(scope)
        gateway = scope["litestar_app"].state.gateway
        try:  # accounts and sessions live in NATS: ride through an election, else a 503 that says so
            principal = await patiently("checking who is asking (accounts, sessions)", lambda: principal_of(request, gateway))
        except Unreachable as exc:
            log.warning("%s", exc)
            await _refuse(send, 503, str(exc))
            return
        scope["user"] = principal
        if (request.method not in SAFE_METHODS and scope["path"] not in CSRF_EXEMPT and principal is not None
                and principal.via != "key"
                and not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), principal.csrf.encode())):
            await _refuse(send, 403, f"missing or wrong {CSRF_HEADER} header (GET /api/me gives the session's token)")
            return
        await app(scope, receive, send)

    return middleware


def requires(role: Role):
    """A Litestar guard: 401 when nobody is signed in, 403 when the role is not enough."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal: Principal | None = connection.scope.get("user")
        if principal is None:
            raise NotAuthorizedException(detail="sign in first (a session, or Authorization: Bearer <API key>)")
        if not principal.role.may(role):
            raise PermissionDeniedException(detail=f"this needs the {role.value} role; {principal.user} is {principal.role.value}")

    guard.__name__ = f"requires_{role.value}"
    return guard


VIEWER, SUBMITTER, ANALYST, ADMIN = (requires(r) for r in Role)


def remote_of(request: Request) -> str:
    """The client's address as this server saw it (a proxy's, behind one)."""
    return request.client.host if request.client else ""


def who(request: Request) -> Principal:
    """The principal a guarded handler runs for."""
    return request.scope["user"]
