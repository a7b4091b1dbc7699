"""`sluice submit` and `sluice result` through the web front with an API key (`--api URL --api-key
KEY`, or $SLUICE_API_URL and $SLUICE_API_KEY), for those who reach Sluice over HTTPS rather than NATS."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.text import Text

from schemas.messages import SubmissionParams
from sluice import sample_args
from sluice.console import ERR, CliError
from sluice.render import to_json
from sluice.result_cli import chosen_format, write
from sluice.web_client import API_KEY_ENV, API_URL_ENV, WebClient, WebError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", metavar="URL", help=f"through the web front at URL instead of NATS (or ${API_URL_ENV})")
    p.add_argument("--api-key", metavar="KEY", help=f"the web API key (`sluice user apikey create`; or ${API_KEY_ENV})")


def wanted(args: argparse.Namespace) -> bool:
    """Whether this command goes through the web front."""
    return bool(args.api or os.environ.get(API_URL_ENV))


async def result(args: argparse.Namespace, emit) -> int:
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


async def submit(args: argparse.Namespace, targets: list, params: SubmissionParams) -> int:
    """Each file or sample as its own submission, printing the ids (as `sluice submit` over NATS)."""
    try:
        async with WebClient(args.api, args.api_key) as web:
            for target in targets:
                if isinstance(target, Path):
                    sid = await web.submit_file(target, params.deep_scan, params.ignore_cache, params.services, params.service_params)
                else:
                    sid = await web.submit_sample(target.kind.value, target.value, params.deep_scan, params.ignore_cache,
                                                  params.services, params.service_params)
                print(to_json({"sid": sid, **sample_args.described(target)}) if args.json else sid, flush=True)
    except (ValueError, WebError) as exc:
        raise CliError(str(exc), code=1) from None
    return 0
