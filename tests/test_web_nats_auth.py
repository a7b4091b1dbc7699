"""The web role's NATS rights, against a real nats-server enforcing per-component credentials:
it keeps the workspace (accounts, sessions, triage, rate limits, pending submissions, audit) that
provisioning made, creates or changes none of it, and no other role can read the account
bucket's password hashes and key digests."""

from __future__ import annotations

import anyio
import pytest
import pytest_asyncio
from nats.js.api import KeyValueConfig

from bus.connect import CREDS_ENV
from bus.provision import NotProvisioned
from schemas.workspace import Role
from sluice.cli import main
from sluice.web.accounts import Accounts
from sluice.web.stores import (AUDIT_MAX_AGE, PENDING_MAX_BYTES, PENDING_TTL, RATELIMIT_MAX_BYTES, RATELIMIT_WINDOW, audit,
                               bind_workspace)
from test_auth import assert_refused, authed, publish, session  # noqa: F401 - `authed` is a fixture

WEB_REFUSED = {
    "publish a summary": publish(lambda n: n.summary("forged")),
    "publish a task": publish(lambda n: n.task("CORE", "text/plain")),
    "heartbeat as a service": publish(lambda n: f"$KV.{n.registry_bucket}.echo.i1"),
    "write the result cache": publish(lambda n: f"$KV.{n.cache_bucket}.anything"),
}


@pytest_asyncio.fixture(loop_scope="session")
async def workspace(authed, monkeypatch):  # noqa: F811
    """The operator's step, as an operator runs it: `sluice provision` with admin credentials
    (`sluice up` runs the same) makes the workspace's buckets and stream too."""
    monkeypatch.setenv(CREDS_ENV, str(authed.creds["admin"]))
    argv = ["provision", "--nats", authed.server.url, "--prefix", authed.names.prefix]
    assert await anyio.to_thread.run_sync(main, argv) == 0
    return authed


async def test_provisioning_makes_the_workspace_with_its_limits(workspace):
    async with session(workspace, "web") as s:
        stores = await bind_workspace(s.js, workspace.names, wait=5, create=False)  # there already: no wait
        ratelimit, pending = await stores.ratelimit.status(), await stores.pending.status()
        assert ratelimit.ttl == RATELIMIT_WINDOW and ratelimit.stream_info.config.max_bytes == RATELIMIT_MAX_BYTES
        assert pending.ttl == PENDING_TTL and pending.stream_info.config.max_bytes == PENDING_MAX_BYTES
        assert (await s.js.stream_info(workspace.names.audit_stream)).config.max_age == AUDIT_MAX_AGE
        assert s.errors == []


async def test_a_web_front_without_the_workspace_says_to_provision(workspace):
    """A bucket of the workspace missing (provisioning not run since it was added): the web
    identity may not make it, and says what to run. (The next test's fixture provisions again.)"""
    async with session(workspace, "admin") as s:
        await s.js.delete_key_value(workspace.names.pending_bucket)
    async with session(workspace, "web") as s:
        with pytest.raises(NotProvisioned, match=f"KV_{workspace.names.pending_bucket} does not exist.*sluice provision"):
            await bind_workspace(s.js, workspace.names, wait=0.5, create=False)
        assert s.errors == []  # it looked, and was not refused: it never tried to create it


async def test_the_web_role_keeps_the_workspace(workspace):
    async with session(workspace, "web") as s:
        stores = await bind_workspace(s.js, workspace.names, create=False)
        accounts = Accounts(s.js, workspace.names.accounts_bucket, stores.accounts, stores.sessions)
        user = await accounts.add_user("webuser", Role.VIEWER, "a long password")
        assert await accounts.check_password("webuser", "a long password") == user
        token, _ = await accounts.open_session(user)
        assert (await accounts.session(token)).user == "webuser"
        await stores.triage.put("some-sid", b"x")
        await stores.ratelimit.create("f.some-address", b"x")
        await stores.pending.put("some-sid", b"webuser")
        await audit(s.js, workspace.names, "webuser", "login")
        assert (await s.js.stream_info(workspace.names.audit_stream)).state.messages >= 1
        assert s.errors == []


@pytest.mark.parametrize("bucket", ["ratelimit_bucket", "pending_bucket", "accounts_bucket"])
async def test_the_web_role_may_not_create_or_change_a_workspace_bucket(workspace, bucket):
    """Provisioning owns the buckets and their limits: a web identity cannot make one, nor lift a limit."""
    name = getattr(workspace.names, bucket)
    async with session(workspace, "web") as s:
        await assert_refused(s, s.js.create_key_value(KeyValueConfig(bucket=name, history=1)), f"$JS.API.STREAM.CREATE.KV_{name}")
    async with session(workspace, "web") as s:
        info = (await s.js.stream_info(f"KV_{name}")).config
        info.max_bytes = -1
        await assert_refused(s, s.js.update_stream(info), f"$JS.API.STREAM.UPDATE.KV_{name}")


@pytest.mark.parametrize("what", list(WEB_REFUSED))
async def test_the_web_role_is_refused(authed, what):  # noqa: F811
    async with session(authed, "web") as s:
        action, subject = WEB_REFUSED[what](s, authed.names)
        await assert_refused(s, action, subject)


@pytest.mark.parametrize("role", ["submitter", "service:echo", "dispatcher"])
async def test_no_other_role_reads_the_accounts(workspace, role):
    async with session(workspace, "web") as s:
        stores = await bind_workspace(s.js, workspace.names, create=False)
        await Accounts(s.js, workspace.names.accounts_bucket, stores.accounts, stores.sessions).add_user(
            f"target-{role.replace(':', '-')}", Role.ADMIN, "a long password")
    async with session(workspace, role) as s:
        stream = f"KV_{workspace.names.accounts_bucket}"
        await assert_refused(s, s.js.get_last_msg(stream, f"$KV.{workspace.names.accounts_bucket}.user.target"),
                             f"$JS.API.STREAM.MSG.GET.{stream}")
