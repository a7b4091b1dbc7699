"""Rolling upgrades: the previous release's processes and this one's in one mesh, under load.

The previous release (`PREVIOUS`, whose messages carry no Sluice-Wire header) is unpacked from
git into .venv/ and run as separate processes on its own PYTHONPATH (tests/procs.py). Each test
starts a mesh of the previous release, keeps submissions arriving, replaces its components one
at a time with this release's (in the order the README gives, and in the reverse order), and
checks from the summary stream that every submission completed once, whole and without error.
That the versions really overlapped is shown by the work itself: summaries with and without the
version header (old and new dispatchers both finished trees); files analysed by old and by new
service processes (the chaos service's marker files name the process), and in the middle of
each upgrade the old service working for the new dispatcher, or the new service for the old one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import uuid
from collections import Counter
from pathlib import Path

import anyio
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy

from archives import make_zip
from bus.connect import close, connect
from bus.provision import provision
from bus.subjects import Names
from faultload import Load
from procs import FAULT_SERVICES, ROOT, Component, Mesh, provision_with
from svcs import Echo, make
from schemas.messages import Summary, walk
from schemas.wire import WIRE_HEADER, WIRE_VERSION
from sluice.client import Client
from sluice.onebox import onebox
from sluice.provision_cli import approvals_for, provision_and_approve

pytestmark = pytest.mark.timeout(300)

PREVIOUS = "de1b7dc"  # the last release before the wire contract was versioned
PREVIOUS_DIR = ROOT / ".venv" / f"sluice-{PREVIOUS}"
AFTER_LAST_STEP = 30  # submissions sent once every component runs the new release
MAX_SUBMISSIONS = 600


@pytest.fixture(scope="module")
def previous() -> Path:
    """The previous release's source tree (unpacked once; .venv/ is not in the repo)."""
    if not (PREVIOUS_DIR / "sluice").is_dir():
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS], capture_output=True, timeout=60)
        if archive.returncode:
            pytest.skip(f"commit {PREVIOUS} is not in this repository (a shallow clone?): {archive.stderr.decode()[:300]}")
        unpacking = PREVIOUS_DIR.with_name(PREVIOUS_DIR.name + ".partial")
        shutil.rmtree(unpacking, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(unpacking, filter="data")
        unpacking.rename(PREVIOUS_DIR)
    return PREVIOUS_DIR


def files_for(i: int) -> list[tuple[str, bytes]]:
    """Every third submission a zip of two text files (children cross between dispatchers), else one text file."""
    if i % 3 == 0:
        members = {f"a-{i}.txt": f"a {i} {uuid.uuid4().hex}\n".encode(), f"b-{i}.txt": f"b {i} {uuid.uuid4().hex}\n".encode()}
        return [(f"pair-{i}.zip", make_zip(members))]
    return [(f"file-{i}.txt", f"payload {i} {uuid.uuid4().hex}\n".encode())]


async def header_versions(client: Client) -> Counter:
    """How many stored summaries carry each Sluice-Wire header value (None: the previous release's)."""
    names = client.names
    count = (await client.js.stream_info(names.summary_stream)).state.messages
    sub = await client.js.pull_subscribe(names.summaries, stream=names.summary_stream, config=ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0))
    versions: Counter = Counter()
    try:
        while sum(versions.values()) < count:
            for msg in await sub.fetch(500, timeout=5):
                versions[(msg.headers or {}).get(WIRE_HEADER)] += 1
    finally:
        await sub.unsubscribe()
    return versions


def worked(markers: Path, components: list[Component]) -> int:
    """Files the chaos service started in any of `components`' processes."""
    pids = {str(c.pid) for c in components}
    return sum(1 for p in markers.iterdir() if p.name.split("-", 1)[0] in pids)


async def more_work(markers: Path, component: Component, timeout: float = 30.0) -> None:
    """Wait until `component` starts another file (the mesh as it is now, doing work)."""
    since = worked(markers, [component])
    with anyio.fail_after(timeout):
        while worked(markers, [component]) <= since:
            await anyio.sleep(0.05)


def whole(summary: Summary, submitted: list[tuple[str, bytes]]) -> None:
    """Every sample of the tree analysed, nothing in error: a zip with its two children, or one text file."""
    assert summary.errors == 0, [e for n in walk(summary.files) for e in n.errors]
    assert summary.file_count == (3 if submitted[0][0].endswith(".zip") else 1)
    assert all(node.results for node in walk(summary.files))


@pytest.mark.parametrize("order", ["dispatcher-first", "services-first"])
async def test_rolling_upgrade_under_load_loses_nothing(nats_url, prefix, tmp_path, previous, order):
    markers = tmp_path / "markers"
    markers.mkdir()
    chaos = ("--config", "delay=0.05", "--config", f"marker_dir={markers}")
    await provision_with(previous, nats_url, Names(prefix))  # a deployment the previous release made
    async with Mesh(nats_url, prefix, tmp_path) as mesh, await Client.connect(nats_url, prefix) as client:
        old_chaos = await mesh.service(previous / "tests" / "faultsvcs" / "chaos", *chaos, code=previous)
        old_extract = await mesh.service("extract", code=previous)
        old_dispatcher = await mesh.dispatcher(code=previous)
        load, submitted = Load(client), {}
        upgraded = anyio.Event()
        steps: list[str] = []

        async def feed() -> None:
            after = 0
            while after < AFTER_LAST_STEP and len(load.sent) < MAX_SUBMISSIONS:
                files = files_for(len(load.sent))
                submitted[await load.submit(files)] = files
                after += upgraded.is_set()
                await anyio.sleep(0.05)

        async def upgrade_dispatcher() -> None:
            # The operator's step before the first new dispatcher (docs/wire.md): a new dispatcher
            # plans only approved services, and the previous release's do not approve themselves.
            await provision_and_approve(nats_url, mesh.names, approvals_for([FAULT_SERVICES / "chaos", "extract"]))
            await mesh.dispatcher()
            await old_dispatcher.stop()  # SIGTERM: it hands back what it holds, the new one takes it
            steps.append(f"dispatcher at {len(load.sent)} sent")

        async def upgrade_services() -> list[Component]:
            new = []
            for old, service in ((old_chaos, FAULT_SERVICES / "chaos"), (old_extract, "extract")):
                new.append(await mesh.service(service, *(chaos if old is old_chaos else ())))
                await old.stop()
                steps.append(f"{old.label} at {len(load.sent)} sent")
            return new

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            await load.wait_completed(10, timeout=60)  # the old mesh at work first
            if order == "dispatcher-first":
                await upgrade_dispatcher()
                await more_work(markers, old_chaos)  # the previous release's service serves the new dispatcher
                new_services = await upgrade_services()
            else:
                new_services = await upgrade_services()
                await more_work(markers, new_services[0])  # the new service serves the previous release's dispatcher
                await upgrade_dispatcher()
            upgraded.set()
        found = await load.outcome(f"rolling upgrade from {PREVIOUS}, {order}", timeout=120,
                                   notes=lambda found: "upgraded: " + ", ".join(steps))
        for sid, summary in found.items():
            whole(summary, submitted[sid])
        versions = await header_versions(client)
        assert versions[None] and versions[WIRE_VERSION], f"old and new dispatchers did not both finish trees: {versions}"
        assert worked(markers, [old_chaos]) and worked(markers, [new_services[0]]), "old and new chaos did not both work"


async def reply_stream(js, names: Names) -> tuple[str, set[str]]:
    """The reply stream's retention, and the ack policies of the dispatchers' consumers on it."""
    info = await js.stream_info(names.reply_stream)
    policies = {AckPolicy(c.config.ack_policy).value for c in await js.consumers_info(names.reply_stream)}
    return RetentionPolicy(info.config.retention).value, policies


async def scan_twenty(nats_url: str, prefix: str, tag: str) -> None:
    """Twenty files through a one-box mesh; then every reply has been acknowledged (none pending)."""
    async with onebox(nats_url, prefix, [make(Echo, "echo")]) as box, await Client.connect(nats_url, prefix) as client:
        sids = [await client.submit_bytes([(f"{tag}-{i}.txt", f"{tag} {i} {uuid.uuid4().hex}\n".encode())])
                for i in range(20)]
        for sid in sids:
            summary = await client.wait(sid, timeout=30)
            assert summary.errors == 0 and summary.files[0].results
        consumer = box.names.dispatcher_consumer(box.dispatcher.id)
        with anyio.fail_after(10):
            while (info := await client.js.consumer_info(box.names.reply_stream, consumer)).num_ack_pending:
                await anyio.sleep(0.05)
        assert info.delivered.stream_seq == info.ack_floor.stream_seq


async def test_the_reply_stream_becomes_an_interest_stream_once_the_upgrade_is_finished(nats_url, prefix, previous):
    """The previous release's reply stream is a work queue, whose replies are acked one by one;
    its components re-provision it as one at start. So it stays one (and this release's
    dispatchers ack each reply) until `sluice provision --finish-upgrade`, which makes it an
    interest stream (replies acked a run at a time) only while no dispatcher is attached."""
    names = Names(prefix)
    await provision_with(previous, nats_url, names)
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        await provision(js, names)  # step 0 of the upgrade
        assert await reply_stream(js, names) == ("workqueue", set())
        await provision_with(previous, nats_url, names)  # a component of the previous release still starts
        async with onebox(nats_url, prefix, [make(Echo, "echo")]):
            assert await provision_and_approve(nats_url, names, [], finish_upgrade=True) == "workqueue"  # too early:
            assert await reply_stream(js, names) == ("workqueue", {"explicit"})  # a dispatcher is attached
        await scan_twenty(nats_url, prefix, "before")

        assert await provision_and_approve(nats_url, names, [], finish_upgrade=True) == "interest"
        assert await reply_stream(js, names) == ("interest", set())
        async with onebox(nats_url, prefix, [make(Echo, "echo")]):
            assert await reply_stream(js, names) == ("interest", {"all"})
        await scan_twenty(nats_url, prefix, "after")
        with pytest.raises(RuntimeError, match="10052"):  # why it is the last step: the previous release cannot start now
            await provision_with(previous, nats_url, names)
    finally:
        await close(nc)
