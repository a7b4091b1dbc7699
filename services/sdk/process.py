"""Run an external tool on a sample without letting it take the service down with it.

The Assemblyline 3 guide's "execution gone wild": a tool that hangs, forks helpers, or floods its
output. `run_tool` starts it in its own process group, trims what it printed, and on timeout
kills the whole group (helpers included), so nothing outlives the task.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OUTPUT_CAP = 16 * 1024 * 1024


class ToolTimeout(RuntimeError):
    """The tool ran past its timeout; it and everything it started were killed."""


@dataclass(frozen=True)
class ToolOutput:
    returncode: int
    stdout: bytes
    stderr: bytes
    truncated: bool  # stdout or stderr went past `max_output` and was cut


def run_tool(
    args: Sequence[str | os.PathLike],
    timeout: float,
    cwd: str | os.PathLike | None = None,
    stdin: bytes | None = None,
    max_output: int = OUTPUT_CAP,
    env: dict[str, str] | None = None,
) -> ToolOutput:
    """Run `args` (never through a shell), wait at most `timeout` seconds, return its output.

    Raises ToolTimeout after killing the process group; raises FileNotFoundError when the tool
    is not installed, so a service can say so in its result.
    """
    proc = subprocess.Popen(
        [str(a) for a in args],
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so killpg reaches its children too
        env=env,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ToolTimeout(f"{Path(str(args[0])).name} ran past {timeout:g}s and was killed") from None
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        _kill_group(proc, only_leftovers=True)
    truncated = len(out) > max_output or len(err) > max_output
    return ToolOutput(proc.returncode, out[:max_output], err[:max_output], truncated)


def _kill_group(proc: subprocess.Popen, only_leftovers: bool = False) -> None:
    """SIGKILL the tool's process group: after a timeout, or helpers left once the tool exited."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if not only_leftovers:
        proc.communicate()
