"""The nats-py client as Sluice runs it: two of its per-message costs done more cheaply.

**Socket writes carry what the whole event loop has to send, not one task's.** nats-py queues
each command and wakes its flusher task, which writes what is queued at once. In a component
where many tasks each publish a little (a dispatcher's trees, a service's tasks: an ack, a
result, a cache entry, a task), the flusher wakes after the first of them and the rest go out
in later writes: the dispatcher of bench/mesh.py made 2,300 writes for 16,300 commands (7 a
write) where raw nats-py's batched pipeline made 300 for 12,200 (40 a write), and each write
wakes the nats-server, which on a busy box takes the core from the writer. Here the flusher,
once woken, lets the loop run the tasks that are ready before it writes, and goes on doing so
for as long as they keep adding commands (at most `YIELDS` turns and `GATHER_FOR` seconds, or
until `FLUSH_AT` bytes are queued): under load one write takes what many tasks sent; on an
idle connection the wait is one turn of the loop, microseconds. Measured: the dispatcher's
writes fell from 2,300 to about 600 for the same 2,000 files (docs/performance.md); with 64
turns and 2 ms instead of 8 and 0.5 ms, from 0.26 to 0.14 a file, and the nats-server's reads
from 1.32 to 0.96 a file (docs/performance.md, round five).

**Message headers are parsed without a generator per header name.** nats-py checks each name
for white space with `any(c.isspace() for c in key)`: with two headers on every Sluice message
(the wire version and the de-duplication id) that was 4% of a dispatcher's CPU. Here one regex
search does it; the result is the same dict.

Both override private methods of nats-py's `Client` (2.16.0), so this is pinned with nats-py.
"""

from __future__ import annotations

import asyncio
import re

from nats.aio.client import Client

YIELDS = 64  # turns of the loop a write may wait while other tasks keep adding to it
GATHER_FOR = 0.002  # seconds, at most, that a write waits for them (a busy loop's turn can be long)
FLUSH_AT = 256 * 1024  # bytes queued that are written at once whatever else is ready


_SPACE = re.compile(r"\s")


class NatsClient(Client):
    async def _flusher(self) -> None:
        while self.is_connected and not self.is_connecting:
            future = await self._flush_queue.get()
            try:
                await self._gather()
                if self._pending_data_size > 0:
                    self._transport.writelines(self._pending[:])
                    self._pending = []
                    self._pending_data_size = 0
                    await self._transport.drain()
            except OSError as exc:
                await self._error_cb(exc)
                await self._process_op_err(exc)
                break
            except (asyncio.CancelledError, RuntimeError, AttributeError):
                break  # as nats-py's: the loop is closing, or the connection is being torn down
            finally:
                _settle(future)
                while not self._flush_queue.empty():  # flushes asked for meanwhile: that write was theirs too
                    _settle(self._flush_queue.get_nowait())

    async def _gather(self) -> None:
        """Let ready tasks add their commands, while they keep adding and the write is not large."""
        loop = asyncio.get_running_loop()
        until = loop.time() + GATHER_FOR
        for _ in range(YIELDS):
            queued = self._pending_data_size
            if queued >= FLUSH_AT:
                return
            await asyncio.sleep(0)
            if self._pending_data_size == queued or loop.time() >= until:
                return

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        """`Name: Value` lines to a dict, as nats-py's parser makes it (names without white
        space, ASCII; values stripped, UTF-8 with errors replaced)."""
        out: dict[str, str] = {}
        for line in raw.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            try:
                key = name.strip().decode("ascii")
            except UnicodeDecodeError:
                continue
            if _SPACE.search(key) is None:
                out[key] = value.strip().decode("utf-8", "replace")
        return out


def _settle(future: asyncio.Future) -> None:
    if not future.done():  # it may have been cancelled (nats-py issue 624)
        future.set_result(None)
