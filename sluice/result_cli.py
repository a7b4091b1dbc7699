"""`sluice result`'s downloads (a file of the tree, or a stored object) in a safe form: CaRT or a
zip with the password `infected`, raw bytes only when asked for."""

from __future__ import annotations

import argparse
import sys

from rich.text import Text

from schemas.messages import FileRef, Summary, walk
from sluice.client import Client
from sluice.console import ERR, CliError
from sluice.neuter import Format, neutered
from sluice.render import clean


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", metavar="SHA256", help="a file of the tree instead, as CaRT unless --format says otherwise")
    p.add_argument("--format", choices=[f.value for f in Format],
                   help="cart or zip (password: infected), neutered; raw: the bytes themselves "
                        "(default: cart for --file; raw for --object, a service's report)")


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
