"""Assemblyline 3's timers and subprocess reaper, as its guide uses them ("Execution gone wild").

    output = timeout(my_function, (5,), timeout_duration=1)   # raises TimeoutException

    with SubprocessTimer(2) as timer:                           # kills the process at 2 s,
        proc = timer.run(subprocess.Popen([...]))               # then raises TimeoutException
        out, err = proc.communicate()

    subprocess.Popen([...], preexec_fn=set_death_signal())     # the child dies with its parent

For new code `run_tool` does all three at once (its own process group, killed whole on timeout).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class TimeoutException(Exception):  # noqa: N818 - Assemblyline 3's name
    """The function or subprocess ran past its time."""


def timeout(func: Callable[..., Any], args: tuple = (), kwargs: dict[str, Any] | None = None,
            timeout_duration: float = 10, default: Any = None) -> Any:
    """`func(*args, **kwargs)`, or TimeoutException after `timeout_duration` seconds.

    As in AL3, the function runs in a thread that cannot be killed: on timeout it is abandoned
    (a daemon thread, it never holds the process open). What must really stop belongs in a
    subprocess: `SubprocessTimer` or `run_tool`. `default` is accepted for AL3 compatibility.
    """
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = func(*args, **(kwargs or {}))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=call, name=f"timeout-{getattr(func, '__name__', 'call')}", daemon=True)
    worker.start()
    worker.join(timeout_duration)
    if worker.is_alive():
        raise TimeoutException(f"{getattr(func, '__name__', 'call')} ran past {timeout_duration:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value", default)


class SubprocessTimer:
    """Kill a subprocess that runs past `timeout_value` seconds; on leaving the block, raise
    TimeoutException if it had to (unless `raise_on_timeout` is False)."""

    def __init__(self, timeout_value: float, raise_on_timeout: bool = True) -> None:
        self.timeout_value = timeout_value
        self.raise_on_timeout = raise_on_timeout
        self._timer: threading.Timer | None = None
        self._timed_out = threading.Event()

    def __enter__(self) -> SubprocessTimer:
        return self

    def run(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Start the clock on `proc` (already started) and hand it back."""
        self.close()
        self._timed_out.clear()
        self._timer = threading.Timer(self.timeout_value, self._kill, (proc,))
        self._timer.daemon = True
        self._timer.start()
        return proc

    def _kill(self, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        self._timed_out.set()
        try:  # a process that leads its own group (start_new_session) takes its helpers with it
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass

    def has_timed_out(self) -> bool:
        return self._timed_out.is_set()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        if exc_type is None and self.raise_on_timeout and self.has_timed_out():
            raise TimeoutException(f"the subprocess ran past {self.timeout_value:g}s and was killed")


def set_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `sig` when its parent dies (Linux prctl)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def arm() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, sig) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    return arm
