"""Signing in and out, who am I, and the audit log (admins).

The login takes JSON only (a cross-site form cannot send it) and answers 429 with Retry-After
after a few failures from one address or for one account. The session cookie is HttpOnly,
SameSite=Strict and, unless the web front is bound to loopback, Secure (serve it over HTTPS,
directly or behind a proxy, when it listens beyond loopback).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import JSONBody, QueryParameter
from nats.js.errors import NotFoundError

from bus.codec import BadMessage, decode
from schemas.workspace import AuditEvent
from sluice.web.api import GatewayDep, problem, require_content_type
from sluice.web.auth import ADMIN, SESSION_COOKIE, Principal, remote_of
from sluice.web.ratelimit import Contended
from sluice.web.stores import SESSION_TTL

AUDIT_MAX = 500
LOGIN_MAX_BODY = 4096


class Login(msgspec.Struct):
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class Me(msgspec.Struct):
    signed_in: bool
    user: str = ""
    role: str = ""
    via: str = ""  # key, session, local
    csrf: str = ""  # send it as X-CSRF-Token on every POST/PUT/PATCH/DELETE made with the cookie
    oidc: bool = False  # a "sign in with your organisation" button is offered


def me_of(principal: Principal | None, oidc: bool) -> Me:
    if principal is None:
        return Me(False, oidc=oidc)
    return Me(True, principal.user, principal.role.value, principal.via, principal.csrf, oidc)


def session_cookie(token: str, secure: bool, max_age: int = int(SESSION_TTL)) -> Cookie:
    """The cookie that carries the session (an empty one with max_age 0 removes it)."""
    return Cookie(key=SESSION_COOKIE, value=token, max_age=max_age, path="/", httponly=True, samesite="strict", secure=secure)


@get("/me", summary="Who the request is signed in as (and the CSRF token for the session)")
async def me(request: Request, gateway: GatewayDep) -> Me:
    return me_of(request.scope.get("user"), gateway.oidc is not None)


@post("/login", status_code=200, summary="Sign in with a user name and password; sets the session cookie",
      request_max_body_size=LOGIN_MAX_BODY,
      responses={401: problem("wrong user name or password"), 413: problem(f"the request body is over {LOGIN_MAX_BODY} bytes"),
                 429: problem("too many failed attempts; see Retry-After")})
async def login(request: Request, data: JSONBody[Login], gateway: GatewayDep) -> Response[Me]:
    require_content_type(request, "application/json")
    address = f"ip:{remote_of(request)}"
    account = f"user:{data.user.casefold()}"
    wait = await gateway.throttle.retry_after(address, account)
    if wait > 0:
        raise HTTPException(status_code=429, detail=f"too many failed sign-ins; try again in {wait:.0f} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = await gateway.accounts.check_password(data.user, data.password)
    if user is None:
        try:
            await gateway.throttle.failed(address, account)
        except Contended as exc:  # uncounted, it would be a free guess
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": "1"}) from None
        await gateway.record(request, "login_failed", user=data.user[:64])
        raise NotAuthorizedException(detail="wrong user name or password")
    await gateway.throttle.succeeded(account)
    token, session = await gateway.accounts.open_session(user)
    await gateway.record(request, "login", user=user.name, via="password")
    body = me_of(Principal(user.name, user.role, "session", session.csrf), gateway.oidc is not None)
    return Response(body, cookies=[session_cookie(token, gateway.secure_cookies)])


@post("/logout", status_code=200, summary="End the session (answers who the request is now: nobody)")
async def logout(request: Request, gateway: GatewayDep) -> Response[Me]:
    token = request.cookies.get(SESSION_COOKIE, "")
    principal = request.scope.get("user")
    if token:
        await gateway.accounts.close_session(token)
    if principal is not None:
        await gateway.record(request, "logout")
    return Response(Me(False, oidc=gateway.oidc is not None), cookies=[session_cookie("", gateway.secure_cookies, max_age=0)])


class AuditList(msgspec.Struct):
    items: list[AuditEvent]  # newest first


@get("/audit", guards=[ADMIN], summary="The audit log, newest first (admins)")
async def audit_log(request: Request, gateway: GatewayDep,
                    limit: Annotated[int, QueryParameter(ge=1, le=AUDIT_MAX)] = 100,
                    user: Annotated[str | None, QueryParameter(max_length=64)] = None,
                    action: Annotated[str | None, QueryParameter(max_length=32)] = None) -> AuditList:
    """Read backwards from the stream's last message: a page of the log costs `limit`-ish direct gets."""
    js, names = gateway.client.js, gateway.client.names
    info = await js.stream_info(names.audit_stream)
    items: list[AuditEvent] = []
    seq = info.state.last_seq
    scanned = 0
    while seq >= max(info.state.first_seq, 1) and len(items) < limit and scanned < 20 * AUDIT_MAX:
        scanned += 1
        try:
            msg = await js.get_msg(names.audit_stream, seq)
            event = decode(msg.data, AuditEvent)
        except (NotFoundError, BadMessage):  # a gap (an expired or deleted message) or a foreign one
            event = None
        seq -= 1
        if event and (user is None or event.user == user) and (action is None or event.action == action):
            items.append(event)
    await gateway.record(request, "view_audit")
    return AuditList(items)


ROUTES = [me, login, logout, audit_log]
