"""`--uri`, `--domain` and `--ip` for `sluice scan` and `sluice submit`: samples that are not files.

Each value is checked and made canonical while the arguments are parsed, so a malformed one is a
usage error (exit 2, with what is wrong) before a server starts or anything is submitted. The
three flags share one list, so samples are submitted in the order they were given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.messages import SampleKind, SubmissionParams
from schemas.samples import SampleError, canonical
from sluice.client import Client

FLAGS = {
    SampleKind.URI: ("--uri", "a URI to analyse, e.g. https://example.com/payload"),
    SampleKind.DOMAIN: ("--domain", "a domain to analyse, e.g. example.com (international names welcome)"),
    SampleKind.IP: ("--ip", "an IPv4 or IPv6 address to analyse"),
}


@dataclass(frozen=True)
class Sample:
    """A URI, domain or IP from the command line, in canonical form."""

    kind: SampleKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.value}"


def _parser_for(kind: SampleKind) -> Callable[[str], Sample]:
    def parse(value: str) -> Sample:
        try:
            return Sample(kind, canonical(kind, value))
        except SampleError as exc:  # argparse prints it after "argument --uri:" and exits 2
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for kind, (flag, help) in FLAGS.items():
        parser.add_argument(flag, action="append", dest="samples", default=[], type=_parser_for(kind),
                            metavar="VALUE", help=help + " (repeatable)")


async def submit(client: Client, target: Path | Sample, params: SubmissionParams) -> str:
    """A file or a sample from the command line as its own submission; its id."""
    if isinstance(target, Sample):
        return await client.submit_sample(target.kind, target.value, params)
    return await client.submit(target, params)


def described(target: Path | Sample) -> dict[str, str]:
    """What `sluice submit --json` prints beside a submission id, so each line says what it was."""
    if isinstance(target, Sample):
        return {"kind": target.kind.value, "value": target.value}
    return {"path": str(target)}
