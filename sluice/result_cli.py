"""`sluice result`'s downloads (a file of the tree, or a stored object) in a safe form, and the
same command through the web front with an API key (`--api URL --api-key KEY`, or
$SLUICE_API_URL and $SLUICE_API_KEY) for those who reach Sluice over HTTPS rather than NATS."""

from __future__ import annotations

import argparse
import sys

from rich.text import Text

from schemas.messages import FileRef, Summary, walk
from sluice.client import Client
from sluice.console import ERR, CliError
from sluice.neuter import Format, neutered
from sluice.render import clean
from sluice.web_client import API_KEY_ENV, API_URL_ENV, WebClient, WebError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", metavar="SHA256", help="a file of the tree instead, as CaRT unless --format says otherwise")
    p.add_argument("--format", choices=[f.value for f in Format],
                   help="cart or zip (password: infected), neutered; raw: the bytes themselves "
                        "(default: cart for --file; raw for --object, a service's report)")
    p.add_argument("--api", metavar="URL", help=f"through the web front at URL instead of NATS (or ${API_URL_ENV})")
    p.add_argument("--api-key", metavar="KEY", help=f"the web API key (`sluice user apikey create`; or ${API_KEY_ENV})")


def chosen_format(args: argparse.Namespace) -> Format:
    return Format(args.format) if args.format else (Format.CART if args.file else Format.RAW)


async def file_of(client: Client, summary: Summary, sha256: str) -> tuple[str, bytes]:
    node = next((n for n in walk(summary.files) if n.sha256 == sha256), None)
    if node is None:
        raise CliError(f"{summary.sid} has no file {sha256}", code=1)
    return node.name or sha256, await client.blobs.get(FileRef(node.sha256, node.size, node.name))


def write(args: argparse.Namespace, data: bytes, name: str, fmt: Format, already: bool = False) -> None:
    """The bytes in the chosen form to -o FILE or stdout (`already`: the web front neutered them)."""
    body, filename = (data, name) if already else neutered(data, name, fmt)
    if args.output:
        args.output.write_bytes(body)
        ERR.print(Text(f"sluice: wrote {clean(filename)} ({fmt.value}, {len(body)} bytes) to {clean(args.output)}"))
        return
    if fmt is not Format.RAW and sys.stdout.isatty():
        raise CliError(f"{fmt.value} is binary: write it with -o FILE (suggested name: {clean(filename)})")
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


async def via_api(args: argparse.Namespace, emit) -> int:
    """`sluice result` through the web front: the summary, or a download in the chosen form."""
    try:
        async with WebClient(args.api, args.api_key) as web:
            if args.file is None and args.object is None:
                summary = await web.result(args.sid)
                if summary is None:
                    ERR.print(Text(f"sluice: {args.sid}: still being analysed", style="yellow"))
                    return 1
                emit(summary, args.json)
                return 0
            fmt = chosen_format(args)
            if args.file:
                data = await web.download_file(args.sid, args.file, fmt)
            else:
                data = await web.download_object(args.sid, args.object, fmt)
    except (ValueError, WebError) as exc:
        raise CliError(str(exc), code=1) from None
    write(args, data, args.file or args.object, fmt, already=True)
    return 0
