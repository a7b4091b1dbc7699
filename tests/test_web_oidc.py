"""OpenID Connect sign-in against a provider this test starts on loopback (tests/oidc_provider.py),
over real HTTP: the happy path, and the attacks (a forged state, a replayed callback, a token
from another issuer or for another nonce, an identity bound to no account)."""

from __future__ import annotations

import httpx

from schemas.workspace import Role
from sluice.client import Client
from sluice.web.accounts import Accounts
from sluice.web.oidc import OidcConfig
from sluice.web.stores import provision_workspace
from oidc_provider import oidc_provider
from webmesh import web_mesh


async def accounts_of(client: Client) -> Accounts:
    stores = await provision_workspace(client.js, client.names)
    return Accounts(client.js, client.names.accounts_bucket, stores.accounts, stores.sessions)


async def sign_in(base: str) -> tuple[httpx.AsyncClient, httpx.Response]:
    """Follow the redirects by hand (login -> provider -> callback) as a browser would; the last answer."""
    http = httpx.AsyncClient(base_url=base, timeout=30)
    response = await http.get("/api/oidc/login")
    assert response.status_code == 302
    at_provider = await http.get(response.headers["location"])
    assert at_provider.status_code == 302
    return http, await http.get(at_provider.headers["location"])


async def test_oidc_sign_in_and_its_attacks(nats_url, prefix):
    async with oidc_provider() as provider, await Client.connect(nats_url, prefix) as client:
        accounts = await accounts_of(client)
        await accounts.add_user("alice", Role.ANALYST, oidc_subject=f"{provider.issuer} alice-1234")
        await accounts.add_user("admin", Role.ADMIN, password="an admin password")
        config = OidcConfig(provider.issuer, provider.client_id, provider.client_secret)
        async with web_mesh(nats_url, prefix, services=[], oidc=config) as web:
            assert (await httpx.AsyncClient(base_url=web.url).get("/api/me")).json()["oidc"] is True

            http, done = await sign_in(web.url)
            assert done.status_code == 302 and done.headers["location"] == "/"
            me = (await http.get("/api/me")).json()
            assert (me["user"], me["role"], me["via"]) == ("alice", "analyst", "session")
            assert (await http.get("/api/submissions")).status_code == 200

            # The same callback again (a replay): its state was used up.
            replay = await http.get(done.request.url)
            assert replay.status_code == 400 and "unknown or expired sign-in" in replay.json()["detail"]
            # A state this web front never issued (a forged callback).
            forged = await http.get("/api/oidc/callback", params={"code": "x", "state": "made-up"})
            assert forged.status_code == 400

            # Tokens that lie are refused, and nobody is signed in by them.
            for lie in ({"iss": "https://evil.example"}, {"nonce": "someone-elses"}, {"aud": "another-client"}):
                provider.lie = lie
                attacker, refused = await sign_in(web.url)
                assert refused.status_code == 403, lie
                assert "sluice_session" not in attacker.cookies and (await attacker.get("/api/me")).json()["signed_in"] is False
            provider.lie = {}

            # An identity with no account: refused (no auto-provisioning configured).
            provider.subject = "mallory-666"
            _, unbound = await sign_in(web.url)
            assert unbound.status_code == 403 and "no account is bound" in unbound.json()["detail"]
            assert await accounts.user("alice") is not None and len(await accounts.users()) == 2

            admin = httpx.AsyncClient(base_url=web.url, timeout=30)
            login = await admin.post("/api/login", json={"user": "admin", "password": "an admin password"})
            admin.headers["X-CSRF-Token"] = login.json()["csrf"]
            events = (await admin.get("/api/audit", params={"action": "login"})).json()["items"]
            assert {(e["user"], e["detail"].get("via")) for e in events} >= {("alice", "oidc"), ("admin", "password")}


async def test_oidc_can_create_accounts_with_a_chosen_role(nats_url, prefix):
    async with oidc_provider() as provider, await Client.connect(nats_url, prefix) as client:
        accounts = await accounts_of(client)
        await accounts.add_user("admin", Role.ADMIN, password="an admin password")  # accounts exist: no local mode
        config = OidcConfig(provider.issuer, provider.client_id, provider.client_secret, auto_role=Role.VIEWER)
        async with web_mesh(nats_url, prefix, services=[], oidc=config) as web:
            provider.subject, provider.claims = "bob-42", {"preferred_username": "Bob.Smith"}
            http, done = await sign_in(web.url)
            assert done.status_code == 302
            me = (await http.get("/api/me")).json()
            assert (me["user"], me["role"]) == ("bob.smith", "viewer")
            assert (await accounts.user("bob.smith")).oidc_subject == f"{provider.issuer} bob-42"
            http.headers["X-CSRF-Token"] = me["csrf"]
            assert (await http.post("/api/submissions", content=b"x", headers={"Content-Type": "application/octet-stream"})).status_code == 403
