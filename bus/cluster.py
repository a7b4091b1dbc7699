"""A JetStream cluster of N ``nats-server`` nodes on loopback, for `sluice up --cluster N` and fault tests.

Why: Sluice scales out and survives a lost server on NATS itself (R3 streams), so users and
tests need a real cluster without Docker. Each node is an ``EmbeddedServer`` (same binary,
same readiness, same reaping) with its own name, ports and store under ``<data_dir>/<name>``,
plus a ``cluster`` block whose routes list every node (listing itself is fine). A node killed
and restarted comes back on the same ports and store and catches up from its peers.

Ready means every node answers ``/healthz`` in full: JetStream is up *and* current with a meta
leader, so the first stream created with ``num_replicas=N`` finds its peers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import anyio

from bus.embedded import EmbeddedServer, free_port

__all__ = ["LoopbackCluster"]


class LoopbackCluster:
    """An async context manager running `size` clustered JetStream nodes named n1..nN on 127.0.0.1."""

    def __init__(self, size: int = 3, *, data_dir: str | os.PathLike[str] | None = None,
                 name: str = "sluice", ready_timeout: float = 20.0) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="sluice-cluster-"))
        self.ready_timeout = ready_timeout
        route_ports = [free_port() for _ in range(size)]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        self.servers = [
            EmbeddedServer(
                data_dir=self.data_dir / f"n{i}", server_name=f"n{i}", ready_timeout=ready_timeout,
                extra_config=["cluster {", f"  name: {name}", f'  listen: "127.0.0.1:{port}"', f"  routes: [ {routes} ]", "}"],
            )
            for i, port in enumerate(route_ports, start=1)
        ]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated: what `--nats` takes, so clients fail over."""
        return ",".join(s.url for s in self.servers)

    def server(self, name: str) -> EmbeddedServer:
        """The node with this server name (as JetStream reports leaders: n1, n2, ...)."""
        for server in self.servers:
            if server.server_name == name:
                return server
        raise KeyError(name)

    async def __aenter__(self) -> LoopbackCluster:
        try:
            await self.start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.stop()
        finally:
            if self._owns_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    async def start(self) -> None:
        """Start every node at once (each waits for its peers' routes), then wait for a meta leader."""
        async with anyio.create_task_group() as tg:
            for server in self.servers:
                tg.start_soon(server.start)
        await self.wait_current(self.servers)

    async def wait_current(self, servers: list[EmbeddedServer]) -> None:
        """Wait until each of `servers` is current with the cluster (full /healthz is 200)."""
        with anyio.fail_after(self.ready_timeout):
            for server in servers:
                while not await server.healthy(query=""):
                    await anyio.sleep(0.05)

    async def restart(self, name: str) -> None:
        """Bring a (killed or stopped) node back on its ports and store; return once it is current."""
        server = self.server(name)
        await server.restart()
        await self.wait_current([server])

    async def stop(self) -> None:
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for server in self.servers:
                    tg.start_soon(server.stop)
