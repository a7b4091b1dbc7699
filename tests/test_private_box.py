"""`sluice scan` on its own embedded server: the scanner's in-flight quota grows with the workers.

The scan runs as a user runs it (a subprocess); its store stays in --data-dir, so the queue it
provisioned is read back afterwards from a server started again on that store, as admin.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from nats.js.api import RetentionPolicy

from bus.auth import ADMIN, SUBMITTER, creds_file_name, identity_of
from bus.connect import close, connect
from bus.embedded import EmbeddedServer
from bus.subjects import Names
from dispatcher.dispatcher import MAX_TREES
from sluice.private_box import TREES_ENV, scan_quota
from tests.test_cli import sluice


@asynccontextmanager
async def admin_on(data: Path):
    """JetStream as admin on a server started again on the store a scan left in `data`."""
    auth = data / "auth"
    async with EmbeddedServer(data_dir=data, auth_config=auth / "auth.conf") as server:
        nc = await connect(server.url, creds=auth / creds_file_name(ADMIN))
        try:
            yield nc.jetstream()
        finally:
            await close(nc)


async def scanner_in_flight(data: Path) -> int:
    """The scanning identity's queue's max_ack_pending, in the store the scan left behind."""
    async with admin_on(data) as js:
        names = Names("sluice")
        info = await js.consumer_info(names.submit_stream, names.root_consumer(identity_of(SUBMITTER)))
        return info.config.max_ack_pending


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("operator", "expected"), [(None, 2 * MAX_TREES), ("8", 8)])
async def test_a_scan_on_its_own_box_lets_every_dispatcher_be_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    operator: str | None, expected: int) -> None:
    if operator is None:
        monkeypatch.delenv(TREES_ENV, raising=False)
    else:
        monkeypatch.setenv(TREES_ENV, operator)  # the operator's own quota is kept as set
    (tmp_path / "x.txt").write_text("hello\n")
    proc = sluice("scan", "--json", "--workers", "2", "--data-dir", str(tmp_path / "data"), "x.txt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    assert await scanner_in_flight(tmp_path / "data") == expected


def test_the_raised_quota_lasts_only_as_long_as_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TREES_ENV, raising=False)
    with scan_quota(3):
        assert os.environ[TREES_ENV] == str(3 * MAX_TREES)
    assert TREES_ENV not in os.environ


@pytest.mark.timeout(240)
async def test_a_store_an_earlier_release_made_gets_the_interest_reply_stream(tmp_path: Path) -> None:
    """A one-box store's reply stream made by an earlier release (a work queue) is made an
    interest stream when the box starts: every component on its own server is this release's."""
    (tmp_path / "x.txt").write_text("hello\n")
    data, reply_stream = tmp_path / "data", Names("sluice").reply_stream

    async def scan() -> RetentionPolicy:
        proc = sluice("scan", "--json", "--workers", "1", "--data-dir", str(data), "x.txt", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 1
        async with admin_on(data) as js:
            return (await js.stream_info(reply_stream)).config.retention

    assert await scan() == RetentionPolicy.INTEREST  # a new store
    async with admin_on(data) as js:  # made again as an earlier release made it: a work queue
        config = (await js.stream_info(reply_stream)).config
        await js.delete_stream(reply_stream)
        await js.add_stream(replace(config, retention=RetentionPolicy.WORK_QUEUE))
    assert await scan() == RetentionPolicy.INTEREST
