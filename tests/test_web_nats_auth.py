"""The web role's NATS rights, against a real nats-server enforcing per-component credentials:
it keeps the workspace (accounts, sessions, triage, audit) and nothing more, and no other role
can read the account bucket's password hashes and key digests."""

from __future__ import annotations

import pytest

from schemas.workspace import Role
from sluice.web.accounts import Accounts
from sluice.web.stores import audit, provision_workspace
from test_auth import assert_refused, authed, publish, session  # noqa: F401 - `authed` is a fixture

WEB_REFUSED = {
    "publish a summary": publish(lambda n: n.summary("forged")),
    "publish a task": publish(lambda n: n.task("CORE", "text/plain")),
    "heartbeat as a service": publish(lambda n: f"$KV.{n.registry_bucket}.echo.i1"),
    "write the result cache": publish(lambda n: f"$KV.{n.cache_bucket}.anything"),
}


async def test_the_web_role_keeps_the_workspace(authed):  # noqa: F811
    async with session(authed, "web") as s:
        stores = await provision_workspace(s.js, authed.names)
        accounts = Accounts(s.js, authed.names.accounts_bucket, stores.accounts, stores.sessions)
        user = await accounts.add_user("webuser", Role.VIEWER, "a long password")
        assert await accounts.check_password("webuser", "a long password") == user
        token, _ = await accounts.open_session(user)
        assert (await accounts.session(token)).user == "webuser"
        await stores.triage.put("some-sid", b"x")
        await audit(s.js, authed.names, "webuser", "login")
        assert (await s.js.stream_info(authed.names.audit_stream)).state.messages >= 1
        assert s.errors == []


@pytest.mark.parametrize("what", list(WEB_REFUSED))
async def test_the_web_role_is_refused(authed, what):  # noqa: F811
    async with session(authed, "web") as s:
        action, subject = WEB_REFUSED[what](s, authed.names)
        await assert_refused(s, action, subject)


@pytest.mark.parametrize("role", ["submitter", "service:echo", "dispatcher"])
async def test_no_other_role_reads_the_accounts(authed, role):  # noqa: F811
    async with session(authed, "web") as s:
        stores = await provision_workspace(s.js, authed.names)
        await Accounts(s.js, authed.names.accounts_bucket, stores.accounts, stores.sessions).add_user(
            f"target-{role.replace(':', '-')}", Role.ADMIN, "a long password")
    async with session(authed, role) as s:
        stream = f"KV_{authed.names.accounts_bucket}"
        await assert_refused(s, s.js.get_last_msg(stream, f"$KV.{authed.names.accounts_bucket}.user.target"),
                             f"$JS.API.STREAM.MSG.GET.{stream}")
