"""`sluice web`, and the web front `sluice up` starts beside the mesh."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import anyio
from rich.text import Text

from schemas.limits import Limits
from sluice.console import ERR, CliError, require_url, until_signal

DEFAULT_BIND = "127.0.0.1:8080"
DEFAULT_INDEX_DIR = Path(".sluice") / "web"
OIDC_SECRET_ENV = "SLUICE_OIDC_CLIENT_SECRET"
OFF = "off"


def _socket(bind: str) -> socket.socket:
    from sluice.web.serve import listen

    try:
        return listen(bind)
    except ValueError as exc:
        raise CliError(f"--web/--bind {exc}") from None
    except OSError as exc:
        raise CliError(f"the web front cannot listen on {bind}: {exc.strerror or exc}; "
                       f"choose another with --bind/--web HOST:PORT (port 0: any free one)") from None


def history_path(folder: Path, prefix: str) -> Path:
    """Where a web front keeps its search index (SQLite) for a prefix."""
    return folder / f"web-history-{prefix}.sqlite"


async def run_web(url: str, prefix: str, bind: str, stop: anyio.Event, max_upload: int = Limits.max_file_size,
                  index_path: Path | None = None, oidc=None) -> None:
    """Serve the web front until `stop`, saying where on stderr.

    The web stack (Litestar, Hypercorn: a quarter of a second to import) is loaded here, when a web
    front is started, rather than by every `sluice` command.
    """
    from sluice.web.serve import serve, url_of

    sock = _socket(bind)
    ERR.print(Text(f"sluice web at {url_of(sock)}", style="green"))
    await serve(url, prefix, sock, stop, max_upload, index_path, oidc)


async def serve_until(args: argparse.Namespace, url: str, stop: anyio.Event) -> None:
    """What `sluice up` waits on: the web front unless `--web off`, then `stop`."""
    if args.web == OFF:
        await stop.wait()
        return
    await run_web(url, args.prefix, args.web, stop, index_path=history_path(args.data_dir, args.prefix))


def add_up_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web", default=DEFAULT_BIND, metavar="HOST:PORT",
                   help=f"where the web front listens (default {DEFAULT_BIND}; '{OFF}': none)")


async def cmd_web(args: argparse.Namespace) -> int:
    url = require_url(args)
    if not 0 < args.max_upload <= Limits.max_file_size:
        raise CliError(f"--max-upload {args.max_upload}: between 1 and {Limits.max_file_size} (the mesh's file size limit)")
    index = args.index or history_path(DEFAULT_INDEX_DIR, args.prefix)
    oidc = _oidc(args)
    await until_signal(lambda stop: run_web(url, args.prefix, args.bind, stop, args.max_upload, index, oidc))


def _oidc(args: argparse.Namespace):
    """The OpenID Connect settings, if an issuer is given (the client secret from a file or the environment)."""
    if not args.oidc_issuer:
        return None
    from schemas.workspace import Role
    from sluice.web.oidc import OidcConfig

    secret = os.environ.get(OIDC_SECRET_ENV, "")
    if args.oidc_client_secret_file:
        try:
            secret = args.oidc_client_secret_file.read_text().strip()
        except OSError as exc:
            raise CliError(f"--oidc-client-secret-file: {exc.strerror or exc}") from None
    if not args.oidc_client_id or not secret:
        raise CliError(f"--oidc-issuer needs --oidc-client-id and a client secret (--oidc-client-secret-file or ${OIDC_SECRET_ENV})")
    return OidcConfig(args.oidc_issuer, args.oidc_client_id, secret, Role(args.oidc_auto_role) if args.oidc_auto_role else None)
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
                        help=f"where to listen (default {DEFAULT_BIND}; port 0 picks a free one)")
    parser.add_argument("--max-upload", type=int, default=Limits.max_file_size, metavar="BYTES",
                        help=f"largest file the API accepts (default {Limits.max_file_size})")
    parser.add_argument("--oidc-issuer", metavar="URL", help="sign in through this OpenID Connect provider too")
    parser.add_argument("--oidc-client-id", metavar="ID", help="this web front's client id at the provider")
    parser.add_argument("--oidc-client-secret-file", type=Path, metavar="FILE", help=f"its client secret (or ${OIDC_SECRET_ENV})")
    parser.add_argument("--oidc-auto-role", choices=["viewer", "submitter", "analyst"],
                        help="give identities with no bound account a new account with this role (default: refuse them)")
    parser.add_argument("--index", type=Path, metavar="FILE",
                        help=f"the search index (SQLite; rebuilt from the stream if missing; default "
                             f"{history_path(DEFAULT_INDEX_DIR, 'PREFIX')})")
