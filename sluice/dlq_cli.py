"""`sluice dlq`: the messages Sluice could not use, with why; read them, replay them, drop them.

Connects with the admin identity when credentials are configured (bus.auth): dead letters hold
whole messages, which no other role may read.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from rich.table import Table
from rich.text import Text

from bus import dlq
from bus.auth import ADMIN
from bus.connect import CREDS_ENV, close, connect
from bus.subjects import Names
from sluice.console import ERR, OUT, CliError, require_url
from sluice.render import clean, to_json


@contextlib.asynccontextmanager
async def _dlq(args: argparse.Namespace) -> AsyncIterator[tuple[JetStreamContext, Names]]:
    nc = await connect(require_url(args), name="sluice-dlq", role=ADMIN)
    try:
        yield nc.jetstream(), Names(args.prefix)
    except dlq.DlqError as exc:
        raise CliError(str(exc), code=1) from None
    except NatsTimeout:  # under auth, what a refusal looks like (the server's reason is logged above)
        raise CliError(f"NATS did not answer; dead letters are for the admin identity ({CREDS_ENV}=.../admin.nk)",
                       code=1) from None
    finally:
        await close(nc)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "?"


def _row(found: dlq.Letter) -> dict[str, Any]:
    dead = found.letter
    return {"seq": found.seq, "at": dead.at, "origin": found.origin, "subject": dead.subject,
            "size": dead.size if dead.size >= 0 else len(dead.data), "replays": dead.replays,
            "replayable": found.complete, "reason": dead.reason, "wire": dead.wire or "1.0 (no header)"}


def _content(data: bytes) -> Any:
    """The message as data, if it is MessagePack at all (what Sluice speaks); else None."""
    try:
        return msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


async def cmd_list(args: argparse.Namespace) -> int:
    async with _dlq(args) as (js, names):
        found = await dlq.letters(js, names)
    if args.json:
        for item in found:
            print(to_json(_row(item)), flush=True)
        return 0
    if not found:
        OUT.print("no dead letters")
        return 0
    table = Table(box=None, pad_edge=False)
    for name in ("seq", "time", "origin", "subject", "size", "reason"):  # subjects and reasons fold, never "…"
        table.add_column(name, no_wrap=name in ("seq", "time", "size"), overflow="fold")
    for item in found:
        row = _row(item)
        replays = f" (replayed {row['replays']}×)" if row["replays"] else ""
        table.add_row(str(row["seq"]), _when(row["at"]), Text(clean(row["origin"])), Text(clean(row["subject"])),
                      f"{row['size']:,}", Text(clean(row["reason"]) + replays))
    OUT.print(table)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    async with _dlq(args) as (js, names):
        found = await dlq.letter(js, names, args.seq)
    data = found.letter.data
    if args.raw:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    row = {**_row(found), "content": _content(data), "data": data}
    if args.json:
        print(to_json(row), flush=True)
        return 0
    for key in ("seq", "origin", "subject", "size", "replays", "replayable", "wire", "reason"):
        OUT.print(Text(f"{key}: {clean(row[key])}"))
    OUT.print(Text(f"time: {_when(row['at'])}"))
    content = row["content"]
    # Decoded MessagePack as JSON (bytes in base64), or the first bytes as hex: never raw to a terminal.
    OUT.print(Text("content: " + (to_json(content) if content is not None else data[:256].hex(" ") + (" …" if len(data) > 256 else ""))))
    return 0


async def cmd_replay(args: argparse.Namespace) -> int:
    if bool(args.seqs) == args.all:
        raise CliError("give the letters to replay (their seq numbers from `sluice dlq list`), or --all")
    failed = 0
    async with _dlq(args) as (js, names):
        seqs = args.seqs or [item.seq for item in await dlq.letters(js, names)]
        for seq in seqs:
            try:
                found = await dlq.replay(js, names, seq)
            except dlq.DlqError as exc:
                ERR.print(Text(f"sluice: {clean(exc)}", style="red"))
                failed += 1
                continue
            OUT.print(Text(f"replayed {seq} on {clean(found.letter.subject)}"))
    return 1 if failed else 0


async def cmd_purge(args: argparse.Namespace) -> int:
    async with _dlq(args) as (js, names):
        count = await dlq.purge(js, names)
    OUT.print(f"purged {count} dead letter{'s' if count != 1 else ''}")
    return 0


def register(parser: argparse.ArgumentParser, command) -> None:
    under = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command("list", cmd_list, "list dead letters: seq, time, origin, subject, size, reason", under=under)
    p.add_argument("--json", action="store_true", help="JSON Lines, one letter each")
    p = command("show", cmd_show, "one dead letter in full, its content decoded where it can be", under=under)
    p.add_argument("seq", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--raw", action="store_true", help="the kept message bytes, to stdout")
    p = command("replay", cmd_replay, "republish dead letters on their original subjects (then remove them)", under=under)
    p.add_argument("seqs", type=int, nargs="*", metavar="SEQ")
    p.add_argument("--all", action="store_true", help="every letter")
    command("purge", cmd_purge, "drop every dead letter", under=under)
