"""The `sluice` command: scan files, run the mesh or one of its parts, read verdicts.

Every subcommand is one async function taking the parsed arguments and returning the exit code:
0 all done, 1 a verdict did not arrive in time (or was not found), 2 a usage or submit error,
3 NATS could not be reached for longer than an election takes (bus.retry: one line says what).
`main(argv)` returns that code instead of exiting, so tests can call it directly.

Without a NATS URL (`--nats` or SLUICE_NATS_URL), `scan` and `up` start an embedded nats-server
with its store in `.sluice/data` under the current directory, plus the dispatcher and every
built-in service in this process: the one-box default that needs nothing but Python.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import gc
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import anyio
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from bus.cluster import LoopbackCluster
from bus.connect import DEFAULT_URL_ENV
from bus.embedded import EmbeddedServer
from bus.provision import as_admin, finish_reply_stream, once_placed, provision
from bus.retry import Unreachable
from bus.subjects import Names
from dispatcher.dispatcher import MAX_CHILDREN, MAX_TREES
from schemas.limits import Limits
from schemas.messages import SID, SubmissionParams, Summary
from services.sdk.base import ServiceBase
from services.sdk.lazy import lazy_import
from services.sdk.loader import builtin_services, load_service
from services.sdk.manifest import ManifestError
from sluice import auth_cli, sample_args
from sluice.client import Client, SubmitError
from sluice.console import (ERR, OUT, CliError, add_expand_argument, cancel_on, connect_client, key_values, require_url,
                            until_signal)
from sluice.logs import log_handler, log_level
from sluice.observe import add_metrics_args, with_endpoint
from sluice.onebox import run_dispatcher
from sluice.private_box import scan_quota
from sluice.render import clean, summary_line, summary_tree, to_json
from sluice.workers import default_workers, worker_pool

log = logging.getLogger("sluice.cli")

# The other commands' modules, imported when their command runs (build_parser fills in only the
# chosen command's options): `sluice scan` has no use for httpx (api_cli), cart and pyzipper
# (result_cli's neutering), argon2 (user_cli) or the service test harness (service_cli).
api_cli = lazy_import("sluice.api_cli")
dlq_cli = lazy_import("sluice.dlq_cli")
provision_cli = lazy_import("sluice.provision_cli")
result_cli = lazy_import("sluice.result_cli")
safelist_cli = lazy_import("sluice.safelist_cli")
service_cli = lazy_import("sluice.service_cli")
status_cli = lazy_import("sluice.status_cli")
user_cli = lazy_import("sluice.user_cli")
web_cli = lazy_import("sluice.web.cli")

DEFAULT_DATA_DIR = Path(".sluice") / "data"
SUBMIT_CONCURRENCY = 32  # submissions of one scan in flight at once


# -- plumbing shared by the subcommands -----------------------------------------------------------

@contextlib.asynccontextmanager
async def _nats(args: argparse.Namespace) -> AsyncIterator[str]:
    """The NATS URL to use: the given one, or an embedded server's for as long as the block runs."""
    if args.nats:
        yield args.nats
        return
    data_dir = args.data_dir.resolve()
    nodes = getattr(args, "cluster", None)
    with _store_lock(data_dir) as lock:
        auth_config = getattr(args, "auth_config", None)
        if nodes and auth_config:
            raise CliError("--cluster and --auth do not go together yet: run the cluster with your own config "
                           "(`sluice auth init`, then include auth.conf in each node's config)")
        server = LoopbackCluster(nodes, data_dir=data_dir) if nodes else \
            EmbeddedServer(data_dir=data_dir, port=getattr(args, "port", None), auth_config=auth_config)
        try:
            await server.start()
        except (RuntimeError, TimeoutError) as exc:  # no binary, port taken, store unusable: all said in exc
            await server.stop()
            raise CliError(f"the embedded nats-server did not start: {exc}") from None
        lock.write(server.url)
        lock.flush()
        log.info("embedded nats-server at %s, store in %s", server.url, data_dir)
        try:
            if nodes:  # R-N from the start: every component provisioning after this follows it
                await as_admin(server.url, lambda js: once_placed(lambda: provision(js, Names(args.prefix), replicas=nodes)))
            elif any(data_dir.glob(f"jetstream/*/streams/{Names(args.prefix).reply_stream}")):
                # A store an earlier release made; every component about to start on it is this release's.
                await as_admin(server.url, lambda js: finish_reply_stream(js, Names(args.prefix)))
            yield server.url
        finally:
            await server.stop()


@contextlib.contextmanager
def _store_lock(data_dir: Path):
    """Hold `data_dir` for one embedded server: nats-server itself happily runs two servers on
    one JetStream store (as `sluice up` in one terminal and `sluice scan` in another would).
    The lock file holds the URL, so the refusal can say where the running one is."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "sluice.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            url = lock.read().strip() or "URL"
            raise CliError(f"{data_dir} is in use by another sluice (`sluice up`?): pass --nats {url} to use "
                           f"that one, or --data-dir for a separate store") from None
        lock.truncate(0)
        yield lock


def _own_services(args: argparse.Namespace) -> list[ServiceBase]:
    """`--service-dir DIR` (repeatable): services from folders, to run beside the built-ins."""
    own = [load_service(folder) for folder in getattr(args, "service_dir", [])]
    for service in own:
        if service.manifest.name in builtin_services():
            raise CliError(f"--service-dir: {service.manifest.name} is the name of a built-in service; rename yours")
    if own and args.nats and args.command == "scan":
        raise CliError("--service-dir runs services in this one-box; with --nats, run yours with "
                       "`sluice service run DIR --nats URL`")
    args.own_services = [s.manifest.name for s in own]  # `up --auth` makes their identities too
    return own


@contextlib.asynccontextmanager
async def _mesh(args: argparse.Namespace, services: bool, updaters: bool = False,
                join_when_ready: bool = False) -> AsyncIterator[str]:
    """`_nats`, plus the dispatcher, the built-in services and --service-dir ones in `--workers`
    processes when `services` (sluice.workers.worker_pool says what `join_when_ready` is)."""
    own = _own_services(args)
    async with auth_cli.one_box_identities(args), _nats(args) as url:
        if not services:
            yield url
            return
        async with worker_pool(url, args.prefix, args.workers, updaters=updaters, verbose=args.verbose, own=own,
                               service_dirs=getattr(args, "service_dir", []), join_when_ready=join_when_ready):
            yield url


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _walk(root: Path, exclude: Path | None) -> list[Path]:
    """Every file under `root`, symlinked directories not followed (no loops); unreadable ones skipped, said."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: _skipped(e.filename, e.strerror)):
        here = Path(dirpath)
        # Scanning the store our own embedded server is writing would chase its own tail.
        dirnames[:] = sorted(d for d in dirnames if exclude is None or (here / d).resolve() != exclude)
        for name in sorted(filenames):
            path = here / name
            if not path.is_file():
                continue  # fifos, sockets, devices: not files, and reading one may block forever
            if _readable(path):
                found.append(path)
            else:
                _skipped(path, "not readable")
    return found


def _skipped(path: object, why: str | None) -> None:
    ERR.print(Text(f"sluice: skipped {clean(path)}: {why}", style="yellow"))


def _collect(paths: Sequence[Path], exclude: Path | None = None) -> list[Path]:
    """The files to submit, checked before anything starts.

    A named path that is missing or unreadable, or any file over the size limit, is an error
    (exit 2) rather than a surprise halfway through; only unreadable files found inside a
    directory are skipped, so one bad permission does not sink a large scan.
    """
    exclude = exclude.resolve() if exclude else None
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += _walk(path, exclude)
        elif not path.exists():
            raise CliError(f"{path}: no such file or directory")
        elif not path.is_file():
            raise CliError(f"{path}: not a regular file")  # a fifo would block the read forever
        elif not _readable(path):
            raise CliError(f"{path}: not readable")
        else:
            files.append(path)
    if paths and not files:
        raise CliError("nothing to scan: no readable files in " + ", ".join(map(str, paths)))
    for path in files:
        if path.stat().st_size > Limits.max_file_size:
            raise CliError(f"{path}: {path.stat().st_size} bytes is over the {Limits.max_file_size}-byte file size limit")
    return files


def _targets(args: argparse.Namespace, exclude: Path | None = None) -> list[Path | sample_args.Sample]:
    """The files, then the URIs, domains and IPs to submit, each as its own submission."""
    targets = [*_collect(args.paths, exclude), *args.samples]
    if not targets:
        raise CliError("nothing to submit: give files or directories, or --uri, --domain or --ip VALUE")
    return targets


def _params(args: argparse.Namespace) -> SubmissionParams:
    services = [name for value in args.service for name in value.split(",") if name]
    service_params: dict[str, dict[str, object]] = {}
    for key, value in key_values(args.param, "--param").items():
        service, dot, name = key.partition(".")
        if not dot or not name:
            raise CliError(f"--param {key}: expected SERVICE.NAME=VALUE (e.g. extract.password=infected)")
        service_params.setdefault(service, {})[name] = value
    return SubmissionParams(deep_scan=args.deep_scan, ignore_cache=args.ignore_cache, services=services,
                            service_params=service_params)


def _emit(summary: Summary, as_json: bool, line: bool = False, expand: bool = False) -> None:
    if as_json:
        print(to_json(summary), flush=True)
    elif line:
        OUT.print(summary_line(summary), soft_wrap=True)  # one line each, however long
    else:
        OUT.print(summary_tree(summary, expand))


def _progress(count: int) -> Progress:
    """A progress bar on stderr, only on a terminal and only when there is more than one file."""
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=ERR, transient=True, disable=not ERR.is_terminal or count < 2,
    )


async def _submit_all(client: Client, targets: list[Path | sample_args.Sample], params: SubmissionParams,
                      progress: Progress) -> list[str]:
    """Submit every target, SUBMIT_CONCURRENCY at a time (one at a time, the round trips of each
    file's store and submission were what bounded a scan); the ids in the order of `targets`.
    The first failure stops the rest and is raised as it is."""
    task = progress.add_task("submitting", total=len(targets))
    sids: list[str] = [""] * len(targets)
    slots = anyio.Semaphore(SUBMIT_CONCURRENCY)
    failed: list[BaseException] = []

    async def one(index: int, target: Path | sample_args.Sample, scope: anyio.CancelScope) -> None:
        try:
            async with slots:
                sids[index] = await sample_args.submit(client, target, params)
            progress.advance(task)
        except Exception as exc:  # noqa: BLE001 - re-raised below, alone, once the others have stopped
            failed.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for index, target in enumerate(targets):
            tg.start_soon(one, index, target, tg.cancel_scope)
    if failed:
        raise failed[0]
    return sids


async def _wait_all(client: Client, sids: list[str], timeout: float, progress: Progress,
                    on_done: Callable[[Summary], None] = lambda _: None) -> dict[str, Summary]:
    """Wait for every verdict at once, so the bar moves as files finish rather than in submission order."""
    task = progress.add_task("analysing", total=len(sids))

    def done(summary: Summary) -> None:
        progress.advance(task)
        on_done(summary)

    return await client.wait_all(sids, timeout, on_done=done)


class InOrder:
    """Shows verdicts in the order their files were given, each as soon as those before it are
    shown: output flows while the scan runs (and a pipe reader can start on it), instead of all
    of it after the last verdict, which kept one core busy for half a second of a 2,000-file scan."""

    def __init__(self, sids: list[str], show: Callable[[Summary], None]) -> None:
        self._sids = sids
        self._show = show
        self._next = 0
        self._early: dict[str, Summary] = {}  # arrived before one of the files ahead of it

    def arrived(self, summary: Summary) -> None:
        self._early[summary.sid] = summary
        while self._next < len(self._sids) and self._sids[self._next] in self._early:
            self._show(self._early.pop(self._sids[self._next]))
            self._next += 1

    def rest(self) -> Iterator[tuple[int, str]]:
        """After the wait: the rest in order, shown if they came, else yielded (index, sid) to be told missing."""
        for index in range(self._next, len(self._sids)):
            sid = self._sids[index]
            if sid in self._early:
                self._show(self._early.pop(sid))
            else:
                yield index, sid
        self._next = len(self._sids)


# -- subcommands ----------------------------------------------------------------------------------

async def cmd_scan(args: argparse.Namespace) -> int:
    """Submit files (and URIs, domains, IPs), wait for their verdicts, print them (in the order given)."""
    targets = _targets(args, exclude=None if args.nats else args.data_dir)
    params = _params(args)
    private = contextlib.nullcontext() if args.nats else scan_quota(args.workers)
    with private:
        async with _mesh(args, services=not args.nats, join_when_ready=True) as url, \
                connect_client(url, args.prefix) as client:
            with _progress(len(targets)) as progress:
                sids = await _submit_all(client, targets, params, progress)
                shown = InOrder(sids, functools.partial(_emit, as_json=args.json, expand=args.expand))
                done = await _wait_all(client, sids, args.timeout, progress, shown.arrived)
            for target, sid in shown.rest():
                ERR.print(Text(f"sluice: {clean(targets[target])} ({sid}): no verdict within {args.timeout:g} s", style="red"))
    return 0 if len(done) == len(sids) else 1


async def cmd_submit(args: argparse.Namespace) -> int:
    """Submit and return at once: the ids are for `sluice result` or for matching `watch` output."""
    targets = _targets(args)
    params = _params(args)
    if api_cli.wanted(args):
        return await api_cli.submit(args, targets, params)
    url = require_url(args)
    async with connect_client(url, args.prefix) as client:
        for target in targets:
            sid = await sample_args.submit(client, target, params)
            print(to_json({"sid": sid, **sample_args.described(target)}) if args.json else sid, flush=True)
    return 0


async def cmd_result(args: argparse.Namespace) -> int:
    if not SID.match(args.sid):
        raise CliError(f"{args.sid!r} is not a submission id")
    if api_cli.wanted(args):
        return await api_cli.result(args, functools.partial(_emit, expand=args.expand))
    url = require_url(args)
    async with connect_client(url, args.prefix) as client:
        summary = await client.result(args.sid)
        if summary is None:
            ERR.print(Text(f"sluice: {args.sid}: not found or not finished", style="red"))
            return 1
        if args.object is None and args.file is None:
            _emit(summary, args.json, expand=args.expand)
            return 0
        if args.file:
            name, data = await result_cli.file_of(client, summary, args.file)
        else:
            try:
                obj, data = await client.fetch_object(summary, args.object)
            except KeyError:
                raise CliError(f"{args.sid} has no object named {args.object!r}", code=1) from None
            name = obj.name
    result_cli.write(args, data, name, result_cli.chosen_format(args))
    return 0


async def cmd_watch(args: argparse.Namespace) -> int:
    url = require_url(args)

    async def stream(stop: anyio.Event) -> None:
        # Only the loop is cancelled on stop; the client still closes cleanly after it.
        async with connect_client(url, args.prefix) as client, anyio.create_task_group() as tg:
            tg.start_soon(cancel_on, stop, tg.cancel_scope)
            async for summary in client.watch(alerts=args.alerts):
                _emit(summary, args.json, line=True)

    await until_signal(stream)
    return 0


async def cmd_up(args: argparse.Namespace) -> int:
    """The whole mesh until a signal; with --nats, the dispatcher and services only."""

    async def serve(stop: anyio.Event) -> None:
        async with _mesh(args, services=True, updaters=True) as url:
            prefix = "" if args.prefix == "sluice" else f"  (and --prefix {args.prefix})"
            print(f"export {DEFAULT_URL_ENV}={url}{prefix}", flush=True)
            running = [*builtin_services(), *args.own_services]
            ERR.print(Text("sluice is up: dispatcher and " + ", ".join(running) + "; Ctrl-C to stop", style="green"))
            await web_cli.serve_until(args, url, stop)

    await until_signal(with_endpoint(args, serve))
    return 0


async def cmd_dispatcher(args: argparse.Namespace) -> int:
    url = require_url(args)
    limits = {"max_trees": args.max_trees, "max_children": args.max_children}
    await until_signal(with_endpoint(args, lambda stop: run_dispatcher(url, Names(args.prefix), stop, **limits)))
    return 0


# -- argument parsing -----------------------------------------------------------------------------

def _globals_parser() -> argparse.ArgumentParser:
    """--nats/--prefix/-v, accepted before or after the subcommand (defaults live on the top parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--nats", metavar="URL", default=argparse.SUPPRESS,
                   help=f"NATS server(s), comma-separated (default: ${DEFAULT_URL_ENV}; none: embedded)")
    p.add_argument("--prefix", default=argparse.SUPPRESS, help="subject/stream prefix of this Sluice (default: sluice)")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress to stderr")
    p.add_argument("--log-json", action="store_true", default=argparse.SUPPRESS, help="JSON log lines even on a terminal")
    return p


def _params_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files, or directories to scan recursively")
    sample_args.add_arguments(p)
    p.add_argument("--json", action="store_true", help="JSON Lines on stdout")
    p.add_argument("--deep-scan", action="store_true", help="ask services for their slower, deeper analysis")
    p.add_argument("--ignore-cache", action="store_true", help="analyse again even if results are cached")
    p.add_argument("--service", action="append", default=[], metavar="NAME",
                   help="only these services (repeat, or comma-separate); default: all that accept the type")
    p.add_argument("--param", action="append", default=[], metavar="SERVICE.NAME=VALUE",
                   help="a service's submission parameter, e.g. extract.password=infected (repeatable)")
    return p


def _service_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service-dir", action="append", default=[], type=Path, metavar="DIR",
                   help="also run the service in DIR beside the built-ins (repeatable)")


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"embedded server's store (default: ./{DEFAULT_DATA_DIR}); ignored with --nats")


def _workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive, default=default_workers(), metavar="N",
                   help=f"processes running the dispatcher and services (default: one per core, {default_workers()})")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


HELP = {  # each command's line in `sluice --help`, listed without importing the command's module
    "scan": "submit files, URIs, domains or IPs, wait for their verdicts and print them",
    "submit": "submit files, URIs, domains or IPs and print their submission ids",
    "result": "print a finished submission's verdict tree, or one of its stored objects",
    "watch": "print submissions as they complete, until Ctrl-C",
    "up": "run nats-server, the dispatcher and all built-in services until Ctrl-C",
    "dispatcher": "run one dispatcher against --nats until SIGTERM",
    "service": "run, list, test, scaffold or update services",
    "safelist": "add, remove or list known-good hashes",
    "status": "streams, consumers, live services, submissions in flight",
    "auth": "per-component NATS credentials and authorization",
    "provision": "as admin: create streams, buckets, queues and consumers, and approve the services",
    "dlq": "list, show, replay or purge dead letters (messages Sluice could not use)",
    "web": "serve the REST API and the results browser for --nats",
    "user": "web accounts and API keys: add, list, remove, apikey",
}
_VALUED_GLOBALS = ("--nats", "--prefix")  # global options followed by a value (not the command)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; with `only`, that command's options alone (the others are listed,
    their modules not imported: `main` passes the command it finds in argv)."""
    # Two instances of the global options: parents share action objects, and set_defaults on the
    # top parser would otherwise hand its defaults to the subcommands, masking `sluice --nats URL cmd`.
    common, params = _globals_parser(), _params_parser()
    parser = argparse.ArgumentParser(prog="sluice", parents=[_globals_parser()], description="File analysis over NATS JetStream.")
    parser.set_defaults(nats=os.environ.get(DEFAULT_URL_ENV) or None, prefix="sluice", verbose=False, log_json=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str, *parents: argparse.ArgumentParser, under=sub) -> argparse.ArgumentParser:
        p = under.add_parser(name, parents=[common, *parents], help=help, description=help)
        p.set_defaults(func=func)
        return p

    def scan() -> None:
        p = command("scan", cmd_scan, HELP["scan"], params)
        _data_dir_arg(p)
        _service_dir_arg(p)
        auth_cli.add_up_option(p)
        _workers_arg(p)
        p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="seconds to wait for the verdicts (default 300)")
        add_expand_argument(p)

    def result() -> None:
        p = command("result", cmd_result, HELP["result"])
        p.add_argument("sid")
        p.add_argument("--json", action="store_true")
        p.add_argument("--object", metavar="NAME", help="a report object or supplementary file's bytes instead (to stdout)")
        p.add_argument("--output", "-o", type=Path, metavar="FILE", help="with --object or --file: write it to FILE")
        add_expand_argument(p)
        result_cli.add_arguments(p)
        api_cli.add_arguments(p)

    def watch() -> None:
        p = command("watch", cmd_watch, HELP["watch"])
        p.add_argument("--alerts", action="store_true", help=f"only those scoring at least the alert threshold ({Limits.alert_threshold})")
        p.add_argument("--json", action="store_true")

    def up() -> None:
        p = command("up", cmd_up, HELP["up"])
        _data_dir_arg(p)
        _service_dir_arg(p)
        _workers_arg(p)
        p.add_argument("--port", type=int, help="client port of the embedded server (default: a free one)")
        auth_cli.add_up_option(p)
        web_cli.add_up_options(p)
        add_metrics_args(p)
        p.add_argument("--cluster", type=int, metavar="N", choices=range(3, 8),
                       help="a JetStream cluster of N nodes on loopback instead (streams and consumers R-N); try 3")

    def dispatcher() -> None:
        p = command("dispatcher", cmd_dispatcher, HELP["dispatcher"])
        p.add_argument("--max-trees", type=int, default=MAX_TREES, metavar="N",
                       help=f"submissions analysed at once (default {MAX_TREES})")
        p.add_argument("--max-children", type=int, default=MAX_CHILDREN, metavar="N",
                       help=f"extracted files analysed at once (default {MAX_CHILDREN})")
        add_metrics_args(p)

    fill = {
        "scan": scan,
        "submit": lambda: api_cli.add_arguments(command("submit", cmd_submit, HELP["submit"], params)),
        "result": result,
        "watch": watch,
        "up": up,
        "dispatcher": dispatcher,
        "service": lambda: service_cli.register(command("service", None, HELP["service"]), command),
        "safelist": lambda: safelist_cli.register(command("safelist", None, HELP["safelist"]), command),
        "status": lambda: status_cli.register(command("status", status_cli.cmd_status, HELP["status"])),
        "auth": lambda: auth_cli.register(command("auth", None, HELP["auth"]), command),
        "provision": lambda: provision_cli.register(command("provision", provision_cli.cmd_provision, HELP["provision"])),
        "dlq": lambda: dlq_cli.register(command("dlq", None, HELP["dlq"]), command),
        "web": lambda: web_cli.register(command("web", web_cli.cmd_web, HELP["web"])),
        "user": lambda: user_cli.register(command("user", None, HELP["user"]), command),
    }
    for name, configure in fill.items():
        if only in (None, name):
            configure()
        else:
            sub.add_parser(name, help=HELP[name], description=HELP[name])
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command `argv` names (its first word that is not a global option or its value), if any."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_GLOBALS:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in HELP else None
    return None


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with only the named command's options filled in. With every one when argv names
    none, or names another than it seemed to (`--prefix` abbreviated, say), or has words that
    parser left over: the same result, and the same errors, as ever."""
    only = _command_in(sys.argv[1:] if argv is None else argv)
    if only is not None:
        args, left = build_parser(only).parse_known_args(argv)
        if args.command == only and not left:
            return args
    return build_parser().parse_args(argv)


# -- entry point ----------------------------------------------------------------------------------

class _Repeats(logging.Filter):
    """Drop a record identical to the one just before: a reconnect loop warns twice a second."""

    def __init__(self) -> None:
        super().__init__()
        self.last: tuple[str, str] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        repeat, self.last = key == self.last, key
        return not repeat


@contextlib.contextmanager
def _logging(verbose: bool, json_lines: bool):
    """Logs to stderr (stdout is for results) for the length of one command; undone after, so
    calling `main` twice in one process (tests) neither stacks handlers nor leaves levels changed."""
    root = logging.getLogger()
    handler = log_handler(json_lines)
    handler.addFilter(_Repeats())
    level = root.level
    root.addHandler(handler)
    root.setLevel(log_level(verbose))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _user_error(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code of an error the user can act on, looking inside task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, (SubmitError, ManifestError)):
        return str(exc), 2
    if isinstance(exc, Unreachable):
        return str(exc), 3
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (the console script exits with it)."""
    try:
        args = _parse(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return int(exc.code or 0)
    backend = {"use_uvloop": True} if importlib.util.find_spec("uvloop") else {}
    try:
        with _logging(args.verbose, args.log_json or not ERR.is_terminal):
            return anyio.run(args.func, args, backend_options=backend)
    except BaseException as exc:  # noqa: BLE001 - sorted below: user errors print, the rest re-raise
        known = _user_error(exc)
        if known is None:
            raise
        ERR.print(Text(f"sluice: {clean(known[0])}", style="red"))
        return known[1]


def run() -> NoReturn:
    """The console script: `main`, then exit without waiting for threads that will never end.

    A sync `execute` that hangs is abandoned at its timeout (the mesh goes on), but its worker
    thread lives, and Python joins every such thread at exit: a service or `sluice up` then
    never stopped on SIGTERM (the fault suite's hung service needed SIGKILL).

    Python's exit collects every object generation by generation, and the services' libraries
    leave hundreds of thousands: 0.2 s of a one-file scan went there, after the last verdict.
    Frozen, they are skipped: the OS takes the memory back, and what must be finalized at exit
    (temporary directories, open files) is closed by its owner or by atexit hooks, which still run."""
    code = main()
    gc.freeze()
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    deadline = time.monotonic() + 1.0  # idle worker threads are told to stop as the loop ends: let them
    for thread in others:
        thread.join(max(deadline - time.monotonic(), 0))
    hung = [t for t in others if t.is_alive()]
    if hung:
        ERR.print(Text(f"sluice: leaving {len(hung)} hung service thread(s) behind", style="yellow"))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
