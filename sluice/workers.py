"""The one-box on every core: the dispatcher and the built-in services in N processes.

One Python process runs one event loop on one core, so `sluice up` and `sluice scan` run the
one-box mesh (sluice/onebox.py) N times: in this process, and in N-1 worker processes started
here, each with its own NATS connections. They scale out exactly as separate hosts would: every
dispatcher takes submissions from the shared durable consumers (each with its own replies
subject), every service instance binds its service's one durable consumer.

A worker gets the NATS URL and the credentials it is given (never its own), and runs until its
stdin closes: this process closes it to stop the pool, and if this process dies the pipe closes
all the same, so no worker outlives it. Workers run in their own session, so a Ctrl-C in the
terminal reaches this process alone, which then stops them in order; a SIGTERM or SIGINT sent
to a worker itself also stops it cleanly. A stopping worker hands back what it holds (its
dispatcher naks unfinished submissions, its services' unacknowledged tasks are redelivered), so
nothing is lost. Rule updaters run in this process only (one per service is enough).

    python -m sluice.workers --nats URL --prefix PREFIX [--creds PATH] [-v]   (what the pool starts)
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.to_thread

from bus.connect import CREDS_ENV
from services.sdk.base import ServiceBase
from services.sdk.loader import builtin_services, load_service
from sluice.console import CliError
from sluice.onebox import onebox

log = logging.getLogger("sluice.workers")

READY = "SLUICE-WORKER-READY"
START_TIMEOUT = 120.0  # seconds for a worker to load every service and see them registered
STOP_GRACE = 20.0  # seconds for a worker to finish what it holds before it is killed


def default_workers() -> int:
    return os.cpu_count() or 1


@asynccontextmanager
async def worker_pool(url: str, prefix: str, workers: int, *, updaters: bool = False, verbose: bool = False,
                      own: Sequence[ServiceBase] = (), service_dirs: Sequence[str] = (),
                      join_when_ready: bool = False) -> AsyncIterator[None]:
    """The one-box mesh in this process and `workers - 1` more, ready, until the block exits.

    Each worker connects to `url` with the credentials this process was given ($SLUICE_NATS_CREDS,
    passed on explicitly). `own`: services from `service_dirs` (`--service-dir`), loaded here;
    each worker loads its own copies from the folders. `join_when_ready` (a scan): the block
    starts once this process's mesh is ready, and each worker takes its share of the work from
    when it is (a fresh interpreter loading every service starts later than this process, which
    has them loaded); a worker not ready when the block exits is stopped as it is."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    procs: list[anyio.abc.Process] = []
    try:
        for number in range(1, workers):  # they load while this process does
            procs.append(await _spawn(url, prefix, number, verbose, service_dirs))
        async with onebox(url, prefix, [*builtin_services(), *own], updaters=updaters), \
                anyio.create_task_group() as starting:
            for number, proc in enumerate(procs, 1):
                if join_when_ready:
                    starting.start_soon(_joins, proc, number)
                else:
                    await _until_ready(proc, number)
            if workers > 1 and not join_when_ready:
                log.info("one-box mesh running in %d processes", workers)
            try:
                yield
            finally:
                starting.cancel_scope.cancel()
                for proc in procs:  # all stop at once, this process's mesh with them
                    await _close_stdin(proc)
    finally:
        with anyio.CancelScope(shield=True):
            for number, proc in enumerate(procs, 1):
                await _stop(proc, number)


async def _spawn(url: str, prefix: str, number: int, verbose: bool, service_dirs: Sequence[str]) -> anyio.abc.Process:
    creds = os.environ.get(CREDS_ENV)
    cmd = [sys.executable, "-m", "sluice.workers", "--nats", url, "--prefix", prefix, "--number", str(number)]
    for folder in service_dirs:
        cmd += ["--service-dir", str(folder)]
    if creds:
        cmd += ["--creds", creds]
    if verbose:
        cmd.append("-v")
    env = {k: v for k, v in os.environ.items() if k != CREDS_ENV}
    return await anyio.open_process(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env,
                                    start_new_session=True)


async def _until_ready(proc: anyio.abc.Process, number: int) -> None:
    seen = b""
    with anyio.move_on_after(START_TIMEOUT):
        while READY.encode() not in seen:
            try:
                seen += await proc.stdout.receive()
            except anyio.EndOfStream:
                raise CliError(f"worker process {number} exited before it was ready (its errors are above)") from None
        return
    raise CliError(f"worker process {number} was not ready within {START_TIMEOUT:g} s")


async def _joins(proc: anyio.abc.Process, number: int) -> None:
    """A worker that joins work already under way: one that fails to start is said, not fatal."""
    try:
        await _until_ready(proc, number)
    except CliError as exc:
        log.warning("%s; going on without it", exc)


async def _close_stdin(proc: anyio.abc.Process) -> None:
    """EOF on the worker's stdin: it stops cleanly."""
    try:
        await proc.stdin.aclose()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass


async def _stop(proc: anyio.abc.Process, number: int) -> None:
    """Tell the worker to stop, wait for it, kill it only if it hangs."""
    await _close_stdin(proc)
    with anyio.move_on_after(STOP_GRACE):
        await proc.wait()
    if proc.returncode is None:
        log.warning("worker %d did not stop within %gs: killed (what it held is redelivered)", number, STOP_GRACE)
        proc.kill()
        await proc.wait()
    await proc.aclose()


# -- the worker process ---------------------------------------------------------------------------

async def serve(url: str, prefix: str, service_dirs: Sequence[str] = ()) -> None:
    """Run the one-box mesh until stdin closes or a SIGTERM/SIGINT/SIGHUP; say READY once it is up."""
    async with anyio.create_task_group() as tg:
        stopping = anyio.Event()

        async def until_stdin_closes() -> None:
            await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
            stopping.set()

        async def until_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
                async for _ in signals:
                    stopping.set()

        tg.start_soon(until_stdin_closes)
        tg.start_soon(until_signal)
        ready = False

        async def mesh() -> None:
            nonlocal ready
            async with onebox(url, prefix, [*builtin_services(), *(load_service(d) for d in service_dirs)]):
                ready = True
                print(READY, flush=True)
                await stopping.wait()

        async with anyio.create_task_group() as running:
            running.start_soon(mesh)
            await stopping.wait()
            if not ready:  # told to stop while starting (a short scan is over): nothing is held yet to hand back
                running.cancel_scope.cancel()
        tg.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    from sluice.logs import log_handler, log_level  # noqa: PLC0415 - only the worker process logs this way

    ap = argparse.ArgumentParser(description="one worker of the one-box pool (started by sluice up / scan)")
    ap.add_argument("--nats", required=True)
    ap.add_argument("--prefix", default="sluice")
    ap.add_argument("--number", type=int, default=1)
    ap.add_argument("--creds", help="this worker's NATS credentials (a seed file, or a directory by role)")
    ap.add_argument("--service-dir", action="append", default=[], help="a service folder to run beside the built-ins")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.creds:
        os.environ[CREDS_ENV] = args.creds
    handler = log_handler(json_lines=not sys.stderr.isatty())
    logging.basicConfig(level=log_level(args.verbose), handlers=[handler])
    backend = {"use_uvloop": True} if __import__("importlib").util.find_spec("uvloop") else {}
    anyio.run(serve, args.nats, args.prefix, args.service_dir, backend_options=backend)
    gc.freeze()  # no collection of every generation at exit: 0.2 s of a stop (cli.run says why)


if __name__ == "__main__":
    main()
