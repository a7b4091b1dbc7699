"""`sluice provision` and `sluice service approve`: the operator's step, separate from running.

Provisioning (admin credentials) creates the prefix's streams, buckets and shared consumers,
one submission queue per submitter identity, and approves services: what each may be (stage,
accepts/rejects, kinds, timeout, score range, whether it may drop) is written to the approvals
bucket, which only admin may write, and its consumer is made to match. The dispatcher plans
from approvals only; a running service cannot widen what it was approved for.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from nats.js.api import RetentionPolicy

from bus import auth
from bus.auth import ADMIN
from bus.connect import CREDS_ENV, close, connect
from bus.provision import DEFAULT_SUBMITTERS, approve, finish_reply_stream, provision
from bus.subjects import Names
from schemas.messages import ApprovedService
from services.sdk.approval import approval_for
from services.sdk.loader import builtin_services, service_folder
from services.sdk.manifest import ManifestError, load_manifest
from sluice.console import CliError, require_url
from sluice.render import to_json
from sluice.web.stores import provision_workspace


def submitters_in(creds_dir: Path | None) -> list[str]:
    """The submitter identities that have credentials in `creds_dir` (each gets its own queue)."""
    roles = [auth.role_of(name) for name in os.listdir(creds_dir)] if creds_dir and creds_dir.is_dir() else []
    return list(dict.fromkeys([*DEFAULT_SUBMITTERS, *auth.submitter_identities(r for r in roles if r)]))


def approvals_for(services: Iterable[str | Path], scores: tuple[int, int] | None = None,
                  may_drop: bool | None = None) -> list[ApprovedService]:
    """The default approval of each service (a built-in name or a folder), read off its manifest."""
    try:
        return [approval_for(load_manifest(service_folder(s)), scores, may_drop) for s in services]
    except (ManifestError, ValueError) as exc:
        raise CliError(str(exc)) from None


async def provision_and_approve(url: str, names: Names, approvals: Sequence[ApprovedService],
                                submitters: Iterable[str] = DEFAULT_SUBMITTERS, replicas: int | None = None,
                                finish_upgrade: bool = False) -> str:
    """As admin: the prefix's stores and queues, then each approval and its consumer; the reply
    stream's retention. `finish_upgrade`: no component of the previous release will run again
    (bus.provision.finish_reply_stream)."""
    nc = await connect(url, name="sluice-provision", role=ADMIN)
    try:
        js = nc.jetstream()
        if finish_upgrade:
            await finish_reply_stream(js, names)
        stores = await provision(js, names, replicas, submitters=submitters)
        await provision_workspace(js, names, replicas)  # the web fronts' buckets and audit stream (they may not create them)
        for approved in approvals:
            await approve(js, names, stores, approved)
        return RetentionPolicy((await js.stream_info(names.reply_stream)).config.retention).value
    finally:
        await close(nc)


def creds_dir() -> Path | None:
    """The folder of credentials $SLUICE_NATS_CREDS points at (it may name one file in it)."""
    given = os.environ.get(CREDS_ENV)
    path = Path(given).parent if given and Path(given).is_file() else Path(given) if given else None
    return path


async def cmd_provision(args: argparse.Namespace) -> int:
    services = [*builtin_services(), *args.service_dir]
    approvals = approvals_for(services)
    submitters = list(dict.fromkeys([*submitters_in(creds_dir()), *args.submitter]))
    replies = await provision_and_approve(require_url(args), Names(args.prefix), approvals, submitters, args.replicas,
                                          args.finish_upgrade)
    report = {"prefix": args.prefix, "submitter_queues": submitters, "approved": [a.name for a in approvals],
              "reply_stream": replies}
    print(to_json(report) if args.json else
          f"provisioned {args.prefix}: queues for {', '.join(submitters)}; approved {', '.join(report['approved'])}", flush=True)
    if args.finish_upgrade and replies != "interest" and not args.json:
        print("the reply stream is still a work queue: a dispatcher is attached to it (or it holds replies); "
              "stop the dispatchers and run this again", flush=True)
    return 0


def _score_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    low, sep, high = text.partition(":")
    try:
        scores = (int(low), int(high))
    except ValueError:
        scores = None
    if not sep or scores is None or scores[0] > scores[1]:
        raise CliError(f"--score-range {text!r}: expected LOW:HIGH, e.g. --score-range=-1000:0")
    return scores


async def cmd_approve(args: argparse.Namespace) -> int:
    [approved] = approvals_for([args.manifest or args.name], _score_range(args.score_range), args.may_drop)
    if approved.name != args.name:
        raise CliError(f"{args.manifest} is the manifest of {approved.name!r}, not {args.name!r}")
    await provision_and_approve(require_url(args), Names(args.prefix), [approved])
    print(to_json(approved) if args.json else
          f"approved {approved.name}: {approved.stage.value}, accepts {approved.accepts!r}, rejects {approved.rejects!r}, "
          f"scores {approved.score_min}..{approved.score_max}, {'may' if approved.may_drop else 'may not'} drop", flush=True)
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service-dir", action="append", type=Path, default=[], metavar="DIR",
                        help="approve this service folder too (repeatable); the built-ins always are")
    parser.add_argument("--submitter", action="append", default=[], metavar="IDENTITY",
                        help="a submission queue for this identity too (default: those with credentials in "
                             f"${CREDS_ENV}'s folder, plus submitter and web)")
    parser.add_argument("--replicas", type=int, help="copies of each stream (default: as deployed, or $SLUICE_REPLICAS)")
    parser.add_argument("--finish-upgrade", action="store_true",
                        help="no component of the previous release runs any more: make the reply stream an interest "
                             "stream if no dispatcher is attached (docs/wire.md, upgrading, step 4)")
    parser.add_argument("--json", action="store_true")


def register_approve(under, command) -> None:
    p = command("approve", cmd_approve, "as admin: fix what a service may be (stage, types, score range, drop)", under=under)
    p.add_argument("name")
    p.add_argument("--manifest", type=Path, metavar="PATH", help="the service's folder (default: the built-in NAME)")
    p.add_argument("--score-range", metavar="LOW:HIGH",
                   help="scores allowed, e.g. --score-range=-1000:0 (default: from the manifest's heuristics)")
    p.add_argument("--may-drop", action=argparse.BooleanOptionalAction, default=None,
                   help="whether its drop is honoured (default: only a FILTER service may)")
    p.add_argument("--json", action="store_true")
