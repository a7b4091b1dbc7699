"""`sluice service ...`: run, list, test, scaffold and update services."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import anyio
import msgspec
from rich.table import Table
from rich.text import Text

from bus.subjects import Names
from dispatcher.identify import identify
from schemas.messages import FileNode, FileRef, ResultView, StoredObject
from schemas.samples import kind_of_type, sample_type
from services.sdk.harness import LocalRun, run_service_once_async
from services.sdk.loader import builtin_services, load_service, service_folder
from services.sdk.manifest import ManifestError, UpdateConfig, UpdateSource, load_manifest
from services.sdk.serve import connected_updater, run_service
from services.sdk.updater import UpdateError, UpdateOutcome
from sluice import provision_cli, sample_args
from sluice.console import OUT, CliError, add_expand_argument, key_values, require_url, until_signal
from sluice.observe import add_metrics_args, with_endpoint
from sluice.render import node_tree, to_json
from sluice.scaffold import new_service


async def cmd_service_run(args: argparse.Namespace) -> int:
    url = require_url(args)
    service = load_service(args.name, key_values(args.config, "--config"))  # a bad manifest fails here, before connecting
    await until_signal(with_endpoint(args, lambda stop: run_service(service, url, Names(args.prefix), stop, concurrency=args.concurrency)))
    return 0


async def cmd_service_list(args: argparse.Namespace) -> int:
    """Read the manifests only, so one service with a broken import still leaves the list readable."""
    table = Table("name", "stage", "version", "accepts", "description", box=None, pad_edge=False)
    for name in builtin_services():
        try:
            m = load_manifest(service_folder(name))
        except ManifestError as exc:
            table.add_row(Text(name), "", "", "", Text(str(exc), style="red"))
            continue
        first_sentence = " ".join(m.description.split()).split(". ")[0].rstrip(".")
        table.add_row(Text(m.name, style="bold"), m.stage.value, Text(m.version), Text(m.accepts, overflow="fold"),
                      Text(first_sentence, style="dim"))
    OUT.print(table)
    return 0


def _local_node(run: LocalRun, name: str, data: bytes, file_type: str) -> FileNode:
    """A harness run shaped as a verdict-tree node, so `service test` shares the scan renderer and JSON shape."""
    result = run.result
    children = [
        FileNode(hashlib.sha256(x.data).hexdigest(), x.name, identify(x.data), len(x.data), 1, relation=x.relation)
        for x in run.extracted
    ] + [
        FileNode(r.ref.sha256, r.ref.name, sample_type(r.ref.kind, r.ref.name), r.ref.size, 1, relation=r.relation, kind=r.ref.kind)
        for r in run.related
    ]
    return FileNode(
        hashlib.sha256(data).hexdigest(), name, file_type, len(data), 0, score=result.score, dropped=result.drop, kind=kind_of_type(file_type),
        results=[ResultView(result.service, result.score, result.sections, partial=result.partial,
                            context=result.context, metadata=result.metadata, objects=[
            StoredObject(p.name, p.kind, FileRef(hashlib.sha256(p.data).hexdigest(), len(p.data), p.name), p.description)
            for p in run.produced
        ])],
        errors=[result.error] if result.error else [], children=children,
    )


def _test_input(args: argparse.Namespace, service) -> tuple[str, bytes, str]:
    """What `service test` runs the service on: (name, content, type) of its FILE or its one sample."""
    if len(args.samples) + (args.file is not None) != 1:
        raise CliError("service test takes one FILE, or one --uri, --domain or --ip VALUE")
    if args.samples:
        [sample] = args.samples
        if sample.kind not in service.manifest.kinds:
            kinds = ", ".join(kind.value for kind in service.manifest.kinds)
            raise CliError(f"{service.manifest.name} takes no {sample.kind.value} samples (its manifest's kinds: [{kinds}])")
        return sample.value, sample.value.encode(), sample_type(sample.kind, sample.value)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror or exc}") from None
    return args.file.name, data, identify(data)


async def cmd_service_test(args: argparse.Namespace) -> int:
    """One service on one file (or URI, domain, IP), no NATS: exit 1 if the service reported an error."""
    service = load_service(args.service, key_values(args.config, "--config"))
    name, data, file_type = _test_input(args, service)
    run = await run_service_once_async(service, data, file_type=file_type, name=name, deep_scan=args.deep_scan,
                                       service_params=key_values(args.param, "--param"))
    node = _local_node(run, name, data, file_type)
    if args.json:
        print(to_json(node), flush=True)
    else:
        OUT.print(node_tree(node, args.expand))
    return 1 if run.result.error else 0


async def cmd_service_new(args: argparse.Namespace) -> int:
    folder = new_service(args.name, args.dir)
    OUT.print(Text(f"wrote {folder}/: service.py, service_manifest.yml, Dockerfile, test_{args.name.replace('-', '_')}.py", style="green"))
    OUT.print(f"next: pytest {folder}   |   sluice service test {folder} FILE   |   sluice service run {folder} --nats URL")
    return 0


def _update_config(service, extra: list[str]) -> UpdateConfig:
    """The manifest's update_config plus `--source NAME=URI` given on the command line."""
    config = service.manifest.update_config
    sources = list(config.sources) if config else []
    for item in extra:
        name, sep, uri = item.partition("=")
        if not sep:
            raise CliError(f"--source {item!r}: expected NAME=URI")
        try:
            sources.append(UpdateSource(name=name, uri=uri))
        except ValueError as exc:
            raise CliError(f"--source {item!r}: {exc}") from None
    if not sources:
        raise CliError(f"{service.manifest.name}: no update sources (the manifest has no update_config; add --source NAME=URI)")
    return msgspec.structs.replace(config, sources=sources) if config else UpdateConfig(sources=sources)


async def cmd_service_update(args: argparse.Namespace) -> int:
    """Fetch a service's rule sources and publish them; with --once, one round, else every interval."""
    url = require_url(args)
    service = load_service(args.name)
    config = _update_config(service, args.source)
    names = Names(args.prefix)

    def report(outcome: UpdateOutcome) -> None:
        if args.json:
            print(to_json(outcome), flush=True)
        else:
            state = "published" if outcome.published else "unchanged"
            OUT.print(f"{service.manifest.name}: rule set {outcome.version} {state} ({len(outcome.files)} files)")

    async def run(stop: anyio.Event) -> None:
        async with connected_updater(service, url, names, config) as updater:
            if args.once:
                try:
                    report(await updater.update_once())
                except UpdateError as exc:
                    raise CliError(str(exc), code=1) from None
            else:
                await updater.run(stop, on_update=report)

    await until_signal(run)
    return 0


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the manifest's config block (repeatable; values are YAML)")


def register(service_parser: argparse.ArgumentParser, command) -> None:
    """The `service` subcommands, under the top-level `service` command."""
    under = service_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command("run", cmd_service_run, "run one service (built-in name or folder) against --nats", under=under)
    p.add_argument("name", metavar="NAME_OR_PATH")
    p.add_argument("--concurrency", type=int, help="tasks at once (default: the manifest's)")
    add_metrics_args(p)
    _config_arg(p)
    command("list", cmd_service_list, "list the built-in services", under=under)
    provision_cli.register_approve(under, command)
    p = command("test", cmd_service_test, "run a service once on a file (or a URI, domain, IP), without NATS", under=under)
    p.add_argument("service", metavar="NAME_OR_PATH")
    p.add_argument("file", type=Path, nargs="?")
    sample_args.add_arguments(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--deep-scan", action="store_true")
    add_expand_argument(p)
    _config_arg(p)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a submission parameter of the service (its manifest's submission_params)")
    p = command("new", cmd_service_new, "write a new service folder (code, manifest, Dockerfile, a passing test)", under=under)
    p.add_argument("name")
    p.add_argument("--dir", type=Path, default=Path("."), help="where to put the folder (default: here)")
    p = command("update", cmd_service_update, "fetch a service's rule sources and publish them to running instances", under=under)
    p.add_argument("name", metavar="NAME_OR_PATH")
    p.add_argument("--source", action="append", default=[], metavar="NAME=URI", help="an extra source (http(s):// or file://)")
    p.add_argument("--once", action="store_true", help="one update, then exit (default: every update_interval_seconds)")
    p.add_argument("--json", action="store_true")
