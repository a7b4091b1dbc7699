"""The metrics/health endpoint on the commands that run components (`up`, `dispatcher`,
`service run`): the `--metrics-port` option, and running the endpoint beside the component.

Off unless a port is given (flag or SLUICE_METRICS_PORT): a laptop's one-box mesh opens no
port it was not asked to. It listens on 127.0.0.1 unless `--metrics-host` (or
SLUICE_METRICS_HOST) says otherwise; containers say 0.0.0.0.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable

import anyio

from bus import telemetry
from sluice.console import CliError

Run = Callable[[anyio.Event], Awaitable[None]]


def add_metrics_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # A string default goes through `type` too, so a bad SLUICE_METRICS_PORT is a usage error, said as one.
    p.add_argument("--metrics-port", type=int, default=os.environ.get(telemetry.METRICS_PORT_ENV) or None, metavar="PORT",
                   help=f"serve /metrics, /healthz, /readyz on this port (default: ${telemetry.METRICS_PORT_ENV}; none: off)")
    p.add_argument("--metrics-host", default=os.environ.get(telemetry.METRICS_HOST_ENV, "127.0.0.1"), metavar="ADDR",
                   help=f"address the endpoint listens on (default: ${telemetry.METRICS_HOST_ENV} or 127.0.0.1)")
    return p


def with_endpoint(args: argparse.Namespace, run: Run) -> Run:
    """`run`, with the endpoint served beside it for as long as it runs (when a port was given)."""
    if args.metrics_port is None:
        return run

    async def serving(stop: anyio.Event) -> None:
        async with anyio.create_task_group() as tg:
            try:
                await tg.start(telemetry.serve, args.metrics_port, args.metrics_host)
            except OSError as exc:
                raise CliError(f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}") from None
            await run(stop)
            tg.cancel_scope.cancel()

    return serving
