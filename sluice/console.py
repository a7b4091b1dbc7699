"""What every `sluice` subcommand shares: the two consoles, user errors, reaching NATS, signals."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
from rich.console import Console
from rich.text import Text

import yaml

from bus.auth import SUBMITTER
from bus.connect import DEFAULT_URL_ENV
from sluice.client import Client

CONNECT_TIMEOUT = 10.0  # bus.connect retries forever (right for services); a command must give up and say why

# Created once; both look up sys.stdout/sys.stderr at write time, so redirection still applies.
OUT = Console(highlight=False)
ERR = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """A problem the user can fix: `main` prints the message, no traceback, and exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def require_url(args: argparse.Namespace) -> str:
    if not args.nats:
        raise CliError(
            f"no NATS server given: start one with `sluice up` (it prints the URL) and pass it with "
            f"--nats URL or {DEFAULT_URL_ENV}=URL; or use `sluice scan`, which runs its own"
        )
    return args.nats


@contextlib.asynccontextmanager
async def connect_client(url: str, prefix: str, role: str = SUBMITTER) -> AsyncIterator[Client]:
    # Reaching a server is bounded here; setting up rides through an election (bus.retry).
    client = await Client.connect(url, prefix, role, connect_timeout=CONNECT_TIMEOUT)
    async with client:
        yield client


async def until_signal(run: Callable[[anyio.Event], Awaitable[None]]) -> None:
    """Run `run(stop)` until SIGINT/SIGTERM/SIGHUP.

    The first signal sets `stop`, so components finish what they hold and close their
    connections (cancelling them would cut `close()` short too); a second one cancels.
    """
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(on_signals, stop, tg.cancel_scope)
        await run(stop)
        tg.cancel_scope.cancel()


async def on_signals(stop: anyio.Event, scope: anyio.CancelScope,
                      task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    # SIGHUP too: a closed terminal must stop the embedded nats-server (in its own session) as well.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        task_status.started()  # only now is a signal ours rather than a KeyboardInterrupt
        async for signum in signals:
            if stop.is_set():
                scope.cancel()
            else:
                ERR.print(Text(f"sluice: {signal.Signals(signum).name}, shutting down (again to force)", style="yellow"))
                stop.set()


async def cancel_on(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


def add_expand_argument(p: argparse.ArgumentParser) -> None:
    """--expand, for commands that print verdict trees (sluice.render's `expand`)."""
    p.add_argument("--expand", action="store_true",
                   help="every line of every section body, folded ones too (e.g. the full PE import list); "
                        "by default a few lines each, and folded sections only say how many they hold")


def key_values(items: list[str], option: str) -> dict[str, object]:
    """`KEY=VALUE` options as a dict; values read as YAML scalars, so 3 is an int and true a bool."""
    parsed: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"{option} {item!r}: expected KEY=VALUE")
        try:
            parsed[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            parsed[key] = raw
    return parsed
