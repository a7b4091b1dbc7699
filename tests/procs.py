"""Sluice components as real OS processes, for fault tests that SIGKILL, SIGSTOP and restart them.

Each component is `python -m sluice ...` run from the checkout, logging to a file the test
shows when it fails. Start returns once the component is observably part of the mesh, never
after a sleep: a service once its instance (named after its pid) is in the registry bucket, a
dispatcher once its own reply consumer exists on the server.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import anyio
from anyio.abc import Process
from nats.js.errors import NoKeysError

from bus.connect import close, connect
from bus.provision import Stores, provision
from bus.retry import patiently
from bus.subjects import Names

ROOT = Path(__file__).resolve().parent.parent
FAULT_SERVICES = Path(__file__).resolve().parent / "faultsvcs"
START_TIMEOUT = 30.0  # a cold start of several interpreters at once on a busy 2-core box


class Component:
    """One `python -m sluice ARGS` process, run from the checkout `code` (another release's, for
    the rolling-upgrade tests: its own folder first on the path)."""

    def __init__(self, label: str, argv: list[str], log_path: Path, code: Path = ROOT) -> None:
        self.label = label
        self.code = code
        self.argv = argv
        self.log_path = log_path
        self.proc: Process | None = None
        self.pid = 0  # kept after the process is gone, to read what it left behind
        self.restarts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = await anyio.open_process([sys.executable, "-m", "sluice", "-v", *self.argv], cwd=self.code,
                                                 env={**os.environ, "PYTHONPATH": str(self.code)}, stdin=None,
                                                 stdout=log, stderr=log, start_new_session=True)
        self.pid = self.proc.pid

    async def exited(self) -> int:
        """Wait for the process to end (by itself or not); its exit code."""
        assert self.proc is not None
        return await self.proc.wait()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def interrupt(self, grace: float = 30.0) -> int:
        """Ctrl-C in its terminal: SIGINT to its whole process group; its exit code once it has stopped."""
        assert self.proc is not None
        os.killpg(self.pid, signal.SIGINT)
        with anyio.fail_after(grace):
            return await self.proc.wait()

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; reaped."""
        if self.running:
            self.signal(signal.SIGKILL)
        await self._reap()

    async def stop(self, grace: float = 8.0) -> None:
        """SIGTERM (a clean stop), SIGKILL after `grace` seconds; a stopped (SIGSTOP) one is woken first."""
        if self.running:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            with anyio.move_on_after(grace):
                await self.proc.wait()
        await self.kill()

    async def _reap(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with anyio.CancelScope(shield=True):
                await proc.wait()
                await proc.aclose()

    def log_tail(self, max_bytes: int = 3000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as exc:
            return f"<no log: {exc}>"
        return data[-max_bytes:].decode(errors="replace")


class Mesh:
    """The component processes of one test on one NATS (or cluster) and prefix; all stopped on exit.

    Holds its own connection to watch for readiness, and provisions first (with `replicas`, on a
    cluster: the components started after it follow what is deployed). On an error in the block, every
    component's log tail is printed, since that is where a fault test's story is.
    """

    def __init__(self, url: str, prefix: str, log_dir: Path, replicas: int | None = None) -> None:
        self.url = url
        self.replicas = replicas
        self.names = Names(prefix)
        self.log_dir = log_dir
        self.components: list[Component] = []

    async def __aenter__(self) -> Mesh:
        self.nc = await connect(self.url, name="sluice-fault-test")
        self.js = self.nc.jetstream()
        self.stores: Stores = await patiently("provisioning", lambda: provision(self.js, self.names, self.replicas))
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for component in self.components:
                    tg.start_soon(component.stop)
            await close(self.nc)
        if exc is not None:
            for component in self.components:
                print(f"---- {component.label} ({component.log_path}) ----\n{component.log_tail()}")

    def _component(self, label: str, argv: list[str], code: Path = ROOT) -> Component:
        number = sum(c.label.startswith(label) for c in self.components) + 1
        component = Component(f"{label}-{number}", [*argv, "--nats", self.url, "--prefix", self.names.prefix],
                              self.log_dir / f"{label}-{number}.log", code)
        self.components.append(component)
        return component

    async def service(self, name_or_path: str | Path, *options: str, code: Path = ROOT) -> Component:
        """Start one instance of a service (a built-in name or a folder) and wait for its registry entry."""
        path = Path(name_or_path)
        label = path.name if path.is_absolute() else str(name_or_path)
        component = self._component(label, ["service", "run", str(name_or_path), *options], code)
        await component.start()
        await self.registered(component, label)
        return component

    async def instances(self, count: int, name_or_path: str | Path, *options: str) -> list[Component]:
        """Start `count` instances of one service at once (they share its consumer)."""
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(self.service, name_or_path, *options)
        return self.components[-count:]

    async def registered(self, component: Component, service: str) -> None:
        """Wait until `component`'s instance of `service` heartbeats in the registry (its key names its pid)."""
        key_prefix = f"{service}.{socket.gethostname()}-{component.pid}-"
        with anyio.fail_after(START_TIMEOUT):
            while not any(k.startswith(key_prefix) for k in await self._registry_keys()):
                if not component.running:
                    raise RuntimeError(f"{component.label} exited during start:\n{component.log_tail()}")
                await anyio.sleep(0.05)

    async def supervise(self, component: Component) -> None:
        """Restart a component whenever it dies, as compose's `restart: unless-stopped` would,
        until cancelled (a new process may die again before it has even registered)."""
        while True:
            await component.exited()
            await component.kill()  # reaped
            component.restarts += 1
            await component.start()

    async def dispatcher(self, *options: str, code: Path = ROOT) -> Component:
        """Start a dispatcher and wait for the reply consumer it creates for itself."""
        before = await self._dispatcher_consumers()
        component = self._component("dispatcher", ["dispatcher", *options], code)
        await component.start()
        with anyio.fail_after(START_TIMEOUT):
            while not (await self._dispatcher_consumers()) - before:
                if not component.running:
                    raise RuntimeError(f"{component.label} exited during start:\n{component.log_tail()}")
                await anyio.sleep(0.05)
        return component

    async def _registry_keys(self) -> list[str]:
        try:
            return await self.stores.registry.keys()
        except NoKeysError:
            return []

    async def _dispatcher_consumers(self) -> set[str]:
        infos = await self.js.consumers_info(self.names.reply_stream)
        return {i.name for i in infos if i.name.startswith("dispatcher-")}


async def provision_with(code: Path, url: str, names: Names) -> None:
    """Provisioning as the release in `code` does it (what each of its components runs at start),
    in its own process: e.g. the previous release's, making or re-making a prefix."""
    script = ("import asyncio, sys\nfrom bus.connect import close, connect\nfrom bus.provision import provision\n"
              "from bus.subjects import Names\n"
              "async def main():\n    nc = await connect(sys.argv[1])\n"
              "    try:\n        await provision(nc.jetstream(), Names(sys.argv[2]))\n    finally:\n        await close(nc)\n"
              "asyncio.run(main())\n")
    env = {**os.environ, "PYTHONPATH": str(code)}
    with anyio.fail_after(60):
        result = await anyio.run_process([sys.executable, "-c", script, url, names.prefix], cwd=code, env=env, check=False)
    if result.returncode:
        raise RuntimeError(result.stderr.decode(errors="replace")[-2000:])


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a live process's resident memory (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")

