"""OpenID Connect sign-in for organisations: the authorization-code flow with PKCE (authlib's
request builders, httpx to send them), the ID token checked against the provider's published
keys (joserfc): issuer, audience, expiry, nonce.

An identity signs in only as the account bound to it (`sluice user add NAME --oidc-subject
"ISSUER SUBJECT"`), or, when the operator allows it (`--oidc-auto-role viewer`), as a new
account with that role named after its preferred_username/email. The login's state, nonce and
PKCE verifier wait in the sessions bucket (keyed by the state's SHA-256, used once), so the
callback may land on any web front of the same Sluice.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated

import httpx
import msgspec
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Request, Response, get
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.params import QueryParameter
from litestar.response import Redirect
from nats.js.errors import KeyNotFoundError

from bus.codec import BadMessage, decode, encode
from schemas.workspace import Role, User
from sluice.web.accounts import AccountError, digest
from sluice.web.api import GatewayDep, problem
from sluice.web.session_api import session_cookie

LOGIN_TTL = 600.0  # seconds a started sign-in may take to come back
DISCOVERY_TTL = 3600.0  # seconds the provider's configuration and keys are reused


class PendingLogin(msgspec.Struct):
    """A sign-in sent to the provider and not back yet (in the sessions bucket, used once)."""

    nonce: str
    verifier: str
    redirect_uri: str
    started_at: float


@dataclass
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    auto_role: Role | None = None  # None: only accounts bound to the identity may sign in
    scope: str = "openid email profile"
    _discovered: tuple[float, dict, KeySet] | None = field(default=None, repr=False)

    async def provider(self) -> tuple[dict, KeySet]:
        """The provider's configuration and signing keys (discovered, then reused for an hour)."""
        if self._discovered and time.monotonic() - self._discovered[0] < DISCOVERY_TTL:
            return self._discovered[1], self._discovered[2]
        async with httpx.AsyncClient(timeout=10) as http:
            meta = (await http.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")).raise_for_status().json()
            if meta.get("issuer") != self.issuer:
                raise HTTPException(status_code=502, detail=f"the provider says its issuer is {meta.get('issuer')!r}, not {self.issuer!r}")
            keys = KeySet.import_key_set((await http.get(meta["jwks_uri"])).raise_for_status().json())
        self._discovered = (time.monotonic(), meta, keys)
        return meta, keys

    def authorization_url(self, endpoint: str, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        return prepare_grant_uri(endpoint, self.client_id, "code", redirect_uri=redirect_uri, scope=self.scope, state=state,
                                 nonce=nonce, code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")

    async def exchange(self, endpoint: str, code: str, redirect_uri: str, verifier: str) -> dict:
        """The provider's token response for the code (client_secret_basic, with the PKCE verifier)."""
        body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(endpoint, content=body, auth=(self.client_id, self.client_secret),
                                       headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        if response.status_code != 200:
            raise PermissionDeniedException(detail=f"the provider did not exchange the code: {response.status_code} {response.text[:200]}")
        return response.json()


def _callback_url(request: Request) -> str:
    return str(request.url.with_replacements(path="/api/oidc/callback", query=""))


@get("/oidc/login", summary="Start an OpenID Connect sign-in (redirects to the provider)", include_in_schema=False)
async def oidc_login(request: Request, gateway: GatewayDep) -> Redirect:
    config = gateway.oidc
    if config is None:
        raise HTTPException(status_code=404, detail="OpenID Connect sign-in is not configured")
    meta, _ = await config.provider()
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    redirect_uri = _callback_url(request)
    await gateway.accounts.sessions.put(f"oidc.{digest(state)}", encode(PendingLogin(nonce, verifier, redirect_uri, time.time())))
    return Redirect(config.authorization_url(meta["authorization_endpoint"], redirect_uri, state, nonce, verifier), status_code=302)


async def _take_pending(gateway, state: str) -> PendingLogin:
    key = f"oidc.{digest(state)}"
    try:
        entry = await gateway.accounts.sessions.get(key)
        pending = decode(entry.value, PendingLogin) if entry.value else None
    except (KeyNotFoundError, BadMessage):
        pending = None
    if pending is None or time.time() - pending.started_at > LOGIN_TTL:
        raise HTTPException(status_code=400, detail="unknown or expired sign-in (start again)")
    await gateway.accounts.sessions.delete(key)  # used once: a replayed callback finds nothing
    return pending


def _claims(config: OidcConfig, keys: KeySet, id_token: str, nonce: str) -> dict:
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": config.issuer}, aud={"essential": True, "value": config.client_id},
                              sub={"essential": True}, exp={"essential": True}, nonce={"essential": True, "value": nonce},
                              ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise PermissionDeniedException(detail=f"the provider's ID token was refused: {exc}") from None
    return token.claims


async def _account(gateway, config: OidcConfig, claims: dict) -> User:
    subject = f"{config.issuer} {claims['sub']}"
    user = await gateway.accounts.user_by_subject(subject)
    if user is not None:
        return user
    if config.auto_role is None:
        raise PermissionDeniedException(detail=f"no account is bound to {subject!r}; an admin can bind one with "
                                               f"`sluice user add NAME --oidc-only --oidc-subject \"{subject}\"`")
    wanted = str(claims.get("preferred_username") or claims.get("email") or claims["sub"]).lower()
    name = re.sub(r"[^a-z0-9._-]", "-", wanted)[:64].strip("-.") or "user"
    try:
        return await gateway.accounts.add_user(name, config.auto_role, oidc_subject=subject)
    except AccountError:
        raise PermissionDeniedException(detail=f"an account named {name} exists but is not bound to {subject!r}") from None


@get("/oidc/callback", summary="Where the provider sends the browser back", include_in_schema=False,
     responses={400: problem("unknown or expired sign-in"), 403: problem("the identity may not sign in")})
async def oidc_callback(request: Request, gateway: GatewayDep,
                        code: Annotated[str, QueryParameter(max_length=4096)] = "",
                        login_state: Annotated[str, QueryParameter(name="state", max_length=200)] = "",
                        error: Annotated[str, QueryParameter(max_length=500)] = "") -> Response:
    config = gateway.oidc
    if config is None:
        raise HTTPException(status_code=404, detail="OpenID Connect sign-in is not configured")
    if error:
        raise PermissionDeniedException(detail=f"the provider refused: {error}")
    pending = await _take_pending(gateway, login_state)
    meta, keys = await config.provider()
    token = await config.exchange(meta["token_endpoint"], code, pending.redirect_uri, pending.verifier)
    claims = _claims(config, keys, token.get("id_token", ""), pending.nonce)
    user = await _account(gateway, config, claims)
    session_token, _ = await gateway.accounts.open_session(user, via="oidc")
    await gateway.record(request, "login", user=user.name, via="oidc")
    return Redirect("/", status_code=302, cookies=[session_cookie(session_token, gateway.secure_cookies)])


ROUTES = [oidc_login, oidc_callback]
