"""`sluice auth init`: per-component NATS credentials and the server's authorization config
(bus.auth); and the one-box mesh (`sluice up`, `sluice scan`) run on them, by default.

Secure by default: the embedded server of `up` and `scan` enforces per-component credentials,
generated on first use beside its store (`<data-dir>/auth`, or `--auth DIR`), so a local process
without them can neither submit nor forge. `--no-auth` is the explicit opt-out; `--cluster` runs
without auth for now, and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from bus import auth
from bus.capacity import account_limits
from bus.connect import CREDS_ENV
from bus.subjects import Names
from services.sdk.loader import builtin_services

DEFAULT_DIR = Path(".sluice") / "auth"

log = logging.getLogger("sluice.cli")


def _names(values: list[str]) -> list[str]:
    return [name for value in values for name in value.split(",") if name]


def _services(values: list[str]) -> list[str]:
    return _names(values) or list(builtin_services())


def usage(out: Path, files: dict[str, Path]) -> str:
    """How to use what `init` wrote: the include for nats-server, one env var per component."""
    conf = (out / auth.CONF_NAME).resolve()
    lines = [f"wrote {conf}", f"  and {len(files)} credentials files (mode 0600) in {out.resolve()}", "",
             "nats-server: include auth.conf in its config (an include path is relative to that config's folder);",
             f"  or run the whole one-box mesh on it: sluice up --auth {out}", "",
             f"each component reads its credentials from {CREDS_ENV}, one file per component",
             "  (a directory of them serves a process that runs several, as `sluice up --auth` does):"]
    for role, path in files.items():
        lines.append(f"  {role:<20} {CREDS_ENV}={path.resolve()}")
    lines += ["", "submitters use submitter.nk (submit, read results); admin.nk is for `sluice dlq`, `sluice safelist` and `sluice status`.",
              "Keep the .nk files secret; auth.conf holds only public keys."]
    return "\n".join(lines)


async def cmd_init(args: argparse.Namespace) -> int:
    limits = account_limits()
    files = auth.init(args.out, Names(args.prefix), _services(args.services), _names(args.submitters), limits)
    print(usage(args.out, files), flush=True)
    print(f"\nthe account's JetStream limits (bus.capacity): {limits.config()}\n"
          f"  nats-server refuses to start with less storage than max_file (its default: 75% of the free disk);\n"
          f"  set $SLUICE_ACCOUNT_MAX_FILE (e.g. 8G) and the SLUICE_MAX_BYTES_* of provisioning to fit a smaller one",
          flush=True)
    return 0


def register(parser: argparse.ArgumentParser, command) -> None:
    under = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command("init", cmd_init, "write per-component NATS credentials and the server's authorization config",
                under=under)
    p.add_argument("--out", type=Path, default=DEFAULT_DIR, metavar="DIR", help=f"where to write them (default: ./{DEFAULT_DIR})")
    p.add_argument("--services", action="append", default=[], metavar="NAMES",
                   help="services to make identities for (comma-separated, repeatable; default: the built-in ones)")
    p.add_argument("--submitters", action="append", default=[], metavar="NAMES",
                   help="more submitter identities (submitter:NAME, each with its own queue and quota; comma-separated)")


def add_up_option(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--auth", type=Path, metavar="DIR",
                       help="each component on its own credentials from DIR (made if missing; default: DATA_DIR/auth); "
                            "the embedded server enforces them (the default)")
    group.add_argument("--no-auth", action="store_true",
                       help="run the embedded server without authorization: any local process may submit and forge")


def auth_dir(args: argparse.Namespace) -> Path | None:
    """Where the one-box identities live, or None when this run has none (--no-auth, --nats, --cluster)."""
    if args.nats or getattr(args, "no_auth", False):
        return None
    if getattr(args, "cluster", None):
        log.warning("--cluster runs without authorization for now: any local process may submit and forge")
        return None
    return args.auth or args.data_dir / "auth"


@contextlib.asynccontextmanager
async def one_box_identities(args: argparse.Namespace) -> AsyncIterator[None]:
    """Unless `auth_dir` says none: make (or complete) the credentials, point this process's
    components at the directory (each picks its role's file) for the duration, and for `up`
    print the submitter's export. The embedded server finds the config as `args.auth_config`."""
    folder = auth_dir(args)
    if folder is None:
        yield
        return
    files = auth.init(folder, Names(args.prefix), [*builtin_services(), *getattr(args, "own_services", [])],
                      limits=account_limits(store=args.data_dir))
    args.auth_config = folder / auth.CONF_NAME
    before = os.environ.get(CREDS_ENV)
    os.environ[CREDS_ENV] = str(folder.resolve())
    if getattr(args, "command", None) == "up":
        print(f"export {CREDS_ENV}={files[auth.SUBMITTER].resolve()}", flush=True)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CREDS_ENV, None)
        else:
            os.environ[CREDS_ENV] = before
