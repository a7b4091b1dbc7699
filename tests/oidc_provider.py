"""A tiny OpenID Connect provider on loopback, for the web front's sign-in tests.

Discovery, an authorization endpoint that approves at once (as whichever subject the test says),
a token endpoint that checks the client secret, the code (used once) and the PKCE verifier, and
the JWKS. The ID token is RS256-signed with a key made per provider. The test can make it lie
(another issuer, another nonce) to show the web front refuses such tokens.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import anyio
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, get, post
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from sluice.web.serve import listen, url_of


@dataclass
class Provider:
    issuer: str
    client_id: str = "sluice-web"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    subject: str = "alice-1234"  # who the next sign-in is
    claims: dict = field(default_factory=lambda: {"preferred_username": "alice", "email": "alice@example.org"})
    lie: dict = field(default_factory=dict)  # claims to overwrite in the next ID token (an attack)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"}))
    codes: dict[str, dict] = field(default_factory=dict)
    tokens_issued: int = 0

    def app(self) -> Litestar:
        @get("/.well-known/openid-configuration")
        async def discovery() -> dict:
            return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"]}

        @get("/jwks")
        async def jwks() -> dict:
            return KeySet([self.key]).as_dict(private=False)

        @get("/authorize")
        async def authorize(request: Request) -> Redirect:
            q = request.query_params
            if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
                raise HTTPException(status_code=400, detail="bad client or no PKCE")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]}
            return Redirect(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", status_code=302)

        @post("/token", status_code=200)
        async def token(request: Request) -> dict:
            form = await request.form()
            basic = request.headers.get("authorization", "").removeprefix("Basic ")
            client = base64.b64decode(basic).decode() if basic else f"{form.get('client_id')}:{form.get('client_secret')}"
            if client != f"{self.client_id}:{self.client_secret}":
                raise HTTPException(status_code=401, detail="invalid_client")
            grant = self.codes.pop(form.get("code", ""), None)  # a code works once
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant is None or grant["challenge"] != challenge or grant["redirect_uri"] != form.get("redirect_uri"):
                raise HTTPException(status_code=400, detail="invalid_grant")
            now = int(time.time())
            claims = {"iss": self.issuer, "aud": self.client_id, "sub": self.subject, "iat": now, "exp": now + 300,
                      "nonce": grant["nonce"], **self.claims, **self.lie}
            self.tokens_issued += 1
            return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                    "id_token": jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)}

        return Litestar([discovery, jwks, authorize, token])


@contextlib.asynccontextmanager
async def oidc_provider() -> AsyncIterator[Provider]:
    sock = listen("127.0.0.1:0")
    provider = Provider(url_of(sock).rstrip("/"))
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.errorlog = None
    stop = anyio.Event()

    async def run() -> None:
        with anyio.CancelScope(shield=True):
            await hypercorn_serve(provider.app(), config, shutdown_trigger=stop.wait)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            yield provider
        finally:
            stop.set()
