"""`assemblyline_v4_service.common.utils` on Sluice: the reaper, a timeout for a block of Python
code, and password candidates from text (for services that open protected archives)."""

from __future__ import annotations

import ctypes
import re
import threading

from services.sdk.timers import TimeoutException, set_death_signal

__all__ = ["TimeoutException", "alarm_clock", "extract_passwords", "set_death_signal"]

# "password:" in the languages AL4 looks for; what follows the colon on the line is a candidate.
PASSWORD_WORDS = ("password", "passwort", "mot de passe", "contraseña", "senha", "parola d'ordine", "parole",
                  "пароль", "密码", "密碼", "비밀번호", "كلمه السر")
QUOTES = "\"'"


class alarm_clock:  # noqa: N801 - AL4's name
    """`with alarm_clock(5): ...` raises TimeoutException in the block after 5 seconds.

    AL4 uses SIGALRM, which only reaches the main thread; a Sluice `execute` runs in a worker
    thread, so the exception is delivered to the thread that entered the block instead. As with
    any asynchronous exception, a call blocked in C code (a read, a sleep in a C library) sees it
    only when it returns to Python: for external programs use `run_tool` or `SubprocessTimer`.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._timer: threading.Timer | None = None

    def __enter__(self) -> alarm_clock:
        target = threading.get_ident()
        self._timer = threading.Timer(self.timeout, _raise_in, (target,))
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _raise_in(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(TimeoutException))


def extract_passwords(text: str) -> set[str]:
    """Every word of `text`, and what follows "password:" (in several languages) on a line, with
    and without quotes: the candidates to try on a protected archive or document."""
    candidates = set(text.split()) | set(re.split(r"\W+", text))
    for line in text.splitlines():
        lowered = line.lower()
        for word in PASSWORD_WORDS:
            at = lowered.rfind(f"{word}:")
            if at >= 0:
                rest = line[at + len(word) + 1:].strip()
                candidates.add(rest)
                candidates.update(rest.split())
    candidates |= {c.strip().strip(QUOTES) for c in candidates}
    candidates.discard("")
    return candidates
