"""`sluice safelist add|remove|list`: the known-good hashes the safelist service reads from NATS KV."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from nats.js.kv import KeyValue
from rich.table import Table
from rich.text import Text

from bus.auth import ADMIN
from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from services.safelist import store
from sluice.console import ERR, OUT, CliError, require_url
from sluice.render import to_json


@contextlib.asynccontextmanager
async def _bucket(args: argparse.Namespace) -> AsyncIterator[KeyValue]:
    nc = await connect(require_url(args), name="sluice-safelist", role=ADMIN)
    try:
        yield (await provision(nc.jetstream(), Names(args.prefix))).safelist
    finally:
        await close(nc)


def _entries_to_add(args: argparse.Namespace) -> dict[str, str]:
    """Hashes given on the command line, and hash files (one per line, reasons optional)."""
    entries: dict[str, str] = {}
    for path in args.file:
        try:
            entries.update(store.parse_hash_file(path.read_text()))
        except OSError as exc:
            raise CliError(f"{path}: {exc.strerror or exc}") from None
        except store.HashFileError as exc:
            raise CliError(f"{path}: nothing added; " + "; ".join(f"line {n}: {why}" for n, why in exc.problems)) from None
    try:
        entries.update(store.normalize_entries({digest: args.reason for digest in args.hashes}))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not entries:
        raise CliError("nothing to add: give hashes, or --file with a hash file")
    return entries


async def cmd_add(args: argparse.Namespace) -> int:
    entries = _entries_to_add(args)
    async with _bucket(args) as kv:
        await store.add(kv, entries)
    OUT.print(f"safelisted {len(entries)} hash{'es' if len(entries) != 1 else ''}")
    return 0


async def cmd_remove(args: argparse.Namespace) -> int:
    try:
        hashes = [store.normalize(digest) for digest in args.hashes]
    except ValueError as exc:
        raise CliError(str(exc)) from None
    async with _bucket(args) as kv:
        removed = await store.remove(kv, hashes)
    OUT.print(f"removed {len(removed)}")
    for digest in sorted(set(hashes) - set(removed)):
        ERR.print(Text(f"sluice: {digest} was not safelisted", style="yellow"))
    return 0 if len(removed) == len(set(hashes)) else 1


async def cmd_list(args: argparse.Namespace) -> int:
    async with _bucket(args) as kv:
        entries = await store.entries(kv)
    if args.json:
        print(to_json(entries), flush=True)
        return 0
    table = Table("hash", "kind", "reason", box=None, pad_edge=False)
    for digest, reason in sorted(entries.items()):
        table.add_row(digest, store.hash_kind(digest) or "", Text(reason))
    OUT.print(table)
    return 0


def register(parser: argparse.ArgumentParser, command) -> None:
    under = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command("add", cmd_add, "safelist hashes (md5, sha1 or sha256)", under=under)
    p.add_argument("hashes", nargs="*", metavar="HASH")
    p.add_argument("--file", "-f", action="append", type=Path, default=[], metavar="FILE",
                   help="a hash file: one hash per line, a reason after it optional, # comments (sha256sum output works)")
    p.add_argument("--reason", default="", help="why the hashes given on the command line are known good")
    p = command("remove", cmd_remove, "remove hashes from the safelist", under=under)
    p.add_argument("hashes", nargs="+", metavar="HASH")
    p = command("list", cmd_list, "list the safelisted hashes", under=under)
    p.add_argument("--json", action="store_true")
