"""Ending a child process of the benchmark: asked to stop, given time, then killed, always reaped."""

from __future__ import annotations

import anyio
from anyio.abc import Process


async def reap(proc: Process, grace: float) -> None:
    """Wait up to `grace` seconds for `proc` (already asked to stop) to exit, kill it if it has not."""
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(grace):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.aclose()
