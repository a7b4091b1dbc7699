"""The passwords tried on encrypted members, and which of them worked.

Malware is mailed in archives locked with a well-known word ("infected") or with a password
given next to it (in the mail body, which an earlier service may put in the submission's
temporary data), so a short list of guesses opens most of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, TypeVar

from services.sdk import Request

T = TypeVar("T")


@functools.cache
def default_wordlist() -> tuple[str, ...]:
    """The shipped wordlist (wordlist.txt beside this module), tried after everything else."""
    text = resources.files("services.extract").joinpath("wordlist.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def gather(configured: Iterable[Any], request: Request, wordlist: bool = True) -> list[str]:
    """The submission's own password first, then the temporary data's (a parent e-mail's body),
    then the configured list, then the shipped wordlist (unless `wordlist` is False).

    Only non-empty strings count, each once: temporary data is written by other services and
    may hold anything.
    """
    temp = request.temp_submission_data
    found = temp.get("passwords")
    from_temp = found if isinstance(found, list) else [found]
    candidates = [request.get_param("password"), temp.get("password"), *from_temp, *configured,
                  *(default_wordlist() if wordlist else ())]
    return list(dict.fromkeys(p for p in candidates if isinstance(p, str) and p))


class Keyring:
    """Candidate passwords, those that already worked first (an archive rarely uses two).

    Once one member has resisted every candidate, later members are only tried with passwords
    that worked: a thousand members locked with an unknown password would otherwise cost a
    thousand times the whole list (AES key derivations), past the service's timeout.
    """

    def __init__(self, passwords: list[str]) -> None:
        self._candidates = passwords
        self._exhausted = False
        self.worked: list[str] = []

    def first(self, attempt: Callable[[str], T | None]) -> tuple[str, T] | None:
        """The first password `attempt` accepts (returns non-None for) and what it returned."""
        rest = [] if self._exhausted else [p for p in self._candidates if p not in self.worked]
        for password in self.worked + rest:
            outcome = attempt(password)
            if outcome is not None:
                if password not in self.worked:
                    self.worked.append(password)
                return password, outcome
        self._exhausted = True
        return None

    def refusal(self) -> str:
        """Why an encrypted member stayed shut, for the finding's line."""
        if not self._candidates:
            return "no password to try"
        return f"none of the {len(self._candidates)} passwords tried worked"
