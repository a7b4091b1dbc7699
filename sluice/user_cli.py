"""`sluice user add|list|remove|apikey`: the web front's accounts and API keys, kept in NATS KV.

Runs with admin NATS credentials (it writes the accounts bucket every web front reads) and
records each change in the audit stream, as the web front does for its own actions.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
import time
from collections.abc import AsyncIterator

from rich.table import Table
from rich.text import Text

from bus.auth import ADMIN
from schemas.workspace import ApiKey, Role
from sluice.console import ERR, OUT, CliError, connect_client, require_url
from sluice.render import to_json
from sluice.web.accounts import AccountError, Accounts
from sluice.web.stores import audit, provision_workspace

DAY = 86400.0
CLI_USER = "cli"  # who the audit log says made a change from the command line (as `sluice user`, not a person)


@contextlib.asynccontextmanager
async def _accounts(args: argparse.Namespace) -> AsyncIterator[tuple[Accounts, object]]:
    async with connect_client(require_url(args), args.prefix, ADMIN) as client:
        stores = await provision_workspace(client.js, client.names)
        try:
            yield Accounts(client.js, client.names.accounts_bucket, stores.accounts, stores.sessions), client
        except AccountError as exc:
            raise CliError(str(exc)) from None


async def _record(client, action: str, target: str, **detail: str) -> None:
    await audit(client.js, client.names, CLI_USER, action, target, **detail)


def _password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (scripts), else asked twice at the terminal; none with --oidc-only."""
    if args.oidc_only:
        return ""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password: pass --password-stdin (and pipe it), or --oidc-only")
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        raise CliError("the two passwords differ; nothing changed")
    return first


async def cmd_add(args: argparse.Namespace) -> int:
    if args.oidc_only and not args.oidc_subject:
        raise CliError("--oidc-only needs --oidc-subject (the account could not sign in otherwise)")
    password = _password(args)
    async with _accounts(args) as (accounts, client):
        user = await accounts.add_user(args.name, Role(args.role), password, args.oidc_subject, replace=args.replace)
        await _record(client, "user_add", user.name, role=user.role.value)
    OUT.print(f"user {user.name} ({user.role.value}) {'replaced' if args.replace else 'added'}")
    return 0


async def cmd_remove(args: argparse.Namespace) -> int:
    async with _accounts(args) as (accounts, client):
        await accounts.remove_user(args.name)
        await _record(client, "user_remove", args.name)
    OUT.print(f"user {args.name} removed, and its API keys revoked")
    return 0


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch)) if epoch else "never"


async def cmd_list(args: argparse.Namespace) -> int:
    async with _accounts(args) as (accounts, _):
        users = await accounts.users()
        keys = await accounts.keys()
    live = {u.name: sum(1 for k in keys if k.user == u.name and _live(k)) for u in users}
    if args.json:
        print(to_json([{"name": u.name, "role": u.role.value, "password": bool(u.password_hash),
                        "oidc_subject": u.oidc_subject, "created_at": u.created_at, "api_keys": live[u.name]}
                       for u in users]), flush=True)
        return 0
    if not users:
        ERR.print("no accounts yet: the web front serves only on loopback until one exists (`sluice user add NAME --role admin`)")
        return 0
    table = Table("user", "role", "signs in with", "live API keys", "created (UTC)", box=None, pad_edge=False)
    for u in users:
        ways = ", ".join(w for w, on in (("password", u.password_hash), ("OpenID Connect", u.oidc_subject)) if on)
        table.add_row(Text(u.name), u.role.value, ways, str(live[u.name]), _when(u.created_at))
    OUT.print(table)
    return 0


def _live(key: ApiKey) -> bool:
    return not key.revoked_at and (not key.expires_at or key.expires_at > time.time())


async def cmd_key_create(args: argparse.Namespace) -> int:
    if args.expires_days < 0:
        raise CliError("--expires-days: 0 (never) or more")
    async with _accounts(args) as (accounts, client):
        key, token = await accounts.create_key(args.name, args.expires_days * DAY, args.label)
        await _record(client, "apikey_create", key.user, key_id=key.key_id)
    if args.json:
        print(to_json({"key_id": key.key_id, "user": key.user, "token": token, "expires_at": key.expires_at}), flush=True)
        return 0
    ERR.print(f"API key {key.key_id} for {key.user}, expires {_when(key.expires_at)} (UTC). "
              "It is shown this once; only its hash is kept:")
    print(token, flush=True)
    return 0


async def cmd_key_list(args: argparse.Namespace) -> int:
    async with _accounts(args) as (accounts, _):
        keys = await accounts.keys(args.name)
    if args.json:
        print(to_json([{"key_id": k.key_id, "user": k.user, "label": k.label, "created_at": k.created_at,
                        "expires_at": k.expires_at, "revoked_at": k.revoked_at, "live": _live(k)} for k in keys]), flush=True)
        return 0
    table = Table("key", "user", "label", "created (UTC)", "expires", "state", box=None, pad_edge=False)
    for k in keys:
        state = "revoked" if k.revoked_at else "live" if _live(k) else "expired"
        table.add_row(k.key_id, Text(k.user), Text(k.label), _when(k.created_at), _when(k.expires_at), state)
    OUT.print(table)
    return 0


async def cmd_key_revoke(args: argparse.Namespace) -> int:
    async with _accounts(args) as (accounts, client):
        key = await accounts.revoke_key(args.key_id)
        await _record(client, "apikey_revoke", key.user, key_id=key.key_id)
    OUT.print(f"API key {key.key_id} of {key.user} revoked")
    return 0


def register(parser: argparse.ArgumentParser, command) -> None:
    under = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command("add", cmd_add, "add a web account", under=under)
    p.add_argument("name")
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value,
                   help="viewer < submitter < analyst < admin (default viewer)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    p.add_argument("--oidc-subject", default="", metavar="ISSUER SUBJECT",
                   help="bind an OpenID Connect identity: the issuer URL, a space, the subject ('sub' claim)")
    p.add_argument("--oidc-only", action="store_true", help="no password: signs in only through OpenID Connect")
    p.add_argument("--replace", action="store_true", help="replace an existing account (new role/password)")
    p = command("remove", cmd_remove, "remove a web account and revoke its API keys", under=under)
    p.add_argument("name")
    p = command("list", cmd_list, "list the web accounts", under=under)
    p.add_argument("--json", action="store_true")
    p = command("apikey", None, "create, list or revoke API keys (for scripts, `sluice --api-key`)", under=under)
    keys = p.add_subparsers(dest="key_action", required=True, metavar="KEY_ACTION")
    k = command("create", cmd_key_create, "a new API key for a user (printed once)", under=keys)
    k.add_argument("name")
    k.add_argument("--expires-days", type=float, default=90.0, metavar="N", help="days until it expires (default 90; 0: never)")
    k.add_argument("--label", default="", help="what it is for")
    k.add_argument("--json", action="store_true")
    k = command("list", cmd_key_list, "list API keys (of one user, or all)", under=keys)
    k.add_argument("name", nargs="?")
    k.add_argument("--json", action="store_true")
    k = command("revoke", cmd_key_revoke, "revoke an API key by its id", under=keys)
    k.add_argument("key_id")
