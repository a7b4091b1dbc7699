"""libmagic for identification, loaded so that an install needs no system library.

python-magic is only a binding: it needs libmagic itself. The pylibmagic wheel ships libmagic
and its rule database for Linux (x86_64, aarch64) and macOS, and, once imported, points
python-magic's loader at them: the second choice, after a system libmagic (Debian's libmagic1).
Where neither loads, identification must still run, visibly degraded rather than crashed:
libmagic's answer is then "data" for every file (only Sluice's own rules type it), and the
reason is logged once, at the first handle, as a warning.
"""

from __future__ import annotations

import contextlib
import functools
import logging

log = logging.getLogger("sluice.identify")

UNAVAILABLE_DESCRIPTION = "data"  # what libmagic itself says of bytes it does not recognise

def _load():
    """python-magic on the system's libmagic if there is one (newer rules than the wheel's: Debian
    12's 5.44 knows Python 3.11's bytecode, pylibmagic 0.5's 5.41 does not), else on the wheel's."""
    try:
        import magic

        return magic, None
    except (ImportError, OSError):
        pass
    try:
        with contextlib.suppress(ImportError, OSError):
            import pylibmagic  # noqa: F401 - imported for its effect: python-magic then finds the bundled libmagic
        import magic

        return magic, None
    except (ImportError, OSError) as exc:  # python-magic raises ImportError when it finds no libmagic
        return None, f"libmagic could not be loaded ({exc}); files are typed by Sluice's own rules only"


magic, _MISSING = _load()


class _NoMagic:
    """Stands in for a `magic.Magic` handle when libmagic is missing."""

    def __init__(self, mime: bool = False) -> None:
        self._answer = "application/octet-stream" if mime else UNAVAILABLE_DESCRIPTION

    def from_buffer(self, _data: bytes) -> str:
        return self._answer


@functools.cache
def _warn_missing() -> None:
    log.warning("%s", _MISSING)


def missing() -> str | None:
    """Why libmagic is not in use, or None when it is."""
    return _MISSING


def handle(mime: bool = False):
    """A new libmagic handle (not thread-safe: one per thread), or its stand-in when missing."""
    if magic is None:
        _warn_missing()
        return _NoMagic(mime)
    return magic.Magic(mime=mime)
